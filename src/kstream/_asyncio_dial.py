"""asyncio: connect a client protocol to a server, directly or through a proxy.

The decisions and the CONNECT exchange are the runtime-neutral
:mod:`kstream._runtime.proxy`; this module and :mod:`kstream._trio_dial` only move its
bytes, one per runtime, so that each runtime calls one function to connect.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

# Loaded only when a proxy is used: a direct connection imports nothing more.
if TYPE_CHECKING:
    import ssl

    from ._runtime.client import ExecRequest
    from ._runtime.portforward import PortForwardRequest
    from ._runtime.proxy import ConnectExchange, ProxyURL

__all__ = ["connect"]


async def connect(loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol,
                  request: ExecRequest | PortForwardRequest, context: ssl.SSLContext | None,
                  hostname: str | None, sock: socket.socket | None) -> None:
    """Connect ``protocol`` to the server of ``request`` (``connection_made`` is called).

    Args:
        loop: the running loop.
        protocol: the client protocol.
        request: the server's address and the proxy, if any.
        context: TLS for the server, ``None`` for plain HTTP.
        hostname: the TLS server name.
        sock: the caller's connected socket (then no proxy applies).
    """
    address, proxy = request.address, request.proxy
    if sock is None and proxy is not None and proxy.scheme == "socks5":
        sock = await _socks5(proxy, address.host, address.port)
    if sock is not None:
        await loop.create_connection(lambda: protocol, sock=sock, ssl=context,
                                     server_hostname=hostname)
    elif proxy is None:
        await loop.create_connection(lambda: protocol, address.host, address.port,
                                     ssl=context, server_hostname=hostname)
    else:
        await _through_http_proxy(loop, protocol, proxy, request, context, hostname)


async def _socks5(proxy: ProxyURL, host: str, port: int) -> socket.socket:
    from python_socks.async_.asyncio import Proxy

    from ._runtime.proxy import connect_socks5

    return await connect_socks5(Proxy, proxy, host, port)


class _Tunnel(asyncio.Protocol):
    """Runs a :class:`ConnectExchange` on a transport to the proxy."""

    def __init__(self, exchange: ConnectExchange, done: asyncio.Future[None]) -> None:
        self._exchange = exchange
        self._done = done
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._exchange.request())

    def data_received(self, data: bytes) -> None:
        self._feed(data)

    def eof_received(self) -> bool | None:
        self._feed(b"")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        from ._runtime.proxy import ProxyError

        if not self._done.done():
            self._done.set_exception(exc or ProxyError("the proxy closed the connection"))

    def _feed(self, data: bytes) -> None:
        from ._runtime.proxy import ProxyError

        if self._done.done():
            return
        try:
            if self._exchange.receive_data(data):
                assert self.transport is not None
                self.transport.pause_reading()  # the server's bytes are the session's
                self._done.set_result(None)
        except ProxyError as exc:
            self._done.set_exception(exc)


async def _through_http_proxy(loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol,
                              proxy: ProxyURL, request: ExecRequest | PortForwardRequest,
                              context: ssl.SSLContext | None, hostname: str | None) -> None:
    import ssl

    from ._runtime.proxy import ConnectExchange, ProxyError

    address = request.address
    done: asyncio.Future[None] = loop.create_future()
    tunnel = _Tunnel(ConnectExchange(proxy, address.host, address.port), done)
    # client-go dials an https proxy with the server's TLS configuration.
    proxy_context = (context or ssl.create_default_context()) if proxy.scheme == "https" else None
    try:
        await loop.create_connection(lambda: tunnel, proxy.host, proxy.port, ssl=proxy_context,
                                     server_hostname=proxy.host if proxy_context else None)
    except ssl.SSLError as exc:
        raise ProxyError(f"proxy {proxy.redacted()}: TLS: {exc}") from exc
    transport = tunnel.transport
    assert transport is not None
    try:
        await done
        if context is not None:
            # TLS to the server inside the tunnel (inside TLS to an https proxy).
            tls = await loop.start_tls(transport, protocol, context, server_hostname=hostname)
            if tls is None:  # the connection was closed during the handshake
                raise ConnectionResetError("the connection closed during the TLS handshake")
            if proxy_context is not None:
                _mend_nested_tls_close(transport)
            transport = tls
        else:
            transport.set_protocol(protocol)
    except BaseException:
        transport.abort()
        raise
    protocol.connection_made(transport)
    if context is None:
        transport.resume_reading()  # paused when the tunnel opened; start_tls resumes it


def _mend_nested_tls_close(outer: asyncio.BaseTransport) -> None:
    """Let TLS inside an https proxy's TLS fail as a plain connection error on CPython 3.11.

    When the inner TLS fails (the server's last bytes arrive while it is shutting down), it
    force-closes its transport, the outer TLS; CPython 3.11's TLS transport then calls
    ``SSLProtocol._abort(exc)``, which takes no argument there, and the loop logs a
    ``TypeError`` traceback (fixed in 3.12). Aborting the outer TLS is what that call meant.
    """
    from asyncio import sslproto

    if sslproto.SSLProtocol._abort.__code__.co_argcount == 1:
        def force_close(exc: BaseException | None) -> None:
            outer.abort()  # type: ignore[attr-defined]
        outer._force_close = force_close  # type: ignore[attr-defined]
