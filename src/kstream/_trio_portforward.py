"""trio port-forward: ``kstream.trio.open_port_forward`` and its session.

The decisions live in :mod:`kstream._runtime.portforward` (written once for both
runtimes); here are only the trio pieces: the connection class (the core plus the exec
adapter's stream pump), connecting, the forwarded connection as a
:class:`trio.abc.HalfCloseableStream`, and the local listeners of
:meth:`PortForwardSession.listen`. ``kstream.trio`` re-exports the public names.

The session's tasks (each upgraded connection's I/O, the listeners and the forwarded
connections they accept) run in a nursery the session opens when it is entered with
``async with``, as a trio ``RemoteProcess`` does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Self, Unpack

import trio

from ._portforward.session import PortForwardClientConnection
from ._runtime.buffers import READ_SIZE, Heartbeat
from ._runtime.client import documented
from ._runtime.errors import ConnectionLostError, PingTimeoutError, PortForwardError
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
    ready_key,
)
from ._runtime.portforward import new_client_connection as _new_client_connection
from ._runtime.portforward_streams import (
    ErrorHandler,
    ForwardedConnection,
    PortForwardSessionBase,
    log_forward_error,
)
from ._trio_client import ClientPump, upgraded
from .trio import _Pump

__all__ = ["ForwardedStream", "PortForwardSession", "open_port_forward"]


class _ForwardConnection(ForwardClientCore, ClientPump, _Pump):
    """One upgraded port-forward connection: the stream, the session, buffers, heartbeat."""

    def __init__(self, stream: trio.abc.Stream, session: PortForwardClientConnection,
                 options: PortForwardOptions, port: int | None) -> None:
        ForwardClientCore.__init__(self, session, options, port)
        _Pump.__init__(self, stream, shield=True, linger=False)
        ClientPump.__init__(self)
        self._pending_heartbeat: Heartbeat | None = None

    def _set_done(self, error: BaseException | None) -> None:
        if not self.ready.is_set():
            self._ready_error = error or ConnectionLostError("closed")
            self.ready.set()

    def _arm_heartbeat(self, heartbeat: Heartbeat) -> None:
        # The upgrade happens before the pump runs: the heartbeat starts with its tasks.
        nursery = self._pump_nursery
        if nursery is None:
            self._pending_heartbeat = heartbeat
        else:
            nursery.start_soon(self._heartbeat_loop, heartbeat)

    def _start_tasks(self) -> None:
        heartbeat, self._pending_heartbeat = self._pending_heartbeat, None
        if heartbeat is not None:
            self._arm_heartbeat(heartbeat)

    def release(self, request_id: int) -> None:
        super().release(request_id)
        # The parking lots of its inputs go too: a long session sees many connections.
        self._readable.pop(request_id, None)
        self._readable.pop(ready_key(request_id), None)


class ForwardedStream(trio.abc.HalfCloseableStream):
    """A connection to a pod port, as a trio stream (``send_eof`` half-closes).

    Errors follow trio's stream contract (:class:`trio.BrokenResourceError`, chained to
    the cause: :class:`~kstream.PortForwardError` with the server's text when the pod
    port could not be reached; also in :attr:`error`).

    Attributes:
        port: the pod port.
        transport: ``"tunnel"``, ``"spdy"`` or ``"websocket"``.
    """

    def __init__(self, connection: ForwardedConnection) -> None:
        self._connection = connection
        self.port = connection.port
        self.transport = connection.transport
        self._sending = False

    @property
    def error(self) -> str | None:
        """The server's error text for this connection, if it sent one."""
        return self._connection.error

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` to the pod (returns once the connection took it)."""
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            if self._connection.closed:
                raise trio.ClosedResourceError("the stream was closed")
            with _broken():
                self._connection.write(data)
                await self._connection.drain()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the connection takes more."""
        with _broken():
            await self._connection.drain()

    async def send_eof(self) -> None:
        """Half-close: the pod reads EOF."""
        with _broken():
            self._connection.write_eof()
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Receive up to ``max_bytes`` from the pod; ``b""`` at its EOF."""
        if self._connection.closed:
            await trio.lowlevel.checkpoint()
            raise trio.ClosedResourceError("the stream was closed")
        with _broken():
            return await self._connection.read(max_bytes or READ_SIZE)

    async def aclose(self) -> None:
        """Close the connection (both ways)."""
        self._connection.close()
        await trio.lowlevel.checkpoint()


@contextlib.contextmanager
def _broken() -> Iterator[None]:
    try:
        yield
    except (ConnectionError, OSError, PingTimeoutError) as exc:
        raise trio.BrokenResourceError(str(exc)) from exc


class PortForwardSession(PortForwardSessionBase):
    """A port-forward session to one pod (see :func:`open_port_forward`).

    Enter it with ``async with`` before using it: its tasks run inside that block.

    Attributes:
        transport: ``"tunnel"``, ``"spdy"`` or ``"websocket"``.
        protocol: the negotiated protocol (WebSocket v4: after a first connection).
    """

    def __init__(self, request: PortForwardRequest) -> None:
        self._request = request
        self._context = client_ssl_context(request.address, request.ssl)
        super().__init__(PortForwardSessionCore(request, self._connect, trio.Lock()))
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: contextlib.AbstractAsyncContextManager[trio.Nursery] | None = None
        self._cores: list[_ForwardConnection] = []
        self._listeners: list[trio.SocketListener] = []

    async def _connect(self, transport: str, port: int | None) -> ForwardClientCore:
        request = self._request
        session = _new_client_connection(request, transport, port)
        connection = await upgraded(request, self._context, None, lambda stream: (
            _ForwardConnection(stream, session, request.options, port)))
        # Forget the connections whose I/O ended (WebSocket v4 makes one per connection).
        self._cores = [core for core in self._cores if not core.pump_done.is_set()]
        self._cores.append(connection)
        if self._nursery is not None:
            self._nursery.start_soon(connection.run_pump)
            connection.pump_started = True
        return connection

    def _require_block(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("enter the session with 'async with session:' first: its "
                               "connections' tasks run inside that block")
        return self._nursery

    async def open_connection(self, port: int) -> ForwardedStream:
        """Open a connection to ``port`` of the pod.

        Returns:
            A :class:`ForwardedStream` (:class:`trio.abc.HalfCloseableStream`).

        Raises:
            ConnectionLostError, UpgradeRejectedError, OSError: the port-forward
                connection could not be made.
        """
        self._require_block()
        return ForwardedStream(await self._open(port))

    @documented(LISTEN_DOC)
    async def listen(self, remote_port: int, *, host: str = "127.0.0.1", port: int = 0,
                     on_error: ErrorHandler | None = None,
                     on_accept: Callable[[int], None] | None = None) -> int:
        nursery = self._require_block()
        listeners = await trio.open_tcp_listeners(port, host=host)
        self._listeners.extend(listeners)
        handler = on_error or log_forward_error
        host_port: int = listeners[0].socket.getsockname()[1]

        async def forward(local: trio.SocketStream) -> None:
            if on_accept is not None:
                on_accept(host_port)
            await self._forward(local, remote_port, handler)

        for listener in listeners:
            nursery.start_soon(_serve_listener, forward, listener)
        return host_port

    async def _forward(self, local: trio.SocketStream, remote_port: int,
                       on_error: ErrorHandler) -> None:
        async with local:
            try:
                remote = await self.open_connection(remote_port)
            except Exception as exc:
                on_error(remote_port, exc)
                return
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_upload, local, remote)
                    await _download(remote, local)
                    # As kubectl: once the pod's side is done, the local connection closes.
                    nursery.cancel_scope.cancel()
            except Exception as exc:
                on_error(remote_port, _cause(exc))
            finally:
                await remote.aclose()

    async def aclose(self) -> None:
        """Close every connection and listener of the session."""
        for listener in self._listeners:
            with contextlib.suppress(Exception):
                await listener.aclose()
        self._core.close()
        with trio.CancelScope(shield=True):
            for core in self._cores:
                await core.aclose()

    async def __aenter__(self) -> Self:
        if self._nursery_manager is not None:
            raise RuntimeError("a PortForwardSession can be entered only once")
        manager = trio.open_nursery()
        self._nursery = await manager.__aenter__()
        self._nursery_manager = manager
        for core in self._cores:
            if not core.pump_started:
                self._nursery.start_soon(core.run_pump)
                core.pump_started = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        manager = self._nursery_manager
        nursery = self._nursery
        assert manager is not None and nursery is not None
        try:
            with trio.CancelScope(shield=True):
                await self.aclose()
        finally:
            # The block's own scope: the listeners and the forwarded connections end.
            nursery.cancel_scope.cancel()
            self._nursery = None
            # The block's exception is not handed to the nursery (it would come out
            # wrapped in an ExceptionGroup); its tasks end without raising.
            await manager.__aexit__(None, None, None)


async def _serve_listener(forward: Callable[[trio.SocketStream], Awaitable[None]],
                          listener: trio.SocketListener) -> None:
    try:
        await trio.serve_listeners(forward, [listener])
    except* trio.ClosedResourceError:
        pass  # the session closed its listeners


def _cause(exc: BaseException) -> BaseException:
    # What to report of a forwarded connection's failure: the one error inside a group,
    # and the kstream error behind trio's BrokenResourceError.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, trio.BrokenResourceError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


async def _upload(local: trio.SocketStream, remote: ForwardedStream) -> None:
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        while data := await local.receive_some(READ_SIZE):
            await remote.send_all(data)
        await remote.send_eof()


async def _download(remote: ForwardedStream, local: trio.SocketStream) -> None:
    while data := await remote.receive_some(READ_SIZE):
        await local.send_all(data)
    if remote.error is not None:
        raise PortForwardError(remote.error, port=remote.port)
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await local.send_eof()


@documented(OPEN_PORT_FORWARD_DOC, usage="""
    Use it as ``async with await open_port_forward(...) as session:``: its connections'
    tasks run in that block.
""", stream="a :class:`ForwardedStream`, a :class:`trio.abc.HalfCloseableStream`")
async def open_port_forward(server: str, namespace: str, pod: str,
                            **arguments: Unpack[PortForwardArguments]) -> PortForwardSession:
    session = PortForwardSession(port_forward_request(server, namespace, pod, arguments))
    await session._core.start()
    return session
