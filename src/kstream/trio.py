"""trio adapter: run commands in pods (client) and serve exec/attach (server).

The same public shape as :mod:`kstream.asyncio`, modelled on :mod:`subprocess`::

    async with await kstream.trio.open_exec(
            "https://127.0.0.1:6443", "default", "web-0", ["sh", "-c", "cat"],
            stdin=True, headers=[("Authorization", f"Bearer {token}")], ssl=context) as proc:
        proc.stdin.write(b"hello\\n")
        proc.stdin.close()                 # the remote process reads EOF
        print(await proc.stdout.read())     # b"hello\\n"
        print(await proc.wait())            # 0

    completed = await kstream.trio.run(server, "default", "web-0", ["ls", "/"])

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
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Final, NoReturn

import trio

from ._channels import STDERR, STDIN, STDOUT
from ._errors import KstreamError, LocalProtocolError, ProtocolError, UpgradeRejectedError
from ._events import (
    ChannelData,
    ChannelEnded,
    ConnectionClosed,
    Event,
    PongReceived,
    UpgradeRejected,
)
from ._exec.fallback import Attempt
from ._exec.session import (
    ClientExecSession,
    ExitStatusReceived,
    OutputEnded,
    RequestReceived,
    ServerExecSession,
    SessionReady,
    TerminalResized,
)
from ._resize import TerminalSize
from ._runtime.buffers import READ_SIZE, Heartbeat, ReceiveBuffer, shared_read_buffer
from ._runtime.common import attach_target, exec_target
from ._runtime.errors import (
    CalledRemoteProcessError,
    CompletedExec,
    ConnectionLostError,
    IncompleteReadError,
    PingTimeoutError,
    RemoteCommandError,
    connection_lost_error,
    outcome_returncode,
    receive_error,
)
from ._runtime.fallback import new_client_session, open_first_accepted
from ._runtime.options import (
    CLOSE_GRACE,
    DEFAULT_BUFFER_LIMIT,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PONG_TIMEOUT,
    LINGER,
    MAX_PENDING_RESIZES,
    ExecOptions,
    ServerAddress,
    client_ssl_context,
    parse_server,
    server_url,
)
from ._runtime.process import can_close_stdin
from ._runtime.server import accept_switches, handler_exit_status, handler_rejection
from ._status import Exited, Failed, Status

__all__ = [
    "CalledRemoteProcessError",
    "CompletedExec",
    "ConnectionLostError",
    "ExecServer",
    "IncompleteReadError",
    "PingTimeoutError",
    "RemoteCommandError",
    "RemoteOutput",
    "RemoteProcess",
    "RemoteStdin",
    "ServerExec",
    "ServerRequest",
    "open_attach",
    "open_exec",
    "run",
    "serve",
    "serve_stream",
]

_log = logging.getLogger("kstream")

#: What a broken or closed stream raises (a caller's own stream may raise OSError).
_STREAM_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


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


class _Pump:
    """What both roles share: the stream, the two I/O tasks, drain, input buffers.

    Args:
        stream: the connected stream; the pump owns it and closes it.
        buffer_limit: unread bytes an input channel may hold before reading stops.
        shield: run the tasks shielded from outside cancellation (the client: its
            ``aclose`` sends the close first, then cancels them itself).
        linger: after the last bytes, half-close and read (discarding) until the peer
            closes, within :data:`~kstream._runtime.options.LINGER` (the server: the
            client may still be writing).
    """

    def __init__(self, stream: trio.abc.Stream, buffer_limit: int, *, shield: bool,
                 linger: bool) -> None:
        self._stream = stream
        self._linger = linger
        self._receive_ended = trio.Event()
        self._buffer_limit = buffer_limit
        self._inputs: dict[int, ReceiveBuffer] = {}
        self._readable: dict[int, trio.lowlevel.ParkingLot] = {}
        self._reading: set[int] = set()
        # Receiving: the task parks here while a buffer is over the limit.
        self._room = trio.lowlevel.ParkingLot()
        self._reading_paused = False
        self._unbounded = False
        # Sending: writers bump _requested and wake the sender; drain() waits until the
        # sender has taken (pulled) the bytes of its generation.
        self._wake_sender = trio.lowlevel.ParkingLot()
        self._send_progress = trio.lowlevel.ParkingLot()
        self._requested = 0
        self._pulled = 0
        # Bytes the receiving side took from the session (see _send_after_receive),
        # sent before anything queued later.
        self._outbox: list[bytes] = []
        self._send_finished = False
        self._send_scope = trio.CancelScope()
        self._closing = False
        self._scope = trio.CancelScope(shield=shield)
        self._pump_nursery: trio.Nursery | None = None
        self.pump_started = False
        self.pump_done = trio.Event()

    def _set_inputs(self, keys: Sequence[int]) -> None:
        self._inputs = {key: ReceiveBuffer() for key in keys}
        self._readable = {key: trio.lowlevel.ParkingLot() for key in keys}

    # -- to be provided by the role

    def _data_to_send(self) -> bytes:
        raise NotImplementedError

    def _receive(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def _on_lost(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _start_tasks(self, nursery: trio.Nursery) -> None:
        """Hook: start the role's own tasks next to the I/O tasks."""

    def _on_reading_paused(self) -> None:
        """Hook: reading stopped because a buffer is full."""

    def _on_reading_resumed(self) -> None:
        """Hook: reading resumed."""

    # -- the tasks

    async def run_pump(self) -> None:
        """Move bytes until the connection closes, then close the stream."""
        self.pump_started = True
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    self._pump_nursery = nursery
                    nursery.start_soon(self._receive_loop)
                    self._start_tasks(nursery)
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
                        await stream.send_all(data)
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

    def _over_limit(self) -> bool:
        limit = self._buffer_limit
        return any(buffer.size > limit for buffer in self._inputs.values())

    def _below_low_water(self) -> bool:
        low_water = self._buffer_limit // 2
        return all(buffer.size <= low_water for buffer in self._inputs.values())

    def _maybe_resume_reading(self) -> None:
        if self._reading_paused and (self._unbounded or self._below_low_water()):
            self._room.unpark_all()

    # -- writing and closing

    def _request_flush(self) -> None:
        self._requested += 1
        self._wake_sender.unpark_all()

    def _take_output(self) -> bytes:
        """Everything to send now: what the receiving side took, then the session's."""
        data = self._data_to_send()
        outbox = self._outbox
        if outbox:
            outbox.append(data)
            data = b"".join(outbox)
            outbox.clear()
        return data

    def _send_after_receive(self) -> None:
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

    # -- input buffers

    def _feed_input(self, key: int, data: bytes) -> None:
        buffer = self._inputs.get(key)
        if buffer is not None:
            buffer.append(data)
            readers = self._readable[key]
            if readers:  # unpark_all() costs microseconds even with nobody parked
                readers.unpark_all()

    def _end_input(self, key: int, error: BaseException | None = None) -> None:
        buffer = self._inputs.get(key)
        if buffer is not None:
            buffer.end(error)
            self._readable[key].unpark_all()

    async def _wait_input(self, key: int) -> ReceiveBuffer:
        buffer = self._inputs[key]
        if key in self._reading:
            raise trio.BusyResourceError("another task is already reading this channel")
        self._reading.add(key)
        try:
            if buffer.finished:
                await trio.lowlevel.checkpoint()
            while not buffer.finished:
                await self._readable[key].park()
        finally:
            self._reading.discard(key)
        return buffer

    async def read(self, key: int, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n < 0``: until EOF) of input ``key``."""
        if n == 0:
            await trio.lowlevel.checkpoint()
            return b""
        if n > 0:
            buffer = await self._wait_input(key)
            data = buffer.take(n)
            self._maybe_resume_reading()
            return data
        pieces: list[bytes] = []
        while True:
            buffer = await self._wait_input(key)
            try:
                chunk = buffer.take()
            except Exception:
                # The session failed before EOF. Reading to EOF cannot succeed, but the
                # bytes taken so far must not be lost: they stay readable with read(n).
                buffer.unread(b"".join(pieces))
                raise
            self._maybe_resume_reading()
            if not chunk:
                return b"".join(pieces)
            pieces.append(chunk)

    async def readexactly(self, key: int, n: int) -> bytes:
        """Read exactly ``n`` bytes of input ``key``."""
        pieces: list[bytes] = []
        wanted = n
        while wanted > 0:
            chunk = await self.read(key, wanted)
            if not chunk:
                raise IncompleteReadError(b"".join(pieces), n)
            pieces.append(chunk)
            wanted -= len(chunk)
        return b"".join(pieces)

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet read, over every input channel."""
        return sum(b.size for b in self._inputs.values())

    @property
    def reading_paused(self) -> bool:
        """Whether the receiving task stopped reading because a buffer is full."""
        return self._reading_paused


