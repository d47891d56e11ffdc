"""trio: open a stream to a server, directly or through a proxy."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

# Loaded only when a proxy is used: a direct connection imports nothing more.
if TYPE_CHECKING:
    import ssl

    from ._runtime.client import ExecRequest
    from ._runtime.portforward import PortForwardRequest
    from ._runtime.proxy import ProxyURL

__all__ = ["open_stream"]

_RECEIVE_SIZE = 16 * 1024


async def open_stream(request: ExecRequest | PortForwardRequest,
                      context: ssl.SSLContext | None) -> trio.abc.Stream:
    """A TCP stream to the server of ``request``, through its proxy if it has one.

    Args:
        request: the server's address and the proxy, if any.
        context: the server's TLS context (an https proxy is verified with it, as
            client-go does), ``None`` for plain HTTP.

    Returns:
        The stream; TLS to the server is the caller's to add.
    """
    address, proxy = request.address, request.proxy
    if proxy is None:
        return await trio.open_tcp_stream(address.host, address.port)
    if proxy.scheme == "socks5":
        return trio.SocketStream(await _socks5(proxy, address.host, address.port))
    import ssl

    from ._runtime.proxy import ConnectExchange, ProxyError

    stream: trio.abc.Stream = await trio.open_tcp_stream(proxy.host, proxy.port)
    try:
        if proxy.scheme == "https":
            tls = trio.SSLStream(stream, context or ssl.create_default_context(),
                                 server_hostname=proxy.host, https_compatible=True)
            stream = tls
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError as exc:  # trio's wrapper of the ssl error
                raise ProxyError(f"proxy {proxy.redacted()}: TLS: {exc.__cause__}") from exc
        exchange = ConnectExchange(proxy, address.host, address.port)
        await stream.send_all(exchange.request())
        while not exchange.receive_data(await stream.receive_some(_RECEIVE_SIZE)):
            pass
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream


async def _socks5(proxy: ProxyURL, host: str, port: int) -> trio.socket.SocketType:
    from python_socks.async_.trio import Proxy

    from ._runtime.proxy import connect_socks5

    return await connect_socks5(Proxy, proxy, host, port)
