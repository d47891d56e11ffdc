"""What a fake node remembers of each session, for a test's assertions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .._status_types import Status

__all__ = ["SessionRecord"]


@dataclass(eq=False)
class SessionRecord:
    """One exec, attach or port-forward session a :class:`~kstream.testing.FakeNode`
    accepted.

    The record is in ``node.sessions`` from the upgrade on; its fields fill in as the
    session runs. Everything a client saw of it is counted before it was sent: once a
    client has read the exit status, ``exit_code`` and the output counts are final.

    Attributes:
        pod: the pod's name.
        namespace: its namespace.
        subresource: ``"exec"``, ``"attach"`` or ``"portforward"`` (a port-forward
            record has the transport, the protocol and the connection's byte counts).
        argv: the command (empty for attach).
        tty: whether the session has a terminal.
        transport: ``"websocket"`` or ``"spdy"`` (``"tunnel"`` for port-forward's
            SPDY-in-WebSocket).
        protocol: the negotiated protocol (``"v5.channel.k8s.io"``, ``"v4.channel.k8s.io"``
            over SPDY, ...).
        offered: the protocols the client offered, in its order.
        stdin_bytes: stdin bytes the pod read.
        stdout_bytes: stdout bytes the pod wrote (after a stall fault's cut).
        stderr_bytes: stderr bytes the pod wrote.
        bytes_from_client: bytes of the connection from the client, after its request
            head.
        bytes_to_client: bytes of the connection to the client, the upgrade answer
            included.
        exit_code: the exit code the pod's process or handler reported; ``None`` for a
            failure without one (or before the end).
        status: the status the pod produced (a fault may have sent another).
        finished: the session is over.
    """

    pod: str
    namespace: str
    subresource: str
    argv: tuple[str, ...]
    tty: bool = False
    transport: str = ""
    protocol: str = ""
    offered: tuple[str, ...] = ()
    stdin_bytes: int = 0
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    bytes_from_client: int = 0
    bytes_to_client: int = 0
    exit_code: int | None = None
    status: Status | None = field(default=None, repr=False)
    finished: bool = False

    def count_in(self, count: int) -> None:
        """Add ``count`` bytes received from the client."""
        self.bytes_from_client += count

    def count_out(self, count: int) -> None:
        """Add ``count`` bytes sent to the client."""
        self.bytes_to_client += count

    def wait_finished(self, timeout: float) -> bool:
        """Wait until the session is over (from synchronous code: a node ``in_thread``).

        Returns:
            Whether it finished within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while not self.finished:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True
