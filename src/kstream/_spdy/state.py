"""The two SPDY/3.1 state machines of a session, each one table (h2's style).

* :data:`STREAM_TRANSITIONS` maps ``(StreamState, StreamInput)`` to the next state. A frame
  carrying FIN is two inputs, the frame's own then ``*_FIN``. A received input the table
  does not allow is looked up in :data:`STREAM_RECEIVE_VIOLATIONS`: either the frame is
  dropped silently (``None``, as moby/spdystream drops it) or it is a *stream* error,
  answered with RST_STREAM of the given status. A sending input the table does not allow
  is refused.
* :data:`SESSION_TRANSITIONS` maps ``(SessionState, SessionInput)`` to the next state;
  inputs are the frame types received or sent, EOF and "malformed bytes".

:class:`~kstream._spdy.session.SpdySession` applies them.

Stream error or session error? The decisions, after moby/spdystream ``connection.go`` and
the SPDY/3 draft (protocol-notes §3.4-3.6):

================================================  ============================================
Received                                          Answer
================================================  ============================================
bytes that do not decode (FrameDecoder error)     session: GOAWAY PROTOCOL_ERROR, raise
SYN_REPLY for an id never opened                  session: GOAWAY PROTOCOL_ERROR, raise
SETTINGS / WINDOW_UPDATE overflowing the session  session (strict mode only)
window, or DATA beyond the session window
SYN_STREAM with an id not above the last one,     RST_STREAM PROTOCOL_ERROR for that id, frame
of our parity, or above 2^31-1                    ignored (Go ``validateStreamId``; Go does not
                                                  check parity); a live stream of that id is
                                                  closed with it
SYN_STREAM beyond ``max_concurrent_streams``      RST_STREAM REFUSED_STREAM
SYN_STREAM after a GOAWAY (either way)            ignored (Go ``checkStreamFrame``)
SYN_REPLY on the peer's own stream                RST_STREAM PROTOCOL_ERROR
second SYN_REPLY                                  RST_STREAM STREAM_IN_USE (Go ignores it)
DATA / HEADERS after the peer's FIN               RST_STREAM STREAM_ALREADY_CLOSED (Go drops)
DATA / HEADERS for an unknown or closed stream,   dropped silently, as Go (``handleDataFrame``);
or for our stream before its SYN_REPLY            dropped DATA is reported as DataDropped
RST_STREAM / SYN_REPLY for a closed stream        ignored (our RST crossed theirs)
DATA beyond a stream window (strict mode)         RST_STREAM FLOW_CONTROL_ERROR
WINDOW_UPDATE overflowing a stream (strict)       RST_STREAM FLOW_CONTROL_ERROR
unknown control frame type                        skipped: UnknownFrameSkipped (Go: fatal)
================================================  ============================================

DATA for a stream the *peer* opened is delivered even before we replied. Go drops it
until its SYN_REPLY is written, but Kubernetes servers reply synchronously inside the
SYN_STREAM handler, so in practice nothing is dropped; a sans-IO caller cannot reply
between two frames of the same ``receive_data`` call, so dropping would lose real data.
"""

from __future__ import annotations

import enum
from typing import Final

from .flow import ReceiveWindow, SendWindow
from .frames import RstStatus

__all__ = [
    "SESSION_SENDING_STATES",
    "SESSION_TRANSITIONS",
    "STREAM_RECEIVE_VIOLATIONS",
    "STREAM_RECEIVING_STATES",
    "STREAM_SENDING_STATES",
    "STREAM_TRANSITIONS",
    "SessionInput",
    "SessionState",
    "StreamInput",
    "StreamState",
]

# --------------------------------------------------------------------------- stream machine


class _Key(enum.Enum):
    """Base of the tables' keys: members hash by identity.

    Members are singletons compared by identity, so the identity hash is the right one; it
    is also C-level, where ``Enum.__hash__`` (the hash of the name) is a Python call, and
    the tables and the sets below are looked up on every frame.
    """

    __hash__ = object.__hash__


