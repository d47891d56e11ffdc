"""trio adapter: run commands in pods (client) and serve exec/attach (server).

The same public shape as :mod:`kstream.asyncio` (see its example), modelled on
:mod:`subprocess`, with one difference: a process's I/O runs inside its ``async with``
block, so enter it before reading, waiting or draining::

    async with await kstream.trio.open_exec(server, "default", "web-0", ["cat"],
                                            stdin=True, ssl=context) as proc:
        proc.stdin.write(b"hello\\n")
        proc.stdin.close()
        assert await proc.stdout.read() == b"hello\\n" and await proc.wait() == 0

    # Serving, trio style:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(kstream.trio.serve, handler)
        print(server.url)

This module is thin on purpose: the protocol lives in the sans-IO session
(:mod:`kstream._exec.session`); here are only streams, tasks, timers and waiting.

Implementation notes:

* ``open_exec`` connects and runs the upgrade in the calling task. The connection's
  tasks (one receiving, one sending, one for the heartbeat) run in a nursery that the
  process opens when it is entered with ``async with`` and closes when the block ends:
  read, wait and drain need that block. They run shielded from the caller's
  cancellation so that leaving the block, cancelled or not, first sends the close
  (WebSocket close 1000, SPDY GOAWAY, bounded by a grace period) and then closes the
  stream: no task and no socket outlives the block.
* The receiving task reads 256 KiB at a time. On a plain TCP stream (POSIX) it reads
  straight into the thread's one receive buffer
  (:func:`~kstream._runtime.buffers.shared_read_buffer`) and feeds the session before it
  lets another task run, as the asyncio adapter does: no 256 KiB allocation per read,
  and no buffer held by an idle connection. Other streams (TLS, a caller's stream) use
  ``receive_some``. Outgoing bytes are gathered by the sans-IO session and written by
  the sending task with one ``send_all`` per wake-up.
* Backpressure: each output channel holds at most ``buffer_limit`` unread bytes (plus
  what one read brings); beyond that the receiving task stops reading until the reader
  catches up. On one WebSocket (or SPDY connection) every channel shares the stream, so
  a reader that leaves stderr unread also stalls stdout: read both (or use
  :meth:`RemoteProcess.communicate`). While reading is stopped on purpose the pong
  deadline is suspended (pongs cannot be read either).
* ``drain()`` returns once the sending task has taken everything written so far: at
  most one batch is in flight and one queued.
* Heartbeat: a ping every ``ping_interval`` seconds on both transports; no pong within
  ``pong_timeout`` ends the session with :class:`PingTimeoutError` (client-go: 5 s / 60 s).
"""

from __future__ import annotations

import contextlib
import logging
import os
import ssl as _ssl
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn, Self, Unpack

import trio

