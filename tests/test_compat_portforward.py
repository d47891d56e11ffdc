"""kstream.compat.kubernetes.portforward against the official client's, both on a FakeNode.

The same programs run once through ``kubernetes.stream.portforward`` and once through
the compat layer, and must give the same results: one WebSocket (``v4.channel.k8s.io``)
for every port of the call, a socket per port, the server's text in ``error(port)``.
The pod ports are the servers of ``pfpods`` on 127.0.0.1, which the node forwards to.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import http.client
import http.server
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException, ApiValueError
from kubernetes.stream import portforward as original_portforward
from official_client import kubeconfig_api, kubeconfig_configuration
from pfpods import PodServer, dead_port, pods
from proxies import Proxies, proxy_tls, write_certificate

import kstream
from kstream.compat import kubernetes as compat
from kstream.compat._portforward import _BUFFER_LIMIT
from kstream.testing import FakeNode

PortForwardCall = Callable[..., Any]


BOTH = pytest.mark.parametrize("portforward", [original_portforward, compat.portforward],
                               ids=["original", "compat"])


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """One fake node over TLS for the module (its CA pinned in the kubeconfig)."""
    with FakeNode().in_thread() as running:
        running.add_pod("demo")
        yield running


@pytest.fixture(scope="module")
def api(server: FakeNode) -> Iterator[k8s_client.CoreV1Api]:
    """A CoreV1Api configured from the node's kubeconfig, as users load theirs."""
    with kubeconfig_api(server.kubeconfig) as api:
        yield api


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every test ends with no kstream.compat thread and no other new thread left."""
    before = set(threading.enumerate())
    yield
    gc.collect()
    deadline = time.monotonic() + 10
    for thread in set(threading.enumerate()) - before:
        if thread.name.startswith("kstream-compat"):
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), f"leaked {thread.name}"


def _forward(portforward: PortForwardCall, api: k8s_client.CoreV1Api, ports: str) -> Any:
    return portforward(api.connect_get_namespaced_pod_portforward, "demo", "default",
                       ports=ports)


def _echo(sock: Any, data: bytes) -> bytes:
    """Send ``data`` (from a thread: the echo answers as it reads) and read it back."""
    sock.settimeout(30)
    sender = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    sender.start()
    received = bytearray()
    while len(received) < len(data):
        chunk = sock.recv(262144)
        if not chunk:
            break
        received += chunk
    sender.join(30)
    return bytes(received)


def _wait_for(condition: Callable[[], object], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _close(forward: Any) -> None:
    """Close, and wait until the original's proxy thread closed its WebSocket too."""
    forward.close()
    _wait_for(lambda: not forward.connected)
    if not isinstance(forward, compat.PortForward):
        # Its proxy thread may still be inside websocket.close(): shutting the socket down
        # under it would raise in that thread, reported during the next test.
        for thread in threading.enumerate():
            if thread.name.startswith("Kubernetes port forward proxy"):
                thread.join(20)
                assert not thread.is_alive(), thread.name
        # The original leaves its socket to the collector when the server closed first.
        forward.websocket.shutdown()


# --------------------------------------------------------------------------- data


@BOTH
def test_one_port_one_mebibyte(api: k8s_client.CoreV1Api, server: FakeNode,
                               portforward: PortForwardCall) -> None:
    before = len(server.sessions)
    with PodServer("echo") as echo:
        forward = _forward(portforward, api, str(echo.port))
        try:
            assert forward.connected
            data = os.urandom(1 << 20)
            received = _echo(forward.socket(echo.port), data)
            assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
            assert forward.error(echo.port) is None
        finally:
            _close(forward)
    assert not forward.connected
    records = server.sessions[before:]
    assert [(r.subresource, r.transport, r.protocol) for r in records] == \
        [("portforward", "websocket", "v4.channel.k8s.io")]


