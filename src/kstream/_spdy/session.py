"""The SPDY/3.1 session, sans-IO, in either role, as Kubernetes' Go peers speak it.

Bytes in, events out; calls in, bytes out (h2's shape): :meth:`SpdySession.receive_data`
decodes frames and returns events, queuing whatever the protocol answers on its own (PING
echoes, RST_STREAM for broken stream rules, GOAWAY before a protocol error is raised); the
action methods (:meth:`~SpdySession.open_stream`, :meth:`~SpdySession.send_data`, ...) queue
frames; :meth:`~SpdySession.data_to_send` drains the queue.

Theory of operation
-------------------

Two state machines, each one table, in the style of h2 (style-anchors §1.4), in
``_spdy/state.py``: :data:`STREAM_TRANSITIONS` with :data:`STREAM_RECEIVE_VIOLATIONS` for
each stream, :data:`SESSION_TRANSITIONS` for the session. Receiving an input the stream
table does not allow is either dropped silently or a *stream* error, answered with
RST_STREAM; the only *session*-level stream violation is a SYN_REPLY for a stream id that
was never opened. Sending an input either table does not allow raises
:class:`LocalProtocolError`. Which violation is which, and why, is the table in that
module's docstring. The events are in ``_spdy/events.py``; what each received frame does
is in ``_spdy/handlers.py`` (:class:`~kstream._spdy.handlers.FrameHandlers`, a base of
:class:`SpdySession`).

Flow control: Go never sends WINDOW_UPDATE and ignores those it receives
(protocol-notes §3.5), so by default send windows are advisory: :meth:`send_window` returns
``None`` and :meth:`send_data` never refuses. ``strict_flow_control=True`` enforces SPDY/3.1
windows both ways (stream and session level, accounting in ``_spdy/flow.py``): sending
beyond the window raises :class:`LocalProtocolError`, a peer sending beyond ours is reset,
and WINDOW_UPDATEs are sent for what the application acknowledges.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .._errors import LocalProtocolError, RemoteProtocolError
from .events import (
    SpdyEvent,
    StreamData,
    StreamEnded,
    StreamReset,
)
from .flow import (
    DEFAULT_WINDOW_SIZE,
    MAX_WINDOW_SIZE,
    ReceiveWindow,
    SendWindow,
)
from .frames import (
    MAX_FRAME_LENGTH,
    MAX_STREAM_ID,
    DataFrame,
    FrameDecoder,
    FrameEncoder,
    GoAwayStatus,
    RstStatus,
    SettingId,
    pack_data_header,
)
from .handlers import FrameHandlers, _Outcome
from .state import (
    SESSION_SENDING_STATES,
    SESSION_TRANSITIONS,
    STREAM_RECEIVE_VIOLATIONS,
    STREAM_RECEIVING_STATES,
    STREAM_SENDING_STATES,
    STREAM_TRANSITIONS,
    SessionInput,
    SessionState,
    StreamInput,
    StreamState,
    _Stream,
)

__all__ = ["SpdySession", "StreamClosedError"]

_S = StreamState
_I = StreamInput
_SS = SessionState


# --------------------------------------------------------------------------- the session

class StreamClosedError(LocalProtocolError):
    """:meth:`SpdySession.send_data` or :meth:`~SpdySession.end_stream` on a stream whose
    state does not let us send (:meth:`SpdySession.can_send` is False): our half of it is
    closed (FIN sent, reset either way, one-way stream of the peer) or not open (never
    opened, or the peer's stream not replied yet).

    Go's writers get an error in the same case (``stream.go`` ``Write``), which client-go
    and the kubelet ignore: the exec connection drops the bytes on it.
    """


def _immutable_view(data: bytes | bytearray | memoryview) -> memoryview:
    """A byte view of ``data`` that nobody can change: a view of ``bytes`` as it is, a
    copy of anything else (the caller may reuse a mutable buffer once the call returns)."""
    if type(data) is bytes:
        return memoryview(data)
    if (isinstance(data, memoryview) and data.readonly and data.c_contiguous
            and type(data.obj) is bytes):
        # A new view of the same bytes: it stays valid if the caller releases theirs.
        view = memoryview(data)
        return view if view.format == "B" and view.ndim == 1 else view.cast("B")
    return memoryview(bytes(data))


#: Most pings left unanswered that are remembered; older ones are forgotten.
_MAX_OUTSTANDING_PINGS: Final = 1024


class SpdySession(FrameHandlers):
    """A SPDY/3.1 session in the client or server role (sans-IO).

    Limits (constructor arguments), all enforced on what the peer sends:

    * ``max_control_frame_size`` (1 MiB): largest control frame buffered; bigger is a
      protocol error.
    * ``max_header_block_size`` (256 KiB): largest inflated header block, stopped while
      inflating; ``max_headers`` (1024): most headers per block.
    * ``max_concurrent_streams`` (1000): most live streams the peer opened; more are
      refused with RST_STREAM REFUSED_STREAM.
    * DATA is never buffered: it is handed out in pieces as it arrives.
    * At most 1024 unanswered pings are remembered.

    Stream ids: ours are odd from 1 (client) or even from 2 (server), strictly increasing;
    the peer's must increase too (Go ``validateStreamId``). Ping ids follow the same parity
    rule; a PING of the other parity is echoed unchanged, one of ours is a pong.

    After a :class:`RemoteProtocolError` the session is FAILED: the GOAWAY PROTOCOL_ERROR
    is already queued in :meth:`data_to_send`, every later ``receive_data`` raises again and
    every sending call raises :class:`LocalProtocolError`.
    """

    def __init__(self, *, client: bool, strict_flow_control: bool = False,
                 max_concurrent_streams: int = 1000,
                 initial_window_size: int = DEFAULT_WINDOW_SIZE,
                 max_control_frame_size: int = 1 << 20,
                 max_header_block_size: int = 256 * 1024, max_headers: int = 1024,
                 trailing_data: bytes | bytearray | memoryview = b"",
                 join_data: bool = False) -> None:
        """Create a session on a connection that has just been upgraded to SPDY/3.1.

        Args:
            client: True for the side that sent the HTTP upgrade request.
            strict_flow_control: Enforce SPDY/3.1 flow control (see the module docstring);
                a Go peer never sends WINDOW_UPDATE, so leave it off against Kubernetes.
            max_concurrent_streams: Most live streams the peer may have opened.
            initial_window_size: Our receive window per stream, strict mode only: when it
                is not the SPDY default of 64 KiB it is announced with SETTINGS, and a
                bigger one also raises the session window (WINDOW_UPDATE on stream 0).
            max_control_frame_size: Largest control frame accepted.
            max_header_block_size: Largest inflated header block accepted.
            max_headers: Most headers accepted in one block.
            trailing_data: Bytes that arrived after the upgrade response/request, decoded by
                :meth:`receive_trailing_data` (or at the start of the next
                :meth:`receive_data`).
            join_data: Report the DATA pieces of consecutive frames of one stream, within
                one :meth:`receive_data` call, as one :class:`StreamData` (one copy, one
                event per read instead of per frame: what a bulk transfer wants). Off, each
                frame's piece is its own event.

        Raises:
            LocalProtocolError: A limit is out of range.
        """
        if max_concurrent_streams < 1:
            raise LocalProtocolError("max_concurrent_streams must be at least 1")
        if not 1 <= initial_window_size <= MAX_WINDOW_SIZE:
            raise LocalProtocolError(f"initial_window_size must be in 1..{MAX_WINDOW_SIZE}")
        #: True in the client role.
        self.is_client = client
        self._strict = strict_flow_control
        self._join_data = join_data
        self._max_concurrent_streams = max_concurrent_streams
        self._initial_window_size = initial_window_size
        self._decoder = FrameDecoder(max_control_frame_size=max_control_frame_size,
                                     max_header_block_size=max_header_block_size,
                                     max_headers=max_headers)
        self._encoder = FrameEncoder()
        self._outgoing: list[bytes | memoryview] = []
        self._state = SessionState.OPEN
        self._streams: dict[int, _Stream] = {}
        self._peer_stream_count = 0
        # Ours: client odd from 1, server even from 2 (connection.go NewConnection).
        self._next_stream_id = 1 if client else 2
        self._highest_peer_stream_id = 0
        self._next_ping_id = 1 if client else 2
        self._pings: dict[int, float] = {}
        # Echoes of the peer's pings not yet taken, and the latest one past the bound.
        self._unsent_echoes = 0
        self._held_ping: int | None = None
        self._trailing_data = bytes(trailing_data)
        #: Whether the peer sent GOAWAY, and with which status.
        self.goaway_received = False
        self.goaway_status: int | None = None
        #: The peer's SETTINGS, id -> value (recorded; INITIAL_WINDOW_SIZE is applied).
        self.peer_settings: dict[int, int] = {}
        self._peer_initial_window = DEFAULT_WINDOW_SIZE
        self._session_send = SendWindow()
        self._session_receive = ReceiveWindow(max(DEFAULT_WINDOW_SIZE, initial_window_size))
        if strict_flow_control and initial_window_size != DEFAULT_WINDOW_SIZE:
            self._announce_windows(initial_window_size)

    # ------------------------------------------------------------------ public state

    @property
    def state(self) -> SessionState:
        """The session's state."""
        return self._state

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping not answered yet, or None."""
        return next(iter(self._pings.values()), None)

    @property
    def last_peer_stream_id(self) -> int:
        """The highest stream id the peer opened (0 if none): GOAWAY's last-good id."""
        return self._highest_peer_stream_id

    def stream_state(self, stream_id: int) -> StreamState:
        """Return the state of a stream.

        Streams are forgotten once CLOSED; an id below the highest one opened on its side
        reads as CLOSED, any other unknown id as IDLE.

        Args:
            stream_id: Any stream id.

        Returns:
            The stream's state.
        """
        stream = self._streams.get(stream_id)
        if stream is not None:
            return stream.state
        if self._is_our_id(stream_id):
            opened = stream_id < self._next_stream_id
        else:
            opened = stream_id <= self._highest_peer_stream_id
        return StreamState.CLOSED if opened else StreamState.IDLE

    def send_window(self, stream_id: int) -> int | None:
        """Return how many bytes :meth:`send_data` accepts on the stream now.

        Args:
            stream_id: A stream id.

        Returns:
            None when flow control is advisory (the default: unlimited); otherwise the
            smaller of the stream's and the session's window (0 if the stream cannot send).
        """
        if not self._strict:
            return None
        stream = self._streams.get(stream_id)
        if (stream is None or stream.send_window is None
                or stream.state not in STREAM_SENDING_STATES):
            return 0
        return max(0, min(stream.send_window.size, self._session_send.size))

    def can_send(self, stream_id: int) -> bool:
        """Return whether the stream's state lets us send DATA and FIN on it.

        It is :data:`STREAM_TRANSITIONS`' answer to SEND_DATA (SEND_FIN is allowed in the
        same states); when it is False, :meth:`send_data` and :meth:`end_stream` raise
        :class:`StreamClosedError`. Whether the session itself still sends is
        :attr:`state`'s business (:data:`SESSION_TRANSITIONS`).

        Args:
            stream_id: Any stream id.

        Returns:
            True if the stream is ours or replied, and our half of it is open.
        """
        stream = self._streams.get(stream_id)
        return stream is not None and (stream.state, _I.SEND_DATA) in STREAM_TRANSITIONS

    # ------------------------------------------------------------------ output

    def data_to_send(self) -> bytes:
        """Return every byte queued so far (``b""`` if none) and clear the queue."""
        if self._unsent_echoes:
            self._unsent_echoes = 0
            if self._held_ping is not None:
                self._outgoing.append(self._encoder.ping(self._held_ping))
                self._held_ping = None
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    # ------------------------------------------------------------------ input

    def receive_trailing_data(self) -> list[SpdyEvent]:
        """Decode the constructor's ``trailing_data`` now, if not done already.

        Call it right after creating the session, before waiting for more bytes: frames
        that came in the same read as the upgrade response would otherwise wait for the
        next read.

        Returns:
            The events those bytes complete.

        Raises:
            RemoteProtocolError: As :meth:`receive_data`.
        """
        if not self._trailing_data:
            return []
        data, self._trailing_data = self._trailing_data, b""
        return self.receive_data(data)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[SpdyEvent]:
        """Feed bytes received from the peer; ``b""`` means the byte stream ended.

        Args:
            data: The next bytes, of any length.

        Returns:
            The events they complete, in order. Answers (PING echoes, RST_STREAMs) are
            already queued in :meth:`data_to_send`.

        Raises:
            RemoteProtocolError: The peer broke the protocol. GOAWAY PROTOCOL_ERROR is
                queued first; the session is FAILED. Events of frames decoded earlier in
                the same call are lost with it (as in h2).
            LocalProtocolError: Bytes fed after EOF.
        """
        events: list[SpdyEvent] = []
        if self._trailing_data:
            events += self.receive_trailing_data()
        if not len(data):
            self._on_eof(events)
            return events
        self._check_receive(SessionInput.RECV_DATA)
        try:
            # Borrowed pieces are views of ``data``: every one is copied (or dropped)
            # before this call returns, the caller's buffer is free again after it.
            frames = self._decoder.feed(data, borrow=True)
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise
        run: list[bytes | memoryview] = []  # pieces for run_stream, not yet delivered
        run_stream = 0
        try:
            for frame in frames:
                if type(frame) is DataFrame and self._takes_data_fast(frame):
                    if frame.stream_id != run_stream or not self._join_data:
                        self._deliver_run(run_stream, run, events)
                        run_stream = frame.stream_id
                    run.append(frame.data)
                    continue
                self._deliver_run(run_stream, run, events)
                self._handle_frame(frame, events)
            self._deliver_run(run_stream, run, events)
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise
        return events

    def _takes_data_fast(self, frame: DataFrame) -> bool:
        """Whether a DATA piece without FIN goes to a stream that takes it as it is.

        The bulk of every transfer, so it skips the table lookups: in these states (the
        session running, the stream open for the peer, advisory flow control) RECV_DATA
        changes neither machine (SESSION_TRANSITIONS, STREAM_TRANSITIONS). Everything else
        goes through :meth:`_handle_frame`.
        """
        if frame.fin or self._strict or self._state is not _SS.OPEN:
            return False
        stream = self._streams.get(frame.stream_id)
        if stream is None:
            return False
        state = stream.state
        return state is _S.OPEN or state is _S.HALF_CLOSED_LOCAL or state is _S.UNREPLIED

    @staticmethod
    def _deliver_run(stream_id: int, run: list[bytes | memoryview],
                     events: list[SpdyEvent]) -> None:
        """Report consecutive pieces of one stream as one StreamData: one copy, one event."""
        if run:
            events.append(StreamData(stream_id=stream_id,
                                     data=bytes(run[0]) if len(run) == 1 else b"".join(run)))
            run.clear()

    # ------------------------------------------------------------------ actions

    def open_stream(self, headers: Iterable[tuple[str, str]], *, fin: bool = False) -> int:
        """Open a stream with SYN_STREAM and return its id.

        Args:
            headers: ``(name, value)`` pairs, names lower-case (Kubernetes:
                ``[("streamtype", "error")]``).
            fin: Half-close at once (we will send nothing on it).

        Returns:
            The new stream's id.

        Raises:
            LocalProtocolError: The session cannot open streams (GOAWAY either way, EOF,
                failure), the ids are exhausted, or a header is invalid.
        """
        self._check_send(SessionInput.SEND_SYN_STREAM)
        stream_id = self._next_stream_id
        if stream_id > MAX_STREAM_ID:
            raise LocalProtocolError("stream ids are exhausted; open a new session")
        frame = self._encoder.syn_stream(stream_id, headers, fin=fin)
        # Creation is serialised, so ids on the wire strictly increase (connection.go
        # CreateStream).
        self._next_stream_id += 2
        stream = self._new_stream(local=True)
        self._streams[stream_id] = stream
        self._move(stream_id, stream, self._plan(stream, [_I.SEND_SYN_STREAM], fin))
        self._outgoing.append(frame)
        return stream_id

    def reply(self, stream_id: int, headers: Iterable[tuple[str, str]] = (), *,
              fin: bool = False) -> None:
        """Accept a stream the peer opened (SYN_REPLY; Kubernetes sends no headers).

        Args:
            stream_id: A stream from a :class:`StreamOpened` event.
            headers: Reply headers.
            fin: Half-close at once.

        Raises:
            LocalProtocolError: Not a stream awaiting our reply, or an invalid header.
        """
        self._check_send(SessionInput.SEND_SYN_REPLY)
        stream = self._live_stream(stream_id)
        target = self._plan(stream, [_I.SEND_SYN_REPLY], fin)
        self._outgoing.append(self._encoder.syn_reply(stream_id, headers, fin=fin))
        self._move(stream_id, stream, target)

    def send_headers(self, stream_id: int, headers: Iterable[tuple[str, str]], *,
                     fin: bool = False) -> None:
        """Send a HEADERS frame on a stream (Kubernetes never does).

        Args:
            stream_id: A stream we may send on.
            headers: ``(name, value)`` pairs.
            fin: Half-close the stream.

        Raises:
            LocalProtocolError: The stream cannot send, or a header is invalid.
        """
        self._check_send(SessionInput.SEND_HEADERS)
        stream = self._live_stream(stream_id)
        target = self._plan(stream, [_I.SEND_HEADERS], fin)
        self._outgoing.append(self._encoder.headers(stream_id, headers, fin=fin))
        self._move(stream_id, stream, target)

    def send_data(self, stream_id: int, data: bytes | bytearray | memoryview, *,
                  fin: bool = False) -> None:
        """Send bytes on a stream: one DATA frame per 2^24-1 bytes (Go writes one per call).

        Empty ``data`` without ``fin`` sends nothing. In strict flow-control mode, ``data``
        must fit in :meth:`send_window`.

        Args:
            stream_id: A stream we may send on (:meth:`can_send`).
            data: The payload; ``bytes`` are framed without a copy until
                :meth:`data_to_send`, other buffers are copied once now.
            fin: Half-close the stream after the data.

        Raises:
            StreamClosedError: The stream's state does not let us send (checked first).
            LocalProtocolError: The session no longer sends, or (strict mode) the data
                exceeds the flow-control window.
        """
        payload = data if type(data) is bytes else _immutable_view(data)
        size = len(payload)
        stream = self._streams.get(stream_id)
        if (stream is not None and stream.state in STREAM_SENDING_STATES
                and self._state in SESSION_SENDING_STATES and not fin and not self._strict
                and 0 < size <= MAX_FRAME_LENGTH):
            # The bulk of every upload: one frame, which moves neither machine. Header and
            # payload as two parts: data_to_send() joins them, the payload's one copy (none
            # here when it is already immutable).
            outgoing = self._outgoing
            outgoing.append(pack_data_header(stream_id, size))
            outgoing.append(payload)
            return
        stream = self._live_stream(stream_id, StreamClosedError)
        target = self._plan(stream, [_I.SEND_DATA], fin, StreamClosedError)
        self._check_send(SessionInput.SEND_DATA)
        if self._strict and size:
            window = self.send_window(stream_id) or 0
            if size > window:
                raise LocalProtocolError(
                    f"{size} bytes exceed the flow-control window ({window}) of stream "
                    f"{stream_id}; wait for WINDOW_UPDATE")
            assert stream.send_window is not None
            stream.send_window.consume(size)
            self._session_send.consume(size)
        self._queue_data(stream_id, payload, fin)
        self._move(stream_id, stream, target)

    def end_stream(self, stream_id: int) -> None:
        """Half-close a stream: an empty DATA frame with FIN (Go ``Stream.Close``).

        Args:
            stream_id: A stream we may send on.

        Raises:
            StreamClosedError: We already half-closed it, or it is not open (checked first).
            LocalProtocolError: The session no longer sends.
        """
        stream = self._live_stream(stream_id, StreamClosedError)
        target = self._plan(stream, [], True, StreamClosedError)
        self._check_send(SessionInput.SEND_DATA)
        self._outgoing.append(self._encoder.data_header(stream_id, 0, True))
        self._move(stream_id, stream, target)

    def reset_stream(self, stream_id: int, status: int = RstStatus.CANCEL) -> None:
        """Abort a stream with RST_STREAM (Go ``Stream.Reset`` sends CANCEL).

        Resetting a stream that is already CLOSED does nothing.

        Args:
            stream_id: A stream that was opened, by either side.
            status: A :class:`RstStatus`.

        Raises:
            LocalProtocolError: The stream was never opened, or the status is invalid.
        """
        self._check_send(SessionInput.SEND_RST_STREAM)
        stream = self._streams.get(stream_id)
        if stream is None:
            if self.stream_state(stream_id) is StreamState.CLOSED:
                return
            raise LocalProtocolError(f"stream {stream_id} was never opened")
        frame = self._encoder.rst_stream(stream_id, status)
        self._move(stream_id, stream, self._plan(stream, [_I.SEND_RST], False))
        self._outgoing.append(frame)

    def ping(self, now: float) -> None:
        """Send a PING; the echo comes back as :class:`PongReceived` with ``sent_at=now``.

        Args:
            now: The current time on any monotonic clock.

        Raises:
            LocalProtocolError: The session cannot send.
        """
        self._check_send(SessionInput.SEND_PING)
        ping_id = self._next_ping_id
        # connection.go Ping: +2 per ping, wrapping below 2^31 to keep the parity.
        self._next_ping_id += 2
        if self._next_ping_id > MAX_STREAM_ID:
            self._next_ping_id = 1 if self.is_client else 2
        if len(self._pings) >= _MAX_OUTSTANDING_PINGS:
            del self._pings[next(iter(self._pings))]
        self._pings[ping_id] = now
        self._outgoing.append(self._encoder.ping(ping_id))

    def goaway(self, status: int = GoAwayStatus.OK) -> None:
        """End the session with GOAWAY; nothing more may be sent afterwards.

        Last-good id is the highest stream id the peer opened, or 0 (connection.go Close).

        Args:
            status: A :class:`GoAwayStatus`.

        Raises:
            LocalProtocolError: GOAWAY was already sent, or the session is over.
        """
        self._check_send(SessionInput.SEND_GOAWAY, commit=False)
        frame = self._encoder.goaway(self._highest_peer_stream_id, status)
        self._check_send(SessionInput.SEND_GOAWAY)
        self._outgoing.append(frame)

    def close(self) -> None:
        """Orderly end: GOAWAY OK (the shape every kstream connection shares).

        Raises:
            LocalProtocolError: As :meth:`goaway`.
        """
        self.goaway(GoAwayStatus.OK)

    def acknowledge_received_data(self, stream_id: int, n: int) -> None:
        """Report ``n`` bytes of the stream's data as consumed by the application.

        Strict flow-control mode: the session and stream windows are credited and a
        WINDOW_UPDATE is queued once worth it (h2: half the window processed). In the
        default advisory mode this does nothing (Go peers ignore WINDOW_UPDATE).

        Args:
            stream_id: The stream the bytes arrived on (it may be closed by now).
            n: Bytes consumed, at most what arrived and was not acknowledged yet.

        Raises:
            LocalProtocolError: ``n`` is negative or more than was received, or the session
                cannot send.
        """
        if n < 0:
            raise LocalProtocolError("cannot acknowledge a negative number of bytes")
        self._check_send(SessionInput.SEND_WINDOW_UPDATE)
        if not self._strict or not n:
            return
        stream = self._streams.get(stream_id)
        stream_window = stream.receive_window if stream is not None else None
        if n > self._session_receive.outstanding or (
                stream_window is not None and n > stream_window.outstanding):
            raise LocalProtocolError(f"acknowledged {n} bytes on stream {stream_id}, more "
                                     "than were received")
        if stream is not None and stream_window is not None:
            increment = stream_window.process(n)
            if increment and stream.state in STREAM_RECEIVING_STATES:
                self._outgoing.append(self._encoder.window_update(stream_id, increment))
        self._credit_session(n)

    # ------------------------------------------------------------------ machinery

    def _announce_windows(self, size: int) -> None:
        # SETTINGS sets the peer's stream windows; the session window always starts at
        # 64 KiB (SPDY/3.1 §2.6.8), so a bigger one is granted by WINDOW_UPDATE on stream 0.
        self._outgoing.append(self._encoder.settings([(0, SettingId.INITIAL_WINDOW_SIZE,
                                                       size)]))
        if size > DEFAULT_WINDOW_SIZE:
            self._outgoing.append(self._encoder.window_update(0, size - DEFAULT_WINDOW_SIZE))

    def _is_our_id(self, stream_id: int) -> bool:
        return (stream_id & 1) == (1 if self.is_client else 0)

    def _new_stream(self, *, local: bool) -> _Stream:
        if not self._strict:
            return _Stream(local=local, send_window=None, receive_window=None)
        return _Stream(local=local, send_window=SendWindow(self._peer_initial_window),
                       receive_window=ReceiveWindow(self._initial_window_size))

    def _check_send(self, inp: SessionInput, *, commit: bool = True) -> None:
        """Apply a sending input to the session machine or raise LocalProtocolError."""
        target = SESSION_TRANSITIONS.get((self._state, inp))
        if target is None:
            raise LocalProtocolError(
                f"cannot {inp.value.removeprefix('SEND_')} in session state "
                f"{self._state.value}")
        if commit:
            self._state = target

    def _check_receive(self, inp: SessionInput) -> None:
        """Apply a receiving input to the session machine or raise."""
        target = SESSION_TRANSITIONS.get((self._state, inp))
        if target is not None:
            self._state = target
        elif self._state is SessionState.FAILED:
            raise RemoteProtocolError("the SPDY session failed earlier",
                                      spdy_status=GoAwayStatus.PROTOCOL_ERROR)
        else:
            raise LocalProtocolError("bytes received after the end of the byte stream")

    def _fail(self, exc: RemoteProtocolError) -> None:
        if self._state is SessionState.FAILED:
            # Defensive: only receive_data calls _fail, after _check_receive, which raises
            # on a FAILED session before any frame is decoded.
            return  # pragma: no cover
        if self._state is not SessionState.GOAWAY_SENT:
            self._outgoing.append(self._encoder.goaway(self._highest_peer_stream_id,
                                                       GoAwayStatus.PROTOCOL_ERROR))
        if exc.spdy_status is None:
            # Defensive: the decoder, the header codec and the handlers raise every
            # RemoteProtocolError with its spdy_status set.
            exc.spdy_status = GoAwayStatus.PROTOCOL_ERROR  # pragma: no cover
        self._state = SessionState.FAILED

    def _live_stream(self, stream_id: int,
                     error: type[LocalProtocolError] = LocalProtocolError) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise error(f"stream {stream_id} is {self.stream_state(stream_id).value}")
        return stream

    @staticmethod
    def _plan(stream: _Stream, inputs: list[StreamInput], fin: bool,
              error: type[LocalProtocolError] = LocalProtocolError) -> StreamState:
        """Return where sending ``inputs`` (then FIN) takes the stream, or raise ``error``."""
        state = stream.state
        for inp in [*inputs, _I.SEND_FIN] if fin else inputs:
            target = STREAM_TRANSITIONS.get((state, inp))
            if target is None:
                raise error(f"cannot {inp.value.removeprefix('SEND_')} on a stream in state "
                            f"{state.value}")
            state = target
        return state

    def _move(self, stream_id: int, stream: _Stream, target: StreamState) -> None:
        stream.state = target
        if target is not StreamState.CLOSED:
            return
        if self._streams.pop(stream_id, None) is not None and not stream.local:
            self._peer_stream_count -= 1

    def _receive(self, stream_id: int, inp: StreamInput,
                 events: list[SpdyEvent]) -> _Outcome:
        """Apply a received input to its stream's machine.

        Stream errors queue RST_STREAM and close the stream; a session error raises
        RemoteProtocolError.
        """
        state = self.stream_state(stream_id)
        target = STREAM_TRANSITIONS.get((state, inp))
        if target is not None:
            self._move(stream_id, self._streams[stream_id], target)
            return _Outcome.DELIVER
        key = (state, inp)
        if key not in STREAM_RECEIVE_VIOLATIONS:
            raise RemoteProtocolError(
                f"{inp.value.removeprefix('RECV_')} for stream {stream_id}, which was never "
                "opened", spdy_status=GoAwayStatus.PROTOCOL_ERROR)
        status = STREAM_RECEIVE_VIOLATIONS[key]
        if status is None:
            return _Outcome.DROP
        self._stream_error(stream_id, status, events)
        return _Outcome.RESET

    def _receive_fin(self, stream_id: int, fin: bool, events: list[SpdyEvent]) -> None:
        if fin and self._receive(stream_id, _I.RECV_FIN, events) is _Outcome.DELIVER:
            events.append(StreamEnded(stream_id=stream_id))

    def _stream_error(self, stream_id: int, status: RstStatus,
                      events: list[SpdyEvent]) -> None:
        """Reset a stream because the peer broke its rules."""
        self._outgoing.append(self._encoder.rst_stream(stream_id, status))
        stream = self._streams.get(stream_id)
        if stream is not None:
            self._move(stream_id, stream, StreamState.CLOSED)
            events.append(StreamReset(stream_id=stream_id, status=status, local=True))

    def _queue_data(self, stream_id: int, payload: bytes | memoryview, fin: bool) -> None:
        size = len(payload)
        if not size:
            if fin:
                self._outgoing.append(self._encoder.data_header(stream_id, 0, True))
            return
        payload = memoryview(payload)  # slices of it are views, not copies
        for start in range(0, size, MAX_FRAME_LENGTH):
            chunk = payload[start:start + MAX_FRAME_LENGTH]
            last = start + MAX_FRAME_LENGTH >= size
            self._outgoing.append(self._encoder.data_header(stream_id, len(chunk),
                                                            fin and last))
            self._outgoing.append(chunk)

    def _credit_session(self, n: int) -> None:
        increment = self._session_receive.process(n)
        if increment:
            self._outgoing.append(self._encoder.window_update(0, increment))
