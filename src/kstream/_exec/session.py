"""The transport-neutral exec/attach session (sans-IO), client and server roles.

An exec (or attach) session is the same conversation whichever transport carries it:
stdin one way; stdout, stderr and one exit-status document the other way; terminal sizes
from the client; stdin half-close where the protocol allows it. The WebSocket channel
connection (``_ws/connection``) and the SPDY exec connection (``_exec/spdy``) each speak it in their
own way; this module hides the difference:

* :class:`ClientExecSession` wraps a client connection. It gathers the error channel and
  turns it into one :class:`ExitStatusReceived` with the parsed outcome (client-go reads
  that channel to EOF and decodes it once: ``tools/remotecommand/errorstream.go``), splits
  large stdin writes into client-go-sized messages, and refuses, with a clear message, to
  half-close stdin where the protocol cannot.

The exec rules live here and only here; the connections below know channels, not what
they mean:

* the status-ordering rule: a WebSocket that ends other than with close 1000 before any
  exit-status byte arrived loses the exec's result (client-go's error-stream reader fails
  then; protocol-notes §1.8);
* the server's hello (one empty message on the first writable channel, protocol-notes
  §1.4) carries nothing: the WebSocket connection makes no event of it, and readiness is
  :class:`SessionReady`, reported with the upgrade;
* which channels ended: the client's :class:`OutputEnded` set, and on the server the
  stdin CLOSE signal after which later stdin data is dropped (the Go server's closed pipe
  discards it).
* :class:`ServerExecSession` is the whole server side of one TCP connection: it parses
  the HTTP request head, lets the caller answer it plainly (a ``GET pod``), reject it, or
  accept the upgrade over whichever transport the client asked for, and then reports
  stdin, stdin EOF and terminal sizes, and writes output and the exit status.

Both have the one sans-IO shape of ``docs/architecture.md``: ``receive_data(bytes) ->
list[Event]`` and ``data_to_send() -> bytes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

from .._channels import ERROR, RESIZE, STDERR, STDIN, STDOUT, WEBSOCKET_PROTOCOLS
from .._errors import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from .._events import (
    ChannelData,
    ChannelEnded,
    ConnectionClosed,
    DroppedMessage,
    Event,
    PingReceived,
    PongReceived,
    UpgradeAccepted,
    UpgradeRejected,
    UpgradeRequested,
)
from .._http import split_target, status_response
from .._resize import ResizeDecoder, encode_resize
from .._status import MAX_STATUS_SIZE, Exited, Failed, Status, exit_status_bytes, parse_exit_status
from .._upgrade import RequestHead, ServerUpgrade
from .._ws.connection import SERVER_PROTOCOLS, WebSocketChannelConnection, hello_channel, negotiate
from .spdy import ExecReady
from .spdy_client import SpdyExecClient
from .spdy_server import SpdyExecServer

__all__ = [
    "MAX_REQUEST_HEAD_SIZE",
    "OUTPUT_CHUNK_SIZE",
    "STDIN_CHUNK_SIZE",
    "ClientExecSession",
    "ExitStatusReceived",
    "OutputEnded",
    "RequestReceived",
    "ServerExecSession",
    "SessionReady",
    "TerminalResized",
]

#: Largest stdin message: client-go copies stdin through a 32 KiB buffer
#: (``tools/remotecommand/reader.go``), so servers never see more per message.
STDIN_CHUNK_SIZE: Final = 32 * 1024
#: Largest stdout/stderr message or DATA frame the server role sends: the kubelet copies
#: the process's output through 32 KiB buffers, so it never sends more at once, and real
#: clients depend on it (one popular Python client stops at 64 KiB with close 1009).
OUTPUT_CHUNK_SIZE: Final = 32 * 1024
#: Largest HTTP request head the server role buffers (h11's default is 16 KiB; a bearer
#: token plus a long argv can exceed it).
MAX_REQUEST_HEAD_SIZE: Final = 64 * 1024

_WEBSOCKET: Final = "websocket"
_ABNORMAL_CLOSURE: Final = 1006
_SPDY: Final = "spdy"


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionReady(Event):
    """The session carries data from now on.

    Client role: right after the WebSocket upgrade; on SPDY once every stream has been
    created and answered. Server role: WebSocket at once, SPDY once the client has
    created every stream the request calls for.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputEnded(Event):
    """Client role: no more bytes will arrive on ``channel`` (stdout 1 or stderr 2)."""

    channel: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExitStatusReceived(Event):
    """Client role: the remote command's outcome, parsed once from the whole error channel.

    Attributes:
        result: :class:`~kstream._status.Exited` (an exit code, 0 included) or
            :class:`~kstream._status.Failed` (the command produced no exit code).
    """

    result: Exited | Failed


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived(Event):
    """Server role: a complete HTTP request head arrived.

    Answer it with :meth:`ServerExecSession.respond`, :meth:`~ServerExecSession.reject`
    or :meth:`~ServerExecSession.accept`.

    Attributes:
        method: ``GET``, ``POST``, ...
        target: the raw request target (path and query).
        path: the target's path.
        query: the decoded query parameters, in order.
        headers: every header, names lower-cased, in order.
        upgrade: ``"websocket"``, ``"spdy"``, or ``None`` for a plain request.
        protocols: the subprotocols (WebSocket) or ``X-Stream-Protocol-Version`` values
            (SPDY) the client offered, in its order.
    """

    method: str
    target: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    upgrade: str | None
    protocols: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalResized(Event):
    """Server role: the client's terminal has a new size (columns, rows)."""

    width: int
    height: int


