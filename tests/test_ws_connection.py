"""Tests of WebSocketChannelConnection (kstream._ws.connection): handshakes, rules, state machine.

Peers are hand-written bytes: frames are built here independently of wsproto, requests
are what gorilla/websocket (kubectl, client-go) writes, responses what x/net writes.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import struct
from collections.abc import Callable, Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kstream._channels import WEBSOCKET_PROTOCOLS
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
from kstream._exec.session import (
    ClientExecSession,
    RequestReceived,
    ServerExecSession,
    TerminalResized,
)
from kstream._ws.connection import (
    DEFAULT_MAX_MESSAGE_SIZE,
    EXEC_CHANNEL_SET,
    MAX_EARLY_DATA,
    TRANSITIONS,
    StateInput,
    WebSocketChannelConnection,
    WebSocketState,
    hello_channel,
    negotiate,
)
from kstream._ws.frames import FrameCodec

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE_OP, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
V5, V4, V4B64, V1, V1B64 = ("v5.channel.k8s.io", "v4.channel.k8s.io",
                            "v4.base64.channel.k8s.io", "channel.k8s.io",
                            "base64.channel.k8s.io")
ALL_PROTOCOLS = (V5, V4, V4B64, V1, V1B64)
MASK = bytes.fromhex("37fa213d")

# What gorilla/websocket (kubectl >= 1.30, client-go's WebSocket executor) writes: Go's
# Request.Write puts Host and User-Agent first, then the other headers sorted; gorilla
# sets the Sec-WebSocket-* names with this exact case (client.go). The key is RFC 6455's.
KUBECTL_REQUEST = (
    b"GET /api/v1/namespaces/default/pods/p/exec?command=sh&command=-c"
    b"&command=echo+hi%3B+exit+3&container=c&stderr=true&stdout=true HTTP/1.1\r\n"
    b"Host: 127.0.0.1:6443\r\n"
    b"User-Agent: kubectl/v1.33.0 (linux/amd64) kubernetes/8adc0f0\r\n"
    b"Authorization: Bearer token\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"Upgrade: websocket\r\n"
    b"\r\n"
)
KUBECTL_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# --------------------------------------------------------------------------------------
# Wire helpers, independent of wsproto


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None) -> bytes:
    """One WebSocket frame as RFC 6455 §5.2 lays it out."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    if len(payload) < 126:
        head.append(mask_bit | len(payload))
    elif len(payload) < 65536:
        head.append(mask_bit | 126)
        head += struct.pack("!H", len(payload))
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", len(payload))
    if mask is None:
        return bytes(head) + payload
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes(head) + mask + masked


def client_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    return frame(opcode, payload, fin=fin, mask=MASK)


def parse_frames(data: bytes) -> list[tuple[int, bool, bytes]]:
    """Split wire bytes into (opcode, fin, unmasked payload); checks they parse exactly."""
    frames = []
    pos = 0
    while pos < len(data):
        fin, opcode = bool(data[pos] & 0x80), data[pos] & 0x0F
        masked, length = bool(data[pos + 1] & 0x80), data[pos + 1] & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack("!H", data[pos:pos + 2])
            pos += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", data[pos:pos + 8])
            pos += 8
        key = data[pos:pos + 4] if masked else b"\0\0\0\0"
        pos += 4 if masked else 0
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[pos:pos + length]))
        assert len(payload) == length
        pos += length
        frames.append((opcode, fin, payload))
    return frames


def split_head(data: bytes) -> tuple[bytes, bytes]:
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep
    return head + sep, rest


def header_value(head: bytes, name: str) -> str:
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    raise KeyError(name)


