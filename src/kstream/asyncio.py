"""asyncio adapter: run commands in pods (client) and serve exec/attach (server).

The client side is modelled on :mod:`asyncio.subprocess`::

    async with await kstream.asyncio.open_exec(
            "https://127.0.0.1:6443", "default", "web-0", ["sh", "-c", "cat"],
            stdin=True, headers=[("Authorization", f"Bearer {token}")], ssl=context) as proc:
        proc.stdin.write(b"hello\\n")
        proc.stdin.close()                 # the remote process reads EOF
        print(await proc.stdout.read())     # b"hello\\n"
        print(await proc.wait())            # 0

    completed = await kstream.asyncio.run(server, "default", "web-0", ["ls", "/"])

This module is thin on purpose: the protocol lives in the sans-IO session
(:mod:`kstream._exec.session`); here are only sockets, timers and waiting.

Implementation notes:

* Connections are :class:`asyncio.BufferedProtocol` objects (a ``StreamReader`` caps a
  loopback receive at a quarter of the speed), all reading into one 256 KiB buffer per
  thread (:func:`~kstream._runtime.buffers.shared_read_buffer`): an idle connection holds
  no receive buffer.
* Outgoing bytes are gathered and written once per loop iteration.
* Backpressure: each output channel holds at most ``buffer_limit`` unread bytes (plus
  what one socket read brings); beyond that the adapter stops reading the socket until
  the reader catches up. On one WebSocket (or SPDY connection) every channel shares the
  socket, so a reader that leaves stderr unread also stalls stdout: read both (or use
  :meth:`RemoteProcess.communicate`), as with :mod:`asyncio.subprocess`. While reading is
  stopped on purpose the pong deadline is suspended (pongs cannot be read either).
* Heartbeat: a ping every ``ping_interval`` seconds on both transports; no pong within
  ``pong_timeout`` ends the session with :class:`PingTimeoutError` (client-go: 5 s / 60 s).
* No task is created for a client session: everything runs from protocol callbacks and
  timer handles, so nothing is left behind when a session ends or is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as _ssl
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Unpack

from ._asyncio_client import ClientPump as _ClientPump
from ._asyncio_client import silence as _silence
from ._exec.fallback import Attempt
from ._exec.session import ClientExecSession
from ._resize import TerminalSize
from ._runtime import process as _process
from ._runtime.buffers import ReceiveBuffer, shared_read_buffer
from ._runtime.client import (
    OPEN_ATTACH_DOC,
    OPEN_EXEC_DOC,
    RUN_DOC,
    ExecArguments,
    ExecRequest,
    RunArguments,
    complete,
    documented,
    exec_request,
)
from ._runtime.core import ClientCore, ConnectionCore, ServerCore, ServerOptions
from ._runtime.errors import (
    CalledRemoteProcessError,
    CompletedExec,
    ConnectionLostError,
    IncompleteReadError,
    PingTimeoutError,
    RemoteCommandError,
)
from ._runtime.fallback import new_client_session, open_first_accepted
from ._runtime.lazy import asyncio_names as __getattr__  # noqa: F401  (port-forward)
from ._runtime.options import (
    CLOSE_GRACE,
    DEFAULT_BUFFER_LIMIT,
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_MAX_PENDING,
    LINGER,
    REPLY_BACKLOG,
    ExecOptions,
    client_ssl_context,
)
from ._runtime.process import RemoteOutput, RemoteStdin
from ._runtime.server import (
    SERVE_DOC,
    SERVER_LIMITS_DOC,
    ListeningAddress,
    ServerExec,
    ServerRequest,
)

if TYPE_CHECKING:  # the names __getattr__ lends, typed for checkers
    from ._asyncio_portforward import (
        PortForwardReader,
        PortForwardSession,
        PortForwardWriter,
        open_port_forward,
    )

__all__ = [
    "CalledRemoteProcessError",
    "CompletedExec",
    "ConnectionLostError",
    "ExecServer",
    "IncompleteReadError",
    "PingTimeoutError",
    "PortForwardReader",
    "PortForwardSession",
    "PortForwardWriter",
    "RemoteCommandError",
    "RemoteOutput",
    "RemoteProcess",
    "RemoteStdin",
    "ServerExec",
    "ServerRequest",
    "open_attach",
    "open_exec",
    "open_port_forward",
    "run",
    "start_server",
]

_log = logging.getLogger("kstream")


# --------------------------------------------------------------------------- shared I/O


class _Pump(ConnectionCore, asyncio.BufferedProtocol):
    """The asyncio side of both roles: reads, batched writes, drain, closing.

    Implements the hooks of :class:`~kstream._runtime.core.ConnectionCore` with the
    transport's callbacks, futures and ``call_soon``.

    Args:
        loop: the running loop.
        linger: a graceful close half-closes after the last bytes and reads (the role
            discards) until the peer closes, within
            :data:`~kstream._runtime.options.LINGER` (the server: the client may still
            be writing).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, linger: bool) -> None:
        self._loop = loop
        self._linger = linger
        self._transport: asyncio.Transport | None = None
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._writing_paused = False
        self._drain_waiters: deque[asyncio.Future[None]] = deque()
        self._flush_handle: asyncio.Handle | None = None
        self._eof_written = False
        self.lost: asyncio.Future[None] = loop.create_future()

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        # asyncio calls get_buffer, reads into it and calls buffer_updated in one go
        # (selector, proactor and SSL transports alike), and _receive consumes or copies
        # every byte before returning: the thread's one buffer serves every connection.
        return shared_read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self._receive(shared_read_buffer()[:nbytes])

    def eof_received(self) -> bool | None:
        self._receive(b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._on_lost(exc)
        self._writing_paused = False
        self._wake_drainers()
        if not self.lost.done():
            self.lost.set_result(None)
        # The transport and this protocol refer to each other: without this, each ended
        # connection (over TLS: with two 256 KiB buffers) waits for the cycle collector,
        # which a busy server runs seldom.
        self._transport = None

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._schedule_flush()  # what stayed queued in the session while paused
        self._wake_drainers()

    # -- writing

    def _now(self) -> float:
        return self._loop.time()

    async def _checkpoint(self) -> None:
        pass

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        data = self._data_to_send()
        transport = self._transport
        if (data and transport is not None and not transport.is_closing()
                and not self._eof_written):
            transport.write(data)

    def _flush_received(self) -> None:
        # After a read, write what it queued now. A transport holding far more than its
        # mark means a peer that does not read: replies stay in the session (bounded).
        transport = self._transport
        if (self._writing_paused and transport is not None and not transport.is_closing()
                and transport.get_write_buffer_size() > REPLY_BACKLOG):
            return
        self._flush()

    def _wake_drainers(self) -> None:
        while self._drain_waiters:
            waiter = self._drain_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def _drain(self) -> None:
        self._flush()
        while self._writing_paused and not self.lost.done():
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    # -- closing

    def _close(self, *, abort: bool) -> None:
        transport = self._transport
        if transport is not None:
            if abort:
                transport.abort()
            else:
                self._flush()
                transport.close()

    async def _close_transport(self, *, abort: bool = False) -> None:
        transport = self._transport
        if transport is None:
            return
        self._flush()
        if transport.is_closing():
            # Closed already: by the peer's reset, or an earlier close. (An SSL transport
            # whose connection is gone cannot even say how much it buffers.)
            pass
        elif abort:
            transport.abort()
        elif self._linger and transport.can_write_eof():
            await self._lingering_close(transport)
        # What is still buffered goes out within the grace period (TLS cannot half-close,
        # so this is its only way out); a peer that does not read gets no more time.
        elif transport.get_write_buffer_size() and not await self._drained(transport):
            transport.abort()
        else:
            transport.close()
        await self._settle(transport)

    async def _drained(self, transport: asyncio.Transport) -> bool:
        # With no high-water mark, resume_writing() is called once everything is sent.
        transport.set_write_buffer_limits(high=0)
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await self._drain()
        except TimeoutError:
            return False
        return not self.lost.done()

    async def _settle(self, transport: asyncio.Transport) -> None:
        done, _ = await asyncio.wait({self.lost}, timeout=CLOSE_GRACE)
        if not done:
            transport.abort()
            await asyncio.shield(self.lost)

    async def _lingering_close(self, transport: asyncio.Transport) -> None:
        # Send what is queued (within the grace period), half-close, and read on until
        # the peer closes: closing with its input unread would reset the connection.
        self._eof_written = True
        # With no high-water mark, resume_writing() is called once everything is sent.
        transport.set_write_buffer_limits(high=0)
        try:
            transport.write_eof()  # the shutdown(SHUT_WR) follows the last buffered byte
        except OSError:
            transport.abort()  # the client left already (ENOTCONN): nothing to linger for
            return
        self.set_unbounded()  # the role drops what comes in now
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await self._drain()
        except TimeoutError:
            transport.abort()  # the peer does not read
            return
        await asyncio.wait({self.lost}, timeout=LINGER)
        transport.close()

    # -- input buffers

    def _wake(self, key: int) -> None:
        waiter = self._waiters.get(key)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pause_reading(self) -> None:
        transport = self._transport
        if self._reading_paused or transport is None or transport.is_closing():
            return
        self._reading_paused = True
        transport.pause_reading()
        self._on_reading_paused()

    def _resume_reading(self) -> None:
        self._reading_paused = False
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()
        self._on_reading_resumed()

    async def _wait_input(self, key: int) -> ReceiveBuffer:
        buffer = self._inputs[key]
        while not buffer.finished:
            if key in self._waiters:
                raise RuntimeError("another coroutine is already waiting to read this channel")
            waiter = self._loop.create_future()
            self._waiters[key] = waiter
            try:
                await waiter
            finally:
                del self._waiters[key]
        return buffer


# --------------------------------------------------------------------------- client


class _ClientConnection(ClientCore, _ClientPump, _Pump):
    """One client session's protocol: the socket, the session, the buffers and timers."""

    def __init__(self, loop: asyncio.AbstractEventLoop, session: ClientExecSession,
                 options: ExecOptions) -> None:
        ClientCore.__init__(self, session, options)
        _Pump.__init__(self, loop, linger=False)
        _ClientPump.__init__(self, loop)

    def _set_done(self, error: BaseException | None) -> None:
        if error is None:
            self.done.set_result(None)
        else:
            if not self.ready.done():
                self.ready.set_exception(error)
            self.done.set_exception(error)
        self._stop_heartbeat()
        if error is not None:
            self._wake_drainers()

    def _on_upgrade_accepted(self) -> None:
        self._start_heartbeat()

    # -- what RemoteProcess calls

    async def wait_done(self) -> None:
        try:
            await asyncio.shield(self.done)
        except asyncio.CancelledError:
            raise
        except BaseException:
            await self.settle()
            raise
        await self.settle()

    async def settle(self) -> None:
        """Once the session is over, wait (bounded) until the socket is really closed."""
        transport = self._transport
        if transport is not None and transport.is_closing() and not self.lost.done():
            await self._settle(transport)


class RemoteProcess(_process.RemoteProcess):
    __doc__ = _process.RemoteProcess.__doc__

    _conn: _ClientConnection


async def _attempt(request: ExecRequest, attempt: Attempt, context: _ssl.SSLContext | None,
                   sock: socket.socket | None) -> _ClientConnection:
    session = new_client_session(request.address, request.target, attempt, request.options)
    protocol = _ClientConnection(asyncio.get_running_loop(), session, request.options)
    await protocol.connect(request, context, sock)
    return protocol


async def _open(request: ExecRequest, sock: socket.socket | None) -> RemoteProcess:
    context = client_ssl_context(request.address, request.ssl)

    def connect(attempt: Attempt) -> Awaitable[_ClientConnection]:
        return _attempt(request, attempt, context, sock)

    # A caller's socket serves one attempt only: after a rejection it is spent.
    connection = await open_first_accepted(request.options, connect, fallback=sock is None)
    return RemoteProcess(connection, request.command)


_SOCK_DOC = "sock: an already connected socket to use (one attempt only, no fallback)."


@documented(OPEN_EXEC_DOC, usage="", connection=_SOCK_DOC)
async def open_exec(server: str, namespace: str, pod: str, command: Sequence[str], *,
                    sock: socket.socket | None = None,
                    **arguments: Unpack[ExecArguments]) -> RemoteProcess:
    return await _open(exec_request(server, namespace, pod, command, arguments), sock)


@documented(OPEN_ATTACH_DOC)
async def open_attach(server: str, namespace: str, pod: str, *,
                      sock: socket.socket | None = None,
                      **arguments: Unpack[ExecArguments]) -> RemoteProcess:
    return await _open(exec_request(server, namespace, pod, None, arguments), sock)


@documented(RUN_DOC, like=":func:`subprocess.run`", timeout="",
            connection="sock: a connected socket.")
async def run(server: str, namespace: str, pod: str, command: Sequence[str], *,
              input: bytes | None = None, check: bool = False, timeout: float | None = None,
              sock: socket.socket | None = None,
              **arguments: Unpack[RunArguments]) -> CompletedExec:
    async with asyncio.timeout(timeout):
        process = await open_exec(server, namespace, pod, command, stdin=input is not None,
                                  sock=sock, **arguments)
        return await complete(process, input, check=check)


# --------------------------------------------------------------------------- server

Handler = Callable[["ServerRequest"], Awaitable[None]]


class _ServerConnection(ServerCore, _Pump):
    """One accepted TCP connection of :func:`start_server`."""

    def __init__(self, server: ExecServer) -> None:
        ServerCore.__init__(self, server.options)
        _Pump.__init__(self, server.loop, linger=True)
        self._server = server
        self.ready: asyncio.Future[None] = self._loop.create_future()
        _silence(self.ready)
        self._resize_waiter: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None
        self._deadline_handle: asyncio.TimerHandle | None = None
        self._head_handle: asyncio.TimerHandle | None = None
        # Over TLS: the TCP transport while the handshake runs (start_tls), so that a
        # handshake counts as pending and can be dropped like any idle client.
        self._raw: asyncio.Transport | None = None
        self._handshake: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._server.connections.add(self)
        self._head_handle = self._loop.call_later(self.head_timeout, self._head_deadline)
        context = self._server.ssl
        if context is None:
            super().connection_made(transport)
            self._accepted()
            return
        self._raw = transport
        self._accepted()
        if not self.closed:
            self._handshake = self._loop.create_task(self._start_tls(transport, context))

    async def _start_tls(self, raw: asyncio.Transport, context: _ssl.SSLContext) -> None:
        try:
            tls = await self._loop.start_tls(raw, self, context, server_side=True,
                                             ssl_handshake_timeout=self.head_timeout)
        except (OSError, _ssl.SSLError, TimeoutError, ConnectionError):
            raw.abort()  # a failed handshake (or a client that left): nothing to answer
            self._on_lost(None)
            return
        finally:
            self._handshake = None
        if tls is None or self.closed:
            if tls is not None:
                tls.abort()
            return
        self._raw = None
        super().connection_made(tls)

    def _head_deadline(self) -> None:
        self._head_handle = None
        self._head_deadline_passed()

    def _close(self, *, abort: bool) -> None:
        raw = self._raw
        if raw is not None and self._transport is None:
            raw.abort()  # still in the TLS handshake
            if self._handshake is not None:
                self._handshake.cancel()
            return
        super()._close(abort=abort)

    def eof_received(self) -> bool | None:
        self._receive(b"")
        # Before the upgrade, a client that half-closed may still read our answer.
        return self.session.transport is None and not self.closed

    def _set_ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _set_closed(self, error: BaseException) -> None:
        if not self.ready.done():
            self.ready.set_exception(error)
        if self._deadline_handle is not None:
            self._deadline_handle.cancel()
        if self._head_handle is not None:
            self._head_handle.cancel()
            self._head_handle = None

    def _start_handler(self, request: ServerRequest) -> None:
        if self._head_handle is not None:
            self._head_handle.cancel()
            self._head_handle = None
        self.task = self._server.spawn(self, request)

    def _on_lost(self, exc: BaseException | None) -> None:
        self._end(exc)
        self._server.connections.discard(self)

    def _wake_resizes(self) -> None:
        waiter = self._resize_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_resize(self) -> TerminalSize | None:
        while not self.resizes:
            if self.closed:
                return None
            self._resize_waiter = self._loop.create_future()
            try:
                await self._resize_waiter
            finally:
                self._resize_waiter = None
        return self.resizes.popleft()

    async def wait_ready(self) -> None:
        await asyncio.shield(self.ready)

    def arm_stream_deadline(self) -> None:
        timeout = self.stream_creation_timeout
        self._deadline_handle = self._loop.call_later(timeout + 0.001, self._check_deadline)

    def _check_deadline(self) -> None:
        self._deadline_handle = None
        if self._stream_deadline_passed() and self._transport is not None:
            self._transport.abort()

    async def close(self, *, abort: bool = False) -> None:
        self._end(None)
        await self._close_transport(abort=abort)


class ExecServer(ListeningAddress):
    """A running :func:`start_server`: an :class:`asyncio.Server` plus its sessions.

    Attributes:
        sockets: the listening sockets (``host``, ``port`` and ``url``: the first one's).
    """

    def __init__(self, handler: Handler, *, loop: asyncio.AbstractEventLoop,
                 options: ServerOptions, ssl: _ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.loop = loop
        self.options = options
        self.ssl = ssl
        self.connections: set[_ServerConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        return tuple(self.server.sockets) if self.server is not None else ()

    def _address(self) -> tuple[str, int]:
        host, port = self.sockets[0].getsockname()[:2]
        return str(host), int(port)

    def spawn(self, connection: _ServerConnection, request: ServerRequest) -> asyncio.Task[None]:
        """Start the handler task of one request (tracked until it ends)."""
        task = self.loop.create_task(self.run_handler(connection, request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def run_handler(self, connection: _ServerConnection, request: ServerRequest) -> None:
        """Run the handler for one request and make sure the request gets an end."""
        try:
            await connection.run_handler(self.handler, request)
        except asyncio.CancelledError:
            await connection.close(abort=True)
            raise

    def close(self) -> None:
        """Stop listening and end every session (handlers are cancelled)."""
        if self.server is not None:
            self.server.close()
        for task in self.tasks:
            task.cancel()
        for connection in list(self.connections):
            transport = connection._transport or connection._raw
            if transport is not None:
                transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the listener and every handler are done."""
        tasks = list(self.tasks)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    async def __aenter__(self) -> ExecServer:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
        await self.wait_closed()


@documented(SERVE_DOC, summary="Serve exec/attach (and any plain HTTP request) with ``handler``.",
            lifetime="", limits=SERVER_LIMITS_DOC, returns="""
    Returns:
        The running :class:`ExecServer` (an async context manager).
    """)
async def start_server(handler: Handler, *, host: str = "127.0.0.1", port: int = 0,
                       ssl: _ssl.SSLContext | None = None,
                       buffer_limit: int = DEFAULT_BUFFER_LIMIT,
                       websocket_protocols: Sequence[str] | None = None,
                       spdy_protocols: Sequence[str] | None = None,
                       stream_creation_timeout: float = 30.0,
                       head_timeout: float = DEFAULT_HEAD_TIMEOUT,
                       max_pending: int = DEFAULT_MAX_PENDING) -> ExecServer:
    loop = asyncio.get_running_loop()
    options = ServerOptions(buffer_limit=buffer_limit, websocket_protocols=websocket_protocols,
                            spdy_protocols=spdy_protocols,
                            stream_creation_timeout=stream_creation_timeout,
                            head_timeout=head_timeout, max_pending=max_pending)
    exec_server = ExecServer(handler, loop=loop, options=options, ssl=ssl)
    if ssl is not None:
        exec_server.scheme = "https"
    # TLS is started per connection (start_tls), after the connection counts as pending.
    exec_server.server = await loop.create_server(lambda: _ServerConnection(exec_server),
                                                  host, port)
    return exec_server
