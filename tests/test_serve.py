"""``kstream serve``: routing, auth, pods, exec/attach sessions, load, TLS, shutdown."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kstream import KstreamError, UpgradeRejectedError
from kstream._app.kubeconfig import load_config
from kstream._app.sandbox import PIPE_CAPACITY, PIPE_READ_CHUNK, SandboxProcess, SpawnError
from kstream._runtime.common import RemoteCommandError
from kstream.asyncio import RemoteProcess, open_attach, open_exec
from kstream.testing import FakeNode

#: The engine's line per session (what ``kstream serve`` writes on stderr).
SESSION_LOG: list[str] = []


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """One plain-HTTP node for the module, with the default pod and two declared ones."""
    node = FakeNode(tls=False, token="s3cret", log=SESSION_LOG.append)
    node.add_pod("demo")
    node.add_pod("shared", command=["cat"])
    node.add_pod("web", namespace="apps", command=["cat"])
    with node.in_thread():
        yield node


def _url(server: FakeNode) -> str:
    """The node's URL without the token path of its kubeconfig."""
    parts = urlsplit(server.server)
    return f"{parts.scheme}://{parts.netloc}"


def _request(server: FakeNode, path: str, *, token: str | None = "s3cret",
             method: str = "GET") -> tuple[int, dict[str, Any]]:
    host, port = urlsplit(server.server).netloc.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.getheader("Content-Type") == "application/json"
    document: dict[str, Any] = json.loads(body)
    return response.status, document


def _connect(server: FakeNode) -> tuple[str, tuple[tuple[str, str], ...]]:
    connection = load_config(str(server.kubeconfig), environ={})
    return connection.server, connection.headers


# --------------------------------------------------------------------------- HTTP


def test_discovery_documents(server: FakeNode) -> None:
    assert _request(server, "/api") == (200, {"kind": "APIVersions", "versions": ["v1"],
                                             "serverAddressByClientCIDRs": []})
    assert _request(server, "/apis")[1]["kind"] == "APIGroupList"
    status, resources = _request(server, "/api/v1")
    assert status == 200
    names = {r["name"] for r in resources["resources"]}
    assert {"pods", "pods/exec", "pods/attach"} <= names
    assert _request(server, "/version")[1]["major"] == "1"


def test_pod_is_running_with_container_main(server: FakeNode) -> None:
    status, pod = _request(server, "/api/v1/namespaces/default/pods/shared")
    assert status == 200
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["name"] == "shared"
    assert pod["status"]["phase"] == "Running"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["main"]
    assert pod["spec"]["containers"][0]["command"] == ["cat"]
    status, listing = _request(server, "/api/v1/namespaces/apps/pods")
    assert status == 200
    assert [item["metadata"]["name"] for item in listing["items"]] == ["web"]


def test_unknown_pod_is_404_like_the_apiserver(server: FakeNode) -> None:
    status, body = _request(server, "/api/v1/namespaces/default/pods/ghost")
    assert status == 404
    assert body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "ghost" not found', "reason": "NotFound",
        "details": {"name": "ghost", "kind": "pods"}, "code": 404,
    }
    # A pod of another namespace is not found in this one.
    assert _request(server, "/api/v1/namespaces/default/pods/web")[0] == 404
    assert _request(server, "/api/v1/nothing")[0] == 404


@pytest.mark.parametrize("token", [None, "wrong", "s3cret-but-longer", ""])
def test_requests_without_the_token_are_401(server: FakeNode, token: str | None) -> None:
    status, body = _request(server, "/api/v1/namespaces/default/pods/demo", token=token)
    assert status == 401
    assert body["reason"] == "Unauthorized"
    assert body["code"] == 401


