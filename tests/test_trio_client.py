"""The trio client (kstream.trio) over real 127.0.0.1 sockets.

Each core case runs against the in-process trio server (``serve`` + the built-in
commands of ``trio_commands``) and against the Go peer (``kpeer serve``:
gorilla/websocket and spdystream, as a kubelet), over WebSocket v5, WebSocket v4 and
SPDY: the same cases as ``test_asyncio_client.py``. Fault cases use a TCP proxy that can
freeze.
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
import trio
import trio.testing
import trio_commands
from exec_commands import pattern
from peers.gopeer import GoPeerServer
from trio_commands import inproc_server, trun

from kstream import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from kstream._runtime.common import READ_SIZE
from kstream._status import Exited, Failed, success_status
from kstream.trio import (
    CalledRemoteProcessError,
    ConnectionLostError,
    IncompleteReadError,
    PingTimeoutError,
    RemoteCommandError,
    RemoteProcess,
    ServerRequest,
    open_attach,
    open_exec,
    run,
)

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
#: name -> (transport, protocols)
TRANSPORTS: dict[str, tuple[str, list[str] | None]] = {
    "ws5": ("websocket", [V5]),
    "ws4": ("websocket", [V4]),
    "spdy": ("spdy", None),
}


class Peer:
    """Where a test connects: the in-process server or the Go peer, and a transport."""

    def __init__(self, kind: str, transport: str, go: GoPeerServer | None) -> None:
        self.kind = kind
        self.name = transport
        self.transport, self.protocols = TRANSPORTS[transport]
        self._go = go

    @contextlib.asynccontextmanager
    async def url(self) -> AsyncIterator[str]:
        if self._go is not None:
            yield self._go.url
            return
        async with inproc_server() as server:
            yield server.url

    def options(self) -> dict[str, Any]:
        return {"transport": self.transport, "protocols": self.protocols}

    @property
    def can_close_stdin(self) -> bool:
        return self.name != "ws4"


@pytest.fixture(params=["inproc", "go"])
def peer_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(TRANSPORTS))
def peer(request: pytest.FixtureRequest, peer_kind: str) -> Iterator[Peer]:
    go = request.getfixturevalue("go_server") if peer_kind == "go" else None
    yield Peer(peer_kind, str(request.param), go)


async def exec_in(url: str, peer: Peer, command: list[str], **kwargs: Any) -> RemoteProcess:
    return await open_exec(url, "default", "p", command, **peer.options(), **kwargs)


# --------------------------------------------------------------------------- core cases


def test_binary_round_trip_8_mib(peer: Peer) -> None:
    payload = os.urandom(8 << 20)

    async def body() -> None:
        async with peer.url() as url:
            if not peer.can_close_stdin:
                # v4 cannot close stdin: the same amount of bytes the other way.
                completed = await run(url, "default", "p", ["source", str(8 << 20)],
                                      **peer.options())
                assert completed.stdout == pattern(0, 8 << 20)
                return
            # Stream both ways at once: a writer task, and this task reading.
            async with await exec_in(url, peer, ["cat"], stdin=True) as proc, \
                    trio.open_nursery() as nursery:
                assert proc.transport == peer.transport

                async def upload() -> None:
                    for start in range(0, len(payload), 1 << 20):
                        proc.stdin.write(payload[start:start + (1 << 20)])
                        await proc.stdin.drain()
                    proc.stdin.close()

                nursery.start_soon(upload)
                digest = hashlib.sha256()
                received = 0
                async for chunk in proc.stdout:
                    digest.update(chunk)
                    received += len(chunk)
                assert received == len(payload)
                assert digest.digest() == hashlib.sha256(payload).digest()
                assert await proc.wait() == 0
    trun(body)


def test_run_round_trip_with_input(peer: Peer) -> None:
    payload = os.urandom(1 << 20)

    async def body() -> None:
        async with peer.url() as url:
            if not peer.can_close_stdin:
                with pytest.raises(LocalProtocolError, match="cannot half-close stdin"):
                    await run(url, "default", "p", ["cat"], input=payload, **peer.options())
                return
            completed = await run(url, "default", "p", ["cat"], input=payload,
                                  **peer.options())
            assert completed.stdout == payload and completed.returncode == 0
    trun(body)


def test_stdin_close_is_seen_by_the_process(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url, await exec_in(url, peer, ["sink"], stdin=True) as proc:
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
    trun(body)


def test_stdout_and_stderr_are_separate(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url:
            completed = await run(url, "default", "p", ["stderr", "to", "err"],
                                  **peer.options())
            assert completed.stdout == b"" and completed.stderr == b"to err\n"
            completed = await run(url, "default", "p", ["echo", "to", "out"],
                                  **peer.options())
            assert completed.stdout == b"to out\n" and completed.stderr == b""
    trun(body)


@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_exit_codes(peer: Peer, code: int) -> None:
    async def body() -> None:
        async with peer.url() as url, await exec_in(url, peer, ["exit", str(code)]) as proc:
            assert await proc.wait() == code
            assert proc.returncode == code
            assert isinstance(proc.result, Exited)
    trun(body)


def test_non_exit_failure_is_reported_distinctly(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url:
            async with await exec_in(url, peer, ["no-such-binary"]) as proc:
                with pytest.raises(RemoteCommandError) as info:
                    await proc.wait()
                assert proc.returncode is None
                assert isinstance(proc.result, Failed)
            assert info.value.reason == "InternalError" and info.value.code == 500
            assert "executable file not found" in info.value.message
            with pytest.raises(RemoteCommandError):
                await run(url, "default", "p", ["fail", "disk", "on", "fire"],
                          **peer.options())
    trun(body)


def test_resize_is_delivered_with_a_tty(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url, await exec_in(url, peer, ["size"], stdin=True,
                                                    tty=True) as proc:
            await proc.resize(80, 24)
            assert await proc.stdout.readexactly(6) == b"80x24\n"
            await proc.resize(132, 43)
            assert await proc.stdout.readexactly(7) == b"132x43\n"
            if peer.can_close_stdin:
                proc.stdin.close()
                assert await proc.wait() == 0
    trun(body)


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_attach(transport: str) -> None:
    # In-process only: kpeer serves exec commands, not a pod's main process.
    peer = Peer("inproc", transport, None)

    async def body() -> None:
        async with peer.url() as url, await open_attach(
                url, "default", "p", stdin=True, tty=True, **peer.options()) as proc:
            assert proc.command == ()
            proc.stdin.write(b"hello\n")
            assert await proc.stdout.readexactly(6) == b"hello\n"
            if peer.can_close_stdin:
                proc.stdin.close()
                assert await proc.wait() == 0
    trun(body)


def test_run_check_and_communicate(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url:
            with pytest.raises(CalledRemoteProcessError) as info:
                await run(url, "default", "p", ["exit", "3"], check=True, **peer.options())
            assert info.value.returncode == 3 and info.value.command == ("exit", "3")
            completed = await run(url, "default", "p", ["echo", "ok"], check=True,
                                  **peer.options())
            assert completed.stdout == b"ok\n" and completed.result == Exited(0)
            stdin = peer.can_close_stdin
            async with await exec_in(url, peer, ["tee-stderr" if stdin else "echo", "x"],
                                     stdin=stdin) as proc:
                out, err = await proc.communicate(b"both\n" if stdin else None)
                assert (out, err) == ((b"both\n", b"both\n") if stdin else (b"x\n", b""))
                assert await proc.wait() == 0
    trun(body)


def test_readexactly_at_eof(peer: Peer) -> None:
    async def body() -> None:
        async with peer.url() as url, await exec_in(url, peer, ["echo", "abc"]) as proc:
            with pytest.raises(IncompleteReadError) as info:
                await proc.stdout.readexactly(10)
            assert info.value.partial == b"abc\n"
            assert proc.stdout.at_eof()
            assert [chunk async for chunk in proc.stdout] == []
    trun(body)


# --------------------------------------------------------------------------- fallback


async def reject_everything(request: ServerRequest) -> None:
    await request.reject(403, f"pods \"p\" is forbidden over {request.upgrade}")


@pytest.mark.parametrize("code", [403, 400])
def test_websocket_rejection_falls_back_to_spdy(code: int) -> None:
    async def handler(request: ServerRequest) -> None:
        if request.upgrade == "websocket":
            await request.reject(code, "no websockets")
        else:
            await trio_commands.handler(request)

    async def body() -> None:
        async with inproc_server(handler) as server:
            async with await open_exec(server.url, "d", "p", ["cat"], stdin=True) as proc:
                assert proc.transport == "spdy" and proc.protocol == V4
                out, _ = await proc.communicate(b"after fallback")
                assert out == b"after fallback"
            with pytest.raises(UpgradeRejectedError) as info:
                await open_exec(server.url, "d", "p", ["cat"], fallback=False)
            assert info.value.status_code == code
    trun(body)


def test_rejection_on_both_transports_surfaces_the_status() -> None:
    async def body() -> None:
        async with inproc_server(reject_everything) as server:
            with pytest.raises(UpgradeRejectedError) as info:
                await open_exec(server.url, "d", "p", ["ls"])
        error = info.value
        assert error.status_code == 403 and error.status is not None
        # The last attempt's (SPDY's) Status, with the server's own message.
        assert error.status.message == "pods \"p\" is forbidden over spdy"
        assert "forbidden over spdy" in str(error)
    trun(body)


def test_go_peer_websocket_rejection_lands_on_spdy(kpeer: Any) -> None:
    with GoPeerServer(kpeer, reject_websocket=403) as go:
        async def body() -> None:
            async with await open_exec(go.url, "d", "p", ["cat"], stdin=True) as proc:
                assert proc.transport == "spdy"
                out, _ = await proc.communicate(b"via spdy")
                assert out == b"via spdy"
        trun(body)
    with GoPeerServer(kpeer, reject_websocket=403, reject_spdy=403) as go:
        async def rejected() -> None:
            with pytest.raises(UpgradeRejectedError) as info:
                await open_exec(go.url, "d", "p", ["ls"])
            assert info.value.status_code == 403
            assert info.value.status is not None
            assert info.value.status.message == "spdy disabled by test"
        trun(rejected)


def test_server_without_v5_sends_stdin_users_to_spdy() -> None:
    async def body() -> None:
        async with inproc_server(websocket_protocols=[V4]) as server:
            async with await open_exec(server.url, "d", "p", ["cat"], stdin=True) as proc:
                assert proc.transport == "spdy"  # honest: v4 could not close stdin
            async with await open_exec(server.url, "d", "p", ["echo"]) as proc:
                assert (proc.transport, proc.protocol) == ("websocket", V4)
    trun(body)


def test_network_errors_do_not_fall_back() -> None:
    async def body() -> None:
        with closed_port() as port, pytest.raises(OSError):
            await open_exec(f"http://127.0.0.1:{port}", "d", "p", ["ls"])
    trun(body)


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])  # bound, not listening: connection refused


# --------------------------------------------------------------------------- faults


class FreezingProxy:
    """A TCP proxy that forwards until frozen, then swallows everything."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.frozen = False
        self.port = 0

    async def serve(self, *, task_status: trio.TaskStatus[None]) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = int(listeners[0].socket.getsockname()[1])
        task_status.started()
        await trio.serve_listeners(self._proxy, listeners)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _proxy(self, down: trio.SocketStream) -> None:
        up = await trio.open_tcp_stream("127.0.0.1", self.upstream_port)
        async with down, up, trio.open_nursery() as nursery:
            nursery.start_soon(self._pipe, down, up)
            nursery.start_soon(self._pipe, up, down)

    async def _pipe(self, source: trio.SocketStream, sink: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async for data in source:
                if not self.frozen:
                    await sink.send_all(data)


@contextlib.asynccontextmanager
async def freezing_proxy(upstream_port: int) -> AsyncIterator[FreezingProxy]:
    proxy = FreezingProxy(upstream_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(proxy.serve))
        yield proxy
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("transport", ["ws5", "spdy"])
def test_ping_timeout_when_the_peer_stops_answering(transport: str) -> None:
    async def body() -> None:
        async with inproc_server() as server, freezing_proxy(server.port) as proxy:
            kind, protocols = TRANSPORTS[transport]
            async with await open_exec(proxy.url, "d", "p", ["sleep-forever"],
                                       transport=kind, protocols=protocols,
                                       ping_interval=0.05, pong_timeout=0.5) as proc:
                proxy.frozen = True
                started = trio.current_time()
                with pytest.raises(PingTimeoutError):
                    await proc.wait()
                elapsed = trio.current_time() - started
                assert elapsed < 5.0  # the deadline, not a hang
                with pytest.raises(PingTimeoutError):
                    await proc.stdout.read()
    trun(body)


def test_pongs_keep_an_idle_session_alive() -> None:
    async def body() -> None:
        async with inproc_server() as server, await open_exec(
                server.url, "d", "p", ["sleep-forever"], stdin=True, ping_interval=0.05,
                pong_timeout=1.0) as proc:
            started = trio.current_time()
            # Twice the pong deadline passes with no output: pongs keep moving it.
            while trio.current_time() - started < 2.0:
                proc.stdin.write(b".")
                await proc.stdin.drain()
                await trio.sleep(0.05)
            assert proc.result is None and not proc._conn.done.is_set()
            heartbeat = proc._conn._heartbeat
            assert heartbeat is not None and heartbeat.deadline > started + 1.0
    trun(body)


def test_server_pings_are_answered(kpeer: Any) -> None:
    with GoPeerServer(kpeer, ping_interval="10ms") as go:
        async def body() -> None:
            async with await open_exec(go.url, "d", "p", ["cat"], stdin=True) as proc:
                started = trio.current_time()
                while trio.current_time() - started < 0.3:
                    proc.stdin.write(b"ping?\n")
                    assert await proc.stdout.readexactly(6) == b"ping?\n"
                    await trio.sleep(0.01)
                proc.stdin.close()
                assert await proc.wait() == 0
            # kpeer prints "PONGS <n>" when the session ends.
            while "PONGS" not in go.stderr_text():
                await trio.sleep(0.01)
        trun(body)
        pongs = [int(n) for n in re.findall(r"PONGS (\d+)", go.stderr_text())]
        assert pongs and pongs[0] >= 1


@pytest.mark.parametrize("transport", ["ws5", "ws4", "spdy"])
def test_tcp_drop_mid_stdout_is_an_error(transport: str) -> None:
    async def body() -> None:
        async with inproc_server() as server:
            kind, protocols = TRANSPORTS[transport]
            async with await open_exec(server.url, "d", "p", ["drop", "1000000"],
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
    trun(body)


@pytest.mark.parametrize(("kind", "transport", "total"), [
    ("inproc", "ws5", 64 << 20), ("inproc", "spdy", 64 << 20), ("go", "ws5", 256 << 20)])
def test_unread_output_stays_bounded(request: pytest.FixtureRequest, kind: str,
                                     transport: str, total: int) -> None:
    limit = 1 << 20
    go = request.getfixturevalue("go_server") if kind == "go" else None
    peer = Peer(kind, transport, go)

    async def body() -> None:
        async with peer.url() as url, await exec_in(url, peer, ["source", str(total)],
                                                    buffer_limit=limit) as proc:
            connection = proc._conn
            # Wait (bounded by the test deadline) until the adapter stopped reading.
            while not connection.reading_paused:
                await trio.sleep(0.005)
            assert limit < proc.buffered_bytes <= limit + READ_SIZE
            # Stay behind a while: nothing more is read meanwhile.
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)
            assert limit < proc.buffered_bytes <= limit + READ_SIZE
            received = 0
            async for chunk in proc.stdout:
                received += len(chunk)
            assert received == total
            assert await proc.wait() == 0
            assert connection._inputs[1].peak <= limit + READ_SIZE
    trun(body)


def test_cancellation_closes_the_connection_and_leaves_nothing() -> None:
    handler_done = trio.Event()

    async def watched(request: ServerRequest) -> None:
        try:
            await trio_commands.handler(request)
        finally:
            handler_done.set()

    async def body() -> None:
        async with inproc_server(watched) as server:
            tasks_before = trio.lowlevel.current_statistics().tasks_living
            with trio.CancelScope() as scope:
                async with await open_exec(server.url, "d", "p", ["sleep-forever"],
                                           stdin=True) as proc, trio.open_nursery() as nursery:
                    async def cancel_when_blocked() -> None:
                        await trio.testing.wait_all_tasks_blocked()
                        scope.cancel()

                    nursery.start_soon(cancel_when_blocked)
                    await proc.stdout.read()
            assert scope.cancelled_caught
            connection = proc._conn
            assert connection.pump_done.is_set()
            stream = connection._stream
            assert isinstance(stream, trio.SocketStream) and stream.socket.fileno() == -1
            # The server saw the session end (a close, then EOF) and its handler finished.
            await handler_done.wait()
            with pytest.raises(LocalProtocolError, match="closed before"):
                await proc.wait()
            while trio.lowlevel.current_statistics().tasks_living > tasks_before:
                await trio.sleep(0.005)  # the server's connection task winds down
    trun(body)


def test_cancelled_open_exec_closes_its_socket() -> None:
    async def body() -> None:
        accepted = trio.Event()
        closed = trio.Event()

        async def silent(stream: trio.SocketStream) -> None:
            accepted.set()
            async for _ in stream:
                pass  # never answer the upgrade
            closed.set()

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, silent, 0)
            port = listeners[0].socket.getsockname()[1]
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as inner:
                    inner.start_soon(partial(open_exec, f"http://127.0.0.1:{port}", "d", "p",
                                             ["ls"]))
                    await accepted.wait()
                    scope.cancel()
            assert scope.cancelled_caught
            await closed.wait()  # the server saw our socket close
            nursery.cancel_scope.cancel()
    trun(body)


