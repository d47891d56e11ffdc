"""The WebSocket frame layer under the channel connection (RFC 6455 §5, after the handshake).

Everything the channel connection needs from WebSocket framing goes through
:class:`FrameCodec`: feed it received bytes and get :data:`Received` items back; ask it for
the bytes of a message, ping, pong or close frame. Its interface holds only kstream and
builtin types, so another codec can replace this one without touching ``_ws/connection.py``.

This implementation runs on :class:`wsproto.connection.Connection` (the frame protocol
without the handshake). What wsproto does for us: masking (clients mask, servers reject
unmasked frames and vice versa), control-frame rules, UTF-8 validation of text messages
(close code 1007), close-frame parsing. It streams data frames in pieces as they arrive,
so a large message is never buffered whole here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, cast

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, TextMessage
from wsproto.events import Ping as WsprotoPing
from wsproto.events import Pong as WsprotoPong
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError as WsprotoLocalProtocolError

from .._errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "MAX_CLOSE_REASON_BYTES",
    "NO_STATUS_CODE",
    "CloseFrame",
    "FrameCodec",
    "MessagePiece",
    "PingFrame",
    "PongFrame",
    "Received",
    "check_close_code",
]

#: A close frame's payload is at most 125 bytes: a 2-byte code and up to 123 of reason.
MAX_CLOSE_REASON_BYTES: Final = 123

Buffer = bytes | bytearray | memoryview

#: Close code a close frame without payload reads as (RFC 6455 §7.1.5).
NO_STATUS_CODE: Final = 1005

# The protocol-range close codes (1000-2999) a peer accepts in a close frame: those with a
# meaning on the wire (RFC 6455 §7.4.1 and the IANA registry as wsproto knows it). 1004 is
# reserved; 1005, 1006 and 1015 only describe a connection locally. 3000-4999 are free.
_SENDABLE_PROTOCOL_CLOSE_CODES: Final = frozenset({1000, 1001, 1002, 1003, *range(1007, 1014)})
_APPLICATION_CLOSE_CODES: Final = range(3000, 5000)


@dataclass(frozen=True, slots=True)
class MessagePiece:
    """A piece of a data message, in order; pieces of one message are never interleaved.

    Attributes:
        text: the message is a text message (opcode 1) rather than binary (opcode 2).
        data: the piece's payload (for text, its UTF-8); may be empty. A codec may hand
            out a view of the received bytes instead of a copy.
        message_finished: this piece ends the message.
    """

    text: bool
    data: bytes | bytearray | memoryview
    message_finished: bool


@dataclass(frozen=True, slots=True)
class PingFrame:
    """A ping arrived (nothing is answered automatically at this layer)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class PongFrame:
    """A pong arrived."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class CloseFrame:
    """A close frame arrived; nothing after it is parsed.

    Attributes:
        code: the close code, 1005 when the frame carried none.
        reason: the close reason text.
    """

    code: int
    reason: str


#: What :meth:`FrameCodec.receive` yields.
Received = MessagePiece | PingFrame | PongFrame | CloseFrame


class FrameCodec:
    """Parse and serialize WebSocket frames for one side of an open connection.

    Args:
        client: we are the client (our frames are masked, the peer's must not be).

    The codec does not answer pings or closes and does not track the closing handshake;
    the channel connection above decides what to send. Outgoing data messages are always
    one frame with FIN set.
    """

    __slots__ = ("_connection",)

    def __init__(self, *, client: bool) -> None:
        role = ConnectionType.CLIENT if client else ConnectionType.SERVER
        self._connection = Connection(role)

    def receive(self, data: Buffer) -> list[Received]:
        """Parse ``data`` (appended to what is buffered) into frames and message pieces.

        Parsing stops for good after a close frame.

        Args:
            data: bytes received from the peer (not empty: EOF is the caller's business).

        Returns:
            The items parsed, in order.

        Raises:
            RemoteProtocolError: the bytes break RFC 6455; ``close_code`` is the code to
                close with (1002, or 1007 for invalid UTF-8 in a text message). Items
                parsed before the error are lost with it: the connection is over.
        """
        if self._connection.state not in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
            # wsproto ignores or refuses bytes after a close frame; so do we.
            return []
        # wsproto annotates bytes but only appends the data to a bytearray: any buffer works.
        self._connection.receive_data(cast("bytes", data))
        items: list[Received] = []
        for event in self._connection.events():
            if isinstance(event, BytesMessage):
                items.append(MessagePiece(False, bytes(event.data), event.message_finished))
            elif isinstance(event, TextMessage):
                # wsproto validated and decoded the UTF-8; the channel layer wants bytes.
                items.append(MessagePiece(True, event.data.encode(), event.message_finished))
            elif isinstance(event, WsprotoPing):
                items.append(PingFrame(bytes(event.payload)))
            elif isinstance(event, WsprotoPong):
                items.append(PongFrame(bytes(event.payload)))
            # wsproto's Connection.events() yields only these five event types (its own
            # arm for any other frame is "pragma: no cover"): this test never fails.
            elif isinstance(event, CloseConnection):  # pragma: no branch
                items.append(self._close_or_raise(event))
        return items

    def _close_or_raise(self, event: CloseConnection) -> CloseFrame:
        # wsproto reports a parse failure as a CloseConnection too, but without the state
        # change a received close frame causes (connection.py, Connection.events): a real
        # close frame always moves the state to REMOTE_CLOSING or CLOSED.
        if self._connection.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
            raise RemoteProtocolError(
                f"invalid WebSocket frame: {event.reason}", close_code=int(event.code))
        return CloseFrame(int(event.code), event.reason or "")

    def message(self, prefix: bytes, payload: Buffer, *, text: bool) -> bytes:
        """Serialize one unfragmented data message whose payload is ``prefix + payload``.

        Args:
            prefix: the channel byte (or character): kept apart so that a codec can write
                header, prefix and payload with a single copy of the payload.
            payload: the rest of the message.
            text: send a text message (the bytes must be UTF-8) instead of a binary one.

        Raises:
            LocalProtocolError: the connection is closing or closed.
        """
        body = prefix + payload
        event = (TextMessage(data=body.decode()) if text else BytesMessage(data=body))
        return self._send(event)

    def ping(self, payload: bytes = b"") -> bytes:
        """Serialize a ping frame (payload at most 125 bytes)."""
        return self._send(WsprotoPing(payload=payload))

    def pong(self, payload: bytes = b"") -> bytes:
        """Serialize a pong frame answering a ping with ``payload``.

        Returns ``b""`` when the peer's close frame has already been parsed: ``receive``
        drains wsproto in one go, so a ping and a close that arrive in the same read are
        both behind us when the ping is answered, and wsproto refuses a pong once the
        peer is closing. A peer that sent its close frame expects no pong.
        """
        if self._connection.state is not ConnectionState.OPEN:
            return b""
        return self._send(WsprotoPong(payload=payload))

    def close(self, code: int, reason: str = "") -> bytes:
        """Serialize a close frame.

        Args:
            code: the close code; 1005 (what a code-less close frame reads as) sends a
                close frame with no payload, so a received close can be echoed as is.
            reason: the reason text, at most 123 bytes of UTF-8.

        Raises:
            LocalProtocolError: a code that may not be sent, a reason too long, or a
                close frame was already sent.
        """
        if code == NO_STATUS_CODE:
            # wsproto sends an empty close payload for exactly this enum member.
            return self._send(CloseConnection(code=CloseReason.NO_STATUS_RCVD))
        check_close_code(code, reason)
        return self._send(CloseConnection(code=code, reason=reason))

    def _send(self, event: BytesMessage | TextMessage | WsprotoPing | WsprotoPong
              | CloseConnection) -> bytes:
        try:
            return self._connection.send(event)
        except WsprotoLocalProtocolError as exc:
            raise LocalProtocolError(str(exc)) from None


def check_close_code(code: int, reason: str) -> None:
    """Check that ``code`` and ``reason`` may go in a close frame we send.

    Raises:
        LocalProtocolError: the code is not one of 1000-1003, 1007-1013, 3000-4999, or
            the reason exceeds 123 bytes of UTF-8.
    """
    if type(code) is not int or (code not in _SENDABLE_PROTOCOL_CLOSE_CODES
                                 and code not in _APPLICATION_CLOSE_CODES):
        raise LocalProtocolError(f"close code {code!r} cannot be sent in a close frame")
    if len(reason.encode()) > MAX_CLOSE_REASON_BYTES:
        raise LocalProtocolError(
            f"close reason is longer than {MAX_CLOSE_REASON_BYTES} bytes of UTF-8")
