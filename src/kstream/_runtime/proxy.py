"""Proxies as client-go uses them: which one a connection goes through, and HTTP CONNECT.

Written once for both runtimes; the runtimes only move the bytes
(``kstream._asyncio_dial``, ``kstream._trio_dial``).

Which proxy (client-go ``rest/transport.go`` and ``transport/cache.go``; Go's
``net/http`` ``ProxyFromEnvironment``, i.e. ``golang.org/x/net/http/httpproxy``, wrapped in
apimachinery's ``utilnet.NewProxierWithNoProxyCIDR``):

* a cluster's ``proxy-url`` in the kubeconfig wins, for every server and whatever
  ``NO_PROXY`` says (``http.ProxyURL``); its scheme must be ``http``, ``https`` or
  ``socks5`` (clientcmd ``parseProxyURL``);
* otherwise ``HTTPS_PROXY`` (then ``https_proxy``) for ``https`` servers and
  ``HTTP_PROXY`` (then ``http_proxy``) for ``http`` servers -- refused when
  ``REQUEST_METHOD`` says we run as a CGI script. A value without a known scheme is read
  as ``http://`` + value;
* never for ``localhost`` or a loopback address, nor for a host ``NO_PROXY`` (then
  ``no_proxy``) matches: ``*`` matches everything; an IP address or a CIDR matches those
  addresses; ``example.com`` matches it and its subdomains, ``.example.com`` and
  ``*.example.com`` its subdomains only; any entry may carry a ``:port``.

How: ``http://`` and ``https://`` proxies get an HTTP/1.1 ``CONNECT host:port``
(:class:`ConnectExchange`, with ``Proxy-Authorization: Basic`` when the URL has a user);
the tunnel is open on a 2xx answer. ``socks5://`` proxies are spoken to by python-socks,
with the host name resolved by the proxy, as Go's SOCKS5 dialer does.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar
from urllib.parse import quote, unquote, urlsplit

import h11

__all__ = [
    "PROXY_SCHEMES",
    "ConnectExchange",
    "ProxyError",
    "ProxyURL",
    "choose_proxy",
    "connect_socks5",
    "parse_proxy_url",
    "proxy_from_environment",
]

#: The proxy schemes client-go accepts.
PROXY_SCHEMES: Final = ("http", "https", "socks5")
# Go's net/http portMap: the port of a proxy URL that names none.
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "socks5": 1080}
# Bound on a CONNECT response head; a proxy sending more is broken.
_MAX_RESPONSE_HEAD: Final = 16 * 1024


class ProxyError(ConnectionError):
    """The proxy refused the tunnel, or did not speak its protocol."""


@dataclass(frozen=True, slots=True)
class ProxyURL:
    """A proxy: ``scheme://[user[:password]@]host[:port]``.

    Attributes:
        scheme: ``"http"``, ``"https"`` or ``"socks5"``.
        host: the proxy's host name or IP address (IPv6 without brackets).
        port: its port (80, 443 or 1080 when the URL names none).
        username: the user of ``Proxy-Authorization`` or SOCKS5 authentication.
        password: that user's password.
    """

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def url(self) -> str:
        """The URL, credentials included (:func:`parse_proxy_url` reads it back)."""
        return self._render(None if self.password is None else quote(self.password, safe=""))

    def redacted(self) -> str:
        """The URL without its password, fit for a message (Go's ``URL.Redacted``)."""
        return self._render("xxxxx" if self.password else None)

    def _render(self, password: str | None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = ""
        if self.username is not None:
            user = quote(self.username, safe="")
            user += f":{password}@" if password is not None else "@"
        return f"{self.scheme}://{user}{host}:{self.port}"

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value for a CONNECT, ``None`` without a user."""
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


def parse_proxy_url(text: str) -> ProxyURL:
    """Parse a proxy URL as client-go parses a kubeconfig's ``proxy-url``.

    Args:
        text: ``"http://proxy:3128"``, ``"https://user:pw@proxy"``, ``"socks5://h:1080"``.

    Returns:
        The proxy.

    Raises:
        ValueError: not a URL with a host, or a scheme other than http, https, socks5.
    """
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"proxy URL: could not parse {text!r}") from None
    if parts.scheme not in PROXY_SCHEMES:
        raise ValueError(
            f"proxy URL: unsupported scheme {parts.scheme!r}, must be http, https, or socks5"
        )
    if not parts.hostname:
        raise ValueError(f"proxy URL: no host in {text!r}")
    return ProxyURL(
        scheme=parts.scheme, host=parts.hostname,
        port=port or _DEFAULT_PORTS[parts.scheme],
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _parse_environment_proxy(text: str) -> ProxyURL | None:
    # httpproxy parseProxy: a value without a known scheme is read as http://value; a
    # value that parses neither way is ignored, as Go ignores it.
    try:
        if urlsplit(text).scheme not in PROXY_SCHEMES:
            text = "http://" + text
        return parse_proxy_url(text)
    except ValueError:
        return None


def _first(environ: Mapping[str, str], *names: str) -> str:
    # httpproxy getEnvAny: the first variable set to a non-empty value.
    for name in names:
        if environ.get(name):
            return environ[name]
    return ""


def _no_proxy(host: str, port: int, no_proxy: str) -> bool:
    """``NO_PROXY`` matching as httpproxy's ``useProxy`` (with its IPs, CIDRs, domains)."""
    host = host.lower().strip()
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for raw in no_proxy.split(","):
        entry = raw.lower().strip()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if ip is not None and ip in network:
                return True
            continue
        entry_host, entry_port = _split_host_port(entry)
        if not entry_host:
            continue
        if entry_port and entry_port != str(port):
            continue
        try:
            entry_ip = ipaddress.ip_address(entry_host)
        except ValueError:
            entry_ip = None
        if entry_ip is not None:
            if ip is not None and ip == entry_ip:
                return True
            continue
        if entry_host.startswith("*."):
            entry_host = entry_host[1:]
        # "example.com" matches itself and its subdomains; ".example.com" subdomains only.
        exact = not entry_host.startswith(".")
        suffix = entry_host if not exact else "." + entry_host
        if host.endswith(suffix) or (exact and host == entry_host):
            return True
    return False


def _split_host_port(entry: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort`` for a NO_PROXY entry, or the entry as a host."""
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if bracket and rest.startswith(":") and rest[1:].isdigit():
            return host, rest[1:]
        return host, ""
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, port
    return entry, ""


def proxy_from_environment(scheme: str, host: str, port: int,
                           environ: Mapping[str, str]) -> ProxyURL | None:
    """The proxy Go's ``http.ProxyFromEnvironment`` picks for a server, if any.

    Args:
        scheme: the server's scheme, ``"https"`` or ``"http"``.
        host: the server's host (IPv6 without brackets).
        port: the server's port.
        environ: where ``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY`` (and their lower-case
            forms) and ``REQUEST_METHOD`` are looked up.

    Returns:
        The proxy, or ``None`` for a direct connection.

    Raises:
        ValueError: ``HTTP_PROXY`` applies but we run as a CGI script (golang.org/s/cgihttpproxy).
    """
    if scheme == "https":
        value = _first(environ, "HTTPS_PROXY", "https_proxy")
    else:
        value = _first(environ, "HTTP_PROXY", "http_proxy")
    proxy = _parse_environment_proxy(value) if value else None
    if proxy is None:
        return None
    if scheme != "https" and environ.get("REQUEST_METHOD"):
        # Before looking at the host, as Go does.
        raise ValueError("refusing to use HTTP_PROXY value in CGI environment; "
                         "see golang.org/s/cgihttpproxy")
    lowered = host.lower()
    if lowered == "localhost":
        return None
    try:
        if ipaddress.ip_address(lowered).is_loopback:
            return None
    except ValueError:
        pass
    if _no_proxy(lowered, port, _first(environ, "NO_PROXY", "no_proxy")):
        return None
    return proxy


def choose_proxy(server: str, proxy_url: str | None,
                 environ: Mapping[str, str]) -> ProxyURL | None:
    """The proxy kubectl would use to reach ``server``.

    Args:
        server: the server URL (``https://host:port/...``).
        proxy_url: the cluster's ``proxy-url`` from the kubeconfig, if any.
        environ: the environment (see :func:`proxy_from_environment`).

    Returns:
        The proxy, or ``None`` for a direct connection.

    Raises:
        ValueError: ``proxy_url`` is invalid (see :func:`parse_proxy_url`).
    """
    if proxy_url:
        return parse_proxy_url(proxy_url)
    try:
        parts = urlsplit(server)
        scheme = parts.scheme or "https"
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return None  # connecting reports the malformed server
    if not parts.hostname:
        return None
    return proxy_from_environment(scheme, parts.hostname, port, environ)


_Socket_co = TypeVar("_Socket_co", covariant=True)


class _SocksProxy(Protocol[_Socket_co]):
    async def connect(self, dest_host: str, dest_port: int, /) -> _Socket_co: ...


async def connect_socks5(proxy_class: Callable[..., _SocksProxy[_Socket_co]],
                         proxy: ProxyURL, host: str, port: int) -> _Socket_co:
    """A socket connected to ``host:port`` through the SOCKS5 ``proxy``, by python-socks.

    Args:
        proxy_class: python-socks's ``Proxy`` of the caller's runtime
            (``python_socks.async_.asyncio`` or ``.trio``): the only part that differs.
        proxy: the proxy.
        host: the server's name, resolved by the proxy (``rdns``), as Go's SOCKS5
            dialer lets it.
        port: the server's port.

    Raises:
        ProxyError: the proxy refused or failed, its URL shown without the password.
    """
    from python_socks import ProxyError as SocksError
    from python_socks import ProxyType

    socks = proxy_class(ProxyType.SOCKS5, proxy.host, proxy.port, proxy.username,
                        proxy.password, rdns=True)
    try:
        return await socks.connect(host, port)
    except SocksError as exc:
        raise ProxyError(f"socks5 proxy {proxy.redacted()}: {exc}") from None


class ConnectExchange:
    """The ``CONNECT host:port`` request to an HTTP proxy and its answer, sans-IO.

    Send :meth:`request`, then feed what the proxy sends to :meth:`receive_data` until it
    returns ``True``: the tunnel is open and the connection now carries the server's
    bytes. A proxy sends nothing more before the client speaks, so bytes it sent after
    its answer (:attr:`trailing`) make :meth:`receive_data` fail.
    """

    def __init__(self, proxy: ProxyURL, host: str, port: int) -> None:
        """Prepare the exchange.

        Args:
            proxy: the proxy (for ``Proxy-Authorization`` and messages).
            host: the server's host (IPv6 without brackets).
            port: the server's port.
        """
        self._proxy = proxy
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        headers = [("Host", authority)]
        authorization = proxy.authorization()
        if authorization is not None:
            headers.append(("Proxy-Authorization", authorization))
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_RESPONSE_HEAD)
        self._request = self._h11.send(h11.Request(
            method="CONNECT", target=authority, headers=headers)) or b""
        self._request += self._h11.send(h11.EndOfMessage()) or b""

    def request(self) -> bytes:
        """The bytes of the CONNECT request."""
        return self._request

    def receive_data(self, data: bytes | bytearray) -> bool:
        """Take bytes from the proxy (``b""`` at end of stream).

        Returns:
            ``True`` once the tunnel is open, ``False`` while the answer is incomplete.

        Raises:
            ProxyError: the proxy refused, closed the connection or sent a malformed
                answer.
        """
        self._h11.receive_data(bytes(data))
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                what = "closed the connection" if not data else f"answered badly: {exc}"
                raise ProxyError(f"proxy {self._proxy.redacted()} {what}") from None
            if event is h11.NEED_DATA:
                if not data:
                    raise ProxyError(f"proxy {self._proxy.redacted()} closed the connection")
                return False
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                if not 200 <= event.status_code < 300:
                    reason = event.reason.decode("latin-1", "replace")[:80]
                    # The words of client-go's spdy round tripper.
                    raise ProxyError(
                        f"CONNECT request to {self._proxy.redacted()} returned response: "
                        f"{event.status_code} {reason}".rstrip()
                    )
                if self.trailing:
                    raise ProxyError(
                        f"proxy {self._proxy.redacted()} sent data before the server spoke"
                    )
                return True
            raise ProxyError(f"proxy {self._proxy.redacted()} closed the connection")

    @property
    def trailing(self) -> bytes:
        """Bytes the proxy sent after its answer."""
        return bytes(self._h11.trailing_data[0])
