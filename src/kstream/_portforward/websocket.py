"""Port-forward over WebSocket v4 (``v4.channel.k8s.io``), both roles, sans-IO.

The protocol of the kubelet's ``cri/streaming/portforward/websocket.go`` (protocol-notes
§4.2), which the official Python client speaks (kubectl never does):

* ``GET .../portforward?ports=8080&ports=9090`` (repeated and/or comma-separated), with
  subprotocol ``v4.channel.k8s.io``, ``v4.base64.channel.k8s.io`` or none (binary);
* port ``i`` of the list has channel ``2i`` for data (both ways) and ``2i+1`` for errors
  (server to client, plain text);
* right after the handshake the server writes each port, 2 bytes little-endian, as the
  first message of both its channels; the client checks and strips it;
* exactly one TCP connection per port per WebSocket, and no half-close: when the pod side
  of a port ends, the server only stops writing; the WebSocket closes (1000) once every
  port is done.

Both roles wrap :class:`~kstream._ws.connection.WebSocketChannelConnection`, which does the
handshake, the frames and the channel bytes; this module maps channels to requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, NoReturn

from .._channels import V4_BASE64_NAME, V4_NAME
from .._errors import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from .._events import (
    ChannelData,
    ConnectionClosed,
    Event,
    PingReceived,
    PongReceived,
    UpgradeAccepted,
    UpgradeRejected,
    UpgradeRequested,
)
from .._upgrade import ServerUpgrade
from .._ws.connection import WebSocketChannelConnection, WebSocketState
from .._ws.handshake import negotiate
from .events import (
    ForwardClosed,
    ForwardData,
    ForwardEnded,
    ForwardError,
    ForwardReady,
    ForwardRequested,
    ForwardReset,
)
from .handshake import check_port, parse_ports
from .session import CHUNK_SIZE, MAX_ERROR_TEXT

__all__ = [
    "CLIENT_PROTOCOLS",
    "MAX_BASE64_PORTS",
    "MAX_PORTS",
    "SERVER_PROTOCOLS",
    "WebSocketPortForwardClient",
    "WebSocketPortForwardServer",
]

Buffer = bytes | bytearray | memoryview

#: What the client offers by default.
CLIENT_PROTOCOLS: Final = (V4_NAME, V4_BASE64_NAME)
#: What the server accepts (the kubelet's ``websocket.go``): binary v4, base64 v4, and no
#: subprotocol at all (binary).
SERVER_PROTOCOLS: Final = (V4_NAME, V4_BASE64_NAME, "")
#: Most ports on one WebSocket: channel numbers are one byte (254 at most) ...
MAX_PORTS: Final = 127
#: ... and one base64 digit ``'0'+channel`` (79 at most) on the base64 subprotocol.
MAX_BASE64_PORTS: Final = 40

_DEFAULT_MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024
_NORMAL_CLOSURE: Final = 1000
_PROTOCOL_ERROR: Final = 1002
# Every channel a message may name: which ones mean something depends on the ports.
_ALL_CHANNELS: Final = range(255)


@dataclass(slots=True)
class _Port:
    """One port of the WebSocket: one forwarded connection."""

    port: int
    #: Bytes of the server's 2-byte port prefix received so far, per channel.
    data_prefix: bytearray = field(default_factory=bytearray)
    error_prefix: bytearray = field(default_factory=bytearray)
    error_bytes: int = 0
    opened: bool = False       # client: open() returned it
    ended: bool = False        # client: end(); server: end() / fail()


def _port_prefix(port: int) -> bytes:
    return port.to_bytes(2, "little")


class _PortForwardWebSocket:
    """What both roles share: the channel connection and the end of the WebSocket."""

    transport = "websocket"

    def __init__(self, conn: WebSocketChannelConnection) -> None:
        self._conn = conn
        self._ports: list[_Port] = []
        self._error: RemoteProtocolError | None = None

    @property
    def protocol(self) -> str:
        """The negotiated subprotocol (``""`` before the upgrade, or when none)."""
        protocol = self._conn.protocol
        return "" if protocol is None else protocol.name

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping not answered yet, or None."""
        return self._conn.awaiting_pong_since

    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the peer."""
        return self._conn.data_to_send()

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the peer (``b""``: the byte stream ended); return the events.

        Raises:
            RemoteProtocolError: the peer broke the protocol; the close frame (or HTTP
                error) is queued.
        """
        if self._error is not None:
            raise self._error
        events: list[Event] = []
        for event in self._conn.receive_data(data):
            self._translate(event, events)
        return events

    def _translate(self, event: Event, events: list[Event]) -> None:
        if isinstance(event, ChannelData):
            try:
                self._on_channel_data(event.channel, event.data, events)
            except RemoteProtocolError as exc:
                self._error = exc
                raise
        elif isinstance(event, ConnectionClosed):
            self._on_closed(event, events)
        elif isinstance(event, (PingReceived, PongReceived, UpgradeAccepted,
                                UpgradeRejected, UpgradeRequested)):
            events.append(event)
        # DroppedMessage: a channel no port has; upstream drops those too.

    def ping(self, now: float) -> None:
        """Queue a WebSocket ping.

        Raises:
            LocalProtocolError: the WebSocket is not open.
        """
        self._conn.ping(now)

    def close(self) -> None:
        """Close the WebSocket (close 1000); nothing before the upgrade or once closed."""
        if self._conn.state is WebSocketState.OPEN:
            self._conn.close(_NORMAL_CLOSURE)

    def _on_channel_data(self, channel: int, data: bytes, events: list[Event]) -> None:
        raise NotImplementedError  # pragma: no cover - both roles override it

    def _on_closed(self, closed: ConnectionClosed, events: list[Event]) -> None:
        # No channel ever ends on its own: the WebSocket's end ends every port. (The
        # channel connection reports ConnectionClosed once.)
        for request_id in range(len(self._ports)):
            events.append(ForwardEnded(request_id=request_id) if closed.clean
                          else ForwardReset(request_id=request_id))
            events.append(ForwardClosed(request_id=request_id))
        events.append(closed)

    def _port(self, request_id: int, action: str) -> _Port:
        if type(request_id) is not int or not 0 <= request_id < len(self._ports):
            raise LocalProtocolError(f"cannot {action}: no request {request_id!r}")
        return self._ports[request_id]

    def _send(self, channel: int, data: Buffer) -> None:
        if self._conn.state is not WebSocketState.OPEN:
            return  # the WebSocket is closing or over: nobody reads any more
        size = len(data)
        if size <= CHUNK_SIZE:
            self._conn.send_data(channel, data)
            return
        view = memoryview(data) if type(data) is bytes else memoryview(bytes(data))
        for start in range(0, size, CHUNK_SIZE):
            self._conn.send_data(channel, view[start:start + CHUNK_SIZE])


