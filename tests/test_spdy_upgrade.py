"""Tests of the HTTP/1.1 upgrade to SPDY/3.1 (_spdy_upgrade.py), both roles."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._events import (
    ConnectionClosed,
    Event,
    UpgradeAccepted,
    UpgradeRejected,
    UpgradeRequested,
)
from kstream._spdy.events import (
    GoAwayReceived,
    StreamData,
    StreamOpened,
    StreamReplied,
    StreamReset,
)
from kstream._spdy.frames import GoAwayStatus, RstStatus
from kstream._spdy.session import SpdySession
from kstream._spdy.upgrade import (
    DEFAULT_SPDY_PROTOCOLS,
    SpdyUpgradeClient,
    SpdyUpgradeServer,
    split_protocols,
)

TARGET = ("/api/v1/namespaces/default/pods/mypod/exec?command=sh&command=-c&command=echo+hi%3B"
          "+exit+3&container=app&stderr=true&stdin=true&stdout=true")
ALL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
                 "v2.channel.k8s.io", "channel.k8s.io")

# protocol-notes §3.1, Go 1.19 Request.Write, without the User-Agent line.
EXPECTED_REQUEST = (
    f"POST {TARGET} HTTP/1.1\r\n"
    "Host: 10.0.0.1:6443\r\n"
    "Content-Length: 0\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: SPDY/3.1\r\n"
    "X-Stream-Protocol-Version: v5.channel.k8s.io\r\n"
    "X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
    "X-Stream-Protocol-Version: v3.channel.k8s.io\r\n"
    "X-Stream-Protocol-Version: v2.channel.k8s.io\r\n"
    "X-Stream-Protocol-Version: channel.k8s.io\r\n"
    "\r\n").encode()

# Recorded from Go 1.19 net/http + moby/spdystream, with httpstream.go Handshake and
# spdy/upgrade.go UpgradeResponse replayed line for line; the request offered v5 and v4 and
# pipelined a SYN_STREAM 1 {streamtype: error}. The server replied in one go: the 101, then
# SYN_REPLY 1, DATA 1 "hi\n", RST_STREAM 1 CANCEL, GOAWAY last=1 OK.
GO_101_HEAD = (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
               b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
GO_SPDY_AFTER_101 = bytes.fromhex(
    "80030002000000140000000178f9e3c6a7c26260606000000000ffff"
    "000000010000000368690a"
    "80030003000000080000000100000005"
    "80030007000000080000000100000000")
GO_101 = GO_101_HEAD + GO_SPDY_AFTER_101
# The same server, request offering "v9.channel.k8s.io, v8.channel.k8s.io" (one line).
NO_MATCH_REQUEST = (b"POST /exec HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
                    b"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                    b"X-Stream-Protocol-Version: v9.channel.k8s.io, v8.channel.k8s.io\r\n"
                    b"Connection: close\r\n\r\n")
GO_403 = (
    b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io\r\n"
    b"X-Accepted-Stream-Protocol-Versions: v3.channel.k8s.io\r\n"
    b"X-Accepted-Stream-Protocol-Versions: v2.channel.k8s.io\r\n"
    b"X-Accepted-Stream-Protocol-Versions: channel.k8s.io\r\n"
    b"X-Content-Type-Options: nosniff\r\nDate: Fri, 27 Nov 2026 00:10:58 GMT\r\n"
    b"Content-Length: 190\r\nConnection: close\r\n\r\n"
    b"unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io "
    b"v8.channel.k8s.io], server accepts [v4.channel.k8s.io v3.channel.k8s.io "
    b"v2.channel.k8s.io channel.k8s.io]\n")
# The same server, request without Connection/Upgrade headers.
NO_UPGRADE_REQUEST = (b"POST /exec HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n"
                      b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\nAccept: a\"b\r\n"
                      b"Connection: close\r\n\r\n")
GO_400 = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"X-Content-Type-Options: nosniff\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
    b"Date: Fri, 27 Nov 2026 00:10:58 GMT\r\nContent-Length: 217\r\nConnection: close\r\n\r\n"
    b'unable to upgrade: missing upgrade headers in request: http.Header{"Accept":[]string{'
    b'"a\\"b"}, "Connection":[]string{"close"}, "Content-Length":[]string{"0"}, '
    b'"X-Stream-Protocol-Version":[]string{"v4.channel.k8s.io"}}\n')


def without_lines(response: bytes, *names: bytes) -> bytes:
    """``response`` minus the header lines named (Go's Date)."""
    head, _, body = response.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n")
             if line.split(b":", 1)[0].lower() not in {n.lower() for n in names}]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def client() -> SpdyUpgradeClient:
    upgrade = SpdyUpgradeClient(host="10.0.0.1:6443", target=TARGET, protocols=ALL_PROTOCOLS)
    upgrade.data_to_send()
    return upgrade


