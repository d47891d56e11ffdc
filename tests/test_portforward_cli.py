"""``kstream port-forward`` as a process, against a :class:`~kstream.testing.FakeNode`.

kubectl's port forms and ``Forwarding from`` lines, named ports, ``-v``, Ctrl-C without a traceback,
one line per failed connection while forwarding goes on, and a pod that does not exist.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pfpods import PodServer, dead_port

from kstream._app.portforward import PortSpec, parse_port
from kstream.testing import FakeNode

_FORWARDING = re.compile(r"Forwarding from (127\.0\.0\.1|\[::1\]):(\d+) -> (\d+)")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """One node (TLS with its own CA) on a thread of its own, for the module."""
    with FakeNode().in_thread() as node:
        yield node


@pytest.fixture(scope="module")
def echo() -> Iterator[PodServer]:
    with PodServer("echo") as pod:
        yield pod


class Command:
    """A running ``kstream port-forward``."""

    def __init__(self, server: FakeNode, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kstream", "port-forward", "--kubeconfig",
             server.kubeconfig, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.forwarding: list[tuple[str, int, int]] = []
        self.stderr = ""
        self._thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._thread.start()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr += line

    def wait_forwarding(self, count: int) -> None:
        assert self.process.stdout is not None
        while len(self.forwarding) < count:
            line = self.process.stdout.readline()
            assert line, f"kstream port-forward ended: {self.stderr}"
            match = _FORWARDING.search(line)
            assert match, line
            self.forwarding.append((match.group(1), int(match.group(2)), int(match.group(3))))

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._thread.join(5)
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()
        return code


@contextlib.contextmanager
def _command(server: FakeNode, *args: str, forwarding: int = 1) -> Iterator[Command]:
    command = Command(server, *args)
    try:
        command.wait_forwarding(forwarding)
        yield command
    finally:
        if command.process.poll() is None:
            command.interrupt()


def _round_trip(port: int, data: bytes) -> bytes:
    # Reads back what it sent, then closes (WebSocket v4 cannot carry a half-close); b""
    # when the forwarded connection ends first.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        pieces, size = [], 0
        while size < len(data) and (chunk := sock.recv(65536)):
            pieces.append(chunk)
            size += len(chunk)
    return b"".join(pieces)


@pytest.mark.parametrize(("spec", "expected"), [
    ("8080", PortSpec(8080, 8080)), ("8080:80", PortSpec(8080, 80)), (":80", PortSpec(0, 80)),
    ("0:80", PortSpec(0, 80)),
])
def test_kubectl_port_forms(spec: str, expected: PortSpec) -> None:
    assert parse_port(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("x", "^error parsing local port 'x'"), ("80:0", "^remote port must be > 0$"),
    ("0", "^remote port must be > 0$"),
    ("70000", "value out of range"), ("1:2:3", "invalid port format"),
])
def test_bad_port_forms(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_port(spec)


@pytest.mark.parametrize("transport", ["auto", "spdy", "websocket"])
def test_forwards_and_exits_on_ctrl_c_like_kubectl(server: FakeNode, echo: PodServer,
                                                   transport: str) -> None:
    before = len(server.sessions)
    with _command(server, "--address", "127.0.0.1", "--transport", transport, "-v",
                  "pod/demo", f":{echo.port}") as command:
        host, local, remote = command.forwarding[0]
        assert (host, remote) == ("127.0.0.1", echo.port)
        data = os.urandom(200000)
        assert _round_trip(local, data) == data
        assert _round_trip(local, b"again") == b"again"
        code = command.interrupt()
    assert code == 0
    assert "Traceback" not in command.stderr
    expected = "tunnel" if transport == "auto" else transport
    assert f"kstream: transport {expected}" in command.stderr
    assert {r.transport for r in server.sessions[before:]} == {expected}


def test_fixed_local_port_and_two_ports(server: FakeNode, echo: PodServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with _command(server, "--address", "127.0.0.1", "demo", f"{free}:{echo.port}",
                  f":{echo.port}", forwarding=2) as command:
        assert command.forwarding[0] == ("127.0.0.1", free, echo.port)
        assert _round_trip(free, b"one") == b"one"
        assert _round_trip(command.forwarding[1][1], b"two") == b"two"


def test_a_failed_connection_prints_one_line_and_forwarding_goes_on(
        server: FakeNode, echo: PodServer) -> None:
    dead = dead_port()
    with _command(server, "--address", "127.0.0.1", "--transport", "spdy", "demo",
                  f":{dead}", f":{echo.port}", forwarding=2) as command:
        dead_local = command.forwarding[0][1]
        assert _round_trip(dead_local, b"x") == b""
        deadline = time.monotonic() + 20
        while "error forwarding port" not in command.stderr and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _round_trip(command.forwarding[1][1], b"alive") == b"alive"
        assert command.interrupt() == 0
    lines = [line for line in command.stderr.splitlines() if line]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: an error occurred forwarding {dead_local} -> {dead}: "
                               f"error forwarding port {dead} to pod demo")


def test_unknown_pod_is_one_line_and_exit_1(server: FakeNode, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kstream", "port-forward", "--kubeconfig",
         server.kubeconfig, "nopod", "8080"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == 'Error from server (NotFound): pods "nopod" not found\n'


@pytest.mark.parametrize(("port", "line"), [
    ("80:x", "error: Pod 'demo' does not have a named port 'x'"),
    ("80:99999", "error: error parsing remote port '99999': strconv.ParseUint: parsing "
                 "\"99999\": value out of range"),
])
def test_bad_port_is_one_line_and_exit_1(server: FakeNode, port: str, line: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kstream", "port-forward", "--kubeconfig",
         server.kubeconfig, "demo", port], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr == line + "\n"


def test_a_named_port_forwards_to_its_number(server: FakeNode, echo: PodServer) -> None:
    dead = dead_port()
    server.add_pod("named", ports={"http": echo.port, "down": dead})
    with _command(server, "--address", "127.0.0.1", "pod/named", ":http", "down",
                  forwarding=2) as command:
        host, local, remote = command.forwarding[0]
        assert (host, remote) == ("127.0.0.1", echo.port)
        # The local port omitted: it is the container port's number, as with kubectl.
        assert command.forwarding[1] == ("127.0.0.1", dead, dead)
        assert _round_trip(local, b"by name") == b"by name"
        assert command.interrupt() == 0
    assert "Traceback" not in command.stderr
