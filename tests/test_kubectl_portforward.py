"""Real kubectl 1.27 .. 1.33 ``port-forward`` against a :class:`~kstream.testing.FakeNode`.

kubectl <= 1.30 forwards over SPDY ``portforward.k8s.io``; 1.31+ over the tunnel
``SPDY/3.1+portforward.k8s.io``, falling back to SPDY when the tunnel is refused, and
SPDY with ``KUBECTL_PORT_FORWARD_WEBSOCKETS=false`` (protocol-notes §5.1). Each case
checks, from the node's log (``kstream serve``'s session lines) and its session
records, which transport kubectl used. The node (TLS with its own CA) runs on a thread;
the pod port is an echo server on 127.0.0.1 (``pfpods.py``). A missing kubectl fails.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pfpods import PodServer, dead_port

from kstream.testing import FakeNode, Faults

_TIMEOUT = 60
_KUBECTL_DIR = Path(os.path.realpath(shutil.which("kubectl") or "/nonexistent")).parent
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


class LoggedNode:
    """A running node and the lines of its log (``kstream serve``'s session lines)."""

    def __init__(self, node: FakeNode, log: list[str]) -> None:
        self.node, self.lines = node, log

    @property
    def kubeconfig(self) -> str:
        return self.node.kubeconfig


@contextlib.contextmanager
def _logged_node(faults: Faults | None = None) -> Iterator[LoggedNode]:
    lines: list[str] = []
    with FakeNode(faults=faults, log=lines.append).in_thread() as node:
        yield LoggedNode(node, lines)


@pytest.fixture(scope="module")
def server() -> Iterator[LoggedNode]:
    """One node (TLS with its own CA, the default) for the module."""
    with _logged_node() as node:
        yield node


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
def _port_forward(version: str, websockets: str | None, server: LoggedNode, home: Path,
                  *ports: int) -> Iterator[PortForward]:
    binary = _KUBECTL_DIR / f"kubectl.{version}"
    assert binary.exists(), f"kubectl {version} is not installed ({binary})"
    # No proxies, no stray kube settings.
    env = {key: value for key, value in os.environ.items()
           if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
    env["HOME"] = str(home)
    if websockets is not None:
        env["KUBECTL_PORT_FORWARD_WEBSOCKETS"] = websockets
    process = subprocess.Popen(
        [str(binary), "--kubeconfig", server.kubeconfig, "port-forward",
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


def _check_transport(server: LoggedNode, before: tuple[int, int], transport: str) -> None:
    """Every session since ``before`` (:func:`_mark`) went over ``transport``."""
    records = server.node.sessions[before[0]:]
    assert records, "no port-forward session reached the node"
    assert all((r.subresource, r.transport) == ("portforward", transport)
               for r in records), records
    lines = [line for line in server.lines[before[1]:] if " over " in line]
    assert len(lines) == len(records), lines
    assert all(f" over {transport}/" in line for line in lines), lines


def _mark(server: LoggedNode) -> tuple[int, int]:
    return len(server.node.sessions), len(server.lines)


@pytest.mark.parametrize("client", CLIENTS, ids=_id)
def test_round_trip_and_20_concurrent_connections(client: tuple[str, str | None, str],
                                                  server: LoggedNode, echo: PodServer,
                                                  home: Path) -> None:
    version, websockets, transport = client
    before = _mark(server)
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
def test_10_mib_sha256_equal(version: str, server: LoggedNode, echo: PodServer,
                             home: Path) -> None:
    data = os.urandom(10 << 20)
    with _port_forward(version, None, server, home, echo.port) as forward:
        received = _round_trip(forward.ports[echo.port], data)
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()


def test_kubectl_1_33_falls_back_to_spdy_when_the_tunnel_is_refused(
        echo: PodServer, home: Path) -> None:
    with _logged_node(Faults(refuse_transport="tunnel")) as refusing:
        before = _mark(refusing)
        with _port_forward("1.33", None, refusing, home, echo.port) as forward:
            assert _round_trip(forward.ports[echo.port], b"fallback") == b"fallback"
        _check_transport(refusing, before, "spdy")
        assert any("refused tunnel" in line for line in refusing.lines), refusing.lines


@pytest.mark.parametrize("version", ["1.27", "1.33"])
def test_a_dead_pod_port_gives_kubectls_own_error(version: str, server: LoggedNode,
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
