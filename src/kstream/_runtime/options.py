"""What a session is opened with: the server address, the options, the TLS default.

Plain Python shared by both runtimes: parsing the server URL of a kubeconfig, the option
object every ``open_exec`` argument is validated into once, the default client TLS
context, and the timing constants of the adapters.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from .._exec.fallback import TRANSPORTS

if TYPE_CHECKING:
    from .proxy import ProxyURL

__all__ = [
    "CLOSE_GRACE",
    "DEFAULT_BUFFER_LIMIT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HEAD_TIMEOUT",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PONG_TIMEOUT",
    "LINGER",
    "MAX_PENDING_RESIZES",
    "REPLY_BACKLOG",
    "ExecOptions",
    "ServerAddress",
    "check_flow_options",
    "check_transport",
    "client_ssl_context",
    "parse_server",
    "pop_connection_arguments",
    "server_url",
]

#: Ping period of client-go's WebSocket executor and kubectl's SPDY connections.
DEFAULT_PING_INTERVAL: Final = 5.0
#: Time without a pong after which the peer is declared dead (client-go: 12 x 5 s + 1 s).
DEFAULT_PONG_TIMEOUT: Final = 60.0
#: Seconds connecting, TLS and the upgrade may take, per attempt, unless told otherwise:
#: a silent server must not hang a client forever (client-go's dialer gives up after 30 s).
DEFAULT_CONNECT_TIMEOUT: Final = 30.0
#: Bytes a channel may hold unread before the adapter stops reading the socket.
DEFAULT_BUFFER_LIMIT: Final = 1 << 20

#: How long closing may take to send what is queued (and the close) before the
#: connection is closed forcefully.
CLOSE_GRACE: Final = 5.0
#: How long a server keeps reading (and discarding) after its last bytes, until the client
#: closes: closing a socket with unread input makes the kernel send a reset that can
#: destroy output still in flight (the Go peer's hijackedConn does the same, 2 s).
LINGER: Final = 2.0
#: Terminal sizes a server keeps when the handler does not read them (the latest win).
MAX_PENDING_RESIZES: Final = 64
#: Seconds a client has, from its connection (a TLS handshake included), to send its whole
#: request head; then the server drops it (Go's ReadHeaderTimeout, which apiservers set).
DEFAULT_HEAD_TIMEOUT: Final = 10.0
#: Connections of one server that may be waiting for their request head at once; past it
#: the oldest is dropped (see ``_runtime.core.PendingConnections``).
DEFAULT_MAX_PENDING: Final = 256
#: Bytes a transport may hold before what reads queue (pongs, ping echoes) stops going
#: into it: far above the high-water mark, which writers of data stop at (drain()).
REPLY_BACKLOG: Final = 1 << 20


# --------------------------------------------------------------------------- URLs


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where to connect, parsed from ``"http(s)://host[:port][/prefix]"``.

    Attributes:
        host: the host name or IP address (IPv6 without brackets).
        port: the TCP port (443 / 80 by default).
        tls: ``https`` was given.
        authority: the ``Host`` header value (port omitted when it is the default).
        prefix: a path prefix in front of ``/api/v1`` (``""`` usually; some proxies
            such as Rancher serve clusters under a prefix).
    """

    host: str
    port: int
    tls: bool
    authority: str
    prefix: str = ""


def parse_server(server: str) -> ServerAddress:
    """Parse a server URL as found in a kubeconfig.

    Args:
        server: ``"https://host:6443"``, ``"http://127.0.0.1:8001"``, ...

    Returns:
        The parsed address.

    Raises:
        ValueError: not an ``http`` or ``https`` URL with a host.
    """
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"server must be an http:// or https:// URL, not {server!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"server URL must not have a query or fragment: {server!r}")
    tls = parts.scheme == "https"
    default_port = 443 if tls else 80
    port = parts.port or default_port
    host = parts.hostname
    shown = _bracketed(host)
    authority = shown if port == default_port else f"{shown}:{port}"
    return ServerAddress(host=host, port=port, tls=tls, authority=authority,
                         prefix=parts.path.rstrip("/"))


