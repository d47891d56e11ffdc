"""The servers of both adapters (kstream.asyncio.start_server, kstream.trio.serve) against
independent clients.

Each case is written once and runs on both runtimes (the ``runtime`` fixture, see
``runtimes.py``). Clients: the official ``kubernetes`` client (a real WebSocket v5/v4
client, synchronous: it runs in a thread), ``kpeer spdy-client`` (client-go's SPDY
executor, in Go), the other runtime's adapter (in a thread, with its own event loop), the
runtime's own adapter, and raw sockets for the edge cases. The server runs the built-in
test commands of ``exec_commands.py``. Cases that exist for one runtime only are at the
end, parametrised for that runtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import runtimes
import trio
import trio.testing
from exec_commands import pattern
from kubernetes.stream import stream as k8s_stream
from official_client import close_official, core_api, exec_with_official_client
from peers.gopeer import SpdyClientError, SpdyClientResult, run_spdy_client
from runtimes import Runtime, Served

import kstream.trio
from kstream import RemoteProtocolError, UpgradeRejectedError
from kstream._runtime.common import READ_SIZE
from kstream._status import exit_code_status, success_status

# The error classes are shared by both adapters (the same objects in each module).
from kstream.asyncio import RemoteCommandError

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
SPDY_VERSIONS = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                 "channel.k8s.io"]
IO_QUERY = "stdin=true&stdout=true&stderr=true"


@pytest.fixture(params=runtimes.NAMES)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    return runtimes.get(str(request.param))


async def spdy_client(runtime: Runtime, server: Served, kpeer: Path, query: str,
                      **kwargs: Any) -> SpdyClientResult:
    """Run ``kpeer spdy-client`` against ``server`` in a thread (it blocks)."""
    url = f"{server.url}/api/v1/namespaces/d/pods/p/exec?{query}"
    return await runtime.to_thread(partial(run_spdy_client, kpeer, url, **kwargs))


# --------------------------------------------------------------------------- kpeer spdy-client


@pytest.mark.parametrize("protocol", SPDY_VERSIONS)
def test_go_spdy_client_round_trip_on_every_version(runtime: Runtime, kpeer: Path,
                                                    protocol: str) -> None:
    payload = os.urandom(1 << 20)

    async def body() -> None:
        async with runtime.inproc_server() as server:
            result = await spdy_client(runtime, server, kpeer, f"command=cat&{IO_QUERY}",
                                       protocols=[protocol], stdin=payload)
            assert result.protocol == protocol
            assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(payload).digest()
            assert result.stderr == b""
            # v4 writes the Success document; v1-v3 write nothing on success.
            expected = '{"metadata":{},"status":"Success"}' if protocol == V4 else ""
            assert result.error == expected
    runtime.run(body)


def test_go_spdy_client_exit_status_failures_and_stderr(runtime: Runtime, kpeer: Path) -> None:
    async def body() -> None:
        async with runtime.inproc_server() as server:
            result = await spdy_client(runtime, server, kpeer,
                                       "command=exit&command=3&stdout=true")
            status = json.loads(result.error)
            assert status["reason"] == "NonZeroExitCode"
            assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
            result = await spdy_client(runtime, server, kpeer,
                                       "command=fail&command=x&stdout=true",
                                       protocols=["v2.channel.k8s.io"])
            assert result.error.startswith("Internal error occurred") and "x" in result.error
            result = await spdy_client(runtime, server, kpeer,
                                       f"command=tee-stderr&{IO_QUERY}", stdin=b"both\n")
            assert (result.stdout, result.stderr) == (b"both\n", b"both\n")
            # With a tty, stderr is merged into the terminal (stdout).
            result = await spdy_client(runtime, server, kpeer,
                                       "command=stderr&command=e&stdout=true"
                                       "&stderr=true&tty=true", tty=True)
            assert (result.stdout, result.stderr) == (b"e\n", b"")
    runtime.run(body)


def test_go_spdy_client_pings_are_answered(runtime: Runtime, kpeer: Path) -> None:
    async def body() -> None:
        async with runtime.inproc_server() as server:
            # Long enough (64 MiB) that pings certainly cross the transfer: with 8 MiB the
            # session could end before the first ping's answer was read (asyncio, loaded).
            result = await spdy_client(runtime, server, kpeer,
                                       f"command=source&command={64 << 20}&stdout=true",
                                       ping_interval="1ms")
            assert result.stdout_bytes == 64 << 20
            assert result.pongs >= 1
    runtime.run(body)


def test_go_spdy_client_sees_the_rejection_status(runtime: Runtime, kpeer: Path) -> None:
    async def refuse(request: Any) -> None:
        await request.reject(403, "exec is forbidden by test")

    async def body() -> None:
        async with runtime.inproc_server(refuse) as server:
            with pytest.raises(SpdyClientError) as info:
                await spdy_client(runtime, server, kpeer, f"command=cat&{IO_QUERY}")
            assert "HTTP 403" in info.value.stderr
            assert '"message":"exec is forbidden by test"' in info.value.stderr
    runtime.run(body)


# --------------------------------------------------------------------------- official client


@pytest.mark.parametrize("protocol", [V5, V4])
def test_official_client_reads_exit_codes(runtime: Runtime, protocol: str) -> None:
    async def body() -> None:
        async with runtime.inproc_server(websocket_protocols=[protocol]) as server:
            def official(command: list[str]) -> tuple[bytes, bytes, Any, str]:
                return exec_with_official_client(server, command)

            out, err, status, chosen = await runtime.to_thread(
                official, ["echo", "hello", "k8s"])
            assert chosen == protocol
            assert (out, err) == (b"hello k8s\n", b"")
            assert status == {"metadata": {}, "status": "Success"}
            _, _, status, _ = await runtime.to_thread(official, ["exit", "3"])
            assert status["reason"] == "NonZeroExitCode"
            assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
            _, err, status, _ = await runtime.to_thread(official, ["stderr", "oops"])
            assert err == b"oops\n" and status["status"] == "Success"
            _, _, status, _ = await runtime.to_thread(official, ["no-such-binary"])
            assert status["reason"] == "InternalError" and status["code"] == 500
    runtime.run(body)


def test_official_client_stdin_close_over_v5(runtime: Runtime) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value

    async def body() -> None:
        async with runtime.inproc_server(websocket_protocols=[V5]) as server:
            out, _, status, _ = await runtime.to_thread(
                exec_with_official_client, server, ["cat"], payload)
            assert out == payload
            assert status == {"metadata": {}, "status": "Success"}
    runtime.run(body)


def test_official_client_returncode_property(runtime: Runtime) -> None:
    async def body() -> None:
        async with runtime.inproc_server(websocket_protocols=[V4]) as server:
            def returncode() -> int:
                with core_api(server) as api:
                    response = k8s_stream(api.connect_get_namespaced_pod_exec, "p",
                                          "default", command=["exit", "255"], stderr=True,
                                          stdin=False, stdout=True, tty=False,
                                          _preload_content=False)
                response.run_forever(timeout=10)
                code = response.returncode
                close_official(response)
                return int(code)
            assert await runtime.to_thread(returncode) == 255
    runtime.run(body)


def test_official_client_plain_get_and_rejected_exec(runtime: Runtime) -> None:
    async def pod_or_refuse(request: Any) -> None:
        if request.upgrade is None:
            await request.respond(200, [("Content-Type", "application/json")],
                                  b'{"kind":"Pod","metadata":{"name":"p"}}')
        else:
            await request.reject(403, "exec is forbidden")

    async def body() -> None:
        async with runtime.inproc_server(pod_or_refuse) as server:
            def read_pod() -> str:
                with core_api(server) as api:
                    pod = api.read_namespaced_pod("p", "default")
                    assert pod.metadata is not None
                    return str(pod.metadata.name)

            assert await runtime.to_thread(read_pod) == "p"

            def forbidden_exec(preload: bool) -> str:
                with core_api(server) as api:
                    try:
                        response = k8s_stream(api.connect_get_namespaced_pod_exec, "p",
                                              "default", command=["ls"], stderr=True,
                                              stdin=False, stdout=True, tty=False,
                                              _preload_content=preload)
                    except Exception as exc:  # the official client raises ApiException
                        return str(exc)
                    if not preload:
                        close_official(response)
                    return ""

            # Both ways of calling the official client: preloaded (the default) or not.
            assert "403" in await runtime.to_thread(forbidden_exec, True)
            assert "403" in await runtime.to_thread(forbidden_exec, False)
    runtime.run(body)


# --------------------------------------------------------------------------- the other adapter


def test_the_other_runtimes_client_against_this_server(runtime: Runtime) -> None:
    payload = os.urandom(2 << 20)
    other = runtime.other  # its client runs in a thread, with its own event loop

    async def body() -> None:
        async with runtime.inproc_server() as server:
            def client() -> tuple[bytes, str, int]:
                async def go() -> tuple[bytes, str, int]:
                    completed = await other.api.run(server.url, "d", "p", ["cat"],
                                                    input=payload)
                    async with await other.api.open_exec(
                            server.url, "d", "p", ["exit", "255"], transport="spdy") as proc:
                        code = await proc.wait()
                    return completed.stdout, proc.transport, code
                return other.run(go)

            out, transport, code = await runtime.to_thread(client)
            assert out == payload and transport == "spdy" and code == 255
    runtime.run(body)


# --------------------------------------------------------------------------- handler contract


def test_handler_outcomes_become_answers(runtime: Runtime) -> None:
    api = runtime.api

    async def contract(request: Any) -> None:
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
        async with runtime.inproc_server(contract) as server:
            with pytest.raises(UpgradeRejectedError) as rejected:
                await api.open_exec(server.url, "d", "p", ["silent"])
            assert rejected.value.status_code == 404
            with pytest.raises(UpgradeRejectedError) as rejected:
                await api.open_exec(server.url, "d", "p", ["crash-early"])
            assert rejected.value.status_code == 500
            assert rejected.value.status is not None
            assert "boom before accept" in rejected.value.status.message
            for transport in ("websocket", "spdy"):
                with pytest.raises(RemoteCommandError) as failed:
                    await api.run(server.url, "d", "p", ["crash-late"], transport=transport)
                assert failed.value.reason == "InternalError"
                assert "boom after accept" in failed.value.message
                completed = await api.run(server.url, "d", "p", ["ok"], transport=transport)
                assert completed.stdout == b"implicit success\n"
                assert completed.returncode == 0
    runtime.run(body)


def test_plain_http_and_garbage_get_answers(runtime: Runtime) -> None:
    async def body() -> None:
        async with runtime.inproc_server() as server:
            answer = await runtime.raw_exchange(server.port, b"GET /api/v1/namespaces/d/pods/p "
                                                b"HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 404 ")
            assert b'"message":"no such resource /api/v1/namespaces/d/pods/p"' in answer
            answer = await runtime.raw_exchange(server.port, b"\x00\x01 not http\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 400 ")
            # A client that leaves before sending a request is simply closed.
            async with runtime.open_tcp(server.port) as stream:
                await stream.send_eof()
                assert await stream.receive_some() == b""
    runtime.run(body)


def test_spdy_client_that_creates_no_streams_is_dropped(runtime: Runtime) -> None:
    outcome: list[BaseException] = []

    async def watching(request: Any) -> None:
        try:
            await request.accept()
        except Exception as exc:
            outcome.append(exc)
            raise

    async def body() -> None:
        async with runtime.inproc_server(watching, stream_creation_timeout=0.2) as server:
            request = (b"POST /api/v1/namespaces/d/pods/p/exec?command=cat&stdout=true "
                       b"HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                       b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n")
            answer = await runtime.raw_exchange(server.port, request)
            assert answer.startswith(b"HTTP/1.1 101 ")
        assert len(outcome) == 1 and isinstance(outcome[0], RemoteProtocolError)
        assert "streams in time" in str(outcome[0])
    runtime.run(body)


# --------------------------------------------------------------------------- limits, TLS, stop


def test_unread_stdin_stays_bounded_on_the_server(runtime: Runtime) -> None:
    limit = 256 * 1024
    total = 16 << 20
    sessions: list[Any] = []
    go_on = runtime.event()

    async def slow_sink(request: Any) -> None:
        session = await request.accept()
        sessions.append(session)
        await go_on.wait()
        await runtime.run_command(session, ["sink"])
        await session.exit(success_status())

    async def body() -> None:
        payload = pattern(0, total)
        async with runtime.inproc_server(slow_sink, buffer_limit=limit) as server, \
                await runtime.api.open_exec(server.url, "d", "p", ["sink"],
                                            stdin=True) as proc:

            async def upload() -> None:
                proc.stdin.write(payload)
                await proc.stdin.drain()
                proc.stdin.close()

            async with runtime.background(upload):
                # Wait (bounded by the test deadline) until the server stopped reading.
                while not sessions or not runtimes.is_reading_paused(sessions[0]):
                    await runtime.sleep(0.005)
                session = sessions[0]
                assert limit < runtimes.session_buffered_bytes(session) <= limit + READ_SIZE
                go_on.set()
                line = await proc.stdout.read()
                assert line == f"{total} {hashlib.sha256(payload).hexdigest()}\n".encode()
                assert await proc.wait() == 0
                assert runtimes.peak_buffered(session, 0) <= limit + READ_SIZE
    runtime.run(body)


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_tls_with_alpn(runtime: Runtime, tls_files: tuple[Path, Path], transport: str) -> None:
    cert, key = tls_files
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server_context.set_alpn_protocols(["http/1.1"])
    client_context = ssl.create_default_context(cafile=str(cert))
    client_context.set_alpn_protocols(["http/1.1"])

    async def body() -> None:
        async with runtime.inproc_server(ssl=server_context) as server:
            assert server.url.startswith("https://127.0.0.1:")
            async with await runtime.api.open_exec(server.url, "d", "p", ["cat"], stdin=True,
                                                   ssl=client_context,
                                                   transport=transport) as proc:
                assert proc.transport == transport
                out, err = await proc.communicate(b"over tls")
                assert (out, err) == (b"over tls", b"")
                assert await proc.wait() == 0
    runtime.run(body)


def test_stopping_the_server_ends_its_sessions(runtime: Runtime) -> None:
    # asyncio: ExecServer.close(); trio: cancelling serve(). Either way the handlers are
    # cancelled and the clients see the connection end.
    started = runtime.event()
    cancelled: list[bool] = []

    async def forever(request: Any) -> None:
        await request.accept()
        started.set()
        try:
            await runtime.sleep(3600)
        except runtime.cancelled:
            cancelled.append(True)
            raise

    async def body() -> None:
        async with runtime.stoppable_server(forever) as (server, stop), \
                await runtime.api.open_exec(server.url, "d", "p", ["x"], stdin=True) as proc:
            await started.wait()
            stop()
            with pytest.raises(RemoteProtocolError):
                await proc.wait()
        assert cancelled == [True]
    runtime.run(body)


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_output_survives_an_exit_that_leaves_stdin_unread(runtime: Runtime,
                                                          transport: str) -> None:
    # The process writes 4 MiB and exits without reading stdin while the client is
    # still writing 16 MiB before it reads: closing with unread input would make the
    # kernel reset the connection and drop the output in flight. The server lingers.
    output = 4 << 20

    async def exits_early(request: Any) -> None:
        session = await request.accept()
        session.write_stdout(pattern(0, output))
        await session.exit(exit_code_status(3, ["early"]))

    async def body() -> None:
        async with runtime.inproc_server(exits_early) as server, await runtime.api.open_exec(
                server.url, "d", "p", ["early"], stdin=True, transport=transport,
                protocols=[V5] if transport == "websocket" else None) as proc:
            for _ in range(16):
                proc.stdin.write(bytes(1 << 20))
                await proc.stdin.drain()
            assert await proc.stdout.read() == pattern(0, output)
            assert await proc.wait() == 3
    runtime.run(body)


# --------------------------------------------------------------------------- trio only


@runtimes.only("trio")
def test_serve_stream_serves_one_connection(runtime: Runtime) -> None:
    # kstream.trio.serve_stream serves a connection the caller accepted (asyncio has no
    # counterpart: its server is a protocol factory).
    async def body() -> None:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(kstream.trio.serve_stream, runtime.handler, server_stream)
            completed = await kstream.trio.run("http://pod.local", "d", "p",
                                               ["echo", "in", "memory"], stream=client_stream)
            assert completed.stdout == b"in memory\n"
    runtime.run(body)
