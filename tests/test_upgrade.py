"""The HTTP/1.1 upgrade engine (kstream._upgrade), both roles.

Every parser case runs three ways, as h11's ``tr()`` does: fed whole, one byte at a
time, and with trailing data after the message; hypothesis picks the split points too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kstream._errors import LocalProtocolError
from kstream._http import MAX_REJECTION_BODY
from kstream._upgrade import (
    MAX_HEAD_SIZE,
    ClientUpgrade,
    HttpError,
    RequestHead,
    ResponseHead,
    ServerUpgrade,
    complete_response,
    decode_headers,
    encode_headers,
    reason_phrase,
)

REQUEST = (b"GET /exec?stdout=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nX-Two: a\r\nX-Two: b\r\n\r\n")
POST_WITH_BODY = (b"POST /exec HTTP/1.1\r\nHost: h\r\nUpgrade: SPDY/3.1\r\n"
                  b"Connection: Upgrade\r\nContent-Length: 5\r\n\r\nhello")
CHUNKED = (b"POST /x HTTP/1.1\r\nHost: h\r\nUpgrade: SPDY/3.1\r\nConnection: Upgrade\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
TRAILING = b"\x80\x03\x00\x01 next protocol"
MODES = ["whole", "bytes", "trailing"]


def pieces(data: bytes, mode: str) -> Iterator[bytes]:
    if mode == "bytes":
        yield from (data[i:i + 1] for i in range(len(data)))
    else:
        yield data + (TRAILING if mode == "trailing" else b"")


def cut(data: bytes, points: list[int]) -> Iterator[bytes]:
    start = 0
    for point in [*sorted({p % (len(data) + 1) for p in points}), len(data)]:
        if point > start:
            yield data[start:point]
            start = point


def read_request(data: bytes, mode: str) -> ServerUpgrade:
    server = ServerUpgrade()
    for piece in pieces(data, mode):
        server.receive_data(piece)
    return server


# --------------------------------------------------------------------------- server role


@pytest.mark.parametrize("mode", MODES)
def test_server_reads_a_request(mode: str) -> None:
    server = read_request(REQUEST, mode)
    assert server.request == RequestHead(
        method="GET", target="/exec?stdout=1",
        headers=(("host", "h"), ("upgrade", "websocket"), ("connection", "Upgrade"),
                 ("x-two", "a"), ("x-two", "b")))
    assert server.complete and not server.closed and server.error is None
    assert server.body_size == 0
    assert server.trailing_data == (TRAILING if mode == "trailing" else b"")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("request_bytes", "body_size"), [(POST_WITH_BODY, 5), (CHUNKED, 3)])
def test_server_reads_and_drops_the_body(mode: str, request_bytes: bytes,
                                          body_size: int) -> None:
    server = read_request(request_bytes, mode)
    assert server.request is not None and server.request.method == "POST"
    assert server.complete and server.body_size == body_size
    # The body is not trailing data: only what follows the whole message is.
    assert server.trailing_data == (TRAILING if mode == "trailing" else b"")


def test_server_head_comes_before_the_body() -> None:
    server = ServerUpgrade()
    server.receive_data(POST_WITH_BODY[:-3])
    assert server.request is not None and not server.complete
    assert server.trailing_data == b""
    server.receive_data(POST_WITH_BODY[-3:] + b"xy")
    assert server.complete and server.trailing_data == b"xy"


def test_server_keeps_later_bytes_as_trailing_data() -> None:
    server = read_request(REQUEST, "trailing")
    server.receive_data(b"more")
    assert server.trailing_data == TRAILING + b"more"


@given(st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_server_any_split(points: list[int]) -> None:
    server = ServerUpgrade()
    for piece in cut(POST_WITH_BODY + TRAILING, points):
        server.receive_data(piece)
    assert server.request is not None and server.request.target == "/exec"
    assert server.complete and server.body_size == 5
    assert server.trailing_data == TRAILING


@pytest.mark.parametrize("mode", ["whole", "bytes"])
def test_server_bad_request_is_an_error_with_a_status_hint(mode: str) -> None:
    server = read_request(b"GET / HTTP/1.1\r\nbad header line\r\n\r\n", mode)
    assert server.request is None and isinstance(server.error, HttpError)
    assert server.error.status_hint == 400
    server.receive_data(b"ignored")  # nothing more is parsed
    assert server.request is None
    # An answer can still be written.
    assert complete_response(server, 400, [], b"no").startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_server_head_over_the_limit() -> None:
    server = ServerUpgrade()
    server.receive_data(b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD_SIZE)
    assert server.error is not None and server.error.status_hint == 431
    small = ServerUpgrade(max_head_size=100)
    small.receive_data(REQUEST[:-2] + b"X-Big: " + b"a" * 100)
    assert small.error is not None and small.error.status_hint == 431


def test_server_eof_before_a_request_is_closed() -> None:
    server = ServerUpgrade()
    server.receive_data(b"")
    assert server.closed and server.request is None and server.error is None
    server.receive_data(b"late")  # ignored
    assert server.request is None


def test_server_eof_in_the_head_is_an_error() -> None:
    server = ServerUpgrade()
    server.receive_data(REQUEST[:20])
    server.receive_data(b"")
    assert server.error is not None and not server.closed


def test_server_switch_writes_the_101() -> None:
    server = read_request(REQUEST, "trailing")
    data = server.switch([(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")])
    assert data == (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\n\r\n")
    assert server.answered and server.trailing_data == TRAILING


def test_server_switch_needs_an_upgrade_request() -> None:
    server = read_request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", "whole")
    with pytest.raises(LocalProtocolError):
        server.switch([])
    with pytest.raises(LocalProtocolError):
        server.switch([(b"Bad Name", b"x")])


def test_server_respond() -> None:
    server = read_request(REQUEST, "whole")
    data = complete_response(server, 403, encode_headers([("X-A", "b")]), b"body")
    assert data == (b"HTTP/1.1 403 Forbidden\r\nX-A: b\r\nContent-Length: 4\r\n\r\nbody")
    assert server.answered
    plain = read_request(REQUEST, "whole")
    assert plain.respond(200, [(b"Content-Length", b"0")], b"") == (
        b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(LocalProtocolError):
        read_request(REQUEST, "whole").respond(101, [], b"")


# --------------------------------------------------------------------------- client role


def new_client() -> ClientUpgrade:
    return ClientUpgrade(method=b"GET", target=b"/exec",
                         headers=[(b"Host", b"h"), (b"Upgrade", b"websocket"),
                                  (b"Connection", b"Upgrade")])


SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
          b"Connection: Upgrade\r\n\r\n")


def test_client_writes_its_request_once() -> None:
    client = new_client()
    assert client.data_to_send() == (b"GET /exec HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
                                     b"Connection: Upgrade\r\n\r\n")
    assert client.data_to_send() == b""


def test_client_refuses_a_bad_request() -> None:
    with pytest.raises(LocalProtocolError):
        ClientUpgrade(method=b"GET", target=b"/", headers=[(b"X", b"a\r\nb")])


@pytest.mark.parametrize("mode", MODES)
def test_client_reads_a_101(mode: str) -> None:
    client = new_client()
    results = [client.receive_data(piece) for piece in pieces(SWITCH, mode)]
    assert results[:-1] == [None] * (len(results) - 1)
    assert results[-1] == ResponseHead(
        status_code=101, reason="Switching Protocols",
        headers=(("upgrade", "websocket"), ("connection", "Upgrade")))
    assert client.trailing_data == (TRAILING if mode == "trailing" else b"")
    assert client.response is None


@pytest.mark.parametrize("mode", MODES)
def test_client_skips_100_continue(mode: str) -> None:
    client = new_client()
    results = [client.receive_data(piece)
               for piece in pieces(b"HTTP/1.1 100 Continue\r\n\r\n" + SWITCH, mode)]
    assert [r.status_code for r in results if r is not None] == [101]


@pytest.mark.parametrize("mode", MODES)
def test_client_reads_a_rejection_with_its_body(mode: str) -> None:
    client = new_client()
    response = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope"
    results = [client.receive_data(piece) for piece in pieces(response, mode)]
    (head,) = [r for r in results if r is not None]
    assert head.status_code == 403 and head.reason == "Forbidden"
    assert client.response == head and bytes(client.body) == b"nope"
    assert not client.overflowed
    error = client.rejection("why")
    assert error.status_code == 403 and error.body == b"nope"


def test_client_rejection_body_ends_with_the_connection() -> None:
    client = new_client()
    assert client.receive_data(b"HTTP/1.1 500 Oops\r\n\r\nab") is None
    head = client.receive_data(b"")
    assert head is not None and head.status_code == 500 and bytes(client.body) == b"ab"


def test_client_rejection_body_is_cut() -> None:
    client = new_client()
    head = client.receive_data(b"HTTP/1.1 500 Oops\r\n\r\n" + b"x" * (MAX_REJECTION_BODY + 1))
    assert head is not None and client.overflowed
    assert len(client.body) == MAX_REJECTION_BODY


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_client_any_split(points: list[int]) -> None:
    client = new_client()
    results = [client.receive_data(piece) for piece in cut(SWITCH + TRAILING, points)]
    (head,) = [r for r in results if r is not None]
    assert head.status_code == 101
    # Whatever arrived with the 101 is trailing data; the caller feeds the rest on.
    fed = b"".join(list(cut(SWITCH + TRAILING, points))[:results.index(head) + 1])
    assert client.trailing_data == fed[len(SWITCH):]


@pytest.mark.parametrize("mode", ["whole", "bytes"])
def test_client_invalid_response(mode: str) -> None:
    client = new_client()
    with pytest.raises(HttpError):
        for piece in pieces(b"HTTP/1.1 abc\r\n\r\n", mode):
            client.receive_data(piece)
    assert client.response is None


def test_client_broken_body_after_the_head() -> None:
    client = new_client()
    assert client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 10\r\n\r\nab") is None
    with pytest.raises(HttpError):
        client.receive_data(b"")
    assert client.response is not None and bytes(client.body) == b"ab"


def test_client_eof_before_the_response() -> None:
    client = new_client()
    with pytest.raises(HttpError):
        client.receive_data(b"")


def test_client_head_over_the_limit() -> None:
    client = new_client()
    with pytest.raises(HttpError):
        client.receive_data(b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD_SIZE)


# --------------------------------------------------------------------------- helpers


def test_header_helpers() -> None:
    assert decode_headers([(b"x-a", b"\xe9")]) == (("x-a", "\u00e9"),)
    assert encode_headers([("X-A", "\u00e9")]) == [(b"X-A", b"\xe9")]
    with pytest.raises(LocalProtocolError, match=r"header .X. cannot be sent"):
        encode_headers([("X", "\u20ac")])
    assert reason_phrase(404) == "Not Found" and reason_phrase(599) == ""


def test_cut_helper() -> None:
    assert list(cut(b"abcdef", [0, 3, 3, 4])) == [b"abc", b"d", b"ef"]
