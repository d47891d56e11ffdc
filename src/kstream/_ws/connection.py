"""The WebSocket channel connection (channel.k8s.io family), both roles, sans-IO.

One object per TCP connection, in the shape every kstream connection has
(``docs/architecture.md``): feed it bytes with :meth:`~WebSocketChannelConnection.receive_data`
and get :mod:`kstream events <kstream._events>` back; send with the ``send_data`` /
``close_channel`` / ``ping`` / ``close`` methods and drain ``data_to_send()``.

Layers underneath:

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
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

from wsproto.utilities import generate_nonce

from .. import _http
from .._channels import (
    CLOSE,
    EXEC_CHANNELS,
    WEBSOCKET_PROTOCOLS,
    ChannelProtocol,
)
from .._errors import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from .._events import (
    ChannelData,
    ConnectionClosed,
    Event,
    PingReceived,
    PongReceived,
    UpgradeAccepted,
    UpgradeRejected,
    UpgradeRequested,
)
from .._upgrade import (
    MAX_HEAD_SIZE,
    ClientUpgrade,
    HttpError,
    RequestHead,
    ResponseHead,
    ServerUpgrade,
    complete_response,
    encode_headers,
)
from .codec import OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT
from .codec import ZeroCopyFrameCodec as FrameCodec
from .frames import MAX_CLOSE_REASON_BYTES, check_close_code
from .framing import (
    BASE64_CHANNEL_OFFSET,
    MAX_CHANNEL,
    check_channel,
    encode_close,
)
from .handshake import (
    check_request,
    check_switch,
    hello_channel,
    negotiate,
    offered_protocols,
    switch_headers,
)
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

#: Largest incoming message (sum of its frames), as the Go server's
#: ``DefaultMaxPayloadBytes`` (golang/net ``websocket/websocket.go``).
DEFAULT_MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024
#: The channels of an exec/attach connection (stdin, stdout, stderr, error, resize): the
#: default channel set of :meth:`WebSocketChannelConnection.client` and ``server``.
EXEC_CHANNEL_SET: Final = frozenset(range(EXEC_CHANNELS))
#: Largest number of bytes a client may send after its request before we answer it.
MAX_EARLY_DATA: Final = 64 * 1024
#: Pings that may await their pong at once.
MAX_OUTSTANDING_PINGS: Final = 1024
#: Pongs queued and not yet taken by ``data_to_send()``. A peer that pings and never
#: reads would otherwise grow the queue without bound (an adapter stops taking bytes
#: while its transport is full). Past this, only the most recent ping is answered, when
#: the queue is next taken, as RFC 6455 §5.5.3 allows.
MAX_UNSENT_PONGS: Final = 16
#: What the client offers by default, in order of preference.
DEFAULT_CLIENT_PROTOCOLS: Final = ("v5.channel.k8s.io", "v4.channel.k8s.io")
#: What a server supports by default: every named channel subprotocol.
SERVER_PROTOCOLS: Final = tuple(name for name in WEBSOCKET_PROTOCOLS if name)

#: A message's one-byte channel prefix, by value (no bytes object built per message).
_CHANNEL_PREFIXES: Final = tuple(bytes((value,)) for value in range(256))

_NORMAL_CLOSURE: Final = 1000
_ABNORMAL_CLOSURE: Final = 1006


class WebSocketChannelConnection:
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
        if type(max_message_size) is not int or max_message_size < 1:
            raise LocalProtocolError(
                f"max_message_size must be a positive int, not {max_message_size!r}")
        accepted = frozenset(channels)
        if not all(type(channel) is int and 0 <= channel < CLOSE for channel in accepted):
            raise LocalProtocolError(f"channels must be ints in 0..254, not {sorted(accepted)!r}")
        #: The channels whose messages are delivered; others are dropped.
        self.channels: Final = accepted
        self.role: Final = "client" if client else "server"
        self._negotiated: ChannelProtocol | None = None
        self._state = WebSocketState.CONNECTING
        self.max_message_size: Final = max_message_size
        self._client: Final = client
        # Client: what we offered. Server: what we support.
        self._protocols: Final = tuple(protocols)
        # What data_to_send() joins: whole frames, and the parts of data messages (the
        # caller's payload itself when it cannot change, so it is copied once, there).
        self._outgoing: list[Buffer] = []
        # Pongs in _outgoing, and the latest ping past MAX_UNSENT_PONGS (unanswered yet).
        self._unsent_pongs = 0
        self._held_ping: bytes | None = None
        self._codec: FrameCodec | None = None
        self._error: RemoteProtocolError | None = None
        self._pings: deque[float] = deque()
        self._closed_channels: set[int] = set()
        # Client role: the upgrade's nonce and request (set by client()).
        self._nonce = b""
        self._client_upgrade: ClientUpgrade | None = None
        # Server role: the upgrade engine that reads the request (a client has none), the
        # request once parsed, and bytes that followed the request.
        self._server_upgrade: ServerUpgrade | None = \
            None if client else ServerUpgrade(max_head_size=MAX_HEAD_SIZE)
        self._request: UpgradeRequested | None = None
        self._early_data = bytearray()
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
        connection._send_upgrade_request(host, target, headers)
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
    def state(self) -> WebSocketState:
        """Where the connection is (see :data:`TRANSITIONS`)."""
        return self._state

    @property
    def protocol(self) -> ChannelProtocol | None:
        """The negotiated subprotocol; ``None`` until the upgrade succeeded."""
        return self._negotiated

    @property
    def dropped_messages(self) -> int:
        """How many incoming messages were dropped."""
        return 0 if self._messages is None else self._messages.dropped_messages

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping still waiting for its pong, or ``None``."""
        return self._pings[0] if self._pings else None

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
        key = next(value for field, value in request.headers if field == "sec-websocket-key")
        try:
            response = self._engine.switch(encode_headers([*switch_headers(key, name),
                                                           *headers]))
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot accept the upgrade: {exc}") from None
        self._advance(StateInput.ACCEPT)
        self._outgoing.append(response)
        self._negotiated = WEBSOCKET_PROTOCOLS[name]
        self._codec = FrameCodec(client=False)
        self._messages = self._message_assembler()
        if hello is not None:
            self._queue_message(hello, b"")

    def receive_early_data(self) -> list[Event]:
        """Server role, right after :meth:`accept`: the events of bytes the client sent
        before the 101 (``[]`` if none), without waiting for the next ``receive_data``.

        Raises:
            RemoteProtocolError: as :meth:`receive_data`.
        """
        if not self._early_data or self.state is not WebSocketState.OPEN:
            return []
        early, self._early_data = bytes(self._early_data), bytearray()
        return self.receive_data(early)

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
        encoded = encode_headers(response_headers)
        try:
            self._outgoing.append(
                complete_response(self._engine, status_code, encoded, body))
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot reject the upgrade: {exc}") from None
        self._advance(StateInput.REJECT)

    def _awaiting_answer(self, what: str) -> UpgradeRequested:
        if self._client or self.state is not WebSocketState.CONNECTING or self._request is None:
            raise LocalProtocolError(
                f"cannot {what}: only a server that received an upgrade request and has not "
                f"answered it can (this is a {self.role} in state {self.state.name})")
        return self._request

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

    def data_to_send(self) -> bytes:
        """Return and forget every byte queued for the peer so far (``b""`` if none)."""
        outgoing = self._outgoing
        if self._unsent_pongs:
            self._unsent_pongs = 0
            codec = self._codec
            if self._held_ping is not None and codec is not None \
                    and self.state is WebSocketState.OPEN:
                outgoing.append(codec.pong(self._held_ping))
            self._held_ping = None
        if not outgoing:
            return b""
        first = outgoing[0]
        data = first if len(outgoing) == 1 and type(first) is bytes else b"".join(outgoing)
        outgoing.clear()
        return data

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

    def ping(self, now: float) -> None:
        """Queue a ping with an empty payload, as client-go sends every 5 s.

        Args:
            now: the current time (any monotonic clock); ``PongReceived.sent_at`` returns
                it when the pong arrives, and :attr:`awaiting_pong_since` shows it until.

        Raises:
            LocalProtocolError: not OPEN, or too many pings await their pong.
        """
        self._require(StateInput.SEND, "ping")
        if len(self._pings) >= MAX_OUTSTANDING_PINGS:
            raise LocalProtocolError(f"{MAX_OUTSTANDING_PINGS} pings already await a pong")
        self._pings.append(now)
        self._outgoing.append(self._frames.ping())

    def close(self, code: int = _NORMAL_CLOSURE, reason: str = "") -> None:
        """Queue a close frame, then wait for the peer's (state CLOSING).

        A server ends an exec with ``close(1000)`` after the exit status: kubectl treats
        any other code as a read error. Closing a connection already closing, closed,
        rejected or failed does nothing.

        Args:
            code: the close code.
            reason: the reason text, at most 123 bytes of UTF-8.

        Raises:
            LocalProtocolError: still CONNECTING, or a code/reason that cannot be sent.
        """
        check_close_code(code, reason)
        was_open = self.state is WebSocketState.OPEN
        self._advance(StateInput.CLOSE)
        if was_open:
            self._outgoing.append(self._frames.close(code, reason))

    def _queue_message(self, channel: int, data: Buffer) -> None:
        frames = self._frames
        if self._protocol.base64:
            check_channel(channel, base64_text=True)
            prefix = _CHANNEL_PREFIXES[BASE64_CHANNEL_OFFSET + channel]
            self._outgoing += frames.message_parts(prefix, base64.b64encode(data), text=True)
            return
        if type(channel) is not int or not 0 <= channel <= MAX_CHANNEL:
            check_channel(channel)  # raises
        if not self._client and not _immutable(data):
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

    @property
    def _engine(self) -> ServerUpgrade:
        assert self._server_upgrade is not None, "server role only"
        return self._server_upgrade

    @property
    def _frames(self) -> FrameCodec:
        assert self._codec is not None, "only called once OPEN"
        return self._codec

    def _message_assembler(self) -> MessageAssembler:
        return MessageAssembler(client=self._client, protocol=self._protocol,
                                channels=self.channels, max_message_size=self.max_message_size)

    # ----------------------------------------------------------------------------------
    # Both roles: receiving

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the peer; ``b""`` (empty) means the byte stream ended.

        Returns:
            The events these bytes complete, in order.

        Raises:
            RemoteProtocolError: the peer broke the protocol. What to answer (a close
                frame with ``close_code``, or an HTTP error response) is already queued
                in ``data_to_send()``; the connection is FAILED and raises again if fed.
        """
        if self.state is WebSocketState.FAILED:
            assert self._error is not None
            raise RemoteProtocolError(f"connection already failed: {self._error}")
        events: list[Event] = []
        try:
            if self.state is WebSocketState.CONNECTING:
                if self._client:
                    self._receive_response(data, events)
                else:
                    self._receive_request(data, events)
            elif self.state in (WebSocketState.OPEN, WebSocketState.CLOSING):
                self._receive_frames(data, events)
            else:
                self._advance(StateInput.EOF if not data else StateInput.RECEIVE)
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise
        return events

    def _fail(self, exc: RemoteProtocolError) -> None:
        if (self.state is WebSocketState.OPEN and exc.close_code is not None
                and self._codec is not None):
            reason = str(exc).encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")
            self._outgoing.append(self._codec.close(exc.close_code, reason))
        self._error = exc
        if self.state is not WebSocketState.FAILED:  # EOF while CONNECTING got there first
            self._advance(StateInput.FAIL)

    def _advance(self, what: StateInput) -> WebSocketState:
        try:
            self._state = TRANSITIONS[self._state, what]
        except KeyError:
            raise LocalProtocolError(
                f"cannot {what.value} in state {self.state.name}") from None
        return self.state

    def _require(self, what: StateInput, verb: str) -> None:
        if (self.state, what) not in TRANSITIONS:
            raise LocalProtocolError(f"cannot {verb} in state {self.state.name}")

    # ----------------------------------------------------------------------------------
    # Client role: the upgrade request and its answer

    def _send_upgrade_request(self, host: str, target: str,
                              headers: Sequence[tuple[str, str]]) -> None:
        # The same request gorilla/websocket writes (client.go), wsproto's key and all.
        self._nonce = generate_nonce()
        request_headers: list[tuple[str, str]] = [
            ("Host", host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self._nonce.decode("ascii")),
            ("Sec-WebSocket-Version", "13"),
        ]
        if self._protocols:
            request_headers.append(("Sec-WebSocket-Protocol", ", ".join(self._protocols)))
        request_headers.extend(headers)
        encoded = encode_headers(request_headers)
        try:
            upgrade = ClientUpgrade(method=b"GET", target=target.encode("ascii"),
                                    headers=encoded)
        except (LocalProtocolError, UnicodeEncodeError) as exc:
            raise LocalProtocolError(f"cannot send the upgrade request: {exc}") from None
        self._client_upgrade = upgrade
        self._outgoing.append(upgrade.data_to_send())

    def _receive_response(self, data: Buffer, events: list[Event]) -> None:
        upgrade = self._client_upgrade
        assert upgrade is not None
        if not data:
            if upgrade.response is not None:
                # A rejection whose body ends with the connection.
                self._reject_upgrade(self._rejection(upgrade), events)
                return
            self._advance(StateInput.EOF)
            raise RemoteProtocolError("connection closed before the upgrade response")
        try:
            head = upgrade.receive_data(data)
        except HttpError as exc:
            if upgrade.response is not None:
                # The status line and headers made it; report them with what we have.
                self._reject_upgrade(self._rejection(upgrade, f"invalid body: {exc}"), events)
                return
            raise RemoteProtocolError(f"invalid HTTP response to the upgrade: {exc}") from None
        if head is None:
            return
        if head.status_code == 101:
            self._on_switching_protocols(head, upgrade.trailing_data, events)
        else:
            self._reject_upgrade(self._rejection(upgrade), events)

    @staticmethod
    def _rejection(upgrade: ClientUpgrade, detail: str = "") -> UpgradeRejectedError:
        # A non-101 answer: the first MAX_REJECTION_BODY bytes of its body are kept.
        if upgrade.overflowed and not detail:
            detail = f"body cut to its first {_http.MAX_REJECTION_BODY} bytes"
        return upgrade.rejection(detail)

    def _reject_upgrade(self, error: UpgradeRejectedError, events: list[Event]) -> None:
        self._advance(StateInput.REJECT)
        events.append(UpgradeRejected(error=error))

    def _on_switching_protocols(self, response: ResponseHead, trailing: bytes,
                                events: list[Event]) -> None:
        headers = response.headers
        problem, name = check_switch(headers, self._nonce, self._protocols)
        reason = response.reason
        if problem:
            # client-go turns any bad handshake into an UpgradeFailureError
            # (transport/websocket/roundtripper.go), so a caller may fall back to SPDY.
            error = _http.upgrade_rejection(101, reason, headers, b"", detail=problem)
            self._reject_upgrade(error, events)
            return
        self._advance(StateInput.ACCEPT)
        self._negotiated = WEBSOCKET_PROTOCOLS[name]
        self._codec = FrameCodec(client=True)
        self._messages = self._message_assembler()
        events.append(UpgradeAccepted(transport="websocket", protocol=name, headers=headers))
        if trailing:
            self._receive_frames(trailing, events)

    # ----------------------------------------------------------------------------------
    # Server role: the upgrade request

    def receive_request(self, upgrade: ServerUpgrade) -> list[Event]:
        """Server role: take over a request read by the upgrade engine (:mod:`kstream._upgrade`).

        For a caller that parsed the request head itself (``ServerExecSession``): the
        request is checked and reported as if its bytes, and those the engine holds after
        it, had been fed to :meth:`receive_data`; the engine writes the answer. Nothing is
        parsed twice.

        Returns:
            ``[UpgradeRequested]`` once the request is complete, else ``[]``.

        Raises:
            LocalProtocolError: not a fresh server.
            RemoteProtocolError: as :meth:`receive_data`.
        """
        if self._client or self.state is not WebSocketState.CONNECTING \
                or self._request is not None:
            raise LocalProtocolError("only a fresh server can take over a parsed request")
        self._server_upgrade = upgrade
        events: list[Event] = []
        try:
            self._check_request(events)
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise
        return events

    def _receive_request(self, data: Buffer, events: list[Event]) -> None:
        if not data:
            self._advance(StateInput.EOF)
            raise RemoteProtocolError("connection closed before the upgrade was answered")
        if self._request is not None:
            # RFC 6455 §4.1: the client must wait for our answer. Keep a little; it is
            # parsed by the next receive_data after accept().
            self._keep_early_data(data)
            return
        self._engine.receive_data(data)
        self._check_request(events)

    def _check_request(self, events: list[Event]) -> None:
        upgrade = self._engine
        head = upgrade.request
        if head is not None and head.method != "GET":
            # x/net/websocket answers any other method with 405 (server.go).
            message = f"method {head.method} not allowed: use GET"
            self._queue_error_response(405, message, [("Allow", "GET")])
            raise RemoteProtocolError(f"WebSocket upgrade with {message}")
        if upgrade.error is not None:
            error = upgrade.error
            self._queue_error_response(error.status_hint, f"invalid HTTP request: {error}")
            raise RemoteProtocolError(f"invalid HTTP request: {error}")
        if upgrade.complete:
            # The request is complete (a body on a GET upgrade means nothing); what
            # the engine holds beyond it is trailing data.
            assert head is not None
            self._on_request(head, upgrade.trailing_data, events)

    def _on_request(self, head: RequestHead, trailing: bytes, events: list[Event]) -> None:
        status, problem, extra = check_request(head.headers)
        if status:
            self._queue_error_response(status, problem, extra)
            raise RemoteProtocolError(problem)
        headers = head.headers
        target = head.target
        try:
            path, query = _http.split_target(target)
        except RemoteProtocolError as exc:
            self._queue_error_response(400, str(exc))
            raise
        self._request = UpgradeRequested(
            method="GET", target=target, path=path, query=tuple(query), headers=headers,
            protocols=offered_protocols(headers))
        self._keep_early_data(trailing)
        events.append(self._request)

    def _keep_early_data(self, data: Buffer) -> None:
        if len(self._early_data) + len(data) > MAX_EARLY_DATA:
            raise RemoteProtocolError(
                f"more than {MAX_EARLY_DATA} bytes sent before the upgrade was answered")
        self._early_data += data

    def _queue_error_response(self, status_code: int, message: str,
                              headers: Sequence[tuple[str, str]] = ()) -> None:
        # An apiserver-style Status body, so a kubectl user sees why.
        status_headers, body = _http.status_response(status_code, message)
        self._outgoing.append(complete_response(
            self._engine, status_code, encode_headers([*status_headers, *headers]),
            body))

    # ----------------------------------------------------------------------------------
    # Both roles: frames and channel messages

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
                # After our close frame we send nothing more (RFC 6455 §5.5.1).
                if self.state is WebSocketState.OPEN:
                    ping = bytes(payload)
                    if self._unsent_pongs < MAX_UNSENT_PONGS:
                        self._outgoing.append(codec.pong(ping))
                        self._unsent_pongs += 1
                    else:
                        self._held_ping = ping  # answered when the queue is next taken
                    events.append(PingReceived(payload=ping))
            elif opcode == OP_CLOSE:
                code = codec.close_code
                assert code is not None
                self._on_peer_close(code, codec.close_reason, events)
            else:
                sent_at = self._pings.popleft() if self._pings else None
                events.append(PongReceived(payload=bytes(payload), sent_at=sent_at))

    def _on_peer_close(self, code: int, reason: str, events: list[Event]) -> None:
        was_open = self.state is WebSocketState.OPEN
        if was_open:
            # Echo the code, as gorilla's default close handler and x/net do.
            self._outgoing.append(self._frames.close(code))
        self._advance(StateInput.PEER_CLOSE)
        events.append(ConnectionClosed(code=code, reason=reason,
                                       clean=code == _NORMAL_CLOSURE))

    def _on_eof(self, events: list[Event]) -> None:
        self._advance(StateInput.EOF)
        events.append(ConnectionClosed(code=_ABNORMAL_CLOSURE, reason="", clean=False))


def _immutable(data: Buffer) -> bool:
    # bytes, or a view of bytes: nothing the caller holds can change it.
    return type(data) is bytes or (type(data) is memoryview and type(data.obj) is bytes)