class StreamState(_Key):
    """Where one stream stands, seen from this end."""

    #: Not opened yet (or an id nobody uses).
    IDLE = "IDLE"
    #: We sent SYN_STREAM; no SYN_REPLY yet. We may send; what the peer sends is dropped.
    AWAITING_REPLY = "AWAITING_REPLY"
    #: As AWAITING_REPLY, and we already sent FIN.
    AWAITING_REPLY_LOCAL_CLOSED = "AWAITING_REPLY_LOCAL_CLOSED"
    #: The peer sent SYN_STREAM; we have not replied. We may not send yet.
    UNREPLIED = "UNREPLIED"
    #: As UNREPLIED, and the peer already sent FIN.
    UNREPLIED_REMOTE_CLOSED = "UNREPLIED_REMOTE_CLOSED"
    #: Both halves open.
    OPEN = "OPEN"
    #: We sent FIN; the peer may still send.
    HALF_CLOSED_LOCAL = "HALF_CLOSED_LOCAL"
    #: The peer sent FIN; we may still send.
    HALF_CLOSED_REMOTE = "HALF_CLOSED_REMOTE"
    #: Both FINs, or a RST_STREAM either way.
    CLOSED = "CLOSED"


class StreamInput(_Key):
    """What can happen to a stream: a frame sent or received (FIN counts on its own)."""

    SEND_SYN_STREAM = "SEND_SYN_STREAM"
    RECV_SYN_STREAM = "RECV_SYN_STREAM"
    SEND_SYN_REPLY = "SEND_SYN_REPLY"
    RECV_SYN_REPLY = "RECV_SYN_REPLY"
    SEND_HEADERS = "SEND_HEADERS"
    RECV_HEADERS = "RECV_HEADERS"
    SEND_DATA = "SEND_DATA"
    RECV_DATA = "RECV_DATA"
    SEND_FIN = "SEND_FIN"
    RECV_FIN = "RECV_FIN"
    SEND_RST = "SEND_RST"
    RECV_RST = "RECV_RST"


_S = StreamState
_I = StreamInput