class WebSocketPortForwardClient(_PortForwardWebSocket):
    """Client role: one WebSocket, one TCP connection per port of ``ports``.

    Request id ``i`` is port ``ports[i]``, fixed by the request: events may name it in the
    batch that reports :class:`~kstream.UpgradeAccepted`, before :meth:`open` returned it.
    :class:`ForwardReady` comes when the data channel's port prefix arrived; error text
    is :class:`ForwardError` as it arrives. When the WebSocket ends, every port gets
    :class:`ForwardEnded` (close 1000) or :class:`ForwardReset` (anything else), then
    :class:`ForwardClosed`.
    """

    def __init__(self, *, host: str, target: str, ports: Sequence[int],
                 protocols: Sequence[str] = CLIENT_PROTOCOLS,
                 headers: Sequence[tuple[str, str]] = (),
                 max_message_size: int = _DEFAULT_MAX_MESSAGE_SIZE) -> None:
        """Queue ``GET <target>?ports=..`` (one ``ports=`` per port appended to ``target``).

        Args:
            host: the ``Host`` header.
            target: the portforward target without ports
                (:func:`~kstream._portforward.handshake.portforward_target`).
            ports: the pod ports, in order; 1 to 40 of them (the base64 subprotocol's
                channel digits stop at 79).
            protocols: the subprotocols to offer.
            headers: extra request headers.
            max_message_size: largest incoming message.

        Raises:
            LocalProtocolError: no port, too many, one out of 1..65535, or an invalid
                subprotocol or header.
        """
        checked = [check_port(port) for port in ports]
        if not 1 <= len(checked) <= MAX_BASE64_PORTS:
            raise LocalProtocolError(f"a WebSocket port-forward takes 1 to {MAX_BASE64_PORTS} "
                                     f"ports, not {len(checked)}")
        query = "&".join(f"ports={port}" for port in checked)
        full_target = f"{target}{'&' if '?' in target else '?'}{query}"
        super().__init__(WebSocketChannelConnection.client(
            host=host, target=full_target, protocols=protocols, headers=headers,
            max_message_size=max_message_size, channels=range(2 * len(checked))))
        self._ports = [_Port(port) for port in checked]

    @property
    def ports(self) -> tuple[int, ...]:
        """The ports, by request id."""
        return tuple(port.port for port in self._ports)

    def _on_channel_data(self, channel: int, data: bytes, events: list[Event]) -> None:
        request_id, is_error = divmod(channel, 2)
        port = self._ports[request_id]
        prefix = port.error_prefix if is_error else port.data_prefix
        if len(prefix) < 2:
            taken = data[:2 - len(prefix)]
            prefix += taken
            data = data[len(taken):]
            if len(prefix) < 2:
                return
            if bytes(prefix) != _port_prefix(port.port):
                self._conn.close(_PROTOCOL_ERROR, "unexpected port prefix")
                raise RemoteProtocolError(
                    f"channel {channel} starts with port "
                    f"{int.from_bytes(prefix, 'little')}, not {port.port}",
                    close_code=_PROTOCOL_ERROR)
            if not is_error:
                events.append(ForwardReady(request_id=request_id))
        if not data:
            return
        if not is_error:
            events.append(ForwardData(request_id=request_id, data=data))
            return
        room = MAX_ERROR_TEXT - port.error_bytes
        if room > 0:
            port.error_bytes += min(room, len(data))
            events.append(ForwardError(request_id=request_id,
                                       message=data[:room].decode("utf-8", "replace")))

    def open(self, port: int) -> int:
        """Return the first request id of ``port`` that :meth:`open` did not return yet.

        Works once the upgrade succeeded, even if the WebSocket ended since: a server
        whose only port fails writes the error and closes at once, so the batch that
        reports :class:`~kstream.UpgradeAccepted` may already hold the request's end
        (its events name the id this returns).

        Raises:
            LocalProtocolError: the upgrade did not succeed (yet), or every request of
                that port was opened (or it is not in ``ports``).
        """
        if self._conn.protocol is None:
            raise LocalProtocolError("cannot open a connection: the WebSocket upgrade did "
                                     f"not succeed (state {self._conn.state.name})")
        for request_id, entry in enumerate(self._ports):
            if entry.port == port and not entry.opened:
                entry.opened = True
                return request_id
        raise LocalProtocolError(f"no unused connection to port {port!r} on this WebSocket "
                                 f"(ports {list(self.ports)}); open a new WebSocket")

    def send(self, request_id: int, data: Buffer) -> None:
        """Queue bytes on channel ``2*request_id``, in messages of at most 32 KiB.

        Dropped once the WebSocket is closing or closed.

        Raises:
            LocalProtocolError: no such request, or :meth:`end` was called.
        """
        port = self._port(request_id, "send")
        if port.ended:
            raise LocalProtocolError(f"request {request_id} was ended with end()")
        if data:
            self._send(2 * request_id, data)

    def end(self, request_id: int) -> None:
        """Remember that the local side ended; nothing is sent (v4 has no half-close).

        Raises:
            LocalProtocolError: no such request.
        """
        self._port(request_id, "end").ended = True

    def reset(self, request_id: int) -> None:
        """Close the WebSocket (close 1000), ending every port on it: v4 cannot abort
        one port alone.

        Raises:
            LocalProtocolError: no such request.
        """
        self._port(request_id, "reset")
        self.close()


