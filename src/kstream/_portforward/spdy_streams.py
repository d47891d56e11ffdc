"""What both roles of SPDY port-forward share (``spdy.py`` has the overview).

:class:`_PortForwardSession` owns the SPDY session and the request table and turns the
session's stream events into port-forward events; the roles (``spdy_client.py``,
``spdy_server.py``) say what each stream event means for them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from .._errors import LocalProtocolError
from .._events import (
    ConnectionClosed,
    Event,
)
from .._spdy.frames import GoAwayStatus, RstStatus
from .._spdy.session import SpdySession
from .._spdy.state import StreamState
from .._spdy.upgraded import UpgradedSpdyConnection
from .events import (
    ForwardClosed,
    ForwardError,
    ForwardReset,
)
from .session import CHUNK_SIZE

__all__ = [
    "DEFAULT_MAX_PENDING_BYTES",
    "MAX_EARLY_DATA",
    "MAX_PENDING_PAIRS",
]

Buffer = bytes | bytearray | memoryview

#: Bytes a client holds, over all its requests, for data streams not replied to yet.
DEFAULT_MAX_PENDING_BYTES: Final = 4 * 1024 * 1024
#: Bytes a server holds, over all requests, for data streams whose pair is not complete
#: (client-go never sends any: it creates both streams first). Past it the stream is reset.
MAX_EARLY_DATA: Final = 1024 * 1024
#: Requests a server keeps waiting for their second stream; a stream that would start one
#: more is refused (RST_STREAM REFUSED_STREAM).
MAX_PENDING_PAIRS: Final = 1000

# The header names (k8s.io/api/core/v1 StreamType, PortHeader, PortForwardRequestIDHeader),
# as SPDY carries them: lower-case.
_STREAM_TYPE: Final = "streamtype"
_PORT: Final = "port"
_REQUEST_ID: Final = "requestid"

_REPLYABLE: Final = frozenset({StreamState.UNREPLIED, StreamState.UNREPLIED_REMOTE_CLOSED})


class _Kind(enum.Enum):
    DATA = "data"
    ERROR = "error"


class _State(enum.Enum):
    UPGRADING = "upgrading"    # client: waiting for the 101; server: for the request
    DECIDING = "deciding"      # server: request complete, accept() or reject() pending
    OPEN = "open"              # the SPDY session runs
    REJECTED = "rejected"      # the upgrade failed or was refused: nothing follows
    CLOSED = "closed"          # the session ended (either side)


@dataclass(slots=True, eq=False)
class _Request:
    """One forwarded connection: its two streams and how far each direction got."""

    request_id: int
    port: int
    data_id: int = 0
    error_id: int = 0
    #: Client: the server replied to the data / error stream.
    data_replied: bool = False
    error_replied: bool = False
    #: We sent FIN or RST on the data stream (client: end(); server: end/fail).
    local_done: bool = False
    #: The peer sent FIN or RST on the data stream.
    remote_done: bool = False
    #: Client: the peer ended the error stream.
    error_done: bool = False
    error_text: bytearray = field(default_factory=bytearray)
    #: Client: bytes held until the data stream's SYN_REPLY.
    pending: bytearray = field(default_factory=bytearray)
    #: Server, before the pair is complete: its key, deadline and early data.
    key: str = ""
    deadline: float | None = None
    early: bytearray = field(default_factory=bytearray)
    early_end: int | None = None  # None, 0 (FIN) or the RST status


def _header(headers: Sequence[tuple[str, str]], name: str) -> str:
    """The first value of a header, as Go's ``Header.Get`` (values are NUL-joined)."""
    for key, value in headers:
        if key == name:
            return value.split("\x00", 1)[0]
    return ""


def _parse_stream_headers(headers: Sequence[tuple[str, str]]) -> tuple[str, int] | None:
    """The stream type and port of a stream the client opened, or None when the kubelet
    would refuse it (``httpStreamReceived``: port a uint16 above 0, type error/data)."""
    port = _header(headers, _PORT)
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) <= 65535:
        return None
    stream_type = _header(headers, _STREAM_TYPE)
    if stream_type not in ("error", "data"):
        return None
    return stream_type, int(port)