def test_token_in_path_prefix(server: FakeNode) -> None:
    # What the written kubeconfig uses over plain HTTP (kubectl sends no token there).
    config = json.loads(Path(server.kubeconfig).read_text())
    config_server = config["clusters"][0]["cluster"]["server"]
    assert config_server == f"{_url(server)}/kstream/s3cret"
    status, pod = _request(server, "/kstream/s3cret/api/v1/namespaces/default/pods/demo",
                           token=None)
    assert (status, pod["metadata"]["name"]) == (200, "demo")
    assert _request(server, "/kstream/nope/api/v1/namespaces/default/pods/demo",
                    token=None)[0] == 401


def test_exec_without_upgrade_is_400(server: FakeNode) -> None:
    status, body = _request(server, "/api/v1/namespaces/default/pods/demo/exec?command=ls",
                            method="POST")
    assert status == 400
    assert body["message"] == "Upgrade request required"


# --------------------------------------------------------------------------- sessions


def test_upgrade_errors(server: FakeNode) -> None:
    url, headers = _connect(server)

    async def scenario() -> None:
        with pytest.raises(UpgradeRejectedError) as missing:
            await open_exec(url, "default", "ghost", ["true"], headers=headers)
        assert missing.value.status_code == 404
        assert missing.value.status is not None
        assert missing.value.status.message == 'pods "ghost" not found'
        with pytest.raises(UpgradeRejectedError) as denied:
            await open_exec(_url(server), "default", "demo", ["true"],
                            headers=(("Authorization", "Bearer nope"),))
        assert denied.value.status_code == 401
        with pytest.raises(UpgradeRejectedError) as container:
            await open_exec(url, "default", "demo", ["true"], headers=headers,
                            container="sidecar")
        assert container.value.status_code == 400

    asyncio.run(scenario())


def test_exec_streams_exit_code_and_missing_binary(server: FakeNode) -> None:
    url, headers = _connect(server)

    async def scenario() -> None:
        async with await open_exec(url, "apps", "web", ["sh", "-c", "printf o; printf e >&2;"
                                                        " exit 42"], headers=headers) as process:
            out, err = await asyncio.gather(process.stdout.read(), process.stderr.read())
            assert (out, err, await process.wait()) == (b"o", b"e", 42)
        async with await open_exec(url, "default", "demo", ["kstream-missing"],
                                   headers=headers) as process:
            with pytest.raises(RemoteCommandError) as failure:
                await process.wait()
        assert "executable file not found in $PATH" in failure.value.message
        assert failure.value.code == 500

    asyncio.run(scenario())


@pytest.mark.parametrize("tty", [False, True])
def test_nul_in_argv_is_a_kubelet_style_failure_and_the_token_stays_out_of_the_log(
        server: FakeNode, tty: bool, caplog: pytest.LogCaptureFixture) -> None:
    # A NUL byte cannot reach execve: the standard library raises ValueError. That used
    # to escape the handler, and the handler's failure was logged with the request
    # target, which over plain HTTP holds the token.
    url, headers = _connect(server)
    start = len(SESSION_LOG)

    async def scenario() -> None:
        async with await open_exec(url, "default", "demo", ["ca\x00t"], tty=tty,
                                   stdin=tty, headers=headers) as process:
            with pytest.raises(RemoteCommandError) as failure:
                await process.wait()
        assert failure.value.message == (
            "Internal error occurred: error executing command in container: "
            "OCI runtime exec failed: exec failed: unable to start container process: "
            'exec: "ca\x00t": invalid argument: unknown')
        assert failure.value.code == 500

    asyncio.run(scenario())
    log = "\n".join([*SESSION_LOG[start:], caplog.text])
    assert server.token not in log
    assert [record for record in caplog.records if record.exc_info] == []


def test_session_log_cuts_a_long_argv(server: FakeNode) -> None:
    url, headers = _connect(server)
    start = len(SESSION_LOG)
    argv = ["true", *(["x" * 1000] * 40)]

    async def scenario() -> None:
        async with await open_exec(url, "default", "demo", argv, headers=headers) as process:
            assert await process.wait() == 0

    asyncio.run(scenario())
    (line,) = SESSION_LOG[start:]
    assert len(line) < 400
    assert "(41 arguments, " in line