#: Valid moves of a stream. A sending input missing here raises LocalProtocolError; a
#: receiving input missing here is looked up in STREAM_RECEIVE_VIOLATIONS.
STREAM_TRANSITIONS: Final[dict[tuple[StreamState, StreamInput], StreamState]] = {
    (_S.IDLE, _I.SEND_SYN_STREAM): _S.AWAITING_REPLY,
    (_S.IDLE, _I.RECV_SYN_STREAM): _S.UNREPLIED,
    # Our stream, before the peer's SYN_REPLY: Go lets the opener write at once
    # (stream.go waitWriteReply only waits on streams the peer opened).
    (_S.AWAITING_REPLY, _I.RECV_SYN_REPLY): _S.OPEN,
    (_S.AWAITING_REPLY, _I.SEND_HEADERS): _S.AWAITING_REPLY,
    (_S.AWAITING_REPLY, _I.SEND_DATA): _S.AWAITING_REPLY,
    (_S.AWAITING_REPLY, _I.SEND_FIN): _S.AWAITING_REPLY_LOCAL_CLOSED,
    (_S.AWAITING_REPLY, _I.SEND_RST): _S.CLOSED,
    (_S.AWAITING_REPLY, _I.RECV_RST): _S.CLOSED,
    (_S.AWAITING_REPLY_LOCAL_CLOSED, _I.RECV_SYN_REPLY): _S.HALF_CLOSED_LOCAL,
    (_S.AWAITING_REPLY_LOCAL_CLOSED, _I.SEND_RST): _S.CLOSED,
    (_S.AWAITING_REPLY_LOCAL_CLOSED, _I.RECV_RST): _S.CLOSED,
    # The peer's stream, before our SYN_REPLY: we may not send (Go's WriteData waits for
    # the reply); what the peer sends is delivered (see the module docstring).
    (_S.UNREPLIED, _I.SEND_SYN_REPLY): _S.OPEN,
    (_S.UNREPLIED, _I.RECV_HEADERS): _S.UNREPLIED,
    (_S.UNREPLIED, _I.RECV_DATA): _S.UNREPLIED,
    (_S.UNREPLIED, _I.RECV_FIN): _S.UNREPLIED_REMOTE_CLOSED,
    (_S.UNREPLIED, _I.SEND_RST): _S.CLOSED,
    (_S.UNREPLIED, _I.RECV_RST): _S.CLOSED,
    (_S.UNREPLIED_REMOTE_CLOSED, _I.SEND_SYN_REPLY): _S.HALF_CLOSED_REMOTE,
    (_S.UNREPLIED_REMOTE_CLOSED, _I.SEND_RST): _S.CLOSED,
    (_S.UNREPLIED_REMOTE_CLOSED, _I.RECV_RST): _S.CLOSED,
    # Replied.
    (_S.OPEN, _I.SEND_HEADERS): _S.OPEN,
    (_S.OPEN, _I.RECV_HEADERS): _S.OPEN,
    (_S.OPEN, _I.SEND_DATA): _S.OPEN,
    (_S.OPEN, _I.RECV_DATA): _S.OPEN,
    (_S.OPEN, _I.SEND_FIN): _S.HALF_CLOSED_LOCAL,
    (_S.OPEN, _I.RECV_FIN): _S.HALF_CLOSED_REMOTE,
    (_S.OPEN, _I.SEND_RST): _S.CLOSED,
    (_S.OPEN, _I.RECV_RST): _S.CLOSED,
    (_S.HALF_CLOSED_LOCAL, _I.RECV_HEADERS): _S.HALF_CLOSED_LOCAL,
    (_S.HALF_CLOSED_LOCAL, _I.RECV_DATA): _S.HALF_CLOSED_LOCAL,
    (_S.HALF_CLOSED_LOCAL, _I.RECV_FIN): _S.CLOSED,
    (_S.HALF_CLOSED_LOCAL, _I.SEND_RST): _S.CLOSED,
    (_S.HALF_CLOSED_LOCAL, _I.RECV_RST): _S.CLOSED,
    (_S.HALF_CLOSED_REMOTE, _I.SEND_HEADERS): _S.HALF_CLOSED_REMOTE,
    (_S.HALF_CLOSED_REMOTE, _I.SEND_DATA): _S.HALF_CLOSED_REMOTE,
    (_S.HALF_CLOSED_REMOTE, _I.SEND_FIN): _S.CLOSED,
    (_S.HALF_CLOSED_REMOTE, _I.SEND_RST): _S.CLOSED,
    (_S.HALF_CLOSED_REMOTE, _I.RECV_RST): _S.CLOSED,
    # Resetting a closed stream is a no-op (no frame), like Go's Reset after the end.
    (_S.CLOSED, _I.SEND_RST): _S.CLOSED,
}

_PE = RstStatus.PROTOCOL_ERROR
_IN_USE = RstStatus.STREAM_IN_USE
_ALREADY_CLOSED = RstStatus.STREAM_ALREADY_CLOSED
_REOPENED: dict[tuple[StreamState, StreamInput], RstStatus | None] = {
    (state, _I.RECV_SYN_STREAM): _PE for state in StreamState if state is not _S.IDLE}
_AFTER_FIN: dict[StreamInput, RstStatus | None] = {
    _I.RECV_HEADERS: _ALREADY_CLOSED, _I.RECV_DATA: _ALREADY_CLOSED, _I.RECV_FIN: _ALREADY_CLOSED}
_BEFORE_REPLY: dict[StreamInput, RstStatus | None] = {
    _I.RECV_HEADERS: None, _I.RECV_DATA: None, _I.RECV_FIN: None}

