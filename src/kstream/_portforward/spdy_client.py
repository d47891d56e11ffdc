"""The client role of SPDY port-forward: :class:`SpdyPortForwardClient` (``spdy.py`` has
the overview)."""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import LocalProtocolError, UpgradeRejectedError
from .._events import (
    Event,
    UpgradeAccepted,
    UpgradeRejected,
)
from .._spdy.events import (
    StreamData,
    StreamOpened,
    StreamReplied,
)
from .._spdy.frames import RstStatus
from .._spdy.session import SpdySession
from .._spdy.state import StreamState
from .._spdy.upgrade import SpdyUpgradeClient
from .events import (
    ForwardClosed,
    ForwardData,
    ForwardEnded,
    ForwardReady,
    ForwardReset,
)
from .handshake import SPDY_PORT_FORWARD_PROTOCOL, check_port
from .session import MAX_ERROR_TEXT
from .spdy_streams import (
    _PORT,
    _REQUEST_ID,
    _STREAM_TYPE,
    DEFAULT_MAX_PENDING_BYTES,
    Buffer,
    _Kind,
    _PortForwardSession,
    _Request,
    _State,
)

__all__ = ["SpdyPortForwardClient"]


class SpdyPortForwardClient(_PortForwardSession):
    """Client role of port-forward over SPDY (what kubectl <= 1.30 speaks).

    The constructor queues ``POST <target>`` with ``Upgrade: SPDY/3.1`` and
    ``X-Stream-Protocol-Version: portforward.k8s.io``. After the 101, which must name
    exactly ``portforward.k8s.io`` (else :class:`~kstream.UpgradeRejected`, as client-go's
    ``unable to negotiate protocol``), :meth:`open` creates a request's error stream and
    data stream at once (client-go waits for each reply in turn; kubelets accept either).
    The error stream is half-closed once replied to, as client-go does.
    :class:`ForwardReady` follows when both streams are replied to.
    """

    def __init__(self, *, host: str, target: str, headers: Sequence[tuple[str, str]] = (),
                 max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES) -> None:
        """Queue the upgrade request.

        Args:
            host: the ``Host`` header.
            target: the request target
                (:func:`~kstream._portforward.handshake.portforward_target`).
            headers: extra request headers (``Authorization``, ``User-Agent``).
            max_pending_bytes: bytes held, over all requests, for data streams not
                replied to yet; :meth:`send` raises past it.

        Raises:
            LocalProtocolError: a header or the target is not valid HTTP.
        """
        super().__init__()
        self._max_pending_bytes = max_pending_bytes
        self._pending_bytes = 0
        self._upgrade: SpdyUpgradeClient | None = SpdyUpgradeClient(
            host=host, target=target, protocols=(SPDY_PORT_FORWARD_PROTOCOL,),
            headers=tuple(headers), method="POST")

    @classmethod
    def upgraded(cls, *, protocol: str = SPDY_PORT_FORWARD_PROTOCOL,
                 max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES) -> SpdyPortForwardClient:
        """A client whose SPDY session runs at once, on a connection someone else upgraded
        (the tunnel's WebSocket). No upgrade event is reported.

        Args:
            protocol: the protocol to report as :attr:`protocol`.
            max_pending_bytes: as the constructor's.
        """
        client = cls.__new__(cls)
        _PortForwardSession.__init__(client)
        client._max_pending_bytes = max_pending_bytes
        client._pending_bytes = 0
        client._upgrade = None
        client._start(SpdySession(client=True, join_data=True), protocol)
        return client

    # ------------------------------------------------------------------ input

    def _upgrade_data_to_send(self) -> bytes:
        return b"" if self._upgrade is None else self._upgrade.data_to_send()

    def _receive(self, data: Buffer) -> list[Event]:
        if self._state is _State.UPGRADING:
            assert self._upgrade is not None
            events: list[Event] = []
            for event in self._upgrade.receive_data(data):
                if isinstance(event, UpgradeAccepted):
                    events += self._on_switched(event)
                else:  # SpdyUpgradeClient reports nothing but these two events
                    self._state = _State.REJECTED
                    events.append(event)
            return events
        return self._feed(data)

    def _on_switched(self, event: UpgradeAccepted) -> list[Event]:
        assert self._upgrade is not None
        if event.protocol != SPDY_PORT_FORWARD_PROTOCOL:
            # client-go portforward.go: the negotiated protocol must be exactly this one.
            self._state = _State.REJECTED
            detail = (f'unable to negotiate protocol: client supports '
                      f'"{SPDY_PORT_FORWARD_PROTOCOL}", server returned "{event.protocol}"')
            return [UpgradeRejected(error=UpgradeRejectedError(
                101, reason="Switching Protocols", headers=event.headers, detail=detail))]
        self._handover = self._upgrade.data_to_send()
        self._start(SpdySession(client=True, join_data=True), event.protocol)
        trailing = self._upgrade.trailing_data
        accepted = UpgradeAccepted(transport=self.transport, protocol=event.protocol,
                                   headers=event.headers)
        return [accepted, *(self._feed(trailing) if trailing else [])]

    def _on_replied(self, event: StreamReplied, events: list[Event]) -> None:
        entry = self._streams.get(event.stream_id)
        if entry is None:
            # Defensive: a request is forgotten only once its streams are reset or ended
            # by the server, and the session reports no reply for such a stream.
            return  # pragma: no cover
        request, kind = entry
        if kind is _Kind.ERROR:
            request.error_replied = True
            # client-go: "we're not writing to this stream" (errorStream.Close()).
            self._finish(request.error_id)
        else:
            request.data_replied = True
            pending, request.pending = request.pending, bytearray()
            self._pending_bytes -= len(pending)
            if pending:
                self._send_chunks(request.data_id, pending)
            if request.local_done:
                self._finish(request.data_id)
        if request.data_replied and request.error_replied and not request.remote_done:
            events.append(ForwardReady(request_id=request.request_id))

    def _on_opened(self, event: StreamOpened, events: list[Event]) -> None:
        # Port-forward servers never open streams; refusing one costs the server nothing.
        assert self._session is not None
        if self._session.stream_state(event.stream_id) is not StreamState.CLOSED:
            self._session.reset_stream(event.stream_id, RstStatus.REFUSED_STREAM)

    def _on_data(self, event: StreamData, events: list[Event]) -> None:
        entry = self._streams.get(event.stream_id)
        if entry is None:
            # Defensive, as in _on_replied: the session drops DATA for closed streams.
            return  # pragma: no cover
        request, kind = entry
        if kind is _Kind.DATA:
            events.append(ForwardData(request_id=request.request_id, data=event.data))
        else:
            room = MAX_ERROR_TEXT - len(request.error_text)
            request.error_text += event.data[:room]

    def _on_end(self, stream_id: int, reset: int | None, events: list[Event]) -> None:
        entry = self._streams.get(stream_id)
        if entry is None:
            return
        request, kind = entry
        if kind is _Kind.ERROR:
            request.error_done = True
            self._report_error_text(request, events)
        else:
            request.remote_done = True
            if reset is None:
                events.append(ForwardEnded(request_id=request.request_id))
            else:
                # A reset stream carries nothing either way: our half is over too.
                events.append(ForwardReset(request_id=request.request_id))
                request.local_done = True
                self._pending_bytes -= len(request.pending)
                request.pending = bytearray()
        if request.local_done and request.remote_done and request.error_done:
            self._forget(request)
            events.append(ForwardClosed(request_id=request.request_id))

    # ------------------------------------------------------------------ actions

    def open(self, port: int) -> int:
        """Open the error and data streams of a new request to ``port``.

        Returns:
            The request id (the ``requestid`` header sent).

        Raises:
            LocalProtocolError: the session is not open (before the 101, after GOAWAY
                either way: open a new session), or the port is not in 1..65535.
        """
        session = self._running("open a connection")
        check_port(port)
        request_id = self._next_request_id
        headers = [(_STREAM_TYPE, "error"), (_PORT, str(port)), (_REQUEST_ID, str(request_id))]
        error_id = session.open_stream(headers)
        headers[0] = (_STREAM_TYPE, "data")
        data_id = session.open_stream(headers)
        self._next_request_id += 1
        request = _Request(request_id, port)
        self._register(request, error_id, _Kind.ERROR)
        self._register(request, data_id, _Kind.DATA)
        self._requests[request_id] = request
        return request_id

    def send(self, request_id: int, data: Buffer) -> None:
        """Queue bytes for the pod on the data stream (DATA frames of at most 32 KiB).

        Before the server replied to the data stream they are held (at most
        ``max_pending_bytes`` over all requests). Bytes for a request that is over, or
        whose stream the server reset, are dropped.

        Raises:
            LocalProtocolError: no such request, :meth:`end` was called, or the held bytes
                would exceed ``max_pending_bytes`` (wait for :class:`ForwardReady`).
        """
        request = self._live(request_id, "send")
        if request is None or not data:
            return
        if request.local_done:
            if request.remote_done:
                return  # reset by the server: dropped
            raise LocalProtocolError(f"request {request_id} was ended with end()")
        if request.data_replied:
            self._send_chunks(request.data_id, data)
            return
        if self._pending_bytes + len(data) > self._max_pending_bytes:
            raise LocalProtocolError(
                f"more than {self._max_pending_bytes} bytes held for streams the server has "
                "not replied to; wait for ForwardReady")
        request.pending += data
        self._pending_bytes += len(data)

    def end(self, request_id: int) -> None:
        """Half-close the request: FIN on the data stream (sent with the reply if the
        server has not replied yet). Again, or for a request that is over: nothing.

        When the server had already ended both its streams, the request is over: it is
        forgotten now, and no :class:`ForwardClosed` follows.

        Raises:
            LocalProtocolError: no such request.
        """
        request = self._live(request_id, "end")
        if request is None or request.local_done:
            return
        request.local_done = True
        if request.data_replied:
            self._finish(request.data_id)
        if request.remote_done and request.error_done:
            self._forget(request)

    def reset(self, request_id: int) -> None:
        """Abort the request: RST_STREAM CANCEL on both streams; it is forgotten at once
        (no further event). For a request that is over: nothing.

        Raises:
            LocalProtocolError: no such request.
        """
        request = self._live(request_id, "reset")
        if request is None:
            return
        self._pending_bytes -= len(request.pending)
        self._cancel(request)
