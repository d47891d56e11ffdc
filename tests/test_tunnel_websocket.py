"""BinaryWebSocket, the tunnel's carrier: a WebSocket of plain binary messages, sans-IO.

Both roles back to back in memory, and each one against hand-made bytes: the handshake
checks, early bytes, limits (message size, unanswered pongs, outstanding pings), pieces of
large messages, text messages, close and the end of the byte stream.
"""

from __future__ import annotations

import pytest

from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._events import (
    ConnectionClosed,
    Event,
    PingReceived,
    PongReceived,
    UpgradeAccepted,
    UpgradeRejected,
    UpgradeRequested,
)
from kstream._upgrade import ServerUpgrade
from kstream._ws.binary import (
    MAX_EARLY_DATA,
    MAX_OUTSTANDING_PINGS,
    MAX_UNSENT_PONGS,
    BinaryData,
    BinaryWebSocket,
)
from kstream._ws.codec import OP_BINARY, OP_PING, FrameDecoder, FrameEncoder
from kstream._ws.connection import WebSocketChannelConnection
from kstream._ws.state import WebSocketState

HOST = "h:1"
PROTO = "SPDY/3.1+portforward.k8s.io"


def opened(**server_args: int) -> tuple[BinaryWebSocket, BinaryWebSocket]:
    client = BinaryWebSocket.client(host=HOST, target="/t", protocols=[PROTO, "other"],
                                    headers=[("X-A", "1")])
    server = BinaryWebSocket.server(**server_args)
    events = server.receive_data(client.data_to_send())
    assert isinstance(events[0], UpgradeRequested)
    assert events[0].protocols == (PROTO, "other") and server.request == events[0]
    server.accept(PROTO, headers=[("X-B", "2")])
    events = client.receive_data(server.data_to_send())
    assert isinstance(events[0], UpgradeAccepted) and events[0].protocol == PROTO
    assert client.protocol == server.protocol == PROTO
    assert client.state is server.state is WebSocketState.OPEN
    return client, server


def frames(data: bytes, *, from_client: bool) -> list[tuple[int, bytes]]:
    return [(op, bytes(p)) for op, p, _, _ in FrameDecoder(client=not from_client).feed(data)]


def test_messages_both_ways_as_they_are() -> None:
    client, server = opened()
    client.send(b"abc")
    client.send(bytearray(b"def"))
    client.send(b"")
    # Two messages in one read: one event (boundaries mean nothing here).
    assert server.receive_data(client.data_to_send()) == [BinaryData(data=b"abcdef")]
    client.send(b"ghi")
    client.ping(0.0)
    client.send(b"jkl")
    assert server.receive_data(client.data_to_send()) == [
        BinaryData(data=b"ghi"), PingReceived(payload=b""), BinaryData(data=b"jkl")]
    server.data_to_send()
    buffer = bytearray(b"xyz")
    server.send(buffer)
    buffer[:] = b"!!!"      # the server copied it
    server.send(memoryview(b"123"))
    assert frames(server.data_to_send(), from_client=False) == [(OP_BINARY, b"xyz"),
                                                                (OP_BINARY, b"123")]
    assert server.data_to_send() == b""


def test_pieces_of_a_large_message_arrive_as_they_come() -> None:
    client, server = opened()
    server.send(b"x" * 100_000)
    data = server.data_to_send()
    events: list[Event] = []
    for start in range(0, len(data), 7000):
        events += client.receive_data(data[start:start + 7000])
    assert all(isinstance(e, BinaryData) and e.data for e in events)
    assert b"".join(e.data for e in events if isinstance(e, BinaryData)) == b"x" * 100_000
    # An empty message carries nothing.
    assert client.receive_data(FrameEncoder(client=False).frame(OP_BINARY, b"")) == []


def test_message_size_limit() -> None:
    client, server = opened(max_message_size=10)
    client.send(b"x" * 11)
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data(client.data_to_send())
    assert info.value.close_code == 1009
    assert frames(server.data_to_send(), from_client=False)[0][1][:2] == (1009).to_bytes(2, "big")
    assert server.state is WebSocketState.FAILED
    with pytest.raises(RemoteProtocolError, match="already failed"):
        server.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        BinaryWebSocket.server(max_message_size=0)


