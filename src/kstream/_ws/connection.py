"""The WebSocket channel connection (channel.k8s.io family), both roles, sans-IO.

One object per TCP connection, in the shape every kstream connection has
(``docs/architecture.md``): feed it bytes with :meth:`~WebSocketChannelConnection.receive_data`
and get :mod:`kstream events <kstream._events>` back; send with the ``send_data`` /
``close_channel`` / ``ping`` / ``close`` methods and drain ``data_to_send()``.

Layers underneath:

* the connection engine (:mod:`kstream._ws.engine`, shared with
  :class:`~kstream._ws.binary.BinaryWebSocket`): the upgrade, states, pings and the close
  handshake; this module adds the channel messages;
* the HTTP/1.1 upgrade: parsed once by the upgrade engine (:mod:`kstream._upgrade`), which
  keeps the head size limit, writes the answers and hands over the bytes that follow the
  head; :mod:`kstream._ws.handshake` checks the request as wsproto did (plus the key's
  form, as gorilla does) and the 101, with wsproto's nonce and accept-token helpers;
* WebSocket frames: :class:`~kstream._ws.codec.ZeroCopyFrameCodec`, which has the interface
  of the seam :mod:`kstream._ws.frames` defines (wsproto's per-frame machinery costs 6-10 µs
  a frame and copies each payload several times). On the receive path this module takes
  the decoder's frame tuples directly (``receive_frames``: no item object per piece, payload
  borrowed from the bytes fed), so each payload byte is copied once, into the
  ``ChannelData`` that keeps it; on the send path a frame's parts are queued as they are and
  joined once by ``data_to_send()``;
* channel framing: :mod:`kstream._ws.framing`; incoming messages are assembled by
  :class:`~kstream._ws.messages.MessageAssembler` (all but the whole-message fast path).

Beside it: :mod:`kstream._ws.state` (the state table) and :mod:`kstream._ws.handshake`
(subprotocol negotiation and the checks of a 101); their names are re-exported here.

Upstream behaviour mirrored here is cited from protocol-notes §1: the Go server
(``apimachinery/pkg/util/httpstream/wsstream/conn.go`` over ``golang.org/x/net/websocket``)
and the Go client (``client-go/tools/remotecommand/websocket.go`` over gorilla/websocket).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Final

from .. import _http
from .._channels import (
    CLOSE,
    EXEC_CHANNELS,
    WEBSOCKET_PROTOCOLS,
    ChannelProtocol,
)
from .._errors import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from .._events import ChannelData, Event
from .._upgrade import ClientUpgrade
from .codec import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT
from .codec import ZeroCopyFrameCodec as FrameCodec
from .engine import DEFAULT_MAX_MESSAGE_SIZE, WebSocketEngine, immutable
from .engine import MAX_EARLY_DATA as MAX_EARLY_DATA
from .engine import MAX_OUTSTANDING_PINGS as MAX_OUTSTANDING_PINGS
from .engine import MAX_UNSENT_PONGS as MAX_UNSENT_PONGS
from .framing import (
    BASE64_CHANNEL_OFFSET,
    MAX_CHANNEL,
    check_channel,
    encode_close,
)
from .handshake import hello_channel, negotiate
from .messages import MESSAGE_TOO_BIG, MessageAssembler
from .state import TRANSITIONS, StateInput, WebSocketState

__all__ = [
    "DEFAULT_CLIENT_PROTOCOLS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "EXEC_CHANNEL_SET",
    "SERVER_PROTOCOLS",
    "TRANSITIONS",
    "StateInput",
    "WebSocketChannelConnection",
    "WebSocketState",
    "hello_channel",
    "negotiate",
]

Buffer = bytes | bytearray | memoryview

#: The channels of an exec/attach connection (stdin, stdout, stderr, error, resize): the
#: default channel set of :meth:`WebSocketChannelConnection.client` and ``server``.
EXEC_CHANNEL_SET: Final = frozenset(range(EXEC_CHANNELS))
#: What the client offers by default, in order of preference.
DEFAULT_CLIENT_PROTOCOLS: Final = ("v5.channel.k8s.io", "v4.channel.k8s.io")
#: What a server supports by default: every named channel subprotocol.
SERVER_PROTOCOLS: Final = tuple(name for name in WEBSOCKET_PROTOCOLS if name)

#: A message's one-byte channel prefix, by value (no bytes object built per message).
_CHANNEL_PREFIXES: Final = tuple(bytes((value,)) for value in range(256))


class WebSocketChannelConnection(WebSocketEngine):
    """A WebSocket channel connection (``*.channel.k8s.io``), client or server role.

    Build it with :meth:`client` or :meth:`server`.

    The connection knows channels, not what they mean: the set it accepts is a
    constructor argument (exec/attach: 0..4, :data:`EXEC_CHANNEL_SET`). Incoming messages
    become :class:`~kstream.ChannelData` events piece by piece, as the frames arrive (a
    large message is never buffered whole). What else arrives:

    * an empty message from the server (no payload after the channel byte: the exec
      server's hello) is ``ChannelData(data=b"")``; what it means is the session's
      business;
    * a message for a channel outside the set (or 255 outside v5) is dropped, as upstream
      does, and reported as :class:`~kstream.DroppedMessage` whose ``size`` is the
      message's length on the wire (channel prefix included);
    * the v5 CLOSE signal becomes :class:`~kstream.ChannelEnded` (server role); what a
      channel's end means (later data is dropped) is the session's business;
    * pings are answered at once (:class:`~kstream.PingReceived`), except after our own
      close frame, when nothing more may be sent and they are ignored.

    Attributes:
        role: ``"client"`` or ``"server"``.
        dropped_messages: how many incoming messages were dropped.
        max_message_size: largest incoming message accepted; larger ones close with 1009.
    """

    def __init__(self, *, client: bool, protocols: Sequence[str],
                 max_message_size: int, channels: Iterable[int] = EXEC_CHANNEL_SET) -> None:
        """Use :meth:`client` or :meth:`server` instead."""
        super().__init__(client=client, max_message_size=max_message_size)
        accepted = frozenset(channels)
        if not all(type(channel) is int and 0 <= channel < CLOSE for channel in accepted):
            raise LocalProtocolError(f"channels must be ints in 0..254, not {sorted(accepted)!r}")
        #: The channels whose messages are delivered; others are dropped.
        self.channels: Final = accepted
        self._negotiated: ChannelProtocol | None = None
        self.max_message_size: Final = max_message_size
        # Client: what we offered. Server: what we support.
        self._protocols: Final = tuple(protocols)
        self._closed_channels: set[int] = set()
        # Assembles incoming messages once OPEN.
        self._messages: MessageAssembler | None = None

    # ----------------------------------------------------------------------------------
    # Construction

    @classmethod
    def client(cls, *, host: str, target: str,
               protocols: Sequence[str] = DEFAULT_CLIENT_PROTOCOLS,
               headers: Sequence[tuple[str, str]] = (),
               max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
               channels: Iterable[int] = EXEC_CHANNEL_SET,
               ) -> WebSocketChannelConnection:
        """Start the client side: the GET upgrade request is queued in ``data_to_send()``.

        Args:
            host: the ``Host`` header value (``host[:port]``).
            target: the request target, path and query
                (``/api/v1/namespaces/default/pods/p/exec?command=ls&stdout=true``).
            protocols: the subprotocols to offer, best first, sent as one
                ``Sec-WebSocket-Protocol`` header joined with ``", "`` as gorilla does.
                Empty: no header (the server then speaks ``channel.k8s.io``).
            headers: more request headers, e.g. ``("Authorization", "Bearer ...")``.
            max_message_size: largest incoming message accepted.
            channels: the channels whose messages are delivered (others are dropped).

        Raises:
            LocalProtocolError: an unknown subprotocol, or a header h11 cannot send.
        """
        for name in protocols:
            if not name or name not in WEBSOCKET_PROTOCOLS:
                raise LocalProtocolError(f"not a WebSocket channel subprotocol: {name!r}")
        connection = cls(client=True, protocols=protocols, max_message_size=max_message_size,
                         channels=channels)
        connection._send_upgrade_request(host, target, protocols, headers)
        return connection

    @classmethod
    def server(cls, *, supported: Sequence[str] = SERVER_PROTOCOLS,
               max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
               channels: Iterable[int] = EXEC_CHANNEL_SET,
               ) -> WebSocketChannelConnection:
        """Start the server side: feed the request bytes, then :meth:`accept` or :meth:`reject`.

        Args:
            supported: the subprotocols :meth:`accept` may negotiate (``""``, "no header",
                is accepted when ``channel.k8s.io`` is supported).
            max_message_size: largest incoming message accepted.
            channels: the channels whose messages are delivered (others are dropped).

        Raises:
            LocalProtocolError: an unknown subprotocol.
        """
        for name in supported:
            if name not in WEBSOCKET_PROTOCOLS:
                raise LocalProtocolError(f"not a WebSocket channel subprotocol: {name!r}")
        return cls(client=False, protocols=supported, max_message_size=max_message_size,
                   channels=channels)

    def __repr__(self) -> str:
        name = None if self.protocol is None else self.protocol.name
        return f"<{type(self).__name__} {self.role} {self.state.name} protocol={name!r}>"

    @property
    def protocol(self) -> ChannelProtocol | None:
        """The negotiated subprotocol; ``None`` until the upgrade succeeded."""
        return self._negotiated

    @property
    def dropped_messages(self) -> int:
        """How many incoming messages were dropped."""
        return 0 if self._messages is None else self._messages.dropped_messages

    # ----------------------------------------------------------------------------------
    # Server role: answering the upgrade

    def accept(self, protocol: str | None = None, *, hello: int | None = None,
               headers: Sequence[tuple[str, str]] = ()) -> None:
        """Answer the upgrade request with ``101 Switching Protocols``.

        Args:
            protocol: the subprotocol to speak; ``None`` negotiates with :func:`negotiate`
                over the client's list and ``supported``. ``""`` means the client sent
                no ``Sec-WebSocket-Protocol`` header: the 101 then carries none either.
            hello: the channel of the one empty message to send right after the 101
                (pass :func:`hello_channel`); ``None`` sends none.
            headers: more response headers.

        Bytes the client sent after its request but before this answer (RFC 6455 §4.1
        forbids it; at most 64 KiB are kept) are parsed by the next ``receive_data``.

        Raises:
            LocalProtocolError: not a server awaiting its answer, no subprotocol in common
                (call :meth:`reject` then), or a protocol the client did not offer.
        """
        request = self._awaiting_answer("accept")
        name = self._choose_protocol(request.protocols, protocol)
        if hello is not None:
            check_channel(hello, base64_text=WEBSOCKET_PROTOCOLS[name].base64)
        self._switch(request, name, headers)
        if hello is not None:
            self._queue_message(hello, b"")

    def reject(self, status_code: int = 403, *, message: str = "", body: bytes | None = None,
               headers: Sequence[tuple[str, str]] = ()) -> None:
        """Answer the upgrade request with an HTTP error instead of a 101.

        Args:
            status_code: the HTTP status, 200 or more (x/net answers 403 when no
                subprotocol matches).
            message: with no ``body``, write an apiserver-style ``metav1.Status`` JSON body
                carrying this message; empty and no body: an empty body.
            body: the exact body to send.
            headers: more response headers.

        Raises:
            LocalProtocolError: not a server awaiting its answer, or h11 refuses the
                response (a status below 200, an invalid header).
        """
        self._awaiting_answer("reject")
        response_headers: list[tuple[str, str]] = []
        if body is None:
            body = b""
            if message:
                status_headers, body = _http.status_response(status_code, message)
                response_headers.extend(status_headers)
        response_headers.extend(headers)
        self._queue_rejection(status_code, response_headers, body)

    def _choose_protocol(self, offered: tuple[str, ...], protocol: str | None) -> str:
        if protocol is None:
            name = negotiate(offered, self._protocols)
            if name is None:
                raise LocalProtocolError(
                    f"no subprotocol in common: the client offered {list(offered)}, "
                    f"we support {list(self._protocols)}; reject() the upgrade")
            return name
        if protocol not in WEBSOCKET_PROTOCOLS:
            raise LocalProtocolError(f"not a WebSocket channel subprotocol: {protocol!r}")
        if protocol not in offered and (protocol or offered):
            raise LocalProtocolError(
                f"the client did not offer {protocol!r} (it offered {list(offered)})")
        return protocol

    # ----------------------------------------------------------------------------------
    # Both roles: sending

    def send_data(self, channel: int, data: Buffer) -> None:
        """Queue ``data`` on ``channel`` as one unfragmented message.

        A client never sends an empty message (client-go servers would ignore it, and
        an empty message kills a client-go client), so ``send_data(ch, b"")`` is a no-op
        for a client; a server may send the empty hello this way.

        Args:
            channel: ``0..254`` (``0..79`` on base64 subprotocols).
            data: the payload.

        Raises:
            LocalProtocolError: not OPEN, a bad channel, or a channel we closed.
        """
        if self._state is not WebSocketState.OPEN:
            self._require(StateInput.SEND, "send data")
        if channel in self._closed_channels:
            raise LocalProtocolError(f"channel {channel} was closed with close_channel()")
        if not data and self._client:
            check_channel(channel, base64_text=self._protocol.base64)
            return
        self._queue_message(channel, data)

    def close_channel(self, channel: int) -> None:
        """Queue the v5 CLOSE signal ``FF <channel>``: "no more data on this channel".

        The server then closes the process's stdin (``channel`` 0). Only
        ``v5.channel.k8s.io`` has this signal.

        Raises:
            LocalProtocolError: not OPEN, a subprotocol that cannot half-close, a bad
                channel, or a channel already closed.
        """
        self._require(StateInput.SEND, "close a channel")
        protocol = self._protocol
        if not protocol.supports_close:
            raise LocalProtocolError(
                f"subprotocol {protocol.name or '(none)'!r} cannot half-close stdin: only "
                "v5.channel.k8s.io has the CLOSE signal")
        message = encode_close(channel)
        if channel in self._closed_channels:
            raise LocalProtocolError(f"channel {channel} is already closed")
        self._closed_channels.add(channel)
        self._outgoing.append(self._frames.message(b"", message, text=False))

    def _queue_message(self, channel: int, data: Buffer) -> None:
        frames = self._frames
        if self._protocol.base64:
            check_channel(channel, base64_text=True)
            prefix = _CHANNEL_PREFIXES[BASE64_CHANNEL_OFFSET + channel]
            self._outgoing += frames.message_parts(prefix, base64.b64encode(data), text=True)
            return
        if type(channel) is not int or not 0 <= channel <= MAX_CHANNEL:
            check_channel(channel)  # raises
        if not self._client and not immutable(data):
            # Unmasked frames hand the payload itself to data_to_send(), which joins it
            # later: a buffer the caller may change meanwhile is copied now instead.
            data = bytes(data)
        # A client's frame parts are the header and the masked payload (masking is the
        # one copy); a server's, the header, the channel byte and the payload.
        self._outgoing += frames.message_parts(_CHANNEL_PREFIXES[channel], data, text=False)

    @property
    def _protocol(self) -> ChannelProtocol:
        assert self._negotiated is not None, "only called once OPEN"
        return self._negotiated

    # ----------------------------------------------------------------------------------
    # Both roles: the engine's hooks, frames and channel messages

    def _open(self, protocol: str) -> None:
        self._negotiated = WEBSOCKET_PROTOCOLS[protocol]
        self._codec = FrameCodec(client=self._client)
        self._messages = MessageAssembler(client=self._client, protocol=self._negotiated,
                                          channels=self.channels,
                                          max_message_size=self.max_message_size)

    def _rejection(self, upgrade: ClientUpgrade, detail: str = "") -> UpgradeRejectedError:
        # A non-101 answer: the first MAX_REJECTION_BODY bytes of its body are kept.
        if upgrade.overflowed and not detail:
            detail = f"body cut to its first {_http.MAX_REJECTION_BODY} bytes"
        return upgrade.rejection(detail)

    def _receive_frames(self, data: Buffer, events: list[Event]) -> None:
        if self._early_data:
            # Bytes the client sent before our 101 (server role): they come first.
            early, self._early_data = self._early_data, bytearray()
            self._receive_frames(early, events)
            if self.state not in (WebSocketState.OPEN, WebSocketState.CLOSING):
                return
        if not data:
            self._on_eof(events)
            return
        # Only OPEN and CLOSING get here, and receiving leaves both as they are
        # (TRANSITIONS): no state change to make.
        codec = self._frames
        # The whole-message fast path below: binary subprotocols, and a client refuses
        # text messages there (the general path raises).
        fast_opcodes = (() if self._protocol.base64
                        else (OP_BINARY,) if self._client else (OP_BINARY, OP_TEXT))
        accepted = self.channels
        messages = self._messages
        assert messages is not None
        # The decoder's tuples, payload borrowed from ``data``: each piece is copied at
        # most once, into the ChannelData that keeps it.
        for opcode, payload, _, message_finished in codec.receive_frames(data):
            if opcode in fast_opcodes and message_finished and payload and not messages.in_message:
                # A whole message in one piece (the common case), on a channel that takes
                # data: what the general path does for it, without its bookkeeping.
                if len(payload) > self.max_message_size:
                    raise RemoteProtocolError(f"message larger than {self.max_message_size} "
                                              "bytes", close_code=MESSAGE_TOO_BIG)
                channel = payload[0]
                if channel in accepted:
                    if len(payload) > 1:
                        events.append(ChannelData(channel=channel, data=bytes(payload[1:])))
                    elif self._client:
                        # An empty message (the exec server's hello), reported as such.
                        events.append(ChannelData(channel=channel, data=b""))
                    continue
            if opcode <= OP_BINARY:
                messages.on_message_piece(opcode == OP_TEXT, payload, message_finished,
                                          events)
            elif opcode == OP_PING:
                self._on_ping(payload, events)
            elif opcode == OP_CLOSE:
                code = codec.close_code
                assert code is not None
                self._on_peer_close(code, codec.close_reason, events)
            else:
                self._on_pong(payload, events)
