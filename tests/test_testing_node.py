"""kstream.testing.FakeNode: pods, handlers, records and every fault, on both transports.

Also the engine internals the kit reaches into (``kstream/testing/_reach.py``): each is
exercised here on WebSocket and SPDY, so a change of them fails in this file.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import trio

import kstream.asyncio
import kstream.trio
from kstream import RemoteProtocolError, Status
from kstream.testing import FakeNode, Faults, PodExec
from kstream.testing._wire import PongFilter

TRANSPORTS = ("websocket", "spdy")


async def _echo(exec_: PodExec) -> int:
    """A handler: stdin reversed to stdout, argv on stderr, exit code from argv[0]."""
    data = await exec_.stdin.read_all()
    await exec_.stdout.write(data[::-1])
    await exec_.stderr.write(" ".join(exec_.argv).encode())
    return int(exec_.argv[0]) if exec_.argv[0].isdigit() else 0


async def _mebibyte(exec_: PodExec) -> int:
    await exec_.stdout.write(b"m" * (1 << 20))
    return 5


async def _sleeper(exec_: PodExec) -> int:
    await asyncio.sleep(30)
    return 0


async def _broken(exec_: PodExec) -> int:
    raise RuntimeError("the handler broke")


def _on_asyncio(body: Callable[[FakeNode], Coroutine[Any, Any, None]], node: FakeNode) -> None:
    async def main() -> None:
        async with node:
            await asyncio.wait_for(body(node), 60)

    asyncio.run(main())


def _node() -> FakeNode:
    node = FakeNode()
    node.add_pod("echo", handler=_echo)
    node.add_pod("big", handler=_mebibyte)
    node.add_pod("sleeper", handler=_sleeper)
    node.add_pod("broken", handler=_broken)
    node.add_pod("proc", command=["cat"])
    return node


async def _run(node: FakeNode, pod: str, argv: list[str], **kwargs: Any
               ) -> kstream.asyncio.CompletedExec:
    return await kstream.asyncio.run(node.server, "default", pod, argv,
                                     headers=node.headers, ssl=node.ssl, **kwargs)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_handler_pods_and_records(transport: str) -> None:
    async def body(node: FakeNode) -> None:
        done = await _run(node, "echo", ["7", "x"], input=b"abc", transport=transport)
        assert (done.returncode, done.stdout, done.stderr) == (7, b"cba", b"7 x")
        done = await _run(node, "big", ["any"], transport=transport)
        assert (done.returncode, len(done.stdout)) == (5, 1 << 20)
        with pytest.raises(kstream.asyncio.RemoteCommandError, match="the handler broke"):
            await _run(node, "broken", ["x"], transport=transport, check=True)
        done = await _run(node, "proc", ["sh", "-c", "echo hi; exit 3"], transport=transport)
        assert (done.returncode, done.stdout) == (3, b"hi\n")
        first, second, third, fourth = node.sessions
        assert (first.pod, first.argv, first.transport, first.exit_code) == (
            "echo", ("7", "x"), transport, 7)
        assert (first.stdin_bytes, first.stdout_bytes, first.stderr_bytes) == (3, 3, 3)
        assert first.bytes_to_client > 6
        assert (second.stdout_bytes, second.exit_code) == (1 << 20, 5)
        assert third.exit_code is None and third.status is not None
        assert third.status.reason == "InternalError"
        assert (fourth.exit_code, fourth.stdout_bytes) == (3, 3)

    _on_asyncio(body, _node())


def test_a_node_without_pods_serves_demo_and_attach() -> None:
    async def body(node: FakeNode) -> None:
        done = await _run(node, "demo", ["echo", "demo"])
        assert done.stdout == b"demo\n"
        async with await kstream.asyncio.open_attach(
                node.server, "default", "demo", stdin=True, headers=node.headers,
                ssl=node.ssl) as process:
            process.stdin.write(b"attached\n")
            assert await process.stdout.readexactly(9) == b"attached\n"
        assert [s.subresource for s in node.sessions] == ["exec", "attach"]

    _on_asyncio(body, FakeNode())


def test_refused_transport_forces_the_fallback() -> None:
    async def body(node: FakeNode) -> None:
        node.faults = Faults(refuse_transport="websocket")
        done = await _run(node, "echo", ["0"], input=b"ab")
        assert done.stdout == b"ba"
        node.set_faults("echo", Faults(refuse_transport="spdy"))
        await _run(node, "echo", ["0"], transport="websocket")
        with pytest.raises(kstream.UpgradeRejectedError):
            await _run(node, "echo", ["0"], transport="spdy")
        assert [s.transport for s in node.sessions] == ["spdy", "websocket"]

    _on_asyncio(body, _node())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_close_after_bytes_each_way(transport: str) -> None:
    async def body(node: FakeNode) -> None:
        node.set_faults("big", Faults(close_after_bytes_out=4000))
        with pytest.raises(kstream.asyncio.ConnectionLostError):
            await _run(node, "big", ["x"], transport=transport)
        assert node.sessions[-1].bytes_to_client == 4000
        node.set_faults("echo", Faults(close_after_bytes_in=2000))
        with pytest.raises(kstream.asyncio.ConnectionLostError):
            await _run(node, "echo", ["x"], input=b"i" * 100_000, transport=transport)
        assert node.sessions[-1].bytes_from_client == 2000
        node.set_faults("echo", Faults(close_after_bytes_out=0))
        with pytest.raises((kstream.asyncio.ConnectionLostError, kstream.UpgradeRejectedError,
                            OSError)):
            await _run(node, "echo", ["x"], transport=transport, fallback=False)

    _on_asyncio(body, _node())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stalled_output_and_delayed_upgrade_hit_the_timeouts(transport: str) -> None:
    async def body(node: FakeNode) -> None:
        node.set_faults("big", Faults(stall_output_after=1000))
        async with await kstream.asyncio.open_exec(
                node.server, "default", "big", ["x"], headers=node.headers, ssl=node.ssl,
                transport=transport) as process:
            assert len(await process.stdout.readexactly(1000)) == 1000
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(process.stdout.read(1), 0.5)
        node.set_faults("echo", Faults(upgrade_delay=5))
        with pytest.raises(TimeoutError):
            await _run(node, "echo", ["x"], transport=transport, connect_timeout=0.3)

    _on_asyncio(body, _node())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unanswered_pings_end_in_a_ping_timeout(transport: str) -> None:
    async def body(node: FakeNode) -> None:
        node.set_faults("sleeper", Faults(answer_pings=False))
        with pytest.raises(kstream.asyncio.PingTimeoutError):
            await _run(node, "sleeper", ["x"], transport=transport, ping_interval=0.1,
                       pong_timeout=0.5)
        # Answered: the same heartbeat keeps a session going.
        node.set_faults("echo", Faults())
        done = await _run(node, "echo", ["0"], input=b"ok", transport=transport,
                          ping_interval=0.05, pong_timeout=0.5)
        assert done.stdout == b"ko"

    _on_asyncio(body, _node())


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("document", [b"{not json", b'{"status":"Weird"}', b"",
                                      b'{"status":"Failure","reason":"NonZeroExitCode"}'])
def test_raw_status_documents(transport: str, document: bytes) -> None:
    async def body(node: FakeNode) -> None:
        node.set_faults("echo", Faults(status=document))
        if document == b"":
            # Nothing on the error channel is success, as in client-go (v1-v3 servers
            # write nothing for success): the handler's exit code 3 is lost.
            assert (await _run(node, "echo", ["3"], transport=transport)).returncode == 0
            return
        with pytest.raises(RemoteProtocolError):
            await _run(node, "echo", ["3"], transport=transport)

    _on_asyncio(body, _node())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_chosen_status_and_message_sizes(transport: str) -> None:
    async def body(node: FakeNode) -> None:
        node.set_faults("echo", Faults(status=Status.exit_code(42, ["x"])))
        done = await _run(node, "echo", ["3"], transport=transport)
        assert done.returncode == 42
        assert node.sessions[-1].exit_code == 3  # what the handler returned
        node.set_faults("big", Faults(message_size=300_000))
        done = await _run(node, "big", ["x"], transport=transport)
        assert (done.returncode, done.stdout) == (5, b"m" * (1 << 20))
        node.set_faults("big", Faults(message_size=1))
        async with await kstream.asyncio.open_exec(
                node.server, "default", "big", ["x"], headers=node.headers, ssl=node.ssl,
                transport=transport) as process:
            assert await process.stdout.readexactly(10) == b"m" * 10

    _on_asyncio(body, _node())


def test_faults_are_checked() -> None:
    with pytest.raises(ValueError, match="message_size"):
        Faults(message_size=0)
    with pytest.raises(ValueError, match="close_after_bytes_in"):
        Faults(close_after_bytes_in=-1)
    with pytest.raises(ValueError, match="refuse_transport"):
        Faults(refuse_transport="pigeon")  # type: ignore[arg-type]


def test_pong_filter_drops_only_pongs_in_any_split() -> None:
    head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    data = b"\x82\x02\x01a"
    pong = b"\x8a\x03xyz"
    big = b"\x82\x7e\x01\x00" + b"b" * 256
    stream = head + data + pong + big + pong
    expected = head + data + big
    for size in (1, 2, 3, 7, len(stream)):
        pongs = PongFilter("websocket")
        out = b"".join(pongs.feed(stream[i:i + size]) for i in range(0, len(stream), size))
        assert out == expected
    spdy_ping = b"\x80\x03\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01"
    spdy_data = b"\x00\x00\x00\x01\x00\x00\x00\x02hi"
    stream = head + spdy_data + spdy_ping + spdy_data
    for size in (1, 5, len(stream)):
        pongs = PongFilter("spdy")
        out = b"".join(pongs.feed(stream[i:i + size]) for i in range(0, len(stream), size))
        assert out == head + spdy_data + spdy_data
    refused = b"HTTP/1.1 400 Bad Request\r\n\r\n\x8a\x00"
    assert PongFilter("websocket").feed(refused) == refused


def test_trio_client_against_the_node() -> None:
    async def main() -> None:
        node = _node()
        node.set_faults("big", Faults(close_after_bytes_out=10_000))
        async with node:
            done = await kstream.trio.run(node.server, "default", "echo", ["0"],
                                          input=b"trio", headers=node.headers, ssl=node.ssl)
            assert done.stdout == b"oirt"
            with pytest.raises(kstream.trio.ConnectionLostError):
                await kstream.trio.run(node.server, "default", "big", ["x"],
                                       headers=node.headers, ssl=node.ssl)
        assert [s.pod for s in node.sessions] == ["echo", "big"]

    trio.run(main)


def test_in_thread_plain_http_and_pods_added_while_running() -> None:
    with FakeNode(tls=False, token="t0ken").in_thread() as node:
        assert node.ssl is None and node.certificate is None and node.ca_file is None
        assert node.server.endswith("/kstream/t0ken")
        node.add_pod("late", handler=_echo)

        async def call() -> kstream.asyncio.CompletedExec:
            return await kstream.asyncio.run(node.server, "default", "late", ["4"],
                                             input=b"xy", headers=node.headers)

        done = asyncio.run(call())
        assert (done.returncode, done.stdout) == (4, b"yx")
    with pytest.raises(RuntimeError, match="not running"):
        node.server  # noqa: B018


def test_pods_declare_named_ports_before_and_while_running() -> None:
    def ports(node: FakeNode, pod: str) -> Any:
        url = urllib.parse.urlsplit(node.server)
        connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
        try:
            connection.request("GET", f"{url.path}/api/v1/namespaces/default/pods/{pod}")
            document = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        return document["spec"]["containers"][0].get("ports")

    node = FakeNode(tls=False)
    node.add_pod("early", ports={"http": 8080})
    with node.in_thread():
        node.add_pod("late", ports={"grpc": 50051, "metrics": 9090})
        node.add_pod("none")
        # A declaration the apiserver would refuse is refused at once.
        with pytest.raises(ValueError, match="must be between 1 and 65535"):
            node.add_pod("bad", ports={"http": 0})
        with pytest.raises(ValueError, match="must not begin or end with a hyphen"):
            node.add_pod("bad", ports={"http-": 80})
        assert ports(node, "early") == [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        assert ports(node, "late") == [
            {"name": "grpc", "containerPort": 50051, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
        assert ports(node, "none") is None


def test_the_kubeconfig_works_for_kubectl(tmp_path: Any) -> None:
    kubectl = subprocess.run(["sh", "-c", "command -v kubectl"], capture_output=True,
                             text=True, check=False).stdout.strip()
    assert kubectl, "kubectl is required"
    with FakeNode().in_thread() as node:
        node.add_pod("hello", handler=_echo)
        result = subprocess.run(
            [kubectl, "--kubeconfig", node.kubeconfig, "exec", "-i", "hello", "--", "9"],
            input=b"olleh", capture_output=True, timeout=60, check=False,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert (result.returncode, result.stdout) == (9, b"hello"), result.stderr


def test_the_plugin_module_imports_no_kstream() -> None:
    code = ("import sys, kstream_pytest\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kstream'))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_the_kit_package_loads_the_engine_on_first_use() -> None:
    code = ("import sys, kstream.testing\n"
            "print('kstream._app.serve' in sys.modules)\n"
            "from kstream.testing import FakeNode\n"
            "print('kstream._app.serve' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["False", "True"]
    import kstream.testing

    assert set(kstream.testing.__all__) <= set(dir(kstream.testing))
    with pytest.raises(AttributeError):
        kstream.testing.Nothing  # type: ignore[attr-defined]  # noqa: B018


async def _sizes(exec_: PodExec) -> int:
    """Reports each terminal size; stderr joins stdout on a terminal."""
    await exec_.stderr.write(b"tty\n" if exec_.tty else b"no tty\n")
    async for size in exec_.terminal_sizes:
        await exec_.stdout.write(f"{size.width}x{size.height}\n".encode())
        if size.width == 1:
            return 0
    return 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_handlers_see_terminal_sizes_and_one_output_stream(transport: str) -> None:
    async def body(node: FakeNode) -> None:
        async with await kstream.asyncio.open_exec(
                node.server, "default", "sizes", ["x"], tty=True, stdin=True,
                headers=node.headers, ssl=node.ssl, transport=transport) as process:
            await process.resize(80, 24)
            assert await process.stdout.readexactly(10) == b"tty\n80x24\n"
            await process.resize(1, 1)
            assert await process.stdout.read() == b"1x1\n"
            assert await process.wait() == 0
        assert node.sessions[-1].tty

    node = FakeNode()
    node.add_pod("sizes", handler=_sizes)
    _on_asyncio(body, node)


def test_attach_to_a_handler_pod_joins_its_main_process_with_its_faults() -> None:
    async def body(node: FakeNode) -> None:
        async with await kstream.asyncio.open_attach(
                node.server, "default", "both", stdin=True, headers=node.headers,
                ssl=node.ssl) as process:
            process.stdin.write(b"0123456789")
            assert await process.stdout.readexactly(4) == b"0123"
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(process.stdout.read(1), 0.3)
        record = node.sessions[-1]
        assert (record.subresource, record.argv, record.stdout_bytes) == ("attach", (), 4)

    node = FakeNode()
    node.add_pod("both", command=["cat"], handler=_echo,
                 faults=Faults(stall_output_after=4))
    _on_asyncio(body, node)


def test_port_forward_sessions_are_recorded_and_the_tunnel_can_be_refused() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    async def forward(node: FakeNode, port: int, transport: str) -> str:
        session = await kstream.asyncio.open_port_forward(
            node.server, "default", "demo", transport=transport, headers=node.headers,
            ssl=node.ssl)
        async with session:
            reader, writer = await session.open_connection(port)
            writer.write(b"ping")
            await writer.drain()
            assert await reader.readexactly(4) == b"ping"
            writer.close()
            return str(session.transport)

    async def body(node: FakeNode) -> None:
        pod = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = pod.sockets[0].getsockname()[1]
        try:
            for transport in ("tunnel", "spdy", "websocket"):
                assert await forward(node, port, transport) == transport
            node.faults = Faults(refuse_transport="tunnel")
            with pytest.raises(kstream.UpgradeRejectedError) as info:
                await forward(node, port, "tunnel")
            assert info.value.status_code == 400
            assert await forward(node, port, "auto") == "spdy"  # the fallback
            assert await forward(node, port, "websocket") == "websocket"
        finally:
            pod.close()
            await pod.wait_closed()
        records = node.sessions
        assert [(r.subresource, r.transport, r.protocol) for r in records] == [
            ("portforward", "tunnel", "SPDY/3.1+portforward.k8s.io"),
            ("portforward", "spdy", "portforward.k8s.io"),
            ("portforward", "websocket", "v4.channel.k8s.io"),
            ("portforward", "spdy", "portforward.k8s.io"),
            ("portforward", "websocket", "v4.channel.k8s.io"),
        ]
        for _ in range(500):  # the node marks a session finished once its client left
            if all(r.finished for r in records):
                break
            await asyncio.sleep(0.01)
        assert all(r.finished and r.bytes_from_client and r.bytes_to_client
                   for r in records), records
        assert all(r.pod == "demo" and r.argv == () for r in records)
        assert any("portforward in default/demo: refused tunnel" in line for line in log)

    log: list[str] = []
    _on_asyncio(body, FakeNode(log=log.append))
