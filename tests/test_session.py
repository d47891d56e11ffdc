"""The transport-neutral exec/attach session (kstream._exec.session), sans-IO, in memory.

Both roles, over WebSocket v5, v4, v1 and SPDY: the client and server sessions are wired
back to back without sockets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kstream import (
    ChannelData,
    ChannelEnded,
    ConnectionClosed,
    Event,
    LocalProtocolError,
    RemoteProtocolError,
    UpgradeAccepted,
    UpgradeRejected,
    UpgradeRejectedError,
)
from kstream._exec.session import (
    STDIN_CHUNK_SIZE,
    ClientExecSession,
    ExitStatusReceived,
    OutputEnded,
    RequestReceived,
    ServerExecSession,
    TerminalResized,
)
from kstream._exec.spdy_client import SpdyExecClient
from kstream._status import (
    Exited,
    Failed,
    exit_code_status,
    internal_error_status,
    success_status,
)
from kstream._ws.connection import WebSocketChannelConnection
from kstream.testing.pairs import Pair, exec_pair

TARGET = "/api/v1/namespaces/default/pods/p/exec?command=cat&stderr=true&stdin=true&stdout=true"
V5, V4, V1 = "v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"
KINDS = ["ws5", "ws4", "spdy"]


def client_for(kind: str, *, target: str = TARGET, stdin: bool = True, stdout: bool = True,
               stderr: bool = True, tty: bool = False) -> ClientExecSession:
    if kind == "spdy":
        return ClientExecSession(SpdyExecClient(host="h", target=target, stdin=stdin,
                                                stdout=stdout, stderr=stderr, tty=tty),
                                 tty=tty)
    protocols = {"ws5": [V5], "ws4": [V4], "ws1": [V1]}[kind]
    return ClientExecSession(WebSocketChannelConnection.client(host="h", target=target,
                                                               protocols=protocols),
                             tty=tty)


def one_byte_reads(data: bytes) -> list[bytes]:
    return [data[i:i + 1] for i in range(len(data))]


def pump(client: ClientExecSession, server: ServerExecSession,
         *, byte_at_a_time: bool = False) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways until both sides are quiet; return (client, server) events."""
    return Pair(client, server, one_byte_reads if byte_at_a_time else None).pump()


def open_pair(kind: str, *, stdin: bool = True, stdout: bool = True, stderr: bool = True,
              tty: bool = False) -> tuple[ClientExecSession, ServerExecSession]:
    transport, protocol = {"ws5": ("websocket", V5), "ws4": ("websocket", V4),
                           "ws1": ("websocket", V1), "spdy": ("spdy", V4)}[kind]
    pair = exec_pair(transport, protocol, stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
    assert isinstance(pair.client_events[0], UpgradeAccepted)
    return pair.client, pair.server


def output_of(events: Sequence[Event], channel: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, ChannelData) and e.channel == channel)


def outcome(events: Sequence[Event]) -> Exited | Failed:
    results = [e.result for e in events if isinstance(e, ExitStatusReceived)]
    assert len(results) == 1
    return results[0]


# --------------------------------------------------------------------------- client role


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_with_status(kind: str) -> None:
    client, server = open_pair(kind)
    assert client.transport == ("spdy" if kind == "spdy" else "websocket")
    assert client.protocol == (V5 if kind == "ws5" else V4)
    assert client.version == (5 if kind == "ws5" else 4)
    payload = bytes(range(256)) * 1000
    client.write_stdin(payload)
    _, server_events = pump(client, server)
    stdin = [e for e in server_events if isinstance(e, ChannelData)]
    assert b"".join(e.data for e in stdin) == payload
    # client-go's 32 KiB stdin messages.
    assert max(len(e.data) for e in stdin) == STDIN_CHUNK_SIZE
    server.send_stdout(payload)
    server.send_stderr(b"oops")
    server.exit(exit_code_status(3, ["cat"]))
    client_events, _ = pump(client, server)
    assert output_of(client_events, 1) == payload
    assert output_of(client_events, 2) == b"oops"
    assert outcome(client_events) == Exited(3, "command terminated with exit code 3")
    assert client.result == Exited(3, "command terminated with exit code 3")
    # Both outputs end before the outcome, and the close comes last.
    kinds = [type(e) for e in client_events]
    assert kinds.count(OutputEnded) == 2
    assert kinds.index(ExitStatusReceived) > max(
        i for i, k in enumerate(kinds) if k is OutputEnded)
    assert isinstance(client_events[-1], ConnectionClosed)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_exit_codes(kind: str, code: int) -> None:
    client, server = open_pair(kind, stdin=False)
    server.exit(success_status() if code == 0 else exit_code_status(code, ["x"]))
    client_events, _ = pump(client, server, byte_at_a_time=True)
    result = outcome(client_events)
    assert isinstance(result, Exited) and result.code == code


