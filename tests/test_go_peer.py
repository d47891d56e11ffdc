"""The Go interop peer itself works: Go against Go, and Go against raw Python sockets.

These checks are independent of kstream, so a failing interop test elsewhere can be
blamed on kstream rather than on the peer.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import struct
from pathlib import Path

import pytest
from peers.gopeer import GoPeerServer, SpdyClientError, run_spdy_client

IO_QUERY = "stdin=true&stdout=true&stderr=true"
SUCCESS_STATUS = '{"metadata":{},"status":"Success"}'
EXIT_3_STATUS = (
    '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: '
    'error executing command [exit 3], exit code 3","reason":"NonZeroExitCode",'
    '"details":{"causes":[{"reason":"ExitCode","message":"3"}]}}'
)
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


# --- SPDY: kpeer spdy-client against kpeer serve -----------------------------------------


def test_spdy_cat_copies_one_mib_of_random_stdin(kpeer: Path, go_server: GoPeerServer) -> None:
    data = os.urandom(1 << 20)
    result = run_spdy_client(kpeer, f"{go_server.url}/exec?command=cat&{IO_QUERY}", stdin=data)
    assert result.protocol == "v4.channel.k8s.io"
    assert result.stdout_bytes == len(data)
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(data).digest()
    assert result.stderr == b""
    assert result.error == SUCCESS_STATUS


def test_spdy_exit_3_gives_the_v4_exit_status(kpeer: Path, go_server: GoPeerServer) -> None:
    url = f"{go_server.url}/exec?command=exit&command=3&stdout=true&stderr=true"
    result = run_spdy_client(kpeer, url)
    assert result.error == EXIT_3_STATUS


def test_spdy_failure_on_v2_is_plain_text(kpeer: Path, go_server: GoPeerServer) -> None:
    url = f"{go_server.url}/exec?command=fail&command=x&stdout=true"
    result = run_spdy_client(kpeer, url, protocols=["v2.channel.k8s.io"])
    assert result.protocol == "v2.channel.k8s.io"
    assert result.error == "Internal error occurred: error executing command in container: x"


def test_spdy_source_and_stderr_streams(kpeer: Path, go_server: GoPeerServer) -> None:
    url = f"{go_server.url}/exec?command=source&command=100000&stdout=true&stderr=true"
    result = run_spdy_client(kpeer, url)
    assert result.stdout == bytes(i % 251 for i in range(100_000))
    url = f"{go_server.url}/exec?command=tee-stderr&{IO_QUERY}"
    result = run_spdy_client(kpeer, url, stdin=b"both\n")
    assert (result.stdout, result.stderr) == (b"both\n", b"both\n")


def test_spdy_rejected_upgrade_reports_the_status(kpeer: Path) -> None:
    with GoPeerServer(kpeer, reject_spdy=403) as server, pytest.raises(SpdyClientError) as failure:
        run_spdy_client(kpeer, f"{server.url}/exec?command=cat&{IO_QUERY}")
    assert "HTTP 403" in failure.value.stderr
    assert '"message":"spdy disabled by test"' in failure.value.stderr


# --- WebSocket: raw Python socket against kpeer serve ------------------------------------


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    """One client frame: FIN set, masked, as RFC 6455 requires of clients."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class _RawWebSocket:
    """A hand-written, blocking WebSocket client: just enough to check the peer."""

    def __init__(self, server: GoPeerServer, target: str, protocols: str | None) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.buffer = bytearray()
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {server.host}:{server.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
            f"Sec-WebSocket-Key: {key}",
        ]
        if protocols is not None:
            lines.append(f"Sec-WebSocket-Protocol: {protocols}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.buffer = bytearray(rest)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        self.buffer += chunk

    def _take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self._fill()
        taken = bytes(self.buffer[:count])
        del self.buffer[:count]
        return taken

    def read_frame(self) -> tuple[bool, int, bytes]:
        """Return (fin, opcode, payload) of the next server frame (never masked)."""
        first, second = self._take(2)
        assert second & 0x80 == 0, "server frames must not be masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        return bool(first & 0x80), first & 0x0F, self._take(length)

    def send(self, opcode: int, payload: bytes) -> None:
        self.sock.sendall(_masked_frame(opcode, payload))

    def at_eof(self) -> bool:
        return not self.buffer and self.sock.recv(1) == b""

    def close(self) -> None:
        self.sock.close()


def test_websocket_v5_cat_echoes_and_closes_with_1000(go_server: GoPeerServer) -> None:
    target = f"/exec?command=cat&{IO_QUERY}"
    ws = _RawWebSocket(go_server, target, "v5.channel.k8s.io, v4.channel.k8s.io")
    try:
        assert ws.head.startswith("HTTP/1.1 101 ")
        assert "Sec-WebSocket-Protocol: v5.channel.k8s.io" in ws.head.split("\r\n")
        assert ws.read_frame() == (True, OP_BINARY, b"\x01")  # hello on stdout
        ws.send(OP_BINARY, b"\x00hello ")
        ws.send(OP_BINARY, b"\x00world")
        ws.send(OP_BINARY, b"\xff\x00")  # v5 CLOSE of stdin
        stdout = bytearray()
        while True:
            fin, opcode, payload = ws.read_frame()
            assert (fin, opcode) == (True, OP_BINARY)
            if payload[0] != 1:
                break
            stdout += payload[1:]
        assert stdout == b"hello world"
        assert payload == b"\x03" + SUCCESS_STATUS.encode()
        assert ws.read_frame() == (True, OP_CLOSE, struct.pack("!H", 1000))
        assert ws.at_eof()
    finally:
        ws.close()


def test_websocket_base64_exit_status(go_server: GoPeerServer) -> None:
    target = "/exec?command=exit&command=3&stdout=true"
    ws = _RawWebSocket(go_server, target, "v4.base64.channel.k8s.io")
    try:
        assert ws.read_frame() == (True, OP_TEXT, b"1")  # hello: '0'+1 and no payload
        fin, opcode, payload = ws.read_frame()
        assert (fin, opcode, payload[:1]) == (True, OP_TEXT, b"3")
        assert base64.b64decode(payload[1:]) == EXIT_3_STATUS.encode()
        assert ws.read_frame()[1] == OP_CLOSE
    finally:
        ws.close()


def test_websocket_server_pings_are_counted(kpeer: Path) -> None:
    with GoPeerServer(kpeer, ping_interval="20ms") as server:
        ws = _RawWebSocket(server, "/exec?command=sleep-forever&stdout=true", None)
        try:
            assert ws.read_frame() == (True, OP_BINARY, b"\x01")
            assert ws.read_frame() == (True, OP_PING, b"")
            ws.send(OP_PONG, b"")
            ws.send(OP_CLOSE, struct.pack("!H", 1000))
            # PONGS is printed before the server's close frame; reading up to it
            # (skipping further pings and the status) makes the check race-free.
            while ws.read_frame()[1] != OP_CLOSE:
                pass
        finally:
            ws.close()
        assert "PONGS 1\n" in server.stderr_text()


def _http_upgrade(server: GoPeerServer, protocols: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request(
            "GET",
            f"/exec?command=cat&{IO_QUERY}",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode("ascii"),
                "Sec-WebSocket-Protocol": protocols,
            },
        )
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_reject_websocket_answers_403_with_a_status(kpeer: Path) -> None:
    with GoPeerServer(kpeer, reject_websocket=403) as server:
        code, content_type, body = _http_upgrade(server, "v5.channel.k8s.io")
    assert (code, content_type) == (403, "application/json")
    assert body == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"websocket disabled by test","reason":"Forbidden","code":403}'
    )


def test_websocket_without_a_common_subprotocol_is_403(go_server: GoPeerServer) -> None:
    code, _, body = _http_upgrade(go_server, "v9.channel.k8s.io")
    assert code == 403
    status = json.loads(body)
    assert (status["reason"], status["code"]) == ("Forbidden", 403)


def test_websocket_tty_resize_events_reach_the_command(go_server: GoPeerServer) -> None:
    target = "/exec?command=size&stdin=true&stdout=true&tty=true"
    ws = _RawWebSocket(go_server, target, "v4.channel.k8s.io")
    try:
        assert ws.read_frame() == (True, OP_BINARY, b"\x01")
        ws.send(OP_BINARY, b'\x04{"Width":80,"Height":24}\n')
        assert ws.read_frame() == (True, OP_BINARY, b"\x0180x24\n")
        # v4 cannot half-close stdin: ending the WebSocket ends stdin and the command.
        ws.send(OP_CLOSE, struct.pack("!H", 1000))
        assert ws.read_frame() == (True, OP_BINARY, b"\x03" + SUCCESS_STATUS.encode())
        assert ws.read_frame() == (True, OP_CLOSE, struct.pack("!H", 1000))
    finally:
        ws.close()
