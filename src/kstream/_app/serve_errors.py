"""Why ``kstream serve`` cannot start, in one line that names the culprit.

The files are checked before anything is started (a certificate or key that is missing,
unreadable or not PEM; a kubeconfig path in a missing directory, or that is a
directory), and what binding the socket or loading the certificate raises is turned
into a sentence naming the address or the file -- never a traceback.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl

__all__ = ["check_files", "describe_start_error"]

_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PEM_KEY_END = b"PRIVATE KEY-----"
#: Bytes read from a certificate or key file to check it (real ones are a few KiB).
_PEM_LIMIT = 1 << 20


def _read_file(flag: str, path: str) -> tuple[bytes | None, str | None]:
    try:
        with open(path, "rb") as handle:
            return handle.read(_PEM_LIMIT), None
    except IsADirectoryError:
        return None, f"{flag} {path}: is a directory, not a file"
    except OSError as exc:
        return None, f"{flag} {path}: {exc.strerror or exc}"


def _check_tls(tls_cert: str, tls_key: str | None) -> str | None:
    cert, problem = _read_file("--tls-cert", tls_cert)
    if cert is None:
        return problem
    if _PEM_CERTIFICATE not in cert:
        return f"--tls-cert {tls_cert}: no PEM certificate in this file"
    if tls_key is None:
        if _PEM_KEY_END not in cert:
            return (f"--tls-cert {tls_cert}: no private key in this file "
                    f"(give it with --tls-key)")
        return None
    key, problem = _read_file("--tls-key", tls_key)
    if key is None:
        return problem
    if _PEM_KEY_END not in key:
        return f"--tls-key {tls_key}: no PEM private key in this file"
    return None


def _check_kubeconfig(path: str) -> str | None:
    if os.path.isdir(path):
        return f"--kubeconfig {path}: is a directory; give the path of a file to write"
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return f"--kubeconfig {path}: directory {directory} does not exist"
    return None


def check_files(*, tls_cert: str | None, tls_key: str | None,
                kubeconfig: str | None) -> str | None:
    """Check serve's files before it starts.

    Args:
        tls_cert: ``--tls-cert``, if given.
        tls_key: ``--tls-key``, if given.
        kubeconfig: ``--kubeconfig``, if given.

    Returns:
        The problem, naming the flag and the file, or ``None``.
    """
    if tls_cert is not None:
        problem = _check_tls(tls_cert, tls_key)
        if problem is not None:
            return problem
    if kubeconfig is not None:
        return _check_kubeconfig(kubeconfig)
    return None


def _where(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else shown


def describe_start_error(exc: BaseException, *, host: str, port: int,
                         tls_cert: str | None, tls_key: str | None) -> str | None:
    """Say why starting failed, or return ``None`` for an error that is a bug.

    Args:
        exc: what starting the server raised.
        host: ``--host``.
        port: ``--port``.
        tls_cert: ``--tls-cert``, if given.
        tls_key: ``--tls-key``, if given.

    Returns:
        One line naming the address or the file.
    """
    if isinstance(exc, ssl.SSLError):
        if tls_cert is None:
            return f"cannot set up TLS: {exc.reason or exc}"
        if "KEY_VALUES_MISMATCH" in str(exc):
            return f"--tls-key {tls_key or tls_cert} does not match --tls-cert {tls_cert}"
        return (f"cannot load --tls-cert {tls_cert}"
                f"{f' with --tls-key {tls_key}' if tls_key else ''}: {exc.reason or exc}")
    if isinstance(exc, socket.gaierror):
        return f"cannot listen on {host}: unknown host ({exc.strerror or exc})"
    if isinstance(exc, OSError):
        where = _where(host, port)
        if exc.errno == errno.EADDRINUSE:
            return f"cannot listen on {where}: the address is already in use"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"cannot listen on {where}: {host} is not an address of this machine"
        if exc.errno == errno.EACCES:
            return f"cannot listen on {where}: permission denied"
        return f"cannot listen on {where}: {exc.strerror or exc}"
    if isinstance(exc, (ValueError, UnicodeError)):
        return f"cannot listen on {_where(host, port)}: {exc}"
    return None
