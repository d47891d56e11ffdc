"""Branch-coverage tests of exec over SPDY (kstream._exec.spdy, spdy_client, spdy_server).

Each test pins down one behaviour the older test files left unexercised; the branch it
covers is named in its docstring.
"""

from __future__ import annotations

import pytest
from test_spdy_exec import PATH, Pair, Wire

from kstream._channels import ERROR, STDIN, STDOUT, V4_NAME
from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._events import (
    ChannelData,
    ChannelEnded,
    ConnectionClosed,
    Event,
    UpgradeRequested,
)
from kstream._exec.spdy import ExecReady, protocol_version
from kstream._exec.spdy_client import SpdyExecClient
from kstream._exec.spdy_server import SpdyExecServer
from kstream._http import _exec_target_for_path as exec_target
from kstream._spdy.frames import (
    DataFrame,
    FrameEncoder,
    GoAwayFrame,
    GoAwayStatus,
    RstStatus,
    RstStreamFrame,
    SynReplyFrame,
    WindowUpdateFrame,
)
from kstream._status import exit_code_status, success_status
from kstream._upgrade import MAX_HEAD_SIZE, ServerUpgrade


def request_bytes(*, stdin: bool = False, stdout: bool = True, stderr: bool = False) -> bytes:
    """The upgrade request a SpdyExecClient writes."""
    target = exec_target(PATH, command=("cat",), container="main", stdin=stdin,
                         stdout=stdout, stderr=stderr, tty=False)
    client = SpdyExecClient(host="h", target=target, protocols=(V4_NAME,), stdin=stdin,
                            stdout=stdout, stderr=stderr, tty=False)
    return client.data_to_send()


def raw_client_server() -> tuple[SpdyExecServer, FrameEncoder, Wire]:
    """A server that accepted an exec of error and stdout, fed by a hand-driven client."""
    server = SpdyExecServer()
    events = server.receive_data(request_bytes())
    assert isinstance(events[0], UpgradeRequested)
    assert server.accept(stdin=False, stdout=True, stderr=False, tty=False, now=0.0) == []
    head, _, rest = server.data_to_send().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ") and rest == b""
    return server, FrameEncoder(), Wire()


# --------------------------------------------------------------------------- shared core


@pytest.mark.parametrize("name", ["v5.channel.k8s.io", "v4.base64.channel.k8s.io", "bogus"])
def test_protocol_version_of_a_name_spdy_does_not_have(name: str) -> None:
    """``protocol_version``: WebSocket-only and unknown names are remote errors."""
    with pytest.raises(RemoteProtocolError, match="unknown stream protocol"):
        protocol_version(name)


def test_nothing_is_read_after_goaway_in_the_same_read() -> None:
    """``_translate``: events the session decoded after the GOAWAY are not reported."""
    pair = Pair(4, stdin=False, stderr=False).ready()
    encoder = FrameEncoder()
    stdout_id = pair.client._by_channel[STDOUT].stream_id
    events = pair.client.receive_data(encoder.goaway(0, GoAwayStatus.OK)
                                      + encoder.data(stdout_id, b"too late"))
    assert events == [ChannelEnded(channel=ERROR), ChannelEnded(channel=STDOUT),
                      ConnectionClosed(code=GoAwayStatus.OK, clean=True)]


# --------------------------------------------------------------------------- client


def test_client_refuses_a_stream_the_server_opens() -> None:
    """``SpdyExecClient._on_opened``: RST_STREAM REFUSED_STREAM, nothing for the caller."""
    pair = Pair(4).ready()
    assert pair.server._session is not None
    pushed = pair.server._session.open_stream((("streamtype", "stdout"),))
    assert pair.server_to_client() == []
    pair.client_to_server()
    assert [(f.stream_id, f.status) for f in pair.to_server.of_type(RstStreamFrame)] == [
        (pushed, RstStatus.REFUSED_STREAM)]


def test_client_stdin_closed_before_the_reply_sends_its_fin_with_it() -> None:
    """``_flush_pending``: no bytes held back, only the FIN."""
    pair = Pair(4)
    pair.upgrade()
    pair.client.close_channel(STDIN)
    pair.client_to_server()
    pair.server_to_client()
    events = pair.client_to_server()
    assert events == [ChannelEnded(channel=STDIN)]
    stdin_id = pair.client._by_channel[STDIN].stream_id
    assert [(f.stream_id, bytes(f.data), f.fin) for f in pair.to_server.of_type(DataFrame)
            ] == [(stdin_id, b"", True)]


