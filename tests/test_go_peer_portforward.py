"""The Go peer serves port-forward as the kubelet and API server do; kstream's client against it.

``kpeer serve`` (tests/peers/go/kpeer) is checked first against independent clients:
real kubectl 1.27-1.30 (SPDY ``portforward.k8s.io``) and 1.31-1.33 (the
``SPDY/3.1+portforward.k8s.io`` tunnel, falling back to SPDY when it is refused) and the
official ``kubernetes`` client (WebSocket v4); then stream by stream with kstream's
sans-IO cores (resets, the pair timeout, duplicates, the error text, WebSocket v4's
channels). Then kstream's client (``open_port_forward``, asyncio and trio) runs against
it on every transport: 1 MiB echoes, tunnel messages split at every frame write (the
default) and cut to a few bytes, a dead port while other connections keep working, many
connections on one upgrade, the fallback. The "pod" is ``kpeer pod-serve``'s echo port
on 127.0.0.1. A missing kubectl, Go or the Go packages fails, never skips.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers.gopeer import ForwardingProcess, GoPeerServer, PodServer, build_kpeer, run_pf_load
from pfclient import RuntimeClient

import kstream
import kstream.asyncio
import kstream.trio
from kstream._events import UpgradeAccepted
from kstream._portforward.events import ForwardData, ForwardError
from kstream._portforward.websocket import WebSocketPortForwardClient
from kstream._spdy import events as spdy_events
from kstream._spdy.events import StreamData, StreamReset
from kstream._spdy.frames import RstStatus
from kstream._spdy.session import SpdySession

MIB = 1 << 20
DEAD_PORT = 1  # nothing listens on 127.0.0.1:1 (privileged, never bound by tests)
IO_TIMEOUT = 30.0
KSTREAM_DEADLINE = 60.0
TRANSPORTS = ("tunnel", "spdy", "websocket")
Predicate = Callable[[list[object]], bool]

pytestmark = pytest.mark.timeout(120)


def _kubectl(version: str) -> Path:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is not on PATH"
    binary = Path(os.path.realpath(kubectl)).parent / f"kubectl.{version}"
    assert binary.is_file(), f"{binary} is missing: install kubectl {version}"
    return binary


def _kubectl_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("KUBECTL_") and key != "KUBECONFIG"}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def kpeer() -> Path:
    return build_kpeer()


@pytest.fixture(scope="module")
def pod(kpeer: Path) -> Iterator[PodServer]:
    with PodServer(kpeer) as server:
        yield server


def _kubectl_forward(version: str, peer: GoPeerServer, directory: Path, remote: int,
                     **env: str) -> ForwardingProcess:
    kubeconfig = peer.write_kubeconfig(directory / f"kubeconfig-{peer.port}")
    return ForwardingProcess(
        [str(_kubectl(version)), "--kubeconfig", str(kubeconfig), "--cache-dir",
         str(directory / f"cache-{version}"), "port-forward", "--address", "127.0.0.1",
         "pod/demo", f":{remote}"], env=_kubectl_env(**env))


def _echo_round_trip(port: int, payload: bytes) -> bytes:
    """Send payload through 127.0.0.1:port, half-close, read everything back."""
    received = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        reader_error: list[BaseException] = []

        def read_all() -> None:
            try:
                while chunk := sock.recv(256 * 1024):
                    received.extend(chunk)
            except OSError as exc:  # reported by the assertion below
                reader_error.append(exc)

        reader = threading.Thread(target=read_all)
        reader.start()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        reader.join(IO_TIMEOUT)
        assert not reader.is_alive(), "the echo never ended"
        assert not reader_error, reader_error
    return bytes(received)


def _assert_sha256_equal(received: bytes, sent: bytes) -> None:
    assert len(received) == len(sent)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(sent).hexdigest()


def _transports(peer: GoPeerServer) -> list[str]:
    return [line.split("transport ", 1)[1].split()[0]
            for line in peer.stderr_text().splitlines() if "portforward: transport " in line]


@pytest.mark.parametrize(("version", "transport"), [
    *((f"1.{minor}", "spdy") for minor in range(27, 31)),
    *((f"1.{minor}", "tunnel") for minor in range(31, 34)),
])
def test_kubectl_forwards_1_mib_byte_exact(kpeer: Path, pod: PodServer, tmp_path: Path,
                                           version: str, transport: str) -> None:
    payload = os.urandom(MIB)
    with GoPeerServer(kpeer) as peer:
        with _kubectl_forward(version, peer, tmp_path, pod.echo_port) as forward:
            _assert_sha256_equal(_echo_round_trip(forward.local_port, payload), payload)
            # A second connection shares the session (one upgrade).
            _assert_sha256_equal(_echo_round_trip(forward.local_port, payload[:1000]),
                                 payload[:1000])
        assert _transports(peer) == [transport]


@pytest.mark.parametrize(("version", "transport"), [("1.27", "spdy"), ("1.33", "tunnel")])
def test_kubectl_20_concurrent_connections(kpeer: Path, pod: PodServer, tmp_path: Path,
                                           version: str, transport: str) -> None:
    with GoPeerServer(kpeer) as peer:
        with _kubectl_forward(version, peer, tmp_path, pod.bench_port) as forward:
            for mode in ("down", "up"):
                # pf-load checks every connection's byte count.
                result = run_pf_load(kpeer, forward.local_port, mode=mode, size=256 * 1024,
                                     conns=20, timeout=IO_TIMEOUT)
                assert result.nbytes == 20 * 256 * 1024
        assert _transports(peer) == [transport]


def test_kubectl_133_falls_back_to_spdy_when_the_tunnel_is_refused(
        kpeer: Path, pod: PodServer, tmp_path: Path) -> None:
    payload = os.urandom(MIB)
    with GoPeerServer(kpeer, reject_tunnel=400) as peer:
        with _kubectl_forward("1.33", peer, tmp_path, pod.echo_port) as forward:
            _assert_sha256_equal(_echo_round_trip(forward.local_port, payload), payload)
        assert _transports(peer) == ["spdy"]


def test_kubectl_130_env_enables_the_tunnel(kpeer: Path, pod: PodServer,
                                            tmp_path: Path) -> None:
    with GoPeerServer(kpeer) as peer:
        with _kubectl_forward("1.30", peer, tmp_path, pod.echo_port,
                              KUBECTL_PORT_FORWARD_WEBSOCKETS="true") as forward:
            _assert_sha256_equal(_echo_round_trip(forward.local_port, b"tunnel"), b"tunnel")
        assert _transports(peer) == ["tunnel"]


def test_kubectl_133_env_forces_spdy(kpeer: Path, pod: PodServer, tmp_path: Path) -> None:
    with GoPeerServer(kpeer) as peer:
        with _kubectl_forward("1.33", peer, tmp_path, pod.echo_port,
                              KUBECTL_PORT_FORWARD_WEBSOCKETS="false") as forward:
            _assert_sha256_equal(_echo_round_trip(forward.local_port, b"spdy"), b"spdy")
        assert _transports(peer) == ["spdy"]


@pytest.mark.parametrize("cut", [3, 1])
def test_kubectl_133_reads_tunnel_messages_cut_to_a_few_bytes(
        kpeer: Path, pod: PodServer, tmp_path: Path, cut: int) -> None:
    payload = os.urandom(MIB if cut > 1 else 64 * 1024)
    with GoPeerServer(kpeer, tunnel_cut=cut) as peer:
        with _kubectl_forward("1.33", peer, tmp_path, pod.echo_port) as forward:
            _assert_sha256_equal(_echo_round_trip(forward.local_port, payload), payload)
        assert _transports(peer) == ["tunnel"]


@pytest.mark.parametrize("version", ["1.27", "1.33"])
def test_dead_pod_port_gives_kubectls_error(kpeer: Path, tmp_path: Path, version: str) -> None:
    with GoPeerServer(kpeer) as peer:
        with _kubectl_forward(version, peer, tmp_path, DEAD_PORT) as forward:
            assert _echo_round_trip(forward.local_port, b"") == b""
            # kubectl reads the error stream's text and gives up the whole session.
            assert forward.wait(IO_TIMEOUT) != 0
            log = forward.log_text()
        assert (f"error forwarding port {DEAD_PORT} to pod demo, uid : dial tcp "
                f"127.0.0.1:{DEAD_PORT}: connect: connection refused") in log
        assert "lost connection to pod" in log
        assert "error forwarding port 1 to pod demo" in peer.stderr_text()


def test_official_client_forwards_over_websocket_v4(kpeer: Path, pod: PodServer) -> None:
    from kubernetes import client as k8s_client
    from kubernetes.stream import portforward

    payload = os.urandom(256 * 1024)
    with GoPeerServer(kpeer) as peer:
        configuration = k8s_client.Configuration(host=peer.url)
        with k8s_client.ApiClient(configuration) as api_client:
            api = k8s_client.CoreV1Api(api_client)
            forward = portforward(api.connect_get_namespaced_pod_portforward, "demo",
                                  "default", ports=f"{pod.echo_port},{DEAD_PORT}")
            try:
                sock = forward.socket(pod.echo_port)
                sock.settimeout(IO_TIMEOUT)
                sock.sendall(payload)
                received = bytearray()
                while len(received) < len(payload):
                    chunk = sock.recv(65536)
                    assert chunk, "the forward ended early"
                    received.extend(chunk)
                _assert_sha256_equal(bytes(received), payload)
                # The dead port's error channel carries the kubelet's plain text.
                dead = forward.socket(DEAD_PORT)
                dead.settimeout(IO_TIMEOUT)
                assert dead.recv(1) == b""
                error = forward.error(DEAD_PORT)
                assert error is not None
                assert error.startswith(f"error forwarding port {DEAD_PORT} to pod demo")
            finally:
                forward.close()
        assert _transports(peer) == ["websocket"]


class RawSpdyPortForward:
    """A bare SPDY ``portforward.k8s.io`` client on kstream's sans-IO session, to probe
    the peer's kubelet semantics stream by stream (headers kubectl never sends)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock.sendall(
            b"POST /api/v1/namespaces/default/pods/demo/portforward HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            b"X-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            assert chunk, f"no upgrade response: {head!r}"
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"X-Stream-Protocol-Version: portforward.k8s.io" in head
        self.session = SpdySession(client=True)
        self.events: list[object] = []
        if rest:
            self.events += self.session.receive_data(rest)

    def open(self, stream_type: str, port: str | None, request_id: str | None, *,
             fin: bool = False) -> int:
        headers = [("streamtype", stream_type)]
        if port is not None:
            headers.append(("port", port))
        if request_id is not None:
            headers.append(("requestid", request_id))
        stream_id = self.session.open_stream(headers, fin=fin)
        self.flush()
        return stream_id

    def flush(self) -> None:
        self.sock.sendall(self.session.data_to_send())

    def wait_for(self, predicate: Predicate, timeout: float = IO_TIMEOUT) -> list[object]:
        """Read until ``predicate(events)`` holds; return every event so far."""
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            assert time.monotonic() < deadline, f"timed out; events: {self.events}"
            chunk = self.sock.recv(256 * 1024)
            if not chunk:
                self.events += self.session.receive_trailing_data()
                break
            self.events += self.session.receive_data(chunk)
            self.flush()
        return self.events

    def data(self, stream_id: int) -> bytes:
        return b"".join(e.data for e in self.events
                        if isinstance(e, StreamData) and e.stream_id == stream_id)

    def close(self) -> None:
        self.sock.close()