def accept_token(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def switching_response(request: bytes, protocol: str | None) -> bytes:
    """What x/net writes for a 101 (golang/net websocket/hybi.go AcceptHandshake)."""
    key = header_value(request, "Sec-WebSocket-Key")
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Accept: {accept_token(key)}"]
    if protocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def upgrade_request(protocols: str | None = V5, *, extra: str = "",
                    method: str = "GET") -> bytes:
    lines = [f"{method} /exec?stdout=1 HTTP/1.1", "Host: h", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13"]
    if protocols is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocols}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def new_client(protocols: tuple[str, ...] = (V5, V4), *,
               headers: tuple[tuple[str, str], ...] = (),
               max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
               channels: Iterable[int] = EXEC_CHANNEL_SET,
               ) -> tuple[WebSocketChannelConnection, bytes]:
    client = WebSocketChannelConnection.client(host="h", target="/exec", protocols=protocols,
                                               headers=headers,
                                               max_message_size=max_message_size,
                                               channels=channels)
    return client, client.data_to_send()


def open_client(protocol: str = V5, *,
                max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> WebSocketChannelConnection:
    client, request = new_client((protocol,) if protocol else (),
                                 max_message_size=max_message_size)
    events = client.receive_data(switching_response(request, protocol or None))
    assert events == [UpgradeAccepted(transport="websocket", protocol=protocol,
                                      headers=events[0].headers)]  # type: ignore[attr-defined]
    return client


def requested_server(protocols: str | None = V5, *,
                     max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                     ) -> WebSocketChannelConnection:
    server = WebSocketChannelConnection.server(max_message_size=max_message_size)
    events = server.receive_data(upgrade_request(protocols))
    assert len(events) == 1 and isinstance(events[0], UpgradeRequested)
    return server


def open_server(protocol: str = V5, *,
                max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> WebSocketChannelConnection:
    server = requested_server(protocol or None, max_message_size=max_message_size)
    server.accept()
    head, rest = split_head(server.data_to_send())
    assert head.startswith(b"HTTP/1.1 101 ") and rest == b""
    return server


def status_frame(text: bytes = b'{"metadata":{},"status":"Success"}') -> bytes:
    return frame(BINARY, b"\x03" + text)


def error_response_status(data: bytes) -> tuple[int, dict[str, object]]:
    head, body = split_head(data)
    return int(head.split(b" ")[1]), json.loads(body)


# --------------------------------------------------------------------------------------
# Client handshake


def test_client_request_bytes() -> None:
    client, request = new_client(headers=(("Authorization", "Bearer t"),))
    head, rest = split_head(request)
    assert rest == b""
    lines = head.decode().split("\r\n")
    assert lines[0] == "GET /exec HTTP/1.1"
    assert lines[1:6] == ["Host: h", "Upgrade: websocket", "Connection: Upgrade",
                          lines[4], "Sec-WebSocket-Version: 13"]
    assert lines[4].startswith("Sec-WebSocket-Key: ")
    assert len(base64.b64decode(lines[4].split(": ")[1])) == 16
    assert lines[6] == "Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io"
    assert lines[7] == "Authorization: Bearer t"
    assert client.state is WebSocketState.CONNECTING and client.protocol is None
    assert client.role == "client"


def test_client_without_protocols_sends_no_protocol_header() -> None:
    _, request = new_client(())
    with pytest.raises(KeyError):
        header_value(request, "Sec-WebSocket-Protocol")


def test_client_rejects_unknown_protocol_names() -> None:
    for bad in ("v2.channel.k8s.io", "", "V5.channel.k8s.io", "SPDY/3.1+portforward.k8s.io"):
        with pytest.raises(LocalProtocolError):
            WebSocketChannelConnection.client(host="h", target="/", protocols=[bad])


def test_client_rejects_unsendable_headers() -> None:
    with pytest.raises(LocalProtocolError):
        WebSocketChannelConnection.client(host="h", target="/", headers=[("X", "a\r\nb")])
    with pytest.raises(LocalProtocolError):
        WebSocketChannelConnection.client(host="h", target="/", headers=[("X", "\u20ac")])
    with pytest.raises(LocalProtocolError):
        WebSocketChannelConnection.client(host="h", target="/\u20ac")


def test_client_interop_with_raw_server_response_and_hello_in_same_chunk() -> None:
    client, request = new_client()
    response = switching_response(request, V5) + frame(BINARY, b"\x01")
    events = client.receive_data(response)
    assert isinstance(events[0], UpgradeAccepted)
    assert events[0].protocol == V5
    assert ("sec-websocket-protocol", V5) in events[0].headers
    assert events[1:] == [ChannelData(channel=1, data=b"")]
    assert client.state is WebSocketState.OPEN
    assert client.protocol is WEBSOCKET_PROTOCOLS[V5]


def test_client_handshake_byte_by_byte_then_trailing_frames() -> None:
    client, request = new_client()
    stream = switching_response(request, V4) + frame(BINARY, b"\x01hi") + status_frame()
    events: list[Event] = []
    for byte in stream:
        events += client.receive_data(bytes((byte,)))
    assert isinstance(events[0], UpgradeAccepted) and events[0].protocol == V4
    assert b"".join(e.data for e in events if isinstance(e, ChannelData) and e.channel == 1) \
        == b"hi"
    assert b"".join(e.data for e in events if isinstance(e, ChannelData) and e.channel == 3) \
        == b'{"metadata":{},"status":"Success"}'


def test_client_accepts_no_protocol_when_it_offered_none() -> None:
    client = open_client("")
    assert client.protocol is WEBSOCKET_PROTOCOLS[""]
    assert client.protocol.version == 1


def test_client_skips_100_continue() -> None:
    client, request = new_client()
    events = client.receive_data(b"HTTP/1.1 100 Continue\r\n\r\n" + switching_response(request, V5))
    assert [type(e) for e in events] == [UpgradeAccepted]


@pytest.mark.parametrize(("chosen", "offered", "detail"), [
    ("v4.channel.k8s.io", (V5,), "did not offer"),
    ("V5.channel.k8s.io", (V5,), "did not offer"),
    (None, (V5, V4), "no subprotocol"),
    ("", (V5,), "no subprotocol"),
    (V5, (), "did not offer"),
])
def test_client_unoffered_subprotocol_is_an_upgrade_rejection(
        chosen: str | None, offered: tuple[str, ...], detail: str) -> None:
    client, request = new_client(offered)
    events = client.receive_data(switching_response(request, chosen) + frame(BINARY, b"\x01"))
    assert len(events) == 1 and isinstance(events[0], UpgradeRejected)
    error = events[0].error
    assert error.status_code == 101
    assert detail in error.detail
    assert client.state is WebSocketState.REJECTED
    assert client.receive_data(b"more") == []
    assert client.receive_data(b"") == []


@pytest.mark.parametrize(("edit", "detail"), [
    (lambda r: r.replace(b"Sec-WebSocket-Accept: ", b"Sec-WebSocket-Accept: x"), "Accept"),
    (lambda r: r.replace(b"Upgrade: websocket\r\n", b""), "Upgrade: websocket"),
    (lambda r: r.replace(b"Connection: Upgrade\r\n", b"Connection: keep-alive\r\n"),
     "Connection"),
    (lambda r: r.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate"
                                      b"\r\n\r\n"), "extensions"),
])
def test_client_invalid_101_is_an_upgrade_rejection(
        edit: Callable[[bytes], bytes], detail: str) -> None:
    client, request = new_client()
    events = client.receive_data(edit(switching_response(request, V5)))
    assert len(events) == 1 and isinstance(events[0], UpgradeRejected)
    assert detail in events[0].error.detail


def test_client_rejection_with_status_body_is_decoded() -> None:
    body = (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            b'"message":"pods \\"p\\" is forbidden: User \\"u\\" cannot get resource '
            b'\\"pods/exec\\"","reason":"Forbidden","details":{"name":"p","kind":"pods"},'
            b'"code":403}\n')
    response = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    for pieces in ([response], [bytes((b,)) for b in response]):
        client, _ = new_client()
        events: list[Event] = []
        for piece in pieces:
            events += client.receive_data(piece)
        assert len(events) == 1 and isinstance(events[0], UpgradeRejected)
        error = events[0].error
        assert (error.status_code, error.reason, error.body) == (403, "Forbidden", body)
        assert error.status is not None and error.status.code == 403
        assert error.status.message == 'pods "p" is forbidden: User "u" cannot get resource ' \
                                      '"pods/exec"'
        assert "cannot get resource" in str(error)
        assert ("content-type", "application/json") in error.headers
        assert client.state is WebSocketState.REJECTED


def test_client_rejection_without_length_ends_at_eof() -> None:
    client, _ = new_client()
    assert client.receive_data(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nno ") == []
    assert client.receive_data(b"such pod") == []
    events = client.receive_data(b"")
    assert len(events) == 1 and isinstance(events[0], UpgradeRejected)
    assert events[0].error.body == b"no such pod"
    assert events[0].error.status is None


def test_client_rejection_cut_short_by_eof_keeps_what_came() -> None:
    client, _ = new_client()
    client.receive_data(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100\r\n\r\nab")
    events = client.receive_data(b"")
    assert isinstance(events[0], UpgradeRejected)
    assert (events[0].error.status_code, events[0].error.body) == (500, b"ab")


def test_client_rejection_body_is_capped_at_64_kib() -> None:
    client, _ = new_client()
    events = client.receive_data(b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n"
                                 b"\r\n10000\r\n" + b"a" * 0x10000 + b"\r\n")
    assert events == []
    events = client.receive_data(b"1\r\nb\r\n")
    assert len(events) == 1 and isinstance(events[0], UpgradeRejected)
    assert events[0].error.body == b"a" * 65536
    assert "64" in events[0].error.detail or "65536" in events[0].error.detail


def test_client_eof_before_response_fails() -> None:
    client, _ = new_client()
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"")
    assert client.state is WebSocketState.FAILED


def test_client_garbage_response_fails_and_keeps_failing() -> None:
    client, _ = new_client()
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert client.state is WebSocketState.FAILED
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"x")
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        client.send_data(0, b"x")


def test_client_response_head_limit() -> None:
    client, _ = new_client()
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000)


# --------------------------------------------------------------------------------------
# Server handshake


def test_server_against_kubectl_request_bytes() -> None:
    server = WebSocketChannelConnection.server()
    events = server.receive_data(KUBECTL_REQUEST)
    assert len(events) == 1
    request = events[0]
    assert isinstance(request, UpgradeRequested)
    assert request.method == "GET"
    assert request.path == "/api/v1/namespaces/default/pods/p/exec"
    assert request.query == (("command", "sh"), ("command", "-c"), ("command", "echo hi; exit 3"),
                             ("container", "c"), ("stderr", "true"), ("stdout", "true"))
    assert request.protocols == (V5,)
    assert ("authorization", "Bearer token") in request.headers
    assert ("host", "127.0.0.1:6443") in request.headers
    assert request.headers[0][0] == "host"

    server.accept(hello=hello_channel(stdout=True, stderr=True))
    head, rest = split_head(server.data_to_send())
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert header_value(head, "Sec-WebSocket-Accept") == KUBECTL_ACCEPT.decode()
    assert header_value(head, "Sec-WebSocket-Protocol") == V5
    assert header_value(head, "Upgrade") == "websocket"
    assert rest == frame(BINARY, b"\x01")  # the hello on stdout: binary 01

    # gorilla masks its frames; the key here is a fixed one.
    events = server.receive_data(client_frame(BINARY, b"\x00ls\n") + client_frame(PING, b"")
                                 + client_frame(BINARY, b"\xff\x00"))
    assert events == [ChannelData(channel=0, data=b"ls\n"), PingReceived(payload=b""),
                      ChannelEnded(channel=0)]
    assert parse_frames(server.data_to_send()) == [(PONG, True, b"")]


def test_server_request_byte_by_byte_with_early_frames() -> None:
    server = WebSocketChannelConnection.server()
    events: list[Event] = []
    stream = KUBECTL_REQUEST + client_frame(BINARY, b"\x00early")
    for byte in stream:
        events += server.receive_data(bytes((byte,)))
    assert [type(e) for e in events] == [UpgradeRequested]
    server.accept()
    # The early frame is parsed with the next bytes (RFC 6455 §4.1 says it should not exist).
    assert server.receive_data(client_frame(BINARY, b"\x00late")) == [
        ChannelData(channel=0, data=b"early"), ChannelData(channel=0, data=b"late")]


def test_server_early_data_then_eof() -> None:
    server = WebSocketChannelConnection.server()
    server.receive_data(KUBECTL_REQUEST + client_frame(BINARY, b"\x00x"))
    server.accept()
    events = server.receive_data(b"")
    assert events == [ChannelData(channel=0, data=b"x"),
                      ConnectionClosed(code=1006, reason="", clean=False)]


def test_server_early_data_limit() -> None:
    server = requested_server()
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"x" * (MAX_EARLY_DATA + 1))


