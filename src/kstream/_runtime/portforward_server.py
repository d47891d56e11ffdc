"""The server side of port-forward, written once for both runtimes.

A server's handler gets an exec-style :class:`~.server.ServerRequest`; for a
``.../pods/{name}/portforward`` upgrade it calls ``request.accept_port_forward()``
(:func:`accept_port_forward`), which hands the parsed request over to the port-forward
server connection of the transport the client asked for (SPDY, the tunnel, WebSocket
v4) and turns the server's connection into a :class:`ServerPortForward`. Then::

    while (connection := await session.next_connection()) is not None:
        ...  # dial connection.port; copy both ways; connection.fail(text) if it fails

How it sits on :class:`~.core.ServerCore` without changing it: the connection's
``session`` becomes a :class:`_ForwardSession` that hands port-forward events here and
only the end of the connection back to the core, and its inputs become one buffer per
forwarded connection plus the queue of new requests, kept as the core's ``STDIN`` input:
the core ends that input when the connection ends, which is how the waiting handler
learns of it.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from typing import Any, Final, Protocol, cast

from .._channels import STDIN
from .._errors import KstreamError, LocalProtocolError, ProtocolError, UpgradeRejectedError
from .._events import ConnectionClosed, Event, UpgradeAccepted, UpgradeRequested
from .._portforward.dispatch import server_for_request
from .._portforward.events import (
    ForwardClosed,
    ForwardData,
    ForwardEnded,
    ForwardRequested,
    ForwardReset,
)
from .._portforward.handshake import request_transport
from .._portforward.session import PortForwardServerConnection
from .._upgrade import ServerUpgrade
from .buffers import READ_SIZE, ReceiveBuffer

__all__ = ["ServerForwardedConnection", "ServerPortForward", "accept_port_forward"]

#: The queue of new requests: the core's STDIN input (see the module docstring).
_REQUESTS: Final = STDIN
#: One queued request: its id and its port.
_REQUEST: Final = struct.Struct(">QH")


def _data_key(request_id: int) -> int:
    return request_id + 1  # 0 is the request queue


class _Connection(Protocol):
    """What this module needs of a server connection (:class:`.core.ServerCore`)."""

    session: Any
    closed: bool
    _inputs: dict[int, ReceiveBuffer]

    def _feed_input(self, key: int, data: bytes) -> None: ...
    def _end_input(self, key: int, error: BaseException | None = None) -> None: ...
    def _maybe_resume_reading(self) -> None: ...
    def _flush(self) -> None: ...
    def _schedule_flush(self) -> None: ...
    def _now(self) -> float: ...
    async def read(self, key: int, n: int = -1) -> bytes: ...
    async def readexactly(self, key: int, n: int) -> bytes: ...
    async def drain(self) -> None: ...
    async def close(self, *, abort: bool = False) -> None: ...


class _ForwardSession:
    """What the server core holds as its session once the request became a port-forward.

    It feeds the port-forward connection and hands its events to the
    :class:`ServerPortForward`; only the end of the connection goes back to the core.
    """

    answered = True
    request: object = None

    def __init__(self, forward: ServerPortForward, connection: PortForwardServerConnection,
                 previous: Any) -> None:
        self._forward = forward
        self._connection = connection
        self.transport = connection.transport
        self.request = getattr(previous, "request", None)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        events = self._connection.receive_data(data)
        back: list[Event] = []
        for event in events:
            if isinstance(event, ConnectionClosed):
                back.append(event)
            else:
                self._forward._handle(event)
        return back

    def data_to_send(self) -> bytes:
        return self._connection.data_to_send()

    def check_deadline(self, now: float) -> bool:
        return False

    def close(self) -> None:
        with contextlib.suppress(ProtocolError):
            self._connection.close()


class ServerForwardedConnection:
    """One connection a client forwards to a pod port (server side).

    Attributes:
        request_id: its id on the session.
        port: the pod port the client asked for.
    """

    def __init__(self, forward: ServerPortForward, request_id: int, port: int) -> None:
        self._forward = forward
        self.request_id = request_id
        self.port = port
        self.closed = False

    def __repr__(self) -> str:
        return f"<ServerForwardedConnection {self.request_id} port={self.port}>"

    async def read(self, n: int = READ_SIZE) -> bytes:
        """The client's next bytes (at most ``n``); ``b""`` at its EOF.

        Raises:
            ConnectionResetError: the client reset this connection (or the whole session
                ended).
        """
        if self.closed:
            return b""
        return await self._forward._conn.read(_data_key(self.request_id), n)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes from the pod (dropped once the connection is over)."""
        if data and self._forward._live(self.request_id):
            self._forward._call("send", self.request_id, data)

    async def drain(self) -> None:
        """Wait until the client's connection takes more."""
        await self._forward._conn.drain()

    def end(self) -> None:
        """The pod closed its side (SPDY FIN on both streams)."""
        if self._forward._live(self.request_id):
            self._forward._call("end", self.request_id)

    def fail(self, message: str) -> None:
        """Write ``message`` on the connection's error stream/channel and end it (what
        the kubelet does when the pod port fails)."""
        if self._forward._live(self.request_id):
            self._forward._call("fail", self.request_id, message)

    def reset(self) -> None:
        """Abort the connection (SPDY RST_STREAM)."""
        if self._forward._live(self.request_id):
            self._forward._call("reset", self.request_id)

    def close(self) -> None:
        """Forget the connection: its unread bytes are dropped."""
        if not self.closed:
            self.closed = True
            self._forward._forget(self.request_id)


