"""The clients of both adapters (kstream.asyncio and kstream.trio) over real 127.0.0.1 sockets.

Each case is written once and runs on both runtimes (the ``runtime`` fixture, see
``runtimes.py``). The core cases run against the in-process server (the built-in
commands of ``exec_commands.py``) and against the Go peer (``kpeer serve``:
gorilla/websocket and spdystream, as a kubelet), over WebSocket v5, WebSocket v4 and
SPDY. Fault cases use a TCP proxy that can freeze. Cases that exist for one runtime only
(its own semantics) are at the end, parametrised for that runtime.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any

import pytest
import runtimes
import trio
import trio.testing
from exec_commands import pattern
from hypothesis import given, settings
from hypothesis import strategies as st
from peers.gopeer import GoPeerServer
from runtimes import Runtime

from kstream import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from kstream._runtime.common import READ_SIZE, ReceiveBuffer
from kstream._status import Exited, Failed, success_status

# The error classes are shared by both adapters (the same objects in each module).
from kstream.asyncio import (
    CalledRemoteProcessError,
    ConnectionLostError,
    IncompleteReadError,
    PingTimeoutError,
    RemoteCommandError,
)

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
#: name -> (transport, protocols)
TRANSPORTS: dict[str, tuple[str, list[str] | None]] = {
    "ws5": ("websocket", [V5]),
    "ws4": ("websocket", [V4]),
    "spdy": ("spdy", None),
}


@pytest.fixture(params=runtimes.NAMES)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    return runtimes.get(str(request.param))


class Peer:
    """Where a test connects: the in-process server or the Go peer, and a transport."""

    def __init__(self, runtime: Runtime, kind: str, transport: str,
                 go: GoPeerServer | None) -> None:
        self.runtime = runtime
        self.kind = kind
        self.name = transport
        self.transport, self.protocols = TRANSPORTS[transport]
        self._go = go

    @contextlib.asynccontextmanager
    async def url(self) -> AsyncIterator[str]:
        if self._go is not None:
            yield self._go.url
            return
        async with self.runtime.inproc_server() as server:
            yield server.url

    def options(self) -> dict[str, Any]:
        return {"transport": self.transport, "protocols": self.protocols}

    @property
    def can_close_stdin(self) -> bool:
        return self.name != "ws4"

    async def exec(self, url: str, command: list[str], **kwargs: Any) -> Any:
        """``open_exec`` of the runtime's adapter on this peer's transport."""
        return await self.runtime.api.open_exec(url, "default", "p", command,
                                                **self.options(), **kwargs)

    async def run(self, url: str, command: list[str], **kwargs: Any) -> Any:
        """``run`` of the runtime's adapter on this peer's transport."""
        return await self.runtime.api.run(url, "default", "p", command, **self.options(),
                                          **kwargs)


@pytest.fixture(params=["inproc", "go"])
def peer_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(TRANSPORTS))
def peer(request: pytest.FixtureRequest, runtime: Runtime, peer_kind: str) -> Iterator[Peer]:
    go = request.getfixturevalue("go_server") if peer_kind == "go" else None
    yield Peer(runtime, peer_kind, str(request.param), go)


# --------------------------------------------------------------------------- core cases


@pytest.mark.parametrize("how", ["run", "streamed"])
def test_binary_round_trip_8_mib(peer: Peer, how: str) -> None:
    payload = os.urandom(8 << 20)

    async def body() -> None:
        async with peer.url() as url:
            if not peer.can_close_stdin:
                # v4 cannot close stdin: the same bytes the other way.
                completed = await peer.run(url, ["source", str(8 << 20)])
                assert completed.stdout == pattern(0, 8 << 20)
                return
            if how == "run":
                # sha256 equal both ways: cat echoes, stdin closes, exit 0.
                completed = await peer.run(url, ["cat"], input=payload)
                assert hashlib.sha256(completed.stdout).digest() == \
                    hashlib.sha256(payload).digest()
                assert completed.returncode == 0
                return
            # Stream both ways at once: a writer task, and this task reading.
            async with await peer.exec(url, ["cat"], stdin=True) as proc:
                assert proc.transport == peer.transport

                async def upload() -> None:
                    for start in range(0, len(payload), 1 << 20):
                        proc.stdin.write(payload[start:start + (1 << 20)])
                        await proc.stdin.drain()
                    proc.stdin.close()

                async with peer.runtime.background(upload):
                    digest = hashlib.sha256()
                    received = 0
                    async for chunk in proc.stdout:
                        digest.update(chunk)
                        received += len(chunk)
                    assert received == len(payload)
                    assert digest.digest() == hashlib.sha256(payload).digest()
                    assert await proc.wait() == 0
    peer.runtime.run(body)


def test_run_round_trip_with_input(peer: Peer) -> None:
    payload = os.urandom(1 << 20)

    async def body() -> None:
        async with peer.url() as url:
            if not peer.can_close_stdin:
                with pytest.raises(LocalProtocolError, match="cannot half-close stdin"):
                    await peer.run(url, ["cat"], input=payload)
                return
            completed = await peer.run(url, ["cat"], input=payload)
            assert completed.stdout == payload and completed.returncode == 0
    peer.runtime.run(body)


def test_stdin_close_is_seen_by_the_process(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url, await peer.exec(url, ["sink"], stdin=True) as proc:
            assert proc.transport == peer.transport
            proc.stdin.write(b"x" * 100_000)
            await proc.stdin.drain()
            if not peer.can_close_stdin:
                assert not proc.stdin.can_close()
                with pytest.raises(LocalProtocolError,
                                   match="cannot half-close stdin; use v5"):
                    proc.stdin.close()
                return
            assert proc.stdin.can_close()
            proc.stdin.close()
            assert proc.stdin.is_closing()
            line = await proc.stdout.read()
            digest = hashlib.sha256(b"x" * 100_000).hexdigest()
            assert line == f"100000 {digest}\n".encode()
            assert await proc.wait() == 0
    peer.runtime.run(body)


def test_stdout_and_stderr_are_separate(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url:
            completed = await peer.run(url, ["stderr", "to", "err"])
            assert completed.stdout == b"" and completed.stderr == b"to err\n"
            completed = await peer.run(url, ["echo", "to", "out"])
            assert completed.stdout == b"to out\n" and completed.stderr == b""
    peer.runtime.run(body)


@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_exit_codes(peer: Peer, code: int) -> None:
    async def body() -> None:
        async with peer.url() as url, await peer.exec(url, ["exit", str(code)]) as proc:
            assert await proc.wait() == code
            assert proc.returncode == code
            assert isinstance(proc.result, Exited)
    peer.runtime.run(body)


def test_non_exit_failure_is_reported_distinctly(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url:
            async with await peer.exec(url, ["no-such-binary"]) as proc:
                with pytest.raises(RemoteCommandError) as info:
                    await proc.wait()
                assert proc.returncode is None
                assert isinstance(proc.result, Failed)
            assert info.value.reason == "InternalError" and info.value.code == 500
            assert "executable file not found" in info.value.message
            with pytest.raises(RemoteCommandError):
                await peer.run(url, ["fail", "disk", "on", "fire"])
    peer.runtime.run(body)


def test_resize_is_delivered_with_a_tty(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url, await peer.exec(url, ["size"], stdin=True,
                                                      tty=True) as proc:
            await proc.resize(80, 24)
            assert await proc.stdout.readexactly(6) == b"80x24\n"
            await proc.resize(132, 43)
            assert await proc.stdout.readexactly(7) == b"132x43\n"
            if peer.can_close_stdin:
                proc.stdin.close()
                assert await proc.wait() == 0
    peer.runtime.run(body)


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_attach(runtime: Runtime, transport: str) -> None:
    # In-process only: kpeer serves exec commands, not a pod's main process.
    peer = Peer(runtime, "inproc", transport, None)

    async def body() -> None:
        async with peer.url() as url, await runtime.api.open_attach(
                url, "default", "p", stdin=True, tty=True, **peer.options()) as proc:
            assert proc.command == ()
            proc.stdin.write(b"hello\n")
            assert await proc.stdout.readexactly(6) == b"hello\n"
            if peer.can_close_stdin:
                proc.stdin.close()
                assert await proc.wait() == 0
    runtime.run(body)


def test_run_check_and_communicate(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url:
            with pytest.raises(CalledRemoteProcessError) as info:
                await peer.run(url, ["exit", "3"], check=True)
            assert info.value.returncode == 3 and info.value.command == ("exit", "3")
            completed = await peer.run(url, ["echo", "ok"], check=True)
            assert completed.stdout == b"ok\n" and completed.result == Exited(0)
            stdin = peer.can_close_stdin
            async with await peer.exec(url, ["tee-stderr" if stdin else "echo", "x"],
                                       stdin=stdin) as proc:
                out, err = await proc.communicate(b"both\n" if stdin else None)
                assert (out, err) == ((b"both\n", b"both\n") if stdin else (b"x\n", b""))
                assert await proc.wait() == 0
    peer.runtime.run(body)


def test_readexactly_at_eof(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url, await peer.exec(url, ["echo", "abc"]) as proc:
            with pytest.raises(IncompleteReadError) as info:
                await proc.stdout.readexactly(10)
            assert info.value.partial == b"abc\n"
            assert proc.stdout.at_eof()
            assert [chunk async for chunk in proc.stdout] == []
    peer.runtime.run(body)


# --------------------------------------------------------------------------- fallback


@pytest.mark.parametrize("code", [403, 400])
def test_websocket_rejection_falls_back_to_spdy(runtime: Runtime, code: int) -> None:
    api = runtime.api

    async def handler(request: Any) -> None:
        if request.upgrade == "websocket":
            await request.reject(code, "no websockets")
        else:
            await runtime.handler(request)

    async def body() -> None:
        async with runtime.inproc_server(handler) as server:
            async with await api.open_exec(server.url, "d", "p", ["cat"], stdin=True) as proc:
                assert proc.transport == "spdy" and proc.protocol == V4
                out, _ = await proc.communicate(b"after fallback")
                assert out == b"after fallback"
            with pytest.raises(UpgradeRejectedError) as info:
                await api.open_exec(server.url, "d", "p", ["cat"], fallback=False)
            assert info.value.status_code == code
    runtime.run(body)


def test_rejection_on_both_transports_surfaces_the_status(runtime: Runtime) -> None:
    async def reject_everything(request: Any) -> None:
        await request.reject(403, f"pods \"p\" is forbidden over {request.upgrade}")

    async def body() -> None:
        async with runtime.inproc_server(reject_everything) as server:
            with pytest.raises(UpgradeRejectedError) as info:
                await runtime.api.open_exec(server.url, "d", "p", ["ls"])
        error = info.value
        assert error.status_code == 403 and error.status is not None
        # The last attempt's (SPDY's) Status, with the server's own message.
        assert error.status.message == "pods \"p\" is forbidden over spdy"
        assert "forbidden over spdy" in str(error)
    runtime.run(body)


def test_go_peer_websocket_rejection_lands_on_spdy(runtime: Runtime, kpeer: Any) -> None:
    api = runtime.api
    with GoPeerServer(kpeer, reject_websocket=403) as go:
        async def body() -> None:
            completed = await api.run(go.url, "d", "p", ["cat"], input=b"via spdy")
            assert completed.stdout == b"via spdy"
            async with await api.open_exec(go.url, "d", "p", ["cat"], stdin=True) as proc:
                assert proc.transport == "spdy"
                out, _ = await proc.communicate(b"via spdy")
                assert out == b"via spdy"
        runtime.run(body)
    with GoPeerServer(kpeer, reject_websocket=403, reject_spdy=403) as go:
        async def rejected() -> None:
            with pytest.raises(UpgradeRejectedError) as info:
                await api.open_exec(go.url, "d", "p", ["ls"])
            assert info.value.status_code == 403
            assert info.value.status is not None
            assert info.value.status.message == "spdy disabled by test"
        runtime.run(rejected)


def test_server_without_v5_sends_stdin_users_to_spdy(runtime: Runtime) -> None:
    api = runtime.api

    async def body() -> None:
        async with runtime.inproc_server(websocket_protocols=[V4]) as server:
            async with await api.open_exec(server.url, "d", "p", ["cat"], stdin=True) as proc:
                assert proc.transport == "spdy"  # honest: v4 could not close stdin
            async with await api.open_exec(server.url, "d", "p", ["echo"]) as proc:
                assert (proc.transport, proc.protocol) == ("websocket", V4)
    runtime.run(body)


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])  # bound, not listening: connection refused


def test_network_errors_do_not_fall_back(runtime: Runtime) -> None:
    async def body() -> None:
        with closed_port() as port, pytest.raises(OSError):
            await runtime.api.open_exec(f"http://127.0.0.1:{port}", "d", "p", ["ls"])
    runtime.run(body)


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("transport", ["ws5", "spdy"])
def test_ping_timeout_when_the_peer_stops_answering(runtime: Runtime, transport: str) -> None:
    async def body() -> None:
        async with runtime.inproc_server() as server, \
                runtime.freezing_proxy(server.port) as proxy:
            kind, protocols = TRANSPORTS[transport]
            async with await runtime.api.open_exec(
                    proxy.url, "d", "p", ["sleep-forever"], transport=kind,
                    protocols=protocols, ping_interval=0.05, pong_timeout=0.5) as proc:
                proxy.frozen = True
                started = runtime.now()
                with pytest.raises(PingTimeoutError):
                    await proc.wait()
                elapsed = runtime.now() - started
                assert elapsed < 5.0  # the deadline, not a hang
                with pytest.raises(PingTimeoutError):
                    await proc.stdout.read()
    runtime.run(body)


def test_pongs_keep_an_idle_session_alive(runtime: Runtime) -> None:
    async def body() -> None:
        async with runtime.inproc_server() as server, await runtime.api.open_exec(
                server.url, "d", "p", ["sleep-forever"], stdin=True, ping_interval=0.05,
                pong_timeout=1.0) as proc:
            started = runtime.now()
            # Twice the pong deadline passes with no output: pongs keep moving it.
            while runtime.now() - started < 2.0:
                proc.stdin.write(b".")
                await proc.stdin.drain()
                await runtime.sleep(0.05)
            assert proc.result is None and not runtimes.is_done(proc)
            deadline = runtimes.heartbeat_deadline(proc)
            assert deadline is not None and deadline > started + 1.0
    runtime.run(body)


def test_server_pings_are_answered(runtime: Runtime, kpeer: Any) -> None:
    with GoPeerServer(kpeer, ping_interval="10ms") as go:
        async def body() -> None:
            async with await runtime.api.open_exec(go.url, "d", "p", ["cat"],
                                                   stdin=True) as proc:
                started = runtime.now()
                while runtime.now() - started < 0.3:
                    proc.stdin.write(b"ping?\n")
                    assert await proc.stdout.readexactly(6) == b"ping?\n"
                    await runtime.sleep(0.01)
                proc.stdin.close()
                assert await proc.wait() == 0
            # kpeer prints "PONGS <n>" when the session ends.
            while "PONGS" not in go.stderr_text():
                await runtime.sleep(0.01)
        runtime.run(body)
        pongs = [int(n) for n in re.findall(r"PONGS (\d+)", go.stderr_text())]
        assert pongs and pongs[0] >= 1


@pytest.mark.parametrize("transport", ["ws5", "ws4", "spdy"])
def test_tcp_drop_mid_stdout_is_an_error(runtime: Runtime, transport: str) -> None:
    async def body() -> None:
        async with runtime.inproc_server() as server:
            kind, protocols = TRANSPORTS[transport]
            async with await runtime.api.open_exec(server.url, "d", "p", ["drop", "1000000"],
                                                   transport=kind, protocols=protocols) as proc:
                with pytest.raises(RemoteProtocolError):
                    await proc.stdout.read()
                # Nothing that arrived before the drop is lost: it stays readable, and
                # the error comes after it.
                received = b""
                with pytest.raises(RemoteProtocolError):
                    while True:
                        received += await proc.stdout.read(1 << 20)
                assert 0 < len(received) <= 1000000
                with pytest.raises(ConnectionLostError):
                    await proc.wait()
                assert proc.result is None
    runtime.run(body)


@pytest.mark.parametrize(("runtime", "kind", "transport", "total"), [
    # The sizes each runtime's own suite used: 256 MiB in-process on asyncio, 64 MiB
    # in-process on trio, 256 MiB from the Go peer.
    ("asyncio", "inproc", "ws5", 256 << 20), ("asyncio", "inproc", "spdy", 256 << 20),
    ("asyncio", "go", "ws5", 256 << 20),
    ("trio", "inproc", "ws5", 64 << 20), ("trio", "inproc", "spdy", 64 << 20),
    ("trio", "go", "ws5", 256 << 20)], indirect=["runtime"])
def test_unread_output_stays_bounded(request: pytest.FixtureRequest, runtime: Runtime,
                                     kind: str, transport: str, total: int) -> None:
    limit = 1 << 20
    go = request.getfixturevalue("go_server") if kind == "go" else None
    peer = Peer(runtime, kind, transport, go)

    async def body() -> None:
        async with peer.url() as url, await peer.exec(url, ["source", str(total)],
                                                      buffer_limit=limit) as proc:
            # Wait (bounded by the test deadline) until the adapter stopped reading.
            while not runtimes.is_reading_paused(proc):
                await runtime.sleep(0.005)
            assert limit < proc.buffered_bytes <= limit + READ_SIZE
            # Stay behind a while: nothing more is read meanwhile.
            await runtime.settle(0.05)
            assert limit < proc.buffered_bytes <= limit + READ_SIZE
            received = 0
            async for chunk in proc.stdout:
                received += len(chunk)
            assert received == total
            assert await proc.wait() == 0
            assert runtimes.peak_buffered(proc, 1) <= limit + READ_SIZE
    runtime.run(body)


def test_cancelled_open_exec_closes_its_socket(runtime: Runtime) -> None:
    async def body() -> None:
        async with runtime.silent_listener() as silent:
            await runtime.cancel_when(
                lambda: runtime.api.open_exec(f"http://127.0.0.1:{silent.port}", "d", "p",
                                              ["ls"]),
                silent.accepted.wait)
            await silent.closed.wait()  # the server saw our socket close
    runtime.run(body)


def test_connect_timeout_bounds_the_upgrade(runtime: Runtime) -> None:
    async def body() -> None:
        async with runtime.silent_listener() as silent:
            with pytest.raises(TimeoutError):
                await runtime.api.open_exec(f"http://127.0.0.1:{silent.port}", "d", "p",
                                            ["ls"], connect_timeout=0.2)
            await silent.closed.wait()  # and the socket was closed
    runtime.run(body)


def test_run_timeout(runtime: Runtime) -> None:
    async def body() -> None:
        async with runtime.inproc_server() as server:
            with pytest.raises(TimeoutError):
                await runtime.api.run(server.url, "d", "p", ["sleep-forever"], timeout=0.2)
    runtime.run(body)


def test_many_concurrent_sessions(runtime: Runtime) -> None:
    async def body() -> None:
        async with runtime.inproc_server() as server:
            async def one(i: int) -> bytes:
                kind, protocols = TRANSPORTS[list(TRANSPORTS)[i % 3]]
                completed = await runtime.api.run(server.url, "d", "p", ["echo", str(i)],
                                                  transport=kind, protocols=protocols)
                return bytes(completed.stdout)
            outputs = await runtime.gather([partial(one, i) for i in range(60)])
            assert outputs == [f"{i}\n".encode() for i in range(60)]
    runtime.run(body)


def test_a_caller_connection_is_used(runtime: Runtime) -> None:
    # asyncio takes a connected socket (sock=), trio a connected stream (stream=).
    async def body() -> None:
        async with runtime.inproc_server() as server:
            connection, is_closed = await runtime.caller_connection(server.port)
            completed = await runtime.api.run(server.url, "d", "p", ["echo", "mine"],
                                              **connection)
            assert completed.stdout == b"mine\n"
            assert is_closed()  # the process owned and closed it
    runtime.run(body)


def test_stdin_not_requested_is_a_local_error(runtime: Runtime) -> None:
    async def body() -> None:
        async with runtime.inproc_server() as server, await runtime.api.open_exec(
                server.url, "d", "p", ["echo"]) as proc:
            with pytest.raises(LocalProtocolError, match="not requested"):
                proc.stdin.write(b"x")
    runtime.run(body)


def test_invalid_arguments(runtime: Runtime) -> None:
    open_exec = runtime.api.open_exec

    async def body() -> None:
        with pytest.raises(ValueError):
            await open_exec("ftp://x", "d", "p", ["ls"])
        with pytest.raises(ValueError):
            await open_exec("http://x", "d", "p", "ls")
        with pytest.raises(ValueError):
            await open_exec("http://x", "d", "p", ["ls"], stdout=False, stderr=False)
    runtime.run(body)


def test_exceptions_in_the_block_come_out_unwrapped(runtime: Runtime) -> None:
    async def body() -> None:
        async with runtime.inproc_server() as server:
            with pytest.raises(KeyError):
                async with await runtime.api.open_exec(server.url, "d", "p",
                                                       ["sleep-forever"]):
                    raise KeyError("mine")
    runtime.run(body)


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_stdin_goes_out_in_messages_of_at_most_32_kib(runtime: Runtime, transport: str) -> None:
    total = 1 << 20
    sizes: list[int] = []

    async def measuring(request: Any) -> None:
        session = await request.accept()
        # Wait (bounded by the test deadline) until every byte is buffered, then look
        # at the buffered chunks: one per message (WebSocket) or DATA frame (SPDY).
        while runtimes.buffered_size(session, 0) < total:
            await runtime.sleep(0.005)
        sizes.extend(runtimes.buffered_chunk_sizes(session, 0))
        await session.exit(success_status())

    async def body() -> None:
        async with runtime.inproc_server(measuring, buffer_limit=2 * total) as server, \
                await runtime.api.open_exec(server.url, "d", "p", ["x"], stdin=True,
                                            transport=transport) as proc:
            proc.stdin.write(bytes(total))  # one write: the adapter splits it
            await proc.stdin.drain()
            assert await proc.wait() == 0
        assert sum(sizes) == total and max(sizes) == 32 * 1024
    runtime.run(body)


# --------------------------------------------------------------------------- read buffer


def test_concurrent_sessions_share_the_read_buffer_without_mixing_bytes(
        runtime: Runtime) -> None:
    # Every connection of the thread (clients and the in-process server alike) reads
    # into one buffer: interleaved transfers on every transport must still each get
    # their own bytes, both ways.
    payloads = [os.urandom((1 << 20) + 1000 * i) for i in range(6)]

    async def body() -> list[bytes]:
        async with runtime.inproc_server() as server:
            async def one(i: int) -> bytes:
                kind, protocols = TRANSPORTS[["ws5", "spdy"][i % 2]]
                completed = await runtime.api.run(server.url, "d", "p", ["cat"],
                                                  input=payloads[i], transport=kind,
                                                  protocols=protocols)
                return bytes(completed.stdout)

            return await runtime.gather([partial(one, i) for i in range(len(payloads))])
    assert runtime.run(body) == payloads


def test_idle_sessions_hold_no_read_buffer(runtime: Runtime) -> None:
    # The bound is 64 KiB per idle session (RSS of the client alone, measured by
    # the benchmark). Client and server connections are both in this process here:
    # traced memory per session, both sides together.
    import tracemalloc

    async def body() -> int:
        async with runtime.inproc_server() as server:
            # One session first: the thread's read buffer and other first-use
            # allocations are not per session.
            await runtime.api.run(server.url, "d", "p", ["echo", "warm"])
            async with contextlib.AsyncExitStack() as stack:
                tracemalloc.start()
                try:
                    before = tracemalloc.get_traced_memory()[0]
                    for _ in range(10):
                        await stack.enter_async_context(await runtime.api.open_exec(
                            server.url, "d", "p", ["cat"], stdin=True))
                    await runtime.sleep(0.05)
                    grown = tracemalloc.get_traced_memory()[0] - before
                finally:
                    tracemalloc.stop()
            return grown // 10
    per_session = runtime.run(body)
    # 64 KiB per side; one 256 KiB receive buffer per connection would be 512 KiB.
    assert per_session < 128 << 10, per_session


# --------------------------------------------------------------------------- cancellation


@runtimes.only("asyncio")
def test_cancellation_closes_the_connection_and_leaves_nothing_asyncio(
        runtime: Runtime) -> None:
    # asyncio: a reader task is cancelled; the process stays usable until aclose().
    async def body() -> None:
        async with runtime.inproc_server() as server:
            proc = await runtime.api.open_exec(server.url, "d", "p", ["sleep-forever"])
            await runtime.cancel_when(proc.stdout.read, lambda: runtime.sleep(0))
            await proc.aclose()
            assert runtimes.is_closed(proc)
            # The server sees the session end and its handler finishes.
            while runtimes.open_connections(server):
                await runtime.sleep(0.005)
    runtime.run(body)


@runtimes.only("trio")
def test_cancellation_closes_the_connection_and_leaves_nothing_trio(runtime: Runtime) -> None:
    # trio: cancelling the block of ``async with proc`` (its nursery) closes the
    # connection on the way out.
    assert isinstance(runtime, runtimes.TrioRuntime)
    handler_done = trio.Event()

    async def watched(request: Any) -> None:
        try:
            await runtime.handler(request)
        finally:
            handler_done.set()

    async def body() -> None:
        async with runtime.inproc_server(watched) as server:
            tasks_before = runtime.tasks_living()
            proc = await runtime.api.open_exec(server.url, "d", "p", ["sleep-forever"],
                                               stdin=True)

            async def read_in_the_block() -> None:
                async with proc:
                    await proc.stdout.read()

            await runtime.cancel_when(read_in_the_block, trio.testing.wait_all_tasks_blocked)
            assert runtimes.is_closed(proc)
            assert runtimes.socket_closed(proc)
            # The server saw the session end (a close, then EOF) and its handler finished.
            await handler_done.wait()
            with pytest.raises(LocalProtocolError, match="closed before"):
                await proc.wait()
            while runtime.tasks_living() > tasks_before:
                await trio.sleep(0.005)  # the server's connection task winds down
    runtime.run(body)


@runtimes.only("trio")
def test_misuse_is_reported(runtime: Runtime) -> None:
    # trio: the connection's tasks run in the nursery of ``async with proc``.
    async def body() -> None:
        async with runtime.inproc_server() as server:
            proc = await runtime.api.open_exec(server.url, "d", "p", ["sleep-forever"])
            with pytest.raises(RuntimeError, match="async with"):
                await proc.stdout.read()
            with pytest.raises(RuntimeError, match="async with"):
                await proc.wait()
            async with proc:
                with pytest.raises(LocalProtocolError, match="not requested"):
                    proc.stdin.write(b"x")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(proc.stdout.read)
                    await trio.testing.wait_all_tasks_blocked()
                    with pytest.raises(trio.BusyResourceError):
                        await proc.stdout.read()
                    nursery.cancel_scope.cancel()
            with pytest.raises(RuntimeError, match="only once"):
                await proc.__aenter__()
    runtime.run(body)


# --------------------------------------------------------------------------- ReceiveBuffer
# (runtime-neutral: the buffer both adapters read into)


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(min_size=1, max_size=40), max_size=12),
       sizes=st.lists(st.just(-1) | st.integers(min_value=1, max_value=100), min_size=1,
                      max_size=30))
def test_receive_buffer_reads_return_the_bytes_in_order(chunks: list[bytes],
                                                        sizes: list[int]) -> None:
    buffer = ReceiveBuffer()
    for chunk in chunks:
        buffer.append(chunk)
    taken = bytearray()
    for n in sizes * 20:
        if not buffer.size:
            break
        piece = buffer.take(n)
        assert piece and (n < 0 or len(piece) <= n)
        assert buffer.size == sum(map(len, chunks)) - len(taken) - len(piece)
        taken += piece
    taken += buffer.take(-1)
    assert taken == b"".join(chunks)
    assert buffer.size == 0


def test_receive_buffer_hands_a_whole_chunk_over_without_copying() -> None:
    buffer = ReceiveBuffer()
    first, second = b"a" * 1000, b"b" * 1000
    buffer.append(first)
    buffer.append(second)
    # The second chunk does not fit in full: the first comes back alone, as it is.
    assert buffer.take(1500) is first
    assert buffer.take(10) == b"b" * 10  # a short read cuts the front of a chunk
    assert buffer.take(-1) == b"b" * 990
    assert buffer.take(-1) == b""


def test_unread_puts_bytes_back_in_front_of_a_partly_read_buffer() -> None:
    buffer = ReceiveBuffer()
    buffer.append(b"abcdef")
    buffer.append(b"gh")
    assert buffer.take(2) == b"ab"          # a short read leaves an offset into "abcdef"
    buffer.unread(b"xy")
    buffer.unread(b"")
    assert buffer.size == 8
    assert buffer.take() == b"xycdefgh"
    buffer.end(RemoteProtocolError("gone"))
    buffer.unread(b"late")                   # kept even after the failure...
    assert buffer.take() == b"late"
    with pytest.raises(RemoteProtocolError):  # ...and the error comes after it
        buffer.take()
