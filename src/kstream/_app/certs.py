"""TLS certificates for ``kstream serve``: a fresh local CA per run, and SAN checks.

Local-cluster tools (kind, minikube, k3d) serve HTTPS with a generated CA that the
kubeconfig pins as ``certificate-authority-data``; ``kstream serve`` does the same. The
CA signs one serving certificate whose subject alternative names cover the addresses the
server answers on: Go's TLS stack (kubectl) ignores the common name and refuses an IP
address that no IP SAN lists ("x509: cannot validate certificate for 127.0.0.1 because
it doesn't contain any IP SANs").

Certificates are made with ``cryptography`` (imported here only, so the sans-IO core
never loads it): hand-written ASN.1 is the kind of code that is subtly wrong.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from dataclasses import dataclass
from typing import Final

__all__ = ["LocalCertificates", "generate", "missing_ip_san"]

#: How long a generated certificate is valid. A server runs for a session, not a year,
#: but a kubeconfig outliving a laptop's sleep should keep working.
VALIDITY: Final = datetime.timedelta(days=365)
#: Clock skew tolerated between this machine and a client checking notBefore.
BACKDATE: Final = datetime.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class LocalCertificates:
    """A generated CA and the serving certificate it signed, PEM-encoded.

    Attributes:
        ca_pem: the CA certificate (what clients trust; it goes into the kubeconfig).
        cert_pem: the serving certificate followed by the CA (the chain to present).
        key_pem: the serving certificate's private key (PKCS#8, unencrypted).
        names: the subject alternative names of the serving certificate.
    """

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    names: tuple[str, ...]


def _san_names(host: str) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses a server listening on ``host`` answers on."""
    dns = ["localhost"]
    ips = ["127.0.0.1", "::1"]
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host and host not in dns:
            dns.append(host)
    else:
        if address.is_unspecified:
            # 0.0.0.0 / :: listen everywhere; the kubeconfig says 127.0.0.1, and a client
            # on another machine would use this host's name.
            name = socket.gethostname()
            if name and name not in dns:
                dns.append(name)
        elif str(address) not in ips:
            ips.append(str(address))
    return dns, ips


def generate(host: str) -> LocalCertificates:
    """Make a CA and a serving certificate for a server listening on ``host``.

    Args:
        host: the listen address (an IP address or a name; ``0.0.0.0``/``::`` for all).

    Returns:
        The PEM-encoded CA, chain and key.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - BACKDATE, now + VALIDITY

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kstream serve local CA")])
    ca_public = ca_key.public_key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_public), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    dns, ips = _san_names(host)
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kstream serve")]))
        .issuer_name(ca_name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(name) for name in dns]
            + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    return LocalCertificates(
        ca_pem=ca_pem,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM) + ca_pem,
        key_pem=key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
        names=(*dns, *ips),
    )


def missing_ip_san(cert_pem: bytes, host: str) -> str | None:
    """Say why clients would refuse ``cert_pem`` for an IP address ``host``, if they would.

    Args:
        cert_pem: the first certificate of the chain the user gave.
        host: the address clients connect to (the kubeconfig's host).

    Returns:
        A one-line problem description, or ``None`` when the certificate lists ``host``
        as an IP SAN (or ``host`` is a name, which this check does not cover).
    """
    from cryptography import x509

    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return None  # not ours to judge: ssl has accepted it already
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        listed: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    else:
        listed = [ip for ip in san.value.get_values_for_type(x509.IPAddress)
                  if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)]
    if address in listed:
        return None
    # Go's own wording (crypto/x509 HostnameError), which is what kubectl will print.
    if listed:
        valid = ", ".join(str(ip) for ip in listed)
        why = f"x509: certificate is valid for {valid}, not {address}"
    else:
        why = (f"x509: cannot validate certificate for {address} because it doesn't "
               "contain any IP SANs")
    return (f"the certificate has no IP SAN for {address}, so kubectl and other Go "
            f"clients will refuse it ({why})")
