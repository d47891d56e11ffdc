"""kstream's port-forward client against ``kstream serve``, on every transport, both runtimes.

A :class:`~kstream.testing.FakeNode` (the engine of ``kstream serve``) runs on a thread
of its own (plain HTTP, its token in the URL path); the pod ports are thread servers on
127.0.0.1 (``pfpods.py``). Each case is written once
against the small :class:`RuntimeClient` interface and runs on asyncio and on trio.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from pfclient import RuntimeClient
from pfpods import CuttingProxy, PodServer, dead_port

import kstream
import kstream.asyncio
import kstream.trio
from kstream.testing import FakeNode

TRANSPORTS = ("tunnel", "spdy", "websocket")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """One node for the module (plain HTTP: the token is in the URL)."""
    with FakeNode(tls=False).in_thread() as node:
        yield node


@pytest.fixture(scope="module")
def echo() -> Iterator[PodServer]:
    with PodServer("echo") as pod:
        yield pod


def _url(server: FakeNode) -> str:
    return server.server


# --------------------------------------------------------------------------- one API, two runtimes


@pytest.fixture(params=["asyncio", "trio"])
def client(request: pytest.FixtureRequest) -> RuntimeClient:
    return RuntimeClient(request.param)


async def _echo_round_trip(client: RuntimeClient, session: Any, port: int, data: bytes) -> bytes:
    conn = await client.connect(session, port)

    async def upload() -> None:
        for start in range(0, len(data), 65536):
            await conn.send(data[start:start + 65536])
        await conn.eof()

    async def download() -> bytes:
        if session.transport != "websocket":
            return await conn.read_all()
        # WebSocket v4 has no half-close: the echo server never sees EOF.
        pieces, size = [], 0
        while size < len(data) and (chunk := await conn.recv(262144)):
            pieces.append(chunk)
            size += len(chunk)
        return b"".join(pieces)

    _, received = await client.gather(upload, download)
    await conn.close()
    assert isinstance(received, bytes)
    return received


# --------------------------------------------------------------------------- cases


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_round_trip_and_negotiated_transport(client: RuntimeClient, server: FakeNode,
                                             echo: PodServer, transport: str) -> None:
    data = os.urandom(1 << 20)

    async def body() -> None:
        before = len(server.sessions)
        async with client.session(_url(server), transport=transport) as session:
            received = await _echo_round_trip(client, session, echo.port, data)
            assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
            assert session.transport == transport
            expected = {"tunnel": "SPDY/3.1+portforward.k8s.io", "spdy": "portforward.k8s.io"}
            assert session.protocol == expected.get(transport, "v4.channel.k8s.io")
        records = server.sessions[before:]
        assert [(r.subresource, r.transport) for r in records] == [("portforward", transport)]
        assert records[0].protocol == session.protocol

    client.run(body)


def test_auto_is_the_tunnel(client: RuntimeClient, server: FakeNode, echo: PodServer) -> None:
    async def body() -> None:
        async with client.session(_url(server)) as session:
            assert session.transport == "tunnel"
            assert await _echo_round_trip(client, session, echo.port, b"hello") == b"hello"

    client.run(body)


@pytest.mark.parametrize("transport", ["tunnel", "spdy"])
def test_many_connections_share_one_upgraded_connection(
        client: RuntimeClient, server: FakeNode, echo: PodServer, transport: str) -> None:
    async def body() -> None:
        before = len(server.sessions)
        async with client.session(_url(server), transport=transport) as session:
            payloads = [os.urandom(20000 + i) for i in range(10)]
            results = await client.gather(*(
                (lambda p=p: _echo_round_trip(client, session, echo.port, p))
                for p in payloads))
            assert results == payloads
        assert len(server.sessions[before:]) == 1

    client.run(body)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dead_port_ends_that_connection_only(client: RuntimeClient, server: FakeNode,
                                             echo: PodServer, transport: str) -> None:
    async def body() -> None:
        async with client.session(_url(server), transport=transport) as session:
            good = await client.connect(session, echo.port)
            bad = await client.connect(session, dead_port())
            with pytest.raises((kstream.PortForwardError, trio.BrokenResourceError)) as info:
                await bad.read_all()
            error = info.value if isinstance(info.value, kstream.PortForwardError) \
                else info.value.__cause__
            assert isinstance(error, kstream.PortForwardError)
            assert "error forwarding port" in error.message
            assert "connection refused" in error.message
            await bad.close()
            await good.send(b"still here")
            assert await good.recv(100) == b"still here"
            await good.close()

    client.run(body)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_listen_forwards_accepted_connections(client: RuntimeClient, server: FakeNode,
                                              echo: PodServer, transport: str) -> None:
    def talk(port: int, data: bytes) -> bytes:
        # Reads what it sent back, then closes: WebSocket v4 cannot carry a half-close.
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(data)
            pieces, size = [], 0
            while size < len(data) and (chunk := sock.recv(65536)):
                pieces.append(chunk)
                size += len(chunk)
        return b"".join(pieces)

    async def body() -> None:
        async with client.session(_url(server), transport=transport) as session:
            port = await session.listen(echo.port)
            assert port > 0
            data = os.urandom(300000)
            results = await client.gather(*(
                (lambda: client.to_thread(lambda: talk(port, data))) for _ in range(3)))
            assert results == [data] * 3

    client.run(body)


@pytest.mark.parametrize("transport", ["tunnel", "spdy"])
def test_a_dead_session_is_made_again_for_the_next_connection(
        client: RuntimeClient, server: FakeNode, echo: PodServer, transport: str) -> None:
    serve_port = int(_url(server).split(":")[2].split("/")[0])

    async def body() -> None:
        with CuttingProxy(serve_port) as proxy:
            url = _url(server).replace(f":{serve_port}/", f":{proxy.port}/")
            async with client.session(url, transport=transport) as session:
                assert await _echo_round_trip(client, session, echo.port, b"one") == b"one"
                proxy.cut()
                await client.sleep(0.2)
                assert await _echo_round_trip(client, session, echo.port, b"two") == b"two"
            assert proxy.accepted == 2

    client.run(body)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_memory_stays_bounded_when_the_reader_stops(client: RuntimeClient, server: FakeNode,
                                                    transport: str) -> None:
    limit = 256 * 1024

    async def body() -> None:
        with PodServer("source", size=16 << 20) as source:
            async with client.session(_url(server), transport=transport,
                                      buffer_limit=limit) as session:
                conn = await client.connect(session, source.port)
                await client.sleep(1.0)
                raw = conn.raw
                connection = (raw[0].connection if client.name == "asyncio"
                              else raw._connection)
                core = connection._core
                assert core.reading_paused
                # One socket read over the limit at most.
                assert core.buffered_bytes <= limit + 256 * 1024
                total = 0
                while chunk := await conn.recv(262144):
                    total += len(chunk)
                assert total == 16 << 20
                await conn.close()

    client.run(body)


def test_refused_upgrade_is_an_upgrade_rejected_error(client: RuntimeClient,
                                                      server: FakeNode) -> None:
    async def body() -> None:
        with pytest.raises(kstream.UpgradeRejectedError) as info:
            await client.api.open_port_forward(_url(server), "default", "nope",
                                               transport="spdy")
        assert info.value.status_code == 404

    client.run(body)


@pytest.mark.parametrize("transport", ["tunnel", "spdy"])
def test_a_silent_peer_is_found_by_the_heartbeat(client: RuntimeClient, server: FakeNode,
                                                 echo: PodServer, transport: str) -> None:
    serve_port = int(_url(server).split(":")[2].split("/")[0])

    async def body() -> None:
        with CuttingProxy(serve_port) as proxy:
            url = _url(server).replace(f":{serve_port}/", f":{proxy.port}/")
            async with client.session(url, transport=transport, ping_interval=0.2,
                                      pong_timeout=1.0) as session:
                conn = await client.connect(session, echo.port)
                proxy.freeze()
                with pytest.raises((kstream.PingTimeoutError, trio.BrokenResourceError)):
                    await conn.recv(10)
                await conn.close()
                assert await _echo_round_trip(client, session, echo.port, b"new") == b"new"
            assert proxy.accepted == 2

    client.run(body)


def test_options_are_checked() -> None:
    async def body() -> None:
        for options in ({"transport": "carrier-pigeon"}, {"buffer_limit": 0},
                        {"pong_timeout": 0}, {"ping_interval": -1}, {"connect_timeout": 0}):
            with pytest.raises(ValueError):
                await kstream.asyncio.open_port_forward("http://127.0.0.1:1", "default",
                                                        "demo", **options)
        with pytest.raises(ValueError):
            await kstream.asyncio.open_port_forward("ftp://x", "default", "demo")

    asyncio.run(body())