def test_client_bytes_for_a_stream_reset_before_its_reply_are_dropped() -> None:
    """``send_data``: an unreplied stream the server reset is not written to."""
    pair = Pair(4, stderr=False)
    pair.upgrade()
    stdin_id = pair.client._by_channel[STDIN].stream_id
    events = pair.client.receive_data(FrameEncoder().rst_stream(stdin_id, RstStatus.CANCEL))
    assert events == [ChannelEnded(channel=STDIN, reset=RstStatus.CANCEL)]
    pair.client.send_data(STDIN, b"dropped")
    assert pair.client._pending_bytes == 0
    pair.client_to_server()
    assert pair.to_server.of_type(DataFrame) == []


def test_client_close_channel_after_the_server_ended_does_nothing() -> None:
    """``close_channel``: once the peer ended the session, closing is a no-op."""
    pair = Pair(4).ready()
    pair.server.finish()
    assert isinstance(pair.server_to_client()[-1], ConnectionClosed)
    pair.client.close_channel(STDIN)
    assert pair.client.data_to_send() == b""


# --------------------------------------------------------------------------- server


def test_server_receive_request_needs_a_fresh_server() -> None:
    """``receive_request``: bytes were already fed."""
    server = SpdyExecServer()
    server.receive_data(request_bytes())
    engine = ServerUpgrade(max_head_size=MAX_HEAD_SIZE)
    engine.receive_data(request_bytes())
    with pytest.raises(LocalProtocolError, match="only a fresh server"):
        server.receive_request(engine)


def test_server_receive_request_of_a_malformed_request_can_be_rejected() -> None:
    """``receive_request``: the error is kept, reject() answers it, later bytes re-raise."""
    engine = ServerUpgrade(max_head_size=MAX_HEAD_SIZE)
    engine.receive_data(b"NOT HTTP AT ALL\r\n\r\n")
    server = SpdyExecServer()
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_request(engine)
    server.reject(400, message="bad request")
    assert server.data_to_send().startswith(b"HTTP/1.1 400 ")
    with pytest.raises(RemoteProtocolError) as again:
        server.receive_data(b"more")
    assert again.value is info.value


def test_server_eof_while_deciding_is_reported_by_accept() -> None:
    """``_receive`` in DECIDING: an EOF is kept and fed to the session by accept()."""
    server = SpdyExecServer()
    server.receive_data(request_bytes())
    assert server.receive_data(b"") == []
    events = server.accept(stdin=False, stdout=True, stderr=False, tty=False, now=0.0)
    assert events == [ConnectionClosed(code=None, clean=True)]


def test_server_ignores_bytes_after_rejecting() -> None:
    """``_receive`` in REJECTED: nothing more is read."""
    server = SpdyExecServer()
    server.receive_data(request_bytes())
    server.reject(403, message="no")
    server.data_to_send()
    assert server.receive_data(b"whatever") == []
    assert server.data_to_send() == b""


def test_server_answers_need_a_waiting_request() -> None:
    """``accept``/``refuse``/``reject``: refused before a request or without stdio."""
    server = SpdyExecServer()
    with pytest.raises(LocalProtocolError, match="no upgrade request to refuse"):
        server.refuse()
    with pytest.raises(LocalProtocolError, match="no upgrade request to reject"):
        server.reject(400)
    server.receive_data(request_bytes())
    with pytest.raises(LocalProtocolError, match="at least one of stdin"):
        server.accept(stdin=False, stdout=False, stderr=False, tty=False, now=0.0)


def test_server_finds_the_stream_type_among_other_headers() -> None:
    """``_stream_type``: the header need not come first."""
    server, encoder, wire = raw_client_server()
    events: list[Event] = server.receive_data(
        encoder.syn_stream(1, (("x-extra", "1"), ("streamtype", "error")))
        + encoder.syn_stream(3, (("streamtype", "stdout"), ("x-extra", "2"))))
    assert events == [ExecReady()]
    wire.record(server.data_to_send())
    assert [f.stream_id for f in wire.of_type(SynReplyFrame)] == [1, 3]


def test_server_unidirectional_stream_needs_no_reply_and_takes_no_output() -> None:
    """``_on_opened``: a unidirectional stream counts, is not replied to, is not written."""
    server, encoder, wire = raw_client_server()
    events = server.receive_data(
        encoder.syn_stream(1, (("streamtype", "error"),))
        + encoder.syn_stream(3, (("streamtype", "stdout"),), unidirectional=True))
    assert events == [ExecReady()]
    server.send_data(STDOUT, b"nobody reads this")
    server.close_channel(STDOUT)
    wire.record(server.data_to_send())
    assert [f.stream_id for f in wire.of_type(SynReplyFrame)] == [1]
    assert wire.of_type(DataFrame) == []


