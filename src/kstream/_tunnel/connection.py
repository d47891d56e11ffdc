"""The port-forward tunnel, both roles: SPDY port-forward inside WebSocket binary messages.

kubectl 1.31+ (client-go ``tools/portforward/tunneling_dialer.go`` and
``tunneling_connection.go``) dials ``GET .../portforward`` with
``Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io`` and, after the 101, runs an
ordinary SPDY port-forward client over the WebSocket as over a byte pipe; the apiserver
(``util/proxy/streamtunnel.go``) relays those bytes to the kubelet's SPDY server
(protocol-notes §4.3). Here:

* outgoing SPDY bytes become binary messages: at most 32 KiB each from a server (the
  apiserver relays the kubelet's bytes with 32 KiB copies), at most
  :data:`CLIENT_MESSAGE_SIZE` from a client;
* incoming binary messages are concatenated at any boundary and fed to the SPDY side;
  a text message is a protocol error; the WebSocket's close (1000) is the end of the
  SPDY byte stream;
* the server accepts when an offered subprotocol has the ``SPDY/3.1+`` prefix and the
  ``.k8s.io`` suffix and names ``portforward.k8s.io``; none with the prefix is 400
  ``unable to upgrade: no tunneling spdy protocols provided``, as the apiserver; others
  get the kubelet's 403, which the apiserver replays.

The port-forward logic is :mod:`kstream._portforward.spdy`'s (composition): the classes
here add the WebSocket around it and expose the same methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NoReturn

from .._errors import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from .._events import (
    ConnectionClosed,
    Event,
    UpgradeAccepted,
    UpgradeRequested,
)
from .._portforward.handshake import SPDY_PORT_FORWARD_PROTOCOL, TUNNEL_PREFIX, TUNNEL_PROTOCOL
from .._portforward.session import CHUNK_SIZE, PAIR_TIMEOUT
from .._portforward.spdy import (
    DEFAULT_MAX_PENDING_BYTES,
    SpdyPortForwardClient,
    SpdyPortForwardServer,
)
from .._upgrade import ServerUpgrade
from .._ws.binary import DEFAULT_MAX_MESSAGE_SIZE, BinaryData, BinaryWebSocket
from .._ws.state import WebSocketState

__all__ = ["CLIENT_MESSAGE_SIZE", "SERVER_MESSAGE_SIZE", "TunnelClient", "TunnelServer"]

Buffer = bytes | bytearray | memoryview

#: Largest binary message a tunnel client sends (one per queued chunk of SPDY bytes).
CLIENT_MESSAGE_SIZE: Final = 256 * 1024
#: Largest binary message a tunnel server sends: the apiserver's 32 KiB relay copies.
SERVER_MESSAGE_SIZE: Final = CHUNK_SIZE

_PROTOCOL_ERROR: Final = 1002
_K8S_SUFFIX: Final = ".k8s.io"

_Spdy = SpdyPortForwardClient | SpdyPortForwardServer


class _Tunnel:
    """What both roles share: the WebSocket, the SPDY side inside, the bytes between."""

    transport = "tunnel"

    def __init__(self, ws: BinaryWebSocket, message_size: int) -> None:
        self._ws = ws
        self._message_size = message_size
        self._closed_reported = False

    @property
    def _inner(self) -> _Spdy | None:
        raise NotImplementedError  # pragma: no cover - both roles override it

    @property
    def protocol(self) -> str:
        """``SPDY/3.1+portforward.k8s.io`` once upgraded, else ``""``."""
        return TUNNEL_PROTOCOL if self._inner is not None else ""

    @property
    def awaiting_pong_since(self) -> float | None:
        """The inner SPDY session's: the ``now`` of the oldest ping not answered."""
        inner = self._inner
        return None if inner is None else inner.awaiting_pong_since

    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the peer: the inner SPDY output in binary messages."""
        self._wrap()
        return self._ws.data_to_send()

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the peer (``b""``: the byte stream ended); return the events.

        Raises:
            RemoteProtocolError: the peer broke WebSocket or SPDY; the answer is queued.
        """
        events: list[Event] = []
        try:
            ws_events = self._ws.receive_data(data)
        except RemoteProtocolError:
            # The WebSocket failed (its close frame is queued): the SPDY session inside is
            # over too; what it would say goes nowhere.
            inner = self._inner
            if inner is not None:
                inner.close()
                inner.data_to_send()
            raise
        for event in ws_events:
            if isinstance(event, BinaryData):
                events += self._feed(event.data)
            elif isinstance(event, ConnectionClosed):
                # Close 1000 (or the end of the bytes) ends the SPDY byte stream.
                self._end_of_stream(event, events)
            elif isinstance(event, UpgradeAccepted):
                events += self._on_accepted(event)
            else:  # UpgradeRejected, UpgradeRequested, PingReceived, PongReceived
                events.append(event)
        return events

    def ping(self, now: float) -> None:
        """Queue a SPDY PING inside the tunnel (client-go pings every 10 s there).

        Raises:
            LocalProtocolError: the tunnel is not open.
        """
        self._spdy("ping").ping(now)

    def close(self) -> None:
        """End the inner SPDY session (reset streams, GOAWAY), then close the WebSocket
        with 1000 (``TunnelingConnection.Close``). Again, or before the upgrade: nothing."""
        inner = self._inner
        if inner is not None:
            inner.close()
            self._wrap()
        if self._ws.state is WebSocketState.OPEN:
            self._ws.close()

    # ------------------------------------------------------------------ machinery

    def _on_accepted(self, event: UpgradeAccepted) -> list[Event]:
        # Only a client's WebSocket reports UpgradeAccepted; a server builds its own.
        del event  # pragma: no cover
        return []  # pragma: no cover

    def _spdy(self, action: str) -> _Spdy:
        inner = self._inner
        if inner is None:
            raise LocalProtocolError(f"cannot {action}: the tunnel is not open")
        return inner

    def _feed(self, data: bytes) -> list[Event]:
        inner = self._inner
        assert inner is not None  # binary messages arrive only once open
        try:
            events = inner.receive_data(data)
        except RemoteProtocolError:
            # The GOAWAY is queued inside: send it, then close the WebSocket too.
            self._wrap()
            if self._ws.state is WebSocketState.OPEN:
                self._ws.close(_PROTOCOL_ERROR, "SPDY protocol error")
            raise
        if any(isinstance(event, ConnectionClosed) for event in events):
            self._closed_reported = True   # GOAWAY: the WebSocket's close adds nothing
        return events

    def _end_of_stream(self, closed: ConnectionClosed, events: list[Event]) -> None:
        inner = self._inner
        assert inner is not None  # the WebSocket reports its end only once open
        # The inner session reports its requests' ends; the WebSocket's close is the
        # connection's (one ConnectionClosed in all).
        events += [e for e in inner.receive_data(b"") if not isinstance(e, ConnectionClosed)]
        if not self._closed_reported:
            self._closed_reported = True
            events.append(closed)

    def _wrap(self) -> None:
        """Move the inner SPDY output into binary messages."""
        inner = self._inner
        if inner is None:
            return
        data = inner.data_to_send()
        if not data or self._ws.state is not WebSocketState.OPEN:
            return  # (nothing, or the WebSocket is closing: nobody reads any more)
        size = self._message_size
        if len(data) <= size:
            self._ws.send(data)
            return
        view = memoryview(data)
        for start in range(0, len(view), size):
            self._ws.send(view[start:start + size])