@pytest.mark.parametrize(("offered", "supported", "chosen"), [
    ((V4, V5), ALL_PROTOCOLS, V4),          # the client's order wins
    ((V5, V4), (V4, V5), V5),
    (("x", V1B64), ALL_PROTOCOLS, V1B64),
    ((), ALL_PROTOCOLS, ""),                # no header: channel.k8s.io
    ((), (V5,), None),
    (("V5.CHANNEL.K8S.IO",), ALL_PROTOCOLS, None),  # case-sensitive
    (("v5.base64.channel.k8s.io",), ALL_PROTOCOLS, None),
])
def test_negotiate(offered: tuple[str, ...], supported: tuple[str, ...],
                   chosen: str | None) -> None:
    assert negotiate(offered, supported) == chosen


def test_hello_channel() -> None:
    assert hello_channel(True, True) == 1
    assert hello_channel(False, True) == 2
    assert hello_channel(False, False) == 3


def test_server_reads_only_the_first_protocol_header() -> None:
    server = WebSocketChannelConnection.server()
    request = upgrade_request(" x ,v4.channel.k8s.io,, ",
                              extra="Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n")
    events = server.receive_data(request)
    assert isinstance(events[0], UpgradeRequested)
    assert events[0].protocols == ("x", V4)
    server.accept()
    assert server.protocol is WEBSOCKET_PROTOCOLS[V4]


def test_server_no_protocol_header_answers_without_one() -> None:
    server = requested_server(None)
    assert server._request is not None and server._request.protocols == ()
    server.accept(hello=3)
    head, rest = split_head(server.data_to_send())
    with pytest.raises(KeyError):
        header_value(head, "Sec-WebSocket-Protocol")
    assert server.protocol is WEBSOCKET_PROTOCOLS[""]
    assert rest == frame(BINARY, b"\x03")


def test_server_no_common_protocol_then_reject_403_empty_body() -> None:
    server = WebSocketChannelConnection.server(supported=[V4])
    server.receive_data(upgrade_request(V5))
    with pytest.raises(LocalProtocolError):
        server.accept()
    assert server.state is WebSocketState.CONNECTING
    server.reject()
    assert server.data_to_send() == b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    assert server.state.name == "REJECTED"
    assert server.receive_data(client_frame(BINARY, b"\x00x")) == []
    server.close()
    assert server.data_to_send() == b""


def test_server_reject_with_status_message() -> None:
    server = requested_server()
    server.reject(403, message='pods "p" is forbidden', headers=[("X-Extra", "1")])
    code, status = error_response_status(server.data_to_send())
    assert code == 403
    assert status["kind"] == "Status" and status["message"] == 'pods "p" is forbidden'
    assert status["reason"] == "Forbidden" and status["code"] == 403


def test_server_reject_with_exact_body_and_errors() -> None:
    server = requested_server()
    with pytest.raises(LocalProtocolError):
        server.reject(101)
    server.reject(500, body=b"boom", headers=[("Content-Type", "text/plain")])
    data = server.data_to_send()
    assert data.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert data.endswith(b"\r\n\r\nboom")
    with pytest.raises(LocalProtocolError):
        server.reject()
    with pytest.raises(LocalProtocolError):
        server.accept()


def test_server_explicit_protocol_choice() -> None:
    server = requested_server(f"{V4}, {V5}")
    with pytest.raises(LocalProtocolError):
        server.accept(V1)            # not offered
    with pytest.raises(LocalProtocolError):
        server.accept("")            # the client offered some
    with pytest.raises(LocalProtocolError):
        server.accept("nope")
    with pytest.raises(LocalProtocolError):
        server.accept(hello=255)
    server.accept(V5)
    assert server.protocol is WEBSOCKET_PROTOCOLS[V5]


def test_accept_and_reject_are_for_servers_awaiting_an_answer() -> None:
    client, _ = new_client()
    with pytest.raises(LocalProtocolError):
        client.accept()
    with pytest.raises(LocalProtocolError):
        client.reject()
    server = WebSocketChannelConnection.server()
    with pytest.raises(LocalProtocolError):
        server.accept()