def test_server_status_before_the_error_stream_is_refused() -> None:
    """``send_status``: the client has not created the error stream yet."""
    pair = Pair(4)
    pair.upgrade()
    with pytest.raises(LocalProtocolError, match="not created the error stream"):
        pair.server.send_status(success_status())


def test_server_status_on_an_error_stream_the_client_reset_is_dropped() -> None:
    """``send_status``: the stream cannot send; the status counts as sent all the same."""
    pair = Pair(4).ready()
    assert pair.client._session is not None
    error_id = pair.client._by_channel[ERROR].stream_id
    pair.client._session.reset_stream(error_id, RstStatus.CANCEL)
    assert pair.client_to_server() == [ChannelEnded(channel=ERROR, reset=RstStatus.CANCEL)]
    pair.server.send_status(exit_code_status(3, ["false"]))
    pair.server_to_client()
    assert [f for f in pair.to_client.of_type(DataFrame) if f.stream_id == error_id] == []
    with pytest.raises(LocalProtocolError, match="already sent"):
        pair.server.send_status(success_status())


def test_server_close_is_finish() -> None:
    """``close``: RST CANCEL the unfinished streams, then GOAWAY OK."""
    pair = Pair(4, stdin=False, stderr=False).ready()
    pair.server.close_channel(STDOUT)
    pair.server.close()
    events = pair.server_to_client()
    assert events[-1] == ConnectionClosed(code=GoAwayStatus.OK, clean=True)
    assert ChannelData not in {type(e) for e in events}
    error_id = pair.client._by_channel[ERROR].stream_id
    assert [(f.stream_id, f.status) for f in pair.to_client.of_type(RstStreamFrame)] == [
        (error_id, RstStatus.CANCEL)]
    assert [f.status for f in pair.to_client.of_type(GoAwayFrame)] == [GoAwayStatus.OK]


def test_server_end_of_a_stream_of_unknown_type_is_not_a_channel_end() -> None:
    """``_on_end``: a stream of a type we ignore ends without a ChannelEnded."""
    server, encoder, wire = raw_client_server()
    events = server.receive_data(
        encoder.syn_stream(1, (("streamtype", "error"),))
        + encoder.syn_stream(3, (("streamtype", "telemetry"),), fin=True)
        + encoder.syn_stream(5, (("streamtype", "stdout"),)))
    assert events == [ExecReady()]
    assert server._streams[3].ended_by_peer and server._streams[3].channel is None
    wire.record(server.data_to_send())
    assert [f.stream_id for f in wire.of_type(SynReplyFrame)] == [1, 3, 5]
    # Its end is reported once the session ends, with the channels': not at all.
    assert server.receive_data(b"") == [ChannelEnded(channel=ERROR),
                                        ChannelEnded(channel=STDOUT),
                                        ConnectionClosed(code=None, clean=False)]


def test_server_replies_to_a_stream_without_a_type_and_ignores_it() -> None:
    """``_stream_type``: no ``streamtype`` header at all is an unknown type."""
    server, encoder, wire = raw_client_server()
    events = server.receive_data(
        encoder.syn_stream(1, (("x-extra", "1"),))
        + encoder.data(1, b"ignored")
        + encoder.syn_stream(3, (("streamtype", "error"),))
        + encoder.syn_stream(5, (("streamtype", "stdout"),)))
    assert events == [ExecReady()]
    assert server._streams[1].channel is None
    wire.record(server.data_to_send())
    assert [f.stream_id for f in wire.of_type(SynReplyFrame)] == [1, 3, 5]


def test_server_close_channel_after_the_client_ended_does_nothing() -> None:
    """``SpdyExecServer.close_channel``: once the peer ended the session, a no-op."""
    pair = Pair(4).ready()
    pair.client.close()
    assert isinstance(pair.client_to_server()[-1], ConnectionClosed)
    pair.server.close_channel(STDOUT)
    assert pair.server.data_to_send() == b""


def test_strict_client_gives_the_window_back_as_data_is_delivered() -> None:
    """``_translate`` in strict flow-control mode: delivered data is acknowledged at once."""
    pair = Pair(4, stdin=False, stderr=False)
    pair.client = SpdyExecClient(host="h", target="/exec?stdout=true", protocols=(V4_NAME,),
                                 stdin=False, stdout=True, stderr=False, tty=False,
                                 strict_flow_control=True)
    pair.ready()
    pair.server.send_data(STDOUT, b"x" * 40000)
    events = pair.server_to_client()
    assert events == [ChannelData(channel=STDOUT, data=b"x" * 40000)]
    pair.client_to_server()
    stdout_id = pair.client._by_channel[STDOUT].stream_id
    assert [(f.stream_id, f.delta) for f in pair.to_server.frames
            if isinstance(f, WindowUpdateFrame)] == [(stdout_id, 40000), (0, 40000)]
