"""kstream's port-forward API on asyncio and on trio, behind one interface, for tests.

The port-forward tests run each case on both runtimes through :class:`RuntimeClient`;
what a case does with a forwarded connection goes through :class:`Conn`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

import kstream.asyncio
import kstream.trio

#: Seconds a case may take on either runtime.
DEADLINE = 60.0


class Conn:
    """A forwarded connection on either runtime."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]],
                 recv: Callable[[int], Awaitable[bytes]], eof: Callable[[], Awaitable[None]],
                 close: Callable[[], Awaitable[None]], raw: Any) -> None:
        self.send, self.recv, self.eof, self.close, self.raw = send, recv, eof, close, raw

    async def read_all(self) -> bytes:
        pieces = []
        while chunk := await self.recv(262144):
            pieces.append(chunk)
        return b"".join(pieces)


class RuntimeClient:
    """The runtime's ``open_port_forward`` and its session, behind one interface."""

    def __init__(self, name: str, deadline: float = DEADLINE) -> None:
        self.name = name
        self.deadline = deadline
        self.api: Any = kstream.asyncio if name == "asyncio" else kstream.trio

    def run(self, body: Callable[[], Awaitable[None]]) -> None:
        if self.name == "asyncio":
            async def bounded() -> None:
                async with asyncio.timeout(self.deadline):
                    await body()
            asyncio.run(bounded())
        else:
            async def bounded_trio() -> None:
                with trio.fail_after(self.deadline):
                    await body()
            trio.run(bounded_trio)

    @contextlib.asynccontextmanager
    async def session(self, url: str, **options: Any) -> AsyncIterator[Any]:
        session = await self.api.open_port_forward(url, "default", "demo", **options)
        async with session:
            yield session

    async def connect(self, session: Any, port: int) -> Conn:
        if self.name == "asyncio":
            reader, writer = await session.open_connection(port)

            async def send(data: bytes) -> None:
                writer.write(data)
                await writer.drain()

            async def eof() -> None:
                writer.write_eof()

            async def close() -> None:
                writer.close()
                await writer.wait_closed()

            return Conn(send, reader.read, eof, close, (reader, writer))
        stream = await session.open_connection(port)
        return Conn(stream.send_all, stream.receive_some, stream.send_eof, stream.aclose, stream)

    async def sleep(self, seconds: float) -> None:
        await (asyncio.sleep(seconds) if self.name == "asyncio" else trio.sleep(seconds))

    async def to_thread(self, function: Callable[[], Any]) -> Any:
        if self.name == "asyncio":
            return await asyncio.to_thread(function)
        return await trio.to_thread.run_sync(function)

    async def gather(self, *calls: Callable[[], Awaitable[Any]]) -> list[Any]:
        if self.name == "asyncio":
            return list(await asyncio.gather(*(call() for call in calls)))
        results: list[Any] = [None] * len(calls)

        async def one(index: int) -> None:
            results[index] = await calls[index]()

        async with trio.open_nursery() as nursery:
            for index in range(len(calls)):
                nursery.start_soon(one, index)
        return results