def test_pings_pongs_and_their_bounds() -> None:
    client, server = opened()
    client.ping(1.0)
    client.ping(2.0)
    assert client.awaiting_pong_since == 1.0
    events = server.receive_data(client.data_to_send())
    assert events == [PingReceived(payload=b""), PingReceived(payload=b"")]
    events = client.receive_data(server.data_to_send())
    assert [e.sent_at for e in events if isinstance(e, PongReceived)] == [1.0, 2.0]
    # An unsolicited pong.
    pong = FrameEncoder(client=False).frame(0xA, b"u")
    assert client.receive_data(pong) == [PongReceived(payload=b"u", sent_at=None)]
    # A peer that pings and never reads: 16 pongs queued, then only the latest.
    pings = b"".join(FrameEncoder(client=True).frame(OP_PING, bytes([n])) for n in range(40))
    assert len(server.receive_data(pings)) == 40
    answers = frames(server.data_to_send(), from_client=False)
    assert len(answers) == MAX_UNSENT_PONGS + 1 and answers[-1] == (0xA, bytes([39]))
    for n in range(MAX_OUTSTANDING_PINGS):
        client.ping(float(n))
    with pytest.raises(LocalProtocolError, match="await a pong"):
        client.ping(0.0)


def test_text_message_fails_with_1003() -> None:
    _client, server = opened()
    text = FrameEncoder(client=True).frame(0x1, b"hi")
    with pytest.raises(RemoteProtocolError, match="text message") as info:
        server.receive_data(text)
    assert info.value.close_code == 1003


def test_close_handshake_both_ways() -> None:
    client, server = opened()
    client.close(1000, "bye")
    client.close()          # again: nothing more
    assert client.state is WebSocketState.CLOSING
    with pytest.raises(LocalProtocolError):
        client.send(b"x")
    with pytest.raises(LocalProtocolError):
        client.ping(0.0)
    events = server.receive_data(client.data_to_send())
    assert events == [ConnectionClosed(code=1000, reason="bye", clean=True)]
    assert server.state is WebSocketState.CLOSED
    events = client.receive_data(server.data_to_send())
    assert events == [ConnectionClosed(code=1000, reason="", clean=True)]
    assert client.receive_data(b"after") == [] and client.receive_data(b"") == []
    # A ping that arrives while closing is reported, not answered.
    client2, server2 = opened()
    server2.close(4000)
    client2.receive_data(FrameEncoder(client=False).frame(OP_PING, b""))
    client2.close()
    events = client2.receive_data(FrameEncoder(client=False).frame(OP_PING, b"late"))
    assert events == []
    with pytest.raises(LocalProtocolError):
        server2.close(999)


def test_end_of_stream_while_open() -> None:
    client, _server = opened()
    assert client.receive_data(b"") == [ConnectionClosed(code=1006, clean=False)]


