"""``kstream port-forward`` failing and ending as kubectl does, as a whole process.

Every case runs kstream and, where kubectl has wording, the real kubectl 1.33 and 1.27
against the same :class:`FakeNode` (``in_thread``), and compares: a missing pod, a pod
that is not running, a refused token, a refused connection, an unknown host, an
untrusted certificate, a silent server, both transports of ``--transport auto`` failing,
an error page that is not a Status, kubectl's ``-v=6`` and ``--request-timeout`` forms,
a named port (forwarded, without a local port, missing),
``Handling connection for N`` on stdout, Ctrl-C (exit 0, or killed by SIGINT before the
pod was read) and SIGTERM (killed by it). No case may print a traceback.

What a FakeNode cannot do (a ``Pending`` pod, a port-forward upgrade refused on one
transport) a small relay in front of it does (:class:`Relay`): it passes every request
through, adding the node's token, except for the pods it stands in for.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pfpods import PodServer, dead_port
from proxies import clean_env

from kstream.testing import FakeNode

_KUBECTL_DIR = Path(os.path.realpath(shutil.which("kubectl") or "/nonexistent")).parent
KUBECTLS = ("1.33", "1.27")
_TIMEOUT = 60


def _kubectl_binary(version: str) -> str:
    path = _KUBECTL_DIR / f"kubectl.{version}"
    assert path.exists(), f"kubectl {version} is missing ({path}): these tests need it"
    return str(path)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME for kubectl's discovery cache, away from the user's."""
    return tmp_path_factory.mktemp("home")


def _env(home: Path) -> dict[str, str]:
    return clean_env(HOME=str(home))


