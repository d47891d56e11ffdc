"""Real kubectl 1.27 .. 1.33 against ``kstream serve``'s engine (a FakeNode), with its kubeconfig.

kubectl <= 1.28 speaks SPDY; 1.29 WebSocket v5 only with
``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true``; 1.30+ WebSocket v5 by default, SPDY when the
variable is ``false`` (protocol-notes §5.1). Each case checks, from the node's session
records, that the transport kubectl used is the one expected. A missing kubectl fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kstream.testing import FakeNode

_TIMEOUT = 120


@dataclass(frozen=True)
class Client:
    """One kubectl configuration under test."""

    version: str
    websockets: str | None  # KUBECTL_REMOTE_COMMAND_WEBSOCKETS
    transport: str  # what the server must see: "websocket" or "spdy"

    def __str__(self) -> str:
        suffix = f"-ws={self.websockets}" if self.websockets else ""
        return f"{self.version}{suffix}"


CLIENTS = [
    Client("1.27", None, "spdy"),
    Client("1.28", None, "spdy"),
    Client("1.29", "true", "websocket"),
    Client("1.30", None, "websocket"),
    Client("1.31", None, "websocket"),
    Client("1.32", None, "websocket"),
    Client("1.33", None, "websocket"),
    Client("1.33", "false", "spdy"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """One fake node (TLS with its generated CA, the default) for the module."""
    node = FakeNode()
    node.add_pod("demo", command=["cat"])
    node.add_pod("other", command=["cat"])
    with node.in_thread():
        yield node


def kubectl_dir() -> Path:
    """The directory holding the versioned kubectl binaries (``kubectl.1.27`` ...)."""
    kubectl = subprocess.run(["sh", "-c", 'readlink -f "$(command -v kubectl)"'],
                             capture_output=True, text=True, check=False).stdout.strip()
    return Path(kubectl).parent if kubectl else Path("/nonexistent")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for client processes, without proxies or stray kube settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
    env.update(extra)
    return env


def _config(server: FakeNode) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(Path(server.kubeconfig).read_text())
    return document


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private HOME, so kubectl's discovery cache stays out of the real one."""
    return tmp_path_factory.mktemp("home")


def _kubectl(client: Client, server: FakeNode, home: Path, *args: str,
             stdin: bytes = b"", kubeconfig: Path | None = None
             ) -> subprocess.CompletedProcess[bytes]:
    binary = kubectl_dir() / f"kubectl.{client.version}"
    assert binary.exists(), f"kubectl {client.version} is not installed ({binary})"
    env = clean_env(HOME=str(home))
    if client.websockets is not None:
        env["KUBECTL_REMOTE_COMMAND_WEBSOCKETS"] = client.websockets
    before = len(server.sessions)
    result = subprocess.run(
        [str(binary), "--kubeconfig", str(kubeconfig or server.kubeconfig), *args],
        input=stdin, capture_output=True, env=env, timeout=_TIMEOUT, check=False,
    )
    sessions = server.sessions[before:]
    assert sessions, f"no session reached the server: {result.stderr!r}"
    assert sessions[-1].transport == client.transport, (sessions, result.stderr)
    return result


@pytest.mark.parametrize("client", CLIENTS, ids=str)
def test_exec_stdin_8_mib_through_cat(client: Client, server: FakeNode,
                                      home: Path) -> None:
    payload = os.urandom(8 << 20)
    result = _kubectl(client, server, home, "exec", "-i", "demo", "--", "cat", stdin=payload)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == len(payload)
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(payload).digest()


@pytest.mark.parametrize("client", CLIENTS, ids=str)
def test_exit_codes_propagate(client: Client, server: FakeNode, home: Path) -> None:
    for code in (0, 3, 255):
        result = _kubectl(client, server, home, "exec", "demo", "--",
                          "sh", "-c", f"exit {code}")
        assert result.returncode == code, result.stderr


