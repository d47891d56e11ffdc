"""kubectl against ``kstream serve`` beyond exec: get, logs, debug, and clear refusals.

Real kubectl 1.33 and 1.27 (missing binaries fail the tests) against serve's engine (a
``FakeNode``, over TLS on 127.0.0.1, with its kubeconfig), plus the pieces in memory: the
Table and pod documents, the pod log, the streamed response.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kstream import LocalProtocolError, RequestReceived, ServerExecSession
from kstream._app.kubeapi import _go_duration, human_duration, wants_table
from kstream._app.podlog import PodLog
from kstream.testing import FakeNode

VERSIONS = ("1.33", "1.27")
#: A main process that greets, writes to stderr, then echoes stdin lines until EOF.
CHAT = ("sh", "-c", "echo hello; echo oops >&2; while read l; do echo got $l; done")
TIMEOUT = 30


def kubectl_path(version: str) -> Path:
    found = subprocess.run(["sh", "-c", 'readlink -f "$(command -v kubectl)"'],
                           capture_output=True, text=True, check=False).stdout.strip()
    path = Path(found).parent / f"kubectl.{version}"
    assert path.exists(), f"kubectl {version} is needed for these tests: {path}"
    return path


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The kubeconfig of a node (serve's engine) with ``demo`` and one chat pod per kubectl."""
    with FakeNode().in_thread() as node:
        node.add_pod("demo")
        for version in VERSIONS:
            node.add_pod(f"chat-{version[2:]}", command=CHAT)
        # kubectl's home (its cache) next to a copy of the kubeconfig.
        home = tmp_path_factory.mktemp("kubectl-home")
        config = home / "kubeconfig"
        config.write_text(Path(node.kubeconfig).read_text())
        yield config


def kubectl(version: str, config: Path, *args: str, input: bytes | None = None,
            ) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
    env.update(KUBECONFIG=str(config), HOME=str(config.parent))
    return subprocess.run([str(kubectl_path(version)), *args], env=env, capture_output=True,
                          input=input.decode() if input is not None else None, text=True,
                          timeout=TIMEOUT, check=False)


# --------------------------------------------------------------------------- kubectl get


@pytest.mark.parametrize("version", VERSIONS)
def test_get_pods_shows_ready_and_status(version: str, kubeconfig: Path) -> None:
    result = kubectl(version, kubeconfig, "get", "pods")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    demo = next(row.split() for row in rows if row.startswith("demo "))
    assert demo[:4] == ["demo", "1/1", "Running", "0"]


@pytest.mark.parametrize("version", VERSIONS)
def test_get_pod_wide_and_all_namespaces(version: str, kubeconfig: Path) -> None:
    wide = kubectl(version, kubeconfig, "get", "pod", "demo", "-o", "wide")
    assert wide.returncode == 0, wide.stderr
    assert "127.0.0.1" in wide.stdout and "kstream" in wide.stdout
    every = kubectl(version, kubeconfig, "get", "pods", "-A")
    assert every.stdout.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == ["default", "demo"] for line in every.stdout.splitlines())


@pytest.mark.parametrize("version", VERSIONS)
def test_the_pod_object_has_the_defaulted_fields(version: str, kubeconfig: Path) -> None:
    result = kubectl(version, kubeconfig, "get", "pod", "demo", "-o", "json")
    pod = json.loads(result.stdout)
    assert pod["spec"]["securityContext"] == {}
    (container,) = pod["spec"]["containers"]
    assert container["terminationMessagePolicy"] == "File"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert pod["status"]["qosClass"] == "BestEffort"
    assert {c["type"] for c in pod["status"]["conditions"]} >= {"Ready", "PodScheduled"}


# --------------------------------------------------------------------------- kubectl logs


@pytest.mark.parametrize("version", VERSIONS)
def test_logs_show_the_main_process_output(version: str, kubeconfig: Path) -> None:
    pod = f"chat-{version[2:]}"
    # The main process starts at the first attach; its output is kept for logs.
    attached = kubectl(version, kubeconfig, "attach", "-i", pod, input=b"hi\n")
    assert "got hi" in attached.stdout, attached.stderr
    logs = kubectl(version, kubeconfig, "logs", pod)
    assert logs.returncode == 0, logs.stderr
    # stdout and stderr interleaved as read (two pipes: their relative order may vary).
    lines = logs.stdout.splitlines()
    assert sorted(lines) == ["got hi", "hello", "oops"] and lines.index("hello") < lines.index(
        "got hi")
    tail = kubectl(version, kubeconfig, "logs", pod, "--tail=1")
    assert tail.stdout == lines[-1] + "\n"
    limited = kubectl(version, kubeconfig, "logs", pod, "--limit-bytes=3")
    assert limited.stdout == logs.stdout[:3]