#: Received inputs STREAM_TRANSITIONS refuses: ``None`` = drop the frame silently and keep
#: the state (Go's behaviour); a status = stream error, answered with RST_STREAM of that
#: status, the stream is then CLOSED. A received input in neither table is a session error
#: (only a SYN_REPLY for a stream never opened).
STREAM_RECEIVE_VIOLATIONS: Final[dict[tuple[StreamState, StreamInput], RstStatus | None]] = {
    **_REOPENED,
    # Unknown streams (connection.go handleDataFrame / handleHeaderFrame / handleResetFrame:
    # "stream has already gone away").
    (_S.IDLE, _I.RECV_HEADERS): None,
    (_S.IDLE, _I.RECV_DATA): None,
    (_S.IDLE, _I.RECV_FIN): None,
    (_S.IDLE, _I.RECV_RST): None,
    # Our streams before the SYN_REPLY ("Data frame not replied").
    **{(_S.AWAITING_REPLY, i): status for i, status in _BEFORE_REPLY.items()},
    **{(_S.AWAITING_REPLY_LOCAL_CLOSED, i): status for i, status in _BEFORE_REPLY.items()},
    # A SYN_REPLY from the peer to its own stream, or a second one.
    (_S.UNREPLIED, _I.RECV_SYN_REPLY): _PE,
    (_S.UNREPLIED_REMOTE_CLOSED, _I.RECV_SYN_REPLY): _PE,
    (_S.OPEN, _I.RECV_SYN_REPLY): _IN_USE,
    (_S.HALF_CLOSED_LOCAL, _I.RECV_SYN_REPLY): _IN_USE,
    (_S.HALF_CLOSED_REMOTE, _I.RECV_SYN_REPLY): _IN_USE,
    # Anything after the peer's FIN.
    **{(_S.UNREPLIED_REMOTE_CLOSED, i): status for i, status in _AFTER_FIN.items()},
    **{(_S.HALF_CLOSED_REMOTE, i): status for i, status in _AFTER_FIN.items()},
    # Closed streams: frames in flight when we reset, or a confused peer; Go ignores them.
    (_S.CLOSED, _I.RECV_SYN_REPLY): None,
    (_S.CLOSED, _I.RECV_HEADERS): None,
    (_S.CLOSED, _I.RECV_DATA): None,
    (_S.CLOSED, _I.RECV_FIN): None,
    (_S.CLOSED, _I.RECV_RST): None,
}

# --------------------------------------------------------------------------- session machine


class SessionState(_Key):
    """Where the whole session stands."""

    #: Normal operation.
    OPEN = "OPEN"
    #: We sent GOAWAY: every sending call now raises; received frames are still processed.
    GOAWAY_SENT = "GOAWAY_SENT"
    #: The peer sent GOAWAY: no new stream may be opened; open streams carry on.
    GOAWAY_RECEIVED = "GOAWAY_RECEIVED"
    #: The byte stream ended (EOF).
    CLOSED = "CLOSED"
    #: The peer broke the protocol; GOAWAY PROTOCOL_ERROR was queued.
    FAILED = "FAILED"


class SessionInput(_Key):
    """What can happen to the session: a frame type received or sent, EOF, or garbage."""

    RECV_SYN_STREAM = "RECV_SYN_STREAM"
    RECV_SYN_REPLY = "RECV_SYN_REPLY"
    RECV_RST_STREAM = "RECV_RST_STREAM"
    RECV_SETTINGS = "RECV_SETTINGS"
    RECV_PING = "RECV_PING"
    RECV_GOAWAY = "RECV_GOAWAY"
    RECV_HEADERS = "RECV_HEADERS"
    RECV_WINDOW_UPDATE = "RECV_WINDOW_UPDATE"
    RECV_DATA = "RECV_DATA"
    RECV_UNKNOWN = "RECV_UNKNOWN"
    RECV_EOF = "RECV_EOF"
    RECV_MALFORMED = "RECV_MALFORMED"
    SEND_SYN_STREAM = "SEND_SYN_STREAM"
    SEND_SYN_REPLY = "SEND_SYN_REPLY"
    SEND_RST_STREAM = "SEND_RST_STREAM"
    SEND_PING = "SEND_PING"
    SEND_GOAWAY = "SEND_GOAWAY"
    SEND_HEADERS = "SEND_HEADERS"
    SEND_WINDOW_UPDATE = "SEND_WINDOW_UPDATE"
    SEND_DATA = "SEND_DATA"