def test_server_supported_must_be_known() -> None:
    with pytest.raises(LocalProtocolError):
        WebSocketChannelConnection.server(supported=["v3.channel.k8s.io"])
    with pytest.raises(LocalProtocolError):
        WebSocketChannelConnection.server(max_message_size=0)


@pytest.mark.parametrize(("request_bytes", "status"), [
    (upgrade_request(method="POST"), 405),
    (upgrade_request().replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""), 400),
    (upgrade_request().replace(b"Upgrade: websocket\r\n", b""), 400),
    (upgrade_request().replace(b"Connection: Upgrade\r\n", b""), 400),
    (upgrade_request().replace(b"Version: 13", b"Version: 8"), 426),
    (upgrade_request().replace(b"Sec-WebSocket-Version: 13\r\n", b""), 400),
    (upgrade_request().replace(b"Host: h\r\n", b""), 400),
    (upgrade_request("v5.channel.k8s.io\xe9".encode("latin-1").decode("latin-1")), 400),
    (upgrade_request().replace(b"/exec?", b"/exec%zz?"), 400),
    (b"NOT HTTP\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000, 431),
])
def test_server_rejects_bad_handshakes(request_bytes: bytes, status: int) -> None:
    server = WebSocketChannelConnection.server()
    with pytest.raises(RemoteProtocolError):
        server.receive_data(request_bytes)
    code, body = error_response_status(server.data_to_send())
    assert code == status
    assert body["code"] == status
    assert server.state is WebSocketState.FAILED
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"")


def test_server_405_has_allow_header_and_426_names_the_version() -> None:
    server = WebSocketChannelConnection.server()
    with pytest.raises(RemoteProtocolError):
        server.receive_data(upgrade_request(method="POST"))
    assert header_value(split_head(server.data_to_send())[0], "Allow") == "GET"
    server = WebSocketChannelConnection.server()
    with pytest.raises(RemoteProtocolError):
        server.receive_data(upgrade_request().replace(b"Version: 13", b"Version: 8"))
    assert header_value(split_head(server.data_to_send())[0], "Sec-WebSocket-Version") == "13"


def test_server_eof_before_request() -> None:
    server = WebSocketChannelConnection.server()
    server.receive_data(b"GET / HT")
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"")
    assert server.data_to_send() == b""


# --------------------------------------------------------------------------------------
# Incoming message rules


def test_client_text_message_on_binary_protocol_fails_with_1002() -> None:
    client = open_client(V5)
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(frame(TEXT, b"1hi"))
    assert info.value.close_code == 1002
    assert parse_frames(client.data_to_send())[0][:2] == (CLOSE_OP, True)
    with pytest.raises(RemoteProtocolError):
        client.receive_data(status_frame())


def test_client_binary_message_on_base64_protocol_fails() -> None:
    client = open_client(V4B64)
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(frame(BINARY, b"\x01hi"))
    assert info.value.close_code == 1002


@pytest.mark.parametrize("protocol", [V5, V1B64])
def test_client_zero_length_message_fails(protocol: str) -> None:
    client = open_client(protocol)
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(frame(TEXT if "base64" in protocol else BINARY, b""))
    assert info.value.close_code == 1002
    (opcode, _, payload), = parse_frames(client.data_to_send())
    assert opcode == CLOSE_OP and payload[:2] == b"\x03\xea"


@pytest.mark.parametrize("role", ["client", "server"])
def test_invalid_base64_fails_with_1007(role: str) -> None:
    conn = open_client(V4B64) if role == "client" else open_server(V4B64)
    make = frame if role == "client" else client_frame
    assert conn.receive_data(make(TEXT, b"1aGkK")) == [ChannelData(channel=1, data=b"hi\n")]
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(make(TEXT, b"1aGk"))
    assert info.value.close_code == 1007
    (opcode, _, payload), = parse_frames(conn.data_to_send())
    assert opcode == CLOSE_OP and payload[:2] == b"\x03\xef"


def test_server_accepts_text_and_binary_for_both_codecs() -> None:
    # x/net reads any data frame into a byte slice (websocket.go unmarshal).
    server = open_server(V4)
    assert server.receive_data(client_frame(TEXT, b"\x00ab") + client_frame(BINARY, b"\x00cd")) \
        == [ChannelData(channel=0, data=b"ab"), ChannelData(channel=0, data=b"cd")]
    server = open_server(V4B64)
    assert server.receive_data(client_frame(TEXT, b"0YWI=") + client_frame(BINARY, b"0Y2Q=")) \
        == [ChannelData(channel=0, data=b"ab"), ChannelData(channel=0, data=b"cd")]


def test_server_ignores_empty_messages() -> None:
    server = open_server(V5)
    assert server.receive_data(client_frame(BINARY, b"") + client_frame(BINARY, b"\x00")) == []
    assert server.dropped_messages == 0


@pytest.mark.parametrize("role", ["client", "server"])
def test_unknown_channels_are_dropped_and_counted(role: str) -> None:
    conn = open_client(V4) if role == "client" else open_server(V4)
    make = frame if role == "client" else client_frame
    events = conn.receive_data(make(BINARY, b"\x05abc") + make(BINARY, b"\xff\x00")
                               + make(BINARY, b"\x01ok"))
    assert events == [DroppedMessage(channel=5, size=4), DroppedMessage(channel=255, size=2),
                      ChannelData(channel=1, data=b"ok")]
    assert conn.dropped_messages == 2


def test_v5_client_drops_a_close_signal_from_the_server() -> None:
    client = open_client(V5)
    assert client.receive_data(frame(BINARY, b"\xff\x00")) == [
        DroppedMessage(channel=255, size=2)]


def test_base64_unknown_channel_is_dropped_without_decoding() -> None:
    server = open_server(V4B64)
    assert server.receive_data(client_frame(TEXT, b"9!!!") + client_frame(TEXT, b"/x")) == [
        DroppedMessage(channel=9, size=4), DroppedMessage(channel=255, size=2)]


def test_v5_close_signal_then_data_on_that_channel_is_dropped() -> None:
    # Which channels ended is the exec session's business: the connection reports the
    # CLOSE signal and the data, the session drops what follows the end.
    server = ServerExecSession()
    assert isinstance(server.receive_data(upgrade_request(V5))[0], RequestReceived)
    server.accept(stdin=True, stdout=True, stderr=False, tty=False, now=0.0)
    server.data_to_send()
    events = server.receive_data(client_frame(BINARY, b"\x00a") + client_frame(BINARY, b"\xff\x00")
                                 + client_frame(BINARY, b"\x00late")
                                 + client_frame(BINARY, b'\x04{"Width":80,"Height":24}'))
    assert events == [ChannelData(channel=0, data=b"a"), ChannelEnded(channel=0),
                      DroppedMessage(channel=0, size=5), TerminalResized(width=80, height=24)]