def kubectl_process(version: str, config: Path, *args: str) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KUBE")}
    env.update(KUBECONFIG=str(config), HOME=str(config.parent))
    return subprocess.Popen([str(kubectl_path(version)), *args], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


@pytest.mark.parametrize("version", VERSIONS)
def test_logs_follow_until_the_main_process_ends(version: str, kubeconfig: Path) -> None:
    pod = f"chat-{version[2:]}"
    attach = kubectl_process(version, kubeconfig, "attach", "-i", pod)
    follower: subprocess.Popen[str] | None = None
    # Whatever hangs is killed: the test then fails on what it read.
    def kill_all() -> None:
        for process in (attach, follower):
            if process is not None:
                process.kill()

    watchdog = threading.Timer(TIMEOUT, kill_all)
    watchdog.start()
    try:
        assert attach.stdout is not None and attach.stdin is not None
        assert attach.stdout.readline() == "hello\n"  # the main process runs
        follower = kubectl_process(version, kubeconfig, "logs", "-f", pod)
        assert follower.stdout is not None
        assert follower.stdout.readline() == "hello\n"  # the follower is connected
        # Closing the attached stdin ends the main process (stdinOnce): the follow ends.
        attach.stdin.write("more\n")
        attach.stdin.close()
        rest = follower.stdout.read()
        assert follower.wait() == 0
        assert "got more" in rest.splitlines()
        assert attach.wait() == 0
    finally:
        watchdog.cancel()
        for process in (attach, follower):
            if process is None:
                continue
            if process.poll() is None:
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_unsupported_log_options_are_refused(version: str, kubeconfig: Path) -> None:
    result = kubectl(version, kubeconfig, "logs", "demo", "--timestamps")
    assert result.returncode == 1
    assert "kstream serve does not keep the times of log lines" in result.stderr
    other = kubectl(version, kubeconfig, "logs", "demo", "-c", "sidecar")
    assert "container sidecar is not valid for pod demo" in other.stderr


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("version", VERSIONS)
def test_debug_is_refused_without_crashing_kubectl(version: str, kubeconfig: Path) -> None:
    result = kubectl(version, kubeconfig, "debug", "demo", "--image=busybox")
    assert result.returncode == 1
    assert "panic" not in result.stderr and "goroutine" not in result.stderr
    assert "kstream serve does not add ephemeral containers" in result.stderr


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("args", "says"), [
    (("get", "nodes"), "kstream serve does not serve nodes"),
    (("get", "svc"), "kstream serve does not serve services"),
    (("delete", "pod", "demo"), "kstream serve does not change or delete pods"),
])
def test_what_serve_does_not_do_is_refused_clearly(version: str, kubeconfig: Path,
                                                   args: tuple[str, ...], says: str) -> None:
    result = kubectl(version, kubeconfig, *args)
    assert result.returncode == 1
    assert says in result.stderr, result.stderr
    assert "pods only" in result.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_watch_reports_no_change_until_its_timeout(version: str, kubeconfig: Path) -> None:
    result = kubectl(version, kubeconfig, "get", "pods", "-w", "--request-timeout=2s")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["NAME", "READY", "STATUS"]


@pytest.mark.parametrize(("text", "seconds"), [
    ("3s", 3.0), ("1m30s", 90.0), ("1h", 3600.0), ("250ms", 0.25), ("1.5s", 1.5),
    ("", None), ("3", None), ("s", None), ("3x", None),
])
def test_go_durations(text: str, seconds: float | None) -> None:
    assert _go_duration(text) == seconds


@pytest.mark.parametrize("version", VERSIONS)
def test_describe_and_namespaces_work(version: str, kubeconfig: Path) -> None:
    described = kubectl(version, kubeconfig, "describe", "pod", "demo")
    assert described.returncode == 0, described.stderr
    assert "Status:" in described.stdout and "Running" in described.stdout
    namespaces = kubectl(version, kubeconfig, "get", "ns")
    assert "default" in namespaces.stdout