@BOTH
def test_two_ports_on_one_websocket(api: k8s_client.CoreV1Api, server: FakeNode,
                                    portforward: PortForwardCall) -> None:
    before = len(server.sessions)
    with pods(PodServer("echo"), PodServer("echo")) as (first, second):
        forward = _forward(portforward, api, f"{first.port},{second.port}")
        try:
            one, two = forward.socket(first.port), forward.socket(second.port)
            assert forward.socket(first.port) is one  # the same socket each time
            assert _echo(two, b"second" * 1000) == b"second" * 1000
            assert _echo(one, b"first") == b"first"
            assert _echo(two, b"again") == b"again"
        finally:
            _close(forward)
    assert [r.transport for r in server.sessions[before:]] == ["websocket"]


@BOTH
def test_a_source_port(api: k8s_client.CoreV1Api, portforward: PortForwardCall) -> None:
    with PodServer("source", size=70000) as source:
        forward = _forward(portforward, api, str(source.port))
        try:
            sock = forward.socket(source.port)
            sock.settimeout(30)
            received = bytearray()
            while len(received) < 70000:
                chunk = sock.recv(65536)
                assert chunk
                received += chunk
            assert bytes(received) == (bytes(range(256)) * 274)[:70000]
        finally:
            _close(forward)


class _Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"hello from {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _http_pod() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


@BOTH
def test_http_client_over_the_socket(api: k8s_client.CoreV1Api,
                                     portforward: PortForwardCall) -> None:
    # The original's documented usage (examples/pod_portforward.py).
    with _http_pod() as port:
        forward = _forward(portforward, api, str(port))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            conn.sock = forward.socket(port)
            forward.socket(port).setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            answers = []
            for path in ("/one", "/two"):  # keep-alive: one connection, two requests
                conn.request("GET", path)
                response = conn.getresponse()
                answers.append((response.status, response.read()))
            assert answers == [(200, b"hello from /one"), (200, b"hello from /two")]
            conn.close()
            assert forward.error(port) is None
        finally:
            _close(forward)


