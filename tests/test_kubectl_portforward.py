"""Real kubectl 1.27 .. 1.33 ``port-forward`` against ``kstream serve``.

kubectl <= 1.30 forwards over SPDY ``portforward.k8s.io``; 1.31+ over the tunnel
``SPDY/3.1+portforward.k8s.io``, falling back to SPDY when the tunnel is refused, and
SPDY with ``KUBECTL_PORT_FORWARD_WEBSOCKETS=false`` (protocol-notes §5.1). Each case
checks, from the server's session log, which transport kubectl used. The pod port is an
echo server on 127.0.0.1 (``pfpods.py``). A missing kubectl fails.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pfpods import PodServer, dead_port
from servehelper import ServeProcess, clean_env, kubectl_dir

_TIMEOUT = 60
_FORWARDING = re.compile(rb"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")

#: (kubectl version, KUBECTL_PORT_FORWARD_WEBSOCKETS, transport the server must see)
CLIENTS = [
    ("1.27", None, "spdy"), ("1.28", None, "spdy"), ("1.29", None, "spdy"),
    ("1.30", None, "spdy"), ("1.31", None, "tunnel"), ("1.32", None, "tunnel"),
    ("1.33", None, "tunnel"), ("1.33", "false", "spdy"),
]


def _id(client: tuple[str, str | None, str]) -> str:
    version, websockets, _ = client
    return version + (f"-ws={websockets}" if websockets else "")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One ``kstream serve`` (TLS with its generated CA, the default) for the module."""
    with ServeProcess(tmp_path_factory.mktemp("serve")) as running:
        yield running


@pytest.fixture(scope="module")
def echo() -> Iterator[PodServer]:
    with PodServer("echo") as pod:
        yield pod


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private HOME, so kubectl's discovery cache stays out of the real one."""
    return tmp_path_factory.mktemp("home")


class PortForward:
    """A running ``kubectl port-forward``: its forwarded ports, its stderr."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.ports: dict[int, int] = {}  # remote -> local
        self.stderr = b""
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr += line

    def wait_forwarding(self, count: int) -> None:
        assert self.process.stdout is not None
        while len(self.ports) < count:
            line = self.process.stdout.readline()
            assert line, f"kubectl ended: {self.stderr!r}"
            match = _FORWARDING.search(line)
            if match:
                self.ports[int(match.group(2))] = int(match.group(1))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr_thread.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode


@contextlib.contextmanager
def _port_forward(version: str, websockets: str | None, server: ServeProcess, home: Path,
                  *ports: int) -> Iterator[PortForward]:
    binary = kubectl_dir() / f"kubectl.{version}"
    assert binary.exists(), f"kubectl {version} is not installed ({binary})"
    env = clean_env(HOME=str(home))
    if websockets is not None:
        env["KUBECTL_PORT_FORWARD_WEBSOCKETS"] = websockets
    process = subprocess.Popen(
        [str(binary), "--kubeconfig", str(server.kubeconfig), "port-forward",
         "--address", "127.0.0.1", "pod/demo", *(f":{port}" for port in ports)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    forward = PortForward(process)
    try:
        forward.wait_forwarding(len(ports))
        yield forward
    finally:
        forward.stop()


def _round_trip(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=_TIMEOUT) as sock:
        sender = threading.Thread(target=sock.sendall, args=(data,))
        sender.start()
        pieces = []
        received = 0
        while received < len(data):
            chunk = sock.recv(262144)
            if not chunk:
                break
            pieces.append(chunk)
            received += len(chunk)
        sender.join()
    return b"".join(pieces)


def _check_transport(server: ServeProcess, before: int, transport: str) -> None:
    sessions = server.sessions_since(before)
    assert sessions, "no port-forward session reached the server"
    assert all(f" over {transport}/" in line for line in sessions), sessions


@pytest.mark.parametrize("client", CLIENTS, ids=_id)
def test_round_trip_and_20_concurrent_connections(client: tuple[str, str | None, str],
                                                  server: ServeProcess, echo: PodServer,
                                                  home: Path) -> None:
    version, websockets, transport = client
    before = len(server.log())
    with _port_forward(version, websockets, server, home, echo.port) as forward:
        local = forward.ports[echo.port]
        data = os.urandom(256 * 1024)
        assert _round_trip(local, data) == data
        payloads = [os.urandom(16384 + i) for i in range(20)]
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda p: _round_trip(local, p), payloads))
        assert results == payloads
    _check_transport(server, before, transport)


@pytest.mark.parametrize("version", ["1.27", "1.33"])
def test_10_mib_sha256_equal(version: str, server: ServeProcess, echo: PodServer,
                             home: Path) -> None:
    data = os.urandom(10 << 20)
    with _port_forward(version, None, server, home, echo.port) as forward:
        received = _round_trip(forward.ports[echo.port], data)
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()


def test_kubectl_1_33_falls_back_to_spdy_when_the_tunnel_is_refused(
        tmp_path: Path, echo: PodServer, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KSTREAM_SERVE_REFUSE_TRANSPORTS", "tunnel")
    with ServeProcess(tmp_path) as refusing:
        monkeypatch.delenv("KSTREAM_SERVE_REFUSE_TRANSPORTS")
        before = len(refusing.log())
        with _port_forward("1.33", None, refusing, home, echo.port) as forward:
            assert _round_trip(forward.ports[echo.port], b"fallback") == b"fallback"
        _check_transport(refusing, before, "spdy")
        assert any("refused tunnel" in line for line in refusing.log()), refusing.log()


@pytest.mark.parametrize("version", ["1.27", "1.33"])
def test_a_dead_pod_port_gives_kubectls_own_error(version: str, server: ServeProcess,
                                                  home: Path) -> None:
    port = dead_port()
    with _port_forward(version, None, server, home, port) as forward:
        with socket.create_connection(("127.0.0.1", forward.ports[port]), timeout=20) as sock:
            sock.settimeout(20)
            with contextlib.suppress(OSError):
                assert sock.recv(1024) == b""
        deadline = time.monotonic() + 20
        while b"error forwarding port" not in forward.stderr and time.monotonic() < deadline:
            time.sleep(0.05)
    text = forward.stderr.decode()
    assert f"an error occurred forwarding {forward.ports[port]} -> {port}" in text, text
    assert f"error forwarding port {port} to pod demo" in text, text
    assert "connection refused" in text, text
