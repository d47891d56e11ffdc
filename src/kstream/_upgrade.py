"""The HTTP/1.1 upgrade engine: both roles, any transport, on h11 (sans-IO).

Every kstream transport starts with an HTTP/1.1 upgrade: WebSocket (``GET`` +
``Upgrade: websocket``), SPDY/3.1 (``POST`` + ``Upgrade: SPDY/3.1``), and later the
SPDY-over-WebSocket tunnel and port-forward. This module is the one place that parses
the HTTP head of that upgrade, for both roles, and hands the bytes that follow it to the
next protocol, the way wsproto's ``WSConnection`` hands ``h11_connection.trailing_data``
to its ``Connection`` (``style-anchors.md`` §1.1):

* :class:`ServerUpgrade` reads one request: the head (at most ``max_head_size`` bytes),
  then its body, which is counted and dropped, then keeps every later byte as
  :attr:`~ServerUpgrade.trailing_data` for the protocol that takes over. It writes the
  answer: :meth:`~ServerUpgrade.switch` (the 101) or :meth:`~ServerUpgrade.respond`.
* :class:`ClientUpgrade` writes one request and reads the answer: a 101 (then
  :attr:`~ClientUpgrade.trailing_data` starts the next protocol) or a final response
  whose body is kept up to :data:`~kstream._http.MAX_REJECTION_BODY` bytes.

The engine knows nothing of WebSocket or SPDY: which headers a request must carry, what
to answer and with which words is the caller's. It reports what it parsed as attributes
(``request`` / ``complete`` / ``closed`` / ``error`` on the server; the returned
:class:`ResponseHead` on the client) and reports the peer's HTTP errors as
:class:`HttpError`, which carries h11's message and status hint; each caller words its
own error from it, so the texts on the wire stay the transport's own.

A server session parses the head once, here, and builds the WebSocket or SPDY server
connection from this object (``receive_request``): no byte is parsed twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

import h11

from ._errors import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from ._http import MAX_REJECTION_BODY, upgrade_rejection

__all__ = [
    "MAX_HEAD_SIZE",
    "ClientUpgrade",
    "Headers",
    "HttpError",
    "RequestHead",
    "ResponseHead",
    "ServerUpgrade",
    "complete_response",
    "decode_headers",
    "encode_headers",
    "reason_phrase",
]

Buffer = bytes | bytearray | memoryview
#: Header pairs as kstream reports them: names lower-cased (h11 does it), values latin-1.
Headers = tuple[tuple[str, str], ...]
#: What h11 accepts as headers to send.
RawHeaders = list[tuple[bytes, bytes]] | list[tuple[str, str]]

#: Largest HTTP request or response head (architecture.md, "Hard limits").
MAX_HEAD_SIZE: Final = 64 * 1024


class HttpError(RemoteProtocolError):
    """The peer's bytes are not valid HTTP/1.1 (h11's message as the text).

    Callers catch it and raise their own wording; it derives from
    :class:`~kstream.RemoteProtocolError` so that it stays in the error model even if not.

    Attributes:
        status_hint: the status h11 suggests answering with (400, 431, ...).
    """

    def __init__(self, message: str, *, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestHead:
    """A parsed request head.

    Attributes:
        method: ``GET``, ``POST``, ...
        target: the raw request target (path and query).
        headers: every header in order, names lower-cased, values latin-1.
    """

    method: str
    target: str
    headers: Headers


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseHead:
    """A parsed response head (the 101, or the final answer of a refused upgrade).

    Attributes:
        status_code: the HTTP status.
        reason: the reason phrase as sent.
        headers: every header in order, names lower-cased, values latin-1.
    """

    status_code: int
    reason: str
    headers: Headers


def decode_headers(raw: Sequence[tuple[bytes, bytes]]) -> Headers:
    """Decode h11's header pairs: names are lower-cased tokens, values may hold obs-text."""
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw)