def server_with(request: bytes) -> tuple[SpdyUpgradeServer, list[Event]]:
    upgrade = SpdyUpgradeServer()
    return upgrade, upgrade.receive_data(request)


def rejection(events: list[Event]) -> UpgradeRejected:
    assert len(events) == 1
    assert isinstance(events[0], UpgradeRejected)
    return events[0]


# --------------------------------------------------------------------------- client


def test_request_bytes_are_go_s() -> None:
    upgrade = SpdyUpgradeClient(host="10.0.0.1:6443", target=TARGET, protocols=ALL_PROTOCOLS)
    assert upgrade.data_to_send() == EXPECTED_REQUEST
    assert upgrade.data_to_send() == b""


def test_request_defaults_and_extra_headers() -> None:
    upgrade = SpdyUpgradeClient(host="h", target="/x",
                                headers=[("Authorization", "Bearer t"), ("User-Agent", "k")])
    text = upgrade.data_to_send().decode()
    lines = text.split("\r\n")
    assert lines[0] == "POST /x HTTP/1.1"
    assert [line.split(": ")[1] for line in lines if line.startswith("X-Stream")] == list(
        DEFAULT_SPDY_PROTOCOLS)
    assert lines[-4:] == ["Authorization: Bearer t", "User-Agent: k", "", ""]


def test_invalid_request_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        SpdyUpgradeClient(host="h", target="/x", headers=[("X-Bad", "a\r\nb")])


def test_recorded_go_101_with_spdy_bytes_in_the_same_read() -> None:
    upgrade = client()
    events = upgrade.receive_data(GO_101)
    assert events == [UpgradeAccepted(transport="spdy", protocol="v4.channel.k8s.io", headers=(
        ("connection", "Upgrade"), ("upgrade", "SPDY/3.1"),
        ("x-stream-protocol-version", "v4.channel.k8s.io")))]
    assert upgrade.trailing_data == GO_SPDY_AFTER_101
    session = SpdySession(client=True)
    session.open_stream((("streamtype", "error"),))
    assert session.receive_data(upgrade.trailing_data) == [
        StreamReplied(stream_id=1), StreamData(stream_id=1, data=b"hi\n"),
        StreamReset(stream_id=1, status=RstStatus.CANCEL),
        GoAwayReceived(last_good_stream_id=1, status=GoAwayStatus.OK)]
    with pytest.raises(LocalProtocolError):
        upgrade.receive_data(b"more")


def test_recorded_go_101_byte_by_byte() -> None:
    upgrade = client()
    events: list[Event] = []
    position = 0
    while not events:
        events = upgrade.receive_data(GO_101[position:position + 1])
        position += 1
    assert position == len(GO_101_HEAD)
    assert isinstance(events[0], UpgradeAccepted)
    assert events[0].protocol == "v4.channel.k8s.io"
    assert upgrade.trailing_data == b""  # the rest is for the session