class ServerPortForward:
    """The server side of an accepted port-forward session, on any transport.

    Attributes:
        transport: ``"spdy"``, ``"tunnel"`` or ``"websocket"``.
        protocol: the negotiated protocol.
    """

    def __init__(self, conn: _Connection, connection: PortForwardServerConnection) -> None:
        self._conn = conn
        self._connection = connection
        self.transport = connection.transport
        self.protocol = ""
        self._requests: dict[int, ForwardRequested] = {}
        self._ended: set[int] = set()

    # -- events (from _ForwardSession)

    def _handle(self, event: Event) -> None:
        conn = self._conn
        if isinstance(event, ForwardData):
            conn._feed_input(_data_key(event.request_id), event.data)
        elif isinstance(event, ForwardRequested):
            self._requests[event.request_id] = event
            conn._inputs[_data_key(event.request_id)] = ReceiveBuffer()
            conn._feed_input(_REQUESTS, _REQUEST.pack(event.request_id, event.port))
        elif isinstance(event, ForwardEnded):
            conn._end_input(_data_key(event.request_id))
        elif isinstance(event, ForwardReset):
            self._ended.add(event.request_id)
            conn._end_input(_data_key(event.request_id),
                            ConnectionResetError("the client reset the connection"))
        elif isinstance(event, ForwardClosed):
            self._ended.add(event.request_id)
            conn._end_input(_data_key(event.request_id))
        elif isinstance(event, UpgradeAccepted):
            self.protocol = event.protocol

    def _live(self, request_id: int) -> bool:
        return not self._conn.closed and request_id in self._requests \
            and request_id not in self._ended

    def _call(self, name: str, request_id: int, *args: Any) -> None:
        try:
            getattr(self._connection, name)(request_id, *args)
        except LocalProtocolError:
            self._ended.add(request_id)  # the client ended it meanwhile
            return
        self._conn._schedule_flush()

    def _forget(self, request_id: int) -> None:
        self._requests.pop(request_id, None)
        self._ended.discard(request_id)
        self._conn._inputs.pop(_data_key(request_id), None)
        # trio's pump keeps a parking lot per input key: drop it with the input.
        readable = getattr(self._conn, "_readable", None)
        if isinstance(readable, dict):
            readable.pop(_data_key(request_id), None)
        self._conn._maybe_resume_reading()

    def _end_all(self) -> None:
        for request_id in list(self._requests):
            self._conn._end_input(_data_key(request_id), ConnectionResetError(
                "the port-forward connection ended"))

    # -- what the handler calls

    @property
    def closed(self) -> bool:
        """Whether the client's connection is over."""
        return self._conn.closed

    async def next_connection(self) -> ServerForwardedConnection | None:
        """Wait for the next connection the client forwards; ``None`` once it is gone."""
        try:
            record = await self._conn.readexactly(_REQUESTS, _REQUEST.size)
        except (KstreamError, EOFError, OSError):
            self._end_all()
            return None
        request_id, port = _REQUEST.unpack(record)
        return ServerForwardedConnection(self, request_id, port)

    def next_deadline(self) -> float | None:
        """When :meth:`expire` has work next (the runtime's clock), or ``None``."""
        return self._connection.next_deadline()

    def expire(self) -> None:
        """Apply the 30 s pair deadline of SPDY (call it at :meth:`next_deadline`)."""
        if not self._conn.closed:
            for event in self._connection.expire(self._conn._now()):
                self._handle(event)
            self._conn._schedule_flush()

    async def close(self) -> None:
        """End the session (SPDY GOAWAY, WebSocket close 1000) and the connection."""
        if not self._conn.closed:
            with contextlib.suppress(ProtocolError):
                self._connection.close()
        await self._conn.close()


def _take_over(session: Any) -> ServerUpgrade:
    take_over = getattr(session, "take_over", None)
    if take_over is None:
        raise LocalProtocolError("the request has already been answered")
    upgrade: ServerUpgrade = take_over()
    return upgrade


async def accept_port_forward(server_connection: object,
                              headers: Sequence[tuple[str, str]]) -> ServerPortForward:
    """Accept a port-forward upgrade on a server connection whose request was parsed.

    Args:
        server_connection: the server connection (a runtime's :class:`.core.ServerCore`).
        headers: the request's headers (names lower-case): they name the transport.

    Returns:
        The :class:`ServerPortForward`.

    Raises:
        UpgradeRejectedError: the request cannot be accepted (no protocol in common,
            bad ``?ports=``); the answer was sent and the connection closed.
        LocalProtocolError: the request was already answered, or is no upgrade.
    """
    conn = cast(_Connection, server_connection)
    if request_transport(headers) is None:
        raise LocalProtocolError("the request is not an upgrade request; answer it with "
                                 "400 Upgrade request required")
    chosen = server_for_request(_take_over(conn.session))
    assert chosen is not None  # request_transport said it is an upgrade
    connection, _ = chosen
    forward = ServerPortForward(conn, connection)
    previous = conn.session
    conn.session = _ForwardSession(forward, connection, previous)
    conn._inputs = {_REQUESTS: ReceiveBuffer()}
    try:
        events = connection.accept(conn._now())
    except UpgradeRejectedError:
        conn._flush()
        await conn.close()
        raise
    for event in events:
        if not isinstance(event, (UpgradeRequested, ConnectionClosed)):
            forward._handle(event)
    conn._flush()
    return forward
