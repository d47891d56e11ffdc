"""The HTTP/1.1 upgrade to SPDY/3.1, both roles, through h11 (sans-IO).

Client (``apimachinery/pkg/util/httpstream/spdy/roundtripper.go``, client-go
``transport/spdy/spdy.go`` ``Negotiate``; protocol-notes §3.1)::

    POST <target> HTTP/1.1
    Host: <host>
    Content-Length: 0
    Connection: Upgrade
    Upgrade: SPDY/3.1
    X-Stream-Protocol-Version: v4.channel.k8s.io      (one line per protocol, in order)
    ...extra headers (Authorization, User-Agent)

The 101 must say ``Connection: upgrade`` and ``Upgrade: spdy/3.1`` (case-insensitive,
"contains", as ``roundtripper.go`` ``NewConnection``); the negotiated protocol is its
``X-Stream-Protocol-Version`` (empty if absent: client-go then speaks v1). Anything else is
an :class:`~kstream.UpgradeRejected` whose error carries the body (at most 64 KiB) decoded
as a ``metav1.Status`` when it is one (kubectl falls back from WebSocket to SPDY, never
the other way, so a rejected SPDY upgrade is final; protocol-notes §5.2).

Server (``httpstream.go`` ``Handshake`` then ``spdy/upgrade.go`` ``UpgradeResponse``): the
first *client* protocol the server supports wins; none gives 403 with one
``X-Accepted-Stream-Protocol-Versions`` line per supported version, no
``X-Stream-Protocol-Version`` at all gives 400, and missing ``Connection``/``Upgrade``
headers give 400, each with Go's text body (:meth:`SpdyUpgradeServer.refuse`).

Both roles parse the HTTP head with the upgrade engine (:mod:`kstream._upgrade`), which
hands over the bytes that follow it (:attr:`SpdyUpgradeClient.trailing_data`,
:attr:`SpdyUpgradeServer.trailing_data`); a server whose request was already parsed by
its caller takes the engine over (:meth:`SpdyUpgradeServer.receive_request`).

Limits: the response or request head is at most 64 KiB (h11 ``max_incomplete_event_size``);
a rejection body is kept up to 64 KiB and the rest is not read; a request body (normally
none) is read and dropped up to 64 KiB, more is a protocol error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .._errors import LocalProtocolError, RemoteProtocolError
from .._events import (
    ConnectionClosed,
    Event,
    UpgradeAccepted,
    UpgradeRejected,
    UpgradeRequested,
)
from .._http import split_target, status_response, upgrade_rejection
from .._upgrade import (
    MAX_HEAD_SIZE,
    ClientUpgrade,
    HttpError,
    ResponseHead,
    ServerUpgrade,
    encode_headers,
    reason_phrase,
)

__all__ = [
    "DEFAULT_SPDY_PROTOCOLS",
    "MAX_HEAD_SIZE",
    "MAX_REQUEST_BODY",
    "SpdyUpgradeClient",
    "SpdyUpgradeServer",
]

#: What client-go offers and kubelets accept over SPDY, in preference order
#: (``remotecommand`` ``SupportedStreamingProtocols``; v5 exists only at the apiserver).
DEFAULT_SPDY_PROTOCOLS: Final = ("v4.channel.k8s.io", "v3.channel.k8s.io",
                                 "v2.channel.k8s.io", "channel.k8s.io")
#: Largest request body the server reads (and drops) before answering the upgrade.
MAX_REQUEST_BODY: Final = 64 * 1024

PROTOCOL_HEADER: Final = "X-Stream-Protocol-Version"
ACCEPTED_PROTOCOLS_HEADER: Final = "X-Accepted-Stream-Protocol-Versions"
_UPGRADE_TOKEN: Final = "SPDY/3.1"

Headers = tuple[tuple[str, str], ...]


def _joined(headers: Headers, name: str) -> str:
    """Every value of header ``name``, comma-joined (HTTP's list rule)."""
    return ", ".join(value for key, value in headers if key == name)


def _has_upgrade_headers(headers: Headers) -> bool:
    # roundtripper.go NewConnection / upgrade.go UpgradeResponse: lower-cased "contains".
    return ("upgrade" in _joined(headers, "connection").lower()
            and "spdy/3.1" in _joined(headers, "upgrade").lower())


def split_protocols(headers: Headers) -> tuple[str, ...]:
    """Return the X-Stream-Protocol-Version values in order, comma-separated ones split.

    Mirrors ``httpstream.go`` ``commaSeparatedHeaderValues`` (spaces trimmed, empties
    dropped).

    Args:
        headers: Request headers, names lower-case.

    Returns:
        The protocols the client offered, in its order of preference.
    """
    protocols: list[str] = []
    for name, value in headers:
        if name == "x-stream-protocol-version":
            protocols.extend(part.strip(" ") for part in value.split(","))
    return tuple(protocol for protocol in protocols if protocol)


def _go_list(items: Sequence[str]) -> str:
    """Format a string slice the way Go's ``%v`` does: ``[a b c]``."""
    return "[" + " ".join(items) + "]"


def _go_header_map(headers: Headers) -> str:
    """Format headers the way Go's ``%#v`` formats a request's ``http.Header``.

    Keys canonicalised and sorted; ``Host`` is not in Go's map (it is ``Request.Host``).
    """
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        if name == "host":
            continue
        canonical = "-".join(part[:1].upper() + part[1:] for part in name.split("-"))
        grouped.setdefault(canonical, []).append(value)
    entries = (f'"{key}":[]string{{{", ".join(_go_quote(v) for v in values)}}}'
               for key, values in sorted(grouped.items()))
    return "http.Header{" + ", ".join(entries) + "}"


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _map_http_error(exc: HttpError) -> RemoteProtocolError:
    return RemoteProtocolError(f"invalid HTTP/1.1 from the peer: {exc}")


class SpdyUpgradeClient:
    """Client role: the HTTP/1.1 request that upgrades a connection to SPDY/3.1.

    The request is queued at construction; send :meth:`data_to_send`, then feed the
    response to :meth:`receive_data` until it returns an :class:`~kstream.UpgradeAccepted`
    (then start a :class:`~kstream._spdy.session.SpdySession` with :attr:`trailing_data`)
    or an :class:`~kstream.UpgradeRejected`.
    """

    def __init__(self, *, host: str, target: str,
                 protocols: Sequence[str] = DEFAULT_SPDY_PROTOCOLS,
                 headers: Sequence[tuple[str, str]] = (), method: str = "POST") -> None:
        """Queue the upgrade request.

        Args:
            host: The ``Host`` header (``host:port``).
            target: Path and query (``/api/v1/namespaces/ns/pods/p/exec?command=ls``).
            protocols: The stream protocols to offer, preferred first.
            headers: Extra headers (``Authorization``, ``User-Agent``), sent last.
            method: ``POST`` as client-go; kubelets accept ``GET`` too.

        Raises:
            LocalProtocolError: A header, the target or the method is not valid HTTP.
        """
        request_headers = [("Host", host), ("Content-Length", "0"),
                           ("Connection", "Upgrade"), ("Upgrade", _UPGRADE_TOKEN)]
        request_headers += [(PROTOCOL_HEADER, protocol) for protocol in protocols]
        request_headers += list(headers)
        try:
            self._upgrade = ClientUpgrade(method=method, target=target,
                                          headers=encode_headers(request_headers))
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"invalid upgrade request: {exc}") from None
        self._finished = False
        #: Bytes that followed the 101 in the same reads: the start of the SPDY session.
        self.trailing_data = b""

    def data_to_send(self) -> bytes:
        """Return the queued request bytes (``b""`` once sent) and clear the queue."""
        return self._upgrade.data_to_send()

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed response bytes; ``b""`` means the server closed the connection.

        Args:
            data: The next bytes from the server.

        Returns:
            ``[]`` until the answer is complete, then ``[UpgradeAccepted]`` or
            ``[UpgradeRejected]``.

        Raises:
            RemoteProtocolError: The response is not valid HTTP/1.1, its head exceeds
                64 KiB, or the connection closed before a response.
            LocalProtocolError: Called again after the answer was reported.
        """
        if self._finished:
            raise LocalProtocolError("the upgrade is over; feed the SPDY session instead")
        try:
            head = self._upgrade.receive_data(data)
        except HttpError as exc:
            if self._upgrade.response is not None:
                # The head arrived but the body is broken or cut short: it is a rejection
                # anyway; report what came.
                return [self._rejected(f"unreadable response body: {exc}")]
            self._finished = True
            if not data:
                raise RemoteProtocolError("connection closed before the upgrade response "
                                          "was complete") from None
            raise _map_http_error(exc) from None
        if head is None:
            return []
        if head.status_code == 101:
            return [self._switched(head)]
        return [self._rejected()]

    def _switched(self, response: ResponseHead) -> Event:
        headers = response.headers
        self._finished = True
        if not _has_upgrade_headers(headers):
            return UpgradeRejected(error=upgrade_rejection(
                101, response.reason, headers, b"",
                detail="101 response without Connection: upgrade and Upgrade: spdy/3.1"))
        self.trailing_data = self._upgrade.trailing_data
        protocol = next((value for name, value in headers
                         if name == "x-stream-protocol-version"), "")
        return UpgradeAccepted(transport="spdy", protocol=protocol.strip(), headers=headers)

    def _rejected(self, detail: str = "") -> Event:
        self._finished = True
        return UpgradeRejected(error=self._upgrade.rejection(detail))


class SpdyUpgradeServer:
    """Server role: read an upgrade request, then answer 101 or an error.

    Feed bytes to :meth:`receive_data` until it returns :class:`~kstream.UpgradeRequested`;
    then call :meth:`accept` (start a session with :attr:`trailing_data`), :meth:`refuse`
    (Go's answer to a request that cannot be upgraded), :meth:`negotiation_failure` or
    :meth:`reject`, and send :meth:`data_to_send`.
    """

    def __init__(self, *, supported: Sequence[str] = DEFAULT_SPDY_PROTOCOLS) -> None:
        """Prepare to read one request.

        Args:
            supported: The stream protocols this server speaks, preferred first (Go's
                answer lists them in this order).
        """
        self._upgrade = ServerUpgrade(max_head_size=MAX_HEAD_SIZE)
        self.supported = tuple(supported)
        self._outgoing = bytearray()
        self._headers: Headers = ()
        self._held = 0
        #: The request event, once it is complete.
        self.request: UpgradeRequested | None = None
        self._answered = False
        self._failed = False
        # Whether receive_data was given bytes (then receive_request would drop them).
        self._fed = False
        #: Bytes the client sent after the request: the start of the SPDY session.
        self.trailing_data = b""

    # ------------------------------------------------------------------ input

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed request bytes; ``b""`` means the client closed the connection.

        Bytes fed after the request is complete are kept (at most 64 KiB) and handed to
        the session through :attr:`trailing_data` once accepted.

        Args:
            data: The next bytes from the client.

        Returns:
            ``[]`` until the request is complete, then ``[UpgradeRequested]``;
            ``[ConnectionClosed]`` if the client left before sending anything.

        Raises:
            RemoteProtocolError: Not valid HTTP/1.1, head over 64 KiB, body over 64 KiB, or
                too many bytes sent before the answer. :meth:`reject` may still answer.
            LocalProtocolError: Called after the request was answered.
        """
        if self._answered:
            raise LocalProtocolError("the upgrade was answered; feed the SPDY session instead")
        if self._failed:
            raise RemoteProtocolError("the upgrade request was invalid")
        if self.request is not None:
            self._held += len(data)
            if self._held > MAX_REQUEST_BODY:
                self._failed = True
                raise RemoteProtocolError(f"more than {MAX_REQUEST_BODY} bytes sent before "
                                          "the upgrade was answered")
            self._upgrade.receive_data(data)
            return []
        self._fed = True
        self._upgrade.receive_data(data)
        return self._check_request()

    def receive_request(self, upgrade: ServerUpgrade) -> list[Event]:
        """Take over a request its caller parsed with the upgrade engine.

        The request is checked and reported as if its bytes, and those the engine holds
        after it, had been fed to :meth:`receive_data` (nothing is parsed twice); the
        engine writes the answer.

        Returns:
            As :meth:`receive_data`.

        Raises:
            LocalProtocolError: bytes were already fed to this object.
            RemoteProtocolError: As :meth:`receive_data`.
        """
        if (self._answered or self._failed or self._fed or self.request is not None
                or self._headers):
            raise LocalProtocolError("only a fresh upgrade can take over a parsed request")
        self._upgrade = upgrade
        return self._check_request()

    def _check_request(self) -> list[Event]:
        upgrade = self._upgrade
        if upgrade.request is not None:
            self._headers = upgrade.request.headers
        if upgrade.body_size > MAX_REQUEST_BODY:
            # A body is unusual here; it is read and dropped, within a bound.
            self._failed = True
            raise RemoteProtocolError(f"upgrade request body over {MAX_REQUEST_BODY} bytes")
        if upgrade.error is not None:
            self._failed = True
            raise _map_http_error(upgrade.error)
        if upgrade.complete:
            return [self._requested()]
        if upgrade.closed:
            self._answered = True
            return [ConnectionClosed(clean=True)]
        return []

    def _requested(self) -> UpgradeRequested:
        request = self._upgrade.request
        assert request is not None
        target = request.target
        try:
            path, query = split_target(target)
        except RemoteProtocolError:
            # A target we cannot split is still answered (400 by the caller).
            path, query = target, ()
        self.request = UpgradeRequested(method=request.method, target=target,
                                        path=path, query=query, headers=self._headers,
                                        protocols=split_protocols(self._headers))
        return self.request

    # ------------------------------------------------------------------ answers

    @property
    def has_upgrade_headers(self) -> bool:
        """Whether the request says ``Connection: upgrade`` and ``Upgrade: spdy/3.1``."""
        return _has_upgrade_headers(self._headers)

    @property
    def negotiated_protocol(self) -> str | None:
        """The first protocol the client offered that we support (``Handshake``), or None."""
        if self.request is None:
            return None
        return next((p for p in self.request.protocols if p in self.supported), None)

    def accept(self, protocol: str | None = None,
               headers: Sequence[tuple[str, str]] = ()) -> str:
        """Answer ``101 Switching Protocols``.

        Args:
            protocol: The protocol to announce; None picks :attr:`negotiated_protocol`. An
                explicit one must be among the client's, unless the client offered none
                (a Kubernetes 1.0 client); ``""`` then announces nothing.
            headers: Extra response headers.

        Returns:
            The protocol announced.

        Raises:
            LocalProtocolError: No request is waiting, the request lacks the upgrade
                headers, or no protocol can be chosen (answer with :meth:`refuse`).
        """
        request = self._waiting_request()
        if not self.has_upgrade_headers:
            raise LocalProtocolError("the request lacks Connection: Upgrade / Upgrade: "
                                     "SPDY/3.1; answer with refuse()")
        if protocol is None:
            protocol = self.negotiated_protocol
            if protocol is None:
                raise LocalProtocolError(
                    f"no protocol in common: client {list(request.protocols)}, server "
                    f"{list(self.supported)}; answer with refuse()")
        elif request.protocols and protocol not in request.protocols:
            raise LocalProtocolError(f"the client did not offer {protocol!r}")
        response_headers = [("Connection", "Upgrade"), ("Upgrade", _UPGRADE_TOKEN)]
        if protocol:
            response_headers.append((PROTOCOL_HEADER, protocol))
        response_headers += list(headers)
        try:
            self._outgoing += self._upgrade.switch(response_headers)
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot send the upgrade answer: {exc}") from None
        self.trailing_data = self._upgrade.trailing_data
        self._answered = True
        return protocol

    def refuse(self) -> None:
        """Answer a request :meth:`accept` cannot take, exactly as the kubelet does.

        In Go's order (``Handshake`` first, then ``UpgradeResponse``): no
        X-Stream-Protocol-Version gives 400, no common protocol gives 403
        (:meth:`negotiation_failure`), missing upgrade headers give 400 with
        ``unable to upgrade: missing upgrade headers in request: <Go %#v of the headers>``.

        Raises:
            LocalProtocolError: No request is waiting, or it is acceptable after all.
        """
        request = self._waiting_request()
        protocol = self.negotiated_protocol
        if not request.protocols:
            self._text_error(400, f"unable to upgrade: {PROTOCOL_HEADER} is required")
        elif protocol is None:
            self.negotiation_failure()
        elif not self.has_upgrade_headers:
            # Handshake already added the negotiated protocol header when
            # UpgradeResponse refuses (recorded from Go).
            self._text_error(400, "unable to upgrade: missing upgrade headers in request: "
                             + _go_header_map(self._headers),
                             [(PROTOCOL_HEADER, protocol)])
        else:
            raise LocalProtocolError("the request can be accepted; call accept()")

    def negotiation_failure(self) -> None:
        """Answer 403 as ``httpstream.go`` ``Handshake`` does when no protocol matches.

        One ``X-Accepted-Stream-Protocol-Versions`` header per supported protocol, text
        body ``unable to upgrade: unable to negotiate protocol: client supports [...],
        server accepts [...]``.

        Raises:
            LocalProtocolError: No request is waiting.
        """
        request = self._waiting_request()
        message = ("unable to upgrade: unable to negotiate protocol: client supports "
                   f"{_go_list(request.protocols)}, server accepts {_go_list(self.supported)}")
        self._text_error(403, message, [(ACCEPTED_PROTOCOLS_HEADER, protocol)
                                        for protocol in self.supported])

    def reject(self, status_code: int, *, message: str = "", body: bytes | None = None,
               headers: Sequence[tuple[str, str]] = ()) -> None:
        """Answer with an HTTP error instead of upgrading.

        Also usable after :meth:`receive_data` raised RemoteProtocolError (answer 400).

        Args:
            status_code: 400..599 (or any non-1xx status with an explicit ``body``).
            message: With no ``body``: the ``message`` of the ``metav1.Status`` body, as the
                apiserver writes it.
            body: An explicit body; ``Content-Type: text/plain; charset=utf-8`` unless
                ``headers`` gives one.
            headers: Extra response headers.

        Raises:
            LocalProtocolError: Already answered, or an invalid status or header.
        """
        if self._answered:
            raise LocalProtocolError("the upgrade was already answered")
        if self.request is None and not self._failed:
            raise LocalProtocolError("no upgrade request to answer yet")
        extra = list(headers)
        if body is None:
            status_headers, body = status_response(status_code, message)
            response_headers = [*status_headers, *extra]
        else:
            response_headers = [("Content-Length", str(len(body))), *extra]
            if not any(name.lower() == "content-type" for name, _ in extra):
                response_headers.insert(0, ("Content-Type", "text/plain; charset=utf-8"))
        self._respond(status_code, response_headers, body)

    def data_to_send(self) -> bytes:
        """Return the queued response bytes and clear the queue."""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    # ------------------------------------------------------------------ machinery

    def _waiting_request(self) -> UpgradeRequested:
        if self._answered:
            raise LocalProtocolError("the upgrade was already answered")
        if self.request is None:
            raise LocalProtocolError("no complete upgrade request yet")
        return self.request

    def _text_error(self, status_code: int, message: str,
                    headers: Sequence[tuple[str, str]] = ()) -> None:
        # net/http Error: text/plain, nosniff, the message and a newline; net/http writes
        # header names sorted, then Content-Length.
        body = (message + "\n").encode()
        named = [("Content-Type", "text/plain; charset=utf-8"),
                 ("X-Content-Type-Options", "nosniff"), *headers]
        named.sort(key=lambda header: header[0])
        self._respond(status_code, [*named, ("Content-Length", str(len(body)))], body)

    def _respond(self, status_code: int, headers: list[tuple[str, str]], body: bytes) -> None:
        if status_code < 200:
            raise LocalProtocolError(f"cannot reject with status {status_code}")
        try:
            self._outgoing += self._upgrade.respond(
                status_code, headers, body, reason=reason_phrase(status_code).encode("ascii"),
                empty_data=True)
        except LocalProtocolError as exc:
            raise LocalProtocolError(f"cannot send the upgrade answer: {exc}") from None
        self._answered = True