from ._exec.fallback import Attempt
from ._exec.session import ClientExecSession
from ._resize import TerminalSize
from ._runtime import process as _process
from ._runtime.buffers import READ_SIZE, Heartbeat, ReceiveBuffer, shared_read_buffer
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
from ._runtime.lazy import trio_names as __getattr__  # noqa: F401  (port-forward)
from ._runtime.options import (
    CLOSE_GRACE,
    DEFAULT_BUFFER_LIMIT,
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_MAX_PENDING,
    LINGER,
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
from ._trio_client import STREAM_ERRORS as _STREAM_ERRORS
from ._trio_client import ClientPump as _ClientPump
from ._trio_client import timeout as _timeout
from ._trio_client import upgraded as _upgraded

if TYPE_CHECKING:  # the names __getattr__ lends, typed for checkers
    from ._trio_portforward import ForwardedStream, PortForwardSession, open_port_forward

__all__ = [
    "CalledRemoteProcessError",
    "CompletedExec",
    "ConnectionLostError",
    "ExecServer",
    "ForwardedStream",
    "IncompleteReadError",
    "PingTimeoutError",
    "PortForwardSession",
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
    "serve",
    "serve_stream",
]

_log = logging.getLogger("kstream")

#: What a broken or closed stream raises (a caller's own stream may raise OSError).


def _plain_socket(stream: trio.abc.Stream) -> trio.socket.SocketType | None:
    """The socket of a plain TCP stream we can read into a buffer of ours, else None."""
    if type(stream) is trio.SocketStream and hasattr(os, "readv"):
        return stream.socket
    return None


async def _read_shared(sock: trio.socket.SocketType) -> memoryview:
    """Read what ``sock`` has into the thread's shared buffer; wait if it has nothing.

    The result is valid until the next read of any connection of the thread, so the
    caller consumes it before its next checkpoint. This returns without a checkpoint
    once the read succeeded (trio's own ``recv`` checkpoints after the read, where
    another connection could overwrite the buffer): the caller checkpoints after
    consuming it.

    Raises:
        trio.ClosedResourceError: the stream was closed.
        OSError: the read failed (the connection broke).
    """
    buffer = shared_read_buffer()
    while True:
        fd = sock.fileno()
        if fd < 0:
            raise trio.ClosedResourceError("the stream was closed")
        try:
            # readv(2) on a socket is recv(2) without flags; trio's socket has no
            # synchronous recv_into, and its async one checkpoints after reading.
            count = os.readv(fd, [buffer])
        except BlockingIOError:
            await trio.lowlevel.wait_readable(sock)
            continue
        return buffer[:count]


# --------------------------------------------------------------------------- shared I/O


class _Pump(ConnectionCore):
    """The trio side of both roles: the stream, the two I/O tasks, drain, closing.

    Implements the hooks of :class:`~kstream._runtime.core.ConnectionCore` with tasks,
    parking lots and cancel scopes.

    Args:
        stream: the connected stream; the pump owns it and closes it.
        shield: run the tasks shielded from outside cancellation (the client: its
            ``aclose`` sends the close first, then cancels them itself).
        linger: after the last bytes, half-close and read (discarding) until the peer
            closes, within :data:`~kstream._runtime.options.LINGER` (the server: the
            client may still be writing).
    """

    stream_errors = _STREAM_ERRORS

    def __init__(self, stream: trio.abc.Stream, *, shield: bool, linger: bool) -> None:
        self._stream = stream
        self._linger = linger
        self._receive_ended = trio.Event()
        self._readable = {key: trio.lowlevel.ParkingLot() for key in self._inputs}
        self._reading: set[int] = set()
        # Receiving: the task parks here while a buffer is over the limit.
        self._room = trio.lowlevel.ParkingLot()
        # Sending: writers bump _requested and wake the sender; drain() waits until the
        # sender has taken (pulled) the bytes of its generation.
        self._wake_sender = trio.lowlevel.ParkingLot()
        self._send_progress = trio.lowlevel.ParkingLot()
        self._requested = 0
        self._pulled = 0
        # Bytes the receiving side took from the session (see _flush_received),
        # sent before anything queued later.
        self._outbox: list[bytes] = []
        self._sending = False  # a send_all is under way
        self._send_finished = False
        self._send_scope = trio.CancelScope()
        self._closing = False
        self._scope = trio.CancelScope(shield=shield)
        self._pump_nursery: trio.Nursery | None = None
        self.pump_started = False
        self.pump_done = trio.Event()

    def _start_tasks(self) -> None:
        """Hook: start the role's own tasks next to the I/O tasks."""

    # -- the tasks

    async def run_pump(self) -> None:
        """Move bytes until the connection closes, then close the stream."""
        self.pump_started = True
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    self._pump_nursery = nursery
                    nursery.start_soon(self._receive_loop)
                    self._start_tasks()
                    await self._send_loop()
                    if self._linger and not self._send_scope.cancelled_caught:
                        await self._lingering_close()
                    nursery.cancel_scope.cancel()
                if not self._send_scope.cancelled_caught:
                    with trio.move_on_after(CLOSE_GRACE):
                        await self._stream.aclose()
        finally:
            self._pump_nursery = None
            try:
                # Outside the pump's scope: shielded, or a cancellation from outside
                # would skip pump_done (aclose_forcefully is a checkpoint).
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(self._stream)
            finally:
                self.pump_done.set()

    async def _send_loop(self) -> None:
        stream = self._stream
        try:
            with self._send_scope:
                while True:
                    generation = self._requested
                    data = self._take_output()
                    self._pulled = generation
                    self._send_progress.unpark_all()
                    if data:
                        # One send_all per wake-up: everything queued since the last.
                        self._sending = True
                        try:
                            await stream.send_all(data)
                        finally:
                            self._sending = False
                    elif self._closing:
                        return
                    else:
                        await self._wake_sender.park()
        except _STREAM_ERRORS as exc:
            self._on_lost(exc)
        except Exception as exc:  # a bug must end the session, not the caller's nursery
            _log.exception("kstream: sending failed")
            self._on_lost(exc)
        finally:
            self._send_finished = True
            self._send_progress.unpark_all()

    async def _lingering_close(self) -> None:
        stream = self._stream
        if not isinstance(stream, trio.abc.HalfCloseableStream):
            return
        with trio.move_on_after(LINGER):
            try:
                await stream.send_eof()
            except _STREAM_ERRORS:
                return
            await self._receive_ended.wait()

    async def _receive_loop(self) -> None:
        stream = self._stream
        sock = _plain_socket(stream)
        try:
            # While closing, a lingering pump reads on: the role drops what comes.
            while self._linger or not self._closing:
                if not (self._unbounded or self._closing) and self._over_limit():
                    await self._wait_for_room()
                    continue
                if sock is not None:
                    view = await _read_shared(sock)
                    self._receive(view)  # consumed before anything else runs
                    if not view:
                        return
                    # One scheduler pass per read, as receive_some makes (and a
                    # cancellation point).
                    await trio.lowlevel.checkpoint()
                    continue
                data = await stream.receive_some(READ_SIZE)
                self._receive(bytes(data))
                if not data:
                    return
        except _STREAM_ERRORS as exc:
            self._on_lost(exc)
        except Exception as exc:
            _log.exception("kstream: receiving failed")
            self._on_lost(exc)
        finally:
            self._receive_ended.set()

    async def _wait_for_room(self) -> None:
        self._reading_paused = True
        self._on_reading_paused()
        while not (self._closing or self._unbounded or self._below_low_water()):
            await self._room.park()
        self._reading_paused = False
        self._on_reading_resumed()

    def _pause_reading(self) -> None:
        pass  # the receiving task checks _over_limit() before each read

    def _resume_reading(self) -> None:
        self._room.unpark_all()

    # -- writing and closing

    def _now(self) -> float:
        return trio.current_time()

    async def _checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    def _request_flush(self) -> None:
        self._requested += 1
        self._wake_sender.unpark_all()

    # The sending task writes as soon as it runs: there is nothing to coalesce here.
    _flush = _schedule_flush = _request_flush

    def _take_output(self) -> bytes:
        """Everything to send now: what the receiving side took, then the session's."""
        data = self._data_to_send()
        outbox = self._outbox
        if outbox:
            outbox.append(data)
            data = b"".join(outbox)
            outbox.clear()
        return data

    def _flush_received(self) -> None:
        # While a send is under way, what a read queued (pongs, ping echoes) stays in the
        # session, where replies are bounded; taking it here would grow the outbox for
        # as long as the peer does not read.
        if self._sending:
            self._request_flush()
            return
        # Most reads queue nothing to send (no pong, no window update): waking the
        # sending task to find nothing would cost a task switch per read.
        data = self._data_to_send()
        if data:
            self._outbox.append(data)
            self._request_flush()

    async def _drain(self) -> None:
        self._request_flush()
        target = self._requested
        while self._pulled < target and not self._send_finished:
            await self._send_progress.park()
        await trio.lowlevel.checkpoint()

    def _begin_close(self) -> None:
        """Let the sender flush what is queued (within the grace period), then close."""
        if self._closing:
            return
        self._closing = True
        self._send_scope.deadline = trio.current_time() + CLOSE_GRACE
        self._wake_sender.unpark_all()
        self._room.unpark_all()

    def _close(self, *, abort: bool) -> None:
        self._begin_close()  # within the grace period, aborting or not

    # -- input buffers

    def _wake(self, key: int) -> None:
        readers = self._readable.get(key)  # keys may come and go (port-forward)
        if readers:  # unpark_all() costs microseconds even with nobody parked
            readers.unpark_all()

    async def _wait_input(self, key: int) -> ReceiveBuffer:
        buffer = self._inputs[key]
        if key in self._reading:
            raise trio.BusyResourceError("another task is already reading this channel")
        self._reading.add(key)
        try:
            if buffer.finished:
                await trio.lowlevel.checkpoint()
            while not buffer.finished:
                await self._readable.setdefault(key, trio.lowlevel.ParkingLot()).park()
        finally:
            self._reading.discard(key)
        return buffer


# --------------------------------------------------------------------------- client


class _ClientConnection(ClientCore, _ClientPump, _Pump):
    """One client session: the stream, the session, the buffers and the heartbeat."""

    def __init__(self, stream: trio.abc.Stream, session: ClientExecSession,
                 options: ExecOptions) -> None:
        ClientCore.__init__(self, session, options)
        _Pump.__init__(self, stream, shield=True, linger=False)
        _ClientPump.__init__(self)
        self.done = trio.Event()

    def _set_done(self, error: BaseException | None) -> None:
        if error is not None and not self.ready.is_set():
            self._ready_error = error
            self.ready.set()
        self.done.set()

    # -- heartbeat: a task next to the I/O tasks

    def _on_upgrade_accepted(self) -> None:
        pass  # the heartbeat starts with the connection's tasks

    def _start_tasks(self) -> None:
        self._start_heartbeat()

    def _arm_heartbeat(self, heartbeat: Heartbeat) -> None:
        assert self._pump_nursery is not None
        self._pump_nursery.start_soon(self._heartbeat_loop, heartbeat)

    # -- what RemoteProcess calls

    def require_pump(self) -> None:
        if not self.pump_started:
            raise RuntimeError("enter the process with 'async with process:' first: its "
                               "connection's tasks run inside that block")

    async def wait_done(self) -> None:
        self.require_pump()
        await self.done.wait()
        if self._error is not None:
            raise self._error


class RemoteProcess(_process.RemoteProcess):
    """A command running in a container, reached over one exec/attach session.

    Use it as an async context manager: the connection's tasks run inside the block,
    and leaving it closes the connection (the remote process then sees its stdin and
    the connection end). Attributes:

    * ``stdin`` (:class:`RemoteStdin`), ``stdout`` / ``stderr`` (:class:`RemoteOutput`);
    * ``transport`` (``"websocket"`` / ``"spdy"``), ``protocol`` (the negotiated name),
      ``version`` (remotecommand 1..5);
    * ``returncode`` and ``result`` once known;
    * ``command``: the argv (empty for attach).
    """

    _conn: _ClientConnection

    def __init__(self, connection: _ClientConnection, command: Sequence[str]) -> None:
        super().__init__(connection, command)
        self._nursery_manager: contextlib.AbstractAsyncContextManager[trio.Nursery] | None = None

    async def __aenter__(self) -> Self:
        if self._nursery_manager is not None or self._conn.pump_started:
            raise RuntimeError("a RemoteProcess can be entered only once")
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        self._nursery_manager = manager
        nursery.start_soon(self._conn.run_pump)
        self._conn.pump_started = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        manager = self._nursery_manager
        assert manager is not None
        try:
            await self.aclose()
        finally:
            # The block's own exception is not handed to the nursery: with strict
            # exception groups it would come out wrapped in an ExceptionGroup. The I/O
            # tasks are done by now and never raise, so the nursery ends empty.
            try:
                await manager.__aexit__(None, None, None)
            except BaseException as nursery_exc:
                if exc is None or not _only_cancelled(nursery_exc):
                    raise


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_cancelled(inner) for inner in exc.exceptions)
    return isinstance(exc, trio.Cancelled)