def test_v5_close_signal_split_over_fragments() -> None:
    server = open_server(V5)
    events = server.receive_data(client_frame(BINARY, b"\xff", fin=False)
                                 + client_frame(CONTINUATION, b"\x00"))
    assert events == [ChannelEnded(channel=0)]


@pytest.mark.parametrize("message", [b"\xff", b"\xff\x00\x00", b"\xff\x05", b"\xff\xff"])
def test_v5_malformed_close_signal_fails_the_server(message: bytes) -> None:
    server = open_server(V5)
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data(client_frame(BINARY, message))
    assert info.value.close_code == 1002
    assert parse_frames(server.data_to_send())[0][0] == CLOSE_OP


def test_fragmented_message_keeps_its_channel() -> None:
    client = open_client(V5)
    events = client.receive_data(frame(BINARY, b"", fin=False) + frame(CONTINUATION, b"\x02a",
                                                                      fin=False)
                                 + frame(PING, b"p") + frame(CONTINUATION, b"bc"))
    assert events == [ChannelData(channel=2, data=b"a"), PingReceived(payload=b"p"),
                      ChannelData(channel=2, data=b"bc")]


def test_fragmented_base64_message() -> None:
    client = open_client(V1B64)
    events = client.receive_data(frame(TEXT, b"2aG", fin=False) + frame(CONTINUATION, b"VsbG8="))
    assert b"".join(e.data for e in events if isinstance(e, ChannelData)) == b"hello"
    assert all(isinstance(e, ChannelData) and e.channel == 2 for e in events)


@pytest.mark.parametrize("role", ["client", "server"])
def test_max_message_size_closes_with_1009(role: str) -> None:
    conn = open_client(V5, max_message_size=10) if role == "client" else open_server(
        V5, max_message_size=10)
    make = frame if role == "client" else client_frame
    assert conn.receive_data(make(BINARY, b"\x01" + b"a" * 9)) == [
        ChannelData(channel=1, data=b"a" * 9)]
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(make(BINARY, b"\x01" + b"a" * 5, fin=False)
                          + make(CONTINUATION, b"b" * 5))
    assert info.value.close_code == 1009
    (opcode, _, payload), = parse_frames(conn.data_to_send())
    assert opcode == CLOSE_OP and payload[:2] == b"\x03\xf1"
    assert conn.state is WebSocketState.FAILED


def test_max_message_size_counts_a_frame_header_length_lie_as_it_streams() -> None:
    server = open_server(V5, max_message_size=100)
    # A frame announcing 2**40 bytes: nothing is buffered, the excess shows as it arrives.
    head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 2**40) + b"\0\0\0\0"
    assert server.receive_data(head + b"\x01" + b"x" * 50) == [
        ChannelData(channel=1, data=b"x" * 50)]
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"x" * 50)


def test_client_receiving_a_masked_frame_fails() -> None:
    client = open_client(V5)
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(client_frame(BINARY, b"\x01hi"))
    assert info.value.close_code == 1002


# --------------------------------------------------------------------------------------
# Close, EOF, abnormal ends


def test_client_clean_close_1000_before_status_is_clean() -> None:
    client = open_client(V1)  # v1 success writes nothing on the error channel
    events = client.receive_data(frame(CLOSE_OP, b"\x03\xe8"))
    assert events == [ConnectionClosed(code=1000, reason="", clean=True)]
    assert parse_frames(client.data_to_send()) == [(CLOSE_OP, True, b"\x03\xe8")]
    assert client.state is WebSocketState.CLOSED
    assert client.receive_data(b"ignored") == []


def test_bytes_after_the_close_frame_are_ignored() -> None:
    client = open_client(V5)
    events = client.receive_data(frame(BINARY, b"\x01a") + frame(CLOSE_OP, b"\x03\xe8")
                                 + frame(BINARY, b"\x01b") + b"\xff garbage")
    assert events == [ChannelData(channel=1, data=b"a"),
                      ConnectionClosed(code=1000, reason="", clean=True)]
    assert client.receive_data(b"") == []


@pytest.mark.parametrize("ending", [frame(CLOSE_OP, b"\x03\xf3oops"), frame(CLOSE_OP, b""), b""])
def test_client_abnormal_end_before_status_is_an_error(ending: bytes) -> None:
    # The status-ordering rule is the exec session's: it fails, the connection just closed.
    client, request = new_client((V5,))
    session = ClientExecSession(client)
    session.receive_data(switching_response(request, V5))
    session.receive_data(frame(BINARY, b"\x01") + frame(BINARY, b"\x03"))  # hellos: no status
    with pytest.raises(RemoteProtocolError) as info:
        session.receive_data(ending)
    assert "before the exit status" in str(info.value)
    with pytest.raises(RemoteProtocolError, match="already failed"):
        session.receive_data(b"")
    if ending:
        # The close was answered before failing.
        assert parse_frames(client.data_to_send())[0][0] == CLOSE_OP


@pytest.mark.parametrize(("ending", "code", "reason"), [
    (frame(CLOSE_OP, b"\x03\xf3oops"), 1011, "oops"),
    (frame(CLOSE_OP, b""), 1005, ""),
    (b"", 1006, ""),
])
def test_client_abnormal_end_after_status_is_unclean(ending: bytes, code: int,
                                                      reason: str) -> None:
    client = open_client(V5)
    client.receive_data(status_frame())
    events = client.receive_data(ending)
    assert events == [ConnectionClosed(code=code, reason=reason, clean=False)]
    assert client.state is WebSocketState.CLOSED
    if ending:
        echo = parse_frames(client.data_to_send())
        assert echo == [(CLOSE_OP, True, b"" if code == 1005 else struct.pack("!H", code))]


def test_server_sees_client_close_and_eof() -> None:
    server = open_server(V5)
    assert server.receive_data(client_frame(CLOSE_OP, b"\x03\xe9")) == [
        ConnectionClosed(code=1001, reason="", clean=False)]
    assert parse_frames(server.data_to_send()) == [(CLOSE_OP, True, b"\x03\xe9")]
    server = open_server(V5)
    assert server.receive_data(b"") == [ConnectionClosed(code=1006, reason="", clean=False)]


def test_local_close_waits_for_the_peer() -> None:
    server = open_server(V5)
    server.send_data(3, b"{}")
    server.close()
    assert server.state is WebSocketState.CLOSING
    frames = parse_frames(server.data_to_send())
    assert frames[-1] == (CLOSE_OP, True, b"\x03\xe8")
    with pytest.raises(LocalProtocolError):
        server.send_data(1, b"x")
    with pytest.raises(LocalProtocolError):
        server.ping(0.0)
    server.close()  # no-op
    assert server.data_to_send() == b""
    # Data and pings still arrive while closing; pings are not answered any more.
    events = server.receive_data(client_frame(BINARY, b"\x00x") + client_frame(PING, b""))
    assert events == [ChannelData(channel=0, data=b"x")]
    assert server.data_to_send() == b""
    assert server.receive_data(client_frame(CLOSE_OP, b"\x03\xe8")) == [
        ConnectionClosed(code=1000, reason="", clean=True)]
    assert server.data_to_send() == b""
    assert server.state.name == "CLOSED"


