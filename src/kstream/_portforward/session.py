"""What every port-forward connection offers, whatever its transport: two Protocols.

A runtime drives the three transports through one code path:

* :class:`PortForwardClientConnection`: :class:`~kstream._portforward.spdy.SpdyPortForwardClient`,
  :class:`~kstream._tunnel.TunnelClient` and
  :class:`~kstream._portforward.websocket.WebSocketPortForwardClient`;
* :class:`PortForwardServerConnection`: :class:`~kstream._portforward.spdy.SpdyPortForwardServer`,
  :class:`~kstream._tunnel.TunnelServer` and
  :class:`~kstream._portforward.websocket.WebSocketPortForwardServer`.

Both have the sans-IO shape of ``docs/architecture.md`` (``receive_data`` returns events,
``data_to_send`` drains the output); the events are in ``_portforward/events.py``.
"""

from __future__ import annotations

from typing import Final, Protocol

from .._events import Event, UpgradeRequested
from .._upgrade import ServerUpgrade

__all__ = [
    "CHUNK_SIZE",
    "MAX_ERROR_TEXT",
    "PAIR_TIMEOUT",
    "PortForwardClientConnection",
    "PortForwardServerConnection",
]

#: Largest DATA frame / WebSocket message a connection sends: the kubelet's and
#: client-go's 32 KiB copy buffers (``io.Copy``), which is what their peers see.
CHUNK_SIZE: Final = 32 * 1024
#: Seconds a server waits for both streams of a request (kubelet
#: ``DefaultStreamCreationTimeout``).
PAIR_TIMEOUT: Final = 30.0
#: Bytes of error text kept per request (more is dropped).
MAX_ERROR_TEXT: Final = 64 * 1024

Buffer = bytes | bytearray | memoryview