@pytest.mark.parametrize("kind", KINDS)
def test_non_exit_failure_is_failed(kind: str) -> None:
    client, server = open_pair(kind, stdin=False)
    server.exit(internal_error_status("exec: \"nope\": executable file not found"))
    client_events, _ = pump(client, server)
    result = outcome(client_events)
    assert isinstance(result, Failed)
    assert result.reason == "InternalError" and result.code == 500
    assert "executable file not found" in result.message


def test_v1_websocket_status_is_plain_text() -> None:
    client, server = open_pair("ws1", stdin=False)
    assert client.version == 1
    server.exit(internal_error_status("boom"))
    result = outcome(pump(client, server)[0])
    assert isinstance(result, Failed) and "boom" in result.message and result.reason == ""


def test_v1_websocket_success_is_empty() -> None:
    client, server = open_pair("ws1", stdin=False)
    server.exit(exit_code_status(0, ["x"]) if False else success_status())
    assert outcome(pump(client, server)[0]) == Exited(0)


@pytest.mark.parametrize("kind", ["ws5", "spdy"])
def test_close_stdin_reaches_the_server(kind: str) -> None:
    client, server = open_pair(kind)
    client.write_stdin(b"abc")
    client.close_stdin()
    _, server_events = pump(client, server)
    assert output_of(server_events, 0) == b"abc"
    assert server_events[-1] == ChannelEnded(channel=0)


@pytest.mark.parametrize("kind", ["ws4", "ws1"])
def test_close_stdin_on_old_websocket_says_why(kind: str) -> None:
    client, _server = open_pair(kind)
    name = V4 if kind == "ws4" else V1
    with pytest.raises(LocalProtocolError) as info:
        client.close_stdin()
    assert str(info.value) == (f"the negotiated protocol {name} cannot half-close stdin; "
                               "use v5.channel.k8s.io or SPDY")


def test_close_stdin_before_the_upgrade_is_refused() -> None:
    client = client_for("ws5")
    with pytest.raises(LocalProtocolError, match="before the upgrade"):
        client.close_stdin()


@pytest.mark.parametrize("kind", KINDS)
def test_resize_reaches_the_server(kind: str) -> None:
    client, server = open_pair(kind, stdin=True, stderr=False, tty=True)
    client.resize(80, 24)
    client.resize(100, 50)
    _, server_events = pump(client, server)
    assert [e for e in server_events if isinstance(e, TerminalResized)] == [
        TerminalResized(width=80, height=24), TerminalResized(width=100, height=50)]


@pytest.mark.parametrize("kind", KINDS)
def test_resize_without_tty_is_a_local_error_on_every_transport(kind: str) -> None:
    client, _ = open_pair(kind)
    with pytest.raises(LocalProtocolError, match="without tty"):
        client.resize(80, 24)


def test_spdy_resize_without_tty_is_refused_even_when_not_told() -> None:
    # A session not told about the terminal defers to SPDY, which has no resize stream.
    client = ClientExecSession(SpdyExecClient(host="h", target=TARGET, stdin=True,
                                              stdout=True, stderr=True, tty=False))
    with pytest.raises(LocalProtocolError):
        client.resize(80, 24)


@pytest.mark.parametrize("kind", KINDS)
def test_oversized_status_is_refused(kind: str) -> None:
    client, server = open_pair(kind, stdin=False)
    huge = internal_error_status("x" * (70 * 1024))
    server.exit(huge)
    with pytest.raises(RemoteProtocolError, match="exit status larger"):
        pump(client, server)


@pytest.mark.parametrize("kind", KINDS)
def test_eof_before_the_status_is_an_error(kind: str) -> None:
    client, server = open_pair(kind, stdin=False)
    server.send_stdout(b"partial")
    client_events, _ = pump(client, server)
    assert output_of(client_events, 1) == b"partial"
    # The TCP connection drops: no close frame, no GOAWAY, no status.
    with pytest.raises(RemoteProtocolError, match="before the exit status"):
        client.receive_data(b"")


def test_abnormal_websocket_close_after_the_status_keeps_it() -> None:
    client, server = open_pair("ws5", stdin=False)
    server.send_exit(exit_code_status(7, ["x"]))
    client_events, _ = pump(client, server)
    assert not any(isinstance(e, ExitStatusReceived) for e in client_events)
    events = client.receive_data(b"")
    assert outcome(events) == Exited(7, "command terminated with exit code 7")
    assert events[-1] == ConnectionClosed(code=1006, reason="", clean=False)