def test_connect_timeout_bounds_the_upgrade() -> None:
    async def body() -> None:
        closed = trio.Event()

        async def silent(stream: trio.SocketStream) -> None:
            async for _ in stream:
                pass
            closed.set()

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, silent, 0)
            port = listeners[0].socket.getsockname()[1]
            with pytest.raises(TimeoutError):
                await open_exec(f"http://127.0.0.1:{port}", "d", "p", ["ls"],
                                connect_timeout=0.2)
            await closed.wait()  # and the socket was closed
            nursery.cancel_scope.cancel()
    trun(body)


def test_run_timeout() -> None:
    async def body() -> None:
        async with inproc_server() as server:
            with pytest.raises(TimeoutError):
                await run(server.url, "d", "p", ["sleep-forever"], timeout=0.2)
    trun(body)


def test_many_concurrent_sessions() -> None:
    async def body() -> None:
        outputs: dict[int, bytes] = {}
        async with inproc_server() as server:
            async def one(i: int) -> None:
                kind, protocols = TRANSPORTS[list(TRANSPORTS)[i % 3]]
                completed = await run(server.url, "d", "p", ["echo", str(i)],
                                      transport=kind, protocols=protocols)
                outputs[i] = completed.stdout

            async with trio.open_nursery() as nursery:
                for i in range(60):
                    nursery.start_soon(one, i)
        assert outputs == {i: f"{i}\n".encode() for i in range(60)}
    trun(body)