@settings(max_examples=100, deadline=None)
@given(cut=st.integers(1, len(GO_101) - 1))
def test_recorded_go_101_split_anywhere(cut: int) -> None:
    upgrade = client()
    events = upgrade.receive_data(GO_101[:cut])
    if events:
        rest = GO_101[cut:]
    else:
        events = upgrade.receive_data(GO_101[cut:])
        rest = b""
    assert isinstance(events[0], UpgradeAccepted)
    assert upgrade.trailing_data + rest == GO_SPDY_AFTER_101


def test_101_without_protocol_header_means_v1() -> None:
    upgrade = client()
    events = upgrade.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n"
                                  b"Upgrade: spdy/3.1\r\n\r\n")
    assert events == [UpgradeAccepted(transport="spdy", protocol="", headers=(
        ("connection", "upgrade"), ("upgrade", "spdy/3.1")))]


def test_100_continue_is_skipped() -> None:
    upgrade = client()
    events = upgrade.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n" + GO_101_HEAD)
    assert isinstance(events[0], UpgradeAccepted)


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: SPDY/3.1\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
])
def test_101_without_the_upgrade_headers_is_rejected(head: bytes) -> None:
    error = rejection(client().receive_data(head)).error
    assert error.status_code == 101
    assert "spdy/3.1" in error.detail


def test_recorded_go_403() -> None:
    error = rejection(client().receive_data(GO_403)).error
    assert error.status_code == 403
    assert error.reason == "Forbidden"
    assert error.body.startswith(b"unable to upgrade: unable to negotiate protocol")
    assert ("x-accepted-stream-protocol-versions", "channel.k8s.io") in error.headers
    assert error.status is None
    assert "unable to negotiate protocol" in str(error)


def test_recorded_go_400() -> None:
    error = rejection(client().receive_data(GO_400)).error
    assert error.status_code == 400
    assert error.body.startswith(b"unable to upgrade: missing upgrade headers")


def test_status_body_is_decoded() -> None:
    body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                       "status": "Failure", "message": "pods \"p\" is forbidden",
                       "reason": "Forbidden", "code": 403}).encode()
    response = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    upgrade = client()
    events: list[Event] = []
    for i in range(len(response)):
        events += upgrade.receive_data(response[i:i + 1])
    error = rejection(events).error
    assert error.status is not None
    assert error.status.message == 'pods "p" is forbidden'


def test_body_is_kept_up_to_64_kib() -> None:
    upgrade = client()
    head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 200000\r\n\r\n"
    assert upgrade.receive_data(head + b"x" * 60000) == []
    error = rejection(upgrade.receive_data(b"y" * 10000)).error
    assert error.body == b"x" * 60000 + b"y" * 5536


def test_body_until_eof() -> None:
    upgrade = client()
    assert upgrade.receive_data(b"HTTP/1.1 404 Not Found\r\n\r\nnot here") == []
    error = rejection(upgrade.receive_data(b"")).error
    assert (error.status_code, error.body) == (404, b"not here")


def test_body_cut_short_is_still_a_rejection() -> None:
    upgrade = client()
    assert upgrade.receive_data(b"HTTP/1.1 500 Oops\r\nContent-Length: 10\r\n\r\nabc") == []
    error = rejection(upgrade.receive_data(b"")).error
    assert (error.status_code, error.body) == (500, b"abc")


@pytest.mark.parametrize("data", [b"", b"HTTP/1.1 101 Swi", b"SSH-2.0-OpenSSH\r\n\r\n"])
def test_no_valid_response_is_a_remote_error(data: bytes) -> None:
    upgrade = client()
    with pytest.raises(RemoteProtocolError):
        upgrade.receive_data(data)
        upgrade.receive_data(b"")


def test_response_head_is_bounded() -> None:
    upgrade = client()
    with pytest.raises(RemoteProtocolError):
        upgrade.receive_data(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000)


# --------------------------------------------------------------------------- server


