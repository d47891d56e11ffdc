"""One test body, two runtimes: what the adapter tests need of asyncio and trio.

``test_runtime_client.py`` and ``test_runtime_server.py`` write each case once, as a
coroutine function that takes a :class:`Runtime`, and run it on both adapters. A
:class:`Runtime` runs the body (bounded, checking no task is left behind), exposes the
adapter module (:attr:`Runtime.api`: :mod:`kstream.asyncio` or :mod:`kstream.trio`) and
the few primitives the cases need: sleep and the clock, events, background tasks,
cancellation, threads, the in-process exec server with the built-in commands of
``exec_commands.py``, and TCP helpers (a freezing proxy, a silent listener, raw streams).

The **probes** at the end are the only place the tests reach into adapter internals
(``proc._conn`` and what hangs off it): when the adapters change shape, update them here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Final, Protocol, TypeVar, cast

import exec_commands
import pytest
import trio
import trio.testing
from exec_commands import CommandSession

import kstream.asyncio
import kstream.trio
from kstream._runtime.core import ConnectionCore
from kstream._status import Status

T = TypeVar("T")
#: The runtimes every shared case runs on (the ``runtime`` fixture's parameters).
NAMES: Final = ("asyncio", "trio")
#: Bound on one test body run by :meth:`Runtime.run`.
DEADLINE: Final = 60.0
#: Bytes asked of a socket per read by the raw helpers.
READ_CHUNK: Final = 65536

Handler = Callable[[Any], Awaitable[None]]
Process = kstream.asyncio.RemoteProcess | kstream.trio.RemoteProcess
Session = kstream.asyncio.ServerExec | kstream.trio.ServerExec


class Event(Protocol):
    """:class:`asyncio.Event` and :class:`trio.Event` alike."""

    def set(self) -> None: ...
    def is_set(self) -> bool: ...
    async def wait(self) -> Any: ...


class Served(Protocol):
    """Either adapter's ``ExecServer``: where it listens."""

    @property
    def url(self) -> str: ...
    @property
    def port(self) -> int: ...


class RawStream(Protocol):
    """A plain TCP connection (raw requests, a caller's own connection)."""

    async def send_all(self, data: bytes) -> None: ...
    async def send_eof(self) -> None: ...
    async def receive_some(self, max_bytes: int = READ_CHUNK) -> bytes: ...


