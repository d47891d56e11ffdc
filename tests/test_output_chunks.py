"""The server role never puts more than 32 KiB of output in one message or DATA frame.

The kubelet copies a process's output through 32 KiB buffers, and real clients depend on
it (a popular Python WebSocket client stops at 64 KiB with close 1009, so it could not
download 1 MiB from kstream serve, which used to send up to 120 KiB at once). Checked on
the wire: the server's bytes are decoded frame by frame.
"""

from __future__ import annotations

import socket
import struct
from urllib.parse import urlsplit

import pytest
from test_session import open_pair

import kstream
from kstream._exec.session import OUTPUT_CHUNK_SIZE
from kstream._spdy.frames import DataFrame, FrameDecoder
from kstream._ws.codec import OP_BINARY
from kstream._ws.codec import FrameDecoder as WebSocketFrameDecoder
from kstream.testing import FakeNode

LIMIT = 32 * 1024


def _spdy_data_sizes(data: bytes) -> list[int]:
    # DATA frame lengths straight from their headers (the decoder streams payloads).
    sizes, offset = [], 0
    while offset + 8 <= len(data):
        word, flags_length = struct.unpack_from("!II", data, offset)
        length = flags_length & 0xFFFFFF
        if not word & 0x80000000:
            sizes.append(length)
        offset += 8 + length
    return sizes


@pytest.mark.parametrize("kind", ["ws5", "ws4", "spdy"])
@pytest.mark.parametrize("size", [1, LIMIT, LIMIT + 1, 120 * 1024, 1 << 20])
def test_output_is_cut_at_32_kib_on_the_wire(kind: str, size: int) -> None:
    assert OUTPUT_CHUNK_SIZE == LIMIT
    _, server = open_pair(kind)
    server.data_to_send()
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    server.send_stdout(payload)
    server.send_stderr(memoryview(payload))
    wire = server.data_to_send()
    if kind == "spdy":
        sizes = _spdy_data_sizes(wire)
        assert sum(sizes) == 2 * size
        spdy_frames = FrameDecoder().feed(wire)
        body = b"".join(bytes(f.data) for f in spdy_frames if isinstance(f, DataFrame))
        assert body == payload + payload
    else:
        ws_frames = WebSocketFrameDecoder(client=True).feed(wire)
        messages = [bytes(p) for opcode, p, _, _ in ws_frames if opcode == OP_BINARY]
        sizes = [len(m) - 1 for m in messages]  # less the channel byte
        assert b"".join(m[1:] for m in messages) == payload + payload
    assert max(sizes) <= LIMIT
    assert len(sizes) == 2 * -(-size // LIMIT)


def test_serve_sends_at_most_32_kib_per_message() -> None:
    size = 1 << 20
    with FakeNode(tls=False, token="t").in_thread() as server:
        host, port = urlsplit(server.server).netloc.rsplit(":", 1)
        client = kstream.WebSocketChannelConnection.client(
            host=f"{host}:{port}", headers=[("Authorization", "Bearer t")],
            target=f"/api/v1/namespaces/default/pods/demo/exec?command=head&command=-c"
                   f"&command={size}&command=/dev/zero&stdout=true")
        decoder = WebSocketFrameDecoder(client=True)
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(client.data_to_send())
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 101")
            wire = bytearray(head.split(b"\r\n\r\n", 1)[1])
            while chunk := sock.recv(1 << 20):  # to the end: serve closes after the status
                wire += chunk
    sizes = [len(p) - 1 for opcode, p, _, _ in decoder.feed(bytes(wire))
             if opcode == OP_BINARY and len(p) > 1 and p[0] == 1]
    assert sum(sizes) == size
    assert max(sizes) <= LIMIT
