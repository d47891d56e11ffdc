"""Events that kstream's sans-IO connections hand to their caller.

The same event types come out of the WebSocket channel connection and the SPDY exec
connection, so the transport-neutral session on top need not know which one it runs on.
Events are plain frozen data; the parsers build them without validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._errors import UpgradeRejectedError

__all__ = [
    "ChannelData",
    "ChannelEnded",
    "ConnectionClosed",
    "DroppedMessage",
    "Event",
    "PingReceived",
    "PongReceived",
    "UpgradeAccepted",
    "UpgradeRejected",
    "UpgradeRequested",
]


class Event:
    """Base class of every kstream event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeRequested(Event):
    """Server role: a client asked to upgrade; answer with ``accept()`` or ``reject()``.

    Attributes:
        method: ``GET`` for WebSocket, ``POST`` (usually) for SPDY.
        target: the raw request target, path and query (``/api/v1/...?command=ls``).
        path: the target's path, percent-decoding not applied.
        query: the query parameters in order, decoded (``+`` is a space).
        headers: every request header, names lower-cased, in order.
        protocols: the protocols the client offered, in its order of preference.
    """

    method: str
    target: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    protocols: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeAccepted(Event):
    """The upgrade succeeded: ``protocol`` is the negotiated protocol name.

    Attributes:
        transport: ``"websocket"`` or ``"spdy"``.
        protocol: the negotiated subprotocol / stream protocol version.
        headers: the 101 response's headers (client role) or ours (server role).
    """

    transport: str
    protocol: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UpgradeRejected(Event):
    """Client role: the server answered the upgrade with something other than a 101.

    ``error`` is the :class:`~kstream.UpgradeRejectedError` to raise; its ``status`` holds
    the decoded ``metav1.Status`` when the body was one. No more events follow.
    """

    error: UpgradeRejectedError


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelData(Event):
    """Bytes arrived on a channel (a stream, on SPDY).

    A message may arrive in several pieces; each piece is one event with the channel of
    the message it belongs to. ``data`` is never empty, except for the server's one empty
    "hello" message on WebSocket.
    """

    channel: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEnded(Event):
    """The peer will send no more on ``channel``.

    WebSocket v5: a CLOSE signal (the server role sees "stdin closed"). SPDY: FIN, or
    RST_STREAM (``reset`` is then the RST status; CANCEL after data is a normal end).
    """

    channel: int
    reset: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DroppedMessage(Event):
    """A message for a channel this connection does not know was dropped, as upstream does.

    Reported so the caller can count or log it; the connection carries on.
    """

    channel: int
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PingReceived(Event):
    """The peer pinged us; the answer is queued for ``data_to_send()``.

    Replies not yet taken by ``data_to_send()`` are bounded (16 on WebSocket, 16 on
    SPDY): past that, only the most recent ping is answered, when ``data_to_send()``
    next runs, so a peer that pings and never reads cannot grow the queue.
    """

    payload: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class PongReceived(Event):
    """The peer answered one of our pings.

    ``sent_at`` is the ``now`` that was given to ``ping()``, so the adapter can compute the
    round trip and re-arm its pong deadline.
    """

    payload: bytes = b""
    sent_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed(Event):
    """The connection is over; nothing more will arrive.

    Attributes:
        code: the WebSocket close code (1000 normal, 1006 abnormal: the byte stream ended
            with no close frame), or for SPDY the GOAWAY status (``None`` if the stream of
            bytes just ended).
        reason: the close reason text, if any.
        clean: the peer ended the way the protocol wants (WebSocket close 1000, SPDY
            GOAWAY OK or end of the byte stream after every stream ended).
    """

    code: int | None = None
    reason: str = ""
    clean: bool = True