def test_request_byte_by_byte() -> None:
    upgrade = SpdyUpgradeServer()
    events: list[Event] = []
    for i in range(len(EXPECTED_REQUEST)):
        events += upgrade.receive_data(EXPECTED_REQUEST[i:i + 1])
    assert len(events) == 1
    request = events[0]
    assert isinstance(request, UpgradeRequested)
    assert request.method == "POST"
    assert request.target == TARGET
    assert request.path == "/api/v1/namespaces/default/pods/mypod/exec"
    assert request.query[:3] == (("command", "sh"), ("command", "-c"),
                                 ("command", "echo hi; exit 3"))
    assert request.protocols == ALL_PROTOCOLS
    assert ("upgrade", "SPDY/3.1") in request.headers
    assert upgrade.request == request


def test_accept_writes_go_s_101() -> None:
    upgrade, _ = server_with(EXPECTED_REQUEST)
    assert upgrade.negotiated_protocol == "v4.channel.k8s.io"  # v5 is not a SPDY version
    assert upgrade.accept() == "v4.channel.k8s.io"
    assert upgrade.data_to_send() == GO_101_HEAD
    with pytest.raises(LocalProtocolError):
        upgrade.receive_data(b"x")
    with pytest.raises(LocalProtocolError):
        upgrade.reject(400)


def test_pipelined_session_bytes_become_trailing_data() -> None:
    upgrade, events = server_with(EXPECTED_REQUEST + b"\x80\x03\x00\x06")
    assert isinstance(events[0], UpgradeRequested)
    assert upgrade.receive_data(b"\x00\x00\x00\x04\x00\x00\x00\x01") == []
    upgrade.accept()
    assert upgrade.trailing_data == bytes.fromhex("800300060000000400000001")


def test_accept_an_explicit_protocol() -> None:
    upgrade, _ = server_with(EXPECTED_REQUEST)
    with pytest.raises(LocalProtocolError):
        upgrade.accept("v9.channel.k8s.io")  # not offered
    assert upgrade.accept("v2.channel.k8s.io", headers=[("X-Extra", "1")]) == \
        "v2.channel.k8s.io"
    assert upgrade.data_to_send().endswith(
        b"X-Stream-Protocol-Version: v2.channel.k8s.io\r\nX-Extra: 1\r\n\r\n")


def test_comma_separated_protocols_are_split() -> None:
    headers = (("x-stream-protocol-version", " v4.channel.k8s.io ,, v3.channel.k8s.io"),
               ("other", "v9"), ("x-stream-protocol-version", "channel.k8s.io"))
    assert split_protocols(headers) == ("v4.channel.k8s.io", "v3.channel.k8s.io",
                                        "channel.k8s.io")


def test_refuse_no_common_protocol_as_go() -> None:
    upgrade, events = server_with(NO_MATCH_REQUEST)
    request = events[0]
    assert isinstance(request, UpgradeRequested)
    assert request.protocols == ("v9.channel.k8s.io", "v8.channel.k8s.io")
    with pytest.raises(LocalProtocolError):
        upgrade.accept()
    upgrade.refuse()
    assert upgrade.data_to_send() == without_lines(GO_403, b"Date")


def test_negotiation_failure_is_the_403() -> None:
    upgrade, _ = server_with(NO_MATCH_REQUEST)
    upgrade.negotiation_failure()
    assert upgrade.data_to_send() == without_lines(GO_403, b"Date")


def test_refuse_missing_upgrade_headers_as_go() -> None:
    upgrade, _ = server_with(NO_UPGRADE_REQUEST)
    assert not upgrade.has_upgrade_headers
    with pytest.raises(LocalProtocolError):
        upgrade.accept()
    upgrade.refuse()
    assert upgrade.data_to_send() == without_lines(GO_400, b"Date")


