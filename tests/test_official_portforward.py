"""The official ``kubernetes`` client's ``portforward()`` (WebSocket v4) against ``kstream serve``.

``kubernetes.stream.portforward`` opens one WebSocket carrying every requested port
(``?ports=a,b``), with a socket per port on the caller's side. A
:class:`~kstream.testing.FakeNode` runs on a thread of its own (plain HTTP, its token in
the URL path); the pod ports are echo servers on 127.0.0.1. A missing ``kubernetes`` package fails.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes.stream import portforward
from pfpods import PodServer, dead_port

from kstream.testing import FakeNode


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    with FakeNode(tls=False).in_thread() as node:
        yield node


@pytest.fixture(scope="module")
def core(server: FakeNode) -> Iterator[k8s_client.CoreV1Api]:
    # The node's URL carries the token in its path (plain HTTP).
    configuration = k8s_client.Configuration(host=server.server)
    with k8s_client.ApiClient(configuration) as api_client:
        yield k8s_client.CoreV1Api(api_client)


def _echo(sock: Any, data: bytes) -> bytes:
    sock.settimeout(30)
    sock.sendall(data)
    received = b""
    while len(received) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_one_port(core: k8s_client.CoreV1Api, server: FakeNode) -> None:
    before = len(server.sessions)
    with PodServer("echo") as echo:
        forward = portforward(core.connect_get_namespaced_pod_portforward, "demo", "default",
                              ports=str(echo.port))
        try:
            data = os.urandom(100000)
            assert _echo(forward.socket(echo.port), data) == data
            assert forward.error(echo.port) is None
        finally:
            forward.close()
    records = server.sessions[before:]
    assert [(r.subresource, r.transport, r.protocol) for r in records] == \
        [("portforward", "websocket", "v4.channel.k8s.io")]


def test_two_ports(core: k8s_client.CoreV1Api, server: FakeNode) -> None:
    before = len(server.sessions)
    with PodServer("echo") as first, PodServer("echo") as second:
        forward = portforward(core.connect_get_namespaced_pod_portforward, "demo", "default",
                              ports=f"{first.port},{second.port}")
        try:
            assert _echo(forward.socket(first.port), b"first") == b"first"
            assert _echo(forward.socket(second.port), b"second") == b"second"
        finally:
            forward.close()
    # Both ports over one WebSocket.
    assert [r.transport for r in server.sessions[before:]] == ["websocket"]


def test_a_dead_port_reports_the_kubelets_text(core: k8s_client.CoreV1Api) -> None:
    port = dead_port()
    forward = portforward(core.connect_get_namespaced_pod_portforward, "demo", "default",
                          ports=str(port))
    try:
        deadline = time.monotonic() + 20
        while forward.error(port) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        error = forward.error(port)
        assert error is not None
        assert f"error forwarding port {port} to pod demo" in error
        sock: socket.socket = forward.socket(port)
        sock.settimeout(20)
        assert sock.recv(10) == b""
    finally:
        forward.close()
