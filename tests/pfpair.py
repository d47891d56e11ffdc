"""A port-forward client and server joined in memory: the moves every transport's tests share.

Each transport's test module subclasses :class:`ForwardPair` with its own upgrade checks
and, where it decodes what the server sent, its own :meth:`ForwardPair.record`.
"""

from __future__ import annotations

from kstream._events import Event
from kstream._portforward.events import ForwardReady, ForwardRequested
from kstream._portforward.session import (
    PortForwardClientConnection,
    PortForwardServerConnection,
)


class ForwardPair:
    """``client`` and ``server`` joined in memory, every event of each kept in order."""

    def __init__(self, client: PortForwardClientConnection,
                 server: PortForwardServerConnection) -> None:
        self.client = client
        self.server = server
        self.client_events: list[Event] = []
        self.server_events: list[Event] = []
        self.now = 0.0

    def record(self, data: bytes) -> None:
        """What the server is about to send the client (a hook: nothing by default)."""

    def to_server(self) -> list[Event]:
        """Deliver what the client queued, then let the server's deadlines pass ``now``."""
        data = self.client.data_to_send()
        events = self.server.receive_data(data) if data else []
        events += self.server.expire(self.now)
        self.server_events += events
        return events

    def from_server(self) -> list[Event]:
        """Deliver what the server queued."""
        data = self.server.data_to_send()
        self.record(data)
        events = self.client.receive_data(data) if data else []
        self.client_events += events
        return events

    def pump(self) -> tuple[list[Event], list[Event]]:
        """Both ways until both sides are quiet (at most 10 rounds): (client, server) events."""
        client: list[Event] = []
        server: list[Event] = []
        for _ in range(10):
            s = self.to_server()
            c = self.from_server()
            client += c
            server += s
            if not s and not c:
                break
        return client, server

    def open(self, port: int = 8080) -> tuple[int, int]:
        """Open a forwarded connection to ``port``: (client's, server's) request id."""
        request_id = self.client.open(port)
        client, server = self.pump()
        assert ForwardReady(request_id=request_id) in client
        requested = [e for e in server if isinstance(e, ForwardRequested)]
        assert requested[-1].port == port
        return request_id, requested[-1].request_id