async def _attempt(request: ExecRequest, attempt: Attempt, context: _ssl.SSLContext | None,
                   stream: trio.abc.Stream | None) -> _ClientConnection:
    session = new_client_session(request.address, request.target, attempt, request.options)
    return await _upgraded(request, context, stream,
                           lambda connected: _ClientConnection(connected, session,
                                                               request.options))


async def _open(request: ExecRequest, stream: trio.abc.Stream | None) -> RemoteProcess:
    # With a caller's stream, TLS is the caller's business unless ssl= asks for it.
    context = request.ssl if stream is not None else client_ssl_context(request.address,
                                                                          request.ssl)
    # A caller's stream serves one attempt only: after a rejection it is spent.
    connection = await open_first_accepted(
        request.options, lambda attempt: _attempt(request, attempt, context, stream),
        fallback=stream is None)
    return RemoteProcess(connection, request.command)


_STREAM_DOC = """stream: an already connected :class:`trio.abc.Stream` to use (one attempt only,
            no fallback; the process owns and closes it). TLS is applied over it only
            when ``ssl`` is given; the URL then only names the ``Host`` header."""


@documented(OPEN_EXEC_DOC, connection=_STREAM_DOC, usage="""
    Use the result as ``async with await open_exec(...) as process:``: its I/O runs in
    that block.
""")
async def open_exec(server: str, namespace: str, pod: str, command: Sequence[str], *,
                    stream: trio.abc.Stream | None = None,
                    **arguments: Unpack[ExecArguments]) -> RemoteProcess:
    return await _open(exec_request(server, namespace, pod, command, arguments), stream)