# --------------------------------------------------------------------------- client


ClientConnection = WebSocketChannelConnection | SpdyExecClient


class ClientExecSession:
    """The client side of one exec/attach session, on WebSocket or SPDY.

    Args:
        connection: a client-role :class:`~kstream._ws.connection.WebSocketChannelConnection` or
            :class:`~kstream._exec.spdy_client.SpdyExecClient`, fresh (its request not yet sent
            is fine: ``data_to_send()`` returns it).
        max_status_size: bound on the error-channel document.

    Events from :meth:`receive_data`: ``UpgradeAccepted`` / ``UpgradeRejected`` as the
    connection reports them, then :class:`SessionReady`, ``ChannelData`` for stdout (1)
    and stderr (2), :class:`OutputEnded` per output channel, one
    :class:`ExitStatusReceived`, ``PingReceived`` / ``PongReceived``, ``DroppedMessage``
    and finally ``ConnectionClosed``.
    """

    def __init__(self, connection: ClientConnection, *,
                 max_status_size: int = MAX_STATUS_SIZE, tty: bool | None = None) -> None:
        self._conn = connection
        # Whether the exec asked for a terminal (None: not told). Only a terminal can be
        # resized; SPDY has no resize stream without one, and over WebSocket the size
        # would be silently ignored, so both refuse it alike when told there is none.
        self._tty = tty
        self._max_status_size = max_status_size
        self._status = bytearray()
        self._status_ended = False
        self._closed_locally = False
        self._outcome_sent = False
        self._ended: set[int] = set()
        # The error that ended the session here (the connection itself had not failed).
        self._error: RemoteProtocolError | None = None
        #: ``"websocket"`` or ``"spdy"``.
        self.transport = _WEBSOCKET if isinstance(connection, WebSocketChannelConnection) \
            else _SPDY
        #: The negotiated protocol name, once the upgrade succeeded.
        self.protocol: str | None = None
        #: The negotiated remotecommand version (1..5), once the upgrade succeeded.
        self.version: int | None = None
        #: The outcome, once :class:`ExitStatusReceived` was emitted.
        self.result: Exited | Failed | None = None

    # -- input

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes received from the server (``b""`` at EOF).

        Returns:
            The events those bytes complete.

        Raises:
            RemoteProtocolError: the server broke the protocol, sent an oversized or
                undecodable exit status, or the connection ended before the status.
        """
        if self._error is not None:
            raise RemoteProtocolError(f"connection already failed: {self._error}")
        events: list[Event] = []
        ended = self._ended
        for event in self._conn.receive_data(data):
            # The hot path: stdout/stderr data passes through as it is (what
            # _on_channel_data does for it, without the dispatch).
            if (type(event) is ChannelData and event.data
                    and (event.channel == STDOUT or event.channel == STDERR)
                    and event.channel not in ended):
                events.append(event)
            else:
                self._translate(event, events)
        if self._status_ended:
            self._emit_outcome(events)
        return events

    def _translate(self, event: Event, out: list[Event]) -> None:
        if isinstance(event, ChannelData):
            self._on_channel_data(event, out)
        elif isinstance(event, ChannelEnded):
            self._on_channel_ended(event.channel, out)
        elif isinstance(event, UpgradeAccepted):
            self.protocol = event.protocol
            self.version = self._negotiated_version(event.protocol)
            out.append(event)
            if self.transport == _WEBSOCKET:
                out.append(SessionReady())
        elif isinstance(event, ExecReady):
            out.append(SessionReady())
        elif isinstance(event, ConnectionClosed):
            self._on_connection_closed(event, out)
        # The connection emits no other event type (WebSocket client: the above; SPDY
        # client: the above and ExecReady), so this test is never false.
        elif isinstance(  # pragma: no branch
                event, UpgradeRejected | PingReceived | PongReceived | DroppedMessage):
            out.append(event)

    def _negotiated_version(self, protocol: str) -> int:
        if isinstance(self._conn, SpdyExecClient):
            return self._conn.version or 1
        channel_protocol = WEBSOCKET_PROTOCOLS.get(protocol)
        return channel_protocol.version if channel_protocol is not None else 1

    def _on_channel_data(self, event: ChannelData, out: list[Event]) -> None:
        if event.channel == ERROR:
            if len(self._status) + len(event.data) > self._max_status_size:
                raise RemoteProtocolError(
                    f"exit status larger than {self._max_status_size} bytes", close_code=1009)
            self._status += event.data
        elif event.channel in (STDOUT, STDERR):
            # The server's empty "hello" message carries nothing for the reader.
            if event.data and event.channel not in self._ended:
                # Unreachable: receive_data's hot path passes such data on before the
                # dispatch; kept so this method states the whole rule.
                out.append(event)  # pragma: no cover
        else:
            # client-go discards messages for stream ids it does not know.
            out.append(DroppedMessage(channel=event.channel, size=len(event.data)))

    def _on_channel_ended(self, channel: int, out: list[Event]) -> None:
        if channel == ERROR:
            # SPDY: the error stream's FIN or RST is client-go's "read to EOF". The outcome
            # is emitted at the end of the batch: if the byte stream broke, the SPDY
            # connection reports this end right before an unclean ConnectionClosed, and an
            # empty status must then not read as success.
            self._status_ended = True
        elif channel in (STDOUT, STDERR) and channel not in self._ended:
            self._ended.add(channel)
            out.append(OutputEnded(channel=channel))

    def _on_connection_closed(self, event: ConnectionClosed, out: list[Event]) -> None:
        if self._closed_locally and not self._status:
            # We ended the session early: the process's fate is unknown, not a success.
            self._outcome_sent = True
        if (self.transport == _WEBSOCKET and not event.clean and not self._closed_locally
                and not self._status and not self._outcome_sent):
            # client-go's error-stream reader fails on any end other than close 1000; once
            # the status has arrived the caller may still trust it (protocol-notes §1.8),
            # before that the exec result is lost. (1006 is never sent in a close frame:
            # it is the end of the byte stream.)
            how = ("without a close frame (1006)" if event.code == _ABNORMAL_CLOSURE
                   else f"with code {event.code} {event.reason!r}")
            self._error = RemoteProtocolError(f"connection closed {how} before the exit status")
            raise self._error
        if not self._outcome_sent and not event.clean and not self._status:
            raise RemoteProtocolError(
                "connection closed before the exit status arrived"
                + (f" (close code {event.code})" if event.code is not None else ""))
        if not self._outcome_sent and self.version is None:
            raise RemoteProtocolError("connection closed before the session started")
        for channel in (STDOUT, STDERR):
            self._on_channel_ended(channel, out)
        # WebSocket: the close (1000, or abnormal after status bytes, which the WebSocket
        # connection lets through) is the end of the error channel.
        self._emit_outcome(out)
        out.append(event)

    def _emit_outcome(self, out: list[Event]) -> None:
        if self._outcome_sent:
            return
        self._outcome_sent = True
        self.result = parse_exit_status(bytes(self._status), self.version or 1)
        self._status.clear()
        out.append(ExitStatusReceived(result=self.result))

    # -- output

    def data_to_send(self) -> bytes:
        """Return (and forget) every byte queued for the server."""
        return self._conn.data_to_send()

    def write_stdin(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` for the remote process's stdin.

        The bytes go out as messages of at most :data:`STDIN_CHUNK_SIZE` bytes, as
        client-go sends them, sliced without copying. Empty data sends nothing.

        Raises:
            LocalProtocolError: stdin was not requested, is closed, or the session is
                not ready or over.
        """
        view = memoryview(data).cast("B")
        for start in range(0, len(view), STDIN_CHUNK_SIZE):
            self._conn.send_data(STDIN, view[start:start + STDIN_CHUNK_SIZE])

    def close_stdin(self) -> None:
        """Half-close stdin: the remote process reads EOF.

        Raises:
            LocalProtocolError: the negotiated protocol cannot half-close stdin
                (WebSocket v4 and older), or stdin is not open.
        """
        if isinstance(self._conn, WebSocketChannelConnection):
            protocol = self._conn.protocol
            if protocol is None:
                raise LocalProtocolError("cannot close stdin before the upgrade succeeded")
            if not protocol.supports_close:
                raise LocalProtocolError(
                    f"the negotiated protocol {protocol.name or 'channel.k8s.io'!s} cannot "
                    "half-close stdin; use v5.channel.k8s.io or SPDY")
        self._conn.close_channel(STDIN)

    def resize(self, width: int, height: int) -> None:
        """Tell the server the terminal is now ``width`` columns by ``height`` rows.

        Raises:
            LocalProtocolError: sizes outside 0..65535, no terminal (the session was
                made with ``tty=False``), or no resize channel (SPDY before v3).
        """
        if self._tty is False:
            raise LocalProtocolError(
                "resize needs a terminal: the exec was started without tty")
        self._conn.send_data(RESIZE, encode_resize(width, height))

    def ping(self, now: float) -> None:
        """Queue a ping; a :class:`~kstream.PongReceived` with ``sent_at=now`` answers it."""
        self._conn.ping(now)

    def close(self) -> None:
        """End the session from our side (WebSocket close 1000, SPDY GOAWAY).

        If no exit status has arrived, none is reported afterwards: the process's
        outcome is unknown (a close echoed by the server is not a success).
        """
        self._closed_locally = True
        self._conn.close()


