"""The SPDY-level events: what ``SpdySession.receive_data`` returns, frame by frame.

Stream events carry the stream id; what the exec connection (``_exec/spdy.py``) makes of
them is its business. The shared events (:class:`~kstream.PingReceived`,
:class:`~kstream.PongReceived`, :class:`~kstream.ConnectionClosed`) come from ``_events``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from .._events import ConnectionClosed, Event, PingReceived, PongReceived
from .frames import GoAwayStatus

__all__ = [
    "DataDropped",
    "GoAwayReceived",
    "Headers",
    "HeadersReceived",
    "SettingsReceived",
    "SpdyEvent",
    "StreamData",
    "StreamEnded",
    "StreamOpened",
    "StreamReplied",
    "StreamReset",
    "UnknownFrameSkipped",
    "WindowUpdated",
]

Headers: TypeAlias = tuple[tuple[str, str], ...]

@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOpened(Event):
    """The peer opened a stream (SYN_STREAM); answer with ``reply()`` or ``reset_stream()``.

    ``unidirectional`` streams need no reply and cannot carry anything from us.
    A ``StreamEnded`` follows when ``fin`` is set.
    """

    stream_id: int
    headers: Headers
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReplied(Event):
    """The peer accepted a stream we opened (SYN_REPLY). ``StreamEnded`` follows on FIN."""

    stream_id: int
    headers: Headers = ()
    fin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HeadersReceived(Event):
    """More headers arrived on a stream (HEADERS). ``StreamEnded`` follows on FIN."""

    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamData(Event):
    """Bytes arrived on a stream, never empty: one piece of a DATA frame, as it arrived.

    With ``join_data``, the pieces of consecutive frames of one stream within one
    :meth:`SpdySession.receive_data` call come as one event (joined: the one copy they get
    anyway), so a bulk transfer costs an event per read, not per frame. A FIN always comes
    as its own :class:`StreamEnded`, after the bytes it ends.
    """

    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEnded(Event):
    """The peer half-closed the stream (FIN): nothing more will arrive on it."""

    stream_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReset(Event):
    """The stream is over (RST_STREAM): nothing more arrives on it and nothing may be sent.

    ``status`` is a :class:`RstStatus` value; CANCEL after data is how Kubernetes servers
    normally end every exec stream, so treat it as end-of-stream. ``local`` is True when we
    reset the stream because the peer broke its rules (the RST is already queued).
    """

    stream_id: int
    status: int
    local: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAwayReceived(Event):
    """The peer is ending the session (GOAWAY); no new stream may be opened.

    Go stops reading the moment it receives a GOAWAY (protocol-notes §3.6), so sending more
    to a Go peer is pointless. Streams above ``last_good_stream_id`` that we opened were not
    processed by the peer.
    """

    last_good_stream_id: int
    status: int = GoAwayStatus.OK


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsReceived(Event):
    """The peer sent SETTINGS: ``(flags, id, value)`` triples (Go peers never do)."""

    entries: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowUpdated(Event):
    """The peer sent WINDOW_UPDATE (stream 0: the session window)."""

    stream_id: int
    delta: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownFrameSkipped(Event):
    """A control frame of an unknown type was skipped (Go would end the connection)."""

    frame_type: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DataDropped(Event):
    """DATA for a stream that is unknown, closed, or ours but not yet replied was dropped.

    moby/spdystream drops these silently (``handleDataFrame``); reported so the caller can
    count or log them. Empty pieces are not reported.
    """

    stream_id: int
    size: int


#: Every event :meth:`~kstream._spdy.session.SpdySession.receive_data` returns.
SpdyEvent: TypeAlias = (
    StreamOpened | StreamReplied | HeadersReceived | StreamData | StreamEnded | StreamReset
    | GoAwayReceived | SettingsReceived | WindowUpdated | UnknownFrameSkipped | DataDropped
    | PingReceived | PongReceived | ConnectionClosed
)