class PortForwardClientConnection(Protocol):
    """The client side of one port-forward connection (one TCP connection to the server).

    Lifecycle: construct (the upgrade request is queued), write :meth:`data_to_send`,
    feed the answer to :meth:`receive_data` until :class:`~kstream.UpgradeAccepted` (then
    :meth:`open` connections) or :class:`~kstream.UpgradeRejected` (nothing follows; the
    tunnel's rejection is the signal to fall back to SPDY).
    """

    #: ``"spdy"``, ``"tunnel"`` or ``"websocket"``.
    transport: str

    @property
    def protocol(self) -> str:
        """The negotiated protocol (``portforward.k8s.io``, ``SPDY/3.1+portforward.k8s.io``,
        ``v4.channel.k8s.io``, ...); ``""`` before the upgrade."""
        ...

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping not answered yet, or None."""
        ...

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the server (``b""``: it closed); return the events.

        Raises:
            RemoteProtocolError: the server broke the protocol; the answer is queued.
        """
        ...

    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the server (``b""`` if none)."""
        ...

    def open(self, port: int) -> int:
        """Start a forwarded connection to ``port`` of the pod; return its request id.

        Raises:
            LocalProtocolError: the upgrade is not done, the session ended, the port is out
                of 1..65535, or (WebSocket v4) no unused channel pair for that port is left.
        """
        ...

    def send(self, request_id: int, data: Buffer) -> None:
        """Queue bytes for the pod, in pieces of at most :data:`CHUNK_SIZE`.

        Bytes for a request the peer reset, or after the session ended, are dropped.

        Raises:
            LocalProtocolError: unknown request, or :meth:`end` / :meth:`reset` was called.
        """
        ...

    def end(self, request_id: int) -> None:
        """The local side sends no more (SPDY: FIN on the data stream; WebSocket v4 has no
        half-close: only remembered, nothing is sent)."""
        ...

    def reset(self, request_id: int) -> None:
        """Abort the request (SPDY: RST_STREAM on both streams) and forget it at once: no
        further event for it. WebSocket v4: closes the WebSocket, which ends every port on
        it (the protocol has no per-port abort)."""
        ...

    def ping(self, now: float) -> None:
        """Queue a ping; :class:`~kstream.PongReceived` with ``sent_at=now`` answers it."""
        ...

    def close(self) -> None:
        """End the whole connection (SPDY: reset live streams and GOAWAY; WebSocket: close
        1000). Doing it again does nothing."""
        ...


class PortForwardServerConnection(Protocol):
    """The server side of one port-forward connection.

    Lifecycle: construct; feed the request (:meth:`receive_data`, or
    :meth:`receive_request` with a head the caller parsed) until
    :class:`~kstream.UpgradeRequested`; answer with :meth:`accept` or :meth:`reject`.
    Then :class:`~kstream._portforward.events.ForwardRequested` per connection the
    client wants; dial the pod port and :meth:`send` what it says, :meth:`end` at its EOF,
    :meth:`fail` when it cannot be reached. Call :meth:`expire` at
    :meth:`next_deadline`.
    """

    #: ``"spdy"``, ``"tunnel"`` or ``"websocket"``.
    transport: str

    @property
    def protocol(self) -> str:
        """The negotiated protocol; ``""`` before :meth:`accept`."""
        ...

    @property
    def request(self) -> UpgradeRequested | None:
        """The upgrade request, once complete (what to route and authorize on)."""
        ...

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping not answered yet, or None."""
        ...

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the client (``b""``: it closed); return the events.

        Raises:
            RemoteProtocolError: the client broke the protocol; the answer is queued.
        """
        ...

    def receive_request(self, upgrade: ServerUpgrade) -> list[Event]:
        """Take over a request head the caller parsed; returns ``[UpgradeRequested]`` once
        the request is complete."""
        ...

    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the client."""
        ...

    def accept(self, now: float) -> list[Event]:
        """Answer the upgrade with a 101; return the events the bytes already received
        complete (``UpgradeAccepted`` first).

        Raises:
            LocalProtocolError: no request is waiting, or it was answered.
            UpgradeRejectedError: the request cannot be accepted (no protocol in common,
                bad ``?ports=``, no upgrade headers); the kubelet's error answer is
                already queued: flush :meth:`data_to_send` and close.
        """
        ...

    def reject(self, status_code: int, message: str = "") -> None:
        """Answer with an HTTP error whose body is a ``metav1.Status`` carrying ``message``."""
        ...

    def send(self, request_id: int, data: Buffer) -> None:
        """Queue bytes from the pod, in DATA frames / messages of at most :data:`CHUNK_SIZE`."""
        ...

    def end(self, request_id: int) -> None:
        """The pod closed its side: SPDY FIN on both streams (the kubelet's
        ``Close``); WebSocket v4: nothing on the wire (the WebSocket closes with 1000
        when every port is done)."""
        ...

    def fail(self, request_id: int, message: str) -> None:
        """Write ``message`` on the request's error stream / channel, then end it as
        :meth:`end` (what the kubelet does when ``PortForward`` returns an error)."""
        ...

    def reset(self, request_id: int) -> None:
        """Abort the request: SPDY RST_STREAM on both streams (the kubelet's answer to
        EPIPE/ECONNRESET from the pod); WebSocket v4 as :meth:`end`. Forgotten at once."""
        ...

    def expire(self, now: float) -> list[Event]:
        """Apply the pair deadline: incomplete SPDY pairs older than 30 s get the timeout
        text on their error stream and are dropped. Returns events (none today).

        Call it after every :meth:`receive_data` (cheap when no pair waits) and at
        :meth:`next_deadline`: ``receive_data`` has no clock, so a pair's 30 s start at the
        first ``expire(now)`` after the read that brought its first stream.
        """
        ...

    def next_deadline(self) -> float | None:
        """When :meth:`expire` has work next, or None."""
        ...

    def ping(self, now: float) -> None:
        """Queue a ping."""
        ...

    def close(self) -> None:
        """End the whole connection (SPDY GOAWAY; WebSocket close 1000)."""
        ...