def _has(kind: str, stream_id: int) -> Predicate:
    cls = getattr(spdy_events, kind)
    return lambda events: any(isinstance(e, cls) and e.stream_id == stream_id
                              for e in events)


@pytest.fixture
def raw_peer(kpeer: Path) -> Iterator[GoPeerServer]:
    with GoPeerServer(kpeer, pair_timeout="300ms") as peer:
        yield peer


@pytest.mark.parametrize(("stream_type", "port"), [
    ("data", "0"), ("data", "70000"), ("data", "http"), ("data", None),
    ("stdin", "80"), ("", "80"),
])
def test_bad_port_or_stream_type_is_reset(raw_peer: GoPeerServer, stream_type: str,
                                          port: str | None) -> None:
    client = RawSpdyPortForward(raw_peer.port)
    try:
        stream_id = client.open(stream_type, port, "0")
        events = client.wait_for(_has("StreamReset", stream_id))
        resets = [e for e in events if isinstance(e, StreamReset)]
        assert [(e.stream_id, e.status) for e in resets] == [(stream_id, RstStatus.CANCEL)]
    finally:
        client.close()


def test_a_pair_forwards_and_both_streams_end_on_the_pods_eof(raw_peer: GoPeerServer,
                                                               pod: PodServer) -> None:
    client = RawSpdyPortForward(raw_peer.port)
    try:
        error = client.open("error", str(pod.echo_port), "7", fin=True)
        data = client.open("data", str(pod.echo_port), "7")
        client.session.send_data(data, b"hello pod", fin=True)
        client.flush()
        client.wait_for(lambda ev: _has("StreamEnded", data)(ev)
                        and _has("StreamEnded", error)(ev))
        assert client.data(data) == b"hello pod"
        assert client.data(error) == b""
    finally:
        client.close()


