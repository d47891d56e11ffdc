"""What every SPDY connection behind an HTTP/1.1 upgrade shares, both roles, sans-IO.

Exec (``_exec/spdy.py``) and port-forward (``_portforward/spdy_streams.py``) run a
:class:`~kstream._spdy.session.SpdySession` once their upgrade (``upgrade.py``) succeeded.
Around it they do the same things: hand the upgrade's last bytes over once, latch the
peer's protocol error, and turn the session's stream events into their own.
:class:`UpgradedSpdyConnection` is that part; what a stream event means (channels or
forwarded connections) is the subclass's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from .._errors import RemoteProtocolError
from .._events import ConnectionClosed, Event, PingReceived, PongReceived
from .events import (
    GoAwayReceived,
    SpdyEvent,
    StreamData,
    StreamEnded,
    StreamOpened,
    StreamReplied,
    StreamReset,
)
from .frames import GoAwayStatus
from .session import SpdySession

__all__ = ["UpgradedSpdyConnection"]

Buffer = bytes | bytearray | memoryview


class UpgradedSpdyConnection(ABC):
    """The session, the upgrade's handover and the event translation of a SPDY connection.

    A subclass provides the upgrade (:meth:`_receive` while it runs,
    :meth:`_upgrade_data_to_send`), says whether the session is still read
    (:meth:`_reading`) and handles each stream event (``_on_data``, ``_on_end``,
    ``_on_replied``, ``_on_opened``, ``_on_session_end``).
    """

    def __init__(self) -> None:
        self._session: SpdySession | None = None
        self._error: RemoteProtocolError | None = None
        # The upgrade's last bytes (the 101, or a request never flushed), handed over once
        # when the session starts: from then on nothing asks the finished upgrade.
        self._handover = b""

    # ------------------------------------------------------------------ common API

    def data_to_send(self) -> bytes:
        """Drain and return every byte queued for the peer (``b""`` if none).

        Returns:
            The bytes to write to the socket, in order.
        """
        session = self._session
        if session is None:
            # The upgrade is under way (or was refused): its bytes are all there is.
            return self._upgrade_data_to_send()
        session_bytes = session.data_to_send()
        if self._handover:
            session_bytes, self._handover = self._handover + session_bytes, b""
        return session_bytes

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the peer (``b""`` = end of the byte stream); return the events.

        Args:
            data: bytes read from the socket.

        Returns:
            The events these bytes completed, in order.

        Raises:
            RemoteProtocolError: the peer broke the protocol; any answer (GOAWAY
                PROTOCOL_ERROR, or an HTTP 400) is already queued in :meth:`data_to_send`.
                It is raised again on every later call.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._receive(data)
        except RemoteProtocolError as error:
            self._error = error
            self._failed()
            raise

    # ------------------------------------------------------------------ for subclasses

    @abstractmethod
    def _receive(self, data: Buffer) -> list[Event]:
        """The events of bytes from the peer, in whatever phase the connection is."""

    @abstractmethod
    def _upgrade_data_to_send(self) -> bytes:
        """The upgrade's bytes for the peer, before the session runs."""

    @abstractmethod
    def _reading(self) -> bool:
        """Whether the session's events are still read (Go reads nothing after GOAWAY or
        the end of the byte stream)."""

    def _failed(self) -> None:  # noqa: B027 (an optional hook: nothing by default)
        """The peer broke the protocol (``_error`` is set)."""

    def _feed(self, data: Buffer) -> list[Event]:
        """Feed bytes to the running session; return what they mean to the subclass."""
        if self._session is None or not self._reading():
            return []
        return self._translate(self._session.receive_data(data))

    def _translate(self, session_events: Iterable[SpdyEvent]) -> list[Event]:
        events: list[Event] = []
        for event in session_events:
            if not self._reading():
                break  # as Go: nothing is read after GOAWAY or the end of the stream
            if isinstance(event, StreamData):
                self._on_data(event, events)
            elif isinstance(event, StreamEnded):
                self._on_end(event.stream_id, None, events)
            elif isinstance(event, StreamReset):
                self._on_reset(event, events)
            elif isinstance(event, StreamReplied):
                self._on_replied(event, events)
            elif isinstance(event, StreamOpened):
                self._on_opened(event, events)
            elif isinstance(event, (PingReceived, PongReceived)):
                events.append(event)
            elif isinstance(event, GoAwayReceived):
                self._on_session_end(ConnectionClosed(
                    code=event.status, clean=event.status == GoAwayStatus.OK), events)
            elif isinstance(event, ConnectionClosed):
                self._on_session_end(event, events)
            # SETTINGS, WINDOW_UPDATE, HEADERS and skipped unknown frames carry nothing
            # either needs: Go ignores them as well (protocol-notes §3.5).
        return events

    @abstractmethod
    def _on_data(self, event: StreamData, events: list[Event]) -> None:
        """DATA on a stream."""

    @abstractmethod
    def _on_end(self, stream_id: int, reset: int | None, events: list[Event]) -> None:
        """The peer ended a stream: FIN (``reset`` None) or RST_STREAM with that status."""

    def _on_reset(self, event: StreamReset, events: list[Event]) -> None:
        self._on_end(event.stream_id, event.status, events)

    @abstractmethod
    def _on_replied(self, event: StreamReplied, events: list[Event]) -> None:
        """SYN_REPLY to a stream we opened."""

    @abstractmethod
    def _on_opened(self, event: StreamOpened, events: list[Event]) -> None:
        """SYN_STREAM from the peer."""

    @abstractmethod
    def _on_session_end(self, closed: ConnectionClosed, events: list[Event]) -> None:
        """GOAWAY, or the end of the byte stream (``closed`` is what to report)."""
