"""The server role of port-forward on both runtimes: ``request.accept_port_forward()``.

An in-process server (``kstream.asyncio.start_server`` / ``kstream.trio.serve``) whose
handler echoes every forwarded connection itself, or fails it with a text, and kstream's
client of the same runtime, on every transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import trio

import kstream
import kstream.asyncio
import kstream.trio

TRANSPORTS = ("tunnel", "spdy", "websocket")
_REFUSED = 7


async def _serve_one(connection: Any) -> None:
    if connection.port == _REFUSED:
        connection.fail(f"error forwarding port {_REFUSED} to pod p, uid : refused")
        connection.close()
        return
    try:
        while data := await connection.read():
            connection.write(data)
            await connection.drain()
        connection.end()
    except ConnectionResetError:
        pass  # the client closed its side before reading everything: an abort
    finally:
        connection.close()


async def _read_back(reader: Any, size: int) -> bytes:
    data = b""
    while len(data) < size and (chunk := await reader(65536)):
        data += chunk
    return data


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_asyncio_server(transport: str) -> None:
    seen: list[str] = []

    async def handler(request: Any) -> None:
        session = await request.accept_port_forward()
        seen.append(session.transport)
        tasks = []
        while (connection := await session.next_connection()) is not None:
            tasks.append(asyncio.create_task(_serve_one(connection)))
        await asyncio.gather(*tasks)

    async def main() -> None:
        async with asyncio.timeout(30), await kstream.asyncio.start_server(handler) as server:
            session = await kstream.asyncio.open_port_forward(server.url, "default", "p",
                                                              transport=transport)
            async with session:
                reader, writer = await session.open_connection(8080)
                writer.write(b"x" * 100000)
                assert await _read_back(reader.read, 100000) == b"x" * 100000
                writer.close()
                reader, writer = await session.open_connection(_REFUSED)
                with pytest.raises(kstream.PortForwardError, match="refused"):
                    await reader.read()
                writer.close()

    asyncio.run(main())
    assert seen[0] == transport


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_trio_server(transport: str) -> None:
    seen: list[str] = []

    async def handler(request: Any) -> None:
        session = await request.accept_port_forward()
        seen.append(session.transport)
        async with trio.open_nursery() as nursery:
            while (connection := await session.next_connection()) is not None:
                nursery.start_soon(_serve_one, connection)

    async def main() -> None:
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                server = await nursery.start(kstream.trio.serve, handler)
                async with await kstream.trio.open_port_forward(
                        server.url, "default", "p", transport=transport) as session:
                    stream = await session.open_connection(8080)
                    await stream.send_all(b"y" * 100000)
                    assert await _read_back(stream.receive_some, 100000) == b"y" * 100000
                    await stream.aclose()
                    stream = await session.open_connection(_REFUSED)
                    with pytest.raises(trio.BrokenResourceError) as info:
                        await stream.receive_some()
                    assert isinstance(info.value.__cause__, kstream.PortForwardError)
                    assert stream.error is not None and "refused" in stream.error
                    await stream.aclose()
                nursery.cancel_scope.cancel()

    trio.run(main)
    assert seen[0] == transport
