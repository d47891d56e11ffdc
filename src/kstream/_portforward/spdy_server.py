"""The server role of SPDY port-forward, with the kubelet's rules:
:class:`SpdyPortForwardServer` (``spdy.py`` has the overview)."""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import LocalProtocolError, UpgradeRejectedError
from .._events import (
    Event,
    UpgradeAccepted,
    UpgradeRequested,
)
from .._spdy.events import (
    StreamData,
    StreamOpened,
    StreamReplied,
)
from .._spdy.frames import RstStatus
from .._spdy.session import SpdySession
from .._spdy.upgrade import SpdyUpgradeServer
from .._upgrade import ServerUpgrade
from .events import (
    ForwardClosed,
    ForwardData,
    ForwardEnded,
    ForwardRequested,
    ForwardReset,
)
from .handshake import SPDY_PORT_FORWARD_PROTOCOL, pair_timeout_text
from .session import PAIR_TIMEOUT
from .spdy_streams import (
    _REPLYABLE,
    _REQUEST_ID,
    MAX_EARLY_DATA,
    MAX_PENDING_PAIRS,
    Buffer,
    _header,
    _Kind,
    _parse_stream_headers,
    _PortForwardSession,
    _Request,
    _State,
)

__all__ = ["SpdyPortForwardServer"]