def test_an_incomplete_pair_times_out_with_text_on_its_error_stream(
        raw_peer: GoPeerServer, pod: PodServer) -> None:
    client = RawSpdyPortForward(raw_peer.port)
    try:
        error = client.open("error", str(pod.echo_port), "1", fin=True)
        client.wait_for(lambda ev: b"timed out waiting for streams" in client.data(error))
        assert b"request=1) timed out waiting for streams" in client.data(error)
    finally:
        client.close()


def test_a_duplicate_stream_type_gets_text_on_the_error_stream(raw_peer: GoPeerServer,
                                                               pod: PodServer) -> None:
    client = RawSpdyPortForward(raw_peer.port)
    try:
        error = client.open("error", str(pod.echo_port), "3", fin=True)
        client.open("error", str(pod.echo_port), "3", fin=True)
        client.wait_for(lambda ev: b"already assigned" in client.data(error))
        assert client.data(error).startswith(
            b"error processing stream for request 3: error stream already assigned")
    finally:
        client.close()


def test_a_dead_port_writes_the_error_then_resets_both(raw_peer: GoPeerServer) -> None:
    client = RawSpdyPortForward(raw_peer.port)
    try:
        error = client.open("error", str(DEAD_PORT), "0", fin=True)
        data = client.open("data", str(DEAD_PORT), "0")
        events = client.wait_for(lambda ev: _has("StreamReset", data)(ev)
                                 and _has("StreamReset", error)(ev))
        assert client.data(error).startswith(
            b"error forwarding port 1 to pod demo, uid : dial tcp 127.0.0.1:1: ")
        assert {e.stream_id for e in events if isinstance(e, StreamReset)} == {error, data}
    finally:
        client.close()