# --------------------------------------------------------------------------- client


class _ClientConnection(_Pump):
    """One client session: the stream, the session, the buffers and the heartbeat."""

    def __init__(self, stream: trio.abc.Stream, session: ClientExecSession,
                 options: ExecOptions) -> None:
        super().__init__(stream, options.buffer_limit, shield=True, linger=False)
        self.session = session
        self.options = options
        self._set_inputs((STDOUT, STDERR))
        if not options.stdout:
            self._inputs[STDOUT].end()
        if not options.stderr:
            self._inputs[STDERR].end()
        self.ready = trio.Event()
        self.done = trio.Event()
        self._ready_error: BaseException | None = None
        self._error: BaseException | None = None
        self._heartbeat: Heartbeat | None = None
        self.result: Exited | Failed | None = None
        self.stdin_closed = not options.stdin

    # -- the upgrade, in the caller's task

    async def handshake(self) -> None:
        """Send the upgrade request and read until the session is ready.

        Raises:
            UpgradeRejectedError: the server refused the upgrade.
            ProtocolError: the server broke the protocol.
            ConnectionLostError: the stream ended or broke first.
        """
        stream = self._stream
        try:
            while not self.ready.is_set():
                out = self._take_output()
                if out:
                    await stream.send_all(out)
                data = await stream.receive_some(READ_SIZE)
                self._receive(bytes(data))
                if not data and not self.ready.is_set():
                    self._fail(ConnectionLostError("the connection closed during the upgrade"))
        except _STREAM_ERRORS as exc:
            self._on_lost(exc)
        if self._ready_error is not None:
            raise self._ready_error

    # -- session plumbing

    def _data_to_send(self) -> bytes:
        return self.session.data_to_send()

    def _receive(self, data: bytes | memoryview) -> None:
        if self.done.is_set():
            return
        try:
            events = self.session.receive_data(data)
        except ProtocolError as exc:
            self._request_flush()  # the answer (close 1002, GOAWAY) goes out first
            self._fail(receive_error(exc, at_eof=not data))
            return
        for event in events:
            self._handle(event)
        self._send_after_receive()

    def _handle(self, event: Event) -> None:
        if isinstance(event, ChannelData):
            self._feed_input(event.channel, event.data)
        elif isinstance(event, OutputEnded):
            self._end_input(event.channel)
            self._check_complete()
        elif isinstance(event, ExitStatusReceived):
            self.result = event.result
            self._check_complete()
        elif isinstance(event, PongReceived):
            if self._heartbeat is not None:
                self._heartbeat.pong(trio.current_time())
        elif isinstance(event, SessionReady):
            self.ready.set()
        elif isinstance(event, UpgradeRejected):
            self._fail(event.error)
        elif isinstance(event, ConnectionClosed):
            self._on_closed()

    def _on_closed(self) -> None:
        for key in self._inputs:
            self._end_input(key)
        if self.result is None:
            self._fail(ConnectionLostError("the connection closed without an exit status"))
        else:
            self._check_complete()

    def _check_complete(self) -> None:
        # Done when the outcome is known and both outputs ended (client-go waits for
        # stdout and stderr to reach EOF, then for the error stream: v2.go stream()).
        if self.result is None or self.done.is_set():
            return
        if not all(b.eof for b in self._inputs.values()):
            return
        self.done.set()
        with contextlib.suppress(ProtocolError):
            self.session.close()
        self._begin_close()

    def _fail(self, exc: BaseException) -> None:
        if self.done.is_set():
            return
        self._error = exc
        for key in self._inputs:
            self._end_input(key, exc)
        if not self.ready.is_set():
            self._ready_error = exc
            self.ready.set()
        self.done.set()
        self._begin_close()

    def _on_lost(self, exc: BaseException) -> None:
        if not self.done.is_set():
            self._fail(connection_lost_error(exc))

    # -- heartbeat

    def _start_tasks(self, nursery: trio.Nursery) -> None:
        interval = self.options.ping_interval
        if interval is not None and not self.done.is_set():
            self._heartbeat = Heartbeat(interval, self.options.pong_timeout,
                                        trio.current_time())
            nursery.start_soon(self._heartbeat_loop, self._heartbeat)

    async def _heartbeat_loop(self, heartbeat: Heartbeat) -> None:
        while not self.done.is_set():
            await trio.sleep_until(heartbeat.next_wakeup())
            now = trio.current_time()
            try:
                if heartbeat.poll(now):
                    self.session.ping(now)
                    self._request_flush()
            except PingTimeoutError as exc:
                self._fail(exc)
                return
            except ProtocolError:
                return  # the connection is closing; its end will be reported

    def _on_reading_paused(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.suspend()

    def _on_reading_resumed(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.resume(trio.current_time())

    # -- what RemoteProcess calls

    def require_pump(self) -> None:
        if not self.pump_started:
            raise RuntimeError("enter the process with 'async with process:' first: its "
                               "connection's tasks run inside that block")

    def write_stdin(self, data: bytes | bytearray | memoryview) -> None:
        if self.done.is_set():
            if self._error is not None:
                raise self._error
            return  # the process is gone; as Go's writers, drop the bytes
        if self.stdin_closed:
            raise LocalProtocolError("stdin is closed" if self.options.stdin
                                     else "stdin was not requested (pass stdin=True)")
        self.session.write_stdin(data)
        self._request_flush()

    def close_stdin(self) -> None:
        if self.stdin_closed or self.done.is_set():
            if not self.options.stdin:
                raise LocalProtocolError("stdin was not requested (pass stdin=True)")
            return
        self.session.close_stdin()
        self.stdin_closed = True
        self._request_flush()

    async def drain(self) -> None:
        self.require_pump()
        await self._drain()
        if self._error is not None:
            raise self._error

    def set_unbounded(self) -> None:
        self._unbounded = True
        self._room.unpark_all()

    async def wait_done(self) -> None:
        self.require_pump()
        await self.done.wait()

    async def aclose(self) -> None:
        if not self.done.is_set():
            with contextlib.suppress(ProtocolError):
                self.session.close()
            self._fail(LocalProtocolError("the session was closed before the remote process "
                                          "finished"))
        with trio.CancelScope(shield=True):
            if not self.pump_started:
                await trio.aclose_forcefully(self._stream)
                return
            with trio.move_on_after(CLOSE_GRACE):
                await self.pump_done.wait()
            self._scope.cancel()
            await self.pump_done.wait()


class RemoteStdin:
    """The remote process's standard input (write, drain, close)."""

    def __init__(self, connection: _ClientConnection) -> None:
        self._conn = connection

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` (sent in messages of at most 32 KiB; call :meth:`drain`).

        Bytes written after the remote process finished are dropped.

        Raises:
            LocalProtocolError: stdin was not requested or is closed.
            KstreamError: the session failed (its error).
        """
        self._conn.write_stdin(data)

    async def drain(self) -> None:
        """Wait until the connection's sending task has taken everything written.

        Raises:
            KstreamError: the session failed (its error).
            RuntimeError: the process was not entered with ``async with``.
        """
        await self._conn.drain()

    def close(self) -> None:
        """Half-close stdin: the remote process reads end-of-file.

        Raises:
            LocalProtocolError: the negotiated protocol cannot (WebSocket v4 and older:
                "the negotiated protocol X cannot half-close stdin; use v5.channel.k8s.io
                or SPDY"), or stdin was not requested.
        """
        self._conn.close_stdin()

    def can_close(self) -> bool:
        """Whether :meth:`close` is possible on the negotiated protocol."""
        return can_close_stdin(self._conn.session)

    def is_closing(self) -> bool:
        """Whether stdin was closed (or never requested)."""
        return self._conn.stdin_closed

    async def wait_closed(self) -> None:
        """Flush what was written (kept for the shape of :mod:`kstream.asyncio`)."""
        await self._conn.drain()


class RemoteOutput:
    """stdout or stderr of the remote process (read, read exactly, iterate in chunks)."""

    def __init__(self, connection: _ClientConnection, channel: int) -> None:
        self._conn = connection
        self._channel = channel

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes; with ``n < 0`` read until EOF. ``b""`` at EOF.

        Raises:
            KstreamError: the session failed before EOF (after the buffered bytes).
            trio.BusyResourceError: another task is reading this channel.
            RuntimeError: the process was not entered with ``async with``.
        """
        self._conn.require_pump()
        return await self._conn.read(self._channel, n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises:
            IncompleteReadError: EOF came first (``partial`` holds what was read).
            KstreamError: the session failed.
        """
        self._conn.require_pump()
        return await self._conn.readexactly(self._channel, n)

    def at_eof(self) -> bool:
        """Whether the channel ended and every byte was read."""
        buffer = self._conn._inputs[self._channel]
        return buffer.eof and not buffer.size

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.read(READ_SIZE):
            yield chunk


class RemoteProcess:
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

    def __init__(self, connection: _ClientConnection, command: Sequence[str]) -> None:
        self._conn = connection
        self.command = tuple(command)
        self.stdin = RemoteStdin(connection)
        self.stdout = RemoteOutput(connection, STDOUT)
        self.stderr = RemoteOutput(connection, STDERR)
        self._nursery_manager: contextlib.AbstractAsyncContextManager[trio.Nursery] | None = None

    def __repr__(self) -> str:
        return (f"<RemoteProcess {list(self.command)!r} {self.transport}/{self.protocol} "
                f"returncode={self.returncode}>")

    @property
    def transport(self) -> str:
        """``"websocket"`` or ``"spdy"``."""
        return self._conn.session.transport

    @property
    def protocol(self) -> str:
        """The negotiated subprotocol / stream protocol name."""
        return self._conn.session.protocol or ""

    @property
    def version(self) -> int:
        """The negotiated remotecommand version (1..5)."""
        return self._conn.session.version or 1

    @property
    def result(self) -> Exited | Failed | None:
        """The parsed exit status, once it arrived."""
        return self._conn.result

    @property
    def returncode(self) -> int | None:
        """The exit code once the process exited, else ``None`` (also for a failure)."""
        result = self._conn.result
        return result.code if isinstance(result, Exited) else None

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet read from stdout and stderr (bounded by the limit)."""
        return self._conn.buffered_bytes

    async def wait(self) -> int:
        """Wait for the session to end and return the exit code.

        Read stdout and stderr meanwhile (or use :meth:`communicate`): output nobody
        reads stops the connection at ``buffer_limit``, and the exit status comes after
        the output.

        Raises:
            RemoteCommandError: the command produced no exit code (binary not found...).
            PingTimeoutError: the peer stopped answering pings.
            ConnectionLostError: the connection ended before the exit status.
            RuntimeError: the process was not entered with ``async with``.
        """
        await self._conn.wait_done()
        if self._conn._error is not None:
            raise self._conn._error
        assert self._conn.result is not None
        return outcome_returncode(self._conn.result)

    async def resize(self, width: int, height: int) -> None:
        """Tell the remote terminal its new size (columns, rows); needs ``tty=True``.

        Raises:
            LocalProtocolError: no resize channel (SPDY v1/v2 or no tty) or bad sizes.
        """
        self._conn.session.resize(width, height)
        await self._conn.drain()

    async def communicate(self, input: bytes | None = None) -> tuple[bytes, bytes]:
        """Send ``input``, close stdin, read stdout and stderr to the end; wait.

        Like :meth:`subprocess.Popen.communicate`, the output is collected in memory
        without limit. Stdin is closed after ``input`` (and also without input when the
        protocol can); a :class:`RemoteCommandError` is left to :meth:`wait`.

        Returns:
            ``(stdout, stderr)``.

        Raises:
            LocalProtocolError: ``input`` given but stdin cannot be closed (WebSocket v4).
            PingTimeoutError, ConnectionLostError: the session failed.
        """
        self._conn.require_pump()
        self._conn.set_unbounded()
        if input is not None:
            self.stdin.write(input)
            await self.stdin.drain()
            self.stdin.close()
        elif not self.stdin.is_closing() and self.stdin.can_close():
            self.stdin.close()
        await self._conn.wait_done()
        return await self.stdout.read(), await self.stderr.read()

    async def aclose(self) -> None:
        """Close the connection (idempotent); the remote process sees the session end.

        Sends the close (within a grace period) even when cancelled.
        """
        await self._conn.aclose()

    async def __aenter__(self) -> RemoteProcess:
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


@contextlib.contextmanager
def _timeout(seconds: float | None, what: str) -> Iterator[None]:
    """Raise the built-in :class:`TimeoutError` (as kstream.asyncio) after ``seconds``."""
    if seconds is None:
        yield
        return
    with trio.move_on_after(seconds) as scope:
        yield
    if scope.cancelled_caught:
        raise TimeoutError(f"{what} took longer than {seconds:g} s")


async def _attempt(address: ServerAddress, target: str, attempt: Attempt,
                   options: ExecOptions, context: _ssl.SSLContext | None,
                   server_hostname: str | None, stream: trio.abc.Stream | None,
                   ) -> _ClientConnection:
    session = new_client_session(address, target, attempt, options)
    connected: trio.abc.Stream | None = stream
    try:
        with _timeout(options.connect_timeout, "connecting and upgrading"):
            if connected is None:
                connected = await trio.open_tcp_stream(address.host, address.port)
            if context is not None:
                tls = trio.SSLStream(connected, context,
                                     server_hostname=server_hostname or address.host,
                                     https_compatible=True)
                connected = tls
                await tls.do_handshake()
            connection = _ClientConnection(connected, session, options)
            await connection.handshake()
    except BaseException:
        if connected is not None:
            await trio.aclose_forcefully(connected)
        raise
    return connection


async def _open(server: str, target: str, command: Sequence[str], options: ExecOptions,
                context: _ssl.SSLContext | None, server_hostname: str | None,
                stream: trio.abc.Stream | None) -> RemoteProcess:
    address = parse_server(server)
    # With a caller's stream, TLS is the caller's business unless ssl= asks for it.
    context = context if stream is not None else client_ssl_context(address, context)

    def connect(attempt: Attempt) -> Awaitable[_ClientConnection]:
        return _attempt(address, target, attempt, options, context, server_hostname, stream)

    # A caller's stream serves one attempt only: after a rejection it is spent.
    connection = await open_first_accepted(options, connect, fallback=stream is None)
    return RemoteProcess(connection, command)


async def open_exec(server: str, namespace: str, pod: str, command: Sequence[str], *,
                    container: str | None = None, stdin: bool = False, stdout: bool = True,
                    stderr: bool = True, tty: bool = False,
                    headers: Sequence[tuple[str, str]] = (),
                    ssl: _ssl.SSLContext | None = None, server_hostname: str | None = None,
                    transport: str = "auto", protocols: Sequence[str] | None = None,
                    fallback: bool = True, ping_interval: float | None = DEFAULT_PING_INTERVAL,
                    pong_timeout: float = DEFAULT_PONG_TIMEOUT,
                    connect_timeout: float | None = None,
                    buffer_limit: int = DEFAULT_BUFFER_LIMIT,
                    stream: trio.abc.Stream | None = None) -> RemoteProcess:
    """Run ``command`` in a pod's container and return the running process.

    Use the result as ``async with await open_exec(...) as process:``: its I/O runs in
    that block.

    Args:
        server: the API server (or kubelet, or any exec endpoint), ``http(s)://host:port``.
        namespace: the pod's namespace.
        pod: the pod's name.
        command: the argv (no shell is involved unless the argv runs one).
        container: the container; ``None`` lets the server choose.
        stdin: send stdin.
        stdout: receive stdout.
        stderr: receive stderr (always off with ``tty``: a terminal merges it).
        tty: allocate a terminal (resize with :meth:`RemoteProcess.resize`).
        headers: extra request headers, e.g. ``[("Authorization", "Bearer ...")]``.
        ssl: the TLS context for ``https`` (default: the system's trust store, ALPN
            ``http/1.1``); used as given, never modified.
        server_hostname: the TLS server name, when not the URL's host.
        transport: ``"auto"`` (WebSocket, then SPDY), ``"websocket"`` or ``"spdy"``.
        protocols: a custom protocol list (see :func:`kstream._exec.fallback.plan`).
        fallback: try the next transport when an upgrade is rejected.
        ping_interval: seconds between pings; ``None`` disables the heartbeat.
        pong_timeout: seconds without a pong before :class:`PingTimeoutError`.
        connect_timeout: bound on connect + TLS + upgrade, per attempt.
        buffer_limit: unread bytes per output channel before reading stops.
        stream: an already connected :class:`trio.abc.Stream` to use (one attempt only,
            no fallback; the process owns and closes it). TLS is applied over it only
            when ``ssl`` is given; the URL then only names the ``Host`` header.

    Returns:
        The :class:`RemoteProcess`.

    Raises:
        UpgradeRejectedError: every attempt was rejected (the last one's, with the HTTP
            status and the decoded ``Status``).
        ValueError: invalid arguments.
        OSError, TimeoutError: connecting failed (no fallback on those).
    """
    options = ExecOptions.build(
        stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, headers=headers,
        transport=transport, protocols=protocols, fallback=fallback,
        ping_interval=ping_interval, pong_timeout=pong_timeout,
        connect_timeout=connect_timeout, buffer_limit=buffer_limit)
    address = parse_server(server)
    target = exec_target(namespace, pod, command, container=container, stdin=options.stdin,
                         stdout=options.stdout, stderr=options.stderr, tty=options.tty,
                         prefix=address.prefix)
    return await _open(server, target, command, options, ssl, server_hostname, stream)


async def open_attach(server: str, namespace: str, pod: str, *, container: str | None = None,
                      stdin: bool = False, stdout: bool = True, stderr: bool = True,
                      tty: bool = False, headers: Sequence[tuple[str, str]] = (),
                      ssl: _ssl.SSLContext | None = None, server_hostname: str | None = None,
                      transport: str = "auto", protocols: Sequence[str] | None = None,
                      fallback: bool = True,
                      ping_interval: float | None = DEFAULT_PING_INTERVAL,
                      pong_timeout: float = DEFAULT_PONG_TIMEOUT,
                      connect_timeout: float | None = None,
                      buffer_limit: int = DEFAULT_BUFFER_LIMIT,
                      stream: trio.abc.Stream | None = None) -> RemoteProcess:
    """Attach to the main process of a pod's container. Same arguments as :func:`open_exec`.

    Returns:
        The :class:`RemoteProcess` (``command`` is empty).
    """
    options = ExecOptions.build(
        stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, headers=headers,
        transport=transport, protocols=protocols, fallback=fallback,
        ping_interval=ping_interval, pong_timeout=pong_timeout,
        connect_timeout=connect_timeout, buffer_limit=buffer_limit)
    address = parse_server(server)
    target = attach_target(namespace, pod, container=container, stdin=options.stdin,
                           stdout=options.stdout, stderr=options.stderr, tty=options.tty,
                           prefix=address.prefix)
    return await _open(server, target, (), options, ssl, server_hostname, stream)


async def run(server: str, namespace: str, pod: str, command: Sequence[str], *,
              input: bytes | None = None, check: bool = False, timeout: float | None = None,
              container: str | None = None, stdout: bool = True, stderr: bool = True,
              tty: bool = False, headers: Sequence[tuple[str, str]] = (),
              ssl: _ssl.SSLContext | None = None, server_hostname: str | None = None,
              transport: str = "auto", protocols: Sequence[str] | None = None,
              fallback: bool = True, ping_interval: float | None = DEFAULT_PING_INTERVAL,
              pong_timeout: float = DEFAULT_PONG_TIMEOUT, connect_timeout: float | None = None,
              buffer_limit: int = DEFAULT_BUFFER_LIMIT,
              stream: trio.abc.Stream | None = None) -> CompletedExec:
    """Run a command to completion and collect its output, like :func:`trio.run_process`.

    Args:
        input: bytes for stdin (stdin is requested, and closed after them, only then).
        check: raise :class:`CalledRemoteProcessError` on a non-zero exit code.
        timeout: overall deadline in seconds (:class:`TimeoutError`, as kstream.asyncio;
            an enclosing :func:`trio.fail_after` works too).
        server: see :func:`open_exec` for this and every other argument.
        namespace: the pod's namespace.
        pod: the pod's name.
        command: the argv.
        container: the container.
        stdout: capture stdout.
        stderr: capture stderr.
        tty: allocate a terminal.
        headers: extra request headers.
        ssl: TLS context.
        server_hostname: TLS server name.
        transport: transport preference.
        protocols: custom protocol list.
        fallback: fall back between transports.
        ping_interval: heartbeat period.
        pong_timeout: pong deadline.
        connect_timeout: connect + upgrade bound.
        buffer_limit: per-channel buffer limit while connecting (the output is then
            collected whole).
        stream: a connected :class:`trio.abc.Stream`.

    Returns:
        The :class:`CompletedExec`.

    Raises:
        CalledRemoteProcessError: ``check`` and a non-zero exit code.
        RemoteCommandError: the command produced no exit code.
        UpgradeRejectedError, PingTimeoutError, ConnectionLostError, TimeoutError.
    """
    with _timeout(timeout, "the remote command"):
        process = await open_exec(
            server, namespace, pod, command, container=container, stdin=input is not None,
            stdout=stdout, stderr=stderr, tty=tty, headers=headers, ssl=ssl,
            server_hostname=server_hostname, transport=transport, protocols=protocols,
            fallback=fallback, ping_interval=ping_interval, pong_timeout=pong_timeout,
            connect_timeout=connect_timeout, buffer_limit=buffer_limit, stream=stream)
        async with process:
            out, err = await process.communicate(input)
            code = await process.wait()
            result = process.result
    assert isinstance(result, Exited)
    completed = CompletedExec(tuple(command), code, out, err, result)
    if check:
        completed.check_returncode()
    return completed


# --------------------------------------------------------------------------- server


Handler = Callable[["ServerRequest"], Awaitable[None]]
_Listener = trio.SocketListener | trio.SSLListener[trio.SocketStream]


class _ServerOptions:
    """The per-server settings every connection of :func:`serve` shares."""

    def __init__(self, *, buffer_limit: int, websocket_protocols: Sequence[str] | None,
                 spdy_protocols: Sequence[str] | None, stream_creation_timeout: float) -> None:
        if buffer_limit < 1:
            raise ValueError("buffer_limit must be positive")
        self.buffer_limit = buffer_limit
        self.websocket_protocols = websocket_protocols
        self.spdy_protocols = spdy_protocols
        self.stream_creation_timeout = stream_creation_timeout


class _ServerConnection(_Pump):
    """One accepted connection: its session, stdin buffer, resizes and handler."""

    def __init__(self, stream: trio.abc.Stream, handler: Handler,
                 options: _ServerOptions) -> None:
        super().__init__(stream, options.buffer_limit, shield=False, linger=True)
        self._handler = handler
        self._options = options
        self.session = ServerExecSession(
            websocket_protocols=options.websocket_protocols,
            spdy_protocols=options.spdy_protocols,
            stream_creation_timeout=options.stream_creation_timeout)
        self._set_inputs((STDIN,))
        self._ready = trio.Event()
        self._ready_error: BaseException | None = None
        self.resizes: deque[TerminalSize] = deque(maxlen=MAX_PENDING_RESIZES)
        self._resize_lot = trio.lowlevel.ParkingLot()
        self.closed = False
        self.finished = False
        self._nursery: trio.Nursery | None = None
        self._handler_started = False

    async def serve(self) -> None:
        """Run the connection (and its handler, once a request arrived) to the end."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self.run_pump()

    # -- session plumbing

    def _data_to_send(self) -> bytes:
        return self.session.data_to_send()

    def _receive(self, data: bytes | memoryview) -> None:
        if self.closed:
            return
        try:
            events = self.session.receive_data(data)
        except ProtocolError as exc:
            _log.debug("closing a connection: %s", exc)
            self._end(exc)
            self._begin_close()  # after the queued answer (400, close 1002, GOAWAY)
            return
        for event in events:
            self._handle(event)
        self._send_after_receive()

    def _handle(self, event: Event) -> None:
        if isinstance(event, ChannelData):
            self._feed_input(STDIN, event.data)
        elif isinstance(event, ChannelEnded):
            self._end_input(STDIN)
        elif isinstance(event, TerminalResized):
            self.resizes.append(TerminalSize(event.width, event.height))
            self._resize_lot.unpark_all()
        elif isinstance(event, SessionReady):
            self._ready.set()
        elif isinstance(event, RequestReceived):
            assert self._nursery is not None
            self._handler_started = True
            self._nursery.start_soon(self._run_handler, ServerRequest(self, event))
        elif isinstance(event, ConnectionClosed):
            self._end(None)
            if not self._handler_started:
                self._begin_close()  # nobody else will: the client left before asking

    def _end(self, error: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._end_input(STDIN)
        self._resize_lot.unpark_all()
        if not self._ready.is_set():
            self._ready_error = error or ConnectionLostError(
                "the client went away before the session started")
            self._ready.set()

    def _on_lost(self, exc: BaseException) -> None:
        self._end(exc)
        self._begin_close()

    # -- the handler's side

    async def _run_handler(self, request: ServerRequest) -> None:
        try:
            await self._handler(request)
        except Exception as exc:
            _log.exception("exec handler failed for %s", request.target)
            await self._end_request(request, exc)
        else:
            await self._end_request(request, None)

    async def _end_request(self, request: ServerRequest, error: Exception | None) -> None:
        with contextlib.suppress(KstreamError, *_STREAM_ERRORS):
            if not self.session.answered:
                await request.reject(*handler_rejection(error))
            elif request.exec is not None and not self.finished:
                await request.exec.exit(handler_exit_status(error))
        await self.close()

    async def wait_ready(self) -> None:
        await self._ready.wait()
        if self._ready_error is not None:
            raise self._ready_error

    def start_stream_deadline(self) -> None:
        nursery = self._pump_nursery
        if nursery is not None:
            nursery.start_soon(self._stream_deadline,
                               trio.current_time() + self._options.stream_creation_timeout)

    async def _stream_deadline(self, deadline: float) -> None:
        await trio.sleep_until(deadline + 0.001)
        if self.session.check_deadline(trio.current_time()):
            # waitForStreams gives up and returns without writing anything.
            self._end(ConnectionLostError("the client did not create its streams in time"))
            self._scope.cancel()

    async def next_resize(self) -> TerminalSize | None:
        while not self.resizes:
            if self.closed:
                await trio.lowlevel.checkpoint()
                return None
            await self._resize_lot.park()
        await trio.lowlevel.checkpoint()
        return self.resizes.popleft()

    def queue_flush(self) -> None:
        self._request_flush()

    async def drain(self) -> None:
        await self._drain()

    async def close(self, *, abort: bool = False) -> None:
        self._end(None)
        if abort:
            self._scope.cancel()
        else:
            self._begin_close()
        await self.pump_done.wait()


class ServerRequest:
    """One HTTP request to the server; answer it with exactly one of the three calls.

    Attributes:
        method: ``GET``, ``POST``, ...
        target: the raw request target.
        path: the target's path.
        query: the decoded query parameters, in order.
        headers: every header, names lower-cased, in order.
        upgrade: ``"websocket"``, ``"spdy"`` or ``None``.
        protocols: the protocols the client offered.
    """

    def __init__(self, connection: _ServerConnection, event: RequestReceived) -> None:
        self._conn = connection
        self.method = event.method
        self.target = event.target
        self.path = event.path
        self.query = event.query
        self.headers = event.headers
        self.upgrade = event.upgrade
        self.protocols = event.protocols
        self.exec: ServerExec | None = None

    def __repr__(self) -> str:
        return f"<ServerRequest {self.method} {self.target} upgrade={self.upgrade}>"

    @property
    def answered(self) -> bool:
        """Whether respond(), reject() or accept() was called."""
        return self._conn.session.answered

    async def respond(self, status: int, headers: Sequence[tuple[str, str]] = (),
                      body: bytes = b"") -> None:
        """Answer with a plain HTTP response and close the connection.

        Raises:
            LocalProtocolError: already answered.
        """
        self._conn.session.respond(status, headers, body)
        await self._conn.close()

    async def reject(self, status_code: int = 403, message: str = "") -> None:
        """Refuse with a ``metav1.Status`` body (what kubectl prints) and close.

        Raises:
            LocalProtocolError: already answered, or a status outside 400..599.
        """
        self._conn.session.reject(status_code, message)
        await self._conn.close()

    async def accept(self, *, stdin: bool | None = None, stdout: bool | None = None,
                     stderr: bool | None = None, tty: bool | None = None) -> ServerExec:
        """Accept the upgrade and wait until the session carries data.

        Each switch defaults to the request's query parameter of the same name.

        Returns:
            The :class:`ServerExec`.

        Raises:
            UpgradeRejectedError: no protocol in common (a 403 was sent; closed).
            ConnectionLostError: the client went away or did not create its streams.
            LocalProtocolError: not an upgrade request, already answered, or nothing
                requested.
        """
        conn = self._conn
        switches = accept_switches(self.query, stdin=stdin, stdout=stdout, stderr=stderr,
                                   tty=tty)
        try:
            events = conn.session.accept(**switches, now=trio.current_time())
        except (UpgradeRejectedError, ProtocolError):
            if conn.session.answered:
                await conn.close()  # after the queued 403 (or 400) went out
            raise
        for event in events:
            conn._handle(event)
        conn.queue_flush()
        if conn.session.transport == "spdy":
            conn.start_stream_deadline()
        await conn.wait_ready()
        if not switches["stdin"]:
            conn._end_input(STDIN)
        self.exec = ServerExec(conn, stdin=switches["stdin"], tty=switches["tty"])
        return self.exec


class ServerExec:
    """The server side of an accepted exec/attach session.

    Read stdin with :meth:`read_stdin` (or iterate :attr:`stdin`), write output with
    :meth:`write_stdout` / :meth:`write_stderr` and :meth:`drain`, follow terminal sizes
    with ``async for size in session.resizes``, and end with :meth:`exit`.

    Attributes:
        transport: ``"websocket"`` or ``"spdy"``.
        protocol: the negotiated protocol name.
        version: the remotecommand version (1..5).
        has_stdin: the client sends stdin.
        tty: the session has a terminal.
    """

    def __init__(self, connection: _ServerConnection, *, stdin: bool, tty: bool) -> None:
        self._conn = connection
        self.has_stdin = stdin
        session = connection.session
        self.transport = session.transport or ""
        self.protocol = session.protocol or ""
        self.version = session.version or 1
        self.tty = tty
        self.stdin = _ServerStdin(connection)

    @property
    def closed(self) -> bool:
        """Whether the client is gone (or the session finished)."""
        return self._conn.closed or self._conn.finished

    async def read_stdin(self, max_bytes: int = READ_SIZE) -> bytes:
        """Return the next stdin bytes (at most ``max_bytes``); ``b""`` at stdin EOF.

        EOF comes when the client closes stdin (v5 CLOSE, SPDY FIN) or goes away.
        """
        with contextlib.suppress(KstreamError, *_STREAM_ERRORS):
            return await self._conn.read(STDIN, max_bytes)
        return b""

    def write_stdout(self, data: bytes | bytearray | memoryview) -> None:
        """Queue process output for stdout (dropped once the client is gone)."""
        if not self.closed:
            self._conn.session.send_stdout(data)
            self._conn.queue_flush()

    def write_stderr(self, data: bytes | bytearray | memoryview) -> None:
        """Queue process output for stderr (dropped once the client is gone)."""
        if not self.closed:
            self._conn.session.send_stderr(data)
            self._conn.queue_flush()

    async def drain(self) -> None:
        """Wait until the sending task took the output (at once once the client is gone)."""
        await self._conn.drain()

    @property
    def resizes(self) -> AsyncIterator[TerminalSize]:
        """The client's terminal sizes, in order; ends when the connection does."""
        return self._resizes()

    async def _resizes(self) -> AsyncIterator[TerminalSize]:
        while (size := await self._conn.next_resize()) is not None:
            yield size

    async def exit(self, status: Status) -> None:
        """Send the exit status, end the session as the kubelet does, close the stream.

        Does nothing more if the client is already gone.

        Raises:
            LocalProtocolError: the session already finished.
        """
        conn = self._conn
        if conn.finished:
            raise LocalProtocolError("the session already finished")
        conn.finished = True
        if not conn.closed:
            with contextlib.suppress(ProtocolError):
                conn.session.exit(status)
        await conn.close()

    async def abort(self) -> None:
        """Drop the connection without a status (a crash, as tests need)."""
        self._conn.finished = True
        await self._conn.close(abort=True)


class _ServerStdin:
    """The stdin of a server session as a reader (``read``, ``readexactly``, iteration)."""

    def __init__(self, connection: _ServerConnection) -> None:
        self._conn = connection

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n < 0``: until EOF); ``b""`` at EOF."""
        return await self._conn.read(STDIN, n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes (:class:`IncompleteReadError` at an early EOF)."""
        return await self._conn.readexactly(STDIN, n)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.read(READ_SIZE):
            yield chunk


class ExecServer:
    """What :func:`serve` hands to ``nursery.start``: where it listens.

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

    @property
    def host(self) -> str:
        """The bound address of the first listener."""
        return self._address()[0]

    @property
    def port(self) -> int:
        """The bound port of the first listener."""
        return self._address()[1]

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the first listener."""
        return server_url(self.scheme, self.host, self.port)


async def serve_stream(handler: Handler, stream: trio.abc.Stream, *,
                       buffer_limit: int = DEFAULT_BUFFER_LIMIT,
                       websocket_protocols: Sequence[str] | None = None,
                       spdy_protocols: Sequence[str] | None = None,
                       stream_creation_timeout: float = 30.0) -> None:
    """Serve one already connected stream with ``handler``, until it is done.

    The low-level half of :func:`serve`, for servers that accept connections their own
    way. The stream is closed on return.

    Args:
        handler: the coroutine function serving the request (see :func:`serve`).
        stream: the connected :class:`trio.abc.Stream` (TLS already applied, if any).
        buffer_limit: unread stdin bytes before reading stops.
        websocket_protocols: WebSocket subprotocols to accept (default: all, v5 to v1).
        spdy_protocols: SPDY versions to accept (default: v4 to v1).
        stream_creation_timeout: SPDY: seconds a client has to create its streams.
    """
    options = _ServerOptions(buffer_limit=buffer_limit,
                             websocket_protocols=websocket_protocols,
                             spdy_protocols=spdy_protocols,
                             stream_creation_timeout=stream_creation_timeout)
    await _ServerConnection(stream, handler, options).serve()


async def serve(handler: Handler, *, host: str = "127.0.0.1", port: int = 0,
                ssl: _ssl.SSLContext | None = None, buffer_limit: int = DEFAULT_BUFFER_LIMIT,
                websocket_protocols: Sequence[str] | None = None,
                spdy_protocols: Sequence[str] | None = None,
                stream_creation_timeout: float = 30.0,
                task_status: trio.TaskStatus[ExecServer] = trio.TASK_STATUS_IGNORED,
                ) -> NoReturn:
    """Serve exec/attach (and any plain HTTP request) with ``handler``, forever.

    Start it with ``server = await nursery.start(serve, handler)``; cancel the nursery
    to stop it (handlers are cancelled, connections closed). ``handler(request)`` runs
    once per connection with a :class:`ServerRequest`; it answers with ``respond``,
    ``reject`` or ``accept`` and, for an accepted session, ends with
    ``await session.exit(status)``. A handler that returns without an answer gives a
    404; one that raises gives a 500 (or an InternalError status after the upgrade); one
    that returns after accepting without exit() reports success.

    Args:
        handler: the coroutine function serving each request.
        host: the address to bind (loopback by default).
        port: the port (0: any free one; see :attr:`ExecServer.port`).
        ssl: a server TLS context (set its ALPN to ``http/1.1`` if it offers any).
        buffer_limit: unread stdin bytes per session before reading stops.
        websocket_protocols: WebSocket subprotocols to accept (default: all, v5 to v1).
        spdy_protocols: SPDY versions to accept (default: v4 to v1).
        stream_creation_timeout: SPDY: seconds a client has to create its streams.
        task_status: given by ``nursery.start``; receives the :class:`ExecServer`.
    """
    options = _ServerOptions(buffer_limit=buffer_limit,
                             websocket_protocols=websocket_protocols,
                             spdy_protocols=spdy_protocols,
                             stream_creation_timeout=stream_creation_timeout)
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
