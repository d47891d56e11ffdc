"""Branch-coverage tests of the HTTP upgrade engine, the channel table and the error base.

Each test pins down one behaviour that the older test files left unexercised; the branch
it covers is named in its docstring.
"""

from __future__ import annotations

import pytest

from kstream._channels import (
    V1_BASE64_NAME,
    V1_NAME,
    V2_NAME,
    V3_NAME,
    V4_BASE64_NAME,
    V4_NAME,
    V5_NAME,
    remotecommand_version,
)
from kstream._errors import (
    KstreamError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from kstream._upgrade import (
    ClientUpgrade,
    HttpError,
    ServerUpgrade,
    complete_response,
    encode_headers,
)

REQUEST = (b"GET /exec HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\n\r\n")

# ----------------------------------------------------------------------------------------
# _upgrade.py: encode_headers


@pytest.mark.parametrize("name", ["X-\u00e9", "X-\u20ac", "\u212a"])
def test_encode_headers_refuses_a_non_ascii_name(name: str) -> None:
    with pytest.raises(LocalProtocolError, match="is not ASCII"):
        encode_headers([("X-Ok", "v"), (name, "v")])


@pytest.mark.parametrize("name", ["", "X A", "X:A", "X\r\nY", "(x)", "a/b", "x\t"])
def test_encode_headers_refuses_a_name_that_is_no_token(name: str) -> None:
    with pytest.raises(LocalProtocolError, match="is not an HTTP token"):
        encode_headers([(name, "v")])


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb", "\x00", "a\x7f",
                                   "\x1b[31m"])
def test_encode_headers_refuses_control_characters_and_never_echoes_the_value(
        value: str) -> None:
    with pytest.raises(LocalProtocolError, match="control character") as caught:
        encode_headers([("Authorization", value)])
    assert "'Authorization'" in str(caught.value)
    assert value not in str(caught.value)


def test_encode_headers_keeps_tabs_and_order() -> None:
    assert encode_headers([("B", "x\ty"), ("A", "")]) == [(b"B", b"x\ty"), (b"A", b"")]


# ----------------------------------------------------------------------------------------
# _upgrade.py: ServerUpgrade and complete_response


@pytest.mark.parametrize("name", [b"Content-Length", b"content-length", b"CONTENT-LENGTH"])
def test_complete_response_keeps_a_content_length_the_caller_gave(name: bytes) -> None:
    """The caller's Content-Length (any case) is kept, none is added."""
    server = ServerUpgrade()
    server.receive_data(REQUEST)
    assert server.complete
    data = complete_response(server, 404, [(b"X-A", b"b"), (name, b"4")], b"gone")
    assert data.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert data.lower().count(b"content-length") == 1
    assert data.endswith(b"\r\n\r\ngone")


def test_server_upgrade_sees_each_request_event_kind() -> None:
    """Request, Data, EndOfMessage; then ConnectionClosed before any request."""
    server = ServerUpgrade()
    body_request = (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")
    for index in range(len(body_request)):
        server.receive_data(body_request[index:index + 1])
    assert server.request is not None and server.request.method == "POST"
    assert (server.body_size, server.complete) == (3, True)
    idle = ServerUpgrade()
    idle.receive_data(b"")
    assert idle.closed and idle.request is None


# ----------------------------------------------------------------------------------------
# _upgrade.py: ClientUpgrade


@pytest.mark.parametrize("before", [b"", b"HTTP/1.1 100 Continue\r\n\r\n",
                                    b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"])
def test_client_upgrade_closed_before_the_answer_is_an_http_error(before: bytes) -> None:
    """The server closes before any final answer (after nothing, or after a 1xx): h11
    refuses the end of stream in SEND_RESPONSE, reported as HttpError."""
    client = ClientUpgrade(method="GET", target="/", headers=[("Host", "h")])
    assert client.data_to_send().startswith(b"GET / HTTP/1.1\r\n")
    for index in range(len(before)):
        assert client.receive_data(before[index:index + 1]) is None
    with pytest.raises(HttpError) as caught:
        client.receive_data(b"")
    assert caught.value.status_hint == 400
    assert client.response is None


# ----------------------------------------------------------------------------------------
# _channels.py


@pytest.mark.parametrize(("name", "version"), [
    (V5_NAME, 5), (V4_NAME, 4), (V4_BASE64_NAME, 4), (V1_NAME, 1), (V1_BASE64_NAME, 1),
    ("", 1), (V3_NAME, 3), (V2_NAME, 2),
])
def test_remotecommand_version_of_each_protocol_name(name: str, version: int) -> None:
    assert remotecommand_version(name) == version


@pytest.mark.parametrize("name", ["v6.channel.k8s.io", "portforward.k8s.io", "V5.CHANNEL.K8S.IO"])
def test_remotecommand_version_of_an_unknown_name_is_a_key_error(name: str) -> None:
    with pytest.raises(KeyError):
        remotecommand_version(name)


# ----------------------------------------------------------------------------------------
# _errors_base.py


def test_protocol_error_itself_cannot_be_raised() -> None:
    with pytest.raises(TypeError, match="raise LocalProtocolError or RemoteProtocolError"):
        ProtocolError("which side?")


@pytest.mark.parametrize("cls", [LocalProtocolError, RemoteProtocolError, HttpError])
def test_protocol_error_subclasses_carry_their_hints(cls: type[ProtocolError]) -> None:
    error = cls("bad") if cls is HttpError else cls("bad", close_code=1002, spdy_status=1)
    assert isinstance(error, ProtocolError) and isinstance(error, KstreamError)
    assert str(error) == "bad"
    if cls is not HttpError:
        assert (error.close_code, error.spdy_status) == (1002, 1)