def test_a_caller_stream_is_used() -> None:
    async def body() -> None:
        async with inproc_server() as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
            completed = await run(server.url, "d", "p", ["echo", "mine"], stream=stream)
            assert completed.stdout == b"mine\n"
            assert stream.socket.fileno() == -1  # the process owned and closed it
    trun(body)


def test_misuse_is_reported() -> None:
    async def body() -> None:
        async with inproc_server() as server:
            proc = await open_exec(server.url, "d", "p", ["sleep-forever"])
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
    trun(body)


def test_invalid_arguments() -> None:
    async def body() -> None:
        with pytest.raises(ValueError):
            await open_exec("ftp://x", "d", "p", ["ls"])
        with pytest.raises(ValueError):
            await open_exec("http://x", "d", "p", "ls")
        with pytest.raises(ValueError):
            await open_exec("http://x", "d", "p", ["ls"], stdout=False, stderr=False)
    trun(body)


def test_exceptions_in_the_block_come_out_unwrapped() -> None:
    async def body() -> None:
        async with inproc_server() as server:
            with pytest.raises(KeyError):
                async with await open_exec(server.url, "d", "p", ["sleep-forever"]):
                    raise KeyError("mine")
    trun(body)



@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_stdin_goes_out_in_messages_of_at_most_32_kib(transport: str) -> None:
    total = 1 << 20
    sizes: list[int] = []

    async def measuring(request: ServerRequest) -> None:
        session = await request.accept()
        # Wait (bounded by the test deadline) until every byte is buffered, then look
        # at the buffered chunks: one per message (WebSocket) or DATA frame (SPDY).
        buffer = session._conn._inputs[0]
        while buffer.size < total:
            await trio.sleep(0.005)
        sizes.extend(len(chunk) for chunk in buffer._chunks)
        await session.exit(success_status())

    async def body() -> None:
        async with inproc_server(measuring, buffer_limit=2 * total) as server, \
                await open_exec(server.url, "d", "p", ["x"], stdin=True,
                                transport=transport) as proc:
            proc.stdin.write(bytes(total))  # one write: the adapter splits it
            await proc.stdin.drain()
            assert await proc.wait() == 0
        assert sum(sizes) == total and max(sizes) == 32 * 1024
    trun(body)


