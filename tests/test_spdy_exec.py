"""SpdyExecClient and SpdyExecServer wired back to back in memory, for v1..v4.

The bytes each side writes after the upgrade are also decoded with an independent
FrameDecoder, so stream ids, headers, FIN and RST_STREAM are checked on the wire, not only
through the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream._channels import (
    ERROR,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    V1_NAME,
    V2_NAME,
    V3_NAME,
    V4_NAME,
)
from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._events import (
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
from kstream._exec.spdy import ExecReady, expected_channels, protocol_version
from kstream._exec.spdy_client import SpdyExecClient
from kstream._exec.spdy_server import SpdyExecServer
from kstream._http import _attach_target_for_path as attach_target
from kstream._http import _exec_target_for_path as exec_target
from kstream._spdy.frames import (
    DataFrame,
    Frame,
    FrameDecoder,
    FrameEncoder,
    GoAwayFrame,
    GoAwayStatus,
    RstStatus,
    RstStreamFrame,
    SynReplyFrame,
    SynStreamFrame,
)
from kstream._spdy.session import SpdySession
from kstream._status import (
    Exited,
    Failed,
    Status,
    exit_code_status,
    internal_error_status,
    parse_exit_status,
    success_status,
)

PROTOCOLS = {1: V1_NAME, 2: V2_NAME, 3: V3_NAME, 4: V4_NAME}
PATH = "/api/v1/namespaces/default/pods/p/exec"
NAMES = {ERROR: "error", STDIN: "stdin", STDOUT: "stdout", STDERR: "stderr", RESIZE: "resize"}
RESIZE_EVENT = b'{"Width":80,"Height":24}\n'

F = TypeVar("F", DataFrame, SynStreamFrame, SynReplyFrame, RstStreamFrame, GoAwayFrame)


@dataclass
class Wire:
    """One direction of the connection after the upgrade, decoded frame by frame."""

    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    frames: list[Frame] = field(default_factory=list)

    def record(self, data: bytes) -> None:
        self.frames.extend(self.decoder.feed(data))

    def of_type(self, kind: type[F]) -> list[F]:
        return [frame for frame in self.frames if isinstance(frame, kind)]


class Pair:
    """A client and a server joined in memory, recording events and frames."""

    def __init__(self, version: int, *, stdin: bool = True, stdout: bool = True,
                 stderr: bool = True, tty: bool = False, command: Sequence[str] = ("cat",),
                 client_protocols: Sequence[str] | None = None) -> None:
        self.version = version
        self.options: dict[str, bool] = {"stdin": stdin, "stdout": stdout, "stderr": stderr,
                                          "tty": tty}
        target = exec_target(PATH, command=command, container="main", **self.options)
        protocols = client_protocols if client_protocols is not None else (PROTOCOLS[version],)
        self.client = SpdyExecClient(host="127.0.0.1:6443", target=target,
                                     protocols=protocols, stdin=stdin, stdout=stdout,
                                     stderr=stderr, tty=tty)
        self.server = SpdyExecServer()
        self.client_events: list[Event] = []
        self.server_events: list[Event] = []
        self.to_server = Wire()
        self.to_client = Wire()

    def upgrade(self) -> UpgradeRequested:
        events = self.server.receive_data(self.client.data_to_send())
        request = events[0]
        assert isinstance(request, UpgradeRequested)
        self.server_events.extend(events)
        assert self.accept(0.0) == []
        events = self.client.receive_data(self.server.data_to_send())
        assert isinstance(events[0], UpgradeAccepted)
        self.client_events.extend(events)
        return request

    def accept(self, now: float, server: SpdyExecServer | None = None) -> list[Event]:
        o = self.options
        return (server or self.server).accept(stdin=o["stdin"], stdout=o["stdout"],
                                              stderr=o["stderr"], tty=o["tty"], now=now)

    def client_to_server(self) -> list[Event]:
        data = self.client.data_to_send()
        self.to_server.record(data)
        events = self.server.receive_data(data) if data else []
        self.server_events.extend(events)
        return events

    def server_to_client(self) -> list[Event]:
        data = self.server.data_to_send()
        self.to_client.record(data)
        events = self.client.receive_data(data) if data else []
        self.client_events.extend(events)
        return events

    def ready(self) -> Pair:
        self.upgrade()
        self.client_to_server()
        self.server_to_client()
        assert self.server.ready and self.client.ready
        return self


def ended_channels(events: Sequence[Event]) -> list[int]:
    return [e.channel for e in events if isinstance(e, ChannelEnded)]


def data_on(events: Sequence[Event], channel: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, ChannelData) and e.channel == channel)


def merged(events: Sequence[Event]) -> list[Event]:
    """Join adjacent ChannelData of one channel (how split points may cut them)."""
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if (isinstance(event, ChannelData) and isinstance(last, ChannelData)
                and last.channel == event.channel):
            out[-1] = ChannelData(channel=event.channel, data=last.data + event.data)
        else:
            out.append(event)
    return out


OPTION_SETS = [
    {"stdin": True, "stdout": True, "stderr": True, "tty": False},
    {"stdin": False, "stdout": True, "stderr": True, "tty": False},
    {"stdin": True, "stdout": True, "stderr": False, "tty": True},
    {"stdin": True, "stdout": False, "stderr": False, "tty": False},
    {"stdin": False, "stdout": False, "stderr": True, "tty": False},
    {"stdin": False, "stdout": True, "stderr": True, "tty": True},
]


# --------------------------------------------------------------------------- helpers


def test_exec_target_matches_kubectl() -> None:
    target = exec_target(PATH, command=["sh", "-c", "echo hi; exit 3"], container="app",
                         stdout=True, stderr=True)
    assert target == (PATH + "?command=sh&command=-c&command=echo+hi%3B+exit+3&container=app"
                      "&stderr=true&stdout=true")
    assert exec_target(PATH, command=["ls"], stdin=True, stdout=True, stderr=False,
                       tty=True) == PATH + "?command=ls&stdin=true&stdout=true&tty=true"
    attach = "/api/v1/namespaces/default/pods/p/attach"
    assert attach_target(attach, container="app", stdin=True, stderr=False, tty=True) == (
        attach + "?container=app&stdin=true&stdout=true&tty=true")
    assert attach_target(attach) == attach + "?stderr=true&stdout=true"


@pytest.mark.parametrize(("version", "tty", "expected"), [
    (1, False, (ERROR, STDIN, STDOUT, STDERR)),
    (1, True, (ERROR, STDIN, STDOUT)),
    (2, True, (ERROR, STDIN, STDOUT)),
    (3, True, (ERROR, STDIN, STDOUT, RESIZE)),
    (4, True, (ERROR, STDIN, STDOUT, RESIZE)),
    (4, False, (ERROR, STDIN, STDOUT, STDERR)),
])
def test_expected_channels(version: int, tty: bool, expected: tuple[int, ...]) -> None:
    assert expected_channels(version, stdin=True, stdout=True, stderr=True, tty=tty) == expected


def test_protocol_version() -> None:
    assert [protocol_version(p) for p in ("", V1_NAME, V2_NAME, V3_NAME, V4_NAME)] == [
        1, 1, 2, 3, 4]


# --------------------------------------------------------------------------- streams


@pytest.mark.parametrize("version", [1, 2, 3, 4])
@pytest.mark.parametrize("options", OPTION_SETS)
def test_streams_created_in_upstream_order(version: int, options: dict[str, bool]) -> None:
    pair = Pair(version, stdin=options["stdin"], stdout=options["stdout"],
                stderr=options["stderr"], tty=options["tty"])
    request = pair.upgrade()
    assert request.method == "POST"
    assert request.protocols == (PROTOCOLS[version],)
    assert pair.client.protocol == pair.server.protocol == PROTOCOLS[version]
    assert pair.client.version == pair.server.version == version
    assert not pair.client.ready
    server_events = pair.client_to_server()
    expected = expected_channels(version, **options)
    syn = pair.to_server.of_type(SynStreamFrame)
    assert [(f.stream_id, f.headers) for f in syn] == [
        (1 + 2 * i, (("streamtype", NAMES[ch]),)) for i, ch in enumerate(expected)]
    assert all(not f.fin and not f.unidirectional and f.priority == 0
               for f in syn)
    assert server_events == [ExecReady()]
    assert pair.server.ready
    client_events = pair.server_to_client()
    replies = pair.to_client.of_type(SynReplyFrame)
    assert [(f.stream_id, f.headers, f.fin) for f in replies] == [
        (f.stream_id, (), False) for f in syn]
    if version == 1 and options["stdin"]:
        # The v1 server half-closes its side of stdin once every stream exists (upstream).
        assert client_events == [ExecReady(), ChannelEnded(channel=STDIN)]
    else:
        assert client_events == [ExecReady()]
    assert pair.client.ready


def test_server_accepts_streams_in_any_order() -> None:
    pair = Pair(4)
    pair.upgrade()
    pair.client.data_to_send()  # the client's own SYN_STREAMs are never delivered
    other_order = SpdySession(client=True)
    for name in ("stderr", "stdin", "stdout", "error"):
        other_order.open_stream((("streamtype", name),))
    assert pair.server.receive_data(other_order.data_to_send()) == [ExecReady()]
    assert pair.server.ready


def test_trailing_bytes_after_101_reach_the_session() -> None:
    pair = Pair(4)
    pair.server.receive_data(pair.client.data_to_send())
    assert pair.accept(0.0) == []
    pair.server.ping(1.0)  # the PING leaves in the same write as the 101
    events = pair.client.receive_data(pair.server.data_to_send())
    assert isinstance(events[0], UpgradeAccepted)
    assert isinstance(events[1], PingReceived)
    pair.client_to_server()
    assert isinstance(pair.server_events[-1], PongReceived)
    assert pair.server_events[-1].sent_at == 1.0


def test_streams_sent_before_accept_are_processed_by_accept() -> None:
    model = Pair(3, tty=True, stderr=False)
    request = model.client.data_to_send()
    model.server.receive_data(request)
    model.accept(0.0)
    model.client.receive_data(model.server.data_to_send())
    early = model.client.data_to_send()  # SYN_STREAMs the client wrote after its 101
    server = SpdyExecServer()
    events = server.receive_data(request + early)
    assert isinstance(events[0], UpgradeRequested)
    assert model.accept(0.0, server) == [ExecReady()]


def test_ping_both_ways() -> None:
    pair = Pair(4).ready()
    pair.client.ping(5.0)
    events = pair.client_to_server()
    assert len(events) == 1 and isinstance(events[0], PingReceived)
    events = pair.server_to_client()
    assert len(events) == 1 and isinstance(events[0], PongReceived)
    assert events[0].sent_at == 5.0
    pair.server.ping(7.0)
    events = pair.server_to_client()
    assert len(events) == 1 and isinstance(events[0], PingReceived)
    events = pair.client_to_server()
    assert len(events) == 1 and isinstance(events[0], PongReceived)
    assert events[0].sent_at == 7.0


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize("version", [2, 3, 4])
def test_stdin_data_and_half_close(version: int) -> None:
    pair = Pair(version).ready()
    pair.client.send_data(STDIN, b"hello ")
    pair.client.send_data(STDIN, memoryview(b"world"))
    pair.client.send_data(STDIN, b"")  # nothing to send, no frame
    pair.client.close_channel(STDIN)
    events = pair.client_to_server()
    assert merged(events) == [ChannelData(channel=STDIN, data=b"hello world"),
                              ChannelEnded(channel=STDIN)]
    stdin_frames = [f for f in pair.to_server.of_type(DataFrame)
                    if f.stream_id == 3]
    assert stdin_frames[-1].fin and bytes(stdin_frames[-1].data) == b""
    with pytest.raises(LocalProtocolError):
        pair.client.send_data(STDIN, b"late")
    with pytest.raises(LocalProtocolError):
        pair.client.close_channel(STDIN)


def test_v1_cannot_close_stdin() -> None:
    pair = Pair(1).ready()
    pair.client.send_data(STDIN, b"data")
    with pytest.raises(LocalProtocolError, match="v1"):
        pair.client.close_channel(STDIN)
    assert pair.client_to_server() == [ChannelData(channel=STDIN, data=b"data")]


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_stdout_and_stderr(version: int) -> None:
    pair = Pair(version, stdin=False).ready()
    pair.server.send_data(STDOUT, b"out")
    pair.server.send_data(STDERR, b"err")
    pair.server.send_data(STDOUT, bytearray(b"put"))
    pair.server.close_channel(STDOUT)
    pair.server.close_channel(STDERR)
    events = pair.server_to_client()
    assert events == [
        ChannelData(channel=STDOUT, data=b"out"),
        ChannelData(channel=STDERR, data=b"err"),
        ChannelData(channel=STDOUT, data=b"put"),
        ChannelEnded(channel=STDOUT),
        ChannelEnded(channel=STDERR),
    ]
    with pytest.raises(LocalProtocolError):
        pair.server.send_data(STDOUT, b"x")


@pytest.mark.parametrize("version", [3, 4])
def test_resize_with_tty(version: int) -> None:
    pair = Pair(version, stderr=False, tty=True).ready()
    pair.client.send_data(RESIZE, RESIZE_EVENT)
    assert pair.client_to_server() == [ChannelData(channel=RESIZE, data=RESIZE_EVENT)]
    with pytest.raises(LocalProtocolError):
        pair.server.send_data(STDERR, b"no stderr with a tty")


@pytest.mark.parametrize(("version", "tty"), [(1, True), (2, True), (4, False)])
def test_no_resize_stream(version: int, tty: bool) -> None:
    pair = Pair(version, stderr=not tty, tty=tty).ready()
    with pytest.raises(LocalProtocolError, match="resize"):
        pair.client.send_data(RESIZE, RESIZE_EVENT)


def test_misdirected_channels_are_refused() -> None:
    pair = Pair(4).ready()
    for channel in (STDOUT, STDERR, ERROR, 7):
        with pytest.raises(LocalProtocolError):
            pair.client.send_data(channel, b"x")
    for channel in (STDIN, RESIZE, ERROR):
        with pytest.raises(LocalProtocolError):
            pair.server.send_data(channel, b"x")


def test_data_before_syn_reply_is_held_back_not_lost() -> None:
    pair = Pair(4)
    pair.upgrade()
    pair.client.send_data(STDIN, b"early ")
    pair.client.send_data(STDIN, b"bytes")
    pair.client.close_channel(STDIN)
    pair.client_to_server()
    assert pair.to_server.of_type(DataFrame) == []  # nothing before the reply
    pair.server_to_client()
    events = pair.client_to_server()
    assert merged(events) == [ChannelData(channel=STDIN, data=b"early bytes"),
                              ChannelEnded(channel=STDIN)]


def test_close_before_the_reply_resets_the_unreplied_streams() -> None:
    pair = Pair(4)
    pair.upgrade()
    pair.client.send_data(STDIN, b"never sent")
    pair.client.close_channel(STDIN)  # the FIN waits for the reply...
    pair.client.close()  # ...which never comes: every stream is reset instead
    pair.client_to_server()
    assert pair.to_server.of_type(DataFrame) == []
    assert [(f.stream_id, f.status) for f in pair.to_server.of_type(RstStreamFrame)] == [
        (1, RstStatus.CANCEL), (3, RstStatus.CANCEL), (5, RstStatus.CANCEL),
        (7, RstStatus.CANCEL)]
    assert len(pair.to_server.of_type(GoAwayFrame)) == 1


def test_reply_and_reset_in_one_read_drop_the_held_back_bytes() -> None:
    pair = Pair(4, stderr=False)
    pair.upgrade()
    pair.client.send_data(STDIN, b"held back")
    pair.client_to_server()
    assert pair.server._session is not None
    pair.server._session.reset_stream(3, RstStatus.CANCEL)  # stdin, right behind its reply
    events = pair.server_to_client()
    assert events == [ExecReady(), ChannelEnded(channel=STDIN, reset=RstStatus.CANCEL)]
    pair.client.send_data(STDIN, b"dropped too")
    pair.client_to_server()
    assert pair.to_server.of_type(DataFrame) == []


def test_held_back_bytes_are_bounded() -> None:
    client = SpdyExecClient(host="h", target=PATH, stdin=True, stdout=True, stderr=False,
                            tty=False, max_pending_bytes=10)
    server = SpdyExecServer()
    server.receive_data(client.data_to_send())
    server.accept(stdin=True, stdout=True, stderr=False, tty=False, now=0.0)
    client.receive_data(server.data_to_send())
    client.send_data(STDIN, b"0123456789")
    with pytest.raises(LocalProtocolError, match="held back"):
        client.send_data(STDIN, b"!")
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())  # replies: the bytes leave, room again
    client.send_data(STDIN, b"0123456789")
    assert data_on(server.receive_data(client.data_to_send()), STDIN) == b"0123456789" * 2


def test_calls_before_the_upgrade_are_refused() -> None:
    client = SpdyExecClient(host="h", target=PATH, stdin=True, stdout=True, stderr=True,
                            tty=False)
    with pytest.raises(LocalProtocolError):
        client.send_data(STDIN, b"x")
    with pytest.raises(LocalProtocolError):
        client.ping(0.0)
    server = SpdyExecServer()
    with pytest.raises(LocalProtocolError):
        server.accept(stdin=True, stdout=True, stderr=True, tty=False, now=0.0)
    with pytest.raises(LocalProtocolError):
        server.finish()
    with pytest.raises(LocalProtocolError):
        SpdyExecClient(host="h", target=PATH, stdin=False, stdout=False, stderr=False,
                       tty=False)


# --------------------------------------------------------------------------- status


def status_bytes(pair: Pair, status: Status) -> bytes:
    pair.server.send_status(status)
    events = pair.server_to_client()
    assert ChannelEnded(channel=ERROR) in events
    return data_on(events, ERROR)


@pytest.mark.parametrize("code", [3, 255])
def test_v4_exit_code(code: int) -> None:
    pair = Pair(4, stdin=False).ready()
    data = status_bytes(pair, exit_code_status(code, ["sh", "-c", f"exit {code}"]))
    assert parse_exit_status(data, 4) == Exited(code, f"command terminated with exit code {code}")


def test_v4_success_is_a_document() -> None:
    pair = Pair(4, stdin=False).ready()
    data = status_bytes(pair, success_status())
    assert data == b'{"metadata":{},"status":"Success"}'
    assert parse_exit_status(data, 4) == Exited(0)


def test_v4_failure_without_exit_code() -> None:
    pair = Pair(4, stdin=False).ready()
    data = status_bytes(pair, internal_error_status("no such file"))
    result = parse_exit_status(data, 4)
    assert isinstance(result, Failed)
    assert result.reason == "InternalError" and result.code == 500
    assert "no such file" in result.message


@pytest.mark.parametrize("version", [1, 2, 3])
def test_plain_text_failure_before_v4(version: int) -> None:
    pair = Pair(version, stdin=False).ready()
    data = status_bytes(pair, exit_code_status(3, ["sh", "-c", "exit 3"]))
    assert not data.startswith(b"{")
    result = parse_exit_status(data, version)
    assert isinstance(result, Failed)
    assert "exit code 3" in result.message


@pytest.mark.parametrize("version", [1, 2, 3])
def test_nothing_on_success_before_v4(version: int) -> None:
    pair = Pair(version, stdin=False).ready()
    assert status_bytes(pair, success_status()) == b""
    assert parse_exit_status(b"", version) == Exited(0)


def test_status_only_once() -> None:
    pair = Pair(4).ready()
    pair.server.send_status(success_status())
    with pytest.raises(LocalProtocolError):
        pair.server.send_status(success_status())


# --------------------------------------------------------------------------- endings


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_finish_ends_every_channel_then_the_connection(version: int) -> None:
    pair = Pair(version).ready()
    pair.client_events.clear()
    pair.server.send_data(STDOUT, b"bye")
    pair.server.close_channel(STDOUT)
    pair.server.send_status(exit_code_status(3, ["false"]))
    pair.server.finish()
    pair.server.finish()  # idempotent
    events = pair.server_to_client()
    # FIN'd streams end plainly; the others are reset with CANCEL, as a kubelet does.
    ends = {e.channel: e.reset for e in events if isinstance(e, ChannelEnded)}
    expected = {ERROR: None, STDOUT: None, STDERR: RstStatus.CANCEL}
    if version != 1:
        expected[STDIN] = RstStatus.CANCEL  # v1: the server FIN'd stdin when ready
    assert ends == expected
    assert events[-1] == ConnectionClosed(code=GoAwayStatus.OK, clean=True)
    resets = pair.to_client.of_type(RstStreamFrame)
    assert all(f.status == RstStatus.CANCEL for f in resets)
    goaway = pair.to_client.of_type(GoAwayFrame)
    assert len(goaway) == 1 and goaway[0].status == GoAwayStatus.OK
    assert pair.to_client.frames[-1] is goaway[0]
    assert pair.client.receive_data(b"") == []  # the socket closing adds nothing
    # Writes after the server went away are dropped quietly (a normal race).
    pair.client.send_data(STDIN, b"too late")
    assert pair.client.data_to_send() == b""


def test_client_close_resets_and_goes_away() -> None:
    pair = Pair(4).ready()
    pair.client.send_data(STDIN, b"x")
    pair.client.close_channel(STDIN)
    pair.client.close()
    pair.client.close()  # idempotent
    events = pair.client_to_server()
    ends = {e.channel: e.reset for e in events if isinstance(e, ChannelEnded)}
    assert ends == {STDIN: None, ERROR: RstStatus.CANCEL, STDOUT: RstStatus.CANCEL,
                    STDERR: RstStatus.CANCEL}
    assert events[-1] == ConnectionClosed(code=GoAwayStatus.OK, clean=True)
    # The server's own writes after that are dropped, not errors.
    pair.server.send_data(STDOUT, b"x")
    pair.server.send_status(success_status())
    pair.server.finish()


def test_eof_without_goaway_ends_every_channel() -> None:
    pair = Pair(4, stdin=False).ready()
    pair.client_events.clear()
    events = pair.client.receive_data(b"")
    assert sorted(ended_channels(events)) == [STDOUT, STDERR, ERROR]
    assert isinstance(events[-1], ConnectionClosed)


def test_server_reset_before_reply_ends_channel() -> None:
    pair = Pair(4, stdin=False)
    pair.upgrade()
    pair.client_to_server()
    pair.server._session.reset_stream(1, RstStatus.REFUSED_STREAM)  # type: ignore[union-attr]
    events = pair.server_to_client()
    assert ChannelEnded(channel=ERROR, reset=RstStatus.REFUSED_STREAM) in events


# --------------------------------------------------------------------------- server rules


def test_server_reject() -> None:
    pair = Pair(4)
    pair.server.receive_data(pair.client.data_to_send())
    pair.server.reject(403, message="forbidden by policy")
    events = pair.client.receive_data(pair.server.data_to_send())
    assert len(events) == 1 and isinstance(events[0], UpgradeRejected)
    assert events[0].error.status_code == 403
    assert pair.client.receive_data(b"more") == []
    with pytest.raises(LocalProtocolError):
        pair.server.accept(stdin=True, stdout=True, stderr=True, tty=False, now=0.0)


def test_server_drops_stderr_with_tty() -> None:
    # The request asks for stderr and a tty; the kubelet "bypasses stderr": the exec is
    # ready without a stderr stream, and one sent anyway is refused.
    pair = Pair(4, stderr=True, tty=True)
    pair.upgrade()
    pair.client.data_to_send()  # replaced by a raw session below
    raw = SpdySession(client=True)
    stderr_id = raw.open_stream((("streamtype", "stderr"),))
    for name in ("error", "stdin", "stdout", "resize"):
        raw.open_stream((("streamtype", name),))
    assert pair.server.receive_data(raw.data_to_send()) == [ExecReady()]
    reply_wire = Wire()
    reply_wire.record(pair.server.data_to_send())
    assert [(f.stream_id, f.status) for f in reply_wire.of_type(RstStreamFrame)] == [
        (stderr_id, RstStatus.REFUSED_STREAM)]
    with pytest.raises(LocalProtocolError):
        pair.server.send_data(STDERR, b"x")


def test_extra_and_unknown_streams() -> None:
    pair = Pair(4, stdin=False, stderr=False).ready()  # error, stdout: the set is complete
    session = pair.client._session
    assert session is not None
    unknown = session.open_stream((("streamtype", "telemetry"),))
    duplicate = session.open_stream((("streamtype", "stdout"),))
    unexpected = session.open_stream((("streamtype", "stdin"),))
    session.send_data(unknown, b"ignored")
    events = pair.client_to_server()
    assert events == []  # replied-and-ignored / refused: nothing for the caller
    assert pair.server_to_client() == []  # nor for the client: these are not its streams
    replies = {f.stream_id for f in pair.to_client.frames
               if isinstance(f, SynReplyFrame)}
    assert unknown in replies
    resets = {f.stream_id: f.status for f in pair.to_client.frames
              if isinstance(f, RstStreamFrame)}
    assert resets == {duplicate: RstStatus.REFUSED_STREAM,
                      unexpected: RstStatus.REFUSED_STREAM}


def test_client_data_on_output_streams_is_dropped() -> None:
    pair = Pair(4, stdin=False).ready()
    session = pair.client._session
    assert session is not None
    session.send_data(3, b"wrong way")  # stdout stream, client to server
    assert pair.client_to_server() == [DroppedMessage(channel=STDOUT, size=9)]


def test_stream_creation_deadline() -> None:
    pair = Pair(4)
    pair.server.receive_data(pair.client.data_to_send())
    assert not pair.server.check_deadline(100.0)  # not accepted yet
    pair.accept(100.0)
    pair.client.receive_data(pair.server.data_to_send())
    assert not pair.server.check_deadline(129.9)
    assert pair.server.check_deadline(130.0)
    pair.client_to_server()
    assert not pair.server.check_deadline(1000.0)  # ready: no deadline any more


def test_refuse_without_a_common_protocol() -> None:
    pair = Pair(4, client_protocols=("v9.channel.k8s.io",))
    pair.server.receive_data(pair.client.data_to_send())
    assert not pair.server.acceptable
    with pytest.raises(LocalProtocolError):
        pair.accept(0.0)
    pair.server.refuse()
    events = pair.client.receive_data(pair.server.data_to_send())
    assert isinstance(events[0], UpgradeRejected)
    assert events[0].error.status_code == 403


def test_client_offering_nothing_speaks_v1() -> None:
    # A Kubernetes 1.0 client: no X-Stream-Protocol-Version; the server may answer with
    # none, which both sides read as v1.
    pair = Pair(1, client_protocols=())
    pair.server.receive_data(pair.client.data_to_send())
    assert not pair.server.acceptable
    o = pair.options
    pair.server.accept(stdin=o["stdin"], stdout=o["stdout"], stderr=o["stderr"], tty=False,
                       now=0.0, protocol="")
    accepted = pair.client.receive_data(pair.server.data_to_send())[0]
    assert isinstance(accepted, UpgradeAccepted)
    assert accepted.protocol == ""
    assert not any(name == "x-stream-protocol-version" for name, _ in accepted.headers)
    assert pair.client.protocol == pair.server.protocol == ""
    assert pair.client.version == pair.server.version == 1
    pair.client_to_server()
    pair.server_to_client()
    assert pair.client.ready and pair.server.ready


def test_reject_after_a_malformed_request() -> None:
    server = SpdyExecServer()
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"NOT HTTP AT ALL\r\n\r\n")
    server.reject(400, message="bad request")
    assert server.data_to_send().startswith(b"HTTP/1.1 400 ")
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"more")


def test_garbage_after_the_upgrade_is_a_remote_error() -> None:
    pair = Pair(4).ready()
    with pytest.raises(RemoteProtocolError):
        pair.client.receive_data(b"\x80\x09" + b"\xff" * 30)  # SPDY version 9
    pair.to_server.record(pair.client.data_to_send())
    goaway = pair.to_server.of_type(GoAwayFrame)
    assert [f.status for f in goaway] == [GoAwayStatus.PROTOCOL_ERROR]
    with pytest.raises(RemoteProtocolError):
        pair.client.receive_data(b"")
    pair.client.close()  # nothing more to say: the GOAWAY is already queued
    assert pair.client.data_to_send() == b""


def test_sending_after_finish_is_a_local_error() -> None:
    pair = Pair(4).ready()
    pair.server.finish()
    with pytest.raises(LocalProtocolError):
        pair.server.send_data(STDOUT, b"x")
    with pytest.raises(LocalProtocolError):
        pair.client.close_channel(STDERR)
    pair.client.close()
    with pytest.raises(LocalProtocolError):
        pair.client.send_data(STDIN, b"x")


def test_client_negotiates_servers_choice() -> None:
    pair = Pair(2, client_protocols=(V4_NAME, V3_NAME, V2_NAME, V1_NAME))
    pair.server = SpdyExecServer(supported=(V2_NAME, V1_NAME))
    pair.upgrade()
    assert pair.client.protocol == pair.server.protocol == V2_NAME
    assert pair.client.version == 2


# --------------------------------------------------------------------------- whole runs


def scenario(version: int, chunking: st.DataObject | None = None) -> tuple[list[Event],
                                                                            list[Event]]:
    """A complete exec (stdin in, stdout/stderr out, exit 3) with bytes split as drawn."""
    tty = False
    pair = Pair(version)

    def deliver(data: bytes, receive: object) -> list[Event]:
        assert callable(receive)
        if chunking is None or not data:
            return list(receive(data)) if data else []
        cuts = sorted(chunking.draw(st.lists(st.integers(0, len(data)), max_size=6)))
        events: list[Event] = []
        start = 0
        for cut in [*cuts, len(data)]:
            if cut > start:  # an empty piece would mean EOF
                events.extend(receive(data[start:cut]))
            start = cut
        return events

    client_events: list[Event] = []
    server_events: list[Event] = []
    server_events += deliver(pair.client.data_to_send(), pair.server.receive_data)
    server_events += pair.server.accept(stdin=True, stdout=True, stderr=True, tty=tty, now=0.0)
    pair.server.ping(1.0)
    client_events += deliver(pair.server.data_to_send(), pair.client.receive_data)
    pair.client.send_data(STDIN, b"in" * 100)
    if version > 1:
        pair.client.close_channel(STDIN)
    server_events += deliver(pair.client.data_to_send(), pair.server.receive_data)
    client_events += deliver(pair.server.data_to_send(), pair.client.receive_data)
    server_events += deliver(pair.client.data_to_send(), pair.server.receive_data)
    pair.server.send_data(STDOUT, b"o" * 3000)
    pair.server.send_data(STDERR, b"e" * 10)
    pair.server.close_channel(STDOUT)
    pair.server.send_status(exit_code_status(3, ["cat"]))
    pair.server.finish()
    client_events += deliver(pair.server.data_to_send(), pair.client.receive_data)
    client_events += deliver(b"", pair.client.receive_data)
    return merged(client_events), merged(server_events)


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_whole_exec_is_deterministic(version: int) -> None:
    first = scenario(version)
    assert first == scenario(version)
    client_events, server_events = first
    assert data_on(server_events, STDIN) == b"in" * 100
    assert data_on(client_events, STDOUT) == b"o" * 3000
    assert data_on(client_events, STDERR) == b"e" * 10
    result = parse_exit_status(data_on(client_events, ERROR), version)
    assert (result == Exited(3, "command terminated with exit code 3") if version == 4
            else isinstance(result, Failed))
    assert isinstance(client_events[-1], ConnectionClosed)
    assert ExecReady() in client_events and ExecReady() in server_events


@settings(max_examples=100, deadline=None)
@given(version=st.sampled_from([1, 2, 3, 4]), data=st.data())
def test_arbitrary_splits_give_the_same_events(version: int, data: st.DataObject) -> None:
    assert scenario(version, data) == scenario(version)


@settings(max_examples=100, deadline=None)
@given(garbage=st.lists(st.binary(max_size=64), max_size=4), server_side=st.booleans())
def test_arbitrary_bytes_raise_only_remote_errors(garbage: list[bytes],
                                                  server_side: bool) -> None:
    pair = Pair(4).ready()
    receiver: SpdyExecClient | SpdyExecServer = pair.server if server_side else pair.client
    try:
        for chunk in garbage:
            if chunk:
                receiver.receive_data(chunk)
        receiver.receive_data(b"")
    except RemoteProtocolError:
        with pytest.raises(RemoteProtocolError):
            receiver.receive_data(b"x")


@settings(max_examples=100, deadline=None)
@given(request=st.binary(max_size=200))
def test_arbitrary_request_bytes_raise_only_remote_errors(request: bytes) -> None:
    server = SpdyExecServer()
    try:
        events = server.receive_data(request)
    except RemoteProtocolError:
        return
    assert all(isinstance(e, (UpgradeRequested, ConnectionClosed)) for e in events)


# --------------------------------------------------------------------------- one send path


STDIN_STREAM = 3  # error is 1, stdin 3 (client-go order)


@pytest.mark.parametrize("stdin_state", ["open", "closed by the server (v1)",
                                         "reset by the server"])
def test_writes_go_to_the_session_once_and_follow_its_table(
        stdin_state: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # v1 servers half-close stdin as soon as the exec is ready (see SpdyExecServer).
    pair = Pair(1 if "v1" in stdin_state else 4).ready()
    if "reset" in stdin_state:
        pair.client.receive_data(FrameEncoder().rst_stream(STDIN_STREAM, RstStatus.CANCEL))
    session = pair.client._session
    assert session is not None
    calls: list[int] = []
    send_data = session.send_data

    def counted(stream_id: int, data: bytes | bytearray | memoryview, *,
                fin: bool = False) -> None:
        calls.append(stream_id)
        send_data(stream_id, data, fin=fin)

    monkeypatch.setattr(session, "send_data", counted)
    can_send = session.can_send(STDIN_STREAM)
    assert can_send is (stdin_state != "reset by the server")
    pair.client.send_data(STDIN, b"abc")
    assert calls == [STDIN_STREAM]  # one call, whatever the session answers
    sent = FrameDecoder().feed(pair.client.data_to_send())
    assert sent == ([DataFrame(STDIN_STREAM, b"abc")] if can_send else [])  # else dropped


def test_server_writes_to_a_stream_the_client_reset_are_dropped() -> None:
    pair = Pair(4).ready()
    pair.server.send_data(STDOUT, b"before")
    pair.server_to_client()
    stdout_stream = 5
    pair.server.receive_data(FrameEncoder().rst_stream(stdout_stream, RstStatus.CANCEL))
    pair.server.send_data(STDOUT, b"after")  # the client no longer reads: dropped
    pair.server.close_channel(STDOUT)  # nor is there a FIN to send
    assert pair.server.data_to_send() == b""