class FreezingProxy:
    """A TCP proxy to ``upstream_port`` that forwards until ``frozen``, then swallows."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.frozen = False
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class SilentListener:
    """A listener that accepts, never answers, and notes when the client closes."""

    def __init__(self, accepted: Event, closed: Event) -> None:
        self.accepted = accepted
        self.closed = closed
        self.port = 0


class Runtime(ABC):
    """What the shared cases use of one runtime (asyncio or trio)."""

    #: ``"asyncio"`` or ``"trio"``.
    name: str
    #: The adapter module: :mod:`kstream.asyncio` or :mod:`kstream.trio` (same shape).
    api: Any
    #: What a cancelled task sees: :class:`asyncio.CancelledError` or :class:`trio.Cancelled`.
    cancelled: type[BaseException]

    def __repr__(self) -> str:
        return f"<Runtime {self.name}>"

    @property
    def other(self) -> Runtime:
        """The other runtime (for cross-runtime cases)."""
        return get("trio" if self.name == "asyncio" else "asyncio")

    # -- running

    @abstractmethod
    def run(self, body: Callable[[], Awaitable[T]]) -> T:
        """Run ``body`` in a fresh event loop, bounded by :data:`DEADLINE`, and check it
        leaves no task behind."""

    @abstractmethod
    def now(self) -> float:
        """The runtime's clock."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None: ...

    @abstractmethod
    async def settle(self, cushion: float) -> None:
        """Let every other task run until blocked (trio: for ``cushion`` seconds; asyncio
        has no such test hook: sleep ``cushion``)."""

    @abstractmethod
    def event(self) -> Event: ...

    @abstractmethod
    async def to_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run a blocking ``function(*args)`` in a worker thread."""

    # -- tasks

    @abstractmethod
    def background(self, function: Callable[[], Awaitable[None]]
                   ) -> contextlib.AbstractAsyncContextManager[None]:
        """Run ``function`` in a task for the duration of the block; cancel it at the end
        (an exception it raised comes out of the block)."""

    @abstractmethod
    async def gather(self, functions: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        """Run the functions concurrently; their results in order."""

    @abstractmethod
    async def cancel_when(self, function: Callable[[], Awaitable[object]],
                          ready: Callable[[], Awaitable[object]]) -> None:
        """Run ``function`` in a task, cancel it once ``ready()`` returns, and check it
        ended cancelled (not by returning or failing)."""

    # -- the in-process server

    def handler(self, request: Any) -> Awaitable[None]:
        """Serve ``request`` with the built-in commands (``exec_commands``)."""
        return exec_commands.handler(request, background=self.background)

    async def run_command(self, session: CommandSession, argv: Sequence[str]) -> Status | None:
        """Run one built-in command on an accepted session."""
        return await exec_commands.run_command(session, argv, background=self.background)

    def inproc_server(self, handler: Handler | None = None, **kwargs: Any
                      ) -> contextlib.AbstractAsyncContextManager[Any]:
        """The adapter's exec server on 127.0.0.1 for the block (stopped at its end).

        ``handler`` defaults to the built-in commands; ``kwargs`` go to ``start_server``
        / ``serve``.
        """
        return self._serving(handler or self.handler, kwargs, stoppable=False)

    def stoppable_server(self, handler: Handler, **kwargs: Any
                         ) -> contextlib.AbstractAsyncContextManager[Any]:
        """Like :meth:`inproc_server`, yielding ``(server, stop)``: ``stop()`` ends the
        server now (asyncio: ``close()``; trio: cancel ``serve``)."""
        return self._serving(handler, kwargs, stoppable=True)

    @abstractmethod
    def _serving(self, handler: Handler, kwargs: dict[str, Any], *, stoppable: bool
                 ) -> contextlib.AbstractAsyncContextManager[Any]: ...

    # -- TCP helpers

    @abstractmethod
    def freezing_proxy(self, upstream_port: int
                       ) -> contextlib.AbstractAsyncContextManager[FreezingProxy]: ...

    @abstractmethod
    def silent_listener(self) -> contextlib.AbstractAsyncContextManager[SilentListener]: ...

    @abstractmethod
    def open_tcp(self, port: int) -> contextlib.AbstractAsyncContextManager[RawStream]:
        """A plain TCP connection to 127.0.0.1:``port`` for the block."""

    async def raw_exchange(self, port: int, request: bytes) -> bytes:
        """Send ``request`` on a fresh connection and read until the server closes it."""
        received = bytearray()
        async with self.open_tcp(port) as stream:
            await stream.send_all(request)
            while data := await stream.receive_some():
                received += data
        return bytes(received)

    @abstractmethod
    async def caller_connection(self, port: int) -> tuple[dict[str, Any], Callable[[], bool]]:
        """A connection the caller opened itself: the ``open_exec``/``run`` keyword that
        hands it over (asyncio ``sock=``, trio ``stream=``), and whether it is closed."""


# --------------------------------------------------------------------------- asyncio


class AsyncioRuntime(Runtime):
    name = "asyncio"
    api = kstream.asyncio
    cancelled = asyncio.CancelledError

    def run(self, body: Callable[[], Awaitable[T]]) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(DEADLINE):
                result = await body()
            assert asyncio.all_tasks() == {asyncio.current_task()}
            return result
        return asyncio.run(bounded())

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def settle(self, cushion: float) -> None:
        await asyncio.sleep(cushion)

    def event(self) -> Event:
        return asyncio.Event()

    async def to_thread(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(function, *args)

    @contextlib.asynccontextmanager
    async def background(self, function: Callable[[], Awaitable[None]]
                         ) -> AsyncIterator[None]:
        async def wrapped() -> None:
            await function()
        task = asyncio.create_task(wrapped())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def gather(self, functions: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        return list(await asyncio.gather(*(function() for function in functions)))

    async def cancel_when(self, function: Callable[[], Awaitable[object]],
                          ready: Callable[[], Awaitable[object]]) -> None:
        async def wrapped() -> object:
            return await function()
        task = asyncio.create_task(wrapped())
        try:
            await ready()
        finally:
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return
        raise AssertionError(f"{function} was not cancelled")

    @contextlib.asynccontextmanager
    async def _serving(self, handler: Handler, kwargs: dict[str, Any], *, stoppable: bool
                       ) -> AsyncIterator[Any]:
        async with await kstream.asyncio.start_server(handler, **kwargs) as server:
            yield (server, server.close) if stoppable else server

    @contextlib.asynccontextmanager
    async def freezing_proxy(self, upstream_port: int) -> AsyncIterator[FreezingProxy]:
        proxy = FreezingProxy(upstream_port)
        tasks: set[asyncio.Task[None]] = set()
        writers: list[asyncio.StreamWriter] = []

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(READ_CHUNK):
                if not proxy.frozen:
                    writer.write(data)
                    await writer.drain()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
            writers.extend((writer, up_writer))
            both = [asyncio.create_task(pipe(reader, up_writer)),
                    asyncio.create_task(pipe(up_reader, writer))]
            tasks.update(both)
            await asyncio.gather(*both, return_exceptions=True)

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        proxy.port = int(server.sockets[0].getsockname()[1])
        try:
            yield proxy
        finally:
            for task in tasks:
                task.cancel()
            for writer in writers:
                writer.transport.abort()
            server.close()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

    @contextlib.asynccontextmanager
    async def silent_listener(self) -> AsyncIterator[SilentListener]:
        listener = SilentListener(asyncio.Event(), asyncio.Event())

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            listener.accepted.set()
            while await reader.read(READ_CHUNK):
                pass  # never answer the upgrade
            writer.close()
            await writer.wait_closed()
            listener.closed.set()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        async with server:
            listener.port = int(server.sockets[0].getsockname()[1])
            yield listener

    @contextlib.asynccontextmanager
    async def open_tcp(self, port: int) -> AsyncIterator[RawStream]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            yield _AsyncioStream(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def caller_connection(self, port: int) -> tuple[dict[str, Any], Callable[[], bool]]:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        return {"sock": sock}, lambda: sock.fileno() == -1


class _AsyncioStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def send_all(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def send_eof(self) -> None:
        self._writer.write_eof()

    async def receive_some(self, max_bytes: int = READ_CHUNK) -> bytes:
        return await self._reader.read(max_bytes)


# --------------------------------------------------------------------------- trio


class TrioRuntime(Runtime):
    name = "trio"
    api = kstream.trio
    cancelled = trio.Cancelled

    def run(self, body: Callable[[], Awaitable[T]]) -> T:
        async def bounded() -> T:
            baseline = self.tasks_living()
            with trio.fail_after(DEADLINE):
                result = await body()
            assert self.tasks_living() == baseline
            return result
        return trio.run(bounded)

    def tasks_living(self) -> int:
        """How many tasks exist now (trio only: for nursery-precise checks)."""
        return trio.lowlevel.current_statistics().tasks_living

    def now(self) -> float:
        return trio.current_time()

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    async def settle(self, cushion: float) -> None:
        await trio.testing.wait_all_tasks_blocked(cushion=cushion)

    def event(self) -> Event:
        return trio.Event()

    async def to_thread(self, function: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(function, *args)

    @contextlib.asynccontextmanager
    async def background(self, function: Callable[[], Awaitable[None]]
                         ) -> AsyncIterator[None]:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(function)
            yield
            nursery.cancel_scope.cancel()

    async def gather(self, functions: Sequence[Callable[[], Awaitable[T]]]) -> list[T]:
        results: dict[int, T] = {}

        async def one(i: int) -> None:
            results[i] = await functions[i]()

        async with trio.open_nursery() as nursery:
            for i in range(len(functions)):
                nursery.start_soon(one, i)
        return [results[i] for i in range(len(functions))]

    async def cancel_when(self, function: Callable[[], Awaitable[object]],
                          ready: Callable[[], Awaitable[object]]) -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(function)
                await ready()
                scope.cancel()
        assert scope.cancelled_caught, f"{function} was not cancelled"

    @contextlib.asynccontextmanager
    async def _serving(self, handler: Handler, kwargs: dict[str, Any], *, stoppable: bool
                       ) -> AsyncIterator[Any]:
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def run_server(task_status: trio.TaskStatus[kstream.trio.ExecServer]
                                 ) -> None:
                with scope:
                    await kstream.trio.serve(handler, task_status=task_status, **kwargs)

            server: kstream.trio.ExecServer = await nursery.start(run_server)
            yield (server, scope.cancel) if stoppable else server
            nursery.cancel_scope.cancel()

    @contextlib.asynccontextmanager
    async def freezing_proxy(self, upstream_port: int) -> AsyncIterator[FreezingProxy]:
        proxy = FreezingProxy(upstream_port)

        async def pipe(source: trio.SocketStream, sink: trio.SocketStream) -> None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                async for data in source:
                    if not proxy.frozen:
                        await sink.send_all(data)

        async def forward(down: trio.SocketStream) -> None:
            up = await trio.open_tcp_stream("127.0.0.1", upstream_port)
            async with down, up, trio.open_nursery() as nursery:
                nursery.start_soon(pipe, down, up)
                nursery.start_soon(pipe, up, down)

        async with _serve_tcp(forward) as proxy.port:
            yield proxy

    @contextlib.asynccontextmanager
    async def silent_listener(self) -> AsyncIterator[SilentListener]:
        listener = SilentListener(trio.Event(), trio.Event())

        async def silent(stream: trio.SocketStream) -> None:
            listener.accepted.set()
            async for _ in stream:
                pass  # never answer the upgrade
            listener.closed.set()

        async with _serve_tcp(silent) as listener.port:
            yield listener

    @contextlib.asynccontextmanager
    async def open_tcp(self, port: int) -> AsyncIterator[RawStream]:
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            yield _TrioStream(stream)

    async def caller_connection(self, port: int) -> tuple[dict[str, Any], Callable[[], bool]]:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        return {"stream": stream}, lambda: stream.socket.fileno() == -1


@contextlib.asynccontextmanager
async def _serve_tcp(handler: Callable[[trio.SocketStream], Awaitable[None]]
                     ) -> AsyncIterator[int]:
    """trio: serve ``handler`` on 127.0.0.1 for the block; yield the port."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        yield int(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()