class _PortForwardSession(UpgradedSpdyConnection):
    """What both roles share: the SPDY session, the request table, the end of it all."""

    transport = "spdy"

    def __init__(self) -> None:
        super().__init__()
        self._state = _State.UPGRADING
        self._requests: dict[int, _Request] = {}
        self._streams: dict[int, tuple[_Request, _Kind]] = {}
        self._next_request_id = 0
        self._protocol = ""

    # ------------------------------------------------------------------ common API

    @property
    def protocol(self) -> str:
        """The negotiated stream protocol (``portforward.k8s.io``), ``""`` before."""
        return self._protocol

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping not answered yet, or None."""
        return None if self._session is None else self._session.awaiting_pong_since

    def ping(self, now: float) -> None:
        """Queue a SPDY PING; :class:`~kstream.PongReceived` with ``sent_at=now`` answers it.

        Raises:
            LocalProtocolError: the session is not running.
        """
        self._running("ping").ping(now)

    def close(self) -> None:
        """End the session as Go's ``connection.Close``: RST_STREAM CANCEL on every stream
        whose FIN has not gone out, then GOAWAY OK. No event follows for the requests.

        Calling it again, before the upgrade or after the peer ended the session, does
        nothing on the wire.
        """
        if self._state is _State.OPEN:
            session = self._session
            assert session is not None
            for stream_id in list(self._streams):
                if session.can_send(stream_id):
                    session.reset_stream(stream_id, RstStatus.CANCEL)
            session.goaway(GoAwayStatus.OK)
        if self._state is not _State.REJECTED:
            self._state = _State.CLOSED
        self._requests.clear()
        self._streams.clear()

    # ------------------------------------------------------------------ for the roles

    def _failed(self) -> None:
        self._state = _State.CLOSED

    def _reading(self) -> bool:
        return self._state is _State.OPEN

    def _running(self, action: str) -> SpdySession:
        if self._state is not _State.OPEN:
            raise LocalProtocolError(f"cannot {action}: the port-forward session is not open "
                                     f"(state {self._state.value})")
        assert self._session is not None
        return self._session

    def _start(self, session: SpdySession, protocol: str) -> None:
        self._session = session
        self._protocol = protocol
        self._state = _State.OPEN

    def _live(self, request_id: int, action: str) -> _Request | None:
        """The request, or None when it is over (its calls are then dropped)."""
        request = self._requests.get(request_id)
        if request is not None:
            return request
        if type(request_id) is not int or not 0 <= request_id < self._next_request_id:
            raise LocalProtocolError(f"cannot {action}: no request {request_id!r}")
        return None

    def _on_session_end(self, closed: ConnectionClosed, events: list[Event]) -> None:
        # Go closes every stream when the session ends: each live request is over.
        for request in list(self._requests.values()):
            if not request.remote_done:
                events.append(ForwardReset(request_id=request.request_id))
            self._report_error_text(request, events)
            events.append(ForwardClosed(request_id=request.request_id))
        self._requests.clear()
        self._streams.clear()
        self._state = _State.CLOSED
        events.append(closed)

    def _report_error_text(self, request: _Request, events: list[Event]) -> None:
        if request.error_text:
            text = request.error_text.decode("utf-8", "replace")
            request.error_text.clear()
            events.append(ForwardError(request_id=request.request_id, message=text))

    def _register(self, request: _Request, stream_id: int, kind: _Kind) -> None:
        if kind is _Kind.DATA:
            request.data_id = stream_id
        else:
            request.error_id = stream_id
        self._streams[stream_id] = (request, kind)

    def _forget(self, request: _Request) -> None:
        self._requests.pop(request.request_id, None)
        self._streams.pop(request.data_id, None)
        self._streams.pop(request.error_id, None)

    def _cancel(self, request: _Request) -> None:
        """reset(): RST_STREAM CANCEL on both streams of the request, which is forgotten."""
        self._abort(request.data_id)
        self._abort(request.error_id)
        self._forget(request)

    def _send_chunks(self, stream_id: int, data: Buffer) -> None:
        session = self._session
        assert session is not None
        if not session.can_send(stream_id):
            return  # the peer reset the stream: it reads nothing more
        if len(data) <= CHUNK_SIZE:
            session.send_data(stream_id, data)
            return
        view = memoryview(data) if type(data) is bytes else memoryview(bytes(data))
        for start in range(0, len(view), CHUNK_SIZE):
            session.send_data(stream_id, view[start:start + CHUNK_SIZE])

    def _finish(self, stream_id: int) -> None:
        """FIN our half of a stream, if it is still open."""
        session = self._session
        assert session is not None
        if stream_id and session.can_send(stream_id):
            session.end_stream(stream_id)

    def _abort(self, stream_id: int) -> None:
        """RST_STREAM CANCEL, unless the stream is already over."""
        session = self._session
        assert session is not None
        if stream_id and session.stream_state(stream_id) is not StreamState.CLOSED:
            session.reset_stream(stream_id, RstStatus.CANCEL)
