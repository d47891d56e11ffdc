"""The decision logic of the adapters' connections, written once for both runtimes.

Synchronous and runtime-neutral: the session's events, completion and failure, the
heartbeat's decisions, the input buffers and their backpressure thresholds. Each runtime
subclasses these cores next to its own pump (``kstream.asyncio``: a
:class:`asyncio.BufferedProtocol`; ``kstream.trio``: tasks reading the socket) and
implements the hooks below; the user-facing objects (:mod:`.process`, :mod:`.server`)
only call what the cores declare, so they run on either runtime.

The hook protocol (what a runtime implements):

* ``_wake(key)``: a reader of input channel ``key`` may proceed (bytes, EOF or error);
* ``_wait_input(key)``: wait until input ``key`` is readable (the one async primitive
  of the read path), and ``_checkpoint()`` (a no-op on asyncio);
* ``_pause_reading()`` / ``_resume_reading()``: a buffer went over ``buffer_limit`` /
  every buffer is back at or below half of it;
* ``_flush()`` (send what is queued now), ``_flush_received()`` (after a read),
  ``_schedule_flush()`` (soon, coalescing the writes of one loop iteration) and
  ``_drain()``;
* ``_close(abort=...)``: close the transport after what is queued, or drop it;
* ``_now()``: the runtime's clock, for the heartbeat and deadlines;
* client: ``_set_ready()``, ``_set_done(error)``, ``_on_upgrade_accepted()``,
  ``_arm_heartbeat(heartbeat)``, ``wait_done()``, ``aclose()``;
* server: ``_set_ready()``, ``_set_closed(error)``, ``_wake_resizes()``,
  ``_start_handler(request)``, ``_on_client_closed()``, ``arm_stream_deadline()``,
  ``wait_ready()``, ``next_resize()``, ``close(abort=...)``.

What a runtime calls: ``_receive(data)`` with every read (``b""`` at EOF; the bytes
are consumed or copied before it returns, so a shared read buffer is safe),
``_on_lost(exc)`` when the transport broke or closed, ``_on_reading_paused()`` /
``_on_reading_resumed()`` around a pause of its own, ``_heartbeat_tick(heartbeat)`` at
``heartbeat.next_wakeup()``, ``_stream_deadline_passed()`` at the SPDY stream deadline.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

from .._channels import STDERR, STDIN, STDOUT
from .._errors import KstreamError, LocalProtocolError, ProtocolError
from .._events import (
    ChannelData,
    ChannelEnded,
    ConnectionClosed,
    Event,
    PongReceived,
    UpgradeAccepted,
    UpgradeRejected,
)
from .._exec.session import (
    ClientExecSession,
    ExitStatusReceived,
    OutputEnded,
    RequestReceived,
    ServerExecSession,
    SessionReady,
    TerminalResized,
)
from .._resize import TerminalSize
from .._status import Exited, Failed
from .buffers import Heartbeat, ReceiveBuffer
from .errors import (
    ConnectionLostError,
    IncompleteReadError,
    PingTimeoutError,
    connection_lost_error,
    receive_error,
)
from .options import (
    DEFAULT_HEAD_TIMEOUT,
    DEFAULT_MAX_PENDING,
    MAX_PENDING_RESIZES,
    ExecOptions,
)
from .server import ServerRequest, handler_exit_status, handler_rejection

__all__ = [
    "ClientConnectionCore",
    "ClientCore",
    "ConnectionCore",
    "PendingConnections",
    "ServerCore",
    "ServerOptions",
]

_log = logging.getLogger("kstream")


class _SansIO(Protocol):
    """What the cores use of a session (either role's)."""

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]: ...

    def data_to_send(self) -> bytes: ...