def test_client_side_upgrade_failures() -> None:
    client = BinaryWebSocket.client(host=HOST, target="/t", protocols=[PROTO])
    with pytest.raises(RemoteProtocolError, match="before the upgrade response"):
        client.receive_data(b"")
    client = BinaryWebSocket.client(host=HOST, target="/t", protocols=[PROTO])
    with pytest.raises(RemoteProtocolError, match="invalid HTTP response"):
        client.receive_data(b"garbage\r\n\r\n")
    # A rejection whose body ends with the byte stream.
    client = BinaryWebSocket.client(host=HOST, target="/t", protocols=[PROTO])
    assert client.receive_data(b"HTTP/1.1 500 Oops\r\n\r\nbody") == []
    events = client.receive_data(b"")
    assert isinstance(events[0], UpgradeRejected) and events[0].error.body == b"body"
    # A rejection whose body is broken.
    client = BinaryWebSocket.client(host=HOST, target="/t", protocols=[PROTO])
    events = client.receive_data(b"HTTP/1.1 403 No\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert isinstance(events[0], UpgradeRejected)
    assert "invalid body" in str(events[0].error)
    # A 101 with a wrong accept token.
    client = BinaryWebSocket.client(host=HOST, target="/t", protocols=[])
    events = client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
    assert isinstance(events[0], UpgradeRejected) and client.state is WebSocketState.REJECTED
    assert client.receive_data(b"more") == []
    with pytest.raises(LocalProtocolError):
        BinaryWebSocket.client(host=HOST, target="/t\u00e9", protocols=[])
    with pytest.raises(LocalProtocolError):
        client.accept(PROTO)


def test_frames_in_the_same_read_as_the_101() -> None:
    client = BinaryWebSocket.client(host=HOST, target="/t", protocols=[])
    server = BinaryWebSocket.server()
    server.receive_data(client.data_to_send())
    server.accept("")
    server.send(b"first")
    events = client.receive_data(server.data_to_send())
    assert events[1:] == [BinaryData(data=b"first")] and client.protocol == ""


def test_server_side_request_checks() -> None:
    for request, status in [
        (b"POST /t HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", b"405"),
        (b"GET /t HTTP/1.1\r\nHost: h\r\n\r\n", b"400"),
        (b"GET /%zz HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
         b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
         b"400"),
        (b"\x00garbage\r\n\r\n", b"400"),
    ]:
        server = BinaryWebSocket.server()
        with pytest.raises(RemoteProtocolError):
            server.receive_data(request)
        assert server.data_to_send().startswith(b"HTTP/1.1 " + status)
    server = BinaryWebSocket.server()
    with pytest.raises(RemoteProtocolError, match="before the upgrade was answered"):
        server.receive_data(b"")
    server = BinaryWebSocket.server()
    assert server.receive_data(b"GET /t HTTP/1.1\r\n") == []


def test_server_answers_and_early_data() -> None:
    client = WebSocketChannelConnection.client(host=HOST, target="/t", protocols=[])
    request = client.data_to_send()
    server = BinaryWebSocket.server()
    with pytest.raises(LocalProtocolError):
        server.accept("")
    assert server.receive_early_data() == []
    events = server.receive_data(request + FrameEncoder(client=True).frame(OP_BINARY, b"e1"))
    assert isinstance(events[0], UpgradeRequested)
    assert server.receive_data(FrameEncoder(client=True).frame(OP_BINARY, b"e2")) == []
    with pytest.raises(LocalProtocolError, match="did not offer"):
        server.accept("x")
    server.accept("")
    assert server.receive_early_data() == [BinaryData(data=b"e1e2")]
    assert server.receive_early_data() == []
    server = BinaryWebSocket.server()
    server.receive_data(request)
    with pytest.raises(RemoteProtocolError, match="before the upgrade was answered"):
        server.receive_data(b"x" * (MAX_EARLY_DATA + 1))
    server = BinaryWebSocket.server()
    server.receive_data(request)
    with pytest.raises(LocalProtocolError):
        server.accept("", headers=[("Bad Header", "x")])
    with pytest.raises(LocalProtocolError):
        server.reject(99)


def test_server_rejects_with_a_status_or_a_body() -> None:
    request = WebSocketChannelConnection.client(host=HOST, target="/t", protocols=[]) \
        .data_to_send()
    server = BinaryWebSocket.server()
    server.receive_data(request)
    server.reject(403, message="no")
    answer = server.data_to_send()
    assert answer.startswith(b"HTTP/1.1 403 ") and b'"message":"no"' in answer
    assert server.state is WebSocketState.REJECTED
    with pytest.raises(LocalProtocolError):
        server.reject(403)
    server = BinaryWebSocket.server()
    upgrade = ServerUpgrade()
    upgrade.receive_data(request)
    server.receive_request(upgrade)
    with pytest.raises(LocalProtocolError):
        server.receive_request(upgrade)
    server.reject(400, body=b"plain\n", headers=[("X-C", "3")])
    answer = server.data_to_send()
    assert b"Content-Type: text/plain; charset=utf-8" in answer and answer.endswith(b"plain\n")
    with pytest.raises(LocalProtocolError):
        BinaryWebSocket.client(host=HOST, target="/t", protocols=[]).receive_request(upgrade)


def test_misuse_before_the_upgrade() -> None:
    client = BinaryWebSocket.client(host=HOST, target="/t", protocols=[])
    with pytest.raises(LocalProtocolError, match="CONNECTING"):
        client.close()
    request = client.data_to_send()
    server = BinaryWebSocket.server()
    server.receive_data(request)
    with pytest.raises(LocalProtocolError, match="cannot reject"):
        server.reject(403, headers=[("Bad Header", "x")])


def test_a_second_key_line_does_not_hide_a_bad_first_one() -> None:
    # Found by fuzzing: the key checked and the key answered must be the same line (the
    # first, as Go reads it), else a non-ASCII first key escaped as UnicodeEncodeError.
    request = (b"GET /t HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: \xa8bad\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    for server in (BinaryWebSocket.server(), WebSocketChannelConnection.server()):
        with pytest.raises(RemoteProtocolError, match="Sec-WebSocket-Key"):
            server.receive_data(request)
        assert server.data_to_send().startswith(b"HTTP/1.1 400 ")