def test_refuse_missing_protocol_header() -> None:
    request = (b"POST /exec HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
               b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: \r\n\r\n")
    upgrade, events = server_with(request)
    assert isinstance(events[0], UpgradeRequested)
    assert events[0].protocols == ()
    with pytest.raises(LocalProtocolError):
        upgrade.accept()
    upgrade.refuse()
    response = upgrade.data_to_send()
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert response.endswith(b"\r\n\r\nunable to upgrade: X-Stream-Protocol-Version is "
                             b"required\n")


def test_legacy_client_without_protocols_can_be_accepted_explicitly() -> None:
    request = (b"POST /exec HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
               b"Upgrade: SPDY/3.1\r\n\r\n")
    upgrade, _ = server_with(request)
    assert upgrade.accept("") == ""
    assert b"X-Stream-Protocol-Version" not in upgrade.data_to_send()


def test_refuse_an_acceptable_request_is_misuse() -> None:
    upgrade, _ = server_with(EXPECTED_REQUEST)
    with pytest.raises(LocalProtocolError):
        upgrade.refuse()


def test_reject_with_a_status_body_reaches_the_client() -> None:
    upgrade, _ = server_with(EXPECTED_REQUEST)
    upgrade.reject(401, message="Unauthorized", headers=[("Www-Authenticate", "Bearer")])
    response = upgrade.data_to_send()
    assert response.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    error = rejection(client().receive_data(response)).error
    assert error.status_code == 401
    assert error.status is not None and error.status.message == "Unauthorized"
    assert ("www-authenticate", "Bearer") in error.headers


def test_reject_with_an_explicit_body() -> None:
    upgrade, _ = server_with(EXPECTED_REQUEST)
    upgrade.reject(404, body=b"no such pod")
    response = upgrade.data_to_send()
    assert b"Content-Type: text/plain; charset=utf-8\r\n" in response
    assert response.endswith(b"Content-Length: 11\r\n\r\nno such pod")


def test_request_body_is_read_and_dropped() -> None:
    request = EXPECTED_REQUEST.replace(b"Content-Length: 0", b"Content-Length: 5")
    upgrade, events = server_with(request + b"hello" + b"\x80\x03")
    assert isinstance(events[0], UpgradeRequested)
    upgrade.accept()
    assert upgrade.trailing_data == b"\x80\x03"


def test_request_body_is_bounded() -> None:
    request = EXPECTED_REQUEST.replace(b"Content-Length: 0", b"Content-Length: 100000")
    upgrade = SpdyUpgradeServer()
    with pytest.raises(RemoteProtocolError):
        upgrade.receive_data(request + b"x" * 70000)


def test_bytes_before_the_answer_are_bounded() -> None:
    upgrade, _ = server_with(EXPECTED_REQUEST)
    with pytest.raises(RemoteProtocolError):
        upgrade.receive_data(b"x" * 70000)


def test_garbage_request_can_still_be_answered_400() -> None:
    upgrade = SpdyUpgradeServer()
    with pytest.raises(RemoteProtocolError):
        upgrade.receive_data(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        upgrade.receive_data(b"more")
    upgrade.reject(400, message="bad request")
    assert upgrade.data_to_send().startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_client_leaving_before_a_request() -> None:
    upgrade = SpdyUpgradeServer()
    assert upgrade.receive_data(b"") == [ConnectionClosed(clean=True)]
    half = SpdyUpgradeServer()
    half.receive_data(b"POST / HTTP/1.1\r\n")
    with pytest.raises(RemoteProtocolError):
        half.receive_data(b"")


def test_answers_need_a_request() -> None:
    upgrade = SpdyUpgradeServer()
    for answer in (upgrade.accept, upgrade.refuse, upgrade.negotiation_failure):
        with pytest.raises(LocalProtocolError):
            answer()
    with pytest.raises(LocalProtocolError):
        upgrade.reject(400)


def test_client_and_server_back_to_back() -> None:
    upgrade_client = SpdyUpgradeClient(host="h:1", target="/exec?stdout=true")
    upgrade_server = SpdyUpgradeServer(supported=("v3.channel.k8s.io", "v4.channel.k8s.io"))
    session_client = SpdySession(client=True)
    session_client.open_stream((("streamtype", "error"),))
    request = upgrade_client.data_to_send() + session_client.data_to_send()
    events = upgrade_server.receive_data(request)
    assert isinstance(events[0], UpgradeRequested)
    # The first *client* protocol the server supports wins (Handshake).
    assert upgrade_server.accept() == "v4.channel.k8s.io"
    session_server = SpdySession(client=False, trailing_data=upgrade_server.trailing_data)
    assert session_server.receive_trailing_data() == [
        StreamOpened(stream_id=1, headers=(("streamtype", "error"),))]
    session_server.reply(1)
    accepted = upgrade_client.receive_data(upgrade_server.data_to_send() +
                                           session_server.data_to_send())
    assert isinstance(accepted[0], UpgradeAccepted)
    assert accepted[0].protocol == "v4.channel.k8s.io"
    assert session_client.receive_data(upgrade_client.trailing_data) == [
        StreamReplied(stream_id=1)]


# --------------------------------------------------------------------------- robustness


@settings(max_examples=200, deadline=None)
@given(prefix=st.sampled_from([b"", b"HTTP/1.1 ", b"HTTP/1.1 200 OK\r\n",
                               b"HTTP/1.1 101 Switching Protocols\r\n"]),
       tail=st.binary(max_size=200), eof=st.booleans())
def test_client_arbitrary_bytes(prefix: bytes, tail: bytes, eof: bool) -> None:
    upgrade = client()
    try:
        events = upgrade.receive_data(prefix + tail)
        if eof and not events:
            events = upgrade.receive_data(b"")
    except RemoteProtocolError:
        return
    assert all(isinstance(e, UpgradeAccepted | UpgradeRejected) for e in events)


@settings(max_examples=200, deadline=None)
@given(prefix=st.sampled_from([b"", b"POST / HTTP/1.1\r\n", EXPECTED_REQUEST[:120]]),
       tail=st.binary(max_size=200), eof=st.booleans())
def test_server_arbitrary_bytes(prefix: bytes, tail: bytes, eof: bool) -> None:
    upgrade = SpdyUpgradeServer()
    try:
        events = upgrade.receive_data(prefix + tail)
        if eof and not events:
            events = upgrade.receive_data(b"")
    except RemoteProtocolError:
        upgrade.reject(400)  # always possible after a bad request
        assert upgrade.data_to_send().startswith(b"HTTP/1.1 400 ")
        return
    assert all(isinstance(e, UpgradeRequested | ConnectionClosed) for e in events)


# --------------------------------------------------------------------------------------
# The exec connection takes the upgrade's last bytes once, then never asks it again


class _Finished:
    """Stands in for a finished upgrade: asking it for bytes is the bug."""

    def data_to_send(self) -> bytes:
        raise AssertionError("the finished upgrade was asked for bytes")


def test_exec_server_takes_the_101_once() -> None:
    from kstream._exec.spdy_server import SpdyExecServer

    client = SpdyUpgradeClient(host="h", target=TARGET, protocols=["v4.channel.k8s.io"])
    server = SpdyExecServer()
    server.receive_data(client.data_to_send())
    server.accept(stdin=True, stdout=True, stderr=False, tty=False, now=0.0)
    server._upgrade = _Finished()  # type: ignore[assignment]
    assert server.data_to_send().startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert server.data_to_send() == b""


def test_exec_client_takes_the_upgrade_bytes_once() -> None:
    from kstream._exec.spdy_client import SpdyExecClient

    client = SpdyExecClient(host="h", target=TARGET, stdin=False, stdout=True, stderr=False,
                            tty=False)
    server = SpdyUpgradeServer()
    server.receive_data(client.data_to_send())
    server.accept()
    client.receive_data(server.data_to_send())
    client._upgrade = _Finished()  # type: ignore[assignment]
    assert client.data_to_send()  # the SYN_STREAMs
    assert client.data_to_send() == b""
