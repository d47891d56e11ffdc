"""A WebSocket of plain binary messages, no channel byte, both roles, sans-IO.

The port-forward tunnel (``_tunnel``) carries a SPDY byte stream in WebSocket binary
messages (client-go ``tools/portforward/tunneling_connection.go``, apiserver
``util/proxy/streamtunnel.go``): message boundaries mean nothing, a text message is an
error, close 1000 is the end of the stream. :class:`BinaryWebSocket` is that carrier; it
knows any subprotocol name and no channels.

It reuses the pieces of the channel connection (``connection.py``): the HTTP upgrade
engine (:mod:`kstream._upgrade`), the handshake checks (:mod:`kstream._ws.handshake`), the
zero-copy frame codec (:mod:`kstream._ws.codec`) and the state table
(:mod:`kstream._ws.state`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

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
    ServerUpgrade,
    complete_response,
    encode_headers,
)
from .codec import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ZeroCopyFrameCodec
from .frames import MAX_CLOSE_REASON_BYTES, check_close_code
from .handshake import check_request, check_switch, offered_protocols, switch_headers
from .state import TRANSITIONS, StateInput, WebSocketState

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "MAX_EARLY_DATA", "BinaryData", "BinaryWebSocket"]

Buffer = bytes | bytearray | memoryview

#: Largest incoming message, as the Go servers' default (32 MiB).
DEFAULT_MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024
#: Bytes a client may send after its request before the server answers.
MAX_EARLY_DATA: Final = 64 * 1024
#: Pings awaiting their pong, remembered.
MAX_OUTSTANDING_PINGS: Final = 1024
#: Pongs queued and not taken by data_to_send(); past it only the latest ping is answered.
MAX_UNSENT_PONGS: Final = 16

# One step of receive_data, run by _guarded.
_Step = Callable[[list[Event]], None]

_NORMAL_CLOSURE: Final = 1000
_UNSUPPORTED_DATA: Final = 1003
_ABNORMAL_CLOSURE: Final = 1006


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryData(Event):
    """Bytes of binary messages arrived (never empty).

    Message boundaries are not reported: the users of this connection read a byte stream.
    The pieces of consecutive messages decoded by one ``receive_data`` call come as one
    event.
    """

    data: bytes


class BinaryWebSocket:
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

    def __init__(self, *, client: bool, max_message_size: int) -> None:
        """Use :meth:`client` or :meth:`server`."""
        if type(max_message_size) is not int or max_message_size < 1:
            raise LocalProtocolError(
                f"max_message_size must be a positive int, not {max_message_size!r}")
        self._client = client
        self.role: Final = "client" if client else "server"
        self._max_message_size = max_message_size
        self._state = WebSocketState.CONNECTING
        self._outgoing: list[Buffer] = []
        self._codec: ZeroCopyFrameCodec | None = None
        self._error: RemoteProtocolError | None = None
        self._pings: deque[float] = deque()
        self._unsent_pongs = 0
        self._held_ping: bytes | None = None
        self._offered: tuple[str, ...] = ()
        self._nonce = b""
        self._client_upgrade: ClientUpgrade | None = None
        self._server_upgrade: ServerUpgrade | None = \
            None if client else ServerUpgrade(max_head_size=MAX_HEAD_SIZE)
        self._early_data = bytearray()
        self.protocol: str | None = None
        self.request: UpgradeRequested | None = None

    @classmethod
    def client(cls, *, host: str, target: str, protocols: Sequence[str],
               headers: Sequence[tuple[str, str]] = (),
               max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> BinaryWebSocket:
        """Queue the GET upgrade request offering ``protocols`` (gorilla's request).

        Raises:
            LocalProtocolError: a header or the target cannot be sent.
        """
        connection = cls(client=True, max_message_size=max_message_size)
        connection._offered = tuple(protocols)
        connection._nonce = generate_nonce()
        request_headers = [("Host", host), ("Upgrade", "websocket"),
                           ("Connection", "Upgrade"),
                           ("Sec-WebSocket-Key", connection._nonce.decode("ascii")),
                           ("Sec-WebSocket-Version", "13")]
        if protocols:
            request_headers.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
        request_headers += headers
        try:
            upgrade = ClientUpgrade(method=b"GET", target=target.encode("ascii"),
                                    headers=encode_headers(request_headers))
        except (LocalProtocolError, UnicodeEncodeError) as exc:
            raise LocalProtocolError(f"cannot send the upgrade request: {exc}") from None
        connection._client_upgrade = upgrade
        connection._outgoing.append(upgrade.data_to_send())
        return connection

    @classmethod
    def server(cls, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> BinaryWebSocket:
        """Wait for an upgrade request; answer with :meth:`accept` or :meth:`reject`."""
        return cls(client=False, max_message_size=max_message_size)

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> WebSocketState:
        """Where the connection is (:data:`~kstream._ws.state.TRANSITIONS`)."""
        return self._state

    @property
    def awaiting_pong_since(self) -> float | None:
        """The ``now`` of the oldest ping still waiting for its pong, or None."""
        return self._pings[0] if self._pings else None

    def _advance(self, what: StateInput) -> None:
        try:
            self._state = TRANSITIONS[self._state, what]
        except KeyError:
            raise LocalProtocolError(f"cannot {what.value} in state {self._state.name}") from None

    @property
    def _frames(self) -> ZeroCopyFrameCodec:
        assert self._codec is not None, "only once open"
        return self._codec

    @property
    def _engine(self) -> ServerUpgrade:
        assert self._server_upgrade is not None, "server role only"
        return self._server_upgrade

    # ------------------------------------------------------------------ server: answers

    def receive_request(self, upgrade: ServerUpgrade) -> list[Event]:
        """Server role: take over a request read by the upgrade engine.

        Returns:
            ``[UpgradeRequested]`` once the request is complete, else ``[]``.

        Raises:
            LocalProtocolError: not a fresh server.
            RemoteProtocolError: not a valid WebSocket upgrade (the answer is queued).
        """
        if self._client or self._state is not WebSocketState.CONNECTING \
                or self.request is not None:
            raise LocalProtocolError("only a fresh server can take over a parsed request")
        self._server_upgrade = upgrade
        events: list[Event] = []
        self._guarded(self._check_request, events)
        return events

    def accept(self, protocol: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Answer ``101`` naming ``protocol`` (``""``: no subprotocol header).

        Raises:
            LocalProtocolError: no request waits for an answer, or ``protocol`` was not
                offered.
        """
        request = self._awaiting_answer("accept")
        if protocol and protocol not in request.protocols:
            raise LocalProtocolError(f"the client did not offer {protocol!r}")
        key = next(value for name, value in request.headers if name == "sec-websocket-key")
        try:
            response = self._engine.switch(encode_headers([*switch_headers(key, protocol),
                                                           *headers]))
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot accept the upgrade: {exc}") from None
        self._advance(StateInput.ACCEPT)
        self._outgoing.append(response)
        self.protocol = protocol
        self._codec = ZeroCopyFrameCodec(client=False, max_message_size=self._max_message_size)

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
        try:
            self._outgoing.append(complete_response(
                self._engine, status_code, encode_headers(response_headers), body))
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot reject the upgrade: {exc}") from None
        self._advance(StateInput.REJECT)

    def receive_early_data(self) -> list[Event]:
        """Server role, right after :meth:`accept`: the events of bytes the client sent
        before the 101.

        Raises:
            RemoteProtocolError: as :meth:`receive_data`.
        """
        if not self._early_data or self._state is not WebSocketState.OPEN:
            return []
        early, self._early_data = bytes(self._early_data), bytearray()
        return self.receive_data(early)

    def _awaiting_answer(self, what: str) -> UpgradeRequested:
        if self._client or self._state is not WebSocketState.CONNECTING or self.request is None:
            raise LocalProtocolError(f"cannot {what}: no upgrade request waits for an answer "
                                     f"({self.role}, state {self._state.name})")
        return self.request

    # ------------------------------------------------------------------ sending

    def data_to_send(self) -> bytes:
        """Return and forget every byte queued for the peer (``b""`` if none)."""
        if self._unsent_pongs:
            self._unsent_pongs = 0
            if self._held_ping is not None and self._state is WebSocketState.OPEN:
                self._outgoing.append(self._frames.pong(self._held_ping))
            self._held_ping = None
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    def send(self, data: Buffer) -> None:
        """Queue ``data`` as one binary message (nothing for empty ``data``).

        Raises:
            LocalProtocolError: not open.
        """
        if self._state is not WebSocketState.OPEN:
            raise LocalProtocolError(f"cannot send in state {self._state.name}")
        if data:
            if not self._client and not (type(data) is bytes or (
                    type(data) is memoryview and type(data.obj) is bytes)):
                # Unmasked frames hand the payload itself to data_to_send(), which joins
                # it later: a buffer the caller may change meanwhile is copied now.
                data = bytes(data)
            self._outgoing += self._frames.message_parts(b"", data, text=False)

    def ping(self, now: float) -> None:
        """Queue a ping with an empty payload; :class:`~kstream.PongReceived` answers it.

        Raises:
            LocalProtocolError: not open, or too many pings await their pong.
        """
        if self._state is not WebSocketState.OPEN:
            raise LocalProtocolError(f"cannot ping in state {self._state.name}")
        if len(self._pings) >= MAX_OUTSTANDING_PINGS:
            raise LocalProtocolError(f"{MAX_OUTSTANDING_PINGS} pings already await a pong")
        self._pings.append(now)
        self._outgoing.append(self._frames.ping())

    def close(self, code: int = _NORMAL_CLOSURE, reason: str = "") -> None:
        """Queue a close frame (``TunnelingConnection.Close`` sends 1000); closing again,
        or a connection that is over, does nothing.

        Raises:
            LocalProtocolError: still CONNECTING, or an invalid code or reason.
        """
        check_close_code(code, reason)
        was_open = self._state is WebSocketState.OPEN
        self._advance(StateInput.CLOSE)
        if was_open:
            self._outgoing.append(self._frames.close(code, reason))

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes from the peer; ``b""`` means the byte stream ended.

        Raises:
            RemoteProtocolError: the peer broke the protocol; the answer (close frame or
                HTTP error) is queued and the connection is FAILED (it raises again).
        """
        if self._state is WebSocketState.FAILED:
            raise RemoteProtocolError(f"connection already failed: {self._error}")
        events: list[Event] = []
        if self._state is WebSocketState.CONNECTING:
            receive = self._receive_response if self._client else self._receive_request
            self._guarded(lambda out: receive(data, out), events)
        elif self._state in (WebSocketState.OPEN, WebSocketState.CLOSING):
            self._guarded(lambda out: self._receive_frames(data, out), events)
        else:
            self._advance(StateInput.EOF if not data else StateInput.RECEIVE)
        return events

    def _guarded(self, step: _Step, events: list[Event]) -> None:
        try:
            step(events)
        except RemoteProtocolError as exc:
            if self._state is WebSocketState.OPEN and exc.close_code is not None:
                reason = str(exc).encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")
                self._outgoing.append(self._frames.close(exc.close_code, reason))
            self._error = exc
            if self._state is not WebSocketState.FAILED:
                self._advance(StateInput.FAIL)
            raise

    def _receive_response(self, data: Buffer, events: list[Event]) -> None:
        upgrade = self._client_upgrade
        assert upgrade is not None
        if not data:
            if upgrade.response is not None:
                self._reject(upgrade.rejection(), events)  # its body ends with the stream
                return
            self._advance(StateInput.EOF)
            raise RemoteProtocolError("connection closed before the upgrade response")
        try:
            head = upgrade.receive_data(data)
        except HttpError as exc:
            if upgrade.response is None:
                raise RemoteProtocolError(f"invalid HTTP response to the upgrade: {exc}") \
                    from None
            self._reject(upgrade.rejection(f"invalid body: {exc}"), events)
            return
        if head is None:
            return
        if head.status_code != 101:
            self._reject(upgrade.rejection(), events)
            return
        problem, chosen = check_switch(head.headers, self._nonce, self._offered)
        if problem:
            self._reject(_http.upgrade_rejection(101, head.reason, head.headers, b"",
                                                 detail=problem), events)
            return
        self._advance(StateInput.ACCEPT)
        self.protocol = chosen
        self._codec = ZeroCopyFrameCodec(client=True, max_message_size=self._max_message_size)
        events.append(UpgradeAccepted(transport="websocket", protocol=chosen,
                                      headers=head.headers))
        trailing = upgrade.trailing_data
        if trailing:
            self._receive_frames(trailing, events)

    def _reject(self, error: UpgradeRejectedError, events: list[Event]) -> None:
        self._advance(StateInput.REJECT)
        events.append(UpgradeRejected(error=error))

    def _receive_request(self, data: Buffer, events: list[Event]) -> None:
        if not data:
            self._advance(StateInput.EOF)
            raise RemoteProtocolError("connection closed before the upgrade was answered")
        if self.request is not None:
            self._keep_early_data(data)
            return
        self._engine.receive_data(data)
        self._check_request(events)

    def _check_request(self, events: list[Event]) -> None:
        upgrade = self._engine
        head = upgrade.request
        if upgrade.error is not None:
            self._error_response(upgrade.error.status_hint, f"invalid HTTP request: "
                                                            f"{upgrade.error}")
            raise RemoteProtocolError(f"invalid HTTP request: {upgrade.error}")
        if head is None or not upgrade.complete:
            return
        if head.method != "GET":
            message = f"method {head.method} not allowed: use GET"
            self._error_response(405, message, [("Allow", "GET")])
            raise RemoteProtocolError(f"WebSocket upgrade with {message}")
        status, problem, extra = check_request(head.headers)
        if status:
            self._error_response(status, problem, extra)
            raise RemoteProtocolError(problem)
        try:
            path, query = _http.split_target(head.target)
        except RemoteProtocolError as exc:
            self._error_response(400, str(exc))
            raise
        self.request = UpgradeRequested(method="GET", target=head.target, path=path,
                                        query=query, headers=head.headers,
                                        protocols=offered_protocols(head.headers))
        self._keep_early_data(upgrade.trailing_data)
        events.append(self.request)

    def _keep_early_data(self, data: Buffer) -> None:
        if len(self._early_data) + len(data) > MAX_EARLY_DATA:
            raise RemoteProtocolError(
                f"more than {MAX_EARLY_DATA} bytes sent before the upgrade was answered")
        self._early_data += data

    def _error_response(self, status_code: int, message: str,
                        headers: Sequence[tuple[str, str]] = ()) -> None:
        status_headers, body = _http.status_response(status_code, message)
        self._outgoing.append(complete_response(
            self._engine, status_code, encode_headers([*status_headers, *headers]), body))

    def _receive_frames(self, data: Buffer, events: list[Event]) -> None:
        if not data:
            self._advance(StateInput.EOF)
            events.append(ConnectionClosed(code=_ABNORMAL_CLOSURE, reason="", clean=False))
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
                if self._state is WebSocketState.OPEN:
                    ping = bytes(payload)
                    if self._unsent_pongs < MAX_UNSENT_PONGS:
                        self._outgoing.append(codec.pong(ping))
                        self._unsent_pongs += 1
                    else:
                        self._held_ping = ping
                    events.append(PingReceived(payload=ping))
            elif opcode == OP_PONG:
                sent_at = self._pings.popleft() if self._pings else None
                events.append(PongReceived(payload=bytes(payload), sent_at=sent_at))
            else:
                assert opcode == OP_CLOSE and codec.close_code is not None
                if self._state is WebSocketState.OPEN:
                    self._outgoing.append(codec.close(codec.close_code))
                self._advance(StateInput.PEER_CLOSE)
                events.append(ConnectionClosed(code=codec.close_code,
                                               reason=codec.close_reason,
                                               clean=codec.close_code == _NORMAL_CLOSURE))
        _flush_run(run, events)


def _flush_run(run: list[Buffer], events: list[Event]) -> None:
    """Report the binary pieces gathered so far as one :class:`BinaryData`."""
    if run:
        events.append(BinaryData(data=bytes(run[0]) if len(run) == 1 else b"".join(run)))
        run.clear()