def test_failed_tty_spawns_leak_no_terminal(tmp_path: Path) -> None:
    # Each failed spawn used to leave its pseudo-terminal master open.
    # Only terminals are counted: a fake node of another test may run in this process,
    # on its own thread, and open or close sockets and pipes meanwhile.
    def terminals() -> int:
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{fd}")
                count += target == "/dev/ptmx" or target.startswith("/dev/pts/")
        return count

    async def scenario() -> None:
        before = terminals()
        for _ in range(50):
            with pytest.raises(SpawnError):
                await SandboxProcess.start(["ca\x00t"], cwd=str(tmp_path), tty=True,
                                           stdin=True, stdout=True, stderr=False)
        assert terminals() == before

    asyncio.run(scenario())


def test_tty_exec_applies_resize(server: FakeNode) -> None:
    url, headers = _connect(server)

    async def scenario() -> None:
        async with await open_exec(url, "default", "demo",
                                   ["sh", "-c", "read line; stty size; exit 5"],
                                   headers=headers, stdin=True, tty=True) as process:
            await process.resize(100, 40)
            process.stdin.write(b"go\n")
            await process.stdin.drain()
            output = await process.stdout.read()
            assert b"40 100" in output
            assert await process.wait() == 5

    asyncio.run(asyncio.wait_for(scenario(), 60))


async def _start_sleeper(url: str, headers: tuple[tuple[str, str], ...],
                         context: ssl.SSLContext | None = None
                         ) -> tuple[RemoteProcess, int, str]:
    process = await open_exec(url, "default", "demo",
                              ["sh", "-c", "echo $$; pwd; exec sleep 600"], headers=headers,
                              ssl=context)
    lines = b""
    while lines.count(b"\n") < 2:
        chunk = await process.stdout.read(100)
        assert chunk
        lines += chunk
    pid, workdir = lines.decode().split()
    return process, int(pid), workdir


async def _wait_gone(pid: int) -> bool:
    # The kill is asynchronous to the client: poll the process table, bounded.
    for _ in range(400):
        if _gone(pid):
            return True
        await asyncio.sleep(0.025)
    return False


def test_client_leaving_kills_its_process(server: FakeNode) -> None:
    url, headers = _connect(server)

    async def scenario() -> None:
        process, pid, _ = await _start_sleeper(url, headers)
        assert not _gone(pid)
        await process.aclose()
        assert await _wait_gone(pid)

    asyncio.run(scenario())