def test_a_slow_reader_holds_the_websocket_back(api: k8s_client.CoreV1Api) -> None:
    # Bytes from the pod are read from the WebSocket only as the local socket takes
    # them: with nobody reading, reading stops at the buffer limit (every buffer bounded).
    size = 64 << 20
    with PodServer("source", size=size) as source:
        forward = _forward(compat.portforward, api, str(source.port))
        try:
            connection = forward._session.connection
            _wait_for(lambda: connection.reading_paused)
            time.sleep(0.3)
            held = connection._inputs[0].size
            assert held <= 2 * _BUFFER_LIMIT
            sock = forward.socket(source.port)
            sock.settimeout(30)
            digest, total = hashlib.sha256(), 0
            while total < size:
                chunk = sock.recv(1 << 20)
                assert chunk
                digest.update(chunk)
                total += len(chunk)
            expected = hashlib.sha256((bytes(range(256)) * 256) * (size // 65536))
            assert digest.digest() == expected.digest()
        finally:
            _close(forward)


def test_through_the_configured_proxy(server: FakeNode, tmp_path: Path) -> None:
    configuration = kubeconfig_configuration(server.kubeconfig)
    with Proxies(proxy_tls(write_certificate(tmp_path))) as proxies, \
            PodServer("echo") as echo:
        configuration.proxy = proxies.url("http")
        with k8s_client.ApiClient(configuration) as api_client:
            api = k8s_client.CoreV1Api(api_client)
            forward = _forward(compat.portforward, api, str(echo.port))
            try:
                assert _echo(forward.socket(echo.port), b"proxied") == b"proxied"
            finally:
                _close(forward)
        # One CONNECT, with the credentials of the proxy URL, for the one WebSocket.
        assert proxies.targets == [f"http {urlsplit(server.server).netloc} auth=True"]


# --------------------------------------------------------------------------- errors


@BOTH
def test_a_dead_port_and_a_live_one(api: k8s_client.CoreV1Api,
                                    portforward: PortForwardCall) -> None:
    dead = dead_port()
    with PodServer("echo") as echo:
        forward = _forward(portforward, api, f"{dead},{echo.port}")
        try:
            _wait_for(lambda: forward.error(dead) is not None)
            error = forward.error(dead)
            assert f"error forwarding port {dead} to pod demo" in error
            sock = forward.socket(dead)
            sock.settimeout(20)
            assert sock.recv(10) == b""
            assert forward.error(echo.port) is None
            assert _echo(forward.socket(echo.port), b"still here") == b"still here"
            assert forward.connected
        finally:
            _close(forward)


@BOTH
@pytest.mark.parametrize(("ports", "message"), [
    ("80,x", "Invalid port number: x"),
    ("80,70000", "Port number must be between 0 and 65536: 70000"),
    ("0", "Port number must be between 0 and 65536: 0"),
    ("80,81,80", "Duplicate port numbers: 80"),
])
def test_invalid_ports(api: k8s_client.CoreV1Api, portforward: PortForwardCall,
                       ports: str, message: str) -> None:
    with pytest.raises(ApiValueError) as caught:
        _forward(portforward, api, ports)
    assert str(caught.value) == message


def test_ports_given_several_times() -> None:
    # A URL built by hand may repeat ``ports`` (the kubelet reads both forms): each
    # value counts, checked as the comma-separated ones.
    query = (("ports", "80,81"), ("ports", "82"))
    assert compat._requested_ports(query) == [80, 81, 82]
    with pytest.raises(ApiValueError, match=r"^Duplicate port numbers: 80$"):
        compat._requested_ports((("ports", "80"), ("ports", "80")))


@BOTH
def test_missing_ports(api: k8s_client.CoreV1Api, portforward: PortForwardCall) -> None:
    # The generated method sends ports=None as no parameter at all.
    with pytest.raises(ApiValueError) as caught:
        portforward(api.connect_get_namespaced_pod_portforward, "demo", "default")
    assert str(caught.value) == "Missing required parameter `ports`"


@BOTH
def test_a_port_not_asked_for(api: k8s_client.CoreV1Api,
                              portforward: PortForwardCall) -> None:
    with PodServer("echo") as echo:
        forward = _forward(portforward, api, str(echo.port))
        try:
            with pytest.raises(ValueError, match=r"^Invalid port number$"):
                forward.socket(99)
            with pytest.raises(ValueError, match=r"^Invalid port number$"):
                forward.error(99)
        finally:
            _close(forward)


@BOTH
def test_connected_until_closed(api: k8s_client.CoreV1Api,
                                portforward: PortForwardCall) -> None:
    with PodServer("echo") as echo:
        forward = _forward(portforward, api, str(echo.port))
        assert forward.connected is True
        _close(forward)
        assert forward.connected is False
        forward.close()  # idempotent


def test_close_is_synchronous(api: k8s_client.CoreV1Api) -> None:
    # The original's close() only closes the sockets; its thread closes the WebSocket
    # later. kstream's returns once the WebSocket and the thread are gone.
    with PodServer("echo") as echo:
        forward = _forward(compat.portforward, api, str(echo.port))
        sock = forward.socket(echo.port)
        forward.close()
        assert not forward.connected
        assert sock.fileno() == -1
        assert not [t for t in threading.enumerate() if t.name.startswith("kstream-compat")]


def test_closing_every_socket_ends_the_session(api: k8s_client.CoreV1Api) -> None:
    with pods(PodServer("echo"), PodServer("echo")) as (first, second):
        forward = _forward(compat.portforward, api, f"{first.port},{second.port}")
        forward.socket(first.port).close()
        assert forward.connected  # the other port still runs
        assert _echo(forward.socket(second.port), b"on") == b"on"
        forward.socket(second.port).close()
        _wait_for(lambda: not forward.connected)
        # The autouse fixture checks that the thread ended without close().


def test_a_socket_outlives_its_portforward(api: k8s_client.CoreV1Api) -> None:
    # As with the original: the session serves the sockets, not the PortForward object.
    with PodServer("echo") as echo:
        forward = _forward(compat.portforward, api, str(echo.port))
        sock = forward.socket(echo.port)
        del forward
        gc.collect()
        assert _echo(sock, b"still served") == b"still served"
        sock.close()  # the last socket: the session and its thread end (the fixture)


def test_a_context_manager(api: k8s_client.CoreV1Api) -> None:
    with PodServer("echo") as echo:
        with compat.portforward(api.connect_get_namespaced_pod_portforward, "demo",
                                "default", ports=str(echo.port)) as forward:
            assert _echo(forward.socket(echo.port), b"in") == b"in"
        assert not forward.connected


def test_the_websocket_closing_ends_the_sockets(api: k8s_client.CoreV1Api) -> None:
    # A pod port that answers and closes: the kubelet's WebSocket ends once every port
    # ended, and each local socket reads what was sent, then EOF.
    with PodServer("source", size=300000) as source:
        forward = _forward(compat.portforward, api, str(source.port))
        try:
            sock = forward.socket(source.port)
            sock.settimeout(30)
            received = bytearray()
            while chunk := sock.recv(65536):
                received += chunk
            assert len(received) == 300000
            _wait_for(lambda: not forward.connected)
        finally:
            forward.close()


@BOTH
def test_connection_refused(api: k8s_client.CoreV1Api, portforward: PortForwardCall) -> None:
    configuration = k8s_client.Configuration()
    configuration.host = f"https://127.0.0.1:{dead_port()}"
    configuration.verify_ssl = False
    with k8s_client.ApiClient(configuration) as api_client:
        refused = k8s_client.CoreV1Api(api_client)
        with pytest.raises(ApiException) as caught:
            _forward(portforward, refused, "80")
    assert caught.value.status == 0
    if portforward is compat.portforward:
        assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_rejected_upgrade_has_its_status(api: k8s_client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        compat.portforward(api.connect_get_namespaced_pod_portforward, "nopod", "default",
                           ports="80")
    assert caught.value.status == 404  # the original: status 0, the text in the reason
    assert isinstance(caught.value.__cause__, kstream.UpgradeRejectedError)


def test_stream_points_to_portforward(api: k8s_client.CoreV1Api) -> None:
    with pytest.raises(NotImplementedError, match=r"kstream\.compat\.kubernetes\.portforward"):
        compat.stream(api.connect_get_namespaced_pod_portforward, "demo", "default",
                      ports="8080")


def test_portforward_takes_only_portforward(api: k8s_client.CoreV1Api) -> None:
    with pytest.raises(ValueError, match="pods/portforward"):
        compat.portforward(api.connect_get_namespaced_pod_exec, "demo", "default",
                           command=["true"])


# --------------------------------------------------------------------------- parity


def _program(forward: Any, live: int, dead: int) -> list[object]:
    """A client program: what it observes is the result both implementations must share."""
    results: list[object] = [forward.connected]
    sock = forward.socket(live)
    results.append(_echo(sock, b"ping\n" * 100))
    _wait_for(lambda: forward.error(dead) is not None)
    results.append(forward.error(dead).split(",")[0])
    dead_sock = forward.socket(dead)
    dead_sock.settimeout(20)
    results.append(dead_sock.recv(10))
    for bad in (forward.socket, forward.error):
        try:
            bad(1)
        except ValueError as exc:
            results.append(str(exc))
    results.append(forward.error(live))
    _close(forward)
    results.append(forward.connected)
    return results


def test_same_program_same_results(api: k8s_client.CoreV1Api) -> None:
    dead = dead_port()
    outcomes = {}
    with PodServer("echo") as echo:
        for name, call in (("original", original_portforward),
                           ("compat", compat.portforward)):
            forward = _forward(call, api, f"{echo.port},{dead}")
            outcomes[name] = _program(forward, echo.port, dead)
    assert outcomes["compat"] == outcomes["original"]
    assert outcomes["compat"] == [
        True, b"ping\n" * 100, f"error forwarding port {dead} to pod demo", b"",
        "Invalid port number", "Invalid port number", None, False]


def test_kubernetes_asyncio_points_to_open_port_forward() -> None:
    # kubernetes_asyncio has no portforward() to replace: the placeholder says what to use.
    import asyncio

    from kstream.compat import kubernetes_asyncio

    with pytest.raises(NotImplementedError, match=r"kstream\.asyncio\.open_port_forward"):
        asyncio.run(kubernetes_asyncio.portforward(print, "demo", "default", ports="80"))