def server_url(scheme: str, host: str, port: int) -> str:
    """Return ``scheme://host:port`` for a bound server (an IPv6 host in brackets).

    Args:
        scheme: ``"http"`` or ``"https"``.
        host: the bound address.
        port: the bound port.

    Returns:
        The URL clients connect to.
    """
    return f"{scheme}://{_bracketed(host)}:{port}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecOptions:
    """Every knob of an exec/attach session, validated once for both adapters.

    Attributes:
        stdin: send stdin.
        stdout: receive stdout.
        stderr: receive stderr; always ``False`` with a tty (kubectl does the same: the
            terminal merges stderr into stdout, and the kubelet rejects tty + stderr).
        tty: allocate a terminal.
        headers: extra request headers (``Authorization``, ...).
        transport: ``"auto"``, ``"websocket"`` or ``"spdy"``.
        protocols: a custom protocol list, or ``None`` for the ladder's defaults.
        fallback: move to the next transport when an upgrade is rejected.
        ping_interval: seconds between pings (``None`` or 0: no heartbeat).
        pong_timeout: seconds without a pong before :class:`PingTimeoutError`.
        connect_timeout: bound on TCP/TLS connect plus upgrade, per attempt (``None``:
            no bound).
        buffer_limit: unread bytes a channel may hold before reading stops.
    """

    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    transport: str = "auto"
    protocols: tuple[str, ...] | None = None
    fallback: bool = True
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    pong_timeout: float = DEFAULT_PONG_TIMEOUT
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    buffer_limit: int = DEFAULT_BUFFER_LIMIT

    @classmethod
    def build(cls, *, stdin: bool = False, stdout: bool = True, stderr: bool = True,
              tty: bool = False, headers: Sequence[tuple[str, str]] = (),
              transport: str = "auto", protocols: Sequence[str] | None = None,
              fallback: bool = True, ping_interval: float | None = DEFAULT_PING_INTERVAL,
              pong_timeout: float = DEFAULT_PONG_TIMEOUT,
              connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
              buffer_limit: int = DEFAULT_BUFFER_LIMIT) -> ExecOptions:
        """Validate and normalise the keyword arguments of ``open_exec``.

        Returns:
            The options.

        Raises:
            ValueError: an argument is out of range, or no stdio stream is requested.
        """
        check_transport(transport, TRANSPORTS)
        if tty:
            stderr = False
        if not (stdin or stdout or stderr):
            # The kubelet answers 400 when none is requested (protocol-notes §2.1).
            raise ValueError("at least one of stdin, stdout and stderr must be requested")
        check_flow_options(buffer_limit=buffer_limit, pong_timeout=pong_timeout,
                           ping_interval=ping_interval)
        if connect_timeout is not None and not (connect_timeout > 0
                                                and math.isfinite(connect_timeout)):
            raise ValueError("connect_timeout must be None or a positive number of seconds")
        if isinstance(protocols, str):
            raise ValueError("protocols must be a sequence of names, not a string")
        return cls(stdin=stdin, stdout=stdout, stderr=stderr, tty=tty,
                   headers=tuple((str(k), str(v)) for k, v in headers), transport=transport,
                   protocols=None if protocols is None else tuple(protocols),
                   fallback=fallback, ping_interval=ping_interval or None,
                   pong_timeout=pong_timeout, connect_timeout=connect_timeout,
                   buffer_limit=buffer_limit)


def check_transport(transport: str, choices: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``transport`` is one of ``choices``."""
    if transport not in choices:
        raise ValueError(f"transport must be one of {', '.join(choices)}, not {transport!r}")


def check_flow_options(*, buffer_limit: int, pong_timeout: float,
                       ping_interval: float | None) -> None:
    """Check the buffer limit and heartbeat options exec and port-forward share.

    Raises:
        ValueError: one is out of range.
    """
    if buffer_limit < 1:
        raise ValueError("buffer_limit must be positive")
    if not (pong_timeout > 0 and math.isfinite(pong_timeout)):
        raise ValueError("pong_timeout must be a positive number of seconds")
    if ping_interval is not None and (ping_interval < 0 or not math.isfinite(ping_interval)):
        raise ValueError("ping_interval must be None or a non-negative number of seconds")


# --------------------------------------------------------------------------- client


def pop_connection_arguments(
        given: dict[str, Any]) -> tuple[ssl.SSLContext | None, str | None, ProxyURL | None]:
    """Take ``ssl``, ``server_hostname`` and ``proxy`` out of a call's keyword arguments.

    Returns:
        The TLS context, the TLS server name and the parsed proxy (each ``None`` when
        not given).

    Raises:
        ValueError: an invalid proxy URL.
    """
    context = given.pop("ssl", None)
    server_hostname = given.pop("server_hostname", None)
    proxy_url = given.pop("proxy", None)
    proxy = None
    if proxy_url:
        from .proxy import parse_proxy_url  # loaded only when a proxy is used

        proxy = parse_proxy_url(proxy_url)
    return context, server_hostname, proxy


def client_ssl_context(address: ServerAddress,
                       context: ssl.SSLContext | None) -> ssl.SSLContext | None:
    """Return the TLS context of a client connection, or ``None`` for plain TCP.

    Args:
        address: where to connect (``https`` asks for TLS).
        context: the caller's context, if any.

    Returns:
        The caller's context as is (never modified: it may be shared; without ALPN,
        servers speak HTTP/1.1, which the upgrades need); else, for ``https``, the
        system's default context with ALPN ``http/1.1``.
    """
    if context is not None:
        return context
    if not address.tls:
        return None
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context