def test_attach_sessions_share_the_main_process(server: FakeNode) -> None:
    url, headers = _connect(server)

    async def read_exactly(stream: Any, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = await stream.read(size - len(data))
            assert chunk, "stream ended early"
            data += chunk
        return data

    async def scenario() -> None:
        first = await open_attach(url, "default", "shared", headers=headers, stdin=True)
        second = await open_attach(url, "default", "shared", headers=headers, stdin=True)
        # Both are attached once the server answered the upgrade; give the second
        # session's registration a round trip through its own stdin to be sure.
        second.stdin.write(b"from second\n")
        await second.stdin.drain()
        assert await read_exactly(second.stdout, 12) == b"from second\n"
        first.stdin.write(b"from first\n")
        await first.stdin.drain()
        assert await read_exactly(first.stdout, 23) == b"from second\nfrom first\n"[:23]
        assert await read_exactly(second.stdout, 11) == b"from first\n"
        # Closing one session's stdin closes the main process's (stdinOnce): both end.
        first.stdin.close()
        assert await first.wait() == 0
        assert await second.wait() == 0
        await first.aclose()
        await second.aclose()

    asyncio.run(asyncio.wait_for(scenario(), 60))


@pytest.mark.timeout(120)
def test_200_concurrent_execs_of_1_mib(server: FakeNode) -> None:
    # Half over WebSocket v5, half over SPDY, all at once, each 1 MiB through `cat`.
    url, headers = _connect(server)
    payloads = [os.urandom(1 << 20) for _ in range(200)]
    before = len(SESSION_LOG)

    async def one(index: int, payload: bytes) -> bytes:
        transport = "websocket" if index % 2 else "spdy"
        async with await open_exec(url, "default", "demo", ["cat"], headers=headers,
                                   stdin=True, stderr=False, transport=transport) as process:

            async def feed() -> None:
                process.stdin.write(payload)
                await process.stdin.drain()
                process.stdin.close()

            _, echoed = await asyncio.gather(feed(), process.stdout.read())
            assert await process.wait() == 0
            return echoed

    async def scenario() -> list[bytes]:
        return await asyncio.gather(*(one(i, p) for i, p in enumerate(payloads)))

    results = asyncio.run(scenario())
    assert all(result == payload for result, payload in zip(results, payloads, strict=True))
    sessions = SESSION_LOG[before:]
    assert len(sessions) == 200
    assert sum("over websocket/v5" in line for line in sessions) == 100
    assert sum("over spdy/v4" in line for line in sessions) == 100


# --------------------------------------------------------------------------- output pipes


def _dd(size: int) -> list[str]:
    return ["dd", "if=/dev/zero", "bs=65536", f"count={size // 65536}", "status=none"]


async def _read_all(process: SandboxProcess) -> list[bytes]:
    chunks = []
    while chunk := await process.read_stdout():
        chunks.append(chunk)
    return chunks


def test_output_pipe_reads_everything_in_bounded_chunks(tmp_path: Path) -> None:
    size = 8 << 20

    async def scenario() -> tuple[list[bytes], bytes, int]:
        process = await SandboxProcess.start(_dd(size), cwd=str(tmp_path), tty=False,
                                             stdin=False)
        try:
            chunks, error = await asyncio.gather(_read_all(process), process.read_stderr())
            return chunks, error, await process.wait()
        finally:
            process.close()

    chunks, error, code = asyncio.run(scenario())
    assert sum(map(len, chunks)) == size
    assert max(map(len, chunks)) <= PIPE_READ_CHUNK
    assert set(b"".join(chunks)) == {0}
    assert (error, code) == (b"", 0)


def test_a_cancelled_stdin_close_leaves_the_loop_without_errors(tmp_path: Path) -> None:
    # A session ended while closing its process's stdin cancels close_stdin. On CPython
    # 3.11 that must not cancel the pipe's own close future, or the pipe's connection_lost
    # raises InvalidStateError in the loop (logged, and seen by the collector later).
    async def scenario() -> list[dict[str, object]]:
        errors: list[dict[str, object]] = []
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: errors.append(context))
        process = await SandboxProcess.start(["cat"], cwd=str(tmp_path), tty=False,
                                             stdin=True)
        try:
            closing = asyncio.create_task(process.close_stdin())
            await asyncio.sleep(0)  # it now waits for the pipe to close
            closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closing
            assert await asyncio.wait_for(process.wait(), 10) == 0  # cat saw its EOF
            await asyncio.sleep(0.05)
        finally:
            process.close()
        return errors

    assert asyncio.run(scenario()) == []


def test_output_pipe_holds_the_process_back_while_unread(tmp_path: Path) -> None:
    # 4 MiB is far more than the pipe holds: the process cannot finish before it is read.
    size = 16 * PIPE_CAPACITY

    async def scenario() -> tuple[bool, int, int]:
        process = await SandboxProcess.start(_dd(size), cwd=str(tmp_path), tty=False,
                                             stdin=False, stderr=False)
        try:
            try:
                await asyncio.wait_for(process.wait(), 0.5)
                finished_unread = True
            except TimeoutError:
                finished_unread = False
            total = sum(map(len, await _read_all(process)))
            return finished_unread, total, await process.wait()
        finally:
            process.close()

    assert asyncio.run(scenario()) == (False, size, 0)