class ConnectionCore:
    """Input buffers, reads and backpressure decisions: what both roles share.

    A runtime's connection class derives from a role's core and its own pump, and calls
    the core's ``__init__`` before the pump's (which must not touch the core's state).

    Args:
        buffer_limit: unread bytes an input channel may hold before reading stops.
    """

    #: What a broken or closed transport raises (trio adds its stream errors).
    stream_errors: tuple[type[BaseException], ...] = (OSError,)

    session: _SansIO

    def __init__(self, buffer_limit: int) -> None:
        # The session is over (client: with the runtime's ``done``; server: the client
        # is gone or the connection ends): what is received now is dropped.
        self.closed = False
        self._buffer_limit = buffer_limit
        self._inputs: dict[int, ReceiveBuffer] = {}
        self._reading_paused = False
        self._unbounded = False

    # -- the role's

    def _handle(self, event: Event) -> None:
        raise NotImplementedError

    def _receive_failed(self, exc: ProtocolError, *, at_eof: bool) -> None:
        raise NotImplementedError

    def _on_lost(self, exc: BaseException | None) -> None:
        raise NotImplementedError

    # -- hooks (see the module docstring)

    def _wake(self, key: int) -> None:
        raise NotImplementedError

    async def _wait_input(self, key: int) -> ReceiveBuffer:
        raise NotImplementedError

    async def _checkpoint(self) -> None:
        raise NotImplementedError

    def _pause_reading(self) -> None:
        raise NotImplementedError

    def _resume_reading(self) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        raise NotImplementedError

    def _flush_received(self) -> None:
        raise NotImplementedError

    def _schedule_flush(self) -> None:
        raise NotImplementedError

    async def _drain(self) -> None:
        raise NotImplementedError

    def _close(self, *, abort: bool) -> None:
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError

    def require_pump(self) -> None:
        """Raise when the connection's I/O is not running (trio: outside the block)."""

    def _on_reading_paused(self) -> None:
        """Hook: reading stopped because a buffer is full."""

    def _on_reading_resumed(self) -> None:
        """Hook: reading resumed."""

    # -- receiving

    def _data_to_send(self) -> bytes:
        return self.session.data_to_send()

    def _receive(self, data: bytes | memoryview) -> None:
        if self.closed:
            return
        try:
            events = self.session.receive_data(data)
        except ProtocolError as exc:
            self._receive_failed(exc, at_eof=not data)
            return
        for event in events:
            self._handle(event)
        # Most reads queue nothing to send: the runtime checks now rather than
        # scheduling a wake-up per read to find nothing.
        self._flush_received()

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

    def _over_limit(self) -> bool:
        limit = self._buffer_limit
        return any(buffer.size > limit for buffer in self._inputs.values())

    def _below_low_water(self) -> bool:
        low_water = self._buffer_limit // 2
        return all(buffer.size <= low_water for buffer in self._inputs.values())

    def _maybe_resume_reading(self) -> None:
        if self._reading_paused and (self._unbounded or self._below_low_water()):
            self._resume_reading()

    def set_unbounded(self) -> None:
        """Stop applying ``buffer_limit`` (the reader collects everything)."""
        self._unbounded = True
        self._maybe_resume_reading()

    @property
    def reading_paused(self) -> bool:
        """Whether reading stopped because a buffer is full."""
        return self._reading_paused

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet read, over every input channel."""
        return sum(b.size for b in self._inputs.values())

    def at_eof(self, key: int) -> bool:
        """Whether input ``key`` ended and every byte was read."""
        buffer = self._inputs[key]
        return buffer.eof and not buffer.size

    async def read(self, key: int, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n < 0``: until EOF) of input ``key``."""
        if n == 0:
            await self._checkpoint()
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


class _HeartbeatOptions(Protocol):
    """What a client's heartbeat reads of its options (exec's or port-forward's)."""

    @property
    def ping_interval(self) -> float | None: ...

    @property
    def pong_timeout(self) -> float: ...


class _ClientSansIO(_SansIO, Protocol):
    """What a client core uses of its session: a session that pings."""

    def ping(self, now: float) -> None: ...