def test_close_code_and_reason_validation() -> None:
    server = open_server(V5)
    for code in (999, 1004, 1005, 1006, 1015, 2000, 5000):
        with pytest.raises(LocalProtocolError):
            server.close(code)
    with pytest.raises(LocalProtocolError):
        server.close(1000, "x" * 124)
    server.close(4000, "é" * 61)
    (_, _, payload), = parse_frames(server.data_to_send())
    assert payload == b"\x0f\xa0" + "é".encode() * 61


def test_close_while_connecting_is_a_local_error() -> None:
    client, _ = new_client()
    with pytest.raises(LocalProtocolError):
        client.close()


# --------------------------------------------------------------------------------------
# Sending


def test_client_never_sends_an_empty_message() -> None:
    client = open_client(V5)
    client.send_data(0, b"")
    assert client.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        client.send_data(300, b"")


def test_outgoing_messages_are_single_frames_with_fin() -> None:
    client = open_client(V5)
    client.send_data(0, b"x" * 70000)
    client.send_data(4, bytearray(b'{"Width":80,"Height":24}'))
    client.send_data(0, memoryview(b"abc")[1:])
    frames = parse_frames(client.data_to_send())
    assert frames == [(BINARY, True, b"\x00" + b"x" * 70000),
                      (BINARY, True, b'\x04{"Width":80,"Height":24}'),
                      (BINARY, True, b"\x00bc")]


def test_base64_protocol_sends_text() -> None:
    client = open_client(V4B64)
    client.send_data(0, b"hi\n")
    assert parse_frames(client.data_to_send()) == [(TEXT, True, b"0aGkK")]
    with pytest.raises(LocalProtocolError):
        client.send_data(80, b"x")


@pytest.mark.parametrize("channel", [-1, 255, True])
def test_bad_channel_is_a_local_error(channel: int) -> None:
    client = open_client(V5)
    with pytest.raises(LocalProtocolError):
        client.send_data(channel, b"x")
    with pytest.raises(LocalProtocolError):
        client.close_channel(channel)


@pytest.mark.parametrize("protocol", [V4, V4B64, V1, V1B64, ""])
def test_close_channel_needs_v5(protocol: str) -> None:
    client = open_client(protocol)
    with pytest.raises(LocalProtocolError, match="cannot half-close stdin"):
        client.close_channel(0)
    assert client.data_to_send() == b""


def test_close_channel_v5_then_no_more_data_there() -> None:
    client = open_client(V5)
    client.close_channel(0)
    assert parse_frames(client.data_to_send()) == [(BINARY, True, b"\xff\x00")]
    with pytest.raises(LocalProtocolError):
        client.send_data(0, b"x")
    with pytest.raises(LocalProtocolError):
        client.close_channel(0)
    client.send_data(4, b"{}")
    assert parse_frames(client.data_to_send()) == [(BINARY, True, b"\x04{}")]


def test_send_before_open_is_a_local_error() -> None:
    client, _ = new_client()
    with pytest.raises(LocalProtocolError):
        client.send_data(0, b"x")
    with pytest.raises(LocalProtocolError):
        client.close_channel(0)
    with pytest.raises(LocalProtocolError):
        client.ping(1.0)


# --------------------------------------------------------------------------------------
# Pings


def test_pings_are_matched_to_pongs_oldest_first() -> None:
    client = open_client(V5)
    assert client.awaiting_pong_since is None
    client.ping(10.0)
    client.ping(15.0)
    assert client.awaiting_pong_since == 10.0
    assert parse_frames(client.data_to_send()) == [(PING, True, b""), (PING, True, b"")]
    assert client.receive_data(frame(PONG, b"")) == [PongReceived(payload=b"", sent_at=10.0)]
    assert client.awaiting_pong_since == 15.0
    assert client.receive_data(frame(PONG, b"") + frame(PONG, b"x")) == [
        PongReceived(payload=b"", sent_at=15.0), PongReceived(payload=b"x", sent_at=None)]
    assert client.awaiting_pong_since is None


def test_received_pings_are_answered() -> None:
    server = open_server(V5)
    assert server.receive_data(client_frame(PING, b"abc")) == [PingReceived(payload=b"abc")]
    assert parse_frames(server.data_to_send()) == [(PONG, True, b"abc")]


def test_outstanding_pings_are_bounded() -> None:
    client = open_client(V5)
    for second in range(1024):
        client.ping(float(second))
    with pytest.raises(LocalProtocolError):
        client.ping(2000.0)


# --------------------------------------------------------------------------------------
# The state machine over every (state, input) pair

LOCAL_INPUTS = {StateInput.ACCEPT, StateInput.REJECT, StateInput.SEND, StateInput.CLOSE}


def server_in(state: WebSocketState) -> WebSocketChannelConnection:
    if state is WebSocketState.CONNECTING:
        return requested_server()
    if state is WebSocketState.REJECTED:
        server = requested_server()
        server.reject()
        return server
    if state is WebSocketState.FAILED:
        server = WebSocketChannelConnection.server()
        with pytest.raises(RemoteProtocolError):
            server.receive_data(b"BAD\r\n\r\n")
        return server
    server = open_server()
    if state is WebSocketState.CLOSING:
        server.close()
    elif state is WebSocketState.CLOSED:
        server.receive_data(client_frame(CLOSE_OP, b"\x03\xe8"))
    server.data_to_send()
    assert server.state is state
    return server


def client_in(state: WebSocketState) -> WebSocketChannelConnection:
    if state is WebSocketState.CONNECTING:
        return new_client()[0]
    if state is WebSocketState.REJECTED:
        client = new_client()[0]
        client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        return client
    if state is WebSocketState.FAILED:
        client = new_client()[0]
        with pytest.raises(RemoteProtocolError):
            client.receive_data(b"BAD\r\n\r\n")
        return client
    client = open_client()
    client.receive_data(status_frame())  # so that ends are not errors
    if state is WebSocketState.CLOSING:
        client.close()
    elif state is WebSocketState.CLOSED:
        client.receive_data(frame(CLOSE_OP, b"\x03\xe8"))
    client.data_to_send()
    assert client.state is state
    return client


