"""The asyncio server adapter (start_server) against the official ``kubernetes`` client.

``kubernetes.stream.stream`` is a real WebSocket v5/v4 client (websocket-client
underneath). It is synchronous, so it runs in a thread while the server runs in the loop
(``official_client.py``). The asyncio client covers what it cannot do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import exec_commands
import pytest
import runtimes
from kubernetes.stream import stream as k8s_stream
from official_client import close_official, core_api, exec_with_official_client

from kstream._status import exit_code_status
from kstream.asyncio import ServerRequest, open_exec, start_server

T = TypeVar("T")
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"


def arun(body: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(60):
            result = await body()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return result
    return asyncio.run(bounded())


@pytest.mark.parametrize("protocol", [V5, V4])
def test_official_client_reads_exit_codes(protocol: str) -> None:
    async def body() -> None:
        async with await start_server(runtimes.get("asyncio").handler,
                                      websocket_protocols=[protocol]) as server:
            out, err, status, chosen = await asyncio.to_thread(
                exec_with_official_client, server, ["echo", "hello", "k8s"])
            assert chosen == protocol
            assert (out, err) == (b"hello k8s\n", b"")
            assert status == {"metadata": {}, "status": "Success"}
            out, err, status, _ = await asyncio.to_thread(
                exec_with_official_client, server, ["exit", "3"])
            assert status["reason"] == "NonZeroExitCode"
            assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
            _, err, status, _ = await asyncio.to_thread(
                exec_with_official_client, server, ["stderr", "oops"])
            assert err == b"oops\n" and status["status"] == "Success"
            _, _, status, _ = await asyncio.to_thread(
                exec_with_official_client, server, ["no-such-binary"])
            assert status["reason"] == "InternalError" and status["code"] == 500
    arun(body)


def test_official_client_stdin_close_over_v5() -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB, every byte value

    async def body() -> None:
        async with await start_server(runtimes.get("asyncio").handler,
                                      websocket_protocols=[V5]) as server:
            out, _, status, _ = await asyncio.to_thread(
                exec_with_official_client, server, ["cat"], payload)
            assert out == payload
            assert status == {"metadata": {}, "status": "Success"}
    arun(body)


def test_official_client_returncode_property() -> None:
    async def body() -> None:
        async with await start_server(runtimes.get("asyncio").handler,
                                      websocket_protocols=[V4]) as server:
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
            assert await asyncio.to_thread(returncode) == 255
    arun(body)


def test_plain_requests_and_rejections() -> None:
    async def handler(request: ServerRequest) -> None:
        if request.upgrade is None:
            await request.respond(200, [("Content-Type", "application/json")],
                                  b'{"kind":"Pod","metadata":{"name":"p"}}')
        else:
            await request.reject(403, "exec is forbidden")

    async def body() -> None:
        async with await start_server(handler) as server:
            def read_pod() -> str:
                with core_api(server) as api:
                    pod = api.read_namespaced_pod("p", "default")
                    assert pod.metadata is not None
                    return str(pod.metadata.name)
            assert await asyncio.to_thread(read_pod) == "p"

            def forbidden_exec() -> str:
                with core_api(server) as api:
                    try:
                        k8s_stream(api.connect_get_namespaced_pod_exec, "p", "default",
                                   command=["ls"], stderr=True, stdin=False, stdout=True,
                                   tty=False)
                    except Exception as exc:  # the official client raises ApiException
                        return str(exc)
                    return ""
            assert "403" in await asyncio.to_thread(forbidden_exec)
    arun(body)


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_output_survives_an_exit_that_leaves_stdin_unread(transport: str) -> None:
    # The process writes 4 MiB and exits without reading stdin while the client is
    # still writing 16 MiB before it reads: closing with unread input would make the
    # kernel reset the connection and drop the output in flight. The server lingers.
    output = 4 << 20

    async def exits_early(request: ServerRequest) -> None:
        session = await request.accept()
        session.write_stdout(exec_commands.pattern(0, output))
        await session.exit(exit_code_status(3, ["early"]))

    async def body() -> None:
        async with await start_server(exits_early) as server, await open_exec(
                server.url, "d", "p", ["early"], stdin=True, transport=transport,
                protocols=[V5] if transport == "websocket" else None) as proc:
            for _ in range(16):
                proc.stdin.write(bytes(1 << 20))
                await proc.stdin.drain()
            assert await proc.stdout.read() == exec_commands.pattern(0, output)
            assert await proc.wait() == 3
    arun(body)
