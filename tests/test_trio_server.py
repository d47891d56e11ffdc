"""The trio server adapter (kstream.trio.serve) against independent clients.

Clients: the official ``kubernetes`` client (a real WebSocket v5/v4 client, synchronous:
it runs in a thread), ``kpeer spdy-client`` (client-go's SPDY executor, in Go), the
asyncio adapter (in a thread, with its own loop) and raw sockets for the edge cases. The
server runs the built-in test commands of ``trio_commands.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from exec_commands import pattern
from official_client import close_official, core_api, exec_with_official_client
from peers.gopeer import SpdyClientError, run_spdy_client
from servehelper import make_certificate
from trio_commands import handler, inproc_server, run_command, trun

import kstream.asyncio
from kstream import RemoteProtocolError, UpgradeRejectedError
from kstream._runtime.common import READ_SIZE
from kstream._status import exit_code_status, success_status
from kstream.trio import (
    ExecServer,
    RemoteCommandError,
    ServerExec,
    ServerRequest,
    open_exec,
    run,
    serve,
    serve_stream,
)

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
SPDY_VERSIONS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                 "channel.k8s.io"]
IO_QUERY = "stdin=true&stdout=true&stderr=true"


# --------------------------------------------------------------------------- harness


def spdy_client(server: ExecServer, kpeer: Path, query: str, **kwargs: Any) -> Any:
    """Run ``kpeer spdy-client`` against ``server`` in a thread (it blocks)."""
    url = f"{server.url}/api/v1/namespaces/d/pods/p/exec?{query}"
    return trio.to_thread.run_sync(partial(run_spdy_client, kpeer, url, **kwargs))


async def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a fresh connection and read until the server closes it."""
    received = bytearray()
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(request)
        while data := await stream.receive_some(READ_SIZE):
            received += data
    return bytes(received)


# --------------------------------------------------------------------------- kpeer spdy-client


@pytest.mark.parametrize("protocol", SPDY_VERSIONS)
def test_go_spdy_client_round_trip_on_every_version(kpeer: Path, protocol: str) -> None:
    payload = os.urandom(1 << 20)

    async def body() -> None:
        async with inproc_server() as server:
            result = await spdy_client(server, kpeer, f"command=cat&{IO_QUERY}",
                                       protocols=[protocol], stdin=payload)
            assert result.protocol == protocol
            assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(payload).digest()
            assert result.stderr == b""
            # v4 writes the Success document; v1-v3 write nothing on success.
            expected = '{"metadata":{},"status":"Success"}' if protocol == V4 else ""
            assert result.error == expected
    trun(body)


def test_go_spdy_client_exit_status_failures_and_stderr(kpeer: Path) -> None:
    async def body() -> None:
        async with inproc_server() as server:
            result = await spdy_client(server, kpeer, "command=exit&command=3&stdout=true")
            status = json.loads(result.error)
            assert status["reason"] == "NonZeroExitCode"
            assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
            result = await spdy_client(server, kpeer, "command=fail&command=x&stdout=true",
                                       protocols=["v2.channel.k8s.io"])
            assert result.error.startswith("Internal error occurred") and "x" in result.error
            result = await spdy_client(server, kpeer, f"command=tee-stderr&{IO_QUERY}",
                                       stdin=b"both\n")
            assert (result.stdout, result.stderr) == (b"both\n", b"both\n")
            # With a tty, stderr is merged into the terminal (stdout).
            result = await spdy_client(server, kpeer, "command=stderr&command=e&stdout=true"
                                       "&stderr=true&tty=true", tty=True)
            assert (result.stdout, result.stderr) == (b"e\n", b"")
    trun(body)


def test_go_spdy_client_pings_are_answered(kpeer: Path) -> None:
    async def body() -> None:
        async with inproc_server() as server:
            result = await spdy_client(server, kpeer, f"command=source&command={8 << 20}"
                                       "&stdout=true", ping_interval="1ms")
            assert result.stdout_bytes == 8 << 20
            assert result.pongs >= 1
    trun(body)


def test_go_spdy_client_sees_the_rejection_status(kpeer: Path) -> None:
    async def refuse(request: ServerRequest) -> None:
        await request.reject(403, "exec is forbidden by test")

    async def body() -> None:
        async with inproc_server(refuse) as server:
            with pytest.raises(SpdyClientError) as info:
                await spdy_client(server, kpeer, f"command=cat&{IO_QUERY}")
            assert "HTTP 403" in info.value.stderr
            assert '"message":"exec is forbidden by test"' in info.value.stderr
    trun(body)


# --------------------------------------------------------------------------- official client