def apply(conn: WebSocketChannelConnection, what: StateInput, request: bytes) -> None:
    """Drive ``what`` through the public API."""
    server = conn.role == "server"
    make = client_frame if server else frame
    if what is StateInput.ACCEPT:
        if server or conn.state is not WebSocketState.CONNECTING:
            conn.accept()
        else:
            conn.receive_data(switching_response(request, V5))
    elif what is StateInput.REJECT:
        if server or conn.state is not WebSocketState.CONNECTING:
            conn.reject()
        else:
            conn.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    elif what is StateInput.SEND:
        conn.send_data(1, b"x")
    elif what is StateInput.CLOSE:
        conn.close()
    elif what is StateInput.RECEIVE:
        conn.receive_data(make(BINARY, b"\x01x") if conn.state is not WebSocketState.CONNECTING
                          or server else b"HTTP/1.1 100 Continue\r\n\r\n")
    elif what is StateInput.PEER_CLOSE:
        conn.receive_data(make(CLOSE_OP, b"\x03\xe8")
                          if conn.state is not WebSocketState.CONNECTING or server
                          else b"HTTP/1.1 100 Continue\r\n\r\n")
    elif what is StateInput.EOF:
        conn.receive_data(b"")
    elif conn.state is WebSocketState.CONNECTING:  # FAIL
        conn.receive_data(b"x" * (MAX_EARLY_DATA + 1) if server else b"BAD\r\n\r\n")
    else:
        # A frame with the wrong masking for its direction.
        conn.receive_data(frame(BINARY, b"\x01x") if server else client_frame(BINARY, b"\x01x"))


@pytest.mark.parametrize("role", ["client", "server"])
@pytest.mark.parametrize("state", list(WebSocketState))
@pytest.mark.parametrize("what", list(StateInput))
def test_every_state_and_input(role: str, state: WebSocketState, what: StateInput) -> None:
    if role == "server":
        conn, request = server_in(state), b""
    else:
        conn, request = new_client()
        if state is not WebSocketState.CONNECTING:
            conn = client_in(state)
    expected = TRANSITIONS.get((state, what))
    local = what in LOCAL_INPUTS
    if role == "client" and what in (StateInput.ACCEPT, StateInput.REJECT):
        if state is WebSocketState.CONNECTING:
            local = False  # the server's answer arrives
        else:
            expected = None  # the client has no accept()/reject() of its own
    if local:
        if expected is None:
            with pytest.raises(LocalProtocolError):
                apply(conn, what, request)
            assert conn.state is state
        else:
            apply(conn, what, request)
            assert conn.state is expected
        return
    # Remote inputs: a pair missing from the table cannot happen in that state; the bytes
    # are then just bytes received there.
    if state is WebSocketState.FAILED or expected is WebSocketState.FAILED:
        with pytest.raises(RemoteProtocolError):
            apply(conn, what, request)
        assert conn.state is WebSocketState.FAILED
        return
    apply(conn, what, request)
    assert conn.state is (expected or TRANSITIONS[state, StateInput.RECEIVE])


def test_transition_table_shape() -> None:
    states = set(WebSocketState)
    assert {state for state, _ in TRANSITIONS} == states
    # Every state can be left for FAILED or is final, and FAILED/CLOSED/REJECTED are sinks.
    for (state, _), target in TRANSITIONS.items():
        if state in (WebSocketState.CLOSED, WebSocketState.REJECTED, WebSocketState.FAILED):
            assert target is state
    # Sending is possible in OPEN only.
    assert [s for s in states if (s, StateInput.SEND) in TRANSITIONS] == [WebSocketState.OPEN]


# --------------------------------------------------------------------------------------
# Arbitrary bytes never raise anything but RemoteProtocolError


def _feed_all(conn: WebSocketChannelConnection, data: bytes, chunk: int) -> None:
    try:
        for start in range(0, len(data), chunk):
            conn.receive_data(data[start:start + chunk])
        conn.receive_data(b"")
    except RemoteProtocolError:
        assert conn.state is WebSocketState.FAILED


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300), chunk=st.integers(1, 64))
def test_arbitrary_bytes_to_a_server(data: bytes, chunk: int) -> None:
    _feed_all(WebSocketChannelConnection.server(), data, chunk)
    _feed_all(WebSocketChannelConnection.server(), KUBECTL_REQUEST[:40] + data, chunk)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(protocol=st.sampled_from(ALL_PROTOCOLS), data=st.binary(max_size=300),
       chunk=st.integers(1, 64))
def test_arbitrary_bytes_to_open_connections(protocol: str, data: bytes, chunk: int) -> None:
    _feed_all(open_client(protocol), data, chunk)
    server = open_server(protocol)
    _feed_all(server, data, chunk)


def _frames_strategy(masked: bool) -> st.SearchStrategy[bytes]:
    one = st.builds(
        lambda op, payload, fin: frame(op, payload, fin=fin, mask=MASK if masked else None),
        st.sampled_from([TEXT, BINARY, CONTINUATION, PING, PONG, CLOSE_OP, 0x3]),
        st.binary(max_size=20), st.booleans())
    return st.lists(one, max_size=8).map(b"".join)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(protocol=st.sampled_from(ALL_PROTOCOLS), data=st.data())
def test_arbitrary_frames_to_open_connections(protocol: str, data: st.DataObject) -> None:
    _feed_all(open_client(protocol), data.draw(_frames_strategy(False)), 7)
    _feed_all(open_server(protocol), data.draw(_frames_strategy(True)), 5)


def test_frame_codec_text_and_binary_pieces() -> None:
    codec = FrameCodec(client=False)
    items = codec.receive(client_frame(TEXT, "é".encode(), fin=False)
                          + client_frame(CONTINUATION, b"x"))
    assert [(i.text, i.data, i.message_finished) for i in items] == [  # type: ignore[union-attr]
        (True, "é".encode(), False), (True, b"x", True)]
    with pytest.raises(RemoteProtocolError) as info:
        codec.receive(client_frame(TEXT, b"\xff"))
    assert info.value.close_code == 1007
    codec = FrameCodec(client=True)
    frames = parse_frames(codec.message(b"\x01", memoryview(b"ab"), text=False))
    assert frames == [(BINARY, True, b"\x01ab")]


def test_ping_then_close_in_one_read_reaches_the_client_intact() -> None:
    # Regression: the seam drains wsproto before answering pings, so a ping followed by a
    # close in the same read once raised LocalProtocolError and lost the exit status.
    client = WebSocketChannelConnection.client(
        host="x", target="/exec?command=ls&stdout=true", protocols=["v5.channel.k8s.io"])
    server = WebSocketChannelConnection.server(supported=["v5.channel.k8s.io"])
    server.receive_data(client.data_to_send())
    server.accept()
    client.receive_data(server.data_to_send())
    server.send_data(3, b'{"metadata":{},"status":"Success"}')
    server.ping(0.0)
    server.close(1000)
    events = client.receive_data(server.data_to_send())
    assert [type(e).__name__ for e in events] == [
        "ChannelData", "PingReceived", "ConnectionClosed"]
    assert events[-1] == ConnectionClosed(code=1000, reason="", clean=True)


# --------------------------------------------------------------------------------------
# Receiving from an adapter's reused buffer; sending buffers the caller may change