@documented(OPEN_ATTACH_DOC)
async def open_attach(server: str, namespace: str, pod: str, *,
                      stream: trio.abc.Stream | None = None,
                      **arguments: Unpack[ExecArguments]) -> RemoteProcess:
    return await _open(exec_request(server, namespace, pod, None, arguments), stream)


@documented(RUN_DOC, like=":func:`trio.run_process`",
            timeout=(", as kstream.asyncio;\n            an enclosing :func:`trio.fail_after`"
                     " works too"),
            connection="stream: a connected :class:`trio.abc.Stream`.")
async def run(server: str, namespace: str, pod: str, command: Sequence[str], *,
              input: bytes | None = None, check: bool = False, timeout: float | None = None,
              stream: trio.abc.Stream | None = None,
              **arguments: Unpack[RunArguments]) -> CompletedExec:
    with _timeout(timeout, "the remote command"):
        process = await open_exec(server, namespace, pod, command, stdin=input is not None,
                                  stream=stream, **arguments)
        return await complete(process, input, check=check)


# --------------------------------------------------------------------------- server

Handler = Callable[["ServerRequest"], Awaitable[None]]
_Listener = trio.SocketListener | trio.SSLListener[trio.SocketStream]


class _ServerConnection(ServerCore, _Pump):
    """One accepted connection: its session, stdin buffer, resizes and handler."""

    def __init__(self, stream: trio.abc.Stream, handler: Handler,
                 options: ServerOptions) -> None:
        ServerCore.__init__(self, options)
        _Pump.__init__(self, stream, shield=False, linger=True)
        self._handler = handler
        self._ready = trio.Event()
        self._ready_error: BaseException | None = None
        self._resize_lot = trio.lowlevel.ParkingLot()
        self._nursery: trio.Nursery | None = None
        self._handler_started = False

    async def serve(self) -> None:
        """Run the connection (and its handler, once a request arrived) to the end."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._accepted()
            await self.run_pump()

    def _start_tasks(self) -> None:
        nursery = self._pump_nursery
        if nursery is not None and self.session.request is None:
            nursery.start_soon(self._head_deadline)

    async def _head_deadline(self) -> None:
        # Over TLS the handshake happens in the first read: the deadline covers it.
        await trio.sleep(self.head_timeout)
        self._head_deadline_passed()

    def _give_up(self, why: str) -> None:
        super()._give_up(why)
        self._scope.cancel()  # an idle client: nothing to send, nothing to wait for

    def _set_ready(self) -> None:
        self._ready.set()

    def _set_closed(self, error: BaseException) -> None:
        if not self._ready.is_set():
            self._ready_error = error
            self._ready.set()

    def _wake_resizes(self) -> None:
        self._resize_lot.unpark_all()

    def _start_handler(self, request: ServerRequest) -> None:
        assert self._nursery is not None
        self._handler_started = True
        self._nursery.start_soon(self.run_handler, self._handler, request)

    def _on_client_closed(self) -> None:
        if not self._handler_started:
            self._begin_close()  # nobody else will: the client left before asking

    def _on_lost(self, exc: BaseException | None) -> None:
        self._end(exc)
        self._begin_close()

    async def wait_ready(self) -> None:
        await self._ready.wait()
        if self._ready_error is not None:
            raise self._ready_error

    def arm_stream_deadline(self) -> None:
        nursery = self._pump_nursery
        if nursery is not None:
            nursery.start_soon(self._stream_deadline,
                               trio.current_time() + self.stream_creation_timeout)

    async def _stream_deadline(self, deadline: float) -> None:
        await trio.sleep_until(deadline + 0.001)
        if self._stream_deadline_passed():
            self._scope.cancel()

    async def next_resize(self) -> TerminalSize | None:
        while not self.resizes:
            if self.closed:
                await trio.lowlevel.checkpoint()
                return None
            await self._resize_lot.park()
        await trio.lowlevel.checkpoint()
        return self.resizes.popleft()

    async def close(self, *, abort: bool = False) -> None:
        self._end(None)
        if abort:
            self._scope.cancel()
        else:
            self._begin_close()
        await self.pump_done.wait()


class ExecServer(ListeningAddress):
    """What :func:`serve` hands to ``nursery.start``: where it listens (``host``, ``port``,
    ``url``).

    Attributes:
        listeners: the trio listeners (:class:`trio.SSLListener` over TCP with TLS).
        scheme: ``"http"`` or ``"https"``.
    """

    def __init__(self, listeners: Sequence[_Listener], scheme: str) -> None:
        self.listeners = list(listeners)
        self.scheme = scheme

    def _address(self) -> tuple[str, int]:
        first = self.listeners[0]
        listener = first.transport_listener if isinstance(first, trio.SSLListener) else first
        assert isinstance(listener, trio.SocketListener)
        host, port = listener.socket.getsockname()[:2]
        return str(host), int(port)


_SERVE_SUMMARY = "Serve exec/attach (and any plain HTTP request) with ``handler``, forever."


@documented("""Serve one already connected stream with ``handler``, until it is done.

    The low-level half of :func:`serve`, for servers that accept connections their own
    way. The stream is closed on return.

    Args:
        handler: the coroutine function serving the request (see :func:`serve`).
        stream: the connected :class:`trio.abc.Stream` (TLS already applied, if any).
        {limits}
    """, limits=SERVER_LIMITS_DOC)
async def serve_stream(handler: Handler, stream: trio.abc.Stream, *,
                       buffer_limit: int = DEFAULT_BUFFER_LIMIT,
                       websocket_protocols: Sequence[str] | None = None,
                       spdy_protocols: Sequence[str] | None = None,
                       stream_creation_timeout: float = 30.0,
                       head_timeout: float = DEFAULT_HEAD_TIMEOUT) -> None:
    options = ServerOptions(buffer_limit=buffer_limit,
                             websocket_protocols=websocket_protocols,
                             spdy_protocols=spdy_protocols,
                             stream_creation_timeout=stream_creation_timeout,
                             head_timeout=head_timeout)
    await _ServerConnection(stream, handler, options).serve()


@documented(SERVE_DOC, limits=SERVER_LIMITS_DOC, summary=_SERVE_SUMMARY, lifetime="""\
Start it with ``server = await nursery.start(serve, handler)``; cancel the nursery
    to stop it (handlers are cancelled, connections closed).
    """, returns="""\
        task_status: given by ``nursery.start``; receives the :class:`ExecServer`.
    """)
async def serve(handler: Handler, *, host: str = "127.0.0.1", port: int = 0,
                ssl: _ssl.SSLContext | None = None, buffer_limit: int = DEFAULT_BUFFER_LIMIT,
                websocket_protocols: Sequence[str] | None = None,
                spdy_protocols: Sequence[str] | None = None,
                stream_creation_timeout: float = 30.0,
                head_timeout: float = DEFAULT_HEAD_TIMEOUT,
                max_pending: int = DEFAULT_MAX_PENDING,
                task_status: trio.TaskStatus[ExecServer] = trio.TASK_STATUS_IGNORED,
                ) -> NoReturn:
    options = ServerOptions(buffer_limit=buffer_limit,
                             websocket_protocols=websocket_protocols,
                             spdy_protocols=spdy_protocols,
                             stream_creation_timeout=stream_creation_timeout,
                             head_timeout=head_timeout, max_pending=max_pending)
    tcp_listeners = await trio.open_tcp_listeners(port, host=host)
    listeners: list[_Listener]
    if ssl is not None:
        listeners = [trio.SSLListener(listener, ssl, https_compatible=True)
                     for listener in tcp_listeners]
    else:
        listeners = list(tcp_listeners)

    async def serve_one(stream: trio.abc.Stream) -> None:
        await _ServerConnection(stream, handler, options).serve()

    task_status.started(ExecServer(listeners, "https" if ssl is not None else "http"))
    await trio.serve_listeners(serve_one, listeners)