# --------------------------------------------------------------------------- server


class ServerExecSession:
    """The server side of one connection that may carry an exec/attach session.

    Feed it every byte of the connection. It first parses the HTTP request head (at most
    ``max_head_size`` bytes) and emits :class:`RequestReceived`. Then call exactly one of:

    * :meth:`respond` -- a plain HTTP answer (e.g. ``GET`` of a pod); close afterwards;
    * :meth:`reject` -- an error answer with a ``metav1.Status`` body;
    * :meth:`accept` -- upgrade over the transport the client asked for, negotiating the
      protocol. Events follow: ``UpgradeAccepted``, :class:`SessionReady`,
      ``ChannelData(STDIN)``, ``ChannelEnded(STDIN)``, :class:`TerminalResized`,
      ``PingReceived`` / ``PongReceived``, ``ConnectionClosed``.

    Args:
        websocket_protocols: WebSocket subprotocols to accept, in order of preference
            (default: the WebSocket connection's own list).
        spdy_protocols: SPDY stream protocols to accept (default: the SPDY server's).
        max_head_size: bound on the request head.
        max_message_size: bound on one WebSocket message.
        stream_creation_timeout: SPDY: seconds the client has to create its streams.
    """

    def __init__(self, *, websocket_protocols: Sequence[str] | None = None,
                 spdy_protocols: Sequence[str] | None = None,
                 max_head_size: int = MAX_REQUEST_HEAD_SIZE,
                 max_message_size: int = 32 * 1024 * 1024,
                 stream_creation_timeout: float = 30.0) -> None:
        self._websocket_protocols = None if websocket_protocols is None \
            else tuple(websocket_protocols)
        self._spdy_protocols = None if spdy_protocols is None else tuple(spdy_protocols)
        self._max_message_size = max_message_size
        self._stream_creation_timeout = stream_creation_timeout
        # The request is parsed once, here; the upgraded connection takes the engine over
        # (receive_request) with the bytes that followed the request.
        self._upgrade = ServerUpgrade(max_head_size=max_head_size)
        self._max_head_size = max_head_size
        self._received = 0
        self._request: RequestReceived | None = None
        self._conn: WebSocketChannelConnection | SpdyExecServer | None = None
        self._resize = ResizeDecoder()
        self._resize_failed = False
        # Channels the client ended (v5 CLOSE signal, SPDY FIN): later data is dropped.
        self._ended: set[int] = set()
        self._outgoing = bytearray()
        self._answered = False
        self._finished = False
        #: ``"websocket"`` or ``"spdy"`` once accepted.
        self.transport: str | None = None
        #: The negotiated protocol name once accepted.
        self.protocol: str | None = None
        #: The negotiated remotecommand version (1..5) once accepted.
        self.version: int | None = None

    @property
    def answered(self) -> bool:
        """Whether the request was answered (respond, reject or accept)."""
        return self._answered

    @property
    def request(self) -> RequestReceived | None:
        """The parsed request, once :class:`RequestReceived` was emitted."""
        return self._request

    # -- input

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes received from the client (``b""`` at EOF).

        Returns:
            The events those bytes complete.

        Raises:
            RemoteProtocolError: the client broke HTTP or the negotiated protocol. The
                answer to send first (a 400, a WebSocket close, a GOAWAY) is queued.
        """
        if self._conn is not None:
            return self._translate(self._conn.receive_data(data))
        if self._answered:
            return [ConnectionClosed(clean=True)] if not data else []
        if self._request is not None:
            # The head is in; the engine keeps what follows for the upgraded connection
            # (its body, then the first bytes of the new protocol), bounded. An end of
            # the byte stream here waits for the answer.
            if self._received + len(data) > self._max_head_size + self._max_message_size:
                raise RemoteProtocolError("too much data before the upgrade was answered")
            self._received += len(data)
            if data:
                self._upgrade.receive_data(data)
            return []
        return self._receive_head(data)

    def _receive_head(self, data: bytes | bytearray | memoryview) -> list[Event]:
        self._received += len(data)
        upgrade = self._upgrade
        upgrade.receive_data(data)
        head = upgrade.request
        if head is not None:
            # The head is what the session answers; a broken body (if any) is the
            # upgraded connection's to report when it takes the request over.
            try:
                self._request = _request_event(head)
            except RemoteProtocolError as exc:
                # A target that is no URL (/api%zz, OPTIONS *): answered 400, as an
                # apiserver answers what it cannot route, before the error propagates.
                self._queue_plain_error(400, str(exc))
                raise
            return [self._request]
        if upgrade.error is not None:
            self._queue_plain_error(upgrade.error.status_hint, str(upgrade.error))
            raise RemoteProtocolError(f"bad HTTP request: {upgrade.error}")
        if upgrade.closed:
            # Opened and closed without a request (a port probe): nothing to answer.
            self._answered = True
            return [ConnectionClosed(clean=True)]
        return []

    def _queue_plain_error(self, status_code: int, message: str) -> None:
        # h11 is in its error state now and sends nothing more: write the answer by hand.
        code = status_code if 400 <= status_code <= 599 else 400
        headers, body = status_response(code, message)
        head = f"HTTP/1.1 {code} {_reason_phrase(code)}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers) + "Connection: close\r\n\r\n"
        self._outgoing += head.encode("latin-1") + body
        self._answered = True

    def _translate(self, events: list[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            if isinstance(event, ChannelData):
                if event.channel in self._ended:
                    # Data after the channel's v5 CLOSE signal: the Go server's closed
                    # pipe discards it. One whole message: its size on the wire is the
                    # channel byte plus the payload.
                    out.append(DroppedMessage(channel=event.channel, size=len(event.data) + 1))
                elif event.channel == RESIZE:
                    out.extend(self._decode_resize(event.data))
                elif event.channel == STDIN and event.data:
                    out.append(event)
            elif isinstance(event, ChannelEnded):
                self._ended.add(event.channel)
                if event.channel == STDIN:
                    out.append(event)
            elif isinstance(event, ExecReady):
                out.append(SessionReady())
            # accept() drops the UpgradeRequested that receive_request reports, and the
            # upgraded connection never reports another: this test is never false.
            elif not isinstance(event, UpgradeRequested):  # pragma: no branch
                out.append(event)
        return out

    def _decode_resize(self, data: bytes) -> list[Event]:
        if self._resize_failed:
            return []
        try:
            sizes = self._resize.feed(data)
        except RemoteProtocolError:
            # The kubelet stops reading resize events at the first bad one and the exec
            # goes on (httpstream.go handleResizeEvents).
            self._resize_failed = True
            return []
        return [TerminalResized(width=size.width, height=size.height) for size in sizes]

    # -- answering the request

    def respond(self, status_code: int, headers: Sequence[tuple[str, str]] = (),
                body: bytes = b"") -> None:
        """Answer with a plain HTTP response; the connection should be closed after it.

        Args:
            status_code: the HTTP status.
            headers: response headers (``Content-Length`` and ``Connection: close``
                are added).
            body: the response body.

        Raises:
            LocalProtocolError: no request yet, or it was already answered.
        """
        self._check_answerable()
        self._answered = True
        all_headers = [(k, v) for k, v in headers if k.lower() not in
                       ("content-length", "connection", "transfer-encoding")]
        all_headers += [("Content-Length", str(len(body))), ("Connection", "close")]
        try:
            out = self._upgrade.respond(status_code, all_headers, body)
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot send this response: {exc}") from None
        self._outgoing += out

    def reject(self, status_code: int = 403, message: str = "", *, reason: str = "") -> None:
        """Refuse the request with a ``metav1.Status`` JSON body, as the apiserver does.

        Raises:
            LocalProtocolError: no request yet, or it was already answered.
        """
        self._check_answerable()
        headers, body = status_response(status_code, message, reason)
        self.respond(status_code, headers, body)

    def accept(self, *, stdin: bool, stdout: bool, stderr: bool, tty: bool,
               now: float) -> list[Event]:
        """Accept the upgrade the client asked for and negotiate the protocol.

        Args:
            stdin: the session reads stdin.
            stdout: the session writes stdout.
            stderr: the session writes stderr (ignored with a tty, as the kubelet does).
            tty: the session has a terminal (enables resize on SPDY v3+).
            now: the current time (the SPDY stream-creation deadline starts now).

        Returns:
            The events the already received bytes complete (``UpgradeAccepted`` first,
            then :class:`SessionReady` for WebSocket, ...).

        Raises:
            LocalProtocolError: no request yet, already answered, or the request is not
                an upgrade.
            UpgradeRejectedError: no protocol in common; a 403 is queued (as the Go
                servers answer) and the connection should be closed after sending it.
        """
        request = self._check_answerable()
        if request.upgrade is None:
            raise LocalProtocolError("the request is not an upgrade request")
        if not (stdin or stdout or stderr):
            raise LocalProtocolError("an exec needs at least one of stdin, stdout, stderr; "
                                     "reject the request with 400")
        self._answered = True
        if tty:
            stderr = False
        if request.upgrade == _WEBSOCKET:
            return self._accept_websocket(stdout=stdout, stderr=stderr)
        return self._accept_spdy(stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, now=now)

    def _accept_websocket(self, *, stdout: bool, stderr: bool) -> list[Event]:
        supported = SERVER_PROTOCOLS if self._websocket_protocols is None \
            else self._websocket_protocols
        conn = WebSocketChannelConnection.server(supported=supported,
                                                 max_message_size=self._max_message_size)
        self._conn = conn
        self.transport = _WEBSOCKET
        events = [e for e in conn.receive_request(self._upgrade)
                  if not isinstance(e, UpgradeRequested)]
        offered = self._request.protocols if self._request is not None else ()
        if negotiate(offered, supported) is None:
            # x/net/websocket answers 403 when no subprotocol matches (server.go); the
            # Status body says why, for humans.
            message = (f"no WebSocket subprotocol in common: the client offered "
                       f"{list(offered)}, this server speaks {list(supported)}")
            conn.reject(403, message=message)
            raise UpgradeRejectedError(403, reason="Forbidden", detail=message)
        # The exec servers send one empty message on the first writable channel right after
        # the handshake (protocol-notes §1.4).
        conn.accept(hello=hello_channel(stdout, stderr))
        protocol = conn.protocol
        assert protocol is not None
        self.protocol = protocol.name
        self.version = protocol.version
        accepted = UpgradeAccepted(transport=_WEBSOCKET, protocol=protocol.name)
        return [accepted, SessionReady(), *self._translate(events)]

    def _accept_spdy(self, *, stdin: bool, stdout: bool, stderr: bool, tty: bool,
                     now: float) -> list[Event]:
        conn = SpdyExecServer(stream_creation_timeout=self._stream_creation_timeout) \
            if self._spdy_protocols is None else SpdyExecServer(
                supported=self._spdy_protocols,
                stream_creation_timeout=self._stream_creation_timeout)
        self._conn = conn
        self.transport = _SPDY
        events = [e for e in conn.receive_request(self._upgrade)
                  if not isinstance(e, UpgradeRequested)]
        try:
            early = conn.accept(stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, now=now)
        except LocalProtocolError as exc:
            # No protocol in common (or no upgrade headers): the kubelet answers 403/400.
            conn.reject(403, message=str(exc))
            raise UpgradeRejectedError(403, reason="Forbidden", detail=str(exc)) from None
        self.protocol = conn.protocol
        self.version = conn.version
        accepted = UpgradeAccepted(transport=_SPDY, protocol=conn.protocol)
        return [accepted, *self._translate(events), *self._translate(early)]

    def take_over(self) -> ServerUpgrade:
        """Hand the parsed request (and the bytes after it) to another protocol's server
        connection (port-forward's); this session answers nothing more.

        Raises:
            LocalProtocolError: no request yet, or it was already answered.
        """
        self._check_answerable()
        self._answered = True
        return self._upgrade

    def _check_answerable(self) -> RequestReceived:
        if self._request is None:
            raise LocalProtocolError("no request has been received yet")
        if self._answered:
            raise LocalProtocolError("the request has already been answered")
        return self._request

    # -- output

    def data_to_send(self) -> bytes:
        """Return (and forget) every byte queued for the client."""
        out = bytes(self._outgoing)
        self._outgoing.clear()
        if self._conn is not None:
            out += self._conn.data_to_send()
        return out

    def _session(self) -> WebSocketChannelConnection | SpdyExecServer:
        if self._conn is None:
            raise LocalProtocolError("the session has not been accepted")
        if self._finished:
            raise LocalProtocolError("the session is finished")
        return self._conn

    def send_stdout(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes of the process's stdout, in messages of at most 32 KiB.

        Raises:
            LocalProtocolError: not accepted, finished, or stdout not requested (SPDY).
        """
        self._send_output(STDOUT, data)

    def send_stderr(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes of the process's stderr, in messages of at most 32 KiB.

        Raises:
            LocalProtocolError: not accepted, finished, or stderr not requested (SPDY).
        """
        self._send_output(STDERR, data)

    def _send_output(self, channel: int, data: bytes | bytearray | memoryview) -> None:
        # As the kubelet: at most OUTPUT_CHUNK_SIZE per WebSocket message or DATA frame,
        # sliced without copying.
        size = len(data)
        if not size:
            return
        session = self._session()
        if size <= OUTPUT_CHUNK_SIZE:
            session.send_data(channel, data)
            return
        view = memoryview(data).cast("B")
        for start in range(0, len(view), OUTPUT_CHUNK_SIZE):
            session.send_data(channel, view[start:start + OUTPUT_CHUNK_SIZE])

    def send_exit(self, status: Status) -> None:
        """Queue the exit status in the negotiated version's format.

        v4/v5 write the Status JSON; v1-v3 write nothing on success and the message
        otherwise (``kubelet/.../remotecommand/httpstream.go``).

        Raises:
            LocalProtocolError: not accepted or already finished.
        """
        conn = self._session()
        if isinstance(conn, SpdyExecServer):
            conn.send_status(status)
            return
        data = exit_status_bytes(status, self.version or 1)
        if data:
            conn.send_data(ERROR, data)

    def finish(self) -> None:
        """End the session: WebSocket close 1000; SPDY RST CANCEL of open streams, GOAWAY.

        Send the exit status first with :meth:`send_exit`. After this the caller flushes
        :meth:`data_to_send` and closes the socket, as the Go servers do.
        """
        conn = self._session()
        self._finished = True
        if isinstance(conn, SpdyExecServer):
            conn.finish()
        else:
            conn.close(1000)

    def exit(self, status: Status) -> None:
        """:meth:`send_exit` then :meth:`finish`."""
        self.send_exit(status)
        self.finish()

    def ping(self, now: float) -> None:
        """Queue a ping to the client."""
        self._session().ping(now)

    def check_deadline(self, now: float) -> bool:
        """SPDY: tell whether the client failed to create its streams in time.

        Upstream (``waitForStreams``) then gives up without writing anything; the caller
        closes the connection. Always ``False`` on WebSocket.

        Args:
            now: the same clock as given to :meth:`accept`.

        Returns:
            ``True`` when the stream-creation deadline passed with streams missing.
        """
        return isinstance(self._conn, SpdyExecServer) and self._conn.check_deadline(now)


def _reason_phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


def _request_event(request: RequestHead) -> RequestReceived:
    method = request.method
    target = request.target
    headers = request.headers
    path, query = split_target(target)
    upgrade_header = ",".join(v for k, v in headers if k == "upgrade").lower()
    upgrade: str | None = None
    protocols: tuple[str, ...] = ()
    if "websocket" in upgrade_header:
        upgrade = _WEBSOCKET
        # x/net/websocket reads only the first Sec-WebSocket-Protocol line
        # (golang/net websocket/hybi.go ReadHandshake).
        first = next((v for k, v in headers if k == "sec-websocket-protocol"), None)
        protocols = tuple(p.strip() for p in first.split(",")) if first is not None else ()
    elif "spdy/3.1" in upgrade_header:
        upgrade = _SPDY
        protocols = tuple(p.strip() for k, v in headers if k == "x-stream-protocol-version"
                          for p in v.split(",") if p.strip())
    return RequestReceived(method=method, target=target, path=path, query=tuple(query),
                           headers=headers, upgrade=upgrade, protocols=protocols)
