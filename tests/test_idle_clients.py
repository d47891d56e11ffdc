"""Idle and slow clients cannot hold a server: a head deadline, a cap, quiet accept errors.

Before: 500 idle sockets without a token stayed open for 76 s; under ``ulimit -n 100``,
120 idle sockets made every exec fail and stderr got thousands of ``accept()``
tracebacks; on the TLS port a connection that never sent a ClientHello lived until
asyncio's 60 s handshake timeout.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import kstream
import kstream.asyncio
import kstream.trio
from kstream._app.serve import AcceptErrorLog
from kstream.asyncio import ServerRequest

HEAD_TIMEOUT = 0.5


async def _handler(request: ServerRequest) -> None:
    session = await request.accept(stdout=True, stdin=False, stderr=False)
    session.write_stdout(b"ok")
    await session.exit(kstream.Status.success())


@asynccontextmanager
async def _asyncio_server(**options: object) -> AsyncIterator[int]:
    async with await kstream.asyncio.start_server(_handler, head_timeout=HEAD_TIMEOUT,
                                                  **options) as server:  # type: ignore[arg-type]
        yield server.port


def _closed_within(port: int, seconds: float, send: bytes = b"") -> float:
    """Connect, send ``send``, and time how long until the server closes the socket."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as sock:
        if send:
            sock.sendall(send)
        try:
            while sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
    return time.monotonic() - started


@pytest.mark.parametrize("send", [b"", b"GET /api/v1/namespaces/d/pods/p/exec HTTP/1.1\r\nHo"])
@pytest.mark.parametrize("tls", [False, True])
def test_asyncio_server_drops_a_client_without_a_request_head(
        tls_files: tuple[Path, Path], send: bytes, tls: bool) -> None:
    options: dict[str, object] = {}
    if tls:
        cert, key = tls_files
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        options["ssl"] = context
        send = b""  # never a ClientHello

    async def scenario() -> float:
        async with _asyncio_server(**options) as port:
            return await asyncio.to_thread(_closed_within, port, 10, send)

    assert asyncio.run(scenario()) < HEAD_TIMEOUT + 2


@pytest.mark.parametrize("send", [b"", b"GET /api/v1/namespaces/d/pods/p/exec HTTP/1.1\r\nHo"])
def test_trio_server_drops_a_client_without_a_request_head(send: bytes) -> None:
    async def scenario() -> float:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(lambda task_status: kstream.trio.serve(
                _handler_trio, head_timeout=HEAD_TIMEOUT, task_status=task_status))
            took = await trio.to_thread.run_sync(_closed_within, server.port, 10.0, send)
            nursery.cancel_scope.cancel()
        return took

    assert trio.run(scenario) < HEAD_TIMEOUT + 2


async def _handler_trio(request: kstream.trio.ServerRequest) -> None:
    session = await request.accept(stdout=True, stdin=False, stderr=False)
    session.write_stdout(b"ok")
    await session.exit(kstream.Status.success())


def test_the_oldest_idle_connections_make_room_and_real_clients_get_through() -> None:
    async def scenario() -> None:
        async with _asyncio_server(max_pending=3) as port:
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(6)]
            try:
                await asyncio.sleep(0.3)
                closed = 0
                for sock in idle[:3]:  # the oldest three were dropped
                    sock.settimeout(2)
                    try:
                        closed += sock.recv(1) == b""
                    except ConnectionResetError:
                        closed += 1
                assert closed == 3
                done = await kstream.asyncio.run(f"http://127.0.0.1:{port}", "d", "p", ["x"])
                assert (done.stdout, done.returncode) == (b"ok", 0)
            finally:
                for sock in idle:
                    sock.close()

    asyncio.run(scenario())


def test_serve_under_a_descriptor_limit_keeps_serving_through_idle_clients(
        tmp_path: Path) -> None:
    # 120 idle sockets against a serve limited to 100 descriptors: real execs still work.
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))

    process = subprocess.Popen(
        [sys.executable, "-m", "kstream", "serve", "--plain-http", "--token", "t",
         "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit)
    idle: list[socket.socket] = []
    try:
        assert process.stdout is not None
        url = process.stdout.readline().decode().split()[-1]
        port = int(url.rsplit(":", 1)[1])
        for _ in range(120):
            idle.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.5)

        async def exec_once() -> kstream.CompletedExec:
            return await kstream.asyncio.run(url, "default", "demo", ["echo", "through"],
                                             headers=[("Authorization", "Bearer t")],
                                             connect_timeout=20)

        done = asyncio.run(exec_once())
        assert (done.stdout, done.returncode) == (b"through\n", 0)
    finally:
        for sock in idle:
            sock.close()
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert b"Traceback" not in stderr
    assert stderr.count(b"\n") < 20


def test_accept_errors_are_one_line_at_a_time() -> None:
    lines: list[str] = []
    now = [0.0]
    log = AcceptErrorLog(lines.append, lambda: now[0], interval=5.0)
    error = OSError(24, "Too many open files")
    context = {"message": "socket.accept() out of system resource", "exception": error}
    loop = asyncio.new_event_loop()
    try:
        for step in range(1000):
            now[0] = step * 0.01  # 1000 failures in 10 s
            log(loop, context)
        other: list[dict[str, object]] = []
        loop.set_exception_handler(None)
        setattr(loop, "default_exception_handler", other.append)  # noqa: B010
        log(loop, {"message": "something else"})
    finally:
        loop.close()
    assert lines == [
        "kstream serve: cannot accept connections: Too many open files",
        "kstream serve: cannot accept connections: Too many open files "
        "(499 more since the last report)",
    ]
    assert other == [{"message": "something else"}]


