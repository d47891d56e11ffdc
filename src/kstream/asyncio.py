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
import contextlib
import logging
import socket
import ssl as _ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType

from ._channels import STDERR, STDIN, STDOUT
from ._errors import KstreamError, LocalProtocolError, ProtocolError, UpgradeRejectedError
from ._events import (
    ChannelData,
    ChannelEnded,
    ConnectionClosed,
    Event,
    PongReceived,
    UpgradeAccepted,
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
    "start_server",
]

_log = logging.getLogger("kstream")


def _silence(future: asyncio.Future[None]) -> None:
    # A session's futures may fail with nobody awaiting them (the caller never called
    # wait()); retrieving the exception keeps asyncio from logging it.
    future.add_done_callback(lambda f: None if f.cancelled() else f.exception())


# --------------------------------------------------------------------------- shared I/O


class _Pump(asyncio.BufferedProtocol):
    """What both roles' protocols share: reads, batched writes, drain, input buffers.

    Args:
        loop: the running loop.
        buffer_limit: unread bytes an input channel may hold before reading stops.
        linger: a graceful close half-closes after the last bytes and reads (the role
            discards) until the peer closes, within
            :data:`~kstream._runtime.options.LINGER` (the server: the client may still
            be writing).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, buffer_limit: int, *,
                 linger: bool) -> None:
        self._loop = loop
        self._buffer_limit = buffer_limit
        self._linger = linger
        self._transport: asyncio.Transport | None = None
        self._inputs: dict[int, ReceiveBuffer] = {}
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._reading_paused = False
        self._unbounded = False
        self._writing_paused = False
        self._drain_waiters: deque[asyncio.Future[None]] = deque()
        self._flush_handle: asyncio.Handle | None = None
        self._eof_written = False
        self._error: BaseException | None = None
        self.lost: asyncio.Future[None] = loop.create_future()

    # -- to be provided by the role

    def _data_to_send(self) -> bytes:
        raise NotImplementedError

    def _receive(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def _on_lost(self, exc: Exception | None) -> None:
        raise NotImplementedError

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

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_drainers()

    # -- writing

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

    async def _close_transport(self, *, abort: bool = False) -> None:
        transport = self._transport
        if transport is None:
            return
        self._flush()
        if (self._linger and not abort and not transport.is_closing()
                and transport.can_write_eof()):
            await self._lingering_close(transport)
        # A write buffer that is not empty means the kernel buffer is full too: the peer
        # does not read, and a graceful close would wait for it forever.
        elif abort or transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()
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
        transport.write_eof()  # the shutdown(SHUT_WR) follows the last buffered byte
        self._unbounded = True  # the role drops what comes in now
        self._maybe_resume_reading()
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await self._drain()
        except TimeoutError:
            transport.abort()  # the peer does not read
            return
        await asyncio.wait({self.lost}, timeout=LINGER)
        transport.close()

    # -- input buffers

    def _feed_input(self, key: int, data: bytes) -> None:
        buffer = self._inputs.get(key)
        if buffer is None:
            return
        buffer.append(data)
        self._wake(key)
        if buffer.size > self._buffer_limit and not self._unbounded:
            self._pause_reading()

    def _end_input(self, key: int, error: BaseException | None = None) -> None:
        buffer = self._inputs.get(key)
        if buffer is not None:
            buffer.end(error)
            self._wake(key)

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

    def _maybe_resume_reading(self) -> None:
        if not self._reading_paused:
            return
        low_water = self._buffer_limit // 2
        if self._unbounded or all(b.size <= low_water for b in self._inputs.values()):
            self._reading_paused = False
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
            self._on_reading_resumed()

    def _on_reading_paused(self) -> None:
        """Hook: reading stopped because a buffer is full."""

    def _on_reading_resumed(self) -> None:
        """Hook: reading resumed."""

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

    async def read(self, key: int, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n < 0``: until EOF) of input ``key``."""
        if n == 0:
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
                partial = b"".join(pieces)
                raise IncompleteReadError(partial, n)
            pieces.append(chunk)
            wanted -= len(chunk)
        return b"".join(pieces)

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet read, over every input channel."""
        return sum(b.size for b in self._inputs.values())


# --------------------------------------------------------------------------- client


class _ClientConnection(_Pump):
    """One client session's protocol: the socket, the session, the buffers and timers."""

    def __init__(self, loop: asyncio.AbstractEventLoop, session: ClientExecSession,
                 options: ExecOptions) -> None:
        super().__init__(loop, options.buffer_limit, linger=False)
        self.session = session
        self.options = options
        self.ready: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        _silence(self.ready)
        _silence(self.done)
        self._inputs = {STDOUT: ReceiveBuffer(), STDERR: ReceiveBuffer()}
        if not options.stdout:
            self._inputs[STDOUT].end()
        if not options.stderr:
            self._inputs[STDERR].end()
        self._heartbeat: Heartbeat | None = None
        self._heartbeat_handle: asyncio.TimerHandle | None = None
        self.result: Exited | Failed | None = None
        self.stdin_closed = not options.stdin

    # -- session plumbing

    def _data_to_send(self) -> bytes:
        return self.session.data_to_send()

    def _receive(self, data: bytes | memoryview) -> None:
        if self.done.done():
            return
        try:
            events = self.session.receive_data(data)
        except ProtocolError as exc:
            self._flush()  # the answer (close 1002, GOAWAY) goes out first
            self._fail(receive_error(exc, at_eof=not data))
            return
        for event in events:
            self._handle(event)
        # Most reads queue nothing to send: write what there is now rather than
        # scheduling a callback per read to find nothing.
        self._flush()

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
                self._heartbeat.pong(self._loop.time())
        elif isinstance(event, SessionReady):
            if not self.ready.done():
                self.ready.set_result(None)
        elif isinstance(event, UpgradeAccepted):
            self._start_heartbeat()
        elif isinstance(event, UpgradeRejected):
            self._fail(event.error, abort=False)
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
        if self.result is None or self.done.done():
            return
        if not all(b.eof for b in self._inputs.values()):
            return
        self.done.set_result(None)
        self._stop_heartbeat()
        with contextlib.suppress(ProtocolError):
            self.session.close()
        transport = self._transport
        if transport is not None:
            self._flush()
            transport.close()

    def _fail(self, exc: BaseException, *, abort: bool = True) -> None:
        if self.done.done():
            return
        self._error = exc
        for key in self._inputs:
            self._end_input(key, exc)
        if not self.ready.done():
            self.ready.set_exception(exc)
        self.done.set_exception(exc)
        self._stop_heartbeat()
        self._wake_drainers()
        transport = self._transport
        if transport is not None:
            if abort:
                transport.abort()
            else:
                self._flush()
                transport.close()

    def _on_lost(self, exc: Exception | None) -> None:
        self._stop_heartbeat()
        if not self.done.done():
            self._fail(connection_lost_error(exc))

    # -- heartbeat

    def _start_heartbeat(self) -> None:
        interval = self.options.ping_interval
        if interval is None or self._heartbeat is not None:
            return
        self._heartbeat = Heartbeat(interval, self.options.pong_timeout, self._loop.time())
        self._arm_heartbeat()

    def _arm_heartbeat(self) -> None:
        assert self._heartbeat is not None
        self._heartbeat_handle = self._loop.call_at(self._heartbeat.next_wakeup(),
                                                    self._on_heartbeat)

    def _on_heartbeat(self) -> None:
        self._heartbeat_handle = None
        heartbeat = self._heartbeat
        if heartbeat is None or self.done.done():
            return
        now = self._loop.time()
        try:
            if heartbeat.poll(now):
                self.session.ping(now)
                self._schedule_flush()
        except PingTimeoutError as exc:
            self._fail(exc)
            return
        except ProtocolError:
            pass  # the connection is closing; its end will be reported
        self._arm_heartbeat()

    def _stop_heartbeat(self) -> None:
        if self._heartbeat_handle is not None:
            self._heartbeat_handle.cancel()
            self._heartbeat_handle = None
        self._heartbeat = None

    def _on_reading_paused(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.suspend()

    def _on_reading_resumed(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.resume(self._loop.time())

    # -- what RemoteProcess calls

    def write_stdin(self, data: bytes | bytearray | memoryview) -> None:
        if not self.options.stdin:
            raise LocalProtocolError("stdin was not requested (pass stdin=True)")
        if self.done.done():
            if self._error is not None:
                raise self._error
            return  # the process is gone; as Go's writers, drop the bytes
        if self.stdin_closed:
            raise LocalProtocolError("stdin is closed")
        self.session.write_stdin(data)
        self._schedule_flush()

    def close_stdin(self) -> None:
        if not self.options.stdin:
            raise LocalProtocolError("stdin was not requested (pass stdin=True)")
        if self.stdin_closed or self.done.done():
            return
        self.session.close_stdin()
        self.stdin_closed = True
        self._schedule_flush()

    async def drain(self) -> None:
        await self._drain()
        if self._error is not None:
            raise self._error

    def set_unbounded(self) -> None:
        self._unbounded = True
        self._maybe_resume_reading()

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
            done, _ = await asyncio.wait({self.lost}, timeout=CLOSE_GRACE)
            if not done:
                transport.abort()
                await asyncio.shield(self.lost)

    async def aclose(self) -> None:
        if not self.done.done():
            with contextlib.suppress(ProtocolError):
                self.session.close()
            self._fail(LocalProtocolError("the session was closed before the remote process "
                                          "finished"), abort=False)
        await self._close_transport()


class RemoteStdin:
    """The remote process's standard input (like :attr:`asyncio.subprocess.Process.stdin`)."""

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
        """Wait until the socket's write buffer is below its high-water mark.

        Raises:
            KstreamError: the session failed (its error).
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
        """Flush what was written (a no-op kept for the :class:`asyncio.StreamWriter` shape)."""
        await self._conn.drain()


class RemoteOutput:
    """stdout or stderr of the remote process (like :class:`asyncio.StreamReader`)."""

    def __init__(self, connection: _ClientConnection, channel: int) -> None:
        self._conn = connection
        self._channel = channel

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes; with ``n < 0`` read until EOF. ``b""`` at EOF.

        Raises:
            KstreamError: the session failed before EOF (after the buffered bytes).
        """
        return await self._conn.read(self._channel, n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises:
            IncompleteReadError: EOF came first (``partial`` holds what was read).
            KstreamError: the session failed.
        """
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

    Use it as an async context manager: leaving the block closes the connection (the
    remote process then sees its stdin and the connection end). Attributes:

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
        """
        await self._conn.wait_done()
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

        Like :meth:`asyncio.subprocess.Process.communicate`, the output is collected in
        memory without limit. Stdin is closed after ``input`` (and also without input
        when the protocol can); a :class:`RemoteCommandError` is left to :meth:`wait`.

        Returns:
            ``(stdout, stderr)``.

        Raises:
            LocalProtocolError: ``input`` given but stdin cannot be closed (WebSocket v4).
            PingTimeoutError, ConnectionLostError: the session failed.
        """
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
        """Close the connection (idempotent); the remote process sees the session end."""
        await self._conn.aclose()

    async def __aenter__(self) -> RemoteProcess:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


async def _attempt(address: ServerAddress, target: str, attempt: Attempt,
                   options: ExecOptions, context: _ssl.SSLContext | None,
                   server_hostname: str | None, sock: socket.socket | None,
                   ) -> _ClientConnection:
    loop = asyncio.get_running_loop()
    session = new_client_session(address, target, attempt, options)
    protocol = _ClientConnection(loop, session, options)
    hostname = (server_hostname or address.host) if context is not None else None
    try:
        async with asyncio.timeout(options.connect_timeout):
            if sock is not None:
                await loop.create_connection(lambda: protocol, sock=sock, ssl=context,
                                             server_hostname=hostname)
            else:
                await loop.create_connection(lambda: protocol, address.host, address.port,
                                             ssl=context, server_hostname=hostname)
            await asyncio.shield(protocol.ready)
    except BaseException:
        transport = protocol._transport
        if transport is not None:
            transport.abort()
            # Let the loop close the socket now, so no socket outlives the failure.
            with contextlib.suppress(BaseException):
                await asyncio.shield(protocol.lost)
        raise
    return protocol


async def _open(server: str, target: str, command: Sequence[str], options: ExecOptions,
                context: _ssl.SSLContext | None, server_hostname: str | None,
                sock: socket.socket | None) -> RemoteProcess:
    address = parse_server(server)
    context = client_ssl_context(address, context)

    def connect(attempt: Attempt) -> Awaitable[_ClientConnection]:
        return _attempt(address, target, attempt, options, context, server_hostname, sock)

    # A caller's socket serves one attempt only: after a rejection it is spent.
    connection = await open_first_accepted(options, connect, fallback=sock is None)
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
                    sock: socket.socket | None = None) -> RemoteProcess:
    """Run ``command`` in a pod's container and return the running process.

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
        sock: an already connected socket to use (one attempt only, no fallback).

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
    return await _open(server, target, command, options, ssl, server_hostname, sock)


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
                      sock: socket.socket | None = None) -> RemoteProcess:
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
    return await _open(server, target, (), options, ssl, server_hostname, sock)


async def run(server: str, namespace: str, pod: str, command: Sequence[str], *,
              input: bytes | None = None, check: bool = False, timeout: float | None = None,
              container: str | None = None, stdout: bool = True, stderr: bool = True,
              tty: bool = False, headers: Sequence[tuple[str, str]] = (),
              ssl: _ssl.SSLContext | None = None, server_hostname: str | None = None,
              transport: str = "auto", protocols: Sequence[str] | None = None,
              fallback: bool = True, ping_interval: float | None = DEFAULT_PING_INTERVAL,
              pong_timeout: float = DEFAULT_PONG_TIMEOUT, connect_timeout: float | None = None,
              buffer_limit: int = DEFAULT_BUFFER_LIMIT,
              sock: socket.socket | None = None) -> CompletedExec:
    """Run a command to completion and collect its output, like :func:`subprocess.run`.

    Args:
        input: bytes for stdin (stdin is requested, and closed after them, only then).
        check: raise :class:`CalledRemoteProcessError` on a non-zero exit code.
        timeout: overall deadline in seconds (:class:`TimeoutError`).
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
        sock: a connected socket.

    Returns:
        The :class:`CompletedExec`.

    Raises:
        CalledRemoteProcessError: ``check`` and a non-zero exit code.
        RemoteCommandError: the command produced no exit code.
        UpgradeRejectedError, PingTimeoutError, ConnectionLostError, TimeoutError.
    """
    async with asyncio.timeout(timeout):
        process = await open_exec(
            server, namespace, pod, command, container=container, stdin=input is not None,
            stdout=stdout, stderr=stderr, tty=tty, headers=headers, ssl=ssl,
            server_hostname=server_hostname, transport=transport, protocols=protocols,
            fallback=fallback, ping_interval=ping_interval, pong_timeout=pong_timeout,
            connect_timeout=connect_timeout, buffer_limit=buffer_limit, sock=sock)
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


class _ServerConnection(_Pump):
    """One accepted TCP connection of :func:`start_server`."""

    def __init__(self, server: ExecServer) -> None:
        super().__init__(server.loop, server.buffer_limit, linger=True)
        self._server = server
        self.session = ServerExecSession(
            websocket_protocols=server.websocket_protocols,
            spdy_protocols=server.spdy_protocols,
            stream_creation_timeout=server.stream_creation_timeout)
        self._inputs = {STDIN: ReceiveBuffer()}
        self.ready: asyncio.Future[None] = self._loop.create_future()
        _silence(self.ready)
        self.resizes: deque[TerminalSize] = deque(maxlen=MAX_PENDING_RESIZES)
        self._resize_waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.finished = False
        self.task: asyncio.Task[None] | None = None
        self._deadline_handle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._server.connections.add(self)

    def _data_to_send(self) -> bytes:
        return self.session.data_to_send()

    def _receive(self, data: bytes | memoryview) -> None:
        if self.closed:
            return
        try:
            events = self.session.receive_data(data)
        except ProtocolError as exc:
            _log.debug("closing a connection: %s", exc)
            self._flush()
            self._end(exc)
            if self._transport is not None:
                self._transport.close()
            return
        for event in events:
            self._handle(event)
        # Most reads queue nothing to send: write what there is now rather than
        # scheduling a callback per read to find nothing.
        self._flush()

    def _handle(self, event: Event) -> None:
        if isinstance(event, ChannelData):
            self._feed_input(STDIN, event.data)
        elif isinstance(event, ChannelEnded):
            self._end_input(STDIN)
        elif isinstance(event, TerminalResized):
            self.resizes.append(TerminalSize(event.width, event.height))
            self._wake_resizes()
        elif isinstance(event, SessionReady):
            if not self.ready.done():
                self.ready.set_result(None)
        elif isinstance(event, RequestReceived):
            request = ServerRequest(self, event)
            self.task = self._server.spawn(self, request)
        elif isinstance(event, ConnectionClosed):
            self._end(None)

    def eof_received(self) -> bool | None:
        self._receive(b"")
        # Before the upgrade, a client that half-closed may still read our answer.
        return self.session.transport is None and not self.closed

    def _end(self, error: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._end_input(STDIN)
        self._wake_resizes()
        if not self.ready.done():
            self.ready.set_exception(error or ConnectionLostError(
                "the client went away before the session started"))
        if self._deadline_handle is not None:
            self._deadline_handle.cancel()

    def _on_lost(self, exc: Exception | None) -> None:
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

    def arm_stream_deadline(self) -> None:
        timeout = self._server.stream_creation_timeout
        self._deadline_handle = self._loop.call_later(timeout + 0.001, self._check_deadline)

    def _check_deadline(self) -> None:
        self._deadline_handle = None
        if self.session.check_deadline(self._loop.time()):
            # waitForStreams gives up and returns without writing anything.
            self._end(ConnectionLostError("the client did not create its streams in time"))
            if self._transport is not None:
                self._transport.abort()

    async def close(self, *, abort: bool = False) -> None:
        self._end(None)
        await self._close_transport(abort=abort)


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
            events = conn.session.accept(**switches, now=conn._loop.time())
        except (UpgradeRejectedError, ProtocolError):
            if conn.session.answered:
                await conn.close()  # after the queued 403 (or 400) went out
            raise
        for event in events:
            conn._handle(event)
        conn._flush()
        if conn.session.transport == "spdy":
            conn.arm_stream_deadline()
        await asyncio.shield(conn.ready)
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
        with contextlib.suppress(KstreamError, OSError):
            return await self._conn.read(STDIN, max_bytes)
        return b""

    def write_stdout(self, data: bytes | bytearray | memoryview) -> None:
        """Queue process output for stdout (dropped once the client is gone)."""
        if not self.closed:
            self._conn.session.send_stdout(data)
            self._conn._schedule_flush()

    def write_stderr(self, data: bytes | bytearray | memoryview) -> None:
        """Queue process output for stderr (dropped once the client is gone)."""
        if not self.closed:
            self._conn.session.send_stderr(data)
            self._conn._schedule_flush()

    async def drain(self) -> None:
        """Wait until the socket accepts more (returns at once once the client is gone)."""
        await self._conn._drain()

    @property
    def resizes(self) -> AsyncIterator[TerminalSize]:
        """The client's terminal sizes, in order; ends when the connection does."""
        return self._resizes()

    async def _resizes(self) -> AsyncIterator[TerminalSize]:
        while (size := await self._conn.next_resize()) is not None:
            yield size

    async def exit(self, status: Status) -> None:
        """Send the exit status, end the session as the kubelet does, close the socket.

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
    """A running :func:`start_server`: an :class:`asyncio.Server` plus its sessions.

    Attributes:
        sockets: the listening sockets.
        host: the bound address.
        port: the bound port.
    """

    def __init__(self, handler: Handler, *, loop: asyncio.AbstractEventLoop,
                 buffer_limit: int, websocket_protocols: Sequence[str] | None,
                 spdy_protocols: Sequence[str] | None, stream_creation_timeout: float) -> None:
        self.handler = handler
        self.loop = loop
        self.buffer_limit = buffer_limit
        self.websocket_protocols = websocket_protocols
        self.spdy_protocols = spdy_protocols
        self.stream_creation_timeout = stream_creation_timeout
        self.connections: set[_ServerConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        return tuple(self.server.sockets) if self.server is not None else ()

    @property
    def host(self) -> str:
        """The bound address of the first socket."""
        return str(self.sockets[0].getsockname()[0])

    @property
    def port(self) -> int:
        """The bound port of the first socket."""
        return int(self.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the first socket."""
        return server_url(self.scheme, self.host, self.port)

    scheme = "http"

    def spawn(self, connection: _ServerConnection, request: ServerRequest) -> asyncio.Task[None]:
        """Start the handler task of one request (tracked until it ends)."""
        task = self.loop.create_task(self.run_handler(connection, request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def run_handler(self, connection: _ServerConnection, request: ServerRequest) -> None:
        """Run the handler for one request and make sure the request gets an end."""
        try:
            await self.handler(request)
        except asyncio.CancelledError:
            await connection.close(abort=True)
            raise
        except Exception as exc:
            _log.exception("exec handler failed for %s", request.target)
            await self._end_request(connection, request, exc)
        else:
            await self._end_request(connection, request, None)

    async def _end_request(self, connection: _ServerConnection, request: ServerRequest,
                           error: Exception | None) -> None:
        with contextlib.suppress(KstreamError, OSError):
            if not connection.session.answered:
                await request.reject(*handler_rejection(error))
            elif request.exec is not None and not connection.finished:
                await request.exec.exit(handler_exit_status(error))
        await connection.close()

    def close(self) -> None:
        """Stop listening and end every session (handlers are cancelled)."""
        if self.server is not None:
            self.server.close()
        for task in self.tasks:
            task.cancel()
        for connection in list(self.connections):
            if connection._transport is not None:
                connection._transport.abort()

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


async def start_server(handler: Handler, *, host: str = "127.0.0.1", port: int = 0,
                       ssl: _ssl.SSLContext | None = None,
                       buffer_limit: int = DEFAULT_BUFFER_LIMIT,
                       websocket_protocols: Sequence[str] | None = None,
                       spdy_protocols: Sequence[str] | None = None,
                       stream_creation_timeout: float = 30.0) -> ExecServer:
    """Serve exec/attach (and any plain HTTP request) with ``handler``.

    ``handler(request)`` runs once per connection, in its own task, with a
    :class:`ServerRequest`; it answers with ``respond``, ``reject`` or ``accept`` and, for
    an accepted session, ends with ``await session.exit(status)``. A handler that returns
    without an answer gives a 404; one that raises gives a 500 (or an InternalError
    status after the upgrade); one that returns after accepting without exit() reports
    success.

    Args:
        handler: the coroutine function serving each request.
        host: the address to bind (loopback by default).
        port: the port (0: any free one; see :attr:`ExecServer.port`).
        ssl: a server TLS context (set its ALPN to ``http/1.1`` if it offers any).
        buffer_limit: unread stdin bytes per session before reading stops.
        websocket_protocols: WebSocket subprotocols to accept (default: all, v5 to v1).
        spdy_protocols: SPDY versions to accept (default: v4 to v1).
        stream_creation_timeout: SPDY: seconds a client has to create its streams.

    Returns:
        The running :class:`ExecServer` (an async context manager).
    """
    loop = asyncio.get_running_loop()
    exec_server = ExecServer(handler, loop=loop, buffer_limit=buffer_limit,
                             websocket_protocols=websocket_protocols,
                             spdy_protocols=spdy_protocols,
                             stream_creation_timeout=stream_creation_timeout)
    if ssl is not None:
        exec_server.scheme = "https"
    exec_server.server = await loop.create_server(lambda: _ServerConnection(exec_server),
                                                  host, port, ssl=ssl)
    return exec_server
