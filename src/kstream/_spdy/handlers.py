"""The receiving half of the SPDY/3.1 session: what each decoded frame does.

:class:`FrameHandlers` is a base of :class:`~kstream._spdy.session.SpdySession`, which
decodes the frames (``receive_data``) and hands every one its fast path does not take to
:meth:`FrameHandlers._handle_frame`. The handlers apply the state tables of
``_spdy/state.py`` through the session's machinery (declared below, defined in
``_spdy/session.py``), queue the answers the protocol makes on its own (PING echoes,
RST_STREAM for broken stream rules, WINDOW_UPDATE overflows in strict mode) and report
events (``_spdy/events.py``).
"""

from __future__ import annotations

import enum
import struct
from typing import TYPE_CHECKING, Final

from .._errors import LocalProtocolError, RemoteProtocolError
from .._events import ConnectionClosed, PingReceived, PongReceived
from .events import (
    DataDropped,
    GoAwayReceived,
    HeadersReceived,
    SettingsReceived,
    SpdyEvent,
    StreamData,
    StreamOpened,
    StreamReplied,
    StreamReset,
    UnknownFrameSkipped,
    WindowUpdated,
)
from .flow import MAX_WINDOW_SIZE, ReceiveWindow, SendWindow, WindowOverflowError
from .frames import (
    MAX_STREAM_ID,
    DataFrame,
    Frame,
    FrameDecoder,
    FrameEncoder,
    GoAwayFrame,
    GoAwayStatus,
    HeadersFrame,
    PingFrame,
    RstStatus,
    RstStreamFrame,
    SettingId,
    SettingsFrame,
    SynReplyFrame,
    SynStreamFrame,
    UnknownControlFrame,
    WindowUpdateFrame,
)
from .state import (
    STREAM_RECEIVE_VIOLATIONS,
    SessionInput,
    SessionState,
    StreamInput,
    StreamState,
    _Stream,
)

__all__ = ["FrameHandlers"]

_I = StreamInput
_PE = RstStatus.PROTOCOL_ERROR


class _Outcome(enum.Enum):
    """What becomes of a received frame after the stream machine saw it."""

    DELIVER = "DELIVER"  # valid: report it
    DROP = "DROP"  # ignored silently, as Go does
    RESET = "RESET"  # stream error: RST_STREAM queued, stream closed


_DELIVER = _Outcome.DELIVER


_PING_ID = struct.Struct(">I")
#: Ping echoes queued and not yet taken by ``data_to_send()``; past this only the most
#: recent ping is echoed, when the queue is next taken (a peer that pings and never reads
#: would otherwise grow the queue without bound).
MAX_UNSENT_ECHOES: Final = 16
#: The SETTINGS ids SPDY/3 defines: the only ones kept (``peer_settings``).
_KNOWN_SETTINGS: Final = frozenset(int(setting) for setting in SettingId)