class WebSocketPortForwardServer(_PortForwardWebSocket):
    """Server role, as the kubelet's ``websocket.go``.

    :meth:`accept` reads the ports from the query (:func:`parse_ports`), answers the 101,
    writes each port (2 bytes little-endian) on both its channels and reports one
    :class:`ForwardRequested` per port. Data the client sends on channel ``2i`` is
    :class:`ForwardData` until :meth:`end` / :meth:`fail` of that port; once every port is
    done the WebSocket closes with 1000, as the kubelet's handler returns.

    Attributes:
        supported: the subprotocols accepted (``""``: the client offered none).
    """

    def __init__(self, *, supported: Sequence[str] = SERVER_PROTOCOLS,
                 max_message_size: int = _DEFAULT_MAX_MESSAGE_SIZE) -> None:
        """Wait for the upgrade request.

        Args:
            supported: the subprotocols accepted, among :data:`SERVER_PROTOCOLS`.
            max_message_size: largest incoming message.
        """
        super().__init__(WebSocketChannelConnection.server(
            supported=[name for name in supported if name],
            max_message_size=max_message_size, channels=_ALL_CHANNELS))
        self.supported = tuple(supported)
        self._answered = False
        self.request: UpgradeRequested | None = None

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the client; see :meth:`_PortForwardWebSocket.receive_data`."""
        events = super().receive_data(data)
        self._note_request(events)
        return events

    def receive_request(self, upgrade: ServerUpgrade) -> list[Event]:
        """Take over a request the caller parsed.

        Returns:
            ``[UpgradeRequested]`` once the request is complete, else ``[]``.

        Raises:
            LocalProtocolError: this server is not fresh.
            RemoteProtocolError: the request is no valid WebSocket upgrade (the error
                answer is queued).
        """
        events = self._conn.receive_request(upgrade)
        self._note_request(events)
        return events

    def _note_request(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, UpgradeRequested):
                self.request = event

    def accept(self, now: float) -> list[Event]:
        """Answer 101, write the port prefixes, report ``ForwardRequested`` per port.

        Args:
            now: unused (no deadline on WebSocket); the argument every server takes.

        Returns:
            ``UpgradeAccepted``, then one :class:`ForwardRequested` per port, in order.

        Raises:
            LocalProtocolError: no request is waiting, or it was answered.
            UpgradeRejectedError: bad ``?ports=`` (400 with the kubelet's text) or no
                subprotocol in common (403); the answer is queued.
        """
        del now
        request = self._waiting("accept")
        offered = request.protocols
        protocol = negotiate(offered, [name for name in self.supported if name]) \
            if offered else ("" if "" in self.supported else None)
        if protocol is None:
            message = (f"no WebSocket subprotocol in common: the client offered "
                       f"{list(offered)}, this server speaks {list(self.supported)}")
            self._refuse(403, message)
        try:
            ports = parse_ports(request.query)
        except RemoteProtocolError as exc:
            self._refuse(400, str(exc))
        limit = MAX_BASE64_PORTS if protocol == V4_BASE64_NAME else MAX_PORTS
        if len(ports) > limit:
            self._refuse(400, f"too many ports: {len(ports)}, at most {limit} on "
                              f"{protocol or 'no subprotocol'}")
        self._answered = True
        self._conn.accept(protocol)
        self._ports = [_Port(port) for port in ports]
        events: list[Event] = [UpgradeAccepted(transport=self.transport, protocol=protocol)]
        for request_id, port in enumerate(ports):
            prefix = _port_prefix(port)
            self._conn.send_data(2 * request_id, prefix)
            self._conn.send_data(2 * request_id + 1, prefix)
            events.append(ForwardRequested(request_id=request_id, port=port))
        for event in self._conn.receive_early_data():
            self._translate(event, events)
        return events

    def reject(self, status_code: int, message: str = "") -> None:
        """Answer with an HTTP error whose body is a ``metav1.Status`` with ``message``.

        Raises:
            LocalProtocolError: no request is waiting, or it was answered.
        """
        self._waiting("reject")
        self._answered = True
        self._conn.reject(status_code, message=message)

    def _waiting(self, action: str) -> UpgradeRequested:
        if self.request is None or self._answered:
            raise LocalProtocolError(f"cannot {action}: no upgrade request waits for an answer")
        return self.request

    def _refuse(self, status_code: int, message: str) -> NoReturn:
        self.reject(status_code, message)
        raise UpgradeRejectedError(status_code, detail=message)

    def _on_channel_data(self, channel: int, data: bytes, events: list[Event]) -> None:
        request_id, is_error = divmod(channel, 2)
        if is_error or request_id >= len(self._ports) or self._ports[request_id].ended:
            return  # not a data channel, or its pod side is gone: nobody reads it
        # (The channel connection reports no empty message to a server.)
        events.append(ForwardData(request_id=request_id, data=data))

    def send(self, request_id: int, data: Buffer) -> None:
        """Queue pod bytes on channel ``2*request_id``, in messages of at most 32 KiB.

        Raises:
            LocalProtocolError: no such request, or it was ended.
        """
        port = self._port(request_id, "send")
        if port.ended:
            raise LocalProtocolError(f"request {request_id} was ended")
        if data:
            self._send(2 * request_id, data)

    def end(self, request_id: int) -> None:
        """The pod side of the port ended: nothing goes on the wire (no half-close); once
        every port is done the WebSocket closes with 1000. Again: nothing.

        Raises:
            LocalProtocolError: no such request.
        """
        self._port(request_id, "end").ended = True
        if all(port.ended for port in self._ports):
            self.close()

    def fail(self, request_id: int, message: str) -> None:
        """Write ``message`` on channel ``2*request_id+1``, then :meth:`end` (the kubelet's
        ``fmt.Fprint(p.errorStream, msg)``).

        Raises:
            LocalProtocolError: no such request, or it was ended.
        """
        port = self._port(request_id, "fail")
        if port.ended:
            raise LocalProtocolError(f"request {request_id} was ended")
        if message:
            self._send(2 * request_id + 1, message.encode())
        self.end(request_id)

    def reset(self, request_id: int) -> None:
        """As :meth:`end`: the protocol cannot abort one port.

        Raises:
            LocalProtocolError: no such request.
        """
        self.end(request_id)

    def expire(self, now: float) -> list[Event]:
        """Nothing expires on WebSocket: ``[]``."""
        del now
        return []

    def next_deadline(self) -> float | None:
        """Always None."""
        return None