def test_streams_without_request_id_pair_by_stream_id(raw_peer: GoPeerServer,
                                                      pod: PodServer) -> None:
    client = RawSpdyPortForward(raw_peer.port)
    try:
        error = client.open("error", str(pod.echo_port), None, fin=True)
        data = client.open("data", str(pod.echo_port), None)
        assert data == error + 2
        client.session.send_data(data, b"old client", fin=True)
        client.flush()
        client.wait_for(_has("StreamEnded", data))
        assert client.data(data) == b"old client"
    finally:
        client.close()


# --------------------------------------------------------------------------- kstream's client


class KstreamClient(RuntimeClient):
    """kstream's runtime client, with what the Go peer's cases do on a forwarded port."""

    def __init__(self, runtime: str) -> None:
        super().__init__(runtime, KSTREAM_DEADLINE)

    def peer_session(self, peer: GoPeerServer, **options: Any
                     ) -> contextlib.AbstractAsyncContextManager[Any]:
        """A port-forward session to the peer's pod ``demo``."""
        return self.session(peer.url, **options)

    async def round_trip(self, session: Any, port: int, payload: bytes) -> bytes:
        """Send payload to an echo port in 64 KiB writes and EOF; read it back.

        WebSocket v4 has no half-close (the EOF sends nothing, so the pod never ends):
        the echo is read to its length there; on SPDY and the tunnel to the pod's EOF.
        """
        until_eof = session.transport != "websocket"
        received = bytearray()
        conn = await self.connect(session, port)

        async def upload() -> None:
            for start in range(0, len(payload), 65536):
                await conn.send(payload[start:start + 65536])
            await conn.eof()

        async def download() -> None:
            while (until_eof or len(received) < len(payload)) \
                    and (chunk := await conn.recv(262144)):
                received.extend(chunk)

        await self.gather(upload, download)
        await conn.close()
        return bytes(received)

    async def read_error(self, session: Any, port: int) -> BaseException:
        """Open a connection to a pod port that fails; return what reading it raised."""
        try:
            conn = await self.connect(session, port)
            try:
                while await conn.recv(65536):
                    pass
            finally:
                with contextlib.suppress(Exception):  # the read's error is the one kept
                    await conn.close()
        except Exception as exc:  # the assertion below checks what it is
            return exc
        raise AssertionError("reading a dead pod port ended without an error")