def _messages_stream(protocol: str, messages: list[tuple[int, bytes]], *, masked: bool
                     ) -> bytes:
    # Whole messages, some cut in two frames, as the peer of the receiver writes them.
    base64_text = WEBSOCKET_PROTOCOLS[protocol].base64
    mask = MASK if masked else None
    out = b""
    for index, (channel, payload) in enumerate(messages):
        if base64_text:
            opcode, body = TEXT, bytes((0x30 + channel,)) + base64.b64encode(payload)
        else:
            opcode, body = BINARY, bytes((channel,)) + payload
        if index % 3 == 2 and len(body) > 1:  # a fragmented message
            half = len(body) // 2
            out += frame(opcode, body[:half], fin=False, mask=mask)
            out += frame(CONTINUATION, body[half:], mask=mask)
        else:
            out += frame(opcode, body, mask=mask)
    return out


def _merged(events: list[Event]) -> list[Event]:
    # Adjacent ChannelData of one channel joined: reads cut messages differently.
    out: list[Event] = []
    for event in events:
        previous = out[-1] if out else None
        if (isinstance(event, ChannelData) and isinstance(previous, ChannelData)
                and previous.channel == event.channel):
            out[-1] = ChannelData(channel=event.channel, data=previous.data + event.data)
        else:
            out.append(event)
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocol=st.sampled_from(ALL_PROTOCOLS), client=st.booleans(),
       messages=st.lists(st.tuples(st.sampled_from([0, 1, 2, 3, 5]),
                                   st.binary(max_size=300)), max_size=8),
       cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=8))
def test_messages_survive_a_reused_receive_buffer(protocol: str, client: bool,
                                                  messages: list[tuple[int, bytes]],
                                                  cuts: list[int]) -> None:
    # The connection borrows views of what it is fed: every byte it keeps must be copied
    # before receive_data returns. Fed slices of one buffer that is overwritten after
    # every call, it must read what it reads from immutable bytes, at any split.
    if client:
        messages = [(channel, payload) for channel, payload in messages if channel != 0]
    stream = _messages_stream(protocol, messages, masked=not client)
    # A ping at the end: never empty (b"" would be the end of the stream).
    stream += frame(PING, b"p", mask=None if client else MASK)
    reference = open_client(protocol) if client else open_server(protocol)
    expected = reference.receive_data(stream)
    conn = open_client(protocol) if client else open_server(protocol)
    buffer = bytearray(len(stream))
    events: list[Event] = []
    for start, stop in itertools.pairwise(sorted({0, len(stream), *(
            cut for cut in cuts if cut <= len(stream))})):
        buffer[:stop - start] = stream[start:stop]
        events += conn.receive_data(memoryview(buffer)[:stop - start])
        buffer[:] = b"\xee" * len(buffer)
    assert all(type(event.data) is bytes for event in events if isinstance(event, ChannelData))
    assert _merged(events) == _merged(expected)
    for channel in (0, 1, 2, 3):
        assert b"".join(e.data for e in events if isinstance(e, ChannelData)
                        and e.channel == channel) == b"".join(
            payload for ch, payload in messages if ch == channel)


@pytest.mark.parametrize("protocol", ALL_PROTOCOLS)
def test_server_sends_what_a_mutable_buffer_held_at_send_time(protocol: str) -> None:
    server = open_server(protocol)
    data = bytearray(b"x" * 5000)
    server.send_data(1, data)
    server.send_data(1, memoryview(data)[:10])
    immutable = b"y" * 5000
    server.send_data(2, memoryview(immutable)[1:])
    data[:] = b"z" * 5000
    frames = parse_frames(server.data_to_send())
    payloads = [body for _, _, body in frames]
    if WEBSOCKET_PROTOCOLS[protocol].base64:
        payloads = [bytes((body[0] - 0x30,)) + base64.b64decode(body[1:])
                    for body in payloads]
    assert payloads == [b"\x01" + b"x" * 5000, b"\x01" + b"x" * 10, b"\x02" + b"y" * 4999]
    assert server.data_to_send() == b""


# --------------------------------------------------------------------------------------
# The channel set is a parameter (exec: 0..4; WebSocket v4 port-forward: 0..2N-1)


@pytest.mark.parametrize("role", ["client", "server"])
def test_channel_set_is_a_parameter(role: str) -> None:
    make: Callable[..., bytes]
    conn: WebSocketChannelConnection
    if role == "client":
        conn, request = new_client((V4,), channels=range(6))
        assert conn.receive_data(switching_response(request, V4))
        make = frame
    else:
        conn = WebSocketChannelConnection.server(channels=range(6))
        conn.receive_data(upgrade_request(V4))
        conn.accept()
        conn.data_to_send()
        make = client_frame
    assert conn.channels == frozenset(range(6))
    events = conn.receive_data(make(BINARY, b"\x05abc") + make(BINARY, b"\x06abc")
                               + make(BINARY, b"\x07a", fin=False) + make(CONTINUATION, b"b"))
    assert events == [ChannelData(channel=5, data=b"abc"), DroppedMessage(channel=6, size=4),
                      DroppedMessage(channel=7, size=3)]


@pytest.mark.parametrize("channels", [[255], [-1], ["1"], [True]])
def test_channel_set_must_hold_channels(channels: list[object]) -> None:
    with pytest.raises(LocalProtocolError):
        WebSocketChannelConnection.server(channels=channels)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# The exec server session parses the head once and hands the rest to the connection


@pytest.mark.parametrize("byte_at_a_time", [False, True])
def test_session_hands_the_bytes_after_the_head_to_the_connection(byte_at_a_time: bool) -> None:
    server = ServerExecSession()
    data = upgrade_request(V5) + client_frame(BINARY, b"\x00early")
    chunks = [data[i:i + 1] for i in range(len(data))] if byte_at_a_time else [data]
    events = [event for chunk in chunks for event in server.receive_data(chunk)]
    assert [type(event) for event in events] == [RequestReceived]
    assert server.receive_data(client_frame(BINARY, b"\x00later")) == []
    server.accept(stdin=True, stdout=True, stderr=False, tty=False, now=0.0)
    head, rest = split_head(server.data_to_send())
    assert head.startswith(b"HTTP/1.1 101 ") and rest == frame(BINARY, b"\x01")
    # As WebSocketChannelConnection.accept says: early bytes come first in the next read.
    assert server.receive_data(client_frame(BINARY, b"\x00next")) == [
        ChannelData(channel=0, data=b"early"), ChannelData(channel=0, data=b"later"),
        ChannelData(channel=0, data=b"next")]


def test_session_broken_body_is_the_connections_to_report() -> None:
    server = ServerExecSession()
    request = upgrade_request(V5, extra="Transfer-Encoding: chunked\r\n") + b"zz\r\n"
    events = server.receive_data(request)
    assert [type(event) for event in events] == [RequestReceived]
    with pytest.raises(RemoteProtocolError, match="invalid HTTP request"):
        server.accept(stdin=True, stdout=True, stderr=False, tty=False, now=0.0)
    code, body = error_response_status(server.data_to_send())
    assert code == 400 and body["code"] == 400