class ClientConnectionCore(ConnectionCore):
    """What every client connection shares, exec's and port-forward's: the heartbeat,
    and failing when the peer's bytes do not parse or the transport is lost.

    A role's core sets ``session`` and ``options`` and implements ``_fail``; the
    runtime implements ``_arm_heartbeat`` (see the module docstring).

    Args:
        buffer_limit: unread bytes an input channel may hold before reading stops.
    """

    session: _ClientSansIO
    options: _HeartbeatOptions

    def __init__(self, buffer_limit: int) -> None:
        ConnectionCore.__init__(self, buffer_limit)
        self._heartbeat: Heartbeat | None = None

    # -- hooks (the role's: _fail, _close_session; the runtime's: the rest)

    def _fail(self, exc: BaseException, *, abort: bool = True) -> None:
        raise NotImplementedError

    def _close_session(self) -> None:
        """What closing a running connection does before the transport closes."""
        raise NotImplementedError

    def _set_ready(self) -> None:
        raise NotImplementedError

    def _arm_heartbeat(self, heartbeat: Heartbeat) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        """End the connection (if it runs) and close the transport."""
        raise NotImplementedError

    # -- failure

    def _receive_failed(self, exc: ProtocolError, *, at_eof: bool) -> None:
        self._flush()  # the answer (close 1002, GOAWAY) goes out first
        self._fail(receive_error(exc, at_eof=at_eof))

    def _on_lost(self, exc: BaseException | None) -> None:
        if not self.closed:
            self._fail(connection_lost_error(exc))

    # -- heartbeat

    def _start_heartbeat(self) -> None:
        interval = self.options.ping_interval
        if interval is None or self._heartbeat is not None or self.closed:
            return
        self._heartbeat = Heartbeat(interval, self.options.pong_timeout, self._now())
        self._arm_heartbeat(self._heartbeat)

    def _stop_heartbeat(self) -> None:
        self._heartbeat = None

    def _on_pong(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.pong(self._now())

    def _heartbeat_tick(self, heartbeat: Heartbeat) -> bool | None:
        """Ping if due; fail the connection once the pong deadline passed.

        Returns:
            ``True``: wake up again at ``heartbeat.next_wakeup()``; ``False``: the
            connection failed; ``None``: the connection is closing (its end will be
            reported).
        """
        now = self._now()
        try:
            if heartbeat.poll(now):
                self.session.ping(now)
                self._schedule_flush()
        except PingTimeoutError as exc:
            self._fail(exc)
            return False
        except ProtocolError:
            return None
        return True

    def _on_reading_paused(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.suspend()

    def _on_reading_resumed(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.resume(self._now())


class ClientCore(ClientConnectionCore):
    """One client session: its events, completion, failure, heartbeat and stdin.

    Args:
        session: the session of the attempt that connects.
        options: the session's options.
    """

    session: ClientExecSession
    options: ExecOptions

    def __init__(self, session: ClientExecSession, options: ExecOptions) -> None:
        ClientConnectionCore.__init__(self, options.buffer_limit)
        self.session = session
        self.options = options
        self._inputs = {STDOUT: ReceiveBuffer(), STDERR: ReceiveBuffer()}
        if not options.stdout:
            self._inputs[STDOUT].end()
        if not options.stderr:
            self._inputs[STDERR].end()
        self.result: Exited | Failed | None = None
        self.stdin_closed = not options.stdin
        self._error: BaseException | None = None

    # -- hooks (see the module docstring)

    def _set_done(self, error: BaseException | None) -> None:
        raise NotImplementedError

    def _on_upgrade_accepted(self) -> None:
        raise NotImplementedError

    async def wait_done(self) -> None:
        """Wait until the session ended; raise its error if it failed."""
        raise NotImplementedError

    # -- session plumbing

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
            self._on_pong()
        elif isinstance(event, SessionReady):
            self._set_ready()
        elif isinstance(event, UpgradeAccepted):
            self._on_upgrade_accepted()
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
        if self.result is None or self.closed:
            return
        if not all(b.eof for b in self._inputs.values()):
            return
        self.closed = True
        self._set_done(None)
        with contextlib.suppress(ProtocolError):
            self.session.close()
        self._close(abort=False)

    def _fail(self, exc: BaseException, *, abort: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        self._error = exc
        for key in self._inputs:
            self._end_input(key, exc)
        self._set_done(exc)
        self._close(abort=abort)

    def _close_session(self) -> None:
        if not self.closed:
            with contextlib.suppress(ProtocolError):
                self.session.close()
            self._fail(LocalProtocolError("the session was closed before the remote process "
                                          "finished"), abort=False)

    # -- what RemoteProcess calls

    def write_stdin(self, data: bytes | bytearray | memoryview) -> None:
        """Queue stdin bytes (dropped once the process is gone)."""
        if not self.options.stdin:
            raise LocalProtocolError("stdin was not requested (pass stdin=True)")
        if self.closed:
            if self._error is not None:
                raise self._error
            return  # the process is gone; as Go's writers, drop the bytes
        if self.stdin_closed:
            raise LocalProtocolError("stdin is closed")
        self.session.write_stdin(data)
        self._schedule_flush()

    def close_stdin(self) -> None:
        """Half-close stdin (once; nothing once the process is gone)."""
        if not self.options.stdin:
            raise LocalProtocolError("stdin was not requested (pass stdin=True)")
        if self.stdin_closed or self.closed:
            return
        self.session.close_stdin()
        self.stdin_closed = True
        self._schedule_flush()

    async def drain(self) -> None:
        """Wait until the transport takes more; raise the session's error if it failed."""
        self.require_pump()
        await self._drain()
        if self._error is not None:
            raise self._error


class PendingConnections:
    """The connections of one server that have not sent a whole request head yet.

    Capped: an idle or slow client (slowloris, a TLS client that never finishes its
    handshake) costs a descriptor and memory until the head deadline. Past ``limit``, the
    oldest is dropped: clients that do send their request do so at once, so they are the
    newest, and a flood of idle sockets cannot lock them out.

    Args:
        limit: how many may wait at once.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the limit of pending connections must be positive")
        self.limit = limit
        self._waiting: dict[ServerCore, None] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, connection: ServerCore) -> ServerCore | None:
        """Count a new connection; return the one to drop to stay within the limit."""
        self._waiting[connection] = None
        if len(self._waiting) > self.limit:
            oldest = next(iter(self._waiting))
            del self._waiting[oldest]
            return oldest
        return None

    def discard(self, connection: ServerCore) -> None:
        """The connection sent its request head, or ended."""
        self._waiting.pop(connection, None)


class ServerOptions:
    """The settings every connection of one server shares, on either runtime.

    Args:
        buffer_limit: unread stdin bytes before reading stops.
        websocket_protocols: WebSocket subprotocols to accept (``None``: all).
        spdy_protocols: SPDY versions to accept (``None``: all).
        stream_creation_timeout: SPDY: seconds a client has to create its streams.
        head_timeout: seconds a client has to send its request head (TLS included).
        max_pending: connections that may wait for their request head at once.

    Raises:
        ValueError: ``buffer_limit`` or ``max_pending`` is not positive.
    """

    def __init__(self, *, buffer_limit: int, websocket_protocols: Sequence[str] | None,
                 spdy_protocols: Sequence[str] | None, stream_creation_timeout: float,
                 head_timeout: float = DEFAULT_HEAD_TIMEOUT,
                 max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if buffer_limit < 1:
            raise ValueError("buffer_limit must be positive")
        self.buffer_limit = buffer_limit
        self.websocket_protocols = websocket_protocols
        self.spdy_protocols = spdy_protocols
        self.stream_creation_timeout = stream_creation_timeout
        self.head_timeout = head_timeout
        self.pending = PendingConnections(max_pending)


class ServerCore(ConnectionCore):
    """One accepted connection: its session, stdin buffer, resizes and handler.

    Args:
        options: the server's settings (shared by its connections).
    """

    session: ServerExecSession

    def __init__(self, options: ServerOptions) -> None:
        ConnectionCore.__init__(self, options.buffer_limit)
        self.head_timeout = options.head_timeout
        self._pending = options.pending
        self.session = ServerExecSession(websocket_protocols=options.websocket_protocols,
                                         spdy_protocols=options.spdy_protocols,
                                         stream_creation_timeout=options.stream_creation_timeout)
        self.stream_creation_timeout = options.stream_creation_timeout
        self._inputs = {STDIN: ReceiveBuffer()}
        self.resizes: deque[TerminalSize] = deque(maxlen=MAX_PENDING_RESIZES)
        self.finished = False

    # -- hooks (see the module docstring)

    def _set_ready(self) -> None:
        raise NotImplementedError

    def _set_closed(self, error: BaseException) -> None:
        raise NotImplementedError

    def _wake_resizes(self) -> None:
        raise NotImplementedError

    def _start_handler(self, request: ServerRequest) -> None:
        raise NotImplementedError

    def _on_client_closed(self) -> None:
        """Hook: the client closed the connection."""

    def arm_stream_deadline(self) -> None:
        """Give up on a SPDY client that does not create its streams in time."""
        raise NotImplementedError

    async def wait_ready(self) -> None:
        """Wait until the accepted session carries data; raise if it never will."""
        raise NotImplementedError

    async def next_resize(self) -> TerminalSize | None:
        """The next terminal size, or ``None`` once the connection ended."""
        raise NotImplementedError

    async def close(self, *, abort: bool = False) -> None:
        """End the connection: after what is queued, or at once with ``abort``."""
        raise NotImplementedError

    # -- before the request

    def _accepted(self) -> None:
        """Runtime: a client connected (before any TLS handshake). Counts it as pending;
        drops the oldest pending connection of the server past the limit."""
        if self._pending is not None:
            dropped = self._pending.add(self)
            if dropped is not None:
                dropped._give_up("too many connections waiting to send a request")

    def _head_deadline_passed(self) -> bool:
        """Runtime: ``head_timeout`` after :meth:`_accepted`. Drops a client that has not
        sent its whole request head by then (a TLS handshake included); says whether."""
        if self.session.request is None and not self.closed:
            self._give_up(f"no request within {self.head_timeout:g} s")
            return True
        return False

    def _give_up(self, why: str) -> None:
        _log.debug("dropping a connection: %s", why)
        if self._pending is not None:
            self._pending.discard(self)
        self._end(ConnectionLostError(why))
        self._close(abort=True)

    # -- session plumbing

    def _receive_failed(self, exc: ProtocolError, *, at_eof: bool) -> None:
        _log.debug("closing a connection: %s", exc)
        self._end(exc)
        self._close(abort=False)  # after the queued answer (400, close 1002, GOAWAY)

    def _handle(self, event: Event) -> None:
        if isinstance(event, ChannelData):
            self._feed_input(STDIN, event.data)
        elif isinstance(event, ChannelEnded):
            self._end_input(STDIN)
        elif isinstance(event, TerminalResized):
            self.resizes.append(TerminalSize(event.width, event.height))
            self._wake_resizes()
        elif isinstance(event, SessionReady):
            self._set_ready()
        elif isinstance(event, RequestReceived):
            if self._pending is not None:
                self._pending.discard(self)
            self._start_handler(ServerRequest(self, event))
        elif isinstance(event, ConnectionClosed):
            self._end(None)
            self._on_client_closed()

    def _end(self, error: BaseException | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self._pending is not None:
            self._pending.discard(self)
        self._end_input(STDIN)
        self._wake_resizes()
        self._set_closed(error or ConnectionLostError(
            "the client went away before the session started"))

    def _on_lost(self, exc: BaseException | None) -> None:
        self._end(exc)

    def _stream_deadline_passed(self) -> bool:
        """Whether the SPDY client missed its deadline (then the connection ended)."""
        if self.session.check_deadline(self._now()):
            # waitForStreams gives up and returns without writing anything.
            self._end(ConnectionLostError("the client did not create its streams in time"))
            return True
        return False

    async def drain(self) -> None:
        """Wait until the transport takes more (at once once the client is gone)."""
        await self._drain()

    # -- the handler's side

    async def run_handler(self, handler: Callable[[ServerRequest], Awaitable[None]],
                          request: ServerRequest) -> None:
        """Run the handler for one request and make sure the request gets an end."""
        try:
            await handler(request)
        except Exception as exc:
            # Neither the target's prefix nor its query: a path prefix can carry a token
            # (kstream serve over plain HTTP), and an argv anything.
            _log.exception("exec handler failed for %s", _describe(request.path))
            await self._end_request(request, exc)
        else:
            await self._end_request(request, None)

    async def _end_request(self, request: ServerRequest, error: Exception | None) -> None:
        with contextlib.suppress(KstreamError, *self.stream_errors):
            if not self.session.answered:
                await request.reject(*handler_rejection(error))
            elif request.exec is not None and not self.finished:
                await request.exec.exit(handler_exit_status(error))
        await self.close()


_POD_SUBRESOURCE: Final = re.compile(r"/namespaces/([^/]+)/pods/([^/]+)/([^/]+)$")


def _describe(path: str) -> str:
    """``exec of ns/pod`` for a pod subresource path, else ``a request``: what a log may say."""
    match = _POD_SUBRESOURCE.search(path)
    if match is None:
        return "a request"
    namespace, pod, subresource = match.groups()
    return f"{subresource} of {namespace}/{pod}"