class SpdyPortForwardServer(_PortForwardSession):
    """Server role of port-forward over SPDY, with the kubelet's rules.

    Streams are checked as they arrive (``httpStreamReceived``): a missing or invalid
    ``port`` (not a uint16 above 0) or ``streamtype`` (not ``error`` / ``data``) gets
    RST_STREAM CANCEL and no reply; valid ones are replied to at once. Pairs are keyed
    by ``requestid`` (absent: the error stream's id, or the data stream's id minus 2). A
    complete pair is :class:`ForwardRequested`. A second stream of one type gets
    ``error processing stream for request N: data stream already assigned`` on the pair's
    error stream and is reset. A pair still incomplete ``pair_timeout`` seconds after the
    :meth:`expire` call that first saw it gets :func:`pair_timeout_text` on its error
    stream (call :meth:`expire` after every :meth:`receive_data`, and at
    :meth:`next_deadline`).

    Attributes:
        request: the upgrade request, once complete.
    """

    def __init__(self, *, supported: Sequence[str] = (SPDY_PORT_FORWARD_PROTOCOL,),
                 pair_timeout: float = PAIR_TIMEOUT) -> None:
        """Wait for the upgrade request.

        Args:
            supported: the stream protocols accepted.
            pair_timeout: seconds a request's pair has to complete.
        """
        super().__init__()
        self._upgrade: SpdyUpgradeServer | None = SpdyUpgradeServer(supported=tuple(supported))
        self._pair_timeout = pair_timeout
        self._pairs: dict[str, _Request] = {}   # pairs not complete yet, by key
        self._early_bytes = 0
        self._early_eof = False
        self.request: UpgradeRequested | None = None

    @classmethod
    def upgraded(cls, *, protocol: str = SPDY_PORT_FORWARD_PROTOCOL,
                 pair_timeout: float = PAIR_TIMEOUT) -> SpdyPortForwardServer:
        """A server whose SPDY session runs at once (the tunnel's inner session).

        Args:
            protocol: the protocol to report as :attr:`protocol`.
            pair_timeout: as the constructor's.
        """
        server = cls(pair_timeout=pair_timeout)
        server._upgrade = None
        server._start(SpdySession(client=False, join_data=True), protocol)
        return server

    # ------------------------------------------------------------------ the request

    def _upgrade_data_to_send(self) -> bytes:
        return b"" if self._upgrade is None else self._upgrade.data_to_send()

    def receive_request(self, upgrade: ServerUpgrade) -> list[Event]:
        """Take over a request its caller parsed with the upgrade engine.

        Returns:
            ``[UpgradeRequested]`` once the request is complete, ``[ConnectionClosed]`` if
            the client left without one, else ``[]``.

        Raises:
            LocalProtocolError: this server is not fresh.
            RemoteProtocolError: the request is invalid (answer with :meth:`reject`).
        """
        if self._state is not _State.UPGRADING or self._upgrade is None:
            raise LocalProtocolError("only a fresh server can take over a parsed request")
        return self._on_upgrade_events(self._upgrade.receive_request(upgrade))

    def _on_upgrade_events(self, events: list[Event]) -> list[Event]:
        for event in events:
            if isinstance(event, UpgradeRequested):
                self.request = event
                self._state = _State.DECIDING
            else:  # SpdyUpgradeServer reports nothing but these two events
                self._state = _State.CLOSED
        return events

    def _receive(self, data: Buffer) -> list[Event]:
        if self._state is _State.UPGRADING:
            assert self._upgrade is not None
            return self._on_upgrade_events(self._upgrade.receive_data(data))
        if self._state is _State.DECIDING:
            # Held by the upgrade (bounded) and handed to the session by accept().
            assert self._upgrade is not None
            if data:
                self._upgrade.receive_data(data)
            else:
                self._early_eof = True
            return []
        return self._feed(data)

    def accept(self, now: float) -> list[Event]:
        """Answer ``101`` with ``X-Stream-Protocol-Version: portforward.k8s.io``.

        Args:
            now: the caller's clock (pair deadlines are measured on it).

        Returns:
            ``UpgradeAccepted``, then the events of bytes the client sent early.

        Raises:
            LocalProtocolError: no request is waiting for an answer.
            UpgradeRejectedError: the request names no protocol this server speaks, or
                lacks the upgrade headers: the kubelet's 400/403 answer is queued.
        """
        if self._state is not _State.DECIDING:
            raise LocalProtocolError(f"no upgrade request to accept (state {self._state.value})")
        upgrade = self._upgrade
        assert upgrade is not None
        if not upgrade.has_upgrade_headers or upgrade.negotiated_protocol is None:
            # httpstream.go Handshake, then UpgradeResponse: 400 without a protocol
            # header or without the upgrade headers, 403 when no protocol matches.
            assert self.request is not None
            status = 403 if self.request.protocols and upgrade.has_upgrade_headers \
                and upgrade.negotiated_protocol is None else 400
            upgrade.refuse()
            self._state = _State.REJECTED
            raise UpgradeRejectedError(status, detail="the request cannot be upgraded to "
                                                      f"{SPDY_PORT_FORWARD_PROTOCOL}")
        protocol = upgrade.accept()
        self._handover = upgrade.data_to_send()
        self._start(SpdySession(client=False, join_data=True), protocol)
        events: list[Event] = [UpgradeAccepted(transport=self.transport, protocol=protocol)]
        early = upgrade.trailing_data
        if early:
            events += self._feed(early)
        if self._early_eof:
            events += self._feed(b"")
        events += self.expire(now)
        return events

    def reject(self, status_code: int, message: str = "") -> None:
        """Answer with an HTTP error whose body is a ``metav1.Status`` with ``message``.

        Raises:
            LocalProtocolError: no request is waiting for an answer.
        """
        if self._state is not _State.DECIDING or self._upgrade is None:
            raise LocalProtocolError(f"no upgrade request to reject (state {self._state.value})")
        self._upgrade.reject(status_code, message=message)
        self._state = _State.REJECTED

    # ------------------------------------------------------------------ streams

    def _on_replied(self, event: StreamReplied, events: list[Event]) -> None:
        # A server opens no stream, and the session fails on a SYN_REPLY for a stream it
        # never opened: never reached.
        del event, events  # pragma: no cover

    def _on_opened(self, event: StreamOpened, events: list[Event]) -> None:
        session = self._session
        assert session is not None
        stream_id = event.stream_id
        parsed = _parse_stream_headers(event.headers)
        if parsed is None or session.stream_state(stream_id) not in _REPLYABLE:
            # Refused (httpStreamReceived returned an error: RST CANCEL, no reply), or
            # already reset in the same batch of frames.
            self._abort(stream_id)
            return
        stream_type, port = parsed
        kind = _Kind.DATA if stream_type == "data" else _Kind.ERROR
        key = _header(event.headers, _REQUEST_ID)
        if not key:
            # An old client without requestID (httpstream.go requestID()).
            key = str(stream_id if kind is _Kind.ERROR else stream_id - 2)
        pair = self._pairs.get(key)
        if pair is None:
            if len(self._pairs) >= MAX_PENDING_PAIRS:
                # Bounded: a client that opens and resets lone streams would otherwise
                # grow the table for 30 s at a time (streams it reset no longer count
                # against the session's concurrent-stream limit).
                session.reset_stream(stream_id, RstStatus.REFUSED_STREAM)
                return
            pair = self._pairs[key] = _Request(-1, port, key=key)
        session.reply(stream_id)
        if (pair.data_id if kind is _Kind.DATA else pair.error_id):
            # p.add: "<type> stream already assigned", printed on the pair's error stream.
            self._print_error(pair, f"error processing stream for request {key}: "
                                    f"{kind.value} stream already assigned")
            self._abort(stream_id)
            return
        self._register(pair, stream_id, kind)
        if kind is _Kind.DATA:
            pair.port = port  # the kubelet forwards to the data stream's port
        if pair.data_id and pair.error_id:
            self._complete(pair, events)

    def _complete(self, pair: _Request, events: list[Event]) -> None:
        del self._pairs[pair.key]
        pair.request_id = self._next_request_id
        self._next_request_id += 1
        self._requests[pair.request_id] = pair
        pair.deadline = None
        events.append(ForwardRequested(request_id=pair.request_id, port=pair.port))
        if pair.early:
            self._early_bytes -= len(pair.early)
            events.append(ForwardData(request_id=pair.request_id, data=bytes(pair.early)))
            pair.early = bytearray()
        if pair.early_end is not None:
            self._on_data_end(pair, pair.early_end or None, events)

    def _print_error(self, pair: _Request, text: str) -> None:
        if pair.error_id:
            self._send_chunks(pair.error_id, text.encode())

    def _on_data(self, event: StreamData, events: list[Event]) -> None:
        entry = self._streams.get(event.stream_id)
        if entry is None or entry[1] is _Kind.ERROR:
            return  # the client writes nothing on the error stream
        request = entry[0]
        if request.request_id >= 0:
            events.append(ForwardData(request_id=request.request_id, data=event.data))
            return
        if self._early_bytes + len(event.data) > MAX_EARLY_DATA:
            # Bounded: the pair is dropped (the kubelet would block its reader instead).
            self._drop_pair(request)
            return
        request.early += event.data
        self._early_bytes += len(event.data)

    def _on_end(self, stream_id: int, reset: int | None, events: list[Event]) -> None:
        entry = self._streams.get(stream_id)
        if entry is None:
            return
        request, kind = entry
        if kind is _Kind.ERROR:
            if reset is not None:
                request.error_done = True  # nothing can be printed on it any more
            return
        if request.request_id < 0:
            request.early_end = 0 if reset is None else reset
            return
        self._on_data_end(request, reset, events)

    def _on_data_end(self, request: _Request, reset: int | None, events: list[Event]) -> None:
        request.remote_done = True
        if reset is None:
            events.append(ForwardEnded(request_id=request.request_id))
        else:
            events.append(ForwardReset(request_id=request.request_id))
        if request.local_done:
            self._forget(request)
            events.append(ForwardClosed(request_id=request.request_id))

    def _drop_pair(self, pair: _Request) -> None:
        self._early_bytes -= len(pair.early)
        self._pairs.pop(pair.key, None)
        self._abort(pair.data_id)
        self._abort(pair.error_id)
        self._streams.pop(pair.data_id, None)
        self._streams.pop(pair.error_id, None)

    # ------------------------------------------------------------------ actions

    def send(self, request_id: int, data: Buffer) -> None:
        """Queue bytes from the pod on the data stream (DATA frames of at most 32 KiB).

        Dropped when the request is over or the client reset the stream.

        Raises:
            LocalProtocolError: no such request, or it was ended.
        """
        request = self._live(request_id, "send")
        if request is None or not data:
            return
        if request.local_done:
            raise LocalProtocolError(f"request {request_id} was ended")
        self._send_chunks(request.data_id, data)

    def end(self, request_id: int) -> None:
        """The pod side ended: FIN on the data and error streams (the kubelet's deferred
        ``Close`` of both). Again, or for a request that is over: nothing.

        When the client had already ended the data stream, the request is over: it is
        forgotten now and no :class:`ForwardClosed` follows.

        Raises:
            LocalProtocolError: no such request.
        """
        request = self._live(request_id, "end")
        if request is None or request.local_done:
            return
        request.local_done = True
        # The kubelet's defers run error first, then data.
        self._finish(request.error_id)
        self._finish(request.data_id)
        if request.remote_done:
            self._forget(request)

    def fail(self, request_id: int, message: str) -> None:
        """Write ``message`` on the error stream, then :meth:`end` (the kubelet's answer
        when ``PortForward`` fails, e.g. the pod port refuses the connection; build the
        text with :func:`~kstream._portforward.handshake.forward_error_text`).

        Raises:
            LocalProtocolError: no such request, or it was ended.
        """
        request = self._live(request_id, "fail")
        if request is None:
            return
        if request.local_done:
            raise LocalProtocolError(f"request {request_id} was ended")
        self._print_error(request, message)
        self.end(request_id)

    def reset(self, request_id: int) -> None:
        """Abort the request: RST_STREAM CANCEL on both streams (the kubelet's answer to
        EPIPE/ECONNRESET from the pod). Forgotten at once; no further event.

        Raises:
            LocalProtocolError: no such request.
        """
        request = self._live(request_id, "reset")
        if request is None:
            return
        self._cancel(request)

    def expire(self, now: float) -> list[Event]:
        """Start the clock of pairs seen since the last call, and time out the old ones.

        A pair incomplete for ``pair_timeout`` seconds gets the kubelet's text on its
        error stream (then FIN), its lone data stream is reset, and it is dropped.

        Args:
            now: the caller's clock.

        Returns:
            ``[]`` (a timed-out pair was never reported).
        """
        if self._state is not _State.OPEN:
            self._pairs.clear()
            return []
        for pair in list(self._pairs.values()):
            if pair.deadline is None:
                pair.deadline = now + self._pair_timeout
            elif now >= pair.deadline:
                # monitorStreamPair: the text on the error stream, if it came; then the
                # pair is forgotten (kstream also ends its streams, so nothing lingers).
                self._print_error(pair, pair_timeout_text(id(self), pair.key))
                self._finish(pair.error_id)
                self._streams.pop(pair.error_id, None)
                pair.error_id = 0  # ended above: _drop_pair must not reset it
                self._drop_pair(pair)
        return []

    def next_deadline(self) -> float | None:
        """The earliest pair deadline, or None when no pair waits."""
        if self._state is not _State.OPEN:
            return None
        deadlines = [pair.deadline for pair in self._pairs.values() if pair.deadline is not None]
        return min(deadlines, default=None)

    def close(self) -> None:
        """As :meth:`_PortForwardSession.close`; incomplete pairs are dropped too."""
        super().close()
        self._pairs.clear()
        self._early_bytes = 0
