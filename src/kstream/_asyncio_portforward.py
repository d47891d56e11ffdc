"""asyncio port-forward: ``kstream.asyncio.open_port_forward`` and its session.

The decisions live in :mod:`kstream._runtime.portforward` (written once for both
runtimes); here are only the asyncio pieces: the connection class (the core plus the
exec adapter's :class:`asyncio.BufferedProtocol` pump), connecting, and the local
listeners of :meth:`PortForwardSession.listen`. ``kstream.asyncio`` re-exports the public
names.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl as _ssl
from collections.abc import Callable
from types import TracebackType
from typing import Unpack

from ._asyncio_client import ClientPump
from ._portforward.session import PortForwardClientConnection
from ._runtime.buffers import READ_SIZE
from ._runtime.client import documented
from ._runtime.errors import PortForwardError
from ._runtime.options import client_ssl_context
from ._runtime.portforward import (
    LISTEN_DOC,
    OPEN_PORT_FORWARD_DOC,
    ForwardClientCore,
    PortForwardArguments,
    PortForwardOptions,
    PortForwardRequest,
    PortForwardSessionCore,
    port_forward_request,
)
from ._runtime.portforward import new_client_connection as _new_client_connection
from ._runtime.portforward_streams import (
    ErrorHandler,
    ForwardedConnection,
    PortForwardReader,
    PortForwardSessionBase,
    PortForwardWriter,
    log_forward_error,
)
from .asyncio import _Pump

__all__ = ["PortForwardReader", "PortForwardSession", "PortForwardWriter",
           "open_port_forward"]


class _ForwardConnection(ForwardClientCore, ClientPump, _Pump):
    """One upgraded port-forward connection: the socket, the session, buffers, timers."""

    def __init__(self, loop: asyncio.AbstractEventLoop, session: PortForwardClientConnection,
                 options: PortForwardOptions, port: int | None) -> None:
        ForwardClientCore.__init__(self, session, options, port)
        _Pump.__init__(self, loop, linger=False)
        ClientPump.__init__(self, loop)

    def _set_done(self, error: BaseException | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(error or ConnectionError("closed"))
        if not self.done.done():
            self.done.set_result(None)
        self._wake_drainers()


async def _connect(request: PortForwardRequest, context: _ssl.SSLContext | None,
                   transport: str, port: int | None) -> ForwardClientCore:
    session = _new_client_connection(request, transport, port)
    protocol = _ForwardConnection(asyncio.get_running_loop(), session, request.options, port)
    await protocol.connect(request, context, None)
    return protocol


class PortForwardSession(PortForwardSessionBase):
    """A port-forward session to one pod (see :func:`open_port_forward`).

    Attributes:
        transport: ``"tunnel"``, ``"spdy"`` or ``"websocket"``.
        protocol: the negotiated protocol (WebSocket v4: after a first connection).
    """

    def __init__(self, request: PortForwardRequest) -> None:
        context = client_ssl_context(request.address, request.ssl)
        super().__init__(PortForwardSessionCore(
            request, lambda transport, port: _connect(request, context, transport, port),
            asyncio.Lock()))
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections: set[ForwardedConnection] = set()

    async def open_connection(self, port: int) -> tuple[PortForwardReader, PortForwardWriter]:
        """Open a connection to ``port`` of the pod, as :func:`asyncio.open_connection`.

        Returns:
            ``(reader, writer)``; ``writer.write_eof()`` half-closes, ``writer.close()``
            ends the connection.

        Raises:
            ConnectionLostError, UpgradeRejectedError, OSError: the port-forward
                connection could not be made.
            PortForwardError: the server refused this connection.
        """
        connection = await self._open(port)
        return PortForwardReader(connection), PortForwardWriter(connection)

    @documented(LISTEN_DOC)
    async def listen(self, remote_port: int, *, host: str = "127.0.0.1", port: int = 0,
                     on_error: ErrorHandler | None = None,
                     on_accept: Callable[[int], None] | None = None) -> int:
        handler = on_error or log_forward_error
        bound: list[int] = []

        async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if on_accept is not None:
                on_accept(bound[0])
            # The work runs in a task of its own, which aclose() cancels: asyncio's
            # streams log an error when the callback's own task ends cancelled.
            task = asyncio.create_task(self._forward(reader, writer, remote_port, handler))
            self._tasks.add(task)
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
                writer.transport.abort()
            finally:
                self._tasks.discard(task)

        server = await asyncio.start_server(forward, host, port, limit=READ_SIZE)
        self._servers.append(server)
        bound.append(int(server.sockets[0].getsockname()[1]))
        return bound[0]

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       remote_port: int, on_error: ErrorHandler) -> None:
        try:
            connection = await self._open(remote_port)
        except Exception as exc:
            on_error(remote_port, exc)
            writer.transport.abort()
            return
        self._connections.add(connection)
        upload = asyncio.create_task(_upload(reader, connection))
        try:
            await _download(connection, writer)
        except Exception as exc:
            on_error(remote_port, exc)
            writer.transport.abort()
        finally:
            # As kubectl: once the pod's side is done, the local connection closes.
            upload.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await upload
            connection.close()
            self._connections.discard(connection)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def aclose(self) -> None:
        """Stop the listeners and close every connection of the session."""
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        for connection in list(self._connections):
            connection.close()
        for core in self._core.close():
            with contextlib.suppress(Exception):
                await core.aclose()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def __aenter__(self) -> PortForwardSession:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


async def _upload(reader: asyncio.StreamReader, connection: ForwardedConnection) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(READ_SIZE):
            connection.write(data)
            await connection.drain()
        connection.write_eof()


async def _download(connection: ForwardedConnection, writer: asyncio.StreamWriter) -> None:
    while data := await connection.read(READ_SIZE):
        writer.write(data)
        await writer.drain()
    if connection.error is not None:
        raise PortForwardError(connection.error, port=connection.port)
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()


@documented(OPEN_PORT_FORWARD_DOC, usage="""
    Use it as ``async with await open_port_forward(...) as session:``.
""", stream="a :class:`PortForwardReader` and :class:`PortForwardWriter` pair")
async def open_port_forward(server: str, namespace: str, pod: str,
                            **arguments: Unpack[PortForwardArguments]) -> PortForwardSession:
    session = PortForwardSession(port_forward_request(server, namespace, pod, arguments))
    await session._core.start()
    return session