class TunnelClient(_Tunnel):
    """Client role (kubectl 1.31+): the SPDY port-forward client inside a WebSocket.

    The constructor queues ``GET <target>`` offering ``SPDY/3.1+portforward.k8s.io``. A
    101 naming it is :class:`~kstream.UpgradeAccepted` (``transport="tunnel"``); any other
    answer, a 101 without that subprotocol included, is :class:`~kstream.UpgradeRejected`:
    fall back to SPDY, as kubectl does. Then the methods of
    :class:`~kstream._portforward.spdy.SpdyPortForwardClient`.
    """

    def __init__(self, *, host: str, target: str, headers: Sequence[tuple[str, str]] = (),
                 max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        """Queue the WebSocket upgrade request.

        Args:
            host: the ``Host`` header.
            target: the portforward target
                (:func:`~kstream._portforward.handshake.portforward_target`, no ports).
            headers: extra request headers.
            max_pending_bytes: as :class:`SpdyPortForwardClient`'s.
            max_message_size: largest incoming WebSocket message.

        Raises:
            LocalProtocolError: a header or the target cannot be sent.
        """
        super().__init__(BinaryWebSocket.client(host=host, target=target,
                                                protocols=(TUNNEL_PROTOCOL,), headers=headers,
                                                max_message_size=max_message_size),
                         CLIENT_MESSAGE_SIZE)
        self._max_pending_bytes = max_pending_bytes
        self._client: SpdyPortForwardClient | None = None

    @property
    def _inner(self) -> SpdyPortForwardClient | None:
        return self._client

    def _on_accepted(self, event: UpgradeAccepted) -> list[Event]:
        # check_switch already refused a subprotocol we did not offer, or none at all.
        self._client = SpdyPortForwardClient.upgraded(
            protocol=SPDY_PORT_FORWARD_PROTOCOL, max_pending_bytes=self._max_pending_bytes)
        return [UpgradeAccepted(transport=self.transport, protocol=TUNNEL_PROTOCOL,
                                headers=event.headers)]

    def _port_forward(self, action: str) -> SpdyPortForwardClient:
        if self._client is None:
            raise LocalProtocolError(f"cannot {action}: the tunnel is not open")
        return self._client

    def open(self, port: int) -> int:
        """As :meth:`SpdyPortForwardClient.open`."""
        return self._port_forward("open a connection").open(port)

    def send(self, request_id: int, data: Buffer) -> None:
        """As :meth:`SpdyPortForwardClient.send`."""
        self._port_forward("send").send(request_id, data)

    def end(self, request_id: int) -> None:
        """As :meth:`SpdyPortForwardClient.end`."""
        self._port_forward("end").end(request_id)

    def reset(self, request_id: int) -> None:
        """As :meth:`SpdyPortForwardClient.reset`."""
        self._port_forward("reset").reset(request_id)


class TunnelServer(_Tunnel):
    """Server role: the apiserver's tunnel handler with a kubelet's SPDY server behind it.

    Then the methods of :class:`~kstream._portforward.spdy.SpdyPortForwardServer`.

    Attributes:
        request: the upgrade request, once complete.
    """

    def __init__(self, *, pair_timeout: float = PAIR_TIMEOUT,
                 max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        """Wait for the upgrade request.

        Args:
            pair_timeout: as :class:`SpdyPortForwardServer`'s.
            max_message_size: largest incoming WebSocket message.
        """
        super().__init__(BinaryWebSocket.server(max_message_size=max_message_size),
                         SERVER_MESSAGE_SIZE)
        self._pair_timeout = pair_timeout
        self._server: SpdyPortForwardServer | None = None
        self._answered = False

    @property
    def _inner(self) -> SpdyPortForwardServer | None:
        return self._server

    @property
    def request(self) -> UpgradeRequested | None:
        """The upgrade request, once complete."""
        return self._ws.request

    def receive_request(self, upgrade: ServerUpgrade) -> list[Event]:
        """Take over a request the caller parsed.

        Raises:
            LocalProtocolError: not a fresh server.
            RemoteProtocolError: not a valid WebSocket upgrade (the answer is queued).
        """
        return self._ws.receive_request(upgrade)

    def accept(self, now: float) -> list[Event]:
        """Answer 101 with ``SPDY/3.1+portforward.k8s.io``; the SPDY server starts inside.

        Args:
            now: the caller's clock (pair deadlines are measured on it).

        Returns:
            ``UpgradeAccepted``, then the events of bytes the client sent early.

        Raises:
            LocalProtocolError: no request waits for an answer.
            UpgradeRejectedError: no tunnelling subprotocol (400) or none naming
                ``portforward.k8s.io`` (403); the answer is queued.
        """
        request = self._waiting("accept")
        offered = [name.removeprefix(TUNNEL_PREFIX) for name in request.protocols
                   if name.startswith(TUNNEL_PREFIX) and name.endswith(_K8S_SUFFIX)]
        if not offered:
            # streamtunnel.go: http.Error(w, ..., 400).
            self._refuse(400, "unable to upgrade: no tunneling spdy protocols provided")
        if SPDY_PORT_FORWARD_PROTOCOL not in offered:
            # The kubelet's Handshake answer, which the apiserver replays as it is.
            self._refuse(403, "unable to upgrade: unable to negotiate protocol: client "
                              f"supports [{' '.join(offered)}], server accepts "
                              f"[{SPDY_PORT_FORWARD_PROTOCOL}]",
                         [("X-Accepted-Stream-Protocol-Versions", SPDY_PORT_FORWARD_PROTOCOL)])
        self._answered = True
        self._ws.accept(TUNNEL_PROTOCOL)
        self._server = SpdyPortForwardServer.upgraded(protocol=SPDY_PORT_FORWARD_PROTOCOL,
                                                      pair_timeout=self._pair_timeout)
        events: list[Event] = [UpgradeAccepted(transport=self.transport,
                                               protocol=TUNNEL_PROTOCOL)]
        for event in self._ws.receive_early_data():
            if isinstance(event, BinaryData):
                events += self._feed(event.data)
            else:
                events.append(event)   # (a ping, or the close; rare this early)
        events += self._server.expire(now)
        return events

    def reject(self, status_code: int, message: str = "") -> None:
        """Answer with an HTTP error whose body is a ``metav1.Status`` with ``message``.

        Raises:
            LocalProtocolError: no request waits for an answer.
        """
        self._waiting("reject")
        self._answered = True
        self._ws.reject(status_code, message=message)

    def _waiting(self, action: str) -> UpgradeRequested:
        request = self._ws.request
        if request is None or self._answered:
            raise LocalProtocolError(f"cannot {action}: no upgrade request waits for an answer")
        return request

    def _refuse(self, status_code: int, text: str,
                headers: Sequence[tuple[str, str]] = ()) -> NoReturn:
        # Go's http.Error: the text and a newline, text/plain, nosniff.
        self._answered = True
        self._ws.reject(status_code, body=(text + "\n").encode(),
                        headers=[("X-Content-Type-Options", "nosniff"), *headers])
        raise UpgradeRejectedError(status_code, detail=text)

    def _port_forward(self, action: str) -> SpdyPortForwardServer:
        if self._server is None:
            raise LocalProtocolError(f"cannot {action}: the tunnel is not open")
        return self._server

    def send(self, request_id: int, data: Buffer) -> None:
        """As :meth:`SpdyPortForwardServer.send`."""
        self._port_forward("send").send(request_id, data)

    def end(self, request_id: int) -> None:
        """As :meth:`SpdyPortForwardServer.end`."""
        self._port_forward("end").end(request_id)

    def fail(self, request_id: int, message: str) -> None:
        """As :meth:`SpdyPortForwardServer.fail`."""
        self._port_forward("fail").fail(request_id, message)

    def reset(self, request_id: int) -> None:
        """As :meth:`SpdyPortForwardServer.reset`."""
        self._port_forward("reset").reset(request_id)

    def expire(self, now: float) -> list[Event]:
        """As :meth:`SpdyPortForwardServer.expire` (``[]`` before :meth:`accept`)."""
        return [] if self._server is None else self._server.expire(now)

    def next_deadline(self) -> float | None:
        """As :meth:`SpdyPortForwardServer.next_deadline`."""
        return None if self._server is None else self._server.next_deadline()