def test_spdy_status_arrives_at_the_error_stream_end() -> None:
    client, server = open_pair("spdy", stdin=False)
    server.send_exit(exit_code_status(9, ["x"]))
    client_events, _ = pump(client, server)
    # Before the connection ends: the error stream's FIN is the end of the document.
    assert outcome(client_events) == Exited(9, "command terminated with exit code 9")
    assert not any(isinstance(e, ConnectionClosed) for e in client_events)


@pytest.mark.parametrize("kind", KINDS)
def test_local_close_is_not_reported_as_success(kind: str) -> None:
    client, server = open_pair(kind, stdin=False)
    client.close()
    server_events = pump(client, server)[1]
    assert any(isinstance(e, ConnectionClosed) for e in server_events)
    client_events = client.receive_data(b"")
    assert not any(isinstance(e, ExitStatusReceived) for e in client_events)
    assert client.result is None


def test_unknown_channels_are_reported_as_dropped() -> None:
    client, server = open_pair("ws5", stdin=False)
    connection = server._conn
    assert isinstance(connection, WebSocketChannelConnection)
    connection.send_data(4, b"resize?")  # servers never write channel 4
    events = pump(client, server)[0]
    assert [(type(e).__name__, getattr(e, "channel", None)) for e in events] == [
        ("DroppedMessage", 4)]


@pytest.mark.parametrize("kind", ["ws5", "spdy"])
def test_upgrade_rejection_passes_through(kind: str) -> None:
    client = client_for(kind)
    server = ServerExecSession()
    pump(client, server)
    server.reject(403, "pods \"p\" is forbidden: User cannot create pods/exec")
    events = pump(client, server)[0]
    assert len(events) == 1 and isinstance(events[0], UpgradeRejected)
    error = events[0].error
    assert error.status_code == 403
    assert error.status is not None
    assert error.status.message == "pods \"p\" is forbidden: User cannot create pods/exec"


# --------------------------------------------------------------------------- server role


def test_request_received_fields() -> None:
    client = client_for("ws5")
    server = ServerExecSession()
    _, events = pump(client, server)
    request = events[0]
    assert isinstance(request, RequestReceived)
    assert request.method == "GET"
    assert request.path == "/api/v1/namespaces/default/pods/p/exec"
    assert request.query == (("command", "cat"), ("stderr", "true"), ("stdin", "true"),
                             ("stdout", "true"))
    assert request.upgrade == "websocket" and request.protocols == (V5,)
    assert ("host", "h") in request.headers
    spdy = client_for("spdy")
    server = ServerExecSession()
    request = pump(spdy, server)[1][0]
    assert isinstance(request, RequestReceived)
    assert request.method == "POST" and request.upgrade == "spdy"
    assert request.protocols == (V4, "v3.channel.k8s.io", "v2.channel.k8s.io", V1)


def test_request_head_one_byte_at_a_time() -> None:
    client = client_for("ws5")
    head = client.data_to_send()
    server = ServerExecSession()
    events: list[Event] = []
    for i in range(len(head)):
        events += server.receive_data(head[i:i + 1])
    assert [type(e) for e in events] == [RequestReceived]


def test_plain_request_and_response() -> None:
    server = ServerExecSession()
    events = server.receive_data(b"GET /api/v1/namespaces/d/pods/p HTTP/1.1\r\nHost: x\r\n\r\n")
    request = events[0]
    assert isinstance(request, RequestReceived) and request.upgrade is None
    with pytest.raises(LocalProtocolError, match="not an upgrade"):
        server.accept(stdin=False, stdout=True, stderr=False, tty=False, now=0)
    server.respond(200, [("Content-Type", "application/json")], b'{"kind":"Pod"}')
    out = server.data_to_send()
    assert out.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: 14\r\n" in out.lower() and out.endswith(b'{"kind":"Pod"}')
    with pytest.raises(LocalProtocolError, match="already been answered"):
        server.reject(404, "x")


