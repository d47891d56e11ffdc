"""A peer that pings and never reads the answers cannot grow our memory.

Both roles, both runtimes: the peer floods pings (64 MiB of them) and never reads, so
nothing we send can leave. Before replies were bounded, every ping's answer queued: a
client grew to 657 MB in 15 s, ``kstream serve`` to 431 MB in 10 s. Measured from the
outside, as the resident memory of the process under attack.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import kstream
from kstream.testing import FakeNode

#: Bytes of pings the peer sends (each 125 bytes of payload in a 127/131-byte frame).
FLOOD = 64 << 20
#: Growth of resident memory allowed while the flood lasts.
BOUND_MIB = 24


def _rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    assert match is not None
    return int(match.group(1)) / 1024


def _pings(masked: bool) -> bytes:
    # A 125-byte ping; a client's carries a mask (all zero bytes: the payload as is).
    frame = b"\x89" + (b"\xfd\x00\x00\x00\x00" if masked else b"\x7d") + bytes(125)
    return frame * ((1 << 20) // len(frame))


_CLIENT = """
import asyncio, sys
runtime, url = sys.argv[1], sys.argv[2]
async def main_asyncio():
    import kstream.asyncio
    async with await kstream.asyncio.open_exec(url, "default", "demo", ["x"],
                                               transport="websocket") as proc:
        print("upgraded", flush=True)
        await proc.wait()
async def main_trio():
    import kstream.trio
    async with await kstream.trio.open_exec(url, "default", "demo", ["x"],
                                            transport="websocket") as proc:
        print("upgraded", flush=True)
        await proc.wait()
if runtime == "asyncio":
    asyncio.run(main_asyncio())
else:
    import trio
    trio.run(main_trio)