_SS = SessionState
_SI = SessionInput
_RECV_FRAMES = (_SI.RECV_SYN_STREAM, _SI.RECV_SYN_REPLY, _SI.RECV_RST_STREAM,
                _SI.RECV_SETTINGS, _SI.RECV_PING, _SI.RECV_HEADERS, _SI.RECV_WINDOW_UPDATE,
                _SI.RECV_DATA, _SI.RECV_UNKNOWN)
_SEND_ON_STREAMS = (_SI.SEND_SYN_REPLY, _SI.SEND_RST_STREAM, _SI.SEND_PING, _SI.SEND_HEADERS,
                    _SI.SEND_WINDOW_UPDATE, _SI.SEND_DATA)


def _receiving_rows(state: SessionState, after_goaway: SessionState) -> dict[
        tuple[SessionState, SessionInput], SessionState]:
    rows = {(state, inp): state for inp in _RECV_FRAMES}
    rows[state, _SI.RECV_GOAWAY] = after_goaway
    rows[state, _SI.RECV_EOF] = _SS.CLOSED
    rows[state, _SI.RECV_MALFORMED] = _SS.FAILED
    return rows


#: Valid moves of the session. A sending input missing here raises LocalProtocolError; so
#: does receiving after EOF (CLOSED); in FAILED receiving raises RemoteProtocolError again.
SESSION_TRANSITIONS: Final[dict[tuple[SessionState, SessionInput], SessionState]] = {
    **_receiving_rows(_SS.OPEN, _SS.GOAWAY_RECEIVED),
    **{(_SS.OPEN, inp): _SS.OPEN for inp in _SEND_ON_STREAMS},
    (_SS.OPEN, _SI.SEND_SYN_STREAM): _SS.OPEN,
    (_SS.OPEN, _SI.SEND_GOAWAY): _SS.GOAWAY_SENT,
    # After the peer's GOAWAY: existing streams carry on, no new ones.
    **_receiving_rows(_SS.GOAWAY_RECEIVED, _SS.GOAWAY_RECEIVED),
    **{(_SS.GOAWAY_RECEIVED, inp): _SS.GOAWAY_RECEIVED for inp in _SEND_ON_STREAMS},
    (_SS.GOAWAY_RECEIVED, _SI.SEND_GOAWAY): _SS.GOAWAY_SENT,
    # After our GOAWAY we send nothing more; what still arrives is processed.
    **_receiving_rows(_SS.GOAWAY_SENT, _SS.GOAWAY_SENT),
    (_SS.CLOSED, _SI.RECV_EOF): _SS.CLOSED,
}

# --------------------------------------------------------------------------- derived answers

# "May this stream send?" is the tables' answer to SEND_DATA, nothing else; these sets are
# that answer, computed once for the per-frame paths (a set lookup, not a table walk).

#: Stream states in which we may send DATA and FIN. SEND_DATA leaves each where it is.
STREAM_SENDING_STATES: Final = frozenset(
    state for (state, inp), target in STREAM_TRANSITIONS.items()
    if inp is _I.SEND_DATA and target is state)
#: Stream states in which the peer may send DATA.
STREAM_RECEIVING_STATES: Final = frozenset(
    state for (state, inp) in STREAM_TRANSITIONS if inp is _I.RECV_DATA)
#: Session states in which we may send DATA. SEND_DATA leaves each where it is.
SESSION_SENDING_STATES: Final = frozenset(
    state for (state, inp), target in SESSION_TRANSITIONS.items()
    if inp is _SI.SEND_DATA and target is state)

# --------------------------------------------------------------------------- a live stream


class _Stream:
    """Book-keeping of one live (not CLOSED) stream."""

    __slots__ = ("local", "receive_window", "send_window", "state")

    def __init__(self, *, local: bool, send_window: SendWindow | None,
                 receive_window: ReceiveWindow | None) -> None:
        self.state = StreamState.IDLE
        #: Whether we opened it.
        self.local = local
        self.send_window = send_window
        self.receive_window = receive_window
