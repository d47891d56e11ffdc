"""remotecommand (exec / attach) over SPDY/3.1, in both roles, sans-IO.

This module turns a SPDY session (``_spdy/session.py``) behind an HTTP/1.1 upgrade
(``_spdy/upgrade.py``) into the connection shape every kstream transport shares
(docs/architecture.md): *channels*, not streams. Each stream carries one ``streamtype``
header; the exec connection maps ``error`` to channel 3, ``stdin`` 0, ``stdout`` 1,
``stderr`` 2 and ``resize`` 4 and reports :class:`~kstream.ChannelData` and
:class:`~kstream.ChannelEnded` for them.

Protocol versions (protocol-notes §2.1; ``client-go/tools/remotecommand/v1.go`` … ``v4.go``,
``kubelet/pkg/cri/streaming/remotecommand/httpstream.go``):

* v1 ``channel.k8s.io`` (also what an empty negotiated protocol means): error, stdin,
  stdout, stderr streams; no way to signal the end of stdin.
* v2 ``v2.channel.k8s.io``: stdin can be half-closed.
* v3 ``v3.channel.k8s.io``: adds the ``resize`` stream when a TTY is requested.
* v4 ``v4.channel.k8s.io``: the status on the error stream becomes a ``metav1.Status``
  JSON document, sent on success too.

Stream life (protocol-notes §3.6, §3.7): the client opens every stream right after the
``101`` (error first), the server answers each SYN_STREAM at once with an empty SYN_REPLY,
and the server ends an exec by writing the status, resetting (RST_STREAM CANCEL) every
stream it has not half-closed and sending GOAWAY OK. A reset received after data is
therefore the normal end of a stream, reported as ``ChannelEnded(reset=5)``.

Invariant of both roles: once :class:`~kstream.ConnectionClosed` has been returned, every
channel of the exec has had its :class:`~kstream.ChannelEnded` (the remaining ones are
reported just before it), and no further events follow.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from .._channels import (
    ERROR,
    RESIZE,
    SPDY_PROTOCOLS,
    STDERR,
    STDIN,
    STDOUT,
)
from .._errors import LocalProtocolError, RemoteProtocolError
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
from .._spdy.events import (
    GoAwayReceived,
    SpdyEvent,
    StreamData,
    StreamEnded,
    StreamOpened,
    StreamReplied,
    StreamReset,
)
from .._spdy.frames import GoAwayStatus, RstStatus
from .._spdy.session import SpdySession, StreamClosedError
from .._spdy.state import StreamState
from .._spdy.upgrade import DEFAULT_SPDY_PROTOCOLS, SpdyUpgradeClient, SpdyUpgradeServer
from .._status import Status, exit_status_bytes
from .._upgrade import ServerUpgrade

__all__ = [
    "STREAM_TYPE_HEADER",
    "ExecReady",
    "SpdyExecClient",
    "SpdyExecServer",
    "expected_channels",
    "protocol_version",
]

#: Name of the one header of every exec stream (``api.StreamType`` in
#: ``k8s.io/api/core/v1/types.go``; Go writes it as ``streamType``, SPDY lower-cases it).
STREAM_TYPE_HEADER: Final = "streamtype"

_STREAM_TYPE_BY_CHANNEL: Final[dict[int, str]] = {
    ERROR: "error",
    STDIN: "stdin",
    STDOUT: "stdout",
    STDERR: "stderr",
    RESIZE: "resize",
}
_CHANNEL_BY_STREAM_TYPE: Final[dict[str, int]] = {
    name: channel for channel, name in _STREAM_TYPE_BY_CHANNEL.items()
}

# The channels a client writes.
_CLIENT_WRITES: Final = frozenset({STDIN, RESIZE})

# Stream states in which the session lets us send a SYN_REPLY.
_REPLYABLE_STATES: Final = frozenset({StreamState.UNREPLIED,
                                      StreamState.UNREPLIED_REMOTE_CLOSED})


#: Default cap on the bytes a client holds back for streams the server has not replied to.
DEFAULT_MAX_PENDING_BYTES: Final = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecReady(Event):
    """Every stream of the exec exists: the SPDY exec connection is ready to carry data.

    Client role: every stream the client opened has its SYN_REPLY (``client-go`` waits for
    each reply before copying any data). Server role: every expected stream has arrived
    and been replied to (``waitForStreams`` in the kubelet's ``httpstream.go``); the
    server now starts the process.
    """


def protocol_version(protocol: str) -> int:
    """Return the remotecommand version (1..4) of a negotiated SPDY stream protocol.

    An empty name (the server sent no ``X-Stream-Protocol-Version``) means v1, as in
    ``client-go/tools/remotecommand/spdy.go``.

    Args:
        protocol: the negotiated ``X-Stream-Protocol-Version`` value.

    Returns:
        The version number.

    Raises:
        RemoteProtocolError: the name is not a remotecommand SPDY protocol.
    """
    if not protocol:
        return 1
    try:
        return SPDY_PROTOCOLS[protocol]
    except KeyError:
        raise RemoteProtocolError(f"unknown stream protocol {protocol!r}") from None


def expected_channels(version: int, *, stdin: bool, stdout: bool, stderr: bool,
                      tty: bool) -> tuple[int, ...]:
    """Return the channels (streams) of an exec, in the order client-go creates them.

    ``client-go/tools/remotecommand/v2.go`` and ``v3.go`` ``createStreams``: error first,
    then stdin, stdout, stderr (never with a TTY: the terminal merges it into stdout) and
    resize (v3 and later, with a TTY only).

    Args:
        version: the remotecommand version, 1..4.
        stdin: the exec has standard input.
        stdout: the exec has standard output.
        stderr: the exec has standard error (ignored when ``tty``).
        tty: the exec runs in a terminal.

    Returns:
        Channel numbers of ``_channels.py``.
    """
    channels = [ERROR]
    if stdin:
        channels.append(STDIN)
    if stdout:
        channels.append(STDOUT)
    if stderr and not tty:
        channels.append(STDERR)
    if tty and version >= 3:
        channels.append(RESIZE)
    return tuple(channels)


# --------------------------------------------------------------------------- shared core


@dataclass(slots=True)
class _Stream:
    """Bookkeeping of one SPDY stream of the exec."""

    stream_id: int
    #: Exec channel, or None for a stream of a type we accepted and ignore.
    channel: int | None
    replied: bool = False
    #: Our caller closed the channel: no more data may be queued (client role: the FIN
    #: waits for the SYN_REPLY, with the held-back bytes).
    closed_locally: bool = False
    #: FIN went out on the wire.
    fin_sent: bool = False
    #: The peer sent FIN or RST_STREAM (reported as ChannelEnded).
    ended_by_peer: bool = False
    #: RST_STREAM went either way: nothing more can be sent.
    reset: bool = False
    #: Client role: bytes queued until the SYN_REPLY arrives (Go drops earlier data).
    pending: bytearray = field(default_factory=bytearray)


class _State(enum.Enum):
    UPGRADING = "upgrading"        # client: waiting for the 101; server: for the request
    DECIDING = "deciding"          # server: request seen, accept() or reject() pending
    OPEN = "open"                  # SPDY session running
    REJECTED = "rejected"          # the upgrade failed / was refused: nothing follows
    CLOSED = "closed"              # ConnectionClosed reported, or we closed the session


class _ExecConnection:
    """What both roles share: stream bookkeeping and the session event translation."""

    # Channels whose data the peer sends in this role; data on others is dropped.
    _INCOMING: frozenset[int] = frozenset()

    def __init__(self) -> None:
        self._state = _State.UPGRADING
        self._session: SpdySession | None = None
        self._streams: dict[int, _Stream] = {}
        self._by_channel: dict[int, _Stream] = {}
        self._expected: tuple[int, ...] = ()
        self._remote_closed = False
        self._error: RemoteProtocolError | None = None
        self._goaway_sent = False
        self._strict_flow_control = False
        self._pending_bytes = 0  # held back in all streams' `pending`
        # The upgrade's last bytes (the 101, or a request never flushed), handed over once
        # when the session starts: from then on nothing asks the finished upgrade.
        self._handover = b""
        #: Negotiated stream protocol ("" before the upgrade, or when the peer sent none).
        self.protocol = ""
        #: Negotiated remotecommand version, 1..4 (0 before the upgrade completed).
        self.version = 0
        #: Every stream of the exec exists (ExecReady was reported).
        self.ready = False

    # ------------------------------------------------------------------ common API

    def data_to_send(self) -> bytes:
        """Drain and return every byte queued for the peer (``b""`` if none).

        Returns:
            The bytes to write to the socket, in order.
        """
        session = self._session
        if session is None:
            # The upgrade is under way (or was refused): its bytes are all there is.
            return self._upgrade_data_to_send()
        session_bytes = session.data_to_send()
        if self._handover:
            session_bytes, self._handover = self._handover + session_bytes, b""
        return session_bytes

    def ping(self, now: float) -> None:
        """Queue a SPDY PING; a :class:`~kstream.PongReceived` with ``sent_at=now`` answers it.

        Args:
            now: the caller's clock, handed back in the pong event.

        Raises:
            LocalProtocolError: the SPDY session is not running.
        """
        self._session_for("ping").ping(now)

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes from the peer (``b""`` = end of the byte stream); return the events.

        Args:
            data: bytes read from the socket.

        Returns:
            The events these bytes completed, in order.

        Raises:
            RemoteProtocolError: the peer broke the protocol; any answer (GOAWAY
                PROTOCOL_ERROR) is already queued in :meth:`data_to_send`.
        """
        if self._error is not None:
            raise self._error
        try:
            return self._receive(data)
        except RemoteProtocolError as error:
            self._error = error
            raise

    def _receive(self, data: bytes | bytearray | memoryview) -> list[Event]:
        raise NotImplementedError

    def _upgrade_data_to_send(self) -> bytes:
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers

    def _usable(self, action: str) -> bool:
        """False once the peer ended the session (sends are then dropped, see _can_send)."""
        if self._remote_closed and self._session is not None and not self._goaway_sent:
            return False
        self._session_for(action)
        return True

    def _session_for(self, action: str) -> SpdySession:
        if self._session is None or self._state is not _State.OPEN:
            raise LocalProtocolError(f"cannot {action}: the SPDY session is not open "
                                     f"(state {self._state.value})")
        return self._session

    def _register(self, stream_id: int, channel: int | None) -> _Stream:
        stream = _Stream(stream_id, channel)
        self._streams[stream_id] = stream
        if channel is not None:
            self._by_channel[channel] = stream
        return stream

    def _feed_session(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if self._session is None or self._remote_closed:
            return []
        return self._translate(self._session.receive_data(data))

    def _translate(self, session_events: Iterable[SpdyEvent]) -> list[Event]:
        events: list[Event] = []
        for event in session_events:
            if self._remote_closed:
                break  # as Go: nothing is read after GOAWAY / the end of the byte stream
            if isinstance(event, StreamData):
                self._on_data(event, events)
                if self._strict_flow_control:
                    # The data is handed to the caller now: give the credit back at once.
                    assert self._session is not None
                    self._session.acknowledge_received_data(event.stream_id, len(event.data))
            elif isinstance(event, StreamEnded):
                self._on_peer_end(event.stream_id, None, events)
            elif isinstance(event, StreamReset):
                self._on_reset(event, events)
            elif isinstance(event, StreamReplied):
                self._on_replied(event, events)
            elif isinstance(event, StreamOpened):
                self._on_opened(event, events)
            elif isinstance(event, (PingReceived, PongReceived)):
                events.append(event)
            elif isinstance(event, GoAwayReceived):
                self._on_remote_close(ConnectionClosed(
                    code=event.status, clean=event.status == GoAwayStatus.OK), events)
            elif isinstance(event, ConnectionClosed):
                self._on_remote_close(event, events)
            # SETTINGS, WINDOW_UPDATE, HEADERS and skipped unknown frames carry nothing an
            # exec needs: Go ignores them as well (protocol-notes §3.5).
        return events

    def _on_data(self, event: StreamData, events: list[Event]) -> None:
        stream = self._streams.get(event.stream_id)
        if not event.data or stream is None or stream.channel is None:
            return  # a stream of a type we ignore (upstream: logged, never read)
        if stream.channel in self._INCOMING:
            events.append(ChannelData(channel=stream.channel, data=bytes(event.data)))
        else:
            events.append(DroppedMessage(channel=stream.channel, size=len(event.data)))

    def _on_reset(self, event: StreamReset, events: list[Event]) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is not None:
            stream.reset = True
            self._drop_pending(stream)
        self._on_peer_end(event.stream_id, int(event.status), events)

    def _on_peer_end(self, stream_id: int, reset: int | None, events: list[Event]) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.ended_by_peer:
            return
        stream.ended_by_peer = True
        if stream.channel is not None:
            events.append(ChannelEnded(channel=stream.channel, reset=reset))

    def _on_replied(self, event: StreamReplied, events: list[Event]) -> None:
        del event, events  # only the client role opens streams

    def _on_opened(self, event: StreamOpened, events: list[Event]) -> None:
        raise NotImplementedError

    def _on_remote_close(self, closed: ConnectionClosed, events: list[Event]) -> None:
        # Go closes every stream for reading when the session ends (spdystream
        # handleGoAwayFrame / closeRemoteChannels): report the ends not seen yet.
        for stream in self._streams.values():
            if stream.channel is not None and not stream.ended_by_peer:
                stream.ended_by_peer = True
                events.append(ChannelEnded(channel=stream.channel))
        self._remote_closed = True
        self._state = _State.CLOSED
        events.append(closed)

    def _can_send(self, stream: _Stream) -> bool:
        """False when the peer no longer reads the stream: the bytes are dropped.

        Writing after the peer reset a stream or ended the session is a race every exec
        meets (the process exits while stdin is still flowing); Go's writers get an error
        that client-go and the kubelet ignore, so it is not the caller's mistake. The
        session answers for the stream (its table knows of a reset in the batch of events
        being translated, too); the exec only adds that the session is over for it.
        """
        if self._remote_closed or self._goaway_sent:
            return False
        assert self._session is not None
        return self._session.can_send(stream.stream_id)

    def _reset_unfinished_streams(self, session: SpdySession) -> None:
        # k8s connection.Close() resets every stream; spdystream sends RST_STREAM CANCEL
        # only for streams whose FIN has not gone out (stream.go resetStream).
        for stream in self._streams.values():
            if not (stream.fin_sent or stream.reset):
                stream.reset = True
                self._drop_pending(stream)
                session.reset_stream(stream.stream_id, RstStatus.CANCEL)

    def _drop_pending(self, stream: _Stream) -> None:
        self._pending_bytes -= len(stream.pending)
        stream.pending.clear()

    def _end_session(self) -> None:
        # Nothing to say once the peer is gone (it stopped reading) or broke the protocol
        # (the session already queued GOAWAY PROTOCOL_ERROR).
        if (self._session is not None and not self._goaway_sent and not self._remote_closed
                and self._error is None):
            self._reset_unfinished_streams(self._session)
            self._session.goaway(GoAwayStatus.OK)
        self._goaway_sent = True


def _stream_type(headers: Sequence[tuple[str, str]]) -> str:
    for name, value in headers:
        if name == STREAM_TYPE_HEADER:
            return value
    return ""


def _channel_name(channel: int) -> str:
    return _STREAM_TYPE_BY_CHANNEL.get(channel, str(channel))


# --------------------------------------------------------------------------- client


class SpdyExecClient(_ExecConnection):
    """Client role of exec/attach over SPDY (what kubectl ≤ 1.28 speaks).

    The constructor queues the upgrade request; write :meth:`data_to_send` to a fresh
    connection. After the ``101`` the client opens its streams at once, in client-go order
    (error, stdin, stdout, stderr, resize), and reports :class:`ExecReady` when every one
    has its SYN_REPLY. Unlike client-go it does not wait for each reply before opening the
    next stream; servers accept streams in any order and reply to each immediately.

    Attributes:
        protocol: the negotiated stream protocol ("" before the upgrade, or when the server
            named none, which means v1).
        version: the remotecommand version, 1..4 (0 before the upgrade).
        ready: :class:`ExecReady` was reported.
    """

    _INCOMING = frozenset({ERROR, STDOUT, STDERR})

    def __init__(self, *, host: str, target: str, stdin: bool, stdout: bool, stderr: bool,
                 tty: bool, protocols: Sequence[str] = DEFAULT_SPDY_PROTOCOLS,
                 headers: Sequence[tuple[str, str]] = (), strict_flow_control: bool = False,
                 max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES) -> None:
        """Queue the upgrade request.

        Args:
            host: the ``Host`` header value.
            target: request target, e.g. from :func:`kstream._http.exec_target`.
            stdin: open a stdin stream (must match the query).
            stdout: open a stdout stream.
            stderr: open a stderr stream (never with ``tty``).
            tty: the exec has a terminal: no stderr stream, a resize stream on v3+.
            protocols: the versions to offer, in order of preference.
            headers: extra request headers (``Authorization``, ``User-Agent``, ...).
            strict_flow_control: enforce SPDY/3.1 windows (deadlocks against Go peers,
                which never send WINDOW_UPDATE; for non-Go peers only).
            max_pending_bytes: cap on bytes held back for streams not yet replied to.

        Raises:
            LocalProtocolError: none of stdin, stdout, stderr was requested.
        """
        if not (stdin or stdout or stderr):
            raise LocalProtocolError("an exec needs at least one of stdin, stdout, stderr")
        super().__init__()
        self._stdin, self._stdout, self._stderr, self._tty = stdin, stdout, stderr, tty
        self._strict_flow_control = strict_flow_control
        self._max_pending_bytes = max_pending_bytes
        self._upgrade = SpdyUpgradeClient(host=host, target=target, protocols=tuple(protocols),
                                          headers=tuple(headers), method="POST")

    # ------------------------------------------------------------------ input

    def _receive(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if self._state is _State.UPGRADING:
            return self._receive_upgrade(data)
        if self._state is _State.REJECTED:
            return []
        return self._feed_session(data)

    def _receive_upgrade(self, data: bytes | bytearray | memoryview) -> list[Event]:
        events: list[Event] = []
        for event in self._upgrade.receive_data(data):
            events.append(event)
            if isinstance(event, UpgradeAccepted):
                events.extend(self._start_session(event.protocol))
            elif isinstance(event, UpgradeRejected):
                self._state = _State.REJECTED
        return events

    def _start_session(self, protocol: str) -> list[Event]:
        self.protocol = protocol
        self.version = protocol_version(protocol)
        self._handover = self._upgrade.data_to_send()
        # join_data: stdout arrives as one event per read, not one per 32 KiB frame.
        self._session = SpdySession(client=True, strict_flow_control=self._strict_flow_control,
                                    join_data=True)
        self._state = _State.OPEN
        self._expected = expected_channels(self.version, stdin=self._stdin, stdout=self._stdout,
                                           stderr=self._stderr, tty=self._tty)
        for channel in self._expected:
            stream_id = self._session.open_stream(
                ((STREAM_TYPE_HEADER, _STREAM_TYPE_BY_CHANNEL[channel]),))
            self._register(stream_id, channel)
        # Bytes that came in the same read as the 101 belong to the SPDY session.
        trailing = self._upgrade.trailing_data
        return self._feed_session(trailing) if trailing else []

    def _on_replied(self, event: StreamReplied, events: list[Event]) -> None:
        stream = self._streams.get(event.stream_id)
        if stream is None or stream.replied:
            return
        stream.replied = True
        self._flush_pending(stream)
        # A FIN on the reply arrives as its own StreamEnded event right after this one.
        if not self.ready and all(s.replied for s in self._streams.values()):
            self.ready = True
            events.append(ExecReady())

    def _on_opened(self, event: StreamOpened, events: list[Event]) -> None:
        # Exec servers never open streams; client-go would accept and ignore one, refusing
        # it is cleaner and costs the server nothing.
        assert self._session is not None
        self._session.reset_stream(event.stream_id, RstStatus.REFUSED_STREAM)

    def _flush_pending(self, stream: _Stream) -> None:
        """Send what was held back for a stream, now replied to, and its FIN if closed."""
        assert self._session is not None
        pending = stream.pending
        stream.pending = bytearray()
        self._pending_bytes -= len(pending)
        if not self._can_send(stream):
            return
        if pending:
            self._session.send_data(stream.stream_id, pending, fin=stream.closed_locally)
        elif stream.closed_locally:
            self._session.end_stream(stream.stream_id)
        stream.fin_sent = stream.closed_locally

    # ------------------------------------------------------------------ output

    def _upgrade_data_to_send(self) -> bytes:
        return self._upgrade.data_to_send()

    def _writable_stream(self, channel: int, action: str) -> _Stream | None:
        """The stream of a channel the caller may write, or None once the peer is gone."""
        stream = self._by_channel.get(channel)
        if (stream is not None and self._state is _State.OPEN and not stream.closed_locally
                and channel in _CLIENT_WRITES):
            return stream  # every check below passes: the bulk of an upload
        if not self._usable(action):
            return None
        if channel not in _CLIENT_WRITES:
            raise LocalProtocolError(f"a client cannot {action} channel {channel}: only stdin "
                                     "(0) and resize (4) go to the server")
        if stream is None:
            raise LocalProtocolError(
                f"this exec has no {_channel_name(channel)} stream (stdin={self._stdin}, "
                f"tty={self._tty}, version {self.version})")
        if stream.closed_locally:
            raise LocalProtocolError(f"{_channel_name(channel)} is already closed")
        return stream

    def send_data(self, channel: int, data: bytes | bytearray | memoryview) -> None:
        """Send bytes on stdin or resize (JSON ``{"Width":..,"Height":..}`` events).

        Bytes for a stream whose SYN_REPLY has not arrived are held back and sent with it
        (a Go peer drops DATA for a stream it has not replied to). Bytes for a stream the
        server reset, or after the session ended, are dropped: the server no longer reads.

        Args:
            channel: ``STDIN`` or ``RESIZE``.
            data: the bytes (copied at most once).

        Raises:
            LocalProtocolError: the session is not open, the channel is not one this exec
                has, it was closed, or the held-back bytes would exceed the limit.
        """
        stream = self._writable_stream(channel, "send on")
        if stream is None or not data:
            return
        if stream.replied:
            assert self._session is not None
            try:  # the one entry: the session decides whether the stream may send, once
                self._session.send_data(stream.stream_id, data)
            except StreamClosedError:
                return  # the server reset the stream: it no longer reads (see _can_send)
            return
        if not self._can_send(stream):
            return
        if self._pending_bytes + len(data) > self._max_pending_bytes:
            raise LocalProtocolError(
                f"more than {self._max_pending_bytes} bytes held back before the server "
                "replied to the streams; wait for ExecReady")
        stream.pending += data
        self._pending_bytes += len(data)

    def close_channel(self, channel: int) -> None:
        """Half-close stdin (FIN): the remote process reads end-of-file.

        Args:
            channel: ``STDIN`` (or ``RESIZE``).

        Raises:
            LocalProtocolError: the session is not open, the channel is not one this exec
                has or is already closed, or the protocol is v1, which cannot signal the end
                of stdin (kubernetes issues 13394/13395: a v1 server ignores it).
        """
        stream = self._writable_stream(channel, "close")
        if stream is None:
            return
        if channel == STDIN and self.version < 2:
            raise LocalProtocolError("remotecommand v1 (channel.k8s.io) cannot signal the end "
                                     "of stdin")
        stream.closed_locally = True
        if stream.replied and self._can_send(stream):
            assert self._session is not None
            stream.fin_sent = True
            self._session.end_stream(stream.stream_id)
        # Not replied yet: _flush_pending sends the FIN with the reply.

    def close(self) -> None:
        """End the exec as client-go's ``conn.Close()``: RST CANCEL unfinished streams, GOAWAY.

        After it the caller flushes :meth:`data_to_send` and closes the socket. Calling it
        again, or before the upgrade completed, does nothing more.
        """
        if self._state is _State.OPEN:
            self._end_session()
        self._state = _State.CLOSED
        # (Before the 101 there is nothing to say on the wire: the caller drops the socket.)


# --------------------------------------------------------------------------- server


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
            elif isinstance(event, ConnectionClosed):
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
        return self._feed_session(data)

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
        events = self._feed_session(early) if early else []
        if self._early_eof:
            events.extend(self._feed_session(b""))
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