"""


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_a_client_flooded_with_pings_stays_bounded(runtime: str) -> None:
    async def scenario() -> tuple[float, float]:
        upgraded = asyncio.Event()
        flooded = asyncio.Event()
        done = asyncio.Event()

        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                server = kstream.WebSocketChannelConnection.server()
                while not server.receive_data(await reader.read(65536)):
                    pass
                server.accept("v5.channel.k8s.io", hello=1)
                writer.write(server.data_to_send())
                upgraded.set()
                chunk, sent = _pings(masked=False), 0
                while sent < FLOOD:  # never reading what the client answers
                    writer.write(chunk)
                    await writer.drain()
                    sent += len(chunk)
                flooded.set()
                await done.wait()
            finally:
                writer.transport.abort()

        listener = await asyncio.start_server(peer, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CLIENT, runtime, f"http://127.0.0.1:{port}",
            stdout=asyncio.subprocess.PIPE)
        try:
            assert client.stdout is not None
            await asyncio.wait_for(client.stdout.readline(), 30)
            await asyncio.wait_for(upgraded.wait(), 30)
            before = _rss_mib(client.pid)
            await asyncio.wait_for(flooded.wait(), 120)
            await asyncio.sleep(0.5)  # what was in flight has been read
            return before, _rss_mib(client.pid)
        finally:
            client.kill()
            await client.wait()
            done.set()
            listener.close()
            await listener.wait_closed()

    before, after = asyncio.run(scenario())
    assert after - before < BOUND_MIB, f"{before:.0f} MiB before, {after:.0f} after"


def test_serve_flooded_with_pings_stays_bounded(caplog: pytest.LogCaptureFixture) -> None:
    # The node runs in this process, on its own thread: its memory is this process's.
    caplog.set_level(logging.WARNING)
    with FakeNode(tls=False, token="t").in_thread() as server:
        host, port = urlsplit(server.server).netloc.rsplit(":", 1)
        client = kstream.WebSocketChannelConnection.client(
            host=f"{host}:{port}", target="/api/v1/namespaces/default/pods/demo/exec"
            "?command=sleep&command=600&stdout=true", headers=[("Authorization", "Bearer t")])
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(client.data_to_send())
            while not client.receive_data(sock.recv(65536)):
                pass
            time.sleep(0.5)
            before = _rss_mib(os.getpid())
            chunk, sent = _pings(masked=True), 0
            sock.settimeout(120)
            while sent < FLOOD:  # never reading what the server answers
                sock.sendall(chunk)
                sent += len(chunk)
            time.sleep(0.5)
            after = _rss_mib(os.getpid())
    assert after - before < BOUND_MIB, f"{before:.0f} MiB before, {after:.0f} after"
    assert [record for record in caplog.records if record.exc_info] == []


def test_websocket_connection_answers_a_bounded_number_of_pings_per_flush() -> None:
    # Sans-IO: pings keep coming while nobody takes data_to_send(); only 16 pongs queue,
    # and the most recent ping is answered when the queue is taken (RFC 6455 §5.5.3).
    from kstream._ws.codec import OP_PONG, FrameDecoder
    from kstream._ws.connection import MAX_UNSENT_PONGS

    decoder = FrameDecoder(client=True)

    def pongs(data: bytes) -> list[bytes]:
        return [bytes(payload) for opcode, payload, _, _ in decoder.feed(data)
                if opcode == OP_PONG]

    client = kstream.WebSocketChannelConnection.client(host="h", target="/x")
    server = kstream.WebSocketChannelConnection.server()
    server.receive_data(client.data_to_send())
    server.accept("v5.channel.k8s.io")
    client.receive_data(server.data_to_send())
    pings = b"".join(b"\x89\x82\x00\x00\x00\x00" + i.to_bytes(2, "big") for i in range(1000))
    events = server.receive_data(pings)
    assert len(events) == 1000
    answered = pongs(server.data_to_send())
    assert len(answered) == MAX_UNSENT_PONGS + 1
    assert answered[:-1] == [i.to_bytes(2, "big") for i in range(MAX_UNSENT_PONGS)]
    assert answered[-1] == (999).to_bytes(2, "big")
    assert server.data_to_send() == b""  # nothing held back any more
    server.receive_data(pings[:8])
    assert pongs(server.data_to_send()) == [b"\x00\x00"]


def test_spdy_session_echoes_a_bounded_number_of_pings_per_flush() -> None:
    # The SPDY twin of the WebSocket bound: 1000 of the peer's pings, nobody taking
    # data_to_send(): 16 echoes queue, then the latest, once the queue is taken.
    from kstream._spdy.frames import FrameDecoder, PingFrame
    from kstream._spdy.handlers import MAX_UNSENT_ECHOES
    from kstream._spdy.session import SpdySession

    server = SpdySession(client=False)
    pings = b"".join(b"\x80\x03\x00\x06\x00\x00\x00\x04" + (2 * i + 1).to_bytes(4, "big")
                     for i in range(1000))  # the client's pings have odd ids
    assert len(server.receive_data(pings)) == 1000
    echoed = [f.ping_id for f in FrameDecoder().feed(server.data_to_send())
              if isinstance(f, PingFrame)]
    assert echoed == [2 * i + 1 for i in range(MAX_UNSENT_ECHOES)] + [1999]
    assert server.data_to_send() == b""


def test_spdy_keeps_only_the_settings_it_knows() -> None:
    # 128 MiB of SETTINGS with distinct ids took serve to 1.22 GB: only the 8 ids SPDY/3
    # defines are kept now.
    from kstream._spdy.session import SpdySession

    session = SpdySession(client=False)
    for start in range(0, 200_000, 20_000):
        entries = b"".join(((i % 256) << 24 | i).to_bytes(4, "big") + b"\x00\x00\x00\x01"
                           for i in range(start, start + 20_000))
        body = len(range(start, start + 20_000)).to_bytes(4, "big") + entries
        session.receive_data(b"\x80\x03\x00\x04" + len(body).to_bytes(4, "big") + body)
    assert set(session.peer_settings) <= set(range(1, 9))