@pytest.mark.parametrize("client", CLIENTS, ids=str)
def test_stdout_and_stderr_apart(client: Client, server: FakeNode, home: Path) -> None:
    result = _kubectl(client, server, home, "exec", "other", "--",
                      "sh", "-c", "printf out; printf err >&2; pwd")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"out/")  # then the pod's own working directory
    assert b"kstream-pod-other-" in result.stdout
    assert result.stderr == b"err"


@pytest.mark.parametrize("client", CLIENTS, ids=str)
def test_missing_binary_is_an_error(client: Client, server: FakeNode, home: Path) -> None:
    result = _kubectl(client, server, home, "exec", "demo", "--", "kstream-no-such-binary")
    assert result.returncode == 1
    assert b"executable file not found in $PATH" in result.stderr


@pytest.mark.parametrize("client", CLIENTS, ids=str)
def test_attach_with_stdin(client: Client, server: FakeNode, home: Path) -> None:
    line = f"hello from kubectl {client}\n".encode()
    result = _kubectl(client, server, home, "attach", "-i", "demo", stdin=line)
    assert result.returncode == 0, result.stderr
    assert result.stdout == line


def test_unknown_pod(server: FakeNode, home: Path) -> None:
    binary = kubectl_dir() / "kubectl.1.33"
    result = subprocess.run(
        [str(binary), "--kubeconfig", str(server.kubeconfig), "exec", "nopod", "--", "true"],
        capture_output=True, env=clean_env(HOME=str(home)), timeout=_TIMEOUT, check=False)
    assert result.returncode == 1
    assert b'pods "nopod" not found' in result.stderr


def test_default_is_tls_with_a_pinned_ca_and_a_bearer_token(server: FakeNode) -> None:
    # Every kubectl case of this module ran against this server: TLS, the generated CA
    # in the kubeconfig, and the token as a bearer header (not in the URL).
    config = _config(server)
    cluster = config["clusters"][0]["cluster"]
    assert server.server.startswith("https://127.0.0.1:")
    assert cluster["server"] == server.server
    assert "BEGIN CERTIFICATE" in base64.b64decode(cluster["certificate-authority-data"]).decode()
    assert "/kstream/" not in cluster["server"]


def test_kubectl_over_plain_http_with_the_token_in_the_path(home: Path) -> None:
    client = Client("1.33", None, "websocket")
    with FakeNode(tls=False).in_thread() as plain:
        assert _config(plain)["clusters"][0]["cluster"]["server"] == plain.server
        assert plain.server.startswith("http://127.0.0.1:")
        assert plain.server.endswith(f"/kstream/{plain.token}")
        result = _kubectl(client, plain, home, "exec", "-i", "demo", "--", "cat",
                          stdin=b"plain\n")
        assert (result.stdout, result.returncode) == (b"plain\n", 0)


def test_kubectl_over_tls(tmp_path: Path, tls_files: tuple[Path, Path], home: Path) -> None:
    cert, key = tls_files
    client = Client("1.33", None, "websocket")
    with FakeNode(tls_cert=cert, tls_key=key).in_thread() as tls_server:
        assert tls_server.server.startswith("https://127.0.0.1:")
        config = _config(tls_server)
        assert config["clusters"][0]["cluster"]["server"] == tls_server.server
        result = _kubectl(client, tls_server, home, "exec", "-i", "demo", "--",
                          "sh", "-c", "cat; exit 7", stdin=b"over tls\n")
        assert result.stdout == b"over tls\n"
        assert result.returncode == 7
        # With a wrong token: 401, and kubectl says so.
        config["users"][0]["user"]["token"] = "wrong"
        anonymous = tmp_path / "anonymous"
        anonymous.write_text(json.dumps(config))
        binary = kubectl_dir() / "kubectl.1.33"
        refused = subprocess.run(
            [str(binary), "--kubeconfig", str(anonymous), "exec", "demo", "--", "true"],
            capture_output=True, env=clean_env(HOME=str(home)), timeout=_TIMEOUT,
            check=False)
        assert refused.returncode == 1
        assert b"Unauthorized" in refused.stderr or b"unauthorized" in refused.stderr
