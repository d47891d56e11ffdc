"""The port-forward tunnel, both roles: SPDY port-forward inside WebSocket binary messages.

Skeleton: signatures and docstrings are the contract (docs/portforward-core.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from .._events import Event, UpgradeRequested
from .._portforward.session import PAIR_TIMEOUT
from .._portforward.spdy import DEFAULT_MAX_PENDING_BYTES
from .._upgrade import ServerUpgrade

__all__ = ["TunnelClient", "TunnelServer"]

Buffer = bytes | bytearray | memoryview


class TunnelClient:
    """Client role (kubectl 1.31+): ``GET <target>`` offering
    ``Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io``; then a SPDY port-forward
    client inside. Same methods as :class:`~kstream._portforward.spdy.SpdyPortForwardClient`.
    A 101 without that subprotocol, or any other answer, is :class:`~kstream.UpgradeRejected`:
    fall back to SPDY."""

    transport = "tunnel"

    def __init__(self, *, host: str, target: str, headers: Sequence[tuple[str, str]] = (),
                 max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES) -> None:
        """Queue the WebSocket upgrade request."""
        raise NotImplementedError

    @property
    def protocol(self) -> str:
        """``SPDY/3.1+portforward.k8s.io`` once upgraded, else ``""``."""
        raise NotImplementedError

    @property
    def awaiting_pong_since(self) -> float | None:
        """The inner SPDY session's: the ``now`` of the oldest unanswered ping."""
        raise NotImplementedError

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the server."""
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        """Drain the queued bytes (SPDY output wrapped in binary messages)."""
        raise NotImplementedError

    def open(self, port: int) -> int:
        """As :meth:`SpdyPortForwardClient.open`."""
        raise NotImplementedError

    def send(self, request_id: int, data: Buffer) -> None:
        """As :meth:`SpdyPortForwardClient.send`."""
        raise NotImplementedError

    def end(self, request_id: int) -> None:
        """As :meth:`SpdyPortForwardClient.end`."""
        raise NotImplementedError

    def reset(self, request_id: int) -> None:
        """As :meth:`SpdyPortForwardClient.reset`."""
        raise NotImplementedError

    def ping(self, now: float) -> None:
        """A SPDY PING inside the tunnel (client-go pings every 10 s there)."""
        raise NotImplementedError

    def close(self) -> None:
        """GOAWAY inside, then WebSocket close 1000 (``TunnelingConnection.Close``)."""
        raise NotImplementedError


class TunnelServer:
    """Server role (the apiserver's ``streamtunnel.go`` with a kubelet behind it).

    :meth:`accept` chooses ``SPDY/3.1+portforward.k8s.io`` among the offered
    subprotocols (none with the ``SPDY/3.1+`` prefix: 400 ``unable to upgrade: no
    tunneling spdy protocols provided``), then runs a SPDY port-forward server inside.
    Binary messages it sends carry at most 32 KiB."""

    transport = "tunnel"

    def __init__(self, *, pair_timeout: float = PAIR_TIMEOUT,
                 max_message_size: int = 32 * 1024 * 1024) -> None:
        """Wait for the upgrade request."""
        raise NotImplementedError

    @property
    def protocol(self) -> str:
        """``SPDY/3.1+portforward.k8s.io`` once accepted."""
        raise NotImplementedError

    @property
    def request(self) -> UpgradeRequested | None:
        """The upgrade request, once complete."""
        raise NotImplementedError

    @property
    def awaiting_pong_since(self) -> float | None:
        """The inner SPDY session's."""
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
        """101 with the tunnel subprotocol; the inner SPDY server starts."""
        raise NotImplementedError

    def reject(self, status_code: int, message: str = "") -> None:
        """An HTTP error with a ``metav1.Status`` body."""
        raise NotImplementedError

    def send(self, request_id: int, data: Buffer) -> None:
        """As :meth:`SpdyPortForwardServer.send`."""
        raise NotImplementedError

    def end(self, request_id: int) -> None:
        """As :meth:`SpdyPortForwardServer.end`."""
        raise NotImplementedError

    def fail(self, request_id: int, message: str) -> None:
        """As :meth:`SpdyPortForwardServer.fail`."""
        raise NotImplementedError

    def reset(self, request_id: int) -> None:
        """As :meth:`SpdyPortForwardServer.reset`."""
        raise NotImplementedError

    def expire(self, now: float) -> list[Event]:
        """As :meth:`SpdyPortForwardServer.expire`."""
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        """As :meth:`SpdyPortForwardServer.next_deadline`."""
        raise NotImplementedError

    def ping(self, now: float) -> None:
        """A SPDY PING inside the tunnel."""
        raise NotImplementedError

    def close(self) -> None:
        """GOAWAY inside, then WebSocket close 1000."""
        raise NotImplementedError