#: What an HTTP/1.1 field name may hold (RFC 9110 token) and what a field value may not
#: (controls other than tab: a line break would end the header, or smuggle another).
_TOKEN: Final = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def encode_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Encode header pairs for h11 (ASCII names, latin-1 values), checked.

    A value is often a credential (``Authorization``): errors name the header, never its
    value, so that no secret reaches a log or a terminal.

    Raises:
        LocalProtocolError: a name is no HTTP token, or a value cannot be sent.
    """
    encoded = []
    for name, value in headers:
        try:
            raw_name = name.encode("ascii")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"header name {name!r} is not ASCII") from None
        if not _TOKEN.fullmatch(raw_name):
            raise LocalProtocolError(f"header name {name!r} is not an HTTP token")
        try:
            raw_value = value.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError(
                f"the value of header {name!r} cannot be sent: it has characters outside "
                "latin-1") from None
        if _BAD_VALUE.search(raw_value):
            raise LocalProtocolError(
                f"the value of header {name!r} cannot be sent: it has a line break or "
                "another control character") from None
        encoded.append((raw_name, raw_value))
    return encoded


def reason_phrase(status_code: int) -> str:
    """The standard reason phrase of ``status_code`` (``""`` for an unknown status)."""
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return ""


def _send(connection: h11.Connection, events: Sequence[h11.Event]) -> bytes:
    try:
        return b"".join(connection.send(event) or b"" for event in events)
    except h11.LocalProtocolError as exc:
        raise LocalProtocolError(str(exc)) from None


# --------------------------------------------------------------------------- server


class ServerUpgrade:
    """Server role: read one request (head, then body), then write its answer.

    Feed bytes with :meth:`receive_data` and look at the attributes: :attr:`request` is
    set once the head is parsed (answer may start then), :attr:`complete` once the body
    has been read too (the bytes after it are :attr:`trailing_data`), :attr:`closed` if
    the peer left before sending anything, :attr:`error` if the bytes are not HTTP/1.1
    (the engine then parses nothing more; an answer may still be written).

    Args:
        max_head_size: the largest request head accepted.
    """

    def __init__(self, *, max_head_size: int = MAX_HEAD_SIZE) -> None:
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head_size)
        #: The request head, once parsed.
        self.request: RequestHead | None = None
        #: The request's body has been read (and dropped): what follows is trailing data.
        self.complete = False
        #: The peer closed the connection before sending a byte of a request.
        self.closed = False
        #: The peer's bytes broke HTTP/1.1 (nothing more is parsed).
        self.error: HttpError | None = None
        #: Body bytes read and dropped so far.
        self.body_size = 0
        #: Whether :meth:`switch` or :meth:`respond` wrote the answer.
        self.answered = False

    def receive_data(self, data: Buffer) -> None:
        """Feed bytes from the client (``b""``: it closed the connection).

        Bytes after the request are kept for :attr:`trailing_data`; the caller bounds them.
        """
        if self.error is not None or self.closed:
            return
        self._h11.receive_data(bytes(data))
        if self.complete:
            return
        try:
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                if isinstance(event, h11.Request):
                    self.request = RequestHead(
                        method=event.method.decode("latin-1"),
                        target=event.target.decode("latin-1"),
                        headers=decode_headers(event.headers))
                elif isinstance(event, h11.Data):
                    self.body_size += len(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    self.complete = True
                    return
                # A server's h11 receives only the four event types tested here (and the
                # two sentinels above): this test never fails.
                elif isinstance(event, h11.ConnectionClosed):  # pragma: no branch
                    self.closed = True
                    return
        except h11.RemoteProtocolError as exc:
            self.error = HttpError(str(exc), status_hint=exc.error_status_hint)

    @property
    def trailing_data(self) -> bytes:
        """The bytes received after the request's body (the next protocol's first bytes)."""
        if not self.complete:
            return b""
        data, _closed = self._h11.trailing_data
        return bytes(data)

    def switch(self, headers: RawHeaders, *, reason: bytes = b"Switching Protocols") -> bytes:
        """Write the ``101 Switching Protocols`` answer and return its bytes.

        Raises:
            LocalProtocolError: h11 refuses (no complete upgrade request, a bad header).
        """
        try:
            response = h11.InformationalResponse(status_code=101, headers=headers,
                                                 reason=reason)
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(str(exc)) from None
        data = _send(self._h11, [response])
        self.answered = True
        return data

    def respond(self, status_code: int, headers: RawHeaders, body: bytes, *,
                reason: bytes | None = None, empty_data: bool = False) -> bytes:
        """Write a whole non-101 response (head, body, end) and return its bytes.

        h11 lets a server answer even after the request failed to parse.

        Args:
            status_code: the status, 200 or more.
            headers: the response headers, framing included (``Content-Length``).
            body: the body.
            reason: the reason phrase; ``None`` sends none.
            empty_data: write a (zero-length) body event even when ``body`` is empty.

        Raises:
            LocalProtocolError: h11 refuses the response (a status below 200, a bad header).
        """
        try:
            if reason is None:
                response = h11.Response(status_code=status_code, headers=headers)
            else:
                response = h11.Response(status_code=status_code, headers=headers, reason=reason)
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(str(exc)) from None
        events: list[h11.Event] = [response]
        if body or empty_data:
            events.append(h11.Data(data=body))
        events.append(h11.EndOfMessage())
        data = _send(self._h11, events)
        self.answered = True
        return data


def complete_response(upgrade: ServerUpgrade, status_code: int,
                      headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """Write a non-101 answer with the standard reason phrase and a Content-Length.

    Args:
        upgrade: the engine that read the request.
        status_code: the status.
        headers: encoded headers (:func:`encode_headers`); Content-Length is added if
            missing.
        body: the body.

    Raises:
        LocalProtocolError: h11 refuses the response (h11's message as the text).
    """
    if not any(name.lower() == b"content-length" for name, _ in headers):
        headers = [*headers, (b"Content-Length", str(len(body)).encode("ascii"))]
    return upgrade.respond(status_code, headers, body,
                           reason=reason_phrase(status_code).encode("ascii"))


# --------------------------------------------------------------------------- client


class ClientUpgrade:
    """Client role: write one upgrade request, then read its answer.

    The request is queued at construction (:meth:`data_to_send`). Feed the answer to
    :meth:`receive_data` until it returns a :class:`ResponseHead`: status 101 means
    switched (the next protocol starts with :attr:`trailing_data`); anything else is the
    final answer, complete or cut at :data:`~kstream._http.MAX_REJECTION_BODY` body
    bytes (:attr:`body`, :attr:`overflowed`). Informational answers other than 101
    (``100 Continue``) are skipped.

    Args:
        method: the request method.
        target: the request target.
        headers: the request headers, in order (``Host`` first).

    Raises:
        LocalProtocolError: h11 refuses the request (h11's message as the text).
    """

    def __init__(self, *, method: bytes | str, target: bytes | str,
                 headers: RawHeaders) -> None:
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_SIZE)
        try:
            request = h11.Request(method=method, target=target, headers=headers)
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(str(exc)) from None
        self._outgoing = _send(self._h11, [request, h11.EndOfMessage()])
        #: The final (non-1xx) response head, once parsed.
        self.response: ResponseHead | None = None
        #: The final response's body, up to MAX_REJECTION_BODY bytes.
        self.body = bytearray()
        #: The body went on past what is kept.
        self.overflowed = False
        #: After a 101: the bytes that followed it (the next protocol's first bytes).
        self.trailing_data = b""

    def data_to_send(self) -> bytes:
        """Return the request bytes once (``b""`` afterwards)."""
        data, self._outgoing = self._outgoing, b""
        return data

    def receive_data(self, data: Buffer) -> ResponseHead | None:
        """Feed answer bytes (``b""``: the server closed the connection).

        Returns:
            ``None`` until the answer is known, then the 101's head (switched) or the
            final response's head (its body is in :attr:`body`).

        Raises:
            HttpError: the bytes are not HTTP/1.1 (check :attr:`response` to know whether
                the head made it).
        """
        self._h11.receive_data(bytes(data))
        try:
            while True:
                event = self._h11.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return None
                if isinstance(event, h11.InformationalResponse):
                    if event.status_code == 101:
                        self.trailing_data = bytes(self._h11.trailing_data[0])
                        return _response_head(event)
                    # Other 1xx answers (100 Continue) come before the real one.
                elif isinstance(event, h11.Response):
                    self.response = _response_head(event)
                elif isinstance(event, h11.Data):
                    room = MAX_REJECTION_BODY - len(self.body)
                    self.body += memoryview(event.data)[:room]
                    if len(event.data) > room:
                        # Waiting for more would only let a peer hold the connection open
                        # with an endless body.
                        self.overflowed = True
                        assert self.response is not None
                        return self.response
                elif self.response is not None:  # EndOfMessage, ConnectionClosed
                    return self.response
                else:  # pragma: no cover
                    # Cannot happen: EndOfMessage only follows a Response, and h11 refuses
                    # an end of stream before the final answer (RemoteProtocolError "can't
                    # handle event type ConnectionClosed ... state=SEND_RESPONSE", below).
                    raise HttpError("connection closed before the upgrade response")
        except h11.RemoteProtocolError as exc:
            raise HttpError(str(exc), status_hint=exc.error_status_hint) from None

    def rejection(self, detail: str = "") -> UpgradeRejectedError:
        """The error that describes the final (non-101) answer received so far."""
        response = self.response
        assert response is not None
        return upgrade_rejection(response.status_code, response.reason, response.headers,
                                 bytes(self.body), detail=detail)


def _response_head(event: h11.Response | h11.InformationalResponse) -> ResponseHead:
    return ResponseHead(status_code=event.status_code, reason=event.reason.decode("latin-1"),
                        headers=decode_headers(event.headers))