def test_closing_a_process_ends_a_waiting_read(tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        process = await SandboxProcess.start(["cat"], cwd=str(tmp_path), tty=False,
                                             stdin=True)
        reads = asyncio.gather(process.read_stdout(), process.read_stderr())
        await asyncio.sleep(0)  # one turn of the loop: both reads now wait for output
        process.close()
        out, err = await asyncio.wait_for(reads, 10)
        await process.wait()
        return out, err

    assert asyncio.run(scenario()) == (b"", b"")


# --------------------------------------------------------------------------- TLS, shutdown
# The ``kstream serve`` command itself: its flags, its warnings, its signals.


class ServeCommand:
    """``kstream serve`` as a child process, its kubeconfig in ``directory``."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.kubeconfig = directory / "kubeconfig"
        self._lines: list[str] = []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "kstream", "serve", "--port", "0",
             "--kubeconfig", str(self.kubeconfig), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._process.stdout is not None and self._process.stderr is not None
        threading.Thread(target=self._read_log, args=(self._process.stderr,),
                         daemon=True).start()
        banner = self._process.stdout.readline().decode()
        if "listening on" not in banner:
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"kstream serve did not start: {banner!r} {self.log()}")
        self.url = banner.rsplit(" ", 1)[1].strip()

    def _read_log(self, stream: Any) -> None:
        for raw in stream:
            self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def log(self) -> list[str]:
        """The lines written on stderr so far (read by a thread)."""
        return list(self._lines)

    def config(self) -> dict[str, Any]:
        """The written kubeconfig."""
        document: dict[str, Any] = json.loads(self.kubeconfig.read_text())
        return document

    @property
    def token(self) -> str:
        """The bearer token of the kubeconfig."""
        return str(self.config()["users"][0]["user"]["token"])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the server with ``sig`` (bounded) and return its exit status."""
        process = self._process
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        return process.returncode


@contextmanager
def serve_command(directory: Path, *args: str) -> Iterator[ServeCommand]:
    """Run ``kstream serve`` for the block."""
    running = ServeCommand(directory, *args)
    try:
        yield running
    finally:
        running.stop()


def _certificate_without_an_ip_san(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "dns-only.crt", directory / "dns-only.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    with serve_command(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)) as running:
        assert running.url.startswith("https://")
        config = running.config()["clusters"][0]["cluster"]
        assert config["server"] == running.url
        assert "PRIVATE KEY" not in json.dumps(config)
        connection = load_config(str(running.kubeconfig), environ={})

        async def scenario() -> None:
            async with await open_exec(connection.server, "default", "demo", ["echo", "tls"],
                                       headers=connection.headers,
                                       ssl=connection.ssl_context) as process:
                assert await process.stdout.read() == b"tls\n"
                assert await process.wait() == 0
            with pytest.raises((ssl.SSLError, OSError)):
                await open_exec(connection.server, "default", "demo", ["true"],
                                headers=connection.headers, ssl=ssl.create_default_context())

        asyncio.run(scenario())


def test_tls_is_the_default_with_a_generated_ca(tmp_path: Path) -> None:
    with serve_command(tmp_path) as running:
        assert running.url.startswith("https://127.0.0.1:")
        cluster = running.config()["clusters"][0]["cluster"]
        assert cluster["server"] == running.url  # no token in the URL over TLS
        ca = base64.b64decode(cluster["certificate-authority-data"])
        assert ca.count(b"BEGIN CERTIFICATE") == 1 and b"PRIVATE KEY" not in ca
        connection = load_config(str(running.kubeconfig), environ={})
        assert connection.headers == (("Authorization", f"Bearer {running.token}"),)

        async def scenario() -> None:
            async with await open_exec(connection.server, "default", "demo", ["echo", "tls"],
                                       headers=connection.headers,
                                       ssl=connection.ssl_context) as process:
                assert await process.stdout.read() == b"tls\n"
                assert await process.wait() == 0
            # The CA is this server's own: the system's trust store does not know it.
            with pytest.raises((ssl.SSLError, OSError)):
                await open_exec(connection.server, "default", "demo", ["true"],
                                headers=connection.headers, ssl=ssl.create_default_context())

        asyncio.run(scenario())
        # The CA signs a certificate for the listen address (IP SAN), checked by name too.
        context = ssl.create_default_context(cadata=ca.decode("ascii"))
        host, port = running.url.removeprefix("https://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="localhost"):
            pass


def test_a_certificate_without_an_ip_san_gets_a_warning(
        tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cert, key = _certificate_without_an_ip_san(tmp_path)
    with serve_command(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)) as running:
        # stderr is read by a thread: the line may arrive just after the banner.
        deadline = time.monotonic() + 10
        while not (warnings := [line for line in running.log() if "warning" in line]) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
    assert warnings == [
        f"kstream serve: warning: {cert}: the certificate has no IP SAN for 127.0.0.1, so "
        "kubectl and other Go clients will refuse it (x509: cannot validate certificate "
        "for 127.0.0.1 because it doesn't contain any IP SANs)"]
    cert, key = tls_files
    with serve_command(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)) as running:
        assert not [line for line in running.log() if "warning" in line]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1].startswith("Z")  # a zombie is gone
    except (FileNotFoundError, ProcessLookupError):
        # Reaped before or while the file was read: the fake node reaps in this process.
        return True


def test_sigterm_ends_sessions_and_processes(tmp_path: Path) -> None:
    with serve_command(tmp_path) as running:
        connection = load_config(str(running.kubeconfig), environ={})

        async def scenario() -> tuple[int, str]:
            process, pid, workdir = await _start_sleeper(connection.server,
                                                         connection.headers,
                                                         connection.ssl_context)
            async with process:
                assert not _gone(pid)
                assert os.path.isdir(workdir)
                assert await asyncio.to_thread(running.stop, signal.SIGTERM) == 0
                # The session ended with the server: no exit status arrived.
                with pytest.raises(KstreamError):
                    await process.wait()
            return pid, workdir

        pid, workdir = asyncio.run(scenario())
    assert _gone(pid)
    assert not os.path.exists(workdir)


# --------------------------------------------------------------------------- named ports


def _kubectl(version: str) -> str:
    found = os.path.realpath(shutil.which("kubectl") or "/nonexistent")
    path = os.path.join(os.path.dirname(found), f"kubectl.{version}")
    assert os.path.exists(path), f"kubectl {version} is needed for this test: {path}"
    return path


def test_pod_ports_are_in_the_pod_for_kubectl(tmp_path: Path) -> None:
    with serve_command(tmp_path, "--pod", "web=sleep 60", "--pod", "team/api",
                       "--pod-port", "web=http:8080", "--pod-port", "web=metrics:9090",
                       "--pod-port", "team/api=grpc:50051") as running:
        env = {key: value for key, value in os.environ.items()
               if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
        env.update(HOME=str(tmp_path), KUBECONFIG=str(running.kubeconfig))
        for version in ("1.33", "1.27"):
            def get(*args: str, version: str = version) -> str:
                result = subprocess.run([_kubectl(version), "get", "pod", *args],
                                        capture_output=True, text=True, env=env,
                                        timeout=60, check=False)
                assert result.returncode == 0, result.stderr
                return result.stdout

            assert get("web", "-o", "jsonpath={.spec.containers[0].ports[0].containerPort}"
                       ) == "8080"
            assert json.loads(get("web", "-o", "json"))["spec"]["containers"][0]["ports"] == [
                {"name": "http", "containerPort": 8080, "protocol": "TCP"},
                {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
            assert get("-n", "team", "api", "-o",
                       "jsonpath={.spec.containers[0].ports[0].name}") == "grpc"