@pytest.mark.parametrize("protocol", [V5, V4])
def test_official_client_reads_exit_codes(protocol: str) -> None:
    async def body() -> None:
        async with inproc_server(websocket_protocols=[protocol]) as server:
            def official(command: list[str]) -> tuple[bytes, bytes, Any, str]:
                return exec_with_official_client(server, command)

            out, err, status, chosen = await trio.to_thread.run_sync(
                official, ["echo", "hello", "k8s"])
            assert chosen == protocol
            assert (out, err) == (b"hello k8s\n", b"")
            assert status == {"metadata": {}, "status": "Success"}
            _, _, status, _ = await trio.to_thread.run_sync(official, ["exit", "3"])
            assert status["reason"] == "NonZeroExitCode"
            assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
            _, err, status, _ = await trio.to_thread.run_sync(official, ["stderr", "oops"])
            assert err == b"oops\n" and status["status"] == "Success"
            _, _, status, _ = await trio.to_thread.run_sync(official, ["no-such-binary"])
            assert status["reason"] == "InternalError" and status["code"] == 500
    trun(body)


def test_official_client_stdin_close_over_v5() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value

    async def body() -> None:
        async with inproc_server(websocket_protocols=[V5]) as server:
            out, _, status, _ = await trio.to_thread.run_sync(
                exec_with_official_client, server, ["cat"], payload)
            assert out == payload
            assert status == {"metadata": {}, "status": "Success"}
    trun(body)


def test_official_client_plain_get_and_rejected_exec() -> None:
    async def pod_or_refuse(request: ServerRequest) -> None:
        if request.upgrade is None:
            await request.respond(200, [("Content-Type", "application/json")],
                                  b'{"kind":"Pod","metadata":{"name":"p"}}')
        else:
            await request.reject(403, "exec is forbidden")

    async def body() -> None:
        async with inproc_server(pod_or_refuse) as server:
            def read_pod() -> str:
                with core_api(server) as api:
                    pod = api.read_namespaced_pod("p", "default")
                    assert pod.metadata is not None
                    return str(pod.metadata.name)

            assert await trio.to_thread.run_sync(read_pod) == "p"

            def returncode_after_403() -> str:
                from kubernetes.stream import stream as k8s_stream
                with core_api(server) as api:
                    try:
                        response = k8s_stream(api.connect_get_namespaced_pod_exec, "p", "d",
                                              command=["ls"], stderr=True, stdin=False,
                                              stdout=True, tty=False,
                                              _preload_content=False)
                    except Exception as exc:  # the official client raises ApiException
                        return str(exc)
                    close_official(response)
                    return ""

            assert "403" in await trio.to_thread.run_sync(returncode_after_403)
    trun(body)


# --------------------------------------------------------------------------- asyncio client


def test_asyncio_client_against_the_trio_server() -> None:
    payload = os.urandom(2 << 20)

    async def body() -> None:
        async with inproc_server() as server:
            def client() -> tuple[bytes, str, int]:
                async def go() -> tuple[bytes, str, int]:
                    completed = await kstream.asyncio.run(server.url, "d", "p", ["cat"],
                                                          input=payload)
                    async with await kstream.asyncio.open_exec(
                            server.url, "d", "p", ["exit", "255"], transport="spdy") as proc:
                        code = await proc.wait()
                    return completed.stdout, proc.transport, code
                return asyncio.run(go())

            out, transport, code = await trio.to_thread.run_sync(client)
            assert out == payload and transport == "spdy" and code == 255
    trun(body)


# --------------------------------------------------------------------------- handler contract


def test_handler_outcomes_become_answers() -> None:
    async def contract(request: ServerRequest) -> None:
        command = dict(request.query).get("command")
        if command == "silent":
            return  # no answer: 404
        if command == "crash-early":
            raise RuntimeError("boom before accept")
        session = await request.accept()
        if command == "crash-late":
            raise RuntimeError("boom after accept")
        session.write_stdout(b"implicit success\n")  # returns without exit(): success

    async def body() -> None:
        async with inproc_server(contract) as server:
            with pytest.raises(UpgradeRejectedError) as rejected:
                await open_exec(server.url, "d", "p", ["silent"])
            assert rejected.value.status_code == 404
            with pytest.raises(UpgradeRejectedError) as rejected:
                await open_exec(server.url, "d", "p", ["crash-early"])
            assert rejected.value.status_code == 500
            assert rejected.value.status is not None
            assert "boom before accept" in rejected.value.status.message
            for transport in ("websocket", "spdy"):
                with pytest.raises(RemoteCommandError) as failed:
                    await run(server.url, "d", "p", ["crash-late"], transport=transport)
                assert failed.value.reason == "InternalError"
                assert "boom after accept" in failed.value.message
                completed = await run(server.url, "d", "p", ["ok"], transport=transport)
                assert completed.stdout == b"implicit success\n"
                assert completed.returncode == 0
    trun(body)


def test_plain_http_and_garbage_get_answers() -> None:
    async def body() -> None:
        async with inproc_server() as server:
            answer = await raw_exchange(server.port, b"GET /api/v1/namespaces/d/pods/p "
                                        b"HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 404 ")
            assert b'"message":"no such resource /api/v1/namespaces/d/pods/p"' in answer
            answer = await raw_exchange(server.port, b"\x00\x01 not http\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 400 ")
            # A client that leaves before sending a request is simply closed.
            async with await trio.open_tcp_stream("127.0.0.1", server.port) as stream:
                await stream.send_eof()
                assert await stream.receive_some(READ_SIZE) == b""
    trun(body)


