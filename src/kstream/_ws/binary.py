"""A WebSocket of plain binary messages, no channel byte, both roles, sans-IO.

The port-forward tunnel (``_tunnel``) carries a SPDY byte stream in WebSocket binary
messages (client-go ``tools/portforward/tunneling_connection.go``, apiserver
``util/proxy/streamtunnel.go``): message boundaries mean nothing, a text message is an
error, close 1000 is the end of the stream. :class:`BinaryWebSocket` is that carrier; it
knows any subprotocol name and no channels.

Everything but its messages is the connection engine it shares with the channel
connection (:mod:`kstream._ws.engine`): the HTTP upgrade, the state table, pings and the
close handshake, over the zero-copy frame codec (:mod:`kstream._ws.codec`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from .. import _http
from .._errors import LocalProtocolError, RemoteProtocolError
from .._events import Event, UpgradeRequested
from .codec import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ZeroCopyFrameCodec
from .engine import DEFAULT_MAX_MESSAGE_SIZE, MAX_EARLY_DATA, WebSocketEngine, immutable
from .engine import MAX_OUTSTANDING_PINGS as MAX_OUTSTANDING_PINGS
from .engine import MAX_UNSENT_PONGS as MAX_UNSENT_PONGS
from .state import WebSocketState

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "MAX_EARLY_DATA", "BinaryData", "BinaryWebSocket"]

Buffer = bytes | bytearray | memoryview

_UNSUPPORTED_DATA: Final = 1003


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryData(Event):
    """Bytes of binary messages arrived (never empty).

    Message boundaries are not reported: the users of this connection read a byte stream.
    The pieces of consecutive messages decoded by one ``receive_data`` call come as one
    event.
    """

    data: bytes


class BinaryWebSocket(WebSocketEngine):
    """An RFC 6455 connection whose payload is binary messages as they are.

    Build it with :meth:`client` or :meth:`server`. Events:
    :class:`~kstream.UpgradeRequested` (server), :class:`~kstream.UpgradeAccepted`
    (``transport="websocket"``), :class:`~kstream.UpgradeRejected` (client: any answer but
    a valid 101 naming one of the offered subprotocols), :class:`BinaryData`,
    :class:`~kstream.PingReceived` (the pong is queued), :class:`~kstream.PongReceived`,
    :class:`~kstream.ConnectionClosed`. A text message is a
    :class:`~kstream.RemoteProtocolError` (close 1003 queued), as client-go's tunnel
    (``invalid message type``).

    Attributes:
        role: ``"client"`` or ``"server"``.
        protocol: the negotiated subprotocol once open (``""``: none), else None.
        request: server role: the upgrade request once complete.
    """

    _NOT_AWAITING: ClassVar[str] = (
        "cannot {what}: no upgrade request waits for an answer ({role}, state {state})")
    # The request is checked for its method once it is complete and valid HTTP.
    _REFUSE_METHOD_EARLY: ClassVar[bool] = False

    def __init__(self, *, client: bool, max_message_size: int) -> None:
        """Use :meth:`client` or :meth:`server`."""
        super().__init__(client=client, max_message_size=max_message_size)
        self.protocol: str | None = None

    @classmethod
    def client(cls, *, host: str, target: str, protocols: Sequence[str],
               headers: Sequence[tuple[str, str]] = (),
               max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> BinaryWebSocket:
        """Queue the GET upgrade request offering ``protocols`` (gorilla's request).

        Raises:
            LocalProtocolError: a header or the target cannot be sent.
        """
        connection = cls(client=True, max_message_size=max_message_size)
        connection._send_upgrade_request(host, target, protocols, headers)
        return connection

    @classmethod
    def server(cls, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> BinaryWebSocket:
        """Wait for an upgrade request; answer with :meth:`accept` or :meth:`reject`."""
        return cls(client=False, max_message_size=max_message_size)

    @property
    def request(self) -> UpgradeRequested | None:
        """Server role: the upgrade request once complete."""
        return self._request

    def _open(self, protocol: str) -> None:
        self.protocol = protocol
        self._codec = ZeroCopyFrameCodec(client=self._client,
                                         max_message_size=self._max_message_size)

    # ------------------------------------------------------------------ server: answers

    def accept(self, protocol: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Answer ``101`` naming ``protocol`` (``""``: no subprotocol header).

        Raises:
            LocalProtocolError: no request waits for an answer, or ``protocol`` was not
                offered.
        """
        request = self._awaiting_answer("accept")
        if protocol and protocol not in request.protocols:
            raise LocalProtocolError(f"the client did not offer {protocol!r}")
        self._switch(request, protocol, headers)

    def reject(self, status_code: int, *, message: str = "", body: bytes | None = None,
               headers: Sequence[tuple[str, str]] = ()) -> None:
        """Answer with an HTTP error: ``body`` as given, else a ``metav1.Status`` with
        ``message`` (``Content-Type: text/plain`` when ``body`` is given).

        Raises:
            LocalProtocolError: no request waits for an answer, or an invalid status.
        """
        self._awaiting_answer("reject")
        response_headers = list(headers)
        if body is None:
            status_headers, body = _http.status_response(status_code, message)
            response_headers = [*status_headers, *response_headers]
        else:
            response_headers.insert(0, ("Content-Type", "text/plain; charset=utf-8"))
        self._queue_rejection(status_code, response_headers, body)

    # ------------------------------------------------------------------ sending

    def send(self, data: Buffer) -> None:
        """Queue ``data`` as one binary message (nothing for empty ``data``).

        Raises:
            LocalProtocolError: not open.
        """
        if self._state is not WebSocketState.OPEN:
            raise LocalProtocolError(f"cannot send in state {self._state.name}")
        if data:
            if not self._client and not immutable(data):
                # Unmasked frames hand the payload itself to data_to_send(), which joins
                # it later: a buffer the caller may change meanwhile is copied now.
                data = bytes(data)
            self._outgoing += self._frames.message_parts(b"", data, text=False)

    # ------------------------------------------------------------------ receiving

    def _receive_frames(self, data: Buffer, events: list[Event]) -> None:
        if not data:
            self._on_eof(events)
            return
        codec = self._frames
        # Binary pieces that follow each other in this call are reported as one event:
        # one copy (the join) and one event per read, whatever the message boundaries.
        run: list[Buffer] = []
        for opcode, payload, _, _ in codec.receive_frames(data):
            if opcode == OP_BINARY:
                if payload:
                    run.append(payload)
                continue
            _flush_run(run, events)
            if opcode == OP_TEXT:
                raise RemoteProtocolError("text message on a binary stream",
                                          close_code=_UNSUPPORTED_DATA)
            elif opcode == OP_PING:
                self._on_ping(payload, events)
            elif opcode == OP_PONG:
                self._on_pong(payload, events)
            else:
                assert opcode == OP_CLOSE and codec.close_code is not None
                self._on_peer_close(codec.close_code, codec.close_reason, events)
        _flush_run(run, events)


def _flush_run(run: list[Buffer], events: list[Event]) -> None:
    """Report the binary pieces gathered so far as one :class:`BinaryData`."""
    if run:
        events.append(BinaryData(data=bytes(run[0]) if len(run) == 1 else b"".join(run)))
        run.clear()