# --------------------------------------------------------------------------- in memory


def test_wants_table_reads_kubectl_accept_headers() -> None:
    kubectl_accept = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                      "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
    assert wants_table([("accept", kubectl_accept)]) == "v1"
    assert wants_table([("accept", "application/json;as=Table;v=v1beta1;g=meta.k8s.io")]) \
        == "v1beta1"
    assert wants_table([("accept", "application/json")]) is None
    assert wants_table([("accept", "application/json, application/json;as=Table;v=v1;"
                                   "g=meta.k8s.io")]) is None
    assert wants_table([]) is None


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
    (9 * 3600, "9h"), (3 * 86400, "3d"), (400 * 86400, "400d"), (3 * 365 * 86400, "3y0d"),
])
def test_human_duration_as_kubectl(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_pod_log_is_bounded_and_tails() -> None:
    log = PodLog(limit=10)
    log.append(b"one\ntwo\n")
    assert log.tail(1) == b"two\n" and log.tail(5) == b"one\ntwo\n" and log.tail(0) == b""
    assert log.tail(None, 3) == b"one"
    log.append(b"three\n")
    assert log.read(0) == (b"two\nthree\n", 14)  # the oldest bytes went
    assert log.read(12) == (b"e\n", 14)
    log.append(b"x" * 100)
    assert len(log.read(0)[0]) == 10


def test_streamed_response_has_no_length_and_closes() -> None:
    session = ServerExecSession()
    (request,) = session.receive_data(b"GET /log HTTP/1.1\r\nHost: h\r\n\r\n")
    assert isinstance(request, RequestReceived)
    with pytest.raises(LocalProtocolError):
        session.send_body(b"x")
    with pytest.raises(LocalProtocolError):
        session.respond_streaming(200, [("X-Bad", "a\r\nb")])
    session.respond_streaming(200, [("Content-Type", "text/plain"), ("Content-Length", "9")])
    session.send_body(b"hello ")
    session.send_body(b"world")
    assert session.data_to_send() == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                      b"Connection: close\r\n\r\nhello world")
    with pytest.raises(LocalProtocolError):
        session.respond(200)


@pytest.mark.parametrize(("status", "headers"), [
    (101, []), (600, []), (200, [("", "x")]), (200, [("a:b", "x")]),
    (200, [("X-Text", "caf\u00e9 \u2603")]), (200, [("X-Nul", "a\0b")]),
])
def test_streamed_response_refuses_what_it_cannot_write(
        status: int, headers: list[tuple[str, str]]) -> None:
    session = ServerExecSession()
    session.receive_data(b"GET /log HTTP/1.1\r\nHost: h\r\n\r\n")
    with pytest.raises(LocalProtocolError):
        session.respond_streaming(status, headers)
    assert not session.answered


async def _stream_three_parts(request: Any) -> None:
    body = await request.respond_streaming(200, [("Content-Type", "text/plain")])
    for part in (b"one ", b"two ", b"three"):
        body.write(part)
        await body.drain()
    body.write(b"")
    await body.aclose()
    assert body.closed
    body.write(b"dropped")  # after the end: dropped, no error


STREAMED = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
            b"one two three")


def test_streamed_response_on_asyncio() -> None:
    import kstream.asyncio

    async def main() -> bytes:
        async with await kstream.asyncio.start_server(_stream_three_parts) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /log HTTP/1.1\r\nHost: h\r\n\r\n")
            data = await reader.read()
            writer.close()
            await writer.wait_closed()
            return data

    assert asyncio.run(asyncio.wait_for(main(), TIMEOUT)) == STREAMED


def test_streamed_response_on_trio() -> None:
    import trio
    import trio.testing

    import kstream.trio

    async def main() -> bytes:
        client, server = trio.testing.memory_stream_pair()
        received = b""
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(kstream.trio.serve_stream, _stream_three_parts, server)
                await client.send_all(b"GET /log HTTP/1.1\r\nHost: h\r\n\r\n")
                while chunk := await client.receive_some():
                    received += chunk
                await client.aclose()
        return received

    assert trio.run(main) == STREAMED
