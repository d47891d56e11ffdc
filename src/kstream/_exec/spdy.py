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

This module holds what both roles share (the connection core, the stream types, the
versions); the roles are :class:`~kstream._exec.spdy_client.SpdyExecClient` in
``_exec/spdy_client.py`` and :class:`~kstream._exec.spdy_server.SpdyExecServer` in
``_exec/spdy_server.py``.
"""

from __future__ import annotations

import enum
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
)
from .._spdy.events import (
    StreamData,
    StreamReplied,
    StreamReset,
)
from .._spdy.frames import GoAwayStatus, RstStatus
from .._spdy.session import SpdySession
from .._spdy.upgraded import UpgradedSpdyConnection

__all__ = [
    "STREAM_TYPE_HEADER",
    "ExecReady",
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


class _ExecConnection(UpgradedSpdyConnection):
    """What both roles share: stream bookkeeping and the session event translation."""

    # Channels whose data the peer sends in this role; data on others is dropped.
    _INCOMING: frozenset[int] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self._state = _State.UPGRADING
        self._streams: dict[int, _Stream] = {}
        self._by_channel: dict[int, _Stream] = {}
        self._expected: tuple[int, ...] = ()
        self._remote_closed = False
        self._goaway_sent = False
        self._strict_flow_control = False
        self._pending_bytes = 0  # held back in all streams' `pending`
        #: Negotiated stream protocol ("" before the upgrade, or when the peer sent none).
        self.protocol = ""
        #: Negotiated remotecommand version, 1..4 (0 before the upgrade completed).
        self.version = 0
        #: Every stream of the exec exists (ExecReady was reported).
        self.ready = False

    # ------------------------------------------------------------------ common API

    def ping(self, now: float) -> None:
        """Queue a SPDY PING; a :class:`~kstream.PongReceived` with ``sent_at=now`` answers it.

        Args:
            now: the caller's clock, handed back in the pong event.

        Raises:
            LocalProtocolError: the SPDY session is not running.
        """
        self._session_for("ping").ping(now)

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

    def _reading(self) -> bool:
        return not self._remote_closed

    def _on_data(self, event: StreamData, events: list[Event]) -> None:
        self._report_data(event, events)
        if self._strict_flow_control:
            # The data is handed to the caller now: give the credit back at once.
            assert self._session is not None
            self._session.acknowledge_received_data(event.stream_id, len(event.data))

    def _report_data(self, event: StreamData, events: list[Event]) -> None:
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
        self._on_end(event.stream_id, int(event.status), events)

    def _on_end(self, stream_id: int, reset: int | None, events: list[Event]) -> None:
        stream = self._streams.get(stream_id)
        if stream is None or stream.ended_by_peer:
            return
        stream.ended_by_peer = True
        if stream.channel is not None:
            events.append(ChannelEnded(channel=stream.channel, reset=reset))

    def _on_replied(self, event: StreamReplied, events: list[Event]) -> None:
        # Only the client role opens streams (it overrides this); the server's session
        # fails on a SYN_REPLY for a stream it never opened, so never reports one.
        del event, events  # pragma: no cover

    def _on_session_end(self, closed: ConnectionClosed, events: list[Event]) -> None:
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
            # Defensive: the callers reach here only while the session runs. The sending
            # methods stop at _usable()/_session_for() once the peer ended it or we sent
            # GOAWAY (which also leaves OPEN), and _translate stops at the peer's end.
            return False  # pragma: no cover
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


def _channel_name(channel: int) -> str:
    return _STREAM_TYPE_BY_CHANNEL.get(channel, str(channel))
