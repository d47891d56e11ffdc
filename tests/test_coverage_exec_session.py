"""Branch-coverage tests of the exec/attach session (kstream._exec.session).

Each test asserts the behaviour of one branch the main session tests do not reach:
the server's queries and guards before the answer, input between the request and the
answer, messages a client may send that carry nothing for the exec, and a client
session wrapped around a connection that was already upgraded.
"""

from __future__ import annotations

import pytest
from test_session import TARGET, V5, client_for, open_pair, pump

from kstream import (
    ChannelData,
    ChannelEnded,
    ConnectionClosed,
    DroppedMessage,
    LocalProtocolError,
    PingReceived,
    PongReceived,
    RemoteProtocolError,
)
from kstream._channels import STDERR, STDIN, STDOUT
from kstream._exec.session import (
    ClientExecSession,
    RequestReceived,
    ServerExecSession,
    _reason_phrase,
)
from kstream._status import success_status
from kstream._ws.connection import WebSocketChannelConnection


def _server_with_request(kind: str = "ws5", **kwargs: object) -> tuple[ClientExecSession,
                                                                      ServerExecSession]:
    client = client_for(kind)
    server = ServerExecSession(**kwargs)  # type: ignore[arg-type]
    events = server.receive_data(client.data_to_send())
    assert [type(e) for e in events] == [RequestReceived]
    return client, server


# --------------------------------------------------------------------------- server


def test_request_property_is_none_then_the_request() -> None:
    client = client_for("ws5")
    server = ServerExecSession()
    assert server.request is None
    [event] = server.receive_data(client.data_to_send())
    assert server.request is event
    assert isinstance(event, RequestReceived) and event.upgrade == "websocket"


@pytest.mark.parametrize("kind", ["ws5", "spdy"])
def test_eof_between_request_and_answer_waits_for_the_answer(kind: str) -> None:
    _client, server = _server_with_request(kind)
    assert server.receive_data(b"") == []
    assert not server.answered
    assert server.data_to_send() == b""


def test_too_much_data_before_the_answer_is_refused() -> None:
    _, server = _server_with_request("ws5", max_head_size=4096, max_message_size=16)
    assert server.receive_data(b"x" * 100) == []
    with pytest.raises(RemoteProtocolError, match="too much data before the upgrade"):
        server.receive_data(b"x" * 4096)


def test_respond_with_an_unsendable_status_is_a_local_error() -> None:
    _, server = _server_with_request("ws5")
    with pytest.raises(LocalProtocolError, match="cannot send this response"):
        server.respond(101)


def test_send_before_accept_is_refused() -> None:
    _, server = _server_with_request("ws5")
    with pytest.raises(LocalProtocolError, match="has not been accepted"):
        server.send_stdout(b"x")
    with pytest.raises(LocalProtocolError, match="has not been accepted"):
        server.ping(0.0)


@pytest.mark.parametrize("kind", ["ws5", "spdy"])
def test_empty_output_sends_nothing(kind: str) -> None:
    _client, server = open_pair(kind)
    server.data_to_send()
    server.send_stdout(b"")
    server.send_stderr(bytearray())
    assert server.data_to_send() == b""


def test_empty_output_is_accepted_even_before_accept() -> None:
    # Nothing to send: no message, and no check that could fail.
    _, server = _server_with_request("ws5")
    server.send_stdout(b"")
    assert server.data_to_send() == b""


@pytest.mark.parametrize("kind", ["ws5", "spdy"])
def test_server_ping_reaches_the_client(kind: str) -> None:
    client, server = open_pair(kind)
    server.ping(1.5)
    client_events, _ = pump(client, server)
    assert any(isinstance(e, PingReceived) for e in client_events)


def test_client_messages_on_output_channels_and_empty_stdin_are_ignored() -> None:
    client, server = open_pair("ws5")
    connection = client._conn
    assert isinstance(connection, WebSocketChannelConnection)
    connection.send_data(STDOUT, b"not for the server")
    connection.send_data(STDERR, b"nor this")
    connection.send_data(STDIN, b"")
    connection.send_data(STDIN, b"kept")
    _, events = pump(client, server)
    assert [e for e in events if isinstance(e, ChannelData)] == [
        ChannelData(channel=STDIN, data=b"kept")]


def test_reason_phrase_of_an_unknown_status_is_empty() -> None:
    assert _reason_phrase(404) == "Not Found"
    assert _reason_phrase(499) == ""


# --------------------------------------------------------------------------- client


def test_client_wrapped_after_the_upgrade_reports_a_session_never_started() -> None:
    # The session must be given a fresh connection: one that was upgraded before it was
    # wrapped has no negotiated version here, and its end is an error, not a success.
    connection = WebSocketChannelConnection.client(host="h", target=TARGET, protocols=[V5])
    server = ServerExecSession()
    server.receive_data(connection.data_to_send())
    server.accept(stdin=True, stdout=True, stderr=True, tty=False, now=0.0)
    connection.receive_data(server.data_to_send())
    assert connection.protocol is not None
    client = ClientExecSession(connection)
    server.send_stdout(b"out")
    server.exit(success_status())
    with pytest.raises(RemoteProtocolError, match="before the session started"):
        client.receive_data(server.data_to_send())
    assert client.version is None


def test_connection_closed_after_the_outcome_passes_through() -> None:
    client, server = open_pair("ws5")
    server.exit(success_status())
    client_events, _ = pump(client, server)
    assert client_events[-1] == ConnectionClosed(code=1000, reason="", clean=True)


def test_bad_target_is_answered_400_before_the_error() -> None:
    server = ServerExecSession()
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"GET /api%zz HTTP/1.1\r\nHost: x\r\n\r\n")
    out = server.data_to_send()
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close\r\n" in out


def test_stdin_after_its_v5_close_is_dropped_whole() -> None:
    client, server = open_pair("ws5")
    client.close_stdin()
    _, events = pump(client, server)
    assert ChannelEnded(channel=STDIN) in events
    # The client connection refuses to send on a closed channel: a masked binary message
    # by hand (mask key 0), channel byte 0 then b"late".
    late = b"\x82\x85\x00\x00\x00\x00" + b"\x00late"
    assert server.receive_data(late) == [DroppedMessage(channel=STDIN, size=5)]


@pytest.mark.parametrize("kind", ["ws5", "spdy"])
def test_client_ping_is_answered(kind: str) -> None:
    client, server = open_pair(kind)
    client.ping(2.5)
    client_events, _ = pump(client, server)
    assert next(e for e in client_events if isinstance(e, PongReceived)).sent_at == 2.5


def test_client_after_a_failed_connection_refuses_more_bytes() -> None:
    client, _server = open_pair("ws5")
    with pytest.raises(RemoteProtocolError, match="without a close frame"):
        client.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="connection already failed"):
        client.receive_data(b"\x88\x00")