# --------------------------------------------------------------------------- read buffer


def test_concurrent_sessions_share_the_read_buffer_without_mixing_bytes() -> None:
    # Plain TCP streams read into the thread's one buffer (clients and the in-process
    # server alike): interleaved transfers must still each get their own bytes.
    payloads = [os.urandom((1 << 20) + 1000 * i) for i in range(6)]
    outputs: dict[int, bytes] = {}

    async def body() -> None:
        async with inproc_server() as server:
            async def one(i: int) -> None:
                kind, protocols = TRANSPORTS[["ws5", "spdy"][i % 2]]
                completed = await run(server.url, "d", "p", ["cat"], input=payloads[i],
                                      transport=kind, protocols=protocols)
                outputs[i] = completed.stdout

            async with trio.open_nursery() as nursery:
                for i in range(len(payloads)):
                    nursery.start_soon(one, i)
    trun(body)
    assert outputs == dict(enumerate(payloads))


def test_idle_sessions_hold_no_read_buffer() -> None:
    # The bound is 64 KiB per idle session (RSS of the client alone, measured by
    # the benchmark). Client and server connections are both in this process here:
    # traced memory per session, both sides together.
    import tracemalloc

    grown: list[int] = []

    async def body() -> None:
        async with inproc_server() as server:
            # One session first: first-use allocations are not per session.
            await run(server.url, "d", "p", ["echo", "warm"])
            async with contextlib.AsyncExitStack() as stack:
                tracemalloc.start()
                try:
                    before = tracemalloc.get_traced_memory()[0]
                    for _ in range(10):
                        await stack.enter_async_context(
                            await open_exec(server.url, "d", "p", ["cat"], stdin=True))
                    await trio.sleep(0.05)
                    grown.append(tracemalloc.get_traced_memory()[0] - before)
                finally:
                    tracemalloc.stop()
    trun(body)
    # 64 KiB per side; one 256 KiB receive buffer per connection would be 512 KiB.
    assert grown[0] // 10 < 128 << 10, grown