class _TrioStream:
    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream

    async def send_all(self, data: bytes) -> None:
        await self._stream.send_all(data)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def receive_some(self, max_bytes: int = READ_CHUNK) -> bytes:
        return bytes(await self._stream.receive_some(max_bytes))


_RUNTIMES: Final[dict[str, Runtime]] = {"asyncio": AsyncioRuntime(), "trio": TrioRuntime()}


def get(name: str) -> Runtime:
    """The runtime called ``name`` (one of :data:`NAMES`)."""
    return _RUNTIMES[name]


def only(name: str) -> pytest.MarkDecorator:
    """Mark a case that exists for one runtime only (it overrides the ``runtime`` fixture's
    parameters, so the case runs on ``name`` alone)."""
    return pytest.mark.parametrize("runtime", [name], indirect=True)


# --------------------------------------------------------------------------- probes
#
# The only access to adapter internals in the runtime tests. Each probe takes a client
# ``RemoteProcess`` or a server session (``ServerExec``) of either adapter.


def is_done(proc: Process) -> bool:
    """Whether the client session reached its end (status, failure or close).

    asyncio: ``proc._conn.done`` (a future) is done; trio: ``proc._conn.done`` is set.
    """
    if isinstance(proc, kstream.trio.RemoteProcess):
        return proc._conn.done.is_set()
    return proc._conn.done.done()


