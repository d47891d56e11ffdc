"""Port-forward over SPDY/3.1 (``portforward.k8s.io``), both roles, sans-IO.

Skeleton: signatures and docstrings are the contract (docs/portforward-core.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .._events import Event, UpgradeRequested
from .._upgrade import ServerUpgrade
from .handshake import SPDY_PORT_FORWARD_PROTOCOL
from .session import PAIR_TIMEOUT

__all__ = ["DEFAULT_MAX_PENDING_BYTES", "SpdyPortForwardClient", "SpdyPortForwardServer"]

Buffer = bytes | bytearray | memoryview

#: Bytes a client holds, over all its requests, for streams the server has not replied to.
DEFAULT_MAX_PENDING_BYTES: Final = 4 * 1024 * 1024


class SpdyPortForwardClient:
    """Client role of port-forward over SPDY (what kubectl <= 1.30 speaks).

    The constructor queues ``POST <target>`` with ``Upgrade: SPDY/3.1`` and
    ``X-Stream-Protocol-Version: portforward.k8s.io``. After the 101 (which must name
    exactly ``portforward.k8s.io``, else :class:`~kstream.UpgradeRejected`), :meth:`open`
    creates the error stream then the data stream of a request, headers ``streamtype``,
    ``port``, ``requestid`` (client-go ``handleConnection``); the error stream is
    half-closed once the server replied to it. :class:`ForwardReady` comes when both
    streams are replied to.
    """

    transport = "spdy"

    def __init__(self, *, host: str, target: str, headers: Sequence[tuple[str, str]] = (),
                 max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES) -> None:
        """Queue the upgrade request.

        Args:
            host: the ``Host`` header.
            target: the request target (:func:`~kstream._portforward.handshake.portforward_target`).
            headers: extra request headers (``Authorization``, ``User-Agent``).
            max_pending_bytes: bytes held, over all requests, for streams not replied yet;
                :meth:`send` raises past it.
        """
        raise NotImplementedError

    @classmethod
    def upgraded(cls, *, protocol: str = SPDY_PORT_FORWARD_PROTOCOL,
                 max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES) -> SpdyPortForwardClient:
        """A client whose SPDY session starts at once, on a connection already upgraded
        by someone else (the tunnel's WebSocket). No upgrade event is reported."""
        raise NotImplementedError

    @property
    def protocol(self) -> str:
        """``portforward.k8s.io`` once upgraded, else ``""``."""
        raise NotImplementedError

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping not answered yet, or None."""
        raise NotImplementedError

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the server (``b""``: EOF); see the Protocol."""
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        """Drain the queued bytes."""
        raise NotImplementedError

    def open(self, port: int) -> int:
        """Open the stream pair of a new request to ``port``; return its request id."""
        raise NotImplementedError

    def send(self, request_id: int, data: Buffer) -> None:
        """Queue bytes on the data stream, DATA frames of at most 32 KiB."""
        raise NotImplementedError

    def end(self, request_id: int) -> None:
        """FIN on the data stream."""
        raise NotImplementedError

    def reset(self, request_id: int) -> None:
        """RST_STREAM CANCEL on both streams; the request is forgotten."""
        raise NotImplementedError

    def ping(self, now: float) -> None:
        """Queue a SPDY PING."""
        raise NotImplementedError

    def close(self) -> None:
        """Reset unfinished streams, GOAWAY OK (client-go ``conn.Close``)."""
        raise NotImplementedError


class SpdyPortForwardServer:
    """Server role of port-forward over SPDY, with the kubelet's rules.

    Streams are checked as they arrive (``httpStreamReceived``): a missing or invalid
    ``port`` (not a uint16 above 0) or ``streamtype`` (not ``error``/``data``) gets
    RST_STREAM CANCEL and no reply; valid ones are replied to at once. Pairs are keyed by
    ``requestid`` (absent: the error stream's id, the data stream's id minus 2). A
    complete pair is :class:`ForwardRequested`; a second stream of one type gets
    ``error processing stream for request N: data stream already assigned`` on the pair's
    error stream and is reset; a pair incomplete after ``pair_timeout`` gets
    :func:`~kstream._portforward.handshake.pair_timeout_text` (see :meth:`expire`).
    """

    transport = "spdy"

    def __init__(self, *, supported: Sequence[str] = (SPDY_PORT_FORWARD_PROTOCOL,),
                 pair_timeout: float = PAIR_TIMEOUT) -> None:
        """Wait for the upgrade request."""
        raise NotImplementedError

    @classmethod
    def upgraded(cls, *, now: float, protocol: str = SPDY_PORT_FORWARD_PROTOCOL,
                 pair_timeout: float = PAIR_TIMEOUT) -> SpdyPortForwardServer:
        """A server whose SPDY session starts at once (the tunnel's inner session)."""
        raise NotImplementedError

    @property
    def protocol(self) -> str:
        """The negotiated protocol once accepted, else ``""``."""
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
        """Feed bytes from the client; see the Protocol."""
        raise NotImplementedError

    def receive_request(self, upgrade: ServerUpgrade) -> list[Event]:
        """Take over a request the caller parsed."""
        raise NotImplementedError

    def data_to_send(self) -> bytes:
        """Drain the queued bytes."""
        raise NotImplementedError

    def accept(self, now: float) -> list[Event]:
        """101 with ``X-Stream-Protocol-Version: portforward.k8s.io``; the pair deadline
        clock starts with ``now``."""
        raise NotImplementedError

    def reject(self, status_code: int, message: str = "") -> None:
        """An HTTP error with a ``metav1.Status`` body."""
        raise NotImplementedError

    def send(self, request_id: int, data: Buffer) -> None:
        """Queue pod bytes on the data stream, DATA frames of at most 32 KiB."""
        raise NotImplementedError

    def end(self, request_id: int) -> None:
        """FIN on the data and error streams (pod EOF)."""
        raise NotImplementedError

    def fail(self, request_id: int, message: str) -> None:
        """The text on the error stream, then FIN on both streams."""
        raise NotImplementedError

    def reset(self, request_id: int) -> None:
        """RST_STREAM CANCEL on both streams; forgotten."""
        raise NotImplementedError

    def expire(self, now: float) -> list[Event]:
        """Time out incomplete pairs."""
        raise NotImplementedError

    def next_deadline(self) -> float | None:
        """The earliest pair deadline, or None."""
        raise NotImplementedError

    def ping(self, now: float) -> None:
        """Queue a SPDY PING."""
        raise NotImplementedError

    def close(self) -> None:
        """Reset unfinished streams, GOAWAY OK."""
        raise NotImplementedError
