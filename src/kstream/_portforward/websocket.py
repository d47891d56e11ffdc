"""Port-forward over WebSocket v4 (``v4.channel.k8s.io``), both roles, sans-IO.

Skeleton: signatures and docstrings are the contract (docs/portforward-core.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .._channels import V4_BASE64_NAME, V4_NAME
from .._events import Event, UpgradeRequested
from .._upgrade import ServerUpgrade

__all__ = ["CLIENT_PROTOCOLS", "SERVER_PROTOCOLS", "WebSocketPortForwardClient",
           "WebSocketPortForwardServer"]

Buffer = bytes | bytearray | memoryview

#: What the client offers by default.
CLIENT_PROTOCOLS: Final = (V4_NAME, V4_BASE64_NAME)
#: What the server accepts (the kubelet's ``websocket.go``): binary v4, base64 v4, and no
#: subprotocol at all (binary).
SERVER_PROTOCOLS: Final = (V4_NAME, V4_BASE64_NAME, "")


class WebSocketPortForwardClient:
    """Client role: one WebSocket, one TCP connection per port of ``ports``.

    Request id ``i`` is port ``ports[i]``: channel ``2i`` carries its data, ``2i+1`` its
    errors. The server's first message on each channel is the port, 2 bytes
    little-endian: checked and stripped (:class:`ForwardReady` when the data channel's
    arrives). No half-close: :meth:`end` only remembers. The WebSocket ending ends every
    request (:class:`ForwardEnded`, then :class:`ForwardClosed`).
    """

    transport = "websocket"

    def __init__(self, *, host: str, target: str, ports: Sequence[int],
                 protocols: Sequence[str] = CLIENT_PROTOCOLS,
                 headers: Sequence[tuple[str, str]] = (),
                 max_message_size: int = 32 * 1024 * 1024) -> None:
        """Queue ``GET <target>?ports=..`` (one ``ports=`` per port appended to ``target``).

        Args:
            host: the ``Host`` header.
            target: the portforward target without ports
                (:func:`~kstream._portforward.handshake.portforward_target`).
            ports: the pod ports, 1 to 40 of them (base64 channels stop at 79).
            protocols: the subprotocols to offer.
            headers: extra request headers.
            max_message_size: largest incoming message.
        """
        raise NotImplementedError

    @property
    def protocol(self) -> str:
        """The negotiated subprotocol (``""`` before the upgrade, or when none)."""
        raise NotImplementedError

    @property
    def ports(self) -> tuple[int, ...]:
        """The ports, by request id."""
        raise NotImplementedError

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping not answered yet, or None."""
        raise NotImplementedError

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the server."""
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        """Drain the queued bytes."""
        raise NotImplementedError

    def open(self, port: int) -> int:
        """Return the first request id of ``port`` not opened yet."""
        raise NotImplementedError

    def send(self, request_id: int, data: Buffer) -> None:
        """Queue bytes on channel ``2*request_id``, messages of at most 32 KiB."""
        raise NotImplementedError

    def end(self, request_id: int) -> None:
        """Remember that the local side ended (nothing is sent)."""
        raise NotImplementedError

    def reset(self, request_id: int) -> None:
        """Close the WebSocket (close 1000): every port on it ends."""
        raise NotImplementedError

    def ping(self, now: float) -> None:
        """Queue a WebSocket ping."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the WebSocket (close 1000)."""
        raise NotImplementedError


class WebSocketPortForwardServer:
    """Server role, as the kubelet's ``websocket.go``.

    :meth:`accept` reads the ports from the query (:func:`parse_ports`), answers the 101,
    writes the 2-byte port on both channels of every port and reports one
    :class:`ForwardRequested` per port. When every port is done (:meth:`end` /
    :meth:`fail`), the WebSocket closes with 1000.
    """

    transport = "websocket"

    def __init__(self, *, supported: Sequence[str] = SERVER_PROTOCOLS,
                 max_message_size: int = 32 * 1024 * 1024) -> None:
        """Wait for the upgrade request."""
        raise NotImplementedError

    @property
    def protocol(self) -> str:
        """The negotiated subprotocol."""
        raise NotImplementedError

    @property
    def request(self) -> UpgradeRequested | None:
        """The upgrade request, once complete."""
        raise NotImplementedError

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping not answered yet, or None."""
        raise NotImplementedError

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the client."""
        raise NotImplementedError

    def receive_request(self, upgrade: ServerUpgrade) -> list[Event]:
        """Take over a request the caller parsed."""
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        """Drain the queued bytes."""
        raise NotImplementedError

    def accept(self, now: float) -> list[Event]:
        """101, port prefixes, ``ForwardRequested`` per port."""
        raise NotImplementedError

    def reject(self, status_code: int, message: str = "") -> None:
        """An HTTP error with a ``metav1.Status`` body."""
        raise NotImplementedError

    def send(self, request_id: int, data: Buffer) -> None:
        """Queue pod bytes on channel ``2*request_id``, messages of at most 32 KiB."""
        raise NotImplementedError

    def end(self, request_id: int) -> None:
        """The pod side ended; the WebSocket closes once every port is done."""
        raise NotImplementedError

    def fail(self, request_id: int, message: str) -> None:
        """The text on channel ``2*request_id+1``, then as :meth:`end`."""
        raise NotImplementedError

    def reset(self, request_id: int) -> None:
        """As :meth:`end` (no per-port abort in the protocol)."""
        raise NotImplementedError

    def expire(self, now: float) -> list[Event]:
        """Nothing to expire on WebSocket: ``[]``."""
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        """Always None."""
        raise NotImplementedError

    def ping(self, now: float) -> None:
        """Queue a WebSocket ping."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the WebSocket (close 1000)."""
        raise NotImplementedError