class FrameHandlers:
    """What each received frame does to a session (a base of ``SpdySession``)."""

    # The session state the handlers read and change (``SpdySession.__init__`` sets it).
    is_client: bool
    goaway_received: bool
    goaway_status: int | None
    peer_settings: dict[int, int]
    _state: SessionState
    _strict: bool
    _streams: dict[int, _Stream]
    _outgoing: list[bytes | memoryview]
    _encoder: FrameEncoder
    _decoder: FrameDecoder
    _pings: dict[int, float]
    _unsent_echoes: int
    _held_ping: int | None
    _highest_peer_stream_id: int
    _peer_stream_count: int
    _max_concurrent_streams: int
    _peer_initial_window: int
    _session_send: SendWindow
    _session_receive: ReceiveWindow

    if TYPE_CHECKING:
        # The session's machinery the handlers use (defined in ``_spdy/session.py``).
        def stream_state(self, stream_id: int) -> StreamState: ...
        def _check_receive(self, inp: SessionInput) -> None: ...
        def _receive(self, stream_id: int, inp: StreamInput,
                     events: list[SpdyEvent]) -> _Outcome: ...
        def _receive_fin(self, stream_id: int, fin: bool, events: list[SpdyEvent]) -> None: ...
        def _stream_error(self, stream_id: int, status: RstStatus,
                          events: list[SpdyEvent]) -> None: ...
        def _is_our_id(self, stream_id: int) -> bool: ...
        def _new_stream(self, *, local: bool) -> _Stream: ...
        def _move(self, stream_id: int, stream: _Stream, target: StreamState) -> None: ...
        @staticmethod
        def _plan(stream: _Stream, inputs: list[StreamInput], fin: bool,
                  error: type[LocalProtocolError] = LocalProtocolError) -> StreamState: ...
        def _credit_session(self, n: int) -> None: ...

    def _handle_frame(self, frame: Frame, events: list[SpdyEvent]) -> None:
        match frame:
            case DataFrame():
                self._check_receive(SessionInput.RECV_DATA)
                self._on_data(frame, events)
            case SynStreamFrame():
                self._check_receive(SessionInput.RECV_SYN_STREAM)
                self._on_syn_stream(frame, events)
            case SynReplyFrame():
                self._check_receive(SessionInput.RECV_SYN_REPLY)
                self._on_syn_reply(frame, events)
            case HeadersFrame():
                self._check_receive(SessionInput.RECV_HEADERS)
                if self._receive(frame.stream_id, _I.RECV_HEADERS, events) is _DELIVER:
                    events.append(HeadersReceived(stream_id=frame.stream_id,
                                                  headers=frame.headers, fin=frame.fin))
                    self._receive_fin(frame.stream_id, frame.fin, events)
            case RstStreamFrame():
                self._check_receive(SessionInput.RECV_RST_STREAM)
                if self._receive(frame.stream_id, _I.RECV_RST, events) is _DELIVER:
                    events.append(StreamReset(stream_id=frame.stream_id, status=frame.status))
            case PingFrame():
                self._check_receive(SessionInput.RECV_PING)
                self._on_ping(frame, events)
            case GoAwayFrame():
                self._check_receive(SessionInput.RECV_GOAWAY)
                self.goaway_received = True
                self.goaway_status = frame.status
                events.append(GoAwayReceived(last_good_stream_id=frame.last_good_stream_id,
                                             status=frame.status))
            case SettingsFrame():
                self._check_receive(SessionInput.RECV_SETTINGS)
                self._on_settings(frame, events)
            case WindowUpdateFrame():
                self._check_receive(SessionInput.RECV_WINDOW_UPDATE)
                self._on_window_update(frame, events)
            # The decoder yields only the ten frame classes above: a case always matches.
            case UnknownControlFrame():  # pragma: no branch
                self._check_receive(SessionInput.RECV_UNKNOWN)
                events.append(UnknownFrameSkipped(frame_type=frame.frame_type))

    def _on_syn_stream(self, frame: SynStreamFrame, events: list[SpdyEvent]) -> None:
        stream_id = frame.stream_id
        if self._state is not SessionState.OPEN:
            # After a GOAWAY either way, new streams are ignored (connection.go
            # checkStreamFrame returns false without a reset once goneAway).
            return
        if (self._is_our_id(stream_id) or stream_id <= self._highest_peer_stream_id
                or stream_id > MAX_STREAM_ID):
            # connection.go validateStreamId: RST PROTOCOL_ERROR for that id, frame ignored
            # (Go does not check the parity; we do). A live stream with that id is closed
            # with it, as the peer will consider it reset (STREAM_RECEIVE_VIOLATIONS).
            key = (self.stream_state(stream_id), _I.RECV_SYN_STREAM)
            self._stream_error(stream_id, STREAM_RECEIVE_VIOLATIONS.get(key) or _PE, events)
            return
        self._highest_peer_stream_id = stream_id
        if self._peer_stream_count >= self._max_concurrent_streams:
            self._outgoing.append(self._encoder.rst_stream(stream_id,
                                                           RstStatus.REFUSED_STREAM))
            return
        stream = self._new_stream(local=False)
        self._streams[stream_id] = stream
        self._peer_stream_count += 1
        self._move(stream_id, stream, StreamState.UNREPLIED)
        events.append(StreamOpened(stream_id=stream_id, headers=frame.headers, fin=frame.fin,
                                   unidirectional=frame.unidirectional))
        if frame.unidirectional:
            # We may not send on it: as if replied and half-closed already (Go marks the
            # stream finished, connection.go addStreamFrame).
            self._move(stream_id, stream, self._plan(stream, [_I.SEND_SYN_REPLY], True))
        self._receive_fin(stream_id, frame.fin, events)

    def _on_syn_reply(self, frame: SynReplyFrame, events: list[SpdyEvent]) -> None:
        if self._receive(frame.stream_id, _I.RECV_SYN_REPLY, events) is _DELIVER:
            events.append(StreamReplied(stream_id=frame.stream_id, headers=frame.headers,
                                        fin=frame.fin))
            self._receive_fin(frame.stream_id, frame.fin, events)

    def _on_data(self, frame: DataFrame, events: list[SpdyEvent]) -> None:
        stream_id = frame.stream_id
        size = len(frame.data)
        if self._strict and size and not self._session_receive.consume(size):
            raise RemoteProtocolError(
                f"DATA beyond the session flow-control window ({size} bytes)",
                spdy_status=GoAwayStatus.PROTOCOL_ERROR)
        outcome = self._receive(stream_id, _I.RECV_DATA, events)
        if outcome is _DELIVER and self._strict and size:
            window = self._streams[stream_id].receive_window
            assert window is not None
            if not window.consume(size):
                self._stream_error(stream_id, RstStatus.FLOW_CONTROL_ERROR, events)
                outcome = _Outcome.RESET
        if outcome is not _DELIVER:
            if outcome is _Outcome.DROP and size:
                events.append(DataDropped(stream_id=stream_id, size=size))
            if self._strict and size:
                # The application never sees these bytes: return their session credit.
                self._credit_session(size)
            return
        if size:
            events.append(StreamData(stream_id=stream_id, data=bytes(frame.data)))
        self._receive_fin(stream_id, frame.fin, events)

    def _on_ping(self, frame: PingFrame, events: list[SpdyEvent]) -> None:
        payload = _PING_ID.pack(frame.ping_id)
        if (frame.ping_id & 1) != (1 if self.is_client else 0):
            # The peer's ping: echo it unchanged (connection.go handlePingFrame). Echoes
            # nobody takes (a peer that pings and never reads) are bounded: past
            # MAX_UNSENT_ECHOES only the latest is kept, for the next data_to_send().
            if self._unsent_echoes < MAX_UNSENT_ECHOES:
                self._outgoing.append(self._encoder.ping(frame.ping_id))
                self._unsent_echoes += 1
            else:
                self._held_ping = frame.ping_id
            events.append(PingReceived(payload=payload))
            return
        sent_at = self._pings.pop(frame.ping_id, None)
        if sent_at is not None:
            events.append(PongReceived(payload=payload, sent_at=sent_at))

    def _on_settings(self, frame: SettingsFrame, events: list[SpdyEvent]) -> None:
        if frame.clear:
            self.peer_settings.clear()
        for _flags, setting_id, value in frame.entries:
            if setting_id in _KNOWN_SETTINGS:  # a peer may send 2^24 distinct ids
                self.peer_settings[setting_id] = value
            if setting_id == SettingId.INITIAL_WINDOW_SIZE and self._strict:
                self._apply_initial_window(value, events)
        events.append(SettingsReceived(entries=frame.entries))

    def _apply_initial_window(self, value: int, events: list[SpdyEvent]) -> None:
        if value > MAX_WINDOW_SIZE:
            raise RemoteProtocolError(f"SETTINGS INITIAL_WINDOW_SIZE {value} exceeds 2^31-1",
                                      spdy_status=GoAwayStatus.PROTOCOL_ERROR)
        # Applies to open streams as a delta (SPDY/3.1 §2.6.8; h2
        # _flow_control_change_from_settings).
        delta = value - self._peer_initial_window
        self._peer_initial_window = value
        for stream_id, stream in list(self._streams.items()):
            assert stream.send_window is not None
            try:
                stream.send_window.grow(delta)
            except WindowOverflowError:
                self._stream_error(stream_id, RstStatus.FLOW_CONTROL_ERROR, events)

    def _on_window_update(self, frame: WindowUpdateFrame, events: list[SpdyEvent]) -> None:
        events.append(WindowUpdated(stream_id=frame.stream_id, delta=frame.delta))
        if not self._strict or not frame.delta:
            return
        if frame.stream_id == 0:
            try:
                self._session_send.grow(frame.delta)
            except WindowOverflowError as exc:
                raise RemoteProtocolError(str(exc),
                                          spdy_status=GoAwayStatus.PROTOCOL_ERROR) from None
            return
        stream = self._streams.get(frame.stream_id)
        if stream is None or stream.send_window is None:
            return
        try:
            stream.send_window.grow(frame.delta)
        except WindowOverflowError:
            self._stream_error(frame.stream_id, RstStatus.FLOW_CONTROL_ERROR, events)

    def _on_eof(self, events: list[SpdyEvent]) -> None:
        state = self._state
        if state is SessionState.CLOSED:
            return
        self._check_receive(SessionInput.RECV_EOF)
        # Clean: the peer ended with GOAWAY OK, or answered our GOAWAY by closing, or
        # closed with no stream left open; never in the middle of a frame.
        if self._decoder.has_partial_frame:
            clean = False
        elif self.goaway_received:
            clean = self.goaway_status == GoAwayStatus.OK
        else:
            clean = state is SessionState.GOAWAY_SENT or not self._streams
        events.append(ConnectionClosed(code=self.goaway_status, clean=clean))
