"""The official ``kubernetes`` Python client (``kubernetes.stream.stream``) vs ``kstream serve``.

It is a real WebSocket client offering ``v5.channel.k8s.io, v4.channel.k8s.io``; a
``sec-websocket-protocol`` header of our own makes it offer v4 only. Its exit status comes
from the error channel (``returncode``), parsed by the client itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes.stream import stream
from official_client import kubeconfig_api

from kstream.testing import FakeNode

PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """One fake node for the module (its ``demo`` pod runs local processes)."""
    with FakeNode().in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def core(server: FakeNode) -> Iterator[k8s_client.CoreV1Api]:
    """A CoreV1Api configured from the node's kubeconfig."""
    with kubeconfig_api(server.kubeconfig) as api:
        yield api


def _close(response: Any) -> None:
    # WSClient.close() skips the socket once the server has closed the connection.
    response.close()
    response.sock.shutdown()


def _exec(core: k8s_client.CoreV1Api, protocol: str, command: list[str],
          stdin: bytes | None = None) -> tuple[str, str, Any, str]:
    response = stream(
        core.connect_get_namespaced_pod_exec, "demo", "default", command=command,
        stderr=True, stdin=stdin is not None, stdout=True, tty=False,
        _preload_content=False, _headers={"sec-websocket-protocol": protocol},
    )
    try:
        negotiated = response.subprotocol
        if stdin is not None:
            response.write_stdin(stdin.decode())
            if protocol == "v5.channel.k8s.io":
                response.close_channel(0)  # the v5 stdin half-close
        response.run_forever(timeout=30)
        stdout = response.read_stdout(timeout=0) if response.peek_stdout() else ""
        stderr = response.read_stderr(timeout=0) if response.peek_stderr() else ""
        return stdout, stderr, response.returncode, negotiated
    finally:
        _close(response)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stdout_stderr_and_exit_status(core: k8s_client.CoreV1Api, protocol: str) -> None:
    stdout, stderr, code, negotiated = _exec(
        core, protocol, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert negotiated == protocol
    assert (stdout, stderr, code) == ("out\n", "err\n", 3)
    stdout, stderr, code, _ = _exec(core, protocol, ["echo", "fine"])
    assert (stdout, stderr, code) == ("fine\n", "", 0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_error_channel_of_a_missing_binary(core: k8s_client.CoreV1Api, protocol: str) -> None:
    response = stream(
        core.connect_get_namespaced_pod_exec, "demo", "default",
        command=["kstream-no-such-binary"], stderr=True, stdin=False, stdout=True, tty=False,
        _preload_content=False, _headers={"sec-websocket-protocol": protocol},
    )
    try:
        response.run_forever(timeout=30)
        error = json.loads(response.read_channel(3))
    finally:
        _close(response)
    assert error["status"] == "Failure"
    assert error["reason"] == "InternalError"
    assert "executable file not found in $PATH" in error["message"]


def test_stdin_closed_over_v5(core: k8s_client.CoreV1Api) -> None:
    stdout, _, code, _ = _exec(core, "v5.channel.k8s.io", ["tr", "a-z", "A-Z"],
                               stdin=b"shout\n")
    assert (stdout, code) == ("SHOUT\n", 0)


def test_read_pod(core: k8s_client.CoreV1Api) -> None:
    pod = core.read_namespaced_pod("demo", "default")
    assert pod.status is not None and pod.spec is not None
    assert pod.status.phase == "Running"
    assert [c.name for c in pod.spec.containers] == ["main"]