def _forward_error(exc: BaseException) -> kstream.PortForwardError:
    """The PortForwardError behind what reading a failed connection raised."""
    error = exc if isinstance(exc, kstream.PortForwardError) else exc.__cause__
    assert isinstance(error, kstream.PortForwardError), repr(exc)
    return error


@pytest.fixture(params=["asyncio", "trio"])
def client(request: pytest.FixtureRequest) -> KstreamClient:
    return KstreamClient(request.param)


@pytest.fixture(scope="module")
def peer(kpeer: Path) -> Iterator[GoPeerServer]:
    with GoPeerServer(kpeer) as running:
        yield running


EXPECTED_PROTOCOL = {"tunnel": "SPDY/3.1+portforward.k8s.io", "spdy": "portforward.k8s.io",
                     "websocket": "v4.channel.k8s.io"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_kstream_forwards_1_mib_byte_exact(client: KstreamClient, kpeer: Path,
                                           pod: PodServer, transport: str) -> None:
    payload = os.urandom(MIB)
    with GoPeerServer(kpeer) as peer:
        async def body() -> None:
            async with client.peer_session(peer, transport=transport) as session:
                received = await client.round_trip(session, pod.echo_port, payload)
                _assert_sha256_equal(received, payload)
                assert session.transport == transport
                assert session.protocol == EXPECTED_PROTOCOL[transport]

        client.run(body)
        assert _transports(peer) == [transport]


@pytest.mark.parametrize("cut", [3, 1])
def test_kstream_reads_tunnel_messages_cut_to_a_few_bytes(client: KstreamClient, kpeer: Path,
                                                          pod: PodServer, cut: int) -> None:
    # Without a cut every SPDY frame write is one message (the test above): a DATA frame
    # arrives as 4 bytes, 4 bytes, then the payload. Here each is cut further.
    payload = os.urandom(MIB if cut > 1 else 64 * 1024)
    with GoPeerServer(kpeer, tunnel_cut=cut) as peer:
        async def body() -> None:
            async with client.peer_session(peer, transport="tunnel") as session:
                received = await client.round_trip(session, pod.echo_port, payload)
                _assert_sha256_equal(received, payload)

        client.run(body)
        assert _transports(peer) == ["tunnel"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_kstream_dead_port_fails_that_connection_only(client: KstreamClient,
                                                      peer: GoPeerServer, pod: PodServer,
                                                      transport: str) -> None:
    async def body() -> None:
        async with client.peer_session(peer, transport=transport) as session:
            payloads = [os.urandom(100_000 + index) for index in range(3)]

            async def good(index: int) -> bytes:
                return await client.round_trip(session, pod.echo_port, payloads[index])

            async def bad() -> BaseException:
                return await client.read_error(session, DEAD_PORT)

            results = await client.gather(lambda: good(0), bad, lambda: good(1))
            assert results[0] == payloads[0] and results[2] == payloads[1]
            error = _forward_error(results[1])
            assert error.message.startswith(
                f"error forwarding port {DEAD_PORT} to pod demo, uid : dial tcp ")
            assert "connection refused" in error.message
            # The session goes on after the failure.
            assert await client.round_trip(session, pod.echo_port, payloads[2]) == payloads[2]

    client.run(body)


@pytest.mark.parametrize("transport", ["tunnel", "spdy"])
def test_kstream_connections_share_one_upgraded_connection(client: KstreamClient, kpeer: Path,
                                                           pod: PodServer,
                                                           transport: str) -> None:
    payloads = [os.urandom(50_000 + index) for index in range(10)]
    with GoPeerServer(kpeer) as peer:
        async def body() -> None:
            async with client.peer_session(peer, transport=transport) as session:
                results = await client.gather(*(
                    (lambda p=p: client.round_trip(session, pod.echo_port, p))
                    for p in payloads))
                assert results == payloads

        client.run(body)
        assert _transports(peer) == [transport]


def test_kstream_auto_falls_back_to_spdy_when_the_tunnel_is_refused(
        client: KstreamClient, kpeer: Path, pod: PodServer) -> None:
    with GoPeerServer(kpeer, reject_tunnel=400) as peer:
        async def body() -> None:
            async with client.peer_session(peer) as session:
                assert session.transport == "spdy"
                assert await client.round_trip(session, pod.echo_port, b"hi") == b"hi"

        client.run(body)
        assert _transports(peer) == ["spdy"]


# --------------------------------------------------------------------------- WebSocket v4, raw


def _ws_port_forward(peer: GoPeerServer, ports: list[int], protocol: str,
                     payloads: dict[int, bytes]) -> tuple[dict[int, bytes], dict[int, str]]:
    """One WebSocket v4 port-forward (``?ports=`` repeated) on kstream's sans-IO client.

    Sends ``payloads`` (request id -> bytes), reads each echo back to its length and the
    other ports' error text, then closes; returns the data and error text by request id.
    """
    client = WebSocketPortForwardClient(
        host=f"127.0.0.1:{peer.port}", target="/api/v1/namespaces/default/pods/demo/portforward",
        ports=ports, protocols=[protocol])
    data: dict[int, bytearray] = {index: bytearray() for index in range(len(ports))}
    errors: dict[int, str] = {}
    deadline = time.monotonic() + IO_TIMEOUT
    with socket.create_connection(("127.0.0.1", peer.port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(client.data_to_send())
        sent = False
        while any(len(data[i]) < len(p) for i, p in payloads.items()) or \
                len(errors) < len(ports) - len(payloads):
            assert time.monotonic() < deadline, (data, errors)
            chunk = sock.recv(65536)
            assert chunk, f"the WebSocket ended early: {data} {errors}"
            for event in client.receive_data(chunk):
                if isinstance(event, UpgradeAccepted):
                    assert event.protocol == protocol
                elif isinstance(event, ForwardData):
                    data[event.request_id] += event.data
                elif isinstance(event, ForwardError):
                    errors[event.request_id] = errors.get(event.request_id, "") + event.message
            if not sent:
                for request_id, payload in payloads.items():
                    client.send(request_id, payload)
                sent = True
            sock.sendall(client.data_to_send())
        client.close()
        sock.sendall(client.data_to_send())
    return {index: bytes(value) for index, value in data.items()}, errors


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"])
def test_websocket_v4_ports_channels_and_errors(peer: GoPeerServer, pod: PodServer,
                                                protocol: str) -> None:
    # (Comma-separated ports: the official client's test above.)
    ports = [pod.echo_port, DEAD_PORT, pod.echo_port]
    payloads = {0: os.urandom(100_000), 2: os.urandom(70_000)}
    data, errors = _ws_port_forward(peer, ports, protocol, payloads)
    # One TCP connection per port, even for a port named twice; the port prefix is gone.
    assert data[0] == payloads[0] and data[2] == payloads[2] and data[1] == b""
    assert list(errors) == [1]
    assert errors[1].startswith(f"error forwarding port {DEAD_PORT} to pod demo, uid : ")


@pytest.mark.parametrize(("query", "status", "text"), [
    ("", 400, 'query parameter "port" is required'),
    ("ports=0", 400, 'port "0" must be > 0'),
    ("ports=http", 400, 'unable to parse "http" as a port'),
    ("port=8080,0", 400, 'port "0" must be > 0'),
])
def test_websocket_v4_bad_ports_are_400(peer: GoPeerServer, query: str, status: int,
                                        text: str) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", peer.port, timeout=IO_TIMEOUT)
    try:
        connection.request("GET", f"/api/v1/namespaces/default/pods/demo/portforward?{query}",
                           headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                    "Sec-WebSocket-Version": "13",
                                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                    "Sec-WebSocket-Protocol": "v4.channel.k8s.io"})
        response = connection.getresponse()
        assert response.status == status
        assert text in response.read().decode()
    finally:
        connection.close()