def test_spdy_client_that_creates_no_streams_is_dropped() -> None:
    outcome: list[BaseException] = []

    async def watching(request: ServerRequest) -> None:
        try:
            await request.accept()
        except Exception as exc:
            outcome.append(exc)
            raise

    async def body() -> None:
        async with inproc_server(watching, stream_creation_timeout=0.2) as server:
            request = (b"POST /api/v1/namespaces/d/pods/p/exec?command=cat&stdout=true "
                       b"HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                       b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
            answer = await raw_exchange(server.port, request)
            assert answer.startswith(b"HTTP/1.1 101 ")
        assert len(outcome) == 1 and isinstance(outcome[0], RemoteProtocolError)
        assert "streams in time" in str(outcome[0])
    trun(body)


# --------------------------------------------------------------------------- limits, TLS, cancel


def test_unread_stdin_stays_bounded_on_the_server() -> None:
    limit = 256 * 1024
    total = 16 << 20
    sessions: list[ServerExec] = []
    go_on = trio.Event()

    async def slow_sink(request: ServerRequest) -> None:
        session = await request.accept()
        sessions.append(session)
        await go_on.wait()
        await run_command(session, ["sink"])
        await session.exit(success_status())

    async def body() -> None:
        payload = pattern(0, total)
        async with inproc_server(slow_sink, buffer_limit=limit) as server, \
                await open_exec(server.url, "d", "p", ["sink"], stdin=True) as proc, \
                trio.open_nursery() as nursery:

            async def upload() -> None:
                proc.stdin.write(payload)
                await proc.stdin.drain()
                proc.stdin.close()

            nursery.start_soon(upload)
            # Wait (bounded by the test deadline) until the server stopped reading.
            while not sessions or not sessions[0]._conn.reading_paused:
                await trio.sleep(0.005)
            connection = sessions[0]._conn
            assert limit < connection.buffered_bytes <= limit + READ_SIZE
            go_on.set()
            line = await proc.stdout.read()
            assert line == f"{total} {hashlib.sha256(payload).hexdigest()}\n".encode()
            assert await proc.wait() == 0
            assert connection._inputs[0].peak <= limit + READ_SIZE
    trun(body)


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_tls_with_alpn(tmp_path: Path, transport: str) -> None:
    cert, key = make_certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server_context.set_alpn_protocols(["http/1.1"])
    client_context = ssl.create_default_context(cafile=str(cert))
    client_context.set_alpn_protocols(["http/1.1"])

    async def body() -> None:
        async with inproc_server(ssl=server_context) as server:
            assert server.url.startswith("https://127.0.0.1:")
            async with await open_exec(server.url, "d", "p", ["cat"], stdin=True,
                                       ssl=client_context, transport=transport) as proc:
                assert proc.transport == transport
                out, err = await proc.communicate(b"over tls")
                assert (out, err) == (b"over tls", b"")
                assert await proc.wait() == 0
    trun(body)


def test_cancelling_the_server_ends_its_sessions() -> None:
    started = trio.Event()
    cancelled: list[bool] = []

    async def forever(request: ServerRequest) -> None:
        await request.accept()
        started.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(True)
            raise

    async def body() -> None:
        async with trio.open_nursery() as outer:
            server_scope = trio.CancelScope()

            async def run_server(task_status: trio.TaskStatus[ExecServer]) -> None:
                with server_scope:
                    await serve(forever, task_status=task_status)

            server: ExecServer = await outer.start(run_server)
            async with await open_exec(server.url, "d", "p", ["x"], stdin=True) as proc:
                await started.wait()
                server_scope.cancel()
                with pytest.raises(RemoteProtocolError):
                    await proc.wait()
        assert cancelled == [True]
    trun(body)


def test_serve_stream_serves_one_connection() -> None:
    async def body() -> None:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_stream, handler, server_stream)
            completed = await run("http://pod.local", "d", "p", ["echo", "in", "memory"],
                                  stream=client_stream)
            assert completed.stdout == b"in memory\n"
    trun(body)


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_output_survives_an_exit_that_leaves_stdin_unread(transport: str) -> None:
    # The process writes 4 MiB and exits without reading stdin while the client is
    # still writing 16 MiB before it reads: closing with unread input would make the
    # kernel reset the connection and drop the output in flight. The server lingers.
    output = 4 << 20

    async def exits_early(request: ServerRequest) -> None:
        session = await request.accept()
        session.write_stdout(pattern(0, output))
        await session.exit(exit_code_status(3, ["early"]))

    async def body() -> None:
        async with inproc_server(exits_early) as server, await open_exec(
                server.url, "d", "p", ["early"], stdin=True, transport=transport) as proc:
            for _ in range(16):
                proc.stdin.write(bytes(1 << 20))
                await proc.stdin.drain()
            assert await proc.stdout.read() == pattern(0, output)
            assert await proc.wait() == 3
    trun(body)
