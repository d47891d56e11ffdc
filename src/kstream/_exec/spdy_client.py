"""The client role of exec/attach over SPDY/3.1, sans-IO: :class:`SpdyExecClient`.

The shared connection core, the protocol versions and the stream life are in
``_exec/spdy.py``; the server role is in ``_exec/spdy_server.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .._channels import ERROR, RESIZE, STDERR, STDIN, STDOUT
from .._errors import LocalProtocolError
from .._events import Event, UpgradeAccepted, UpgradeRejected
from .._spdy.events import StreamOpened, StreamReplied
from .._spdy.frames import RstStatus
from .._spdy.session import SpdySession, StreamClosedError
from .._spdy.upgrade import DEFAULT_SPDY_PROTOCOLS, SpdyUpgradeClient
from .spdy import (
    _STREAM_TYPE_BY_CHANNEL,
    STREAM_TYPE_HEADER,
    ExecReady,
    _channel_name,
    _ExecConnection,
    _State,
    _Stream,
    expected_channels,
    protocol_version,
)

__all__ = ["DEFAULT_MAX_PENDING_BYTES", "SpdyExecClient"]

# The channels a client writes.
_CLIENT_WRITES: Final = frozenset({STDIN, RESIZE})

#: Default cap on the bytes a client holds back for streams the server has not replied to.
DEFAULT_MAX_PENDING_BYTES: Final = 4 * 1024 * 1024


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
        return self._feed(data)

    def _receive_upgrade(self, data: bytes | bytearray | memoryview) -> list[Event]:
        events: list[Event] = []
        for event in self._upgrade.receive_data(data):
            events.append(event)
            if isinstance(event, UpgradeAccepted):
                events.extend(self._start_session(event.protocol))
            # SpdyUpgradeClient reports nothing but these two events.
            elif isinstance(event, UpgradeRejected):  # pragma: no branch
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
        return self._feed(trailing) if trailing else []

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
        # Unreachable: _usable() passing means the state is OPEN, and with the three
        # checks above passing too, the fast path at the top has returned the stream.
        return stream  # pragma: no cover

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
