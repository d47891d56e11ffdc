"""The server role of exec/attach over SPDY/3.1, sans-IO: :class:`SpdyExecServer`.

The shared connection core, the protocol versions and the stream life are in
``_exec/spdy.py``; the client role is in ``_exec/spdy_client.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .._channels import ERROR, RESIZE, STDERR, STDIN, STDOUT
from .._errors import LocalProtocolError, RemoteProtocolError
from .._events import ConnectionClosed, Event, UpgradeRequested
from .._spdy.events import StreamOpened
from .._spdy.frames import RstStatus
from .._spdy.session import SpdySession, StreamClosedError
from .._spdy.state import StreamState
from .._spdy.upgrade import DEFAULT_SPDY_PROTOCOLS, SpdyUpgradeServer
from .._status import Status, exit_status_bytes
from .._upgrade import ServerUpgrade
from .spdy import (
    _CHANNEL_BY_STREAM_TYPE,
    STREAM_TYPE_HEADER,
    ExecReady,
    _channel_name,
    _ExecConnection,
    _State,
    _Stream,
    expected_channels,
    protocol_version,
)

__all__ = ["SpdyExecServer"]

# Stream states in which the session lets us send a SYN_REPLY.
_REPLYABLE_STATES: Final = frozenset({StreamState.UNREPLIED,
                                      StreamState.UNREPLIED_REMOTE_CLOSED})


def _stream_type(headers: Sequence[tuple[str, str]]) -> str:
    for name, value in headers:
        if name == STREAM_TYPE_HEADER:
            return value
    return ""


class SpdyExecServer(_ExecConnection):
    """Server role of exec/attach over SPDY, as a kubelet / CRI streaming server.

    Feed the request bytes; :class:`~kstream.UpgradeRequested` comes first. Answer with
    :meth:`accept` (stating what the request asked for) or :meth:`reject`. Streams are
    then accepted in any order and replied to at once; :class:`ExecReady` is reported when
    the expected set is complete (start the process then). Streams of unknown types are
    replied to and ignored, as upstream; streams of a known type that the exec does not
    expect, or a second one of a type, are refused with RST_STREAM REFUSED_STREAM
    (upstream would count them and could start the exec early).

    v1 (``channel.k8s.io``): upstream servers half-close their side of stdin and reset the
    error stream as soon as every stream arrived (a misplaced ``defer`` kept since
    Kubernetes 1.0, ``httpstream.go`` ``v1ProtocolHandler.waitForStreams``), so a v1 client
    never learns about a failure. This server does the harmless half (FIN on stdin, which
    only says the server writes nothing there) but keeps the error stream, so
    :meth:`send_status` can still report a failure as plain text.

    Attributes:
        request: the :class:`~kstream.UpgradeRequested` event, once the request arrived.
        protocol: the negotiated stream protocol ("" when the client offered none: v1).
        version: the remotecommand version, 1..4 (0 before accept()).
        ready: :class:`ExecReady` was reported.
    """

    _INCOMING = frozenset({STDIN, RESIZE})

    def __init__(self, *, supported: Sequence[str] = DEFAULT_SPDY_PROTOCOLS,
                 stream_creation_timeout: float = 30.0) -> None:
        """Wait for the upgrade request.

        Args:
            supported: the versions this server accepts, in its order.
            stream_creation_timeout: seconds after accept() within which every stream must
                exist (``DefaultStreamCreationTimeout``); see :meth:`check_deadline`.
        """
        super().__init__()
        self._upgrade = SpdyUpgradeServer(supported=tuple(supported))
        self._stream_creation_timeout = stream_creation_timeout
        self._early_eof = False
        self._deadline = 0.0
        #: The upgrade request, once it arrived.
        self.request: UpgradeRequested | None = None
        self._status_sent = False
        self._finished = False

    # ------------------------------------------------------------------ input

    def receive_request(self, upgrade: ServerUpgrade) -> list[Event]:
        """Take over a request its caller parsed with the upgrade engine (:mod:`kstream._upgrade`).

        Reports what :meth:`receive_data` would have for the request's bytes and those the
        engine holds after it (:class:`~kstream.UpgradeRequested` once complete), without
        parsing anything again.

        Raises:
            LocalProtocolError: bytes were already fed to this connection.
            RemoteProtocolError: as :meth:`receive_data`.
        """
        if self._state is not _State.UPGRADING or self._error is not None:
            raise LocalProtocolError("only a fresh server can take over a parsed request")
        try:
            return self._on_upgrade_events(self._upgrade.receive_request(upgrade))
        except RemoteProtocolError as error:
            self._error = error
            raise

    def _on_upgrade_events(self, events: list[Event]) -> list[Event]:
        for event in events:
            if isinstance(event, UpgradeRequested):
                self.request = event
                self._state = _State.DECIDING
            # SpdyUpgradeServer reports nothing but these two events.
            elif isinstance(event, ConnectionClosed):  # pragma: no branch
                self._state = _State.CLOSED  # the client left without a request
        return list(events)

    def _receive(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if self._state is _State.UPGRADING:
            return self._on_upgrade_events(self._upgrade.receive_data(data))
        if self._state is _State.DECIDING:
            # A client-go client writes nothing before the 101; anything else is held by
            # the upgrade (within its 64 KiB bound) and handed to the session by accept().
            if data:
                self._upgrade.receive_data(data)
            else:
                self._early_eof = True
            return []
        if self._state is _State.REJECTED:
            return []
        return self._feed(data)

    def _on_opened(self, event: StreamOpened, events: list[Event]) -> None:
        assert self._session is not None
        channel = _CHANNEL_BY_STREAM_TYPE.get(_stream_type(event.headers))
        if channel is not None and (channel not in self._expected
                                    or channel in self._by_channel):
            self._session.reset_stream(event.stream_id, RstStatus.REFUSED_STREAM)
            return
        # Reply at once with an empty header block (spdy/connection.go newSpdyStream);
        # unknown types too (httpstream.go logs "unexpected stream type" and replies).
        # A unidirectional stream needs no reply: our side of it is born closed. A FIN on
        # the SYN_STREAM arrives as its own StreamEnded event right after this one.
        stream = self._register(event.stream_id, channel)
        stream.replied = True
        if event.unidirectional:
            stream.fin_sent = True
        elif self._session.stream_state(event.stream_id) in _REPLYABLE_STATES:
            self._session.reply(event.stream_id)
        # else: reset in the same batch; the StreamReset event that follows ends it.
        if channel is not None and not self.ready and len(self._by_channel) == len(
                self._expected):
            self._become_ready(events)

    def _become_ready(self, events: list[Event]) -> None:
        self.ready = True
        events.append(ExecReady())
        stdin = self._by_channel.get(STDIN)
        if self.version == 1 and stdin is not None and not stdin.fin_sent \
                and self._can_send(stdin):
            # v1 quirk kept from upstream (see the class docstring): FIN our side of stdin.
            assert self._session is not None
            stdin.fin_sent = True
            self._session.end_stream(stdin.stream_id)

    # ------------------------------------------------------------------ decision

    def _upgrade_data_to_send(self) -> bytes:
        return self._upgrade.data_to_send()

    def accept(self, *, stdin: bool, stdout: bool, stderr: bool, tty: bool, now: float,
               protocol: str | None = None) -> list[Event]:
        """Answer the upgrade with ``101`` and start the SPDY session.

        Args:
            stdin: the request asked for stdin (query ``stdin`` / ``input``).
            stdout: the request asked for stdout.
            stderr: the request asked for stderr; dropped with ``tty`` (the kubelet logs
                "bypassing stderr": a terminal merges it into stdout).
            tty: the request asked for a terminal (a resize stream is expected on v3+).
            now: the caller's clock; the stream-creation deadline starts here.
            protocol: the version to answer with; ``None`` picks the first one the client
                offered that this server supports (``httpstream.Handshake``).

        Returns:
            Events produced by bytes the client sent before the ``101`` (normally none).

        Raises:
            LocalProtocolError: no upgrade request is waiting for an answer, or none of
                stdin, stdout, stderr was requested (reject with 400 instead).
        """
        if self._state is not _State.DECIDING:
            raise LocalProtocolError(f"no upgrade request to accept (state {self._state.value})")
        if not (stdin or stdout or stderr):
            raise LocalProtocolError("an exec needs at least one of stdin, stdout, stderr; "
                                     "reject the request with 400")
        self.protocol = self._upgrade.accept(protocol=protocol)
        self._handover = self._upgrade.data_to_send()
        self.version = protocol_version(self.protocol)
        self._expected = expected_channels(self.version, stdin=stdin, stdout=stdout,
                                           stderr=stderr, tty=tty)
        self._deadline = now + self._stream_creation_timeout
        self._session = SpdySession(client=False)
        self._state = _State.OPEN
        early = self._upgrade.trailing_data
        events = self._feed(early) if early else []
        if self._early_eof:
            events.extend(self._feed(b""))
        return events

    @property
    def acceptable(self) -> bool:
        """Whether :meth:`accept` can take the request waiting for an answer.

        False when the request lacks ``Connection: Upgrade`` / ``Upgrade: SPDY/3.1`` or
        offers no protocol this server supports: answer with :meth:`refuse` then.
        """
        return (self._state is _State.DECIDING and self._upgrade.has_upgrade_headers
                and self._upgrade.negotiated_protocol is not None)

    def refuse(self) -> None:
        """Answer a request :meth:`accept` cannot take, exactly as a kubelet does.

        400 without ``X-Stream-Protocol-Version`` or without the upgrade headers, 403 with
        the accepted versions when no protocol matches (``httpstream.go`` ``Handshake``).

        Raises:
            LocalProtocolError: no request is waiting, or it is acceptable after all.
        """
        if self._state is not _State.DECIDING:
            raise LocalProtocolError(f"no upgrade request to refuse (state {self._state.value})")
        self._upgrade.refuse()
        self._state = _State.REJECTED

    def reject(self, status_code: int, *, message: str = "", body: bytes | None = None,
               headers: Sequence[tuple[str, str]] = ()) -> None:
        """Refuse the upgrade with an HTTP error (a ``metav1.Status`` body by default).

        Args:
            status_code: the HTTP status (400, 401, 403, 404, ...).
            message: the Status message, when ``body`` is not given.
            body: an explicit response body.
            headers: extra response headers.

        Also usable after :meth:`receive_data` raised on a malformed request (answer 400).

        Raises:
            LocalProtocolError: no upgrade request is waiting for an answer.
        """
        broken_request = self._state is _State.UPGRADING and self._error is not None
        if self._state is not _State.DECIDING and not broken_request:
            raise LocalProtocolError(f"no upgrade request to reject (state {self._state.value})")
        self._upgrade.reject(status_code, message=message, body=body, headers=tuple(headers))
        self._state = _State.REJECTED

    def check_deadline(self, now: float) -> bool:
        """Tell whether the client failed to create every stream in time.

        Upstream (``waitForStreams``) then gives up and returns without writing anything;
        the caller does the same (call :meth:`finish` or just close the socket).

        Args:
            now: the caller's clock (same clock as given to :meth:`accept`).

        Returns:
            True if streams are still missing past ``stream_creation_timeout``.
        """
        return self._state is _State.OPEN and not self.ready and now >= self._deadline

    # ------------------------------------------------------------------ output

    def _output_stream(self, channel: int, action: str) -> _Stream | None:
        if not self._usable(action):
            return None
        if channel not in (STDOUT, STDERR):
            raise LocalProtocolError(f"a server cannot {action} channel {channel}: only stdout "
                                     "(1) and stderr (2) go to the client; use send_status()")
        stream = self._by_channel.get(channel)
        if stream is None:
            raise LocalProtocolError(f"the client has not created a {_channel_name(channel)} "
                                     "stream (wait for ExecReady; none with a TTY)")
        if stream.closed_locally:
            raise LocalProtocolError(f"{_channel_name(channel)} is already closed")
        return stream

    def send_data(self, channel: int, data: bytes | bytearray | memoryview) -> None:
        """Send process output on stdout or stderr.

        Bytes for a stream the client reset, or after the session ended, are dropped.

        Args:
            channel: ``STDOUT`` or ``STDERR``.
            data: the bytes.

        Raises:
            LocalProtocolError: the session is not open, or the client did not create
                that stream, or it was closed.
        """
        stream = self._output_stream(channel, "send on")
        if stream is None or not data:
            return
        assert self._session is not None
        try:
            self._session.send_data(stream.stream_id, data)
        except StreamClosedError:
            return  # the client reset the stream: it no longer reads (see _can_send)

    def close_channel(self, channel: int) -> None:
        """Half-close (FIN) stdout or stderr: the process's output ended.

        Args:
            channel: ``STDOUT`` or ``STDERR``.

        Raises:
            LocalProtocolError: as :meth:`send_data`.
        """
        stream = self._output_stream(channel, "close")
        if stream is None:
            return
        stream.closed_locally = True
        if not stream.fin_sent and self._can_send(stream):
            stream.fin_sent = True
            assert self._session is not None
            self._session.end_stream(stream.stream_id)

    def send_status(self, status: Status) -> None:
        """Write the exit status on the error stream, then half-close it.

        v4: the ``metav1.Status`` JSON, success included. v1-v3: the failure message as
        plain text, and nothing at all on success (``httpstream.go``
        ``v1WriteStatusFunc``). The FIN lets the client, which reads the error stream to
        its end, decode the status at once.

        Args:
            status: from ``_status`` (``success_status()``, ``exit_code_status()``...).

        Raises:
            LocalProtocolError: the session is not open, the error stream does not exist
                yet, or a status was already sent.
        """
        if not self._usable("send a status"):
            return
        session = self._session_for("send a status")
        stream = self._by_channel.get(ERROR)
        if stream is None:
            raise LocalProtocolError("the client has not created the error stream yet")
        if self._status_sent:
            raise LocalProtocolError("the status was already sent")
        self._status_sent = True
        stream.closed_locally = True
        if stream.fin_sent or not self._can_send(stream):
            return
        stream.fin_sent = True
        payload = exit_status_bytes(status, self.version)
        if payload:
            session.send_data(stream.stream_id, payload, fin=True)
        else:
            session.end_stream(stream.stream_id)

    def finish(self) -> None:
        """End the exec as a kubelet: RST CANCEL every stream not half-closed, then GOAWAY OK.

        The caller then flushes :meth:`data_to_send` and closes the socket. Calling it
        again does nothing.

        Raises:
            LocalProtocolError: the upgrade was not accepted.
        """
        if self._finished or self._remote_closed:
            self._finished = True
            return
        self._session_for("finish")
        self._finished = True
        self._end_session()
        self._state = _State.CLOSED  # later sends are mistakes; what arrives is still read

    def close(self) -> None:
        """Same as :meth:`finish` (the shared connection shape's orderly end)."""
        self.finish()
