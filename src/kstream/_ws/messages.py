"""Incoming channel messages, assembled piece by piece, for an open WebSocket connection.

:class:`~kstream._ws.connection.WebSocketChannelConnection` hands a data message's pieces
(the payloads of its frames, as the frames arrive) to the :class:`MessageAssembler` it
owns, except for a whole message in one frame on a channel that takes data, which its
receive loop reports itself (the fast path). The assembler reads the channel byte, checks
the message's size, decodes base64 subprotocols, and turns the message into
:class:`~kstream.ChannelData` (piece by piece, a large message is never buffered whole),
:class:`~kstream.DroppedMessage` or, for the v5 CLOSE signal, :class:`~kstream.ChannelEnded`.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from .._channels import CLOSE, ChannelProtocol
from .._errors import RemoteProtocolError
from .._events import ChannelData, ChannelEnded, DroppedMessage, Event
from .framing import Base64PayloadDecoder, base64_channel_of, decode_close

__all__ = ["MESSAGE_TOO_BIG", "PROTOCOL_ERROR", "MessageAssembler"]

Buffer = bytes | bytearray | memoryview

#: The close codes a broken message fails the connection with.
PROTOCOL_ERROR: Final = 1002
MESSAGE_TOO_BIG: Final = 1009


class _MessageKind(Enum):
    # What the channel prefix of the incoming message says to do with its payload.
    DATA = "data"
    DROP = "drop"
    CLOSE_SIGNAL = "close signal"


class MessageAssembler:
    """The incoming data messages of one open connection, in the client or server role.

    Attributes:
        in_message: a message has begun and not ended (its next piece continues it).
        dropped_messages: how many messages were dropped (channel outside the set).
    """

    __slots__ = ("_base64", "_client", "_close_signal", "_message_channel",
                 "_message_has_payload", "_message_kind", "_message_size", "_protocol",
                 "channels", "dropped_messages", "in_message", "max_message_size")

    def __init__(self, *, client: bool, protocol: ChannelProtocol, channels: frozenset[int],
                 max_message_size: int) -> None:
        self._client = client
        self._protocol = protocol
        self.channels = channels
        self.max_message_size = max_message_size
        self.dropped_messages = 0
        # The incoming message being parsed.
        self.in_message = False
        self._message_size = 0
        self._message_channel: int | None = None
        self._message_kind = _MessageKind.DATA
        self._message_has_payload = False
        self._base64: Base64PayloadDecoder | None = None
        self._close_signal = bytearray()

    def on_message_piece(self, text: bool, payload: Buffer, message_finished: bool,
                         events: list[Event]) -> None:
        # One piece of a data message (``payload`` may be borrowed: copy what is kept).
        if not self.in_message:
            self._start_message(text)
        self._message_size += len(payload)
        if self._message_size > self.max_message_size:
            raise RemoteProtocolError(
                f"message larger than {self.max_message_size} bytes", close_code=MESSAGE_TOO_BIG)
        if self._message_channel is None and payload:
            self._start_channel(payload[0])
            payload = memoryview(payload)[1:]
        if payload:
            self._on_payload(payload, events)
        if message_finished:
            self._end_message(events)

    def _start_message(self, text: bool) -> None:
        # client-go fails on a text message (readDemuxLoop: "unexpected message type");
        # the x/net server reads text and binary frames alike (websocket.go unmarshal),
        # and so does our server role, for both codecs.
        if self._client and text != self._protocol.base64:
            kind = "text" if text else "binary"
            raise RemoteProtocolError(
                f"{kind} message on subprotocol {self._protocol.name or '(none)'!r}",
                close_code=PROTOCOL_ERROR)
        self.in_message = True
        self._message_size = 0
        self._message_channel = None
        self._message_has_payload = False

    def _start_channel(self, first_byte: int) -> None:
        protocol = self._protocol
        if protocol.base64:
            channel = base64_channel_of(first_byte)
            self._base64 = Base64PayloadDecoder()
        else:
            channel = first_byte
        self._message_channel = channel
        if channel == CLOSE and protocol.supports_close and not self._client:
            self._message_kind = _MessageKind.CLOSE_SIGNAL
            self._close_signal = bytearray((CLOSE,))
        elif channel not in self.channels:
            # Upstream drops these and carries on (conn.go handle, client-go readDemuxLoop).
            self._message_kind = _MessageKind.DROP
        else:
            self._message_kind = _MessageKind.DATA

    def _on_payload(self, payload: Buffer, events: list[Event]) -> None:
        channel = self._message_channel
        assert channel is not None
        if self._message_kind is _MessageKind.DATA:
            data = bytes(payload) if self._base64 is None else self._base64.feed(payload)
            if data:
                self._message_has_payload = True
                events.append(ChannelData(channel=channel, data=data))
        elif self._message_kind is _MessageKind.CLOSE_SIGNAL:
            self._close_signal += payload
            if len(self._close_signal) > 2:
                decode_close(self._close_signal)  # raises: too long

    def _end_message(self, events: list[Event]) -> None:
        self.in_message = False
        channel = self._message_channel
        if channel is None:
            # A zero-length message: client-go fails ("read stream id: EOF"), the server
            # ignores it (conn.go handle).
            if self._client:
                raise RemoteProtocolError("zero-length message: no channel byte",
                                          close_code=PROTOCOL_ERROR)
            return
        kind = self._message_kind
        if kind is _MessageKind.DATA:
            if self._base64 is not None:
                self._base64.finish()
                self._base64 = None
            if not self._message_has_payload and self._client:
                # An empty message (the exec server's hello), reported as such.
                events.append(ChannelData(channel=channel, data=b""))
        elif kind is _MessageKind.DROP:
            self._base64 = None
            self.dropped_messages += 1
            events.append(DroppedMessage(channel=channel, size=self._message_size))
        else:
            ended = decode_close(self._close_signal)
            if ended not in self.channels:
                # The server aborts on a CLOSE for a channel it does not have (conn.go).
                raise RemoteProtocolError(f"CLOSE signal for unknown channel {ended}",
                                          close_code=PROTOCOL_ERROR)
            events.append(ChannelEnded(channel=ended))
