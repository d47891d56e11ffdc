"""The WebSocket connection engine both connection kinds share, both roles, sans-IO.

Everything of an RFC 6455 connection but its messages: the HTTP/1.1 upgrade (the client's
request and the reading of its answer; the server's reading of the request, bytes sent
before its answer, the 101 or the HTTP error), the state table (:mod:`kstream._ws.state`),
pings and pongs, the close handshake and the failure path. What a data message means is
the subclass's part, as the message framing of h11 or wsproto varies over one connection
engine:

* :class:`~kstream._ws.connection.WebSocketChannelConnection`: channel-framed messages
  (``*.channel.k8s.io``);
* :class:`~kstream._ws.binary.BinaryWebSocket`: binary messages as they are (the
  port-forward tunnel's carrier).

A subclass implements :meth:`WebSocketEngine._open` (the codec and what it needs once the
upgrade succeeded) and :meth:`WebSocketEngine._receive_frames` (the frames of an open
connection, handing control frames to :meth:`~WebSocketEngine._on_ping`,
:meth:`~WebSocketEngine._on_pong` and :meth:`~WebSocketEngine._on_peer_close`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence
from typing import ClassVar, Final

from wsproto.utilities import generate_nonce

from .. import _http
from .._errors import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from .._events import (
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
from .codec import ZeroCopyFrameCodec
from .frames import MAX_CLOSE_REASON_BYTES, check_close_code
from .handshake import check_request, check_switch, offered_protocols, switch_headers
from .state import TRANSITIONS, StateInput, WebSocketState

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_EARLY_DATA",
    "MAX_OUTSTANDING_PINGS",
    "MAX_UNSENT_PONGS",
    "WebSocketEngine",
    "immutable",
]

Buffer = bytes | bytearray | memoryview

#: Largest incoming message (sum of its frames), as the Go server's
#: ``DefaultMaxPayloadBytes`` (golang/net ``websocket/websocket.go``).
DEFAULT_MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024
#: Largest number of bytes a client may send after its request before we answer it.
MAX_EARLY_DATA: Final = 64 * 1024
#: Pings that may await their pong at once.
MAX_OUTSTANDING_PINGS: Final = 1024
#: Pongs queued and not yet taken by ``data_to_send()``. A peer that pings and never
#: reads would otherwise grow the queue without bound (an adapter stops taking bytes
#: while its transport is full). Past this, only the most recent ping is answered, when
#: the queue is next taken, as RFC 6455 §5.5.3 allows.
MAX_UNSENT_PONGS: Final = 16

NORMAL_CLOSURE: Final = 1000
ABNORMAL_CLOSURE: Final = 1006


class WebSocketEngine(ABC):
    """The upgrade, state, ping/pong and close machinery of a WebSocket connection.

    Not used alone: a subclass adds the constructors, :meth:`accept` / ``reject`` and
    the message layer (see the module's docstring).

    Attributes:
        role: ``"client"`` or ``"server"``.
    """

    #: The text of the error when accept/reject finds no request waiting for an answer,
    #: formatted with ``what``, ``role`` and ``state``.
    _NOT_AWAITING: ClassVar[str] = (
        "cannot {what}: only a server that received an upgrade request and has not "
        "answered it can (this is a {role} in state {state})")
    #: Refuse a method other than GET as soon as the head is read (x/net/websocket), not
    #: once the request is complete and valid HTTP.
    _REFUSE_METHOD_EARLY: ClassVar[bool] = True

    def __init__(self, *, client: bool, max_message_size: int) -> None:
        if type(max_message_size) is not int or max_message_size < 1:
            raise LocalProtocolError(
                f"max_message_size must be a positive int, not {max_message_size!r}")
        self.role: Final = "client" if client else "server"
        self._client: Final = client
        self._max_message_size: Final = max_message_size
        self._state = WebSocketState.CONNECTING
        # What data_to_send() joins: whole frames, and the parts of data messages (the
        # caller's payload itself when it cannot change, so it is copied once, there).
        self._outgoing: list[Buffer] = []
        # Pongs in _outgoing, and the latest ping past MAX_UNSENT_PONGS (unanswered yet).
        self._unsent_pongs = 0
        self._held_ping: bytes | None = None
        self._codec: ZeroCopyFrameCodec | None = None
        self._error: RemoteProtocolError | None = None
        self._pings: deque[float] = deque()
        # Client role: what we offered, the upgrade's nonce and request (set by
        # _send_upgrade_request()).
        self._offered: tuple[str, ...] = ()
        self._nonce = b""
        self._client_upgrade: ClientUpgrade | None = None
        # Server role: the upgrade engine that reads the request (a client has none), the
        # request once parsed, and bytes that followed the request.
        self._server_upgrade: ServerUpgrade | None = \
            None if client else ServerUpgrade(max_head_size=MAX_HEAD_SIZE)
        self._request: UpgradeRequested | None = None
        self._early_data = bytearray()

    # ----------------------------------------------------------------------------------
    # What a subclass provides

    @abstractmethod
    def _open(self, protocol: str) -> None:
        """The upgrade succeeded with ``protocol`` (state OPEN): set up the codec."""

    @abstractmethod
    def _receive_frames(self, data: Buffer, events: list[Event]) -> None:
        """Feed bytes of an OPEN or CLOSING connection (``b""``: the stream ended)."""

    # ----------------------------------------------------------------------------------
    # State

    @property
    def state(self) -> WebSocketState:
        """Where the connection is (see :data:`~kstream._ws.state.TRANSITIONS`)."""
        return self._state

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping still waiting for its pong, or ``None``."""
        return self._pings[0] if self._pings else None

    def _advance(self, what: StateInput) -> WebSocketState:
        try:
            self._state = TRANSITIONS[self._state, what]
        except KeyError:
            raise LocalProtocolError(
                f"cannot {what.value} in state {self._state.name}") from None
        return self._state

    def _require(self, what: StateInput, verb: str) -> None:
        if (self._state, what) not in TRANSITIONS:
            raise LocalProtocolError(f"cannot {verb} in state {self._state.name}")

    @property
    def _engine(self) -> ServerUpgrade:
        assert self._server_upgrade is not None, "server role only"
        return self._server_upgrade

    @property
    def _frames(self) -> ZeroCopyFrameCodec:
        assert self._codec is not None, "only called once OPEN"
        return self._codec

    # ----------------------------------------------------------------------------------
    # Server role: answering the upgrade

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
        if self._client or self._state is not WebSocketState.CONNECTING \
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

    def receive_early_data(self) -> list[Event]:
        """Server role, right after ``accept()``: the events of bytes the client sent
        before the 101 (``[]`` if none), without waiting for the next ``receive_data``.

        Raises:
            RemoteProtocolError: as :meth:`receive_data`.
        """
        if not self._early_data or self._state is not WebSocketState.OPEN:
            return []
        early, self._early_data = bytes(self._early_data), bytearray()
        return self.receive_data(early)

    def _awaiting_answer(self, what: str) -> UpgradeRequested:
        if self._client or self._state is not WebSocketState.CONNECTING \
                or self._request is None:
            raise LocalProtocolError(self._NOT_AWAITING.format(
                what=what, role=self.role, state=self._state.name))
        return self._request

    def _switch(self, request: UpgradeRequested, protocol: str,
                headers: Sequence[tuple[str, str]]) -> None:
        # accept()'s common part: the 101 naming ``protocol`` ("": no header), then OPEN.
        key = next(value for field, value in request.headers if field == "sec-websocket-key")
        try:
            response = self._engine.switch(encode_headers([*switch_headers(key, protocol),
                                                           *headers]))
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot accept the upgrade: {exc}") from None
        self._advance(StateInput.ACCEPT)
        self._outgoing.append(response)
        self._open(protocol)

    def _queue_rejection(self, status_code: int, headers: Sequence[tuple[str, str]],
                         body: bytes) -> None:
        # reject()'s common part: the HTTP error answer, then REJECTED.
        try:
            self._outgoing.append(complete_response(
                self._engine, status_code, encode_headers(headers), body))
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot reject the upgrade: {exc}") from None
        self._advance(StateInput.REJECT)

    # ----------------------------------------------------------------------------------
    # Both roles: sending

    def data_to_send(self) -> bytes:
        """Return and forget every byte queued for the peer so far (``b""`` if none)."""
        outgoing = self._outgoing
        if self._unsent_pongs:
            self._unsent_pongs = 0
            codec = self._codec
            if self._held_ping is not None and codec is not None \
                    and self._state is WebSocketState.OPEN:
                outgoing.append(codec.pong(self._held_ping))
            self._held_ping = None
        if not outgoing:
            return b""
        first = outgoing[0]
        data = first if len(outgoing) == 1 and type(first) is bytes else b"".join(outgoing)
        outgoing.clear()
        return data

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

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Queue a close frame, then wait for the peer's (state CLOSING).

        A server ends an exec with ``close(1000)`` after the exit status: kubectl treats
        any other code as a read error; client-go's tunnel (``TunnelingConnection.Close``)
        sends 1000 too. Closing a connection already closing, closed, rejected or failed
        does nothing.

        Args:
            code: the close code.
            reason: the reason text, at most 123 bytes of UTF-8.

        Raises:
            LocalProtocolError: still CONNECTING, or a code/reason that cannot be sent.
        """
        check_close_code(code, reason)
        was_open = self._state is WebSocketState.OPEN
        self._advance(StateInput.CLOSE)
        if was_open:
            self._outgoing.append(self._frames.close(code, reason))

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
        if self._state is WebSocketState.FAILED:
            assert self._error is not None
            raise RemoteProtocolError(f"connection already failed: {self._error}")
        events: list[Event] = []
        try:
            if self._state is WebSocketState.CONNECTING:
                if self._client:
                    self._receive_response(data, events)
                else:
                    self._receive_request(data, events)
            elif self._state in (WebSocketState.OPEN, WebSocketState.CLOSING):
                self._receive_frames(data, events)
            else:
                self._advance(StateInput.EOF if not data else StateInput.RECEIVE)
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise
        return events

    def _fail(self, exc: RemoteProtocolError) -> None:
        if (self._state is WebSocketState.OPEN and exc.close_code is not None
                and self._codec is not None):
            reason = str(exc).encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")
            self._outgoing.append(self._codec.close(exc.close_code, reason))
        self._error = exc
        if self._state is not WebSocketState.FAILED:  # EOF while CONNECTING got there first
            self._advance(StateInput.FAIL)

    def _on_ping(self, payload: Buffer, events: list[Event]) -> None:
        # After our close frame we send nothing more (RFC 6455 §5.5.1).
        if self._state is WebSocketState.OPEN:
            ping = bytes(payload)
            if self._unsent_pongs < MAX_UNSENT_PONGS:
                self._outgoing.append(self._frames.pong(ping))
                self._unsent_pongs += 1
            else:
                self._held_ping = ping  # answered when the queue is next taken
            events.append(PingReceived(payload=ping))

    def _on_pong(self, payload: Buffer, events: list[Event]) -> None:
        sent_at = self._pings.popleft() if self._pings else None
        events.append(PongReceived(payload=bytes(payload), sent_at=sent_at))

    def _on_peer_close(self, code: int, reason: str, events: list[Event]) -> None:
        if self._state is WebSocketState.OPEN:
            # Echo the code, as gorilla's default close handler and x/net do.
            self._outgoing.append(self._frames.close(code))
        self._advance(StateInput.PEER_CLOSE)
        events.append(ConnectionClosed(code=code, reason=reason,
                                       clean=code == NORMAL_CLOSURE))

    def _on_eof(self, events: list[Event]) -> None:
        self._advance(StateInput.EOF)
        events.append(ConnectionClosed(code=ABNORMAL_CLOSURE, reason="", clean=False))

    # ----------------------------------------------------------------------------------
    # Client role: the upgrade request and its answer

    def _send_upgrade_request(self, host: str, target: str, protocols: Sequence[str],
                              headers: Sequence[tuple[str, str]]) -> None:
        # The same request gorilla/websocket writes (client.go), wsproto's key and all.
        self._offered = tuple(protocols)
        self._nonce = generate_nonce()
        request_headers: list[tuple[str, str]] = [
            ("Host", host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self._nonce.decode("ascii")),
            ("Sec-WebSocket-Version", "13"),
        ]
        if protocols:
            request_headers.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
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

    def _rejection(self, upgrade: ClientUpgrade, detail: str = "") -> UpgradeRejectedError:
        """The error a non-101 answer becomes (a subclass may add to ``detail``)."""
        return upgrade.rejection(detail)

    def _reject_upgrade(self, error: UpgradeRejectedError, events: list[Event]) -> None:
        self._advance(StateInput.REJECT)
        events.append(UpgradeRejected(error=error))

    def _on_switching_protocols(self, response: ResponseHead, trailing: bytes,
                                events: list[Event]) -> None:
        headers = response.headers
        problem, name = check_switch(headers, self._nonce, self._offered)
        if problem:
            # client-go turns any bad handshake into an UpgradeFailureError
            # (transport/websocket/roundtripper.go), so a caller may fall back to SPDY.
            error = _http.upgrade_rejection(101, response.reason, headers, b"",
                                            detail=problem)
            self._reject_upgrade(error, events)
            return
        self._advance(StateInput.ACCEPT)
        self._open(name)
        events.append(UpgradeAccepted(transport="websocket", protocol=name, headers=headers))
        if trailing:
            self._receive_frames(trailing, events)

    # ----------------------------------------------------------------------------------
    # Server role: the upgrade request

    def _receive_request(self, data: Buffer, events: list[Event]) -> None:
        if not data:
            self._advance(StateInput.EOF)
            raise RemoteProtocolError("connection closed before the upgrade was answered")
        if self._request is not None:
            # RFC 6455 §4.1: the client must wait for our answer. Keep a little; it is
            # parsed after accept().
            self._keep_early_data(data)
            return
        self._engine.receive_data(data)
        self._check_request(events)

    def _check_request(self, events: list[Event]) -> None:
        upgrade = self._engine
        head = upgrade.request
        if head is not None and head.method != "GET" and (
                self._REFUSE_METHOD_EARLY or (upgrade.error is None and upgrade.complete)):
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


def immutable(data: Buffer) -> bool:
    """Whether nothing the caller holds can change ``data`` (bytes, or a view of bytes).

    Unmasked frames hand the payload itself to ``data_to_send()``, which joins it later:
    a server copies a buffer that is not immutable when it queues it.
    """
    return type(data) is bytes or (type(data) is memoryview and type(data.obj) is bytes)
