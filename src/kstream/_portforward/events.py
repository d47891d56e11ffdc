"""The events of a port-forward connection, the same on every transport.

One forwarded TCP connection is a *request*, named by ``request_id: int``:

* client role: the number :meth:`open` returned (SPDY and the tunnel: the ``requestID``
  header it sent, 0, 1, 2, ... per session; WebSocket v4: the index of the port in
  ``?ports=``);
* server role: a number the server connection gives each request, 0, 1, 2, ... in the
  order they became complete (the client's ``requestID`` header is a string Go only
  uses as a map key; it is not repeated here).

Connection-level events are the shared ones of :mod:`kstream._events`
(:class:`~kstream.UpgradeRequested`, :class:`~kstream.UpgradeAccepted`,
:class:`~kstream.UpgradeRejected`, :class:`~kstream.PingReceived`,
:class:`~kstream.PongReceived`, :class:`~kstream.ConnectionClosed`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .._events import Event

__all__ = [
    "ForwardClosed",
    "ForwardData",
    "ForwardEnded",
    "ForwardError",
    "ForwardReady",
    "ForwardRequested",
    "ForwardReset",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardRequested(Event):
    """Server role: a client asks for a connection to ``port`` of the pod.

    SPDY and the tunnel: both streams of the pair (``error`` and ``data``) arrived, were
    valid and carry the same ``requestID``. WebSocket v4: reported once per ``?ports=``
    entry, right after the upgrade. Dial the pod port, then :meth:`send` / :meth:`end`,
    or :meth:`fail` with the dial error.
    """

    request_id: int
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardReady(Event):
    """Client role: the server took the connection; bytes may flow now.

    SPDY and the tunnel: the server replied (SYN_REPLY) to both streams. WebSocket v4: the
    server's 2-byte port prefix arrived on the data channel. Bytes sent before it are held
    (SPDY: bounded, see ``max_pending_bytes``); the runtime should start reading the local
    socket only after it.
    """

    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardData(Event):
    """Bytes of the forwarded connection arrived from the peer (never empty)."""

    request_id: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardEnded(Event):
    """The peer will send no more bytes on this connection (SPDY FIN on the data stream).

    Client role: the pod closed its side. Server role: the local client closed its side
    (``write_eof`` of the forwarded connection). WebSocket v4 has no half-close: this
    comes only when the whole WebSocket ends.
    """

    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardError(Event):
    """Client role: the server wrote this text on the request's error stream or channel.

    The kubelet writes ``error forwarding port <port> to pod <pod>, uid <uid>: <error>``
    when the pod port cannot be reached, and ``(conn=..., request=N) timed out waiting for
    streams`` when a pair stays incomplete for 30 s. SPDY and the tunnel report the text
    once the error stream ended (FIN or reset); WebSocket v4, whose channels never end,
    as it arrives. At most ``MAX_ERROR_TEXT`` bytes are kept (UTF-8, errors replaced).
    """

    request_id: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardReset(Event):
    """The peer aborted this connection (SPDY RST_STREAM on the data stream, or the
    session ended while it was open). No more data comes; sending is pointless."""

    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardClosed(Event):
    """The connection is over both ways; the connection object forgot it.

    SPDY and the tunnel: the data stream is finished both ways (FIN or reset) and the
    error stream has ended. WebSocket v4: the WebSocket ended. The last event of a
    request; ``send`` and friends drop what they are given for its id afterwards.

    Reported when the *peer's* bytes finish the request. When the caller's own ``end()``
    finishes it (the peer had ended everything already), or ``reset()`` aborts it, the
    request is forgotten during that call and no ``ForwardClosed`` follows.
    """

    request_id: int