def test_reject_writes_a_status_body() -> None:
    server = ServerExecSession()
    server.receive_data(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    server.reject(404, "pods \"p\" not found")
    out = server.data_to_send()
    assert out.startswith(b"HTTP/1.1 404 ")
    body = json.loads(out.split(b"\r\n\r\n", 1)[1])
    assert body["message"] == "pods \"p\" not found" and body["code"] == 404


def test_answer_before_request_is_refused() -> None:
    server = ServerExecSession()
    with pytest.raises(LocalProtocolError, match="no request"):
        server.respond(200)


@pytest.mark.parametrize("kind", ["ws5", "spdy"])
def test_no_protocol_in_common_answers_403(kind: str) -> None:
    client = client_for(kind)
    server = ServerExecSession(websocket_protocols=[V1], spdy_protocols=[V1])
    # Offer only what the server lacks.
    if kind == "ws5":
        client = ClientExecSession(WebSocketChannelConnection.client(
            host="h", target=TARGET, protocols=[V5]))
    else:
        client = ClientExecSession(SpdyExecClient(host="h", target=TARGET, stdin=True,
                                                  stdout=True, stderr=True, tty=False,
                                                  protocols=[V4]))
    pump(client, server)
    with pytest.raises(UpgradeRejectedError) as info:
        server.accept(stdin=True, stdout=True, stderr=True, tty=False, now=0)
    assert info.value.status_code == 403
    events = pump(client, server)[0]
    assert isinstance(events[0], UpgradeRejected) and events[0].error.status_code == 403


def test_accept_needs_a_stdio_stream() -> None:
    server = ServerExecSession()
    pump(client_for("ws5"), server)
    with pytest.raises(LocalProtocolError, match="at least one"):
        server.accept(stdin=False, stdout=False, stderr=False, tty=False, now=0)


def test_bad_resize_is_ignored_and_the_session_goes_on() -> None:
    client, server = open_pair("ws5", tty=True, stderr=False)
    connection = client._conn
    assert isinstance(connection, WebSocketChannelConnection)
    connection.send_data(4, b"{not json")
    connection.send_data(4, b'{"Width":1,"Height":2}')
    client.write_stdin(b"still here")
    _, events = pump(client, server)
    assert not any(isinstance(e, TerminalResized) for e in events)
    assert output_of(events, 0) == b"still here"


def test_oversized_request_head_is_refused() -> None:
    server = ServerExecSession(max_head_size=1024)
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"GET / HTTP/1.1\r\nX: " + b"a" * 2048 + b"\r\n\r\n")
    out = server.data_to_send()
    assert out.startswith(b"HTTP/1.1 4")  # 431 or 400, with a Status body
    assert b'"kind":"Status"' in out


def test_eof_in_the_head_is_an_error() -> None:
    server = ServerExecSession()
    assert server.receive_data(b"GET / HT") == []
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"")


def test_eof_without_a_request_just_ends() -> None:
    server = ServerExecSession()
    assert server.receive_data(b"") == [ConnectionClosed(clean=True)]
    assert server.data_to_send() == b""


def test_spdy_stream_creation_deadline() -> None:
    client = client_for("spdy")
    server = ServerExecSession(stream_creation_timeout=5.0)
    pump(client, server)
    server.accept(stdin=True, stdout=True, stderr=True, tty=False, now=100.0)
    # The client never reads the 101, so no stream is created.
    assert not server.check_deadline(104.0)
    assert server.check_deadline(105.0)


@pytest.mark.parametrize("kind", ["ws5", "spdy"])
def test_server_send_after_finish_is_refused(kind: str) -> None:
    client, server = open_pair(kind)
    server.exit(success_status())
    with pytest.raises(LocalProtocolError, match="finished"):
        server.send_stdout(b"late")
    pump(client, server)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=300))
def test_arbitrary_bytes_to_a_server_only_raise_remote_errors(data: bytes, cut: int) -> None:
    server = ServerExecSession()
    try:
        server.receive_data(data[:cut])
        server.receive_data(data[cut:])
        server.receive_data(b"")
    except RemoteProtocolError:
        pass


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(["ws5", "spdy"]), data=st.binary(max_size=300))
def test_arbitrary_bytes_after_the_upgrade_only_raise_remote_errors(kind: str,
                                                                    data: bytes) -> None:
    client, server = open_pair(kind, stdin=False)
    for side in (client, server):
        try:
            side.receive_data(data)
            side.receive_data(b"")
        except RemoteProtocolError:
            pass


@settings(max_examples=100)
@given(kind=st.sampled_from(KINDS), payload=st.binary(max_size=3 * STDIN_CHUNK_SIZE),
       split=st.integers(min_value=1, max_value=5000))
def test_stdin_round_trip_at_any_split(kind: str, payload: bytes, split: int) -> None:
    client, server = open_pair(kind)
    client.write_stdin(payload)
    data = client.data_to_send()
    events: list[Event] = []
    for start in range(0, len(data), split):
        events += server.receive_data(data[start:start + split])
    assert output_of(events, 0) == payload