def heartbeat_deadline(proc: Process) -> float | None:
    """The pong deadline of the client's heartbeat (``proc._conn._heartbeat.deadline``),
    ``None`` without a heartbeat."""
    heartbeat = proc._conn._heartbeat
    return None if heartbeat is None else heartbeat.deadline


def _core(obj: Process | Session) -> ConnectionCore:
    # The server objects type their connection as a protocol; the probes read the core.
    return cast("ConnectionCore", obj._conn)


def is_reading_paused(obj: Process | Session) -> bool:
    """Whether the connection stopped reading because a buffer is full.

    asyncio: ``obj._conn._reading_paused``; trio: ``obj._conn.reading_paused``.
    """
    if isinstance(obj, kstream.trio.RemoteProcess | kstream.trio.ServerExec):
        return _core(obj).reading_paused
    return _core(obj)._reading_paused


def peak_buffered(obj: Process | Session, channel: int) -> int:
    """The most bytes channel ``channel``'s receive buffer ever held
    (``obj._conn._inputs[channel].peak``)."""
    return int(_core(obj)._inputs[channel].peak)


def session_buffered_bytes(session: Session) -> int:
    """Unread bytes a server session holds (``session._conn.buffered_bytes``)."""
    return int(_core(session).buffered_bytes)


def buffered_chunk_sizes(session: Session, channel: int) -> list[int]:
    """The sizes of the chunks (one per message or DATA frame) buffered on ``channel``
    (``session._conn._inputs[channel]._chunks``)."""
    return [len(chunk) for chunk in _core(session)._inputs[channel]._chunks]


def buffered_size(session: Session, channel: int) -> int:
    """Bytes buffered on a server session's ``channel`` (``._conn._inputs[channel].size``)."""
    return int(_core(session)._inputs[channel].size)


def is_closed(proc: Process) -> bool:
    """Whether the client connection is closed.

    asyncio: ``proc._conn.lost`` (the protocol's connection_lost future) is done; trio:
    ``proc._conn.pump_done`` is set (the pump closed its stream).
    """
    if isinstance(proc, kstream.trio.RemoteProcess):
        return proc._conn.pump_done.is_set()
    return proc._conn.lost.done()


def socket_closed(proc: kstream.trio.RemoteProcess) -> bool:
    """trio: the client's stream (``proc._conn._stream``) is a plain socket stream whose
    socket is closed."""
    stream = proc._conn._stream
    return isinstance(stream, trio.SocketStream) and stream.socket.fileno() == -1


def open_connections(server: kstream.asyncio.ExecServer) -> int:
    """asyncio: how many connections the server still tracks (``server.connections``)."""
    return len(server.connections)