def kstream(home: Path, *args: str, timeout: float = _TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``kstream port-forward ARGS`` to its end."""
    return subprocess.run([sys.executable, "-m", "kstream", "port-forward", *args],
                          capture_output=True, text=True, env=_env(home), timeout=timeout,
                          check=False)


def kubectl(version: str, home: Path, *args: str,
            timeout: float = _TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``kubectl port-forward ARGS`` to its end."""
    return subprocess.run([_kubectl_binary(version), "port-forward", *args],
                          capture_output=True, text=True, env=_env(home), timeout=timeout,
                          check=False)


def _last_line(text: str) -> str:
    # kubectl logs its failed discovery requests (E... memcache.go) before its message.
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """kstream's failure: exit 1, nothing on stdout, one line on stderr, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), result.stderr
    return lines[0]


# --------------------------------------------------------------------------- the relay


#: Pods whose GET the relay answers with a body that is not a Status (as a proxy would).
_NOT_STATUS = {"gone": (404, "<html><body>404 page not found</body></html>\n"),
               "broken": (502, "<html>\n<h1>Bad Gateway</h1>\n</html>\n")}


class Relay:
    """A plain-HTTP front for a TLS node that stands in for a few pods.

    * ``pending``: the pod document says phase ``Pending``;
    * ``refused``: running, but its port-forward upgrade is refused, 400 over WebSocket
      (the tunnel) and 403 over SPDY;
    * ``silent``: running; the tunnel is refused (400) and SPDY never answered;
    * ``gone`` and ``broken``: their GET is answered 404 and 502 with an HTML page, not
      a Status (:data:`_NOT_STATUS`).

    Every other request goes to the node as it came, with the node's token added (the
    clients send none to an ``http://`` server).
    """

    def __init__(self, node: FakeNode) -> None:
        self.node = node
        upstream = node.server.split("://", 1)[1]
        host, _, port = upstream.partition(":")
        self._upstream = (host, int(port.split("/")[0]))
        self._closing = threading.Event()
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                relay._handle(self)

            def do_POST(self) -> None:
                relay._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Relay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def kubeconfig(self, directory: Path) -> str:
        """A kubeconfig naming this relay (plain HTTP, no credentials)."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "relay",
            "clusters": [{"name": "relay",
                          "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "relay", "user": {}}],
            "contexts": [{"name": "relay", "context": {"cluster": "relay", "user": "relay",
                                                       "namespace": "default"}}],
        }
        path = directory / "relay-kubeconfig"
        path.write_text(json.dumps(config))
        return str(path)

    def _fetch(self, method: str, path: str, headers: dict[str, str],
               body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPSConnection(*self._upstream, context=self.node.ssl,
                                                 timeout=30)
        try:
            headers = {key: value for key, value in headers.items()
                       if key.lower() not in ("host", "connection", "authorization")}
            headers["Authorization"] = f"Bearer {self.node.token}"
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.reason, response.getheaders(), response.read()
        finally:
            connection.close()

    def _reply(self, handler: http.server.BaseHTTPRequestHandler, status: int,
               headers: list[tuple[str, str]], body: bytes) -> None:
        handler.send_response(status)
        for key, value in headers:
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)

    def _status(self, handler: http.server.BaseHTTPRequestHandler, code: int, reason: str,
                message: str) -> None:
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason,
                           "code": code}).encode()
        self._reply(handler, code, [("Content-Type", "application/json")], body)

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        pod = parts[5] if len(parts) >= 6 and parts[4] == "pods" else ""
        if pod in _NOT_STATUS and len(parts) == 6:
            code, text = _NOT_STATUS[pod]
            self._reply(handler, code, [("Content-Type", "text/html")], text.encode())
            return
        if pod in ("pending", "refused", "silent"):
            if len(parts) == 6:
                status, _, _, body = self._fetch(
                    "GET", path.replace(f"/pods/{pod}", "/pods/demo"), {}, b"")
                document = json.loads(body)
                document["metadata"]["name"] = pod
                if pod == "pending":
                    document["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
                self._reply(handler, status, [("Content-Type", "application/json")],
                            json.dumps(document).encode())
                return
            upgrade = handler.headers.get("Upgrade", "").lower()
            if upgrade == "websocket":
                self._status(handler, 400, "BadRequest", "the relay refuses the tunnel")
            elif pod == "refused":
                self._status(handler, 403, "Forbidden",
                             "the relay refuses SPDY port-forward too")
            else:  # silent: never answer; wait until the client leaves
                with contextlib.suppress(OSError):
                    handler.connection.settimeout(0.2)
                    while not self._closing.is_set():
                        try:
                            if not handler.connection.recv(4096):
                                break
                        except TimeoutError:
                            continue
                handler.close_connection = True
            return
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        status, _, headers, answer = self._fetch(handler.command, handler.path,
                                                 dict(handler.headers.items()), body)
        self._reply(handler, status, headers, answer)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def node() -> Iterator[FakeNode]:
    with FakeNode().in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def relay(node: FakeNode) -> Iterator[Relay]:
    with Relay(node) as running:
        yield running


@pytest.fixture(scope="module")
def echo() -> Iterator[PodServer]:
    with PodServer("echo") as pod:
        yield pod


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """A TCP server that accepts and never answers: its port."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("target", ["nope", "pod/nope", "pods/nope", "po/nope"])
def test_missing_pod_as_kubectl(node: FakeNode, home: Path, target: str) -> None:
    line = _one_line(kstream(home, "--kubeconfig", node.kubeconfig, target, "8080"))
    assert line == 'Error from server (NotFound): pods "nope" not found'
    for version in KUBECTLS:
        theirs = kubectl(version, home, "--kubeconfig", node.kubeconfig, target, "8080")
        assert theirs.returncode == 1
        assert _last_line(theirs.stderr) == line, version


def test_pod_not_running_as_kubectl(relay: Relay, home: Path, tmp_path: Path) -> None:
    config = relay.kubeconfig(tmp_path)
    line = _one_line(kstream(home, "--kubeconfig", config, "pending", "8080"))
    assert line == ("error: unable to forward port because pod is not running. "
                    "Current status=Pending")
    for version in KUBECTLS:
        theirs = kubectl(version, home, "--kubeconfig", config, "pending", "8080")
        assert theirs.returncode == 1
        assert _last_line(theirs.stderr) == line, version


def test_refused_token_as_kubectl(node: FakeNode, home: Path, tmp_path: Path) -> None:
    config = json.loads(Path(node.kubeconfig).read_text())
    config["users"][0]["user"]["token"] = "not-the-token"
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    line = _one_line(kstream(home, "--kubeconfig", str(path), "demo", "8080"))
    assert line == "error: You must be logged in to the server (Unauthorized)"
    for version in KUBECTLS:
        # With its discovery cached (as after any earlier command), kubectl's first
        # request is the pod's GET, as kstream's (else discovery fails first, worded
        # "the server has asked for the client to provide credentials").
        kubectl(version, home, "--kubeconfig", node.kubeconfig, "nope", "8080")
        theirs = kubectl(version, home, "--kubeconfig", str(path), "demo", "8080")
        assert theirs.returncode == 1
        assert _last_line(theirs.stderr) == line, version


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_refused_connection_as_kubectl(node: FakeNode, home: Path) -> None:
    server = f"https://127.0.0.1:{_free_port()}"
    line = _one_line(kstream(home, "--kubeconfig", node.kubeconfig, "-s", server,
                             "demo", "8080"))
    assert line == (f"The connection to the server {server[8:]} was refused - did you "
                    f"specify the right host or port?")
    for version in KUBECTLS:
        theirs = kubectl(version, home, "--kubeconfig", node.kubeconfig, "-s", server,
                         "demo", "8080")
        assert theirs.returncode == 1
        assert _last_line(theirs.stderr) == line, version


def test_unknown_host_names_the_server(node: FakeNode, home: Path) -> None:
    server = "https://nonexistent.invalid:6443"
    line = _one_line(kstream(home, "--kubeconfig", node.kubeconfig, "-s", server,
                             "demo", "8080"))
    assert line.startswith("Unable to connect to the server nonexistent.invalid:6443: "
                           "lookup nonexistent.invalid: ")
    for version in KUBECTLS:
        theirs = kubectl(version, home, "--kubeconfig", node.kubeconfig, "-s", server,
                         "demo", "8080")
        assert theirs.returncode == 1
        assert _last_line(theirs.stderr).startswith(
            "Unable to connect to the server: dial tcp: lookup nonexistent.invalid"), version


def test_untrusted_certificate_as_kubectl(node: FakeNode, home: Path,
                                          tmp_path: Path) -> None:
    # The cluster's CA left out: the node's certificate is checked against the system's.
    config = json.loads(Path(node.kubeconfig).read_text())
    config["clusters"][0]["cluster"].pop("certificate-authority-data", None)
    config["clusters"][0]["cluster"].pop("certificate-authority", None)
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    authority = node.server.split("://", 1)[1].split("/")[0]
    line = _one_line(kstream(home, "--kubeconfig", str(path), "demo", "8080"))
    assert line.startswith(f"Unable to connect to the server {authority}: "
                           f"tls: failed to verify certificate: ")
    for version in KUBECTLS:
        theirs = kubectl(version, home, "--kubeconfig", str(path), "demo", "8080")
        assert theirs.returncode == 1
        assert _last_line(theirs.stderr).startswith(
            "Unable to connect to the server: tls: failed to verify certificate: "), version


def test_a_silent_server_times_out_with_a_message(node: FakeNode, home: Path) -> None:
    with _silent_server() as port:
        started = time.monotonic()
        line = _one_line(kstream(home, "--kubeconfig", node.kubeconfig, "-s",
                                 f"https://127.0.0.1:{port}", "--request-timeout=1s",
                                 "demo", "8080"))
        assert time.monotonic() - started < 30
    assert line == (f"Unable to connect to the server 127.0.0.1:{port}: no answer within "
                    f"1 s while connecting and upgrading (--request-timeout sets this "
                    f"deadline)")


def test_auto_names_both_failures(relay: Relay, home: Path, tmp_path: Path) -> None:
    line = _one_line(kstream(home, "--kubeconfig", relay.kubeconfig(tmp_path), "refused",
                             "8080"))
    assert line == ("Error from server (Forbidden): the relay refuses SPDY port-forward "
                    "too (after tunnel first: Error from server (BadRequest): the relay "
                    "refuses the tunnel)")


def test_auto_names_the_refused_tunnel_when_spdy_times_out(relay: Relay, home: Path,
                                                           tmp_path: Path) -> None:
    line = _one_line(kstream(home, "--kubeconfig", relay.kubeconfig(tmp_path),
                             "--request-timeout", "1", "silent", "8080"))
    assert line == (f"Unable to connect to the server 127.0.0.1:{relay.port}: no answer "
                    f"within 1 s while connecting and upgrading (--request-timeout sets "
                    f"this deadline) (after tunnel first: Error from server (BadRequest): "
                    f"the relay refuses the tunnel)")


def test_one_transport_failing_names_only_it(relay: Relay, home: Path,
                                             tmp_path: Path) -> None:
    line = _one_line(kstream(home, "--kubeconfig", relay.kubeconfig(tmp_path),
                             "--transport", "spdy", "refused", "8080"))
    assert line == "Error from server (Forbidden): the relay refuses SPDY port-forward too"


# --------------------------------------------------------------------------- running


class Forward:
    """A running port-forward process (kstream's or kubectl's), read line by line."""

    def __init__(self, argv: list[str], home: Path) -> None:
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=_env(home))
        self.stdout: list[str] = []

    def line(self) -> str:
        assert self.process.stdout is not None
        text = self.process.stdout.readline()
        assert text, f"the process ended: {self.finish(signal.SIGKILL)}"
        self.stdout.append(text)
        return text

    def finish(self, signum: int) -> tuple[int, str, str]:
        """Send ``signum``; return the exit status, the rest of stdout, and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            out, err = self.process.communicate(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.communicate()
        return self.process.returncode, out, err


def _echo_through(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        received = b""
        while len(received) < len(data) and (chunk := sock.recv(65536)):
            received += chunk
    return received


def _session(argv: list[str], home: Path, signum: int) -> tuple[list[str], int, str, str]:
    """Forward, make two connections, send ``signum``: stdout lines, status, rest, stderr."""
    forward = Forward(argv, home)
    try:
        first = forward.line()
        assert first.startswith("Forwarding from 127.0.0.1:"), first
        local = int(first.split(":")[1].split()[0])
        for payload in (b"one", b"two"):
            assert _echo_through(local, payload) == payload
        # Both "Handling connection" lines are out before the signal.
        for _ in range(2):
            forward.line()
        time.sleep(0.2)
    finally:
        code, rest, stderr = forward.finish(signum)
    lines = [line.replace(str(local), "L") for line in [*forward.stdout, *rest.splitlines()]]
    return [line.rstrip("\n") for line in lines], code, rest, stderr


def _argv_kstream(node: FakeNode, *extra: str) -> list[str]:
    return [sys.executable, "-m", "kstream", "port-forward", "--kubeconfig", node.kubeconfig,
            *extra]


def _argv_kubectl(version: str, node: FakeNode, *extra: str) -> list[str]:
    return [_kubectl_binary(version), "port-forward", "--kubeconfig", node.kubeconfig, *extra]


@pytest.mark.parametrize("version", KUBECTLS)
def test_handling_lines_and_ctrl_c_as_kubectl(node: FakeNode, echo: PodServer, home: Path,
                                              version: str) -> None:
    ports = ("--address", "127.0.0.1", "demo", f":{echo.port}")
    ours, our_code, _, our_err = _session(_argv_kstream(node, *ports), home, signal.SIGINT)
    theirs, their_code, _, _ = _session(_argv_kubectl(version, node, *ports), home,
                                        signal.SIGINT)
    assert ours == theirs == [f"Forwarding from 127.0.0.1:L -> {echo.port}",
                              "Handling connection for L", "Handling connection for L"]
    assert our_code == their_code == 0
    assert our_err == ""


def test_sigterm_ends_it_as_it_ends_kubectl(node: FakeNode, echo: PodServer,
                                            home: Path) -> None:
    ports = ("--address", "127.0.0.1", "demo", f":{echo.port}")
    _, our_code, _, our_err = _session(_argv_kstream(node, *ports), home, signal.SIGTERM)
    _, their_code, _, _ = _session(_argv_kubectl("1.33", node, *ports), home,
                                   signal.SIGTERM)
    assert our_code == their_code == -signal.SIGTERM
    assert "Traceback" not in our_err


@pytest.mark.parametrize("flags", [("-v=6",), ("-v", "6"), ("--v=6",),
                                   ("--request-timeout=30s",), ("--request-timeout=0",),
                                   ("--request-timeout", "1m30s")])
def test_kubectl_flag_forms_are_accepted(node: FakeNode, echo: PodServer, home: Path,
                                         flags: tuple[str, ...]) -> None:
    argv = _argv_kstream(node, *flags, "--address", "127.0.0.1", "demo", f":{echo.port}")
    lines, code, _, stderr = _session(argv, home, signal.SIGINT)
    assert lines[0] == f"Forwarding from 127.0.0.1:L -> {echo.port}"
    assert code == 0 and "Traceback" not in stderr
    if flags[0].startswith(("-v", "--v")):
        assert stderr.startswith("kstream: transport tunnel, protocol "), stderr


def test_bad_request_timeout_is_kubectls_message(node: FakeNode, home: Path) -> None:
    result = kstream(home, "--kubeconfig", node.kubeconfig, "--request-timeout=soon",
                     "demo", "8080")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Invalid timeout value. Timeout must be a single integer in seconds" \
        in result.stderr


def test_ctrl_c_while_connecting_exits_0_quietly(relay: Relay, home: Path,
                                                 tmp_path: Path) -> None:
    # The tunnel is refused and SPDY never answered: the command is still connecting.
    forward = Forward([sys.executable, "-m", "kstream", "port-forward", "--kubeconfig",
                       relay.kubeconfig(tmp_path), "silent", "8080"], home)
    time.sleep(3)
    assert forward.process.poll() is None
    code, out, err = forward.finish(signal.SIGINT)
    assert (code, out, err) == (0, "", "")



def test_ctrl_c_before_the_pod_is_read_kills_as_kubectl(node: FakeNode, home: Path) -> None:
    # kubectl traps Ctrl-C only once the pod was read: before, it dies by SIGINT.
    with _silent_server() as port:
        extra = ("-s", f"https://127.0.0.1:{port}", "demo", "8080")
        codes = []
        for argv in (_argv_kstream(node, *extra), _argv_kubectl("1.33", node, *extra)):
            forward = Forward(argv, home)
            time.sleep(2)
            assert forward.process.poll() is None
            code, out, err = forward.finish(signal.SIGINT)
            assert out == "" and "Traceback" not in err
            codes.append(code)
    assert codes == [-signal.SIGINT, -signal.SIGINT]


@pytest.mark.parametrize("pod", sorted(_NOT_STATUS))
def test_an_error_page_that_is_not_a_status_as_kubectl(relay: Relay, home: Path,
                                                       tmp_path: Path, pod: str) -> None:
    # A proxy's page instead of a Status: client-go's generic words, the page quoted.
    config = relay.kubeconfig(tmp_path)
    line = _one_line(kstream(home, "--kubeconfig", config, pod, "8080"))
    assert line.endswith(f"(get pods {pod})")
    for version in KUBECTLS:
        theirs = kubectl(version, home, "--kubeconfig", config, pod, "8080")
        assert theirs.returncode == 1
        assert _last_line(theirs.stderr) == line, version


# --------------------------------------------------------------------------- named ports


@pytest.fixture(scope="module")
def named(node: FakeNode, echo: PodServer) -> dict[str, int]:
    """Pod ``named`` on the node: ``http`` is the echo server, ``down`` a dead port."""
    ports = {"http": echo.port, "down": dead_port()}
    node.add_pod("named", ports=ports)
    return ports


@pytest.mark.parametrize("version", KUBECTLS)
def test_named_port_forwards_as_kubectl(node: FakeNode, named: dict[str, int], home: Path,
                                        version: str) -> None:
    ports = ("--address", "127.0.0.1", "named", ":http")
    ours, our_code, _, our_err = _session(_argv_kstream(node, *ports), home, signal.SIGINT)
    theirs, their_code, _, _ = _session(_argv_kubectl(version, node, *ports), home,
                                        signal.SIGINT)
    assert ours == theirs == [f"Forwarding from 127.0.0.1:L -> {named['http']}",
                              "Handling connection for L", "Handling connection for L"]
    assert our_code == their_code == 0
    assert our_err == ""


@pytest.mark.parametrize("version", KUBECTLS)
def test_named_port_without_local_listens_on_its_number_as_kubectl(
        node: FakeNode, named: dict[str, int], home: Path, version: str) -> None:
    outputs = []
    for argv in (_argv_kstream, partial(_argv_kubectl, version)):
        forward = Forward(argv(node, "--address", "127.0.0.1", "named", "down"), home)
        try:
            first = forward.line()
        finally:
            code, _, _ = forward.finish(signal.SIGINT)
        outputs.append((first, code))
    down = named["down"]
    assert outputs[0] == outputs[1] == (f"Forwarding from 127.0.0.1:{down} -> {down}\n", 0)


@pytest.mark.parametrize(("pod", "port", "line"), [
    ("named", "metrics", "error: Pod 'named' does not have a named port 'metrics'"),
    ("pod/named", "9000:metrics", "error: Pod 'named' does not have a named port 'metrics'"),
    ("named", ":metrics", "error: Pod 'named' does not have a named port 'metrics'"),
    # Go's Atoi refuses these, so kubectl looks them up as names.
    ("demo", "80:0x50", "error: Pod 'demo' does not have a named port '0x50'"),
    ("demo", "8080:", "error: Pod 'demo' does not have a named port ''"),
    # A missing pod comes first, whatever the ports.
    ("nope", "http", 'Error from server (NotFound): pods "nope" not found'),
    ("nope", "99999", 'Error from server (NotFound): pods "nope" not found'),
])
def test_missing_named_port_as_kubectl(node: FakeNode, named: dict[str, int], home: Path,
                                       pod: str, port: str, line: str) -> None:
    # The name is looked up before the numbers are checked: a bad number after it does
    # not come first.
    ours = kstream(home, "--kubeconfig", node.kubeconfig, pod, port, "99999")
    assert _one_line(ours) == line
    for version in KUBECTLS:
        theirs = kubectl(version, home, "--kubeconfig", node.kubeconfig, pod, port, "99999")
        assert (theirs.returncode, theirs.stdout) == (1, ""), version
        assert _last_line(theirs.stderr) == line, version


@pytest.mark.parametrize(("port", "line"), [
    ("x:80", "error: error parsing local port 'x': strconv.ParseUint: parsing \"x\": "
             "invalid syntax"),
    ("80:99999", "error: error parsing remote port '99999': strconv.ParseUint: parsing "
                 "\"99999\": value out of range"),
    ("1:+80", "error: error parsing remote port '+80': strconv.ParseUint: parsing "
              "\"+80\": invalid syntax"),
    ("80:0", "error: remote port must be > 0"), ("0", "error: remote port must be > 0"),
])
def test_bad_port_number_as_kubectl(node: FakeNode, home: Path, port: str,
                                    line: str) -> None:
    assert _one_line(kstream(home, "--kubeconfig", node.kubeconfig, "demo", port)) == line
    for version in KUBECTLS:
        theirs = kubectl(version, home, "--kubeconfig", node.kubeconfig, "demo", port)
        assert (theirs.returncode, theirs.stdout) == (1, ""), version
        assert _last_line(theirs.stderr) == line, version


@contextlib.contextmanager
def _busy_port() -> Iterator[int]:
    """A port of 127.0.0.1 that something else listens on (::1's is free)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


def _lines(text: str, port: int) -> list[str]:
    # kubectl logs its failed discovery requests (E... memcache.go) before its message.
    return [line.replace(str(port), "P") for line in text.splitlines()
            if line.strip() and " memcache.go:" not in line]


def test_a_busy_address_given_by_itself_fails_its_port_as_kubectl(node: FakeNode,
                                                                   home: Path) -> None:
    # An address given by itself must listen: its port fails, and with no port left,
    # the command; the ::1 listener that did open is reported first, as kubectl does.
    with _busy_port() as busy:
        args = ("--kubeconfig", node.kubeconfig, "--address", "127.0.0.1,::1", "demo",
                f"{busy}:80")
        ours = kstream(home, *args)
        expected = (1, ["Forwarding from [::1]:P -> 80"], [
            "Unable to listen on port P: Listeners failed to create with the following "
            "errors: [unable to create listener: Error listen tcp4 127.0.0.1:P: bind: "
            "address already in use]",
            "error: unable to listen on any of the requested ports: [{P 80}]"])
        assert (ours.returncode, _lines(ours.stdout, busy),
                _lines(ours.stderr, busy)) == expected
        for version in KUBECTLS:
            theirs = kubectl(version, home, *args)
            assert (theirs.returncode, _lines(theirs.stdout, busy),
                    _lines(theirs.stderr, busy)) == expected, version


@pytest.mark.parametrize("version", [None, *KUBECTLS])
def test_localhost_needs_only_one_of_its_addresses_as_kubectl(node: FakeNode, echo: PodServer,
                                                              home: Path,
                                                              version: str | None) -> None:
    # localhost is 127.0.0.1 and ::1: one listening is enough, and the other's failure is
    # not mentioned. A second port that listens keeps the command going.
    with _busy_port() as busy:
        ports = ("demo", f"{busy}:{echo.port}", f"0:{echo.port}")
        argv = (_argv_kstream(node, *ports) if version is None
                else _argv_kubectl(version, node, *ports))
        forward = Forward(argv, home)
        try:
            lines = [forward.line() for _ in range(3)]
            free = int(lines[1].split(":")[1].split()[0])
            assert _echo_through(free, b"still forwarding") == b"still forwarding"
        finally:
            code, _, stderr = forward.finish(signal.SIGINT)
    assert [line.rstrip("\n").replace(str(free), "F").replace(str(busy), "P")
            for line in lines] == [f"Forwarding from [::1]:P -> {echo.port}",
                                   f"Forwarding from 127.0.0.1:F -> {echo.port}",
                                   f"Forwarding from [::1]:F -> {echo.port}"]
    assert code == 0
    assert _lines(stderr, busy) == []
