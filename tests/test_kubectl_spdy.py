"""Interop: real kubectl execs over SPDY into kstream's SpdyExecServer (a FakeNode).

kubectl 1.27 speaks only SPDY for exec (protocol-notes §5.1); kubectl 1.33 does when
``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false``. The binaries must be installed next to
``kubectl`` (``kubectl.1.27`` ...): a missing peer fails the test, it never skips.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kstream._channels import V4_NAME
from kstream.testing import FakeNode

_TIMEOUT = 60


def _kubectl(version: str) -> Path:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is not on PATH"
    binary = Path(os.path.realpath(kubectl)).parent / f"kubectl.{version}"
    assert binary.is_file(), f"{binary} is missing: install kubectl {version}"
    return binary


@pytest.fixture(scope="module")
def stub() -> Iterator[FakeNode]:
    """A node for the module whose pod ``p`` runs local processes."""
    node = FakeNode()
    node.add_pod("p")
    with node.in_thread():
        yield node


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kubectl's discovery cache, out of the real HOME."""
    return tmp_path_factory.mktemp("kubectl-cache")


def _run(stub: FakeNode, cache: Path, version: str, args: Sequence[str], *,
         stdin: bytes = b"", websockets: bool | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("KUBECTL_") and key != "KUBECONFIG"}
    if websockets is not None:
        env["KUBECTL_REMOTE_COMMAND_WEBSOCKETS"] = "true" if websockets else "false"
    return subprocess.run(
        [str(_kubectl(version)), "--kubeconfig", stub.kubeconfig, "--cache-dir",
         str(cache / f"cache-{version}"), "--request-timeout", "30s", *args],
        input=stdin, capture_output=True, env=env, timeout=_TIMEOUT, check=False)


def test_kubectl_127_stdin_to_stdout_is_byte_exact(stub: FakeNode, cache: Path) -> None:
    data = os.urandom(1 << 20)
    before = len(stub.sessions)
    result = _run(stub, cache, "1.27", ["exec", "-i", "p", "--", "cat"], stdin=data)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert len(result.stdout) == len(data)
    assert hashlib.sha256(result.stdout).hexdigest() == hashlib.sha256(data).hexdigest()
    record = stub.sessions[before]
    assert record.argv == ("cat",)
    assert record.protocol == V4_NAME  # 1.27 offers v4, v3, v2, v1 over SPDY
    assert record.offered[0] == V4_NAME
    assert record.stdin_bytes == len(data)
    assert record.exit_code == 0


def test_kubectl_127_exit_code_is_kubectls_own(stub: FakeNode, cache: Path) -> None:
    result = _run(stub, cache, "1.27", ["exec", "p", "--", "sh", "-c", "exit 3"])
    assert result.returncode == 3, result.stderr.decode(errors="replace")
    assert result.stdout == b""
    assert b"command terminated with exit code 3" in result.stderr


def test_kubectl_127_stdout_and_stderr_kept_apart(stub: FakeNode, cache: Path) -> None:
    result = _run(stub, cache, "1.27", ["exec", "p", "--", "sh", "-c", "echo out; echo err >&2"])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"


def test_kubectl_127_missing_binary_is_a_failure_not_an_exit_code(stub: FakeNode,
                                                                  cache: Path) -> None:
    result = _run(stub, cache, "1.27", ["exec", "p", "--", "/nonexistent/kstream-test-binary"])
    assert result.returncode == 1
    assert b"error executing command in container" in result.stderr


def test_kubectl_127_wrong_token_is_refused(stub: FakeNode, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(Path(stub.kubeconfig).read_text().replace(stub.token, "wrong-token"))
    result = subprocess.run(
        [str(_kubectl("1.27")), "--kubeconfig", str(config), "--cache-dir",
         str(tmp_path / "cache"), "exec", "p", "--", "true"],
        capture_output=True, timeout=_TIMEOUT, check=False)
    assert result.returncode == 1
    assert b"the server has asked for the client to provide credentials" in result.stderr


def test_kubectl_127_rejected_upgrade_shows_the_status_message(stub: FakeNode, cache: Path) -> None:
    before = len(stub.sessions)
    result = _run(stub, cache, "1.27", ["exec", "p", "-c", "nope", "--", "true"])
    assert result.returncode == 1
    assert b"container nope is not valid for pod" in result.stderr
    assert len(stub.sessions) == before  # refused before any stream existed


def test_killed_kubectl_ends_the_remote_process(stub: FakeNode, cache: Path) -> None:
    before = len(stub.sessions)
    env = {key: value for key, value in os.environ.items() if not key.startswith("KUBECTL_")}
    with subprocess.Popen(
            [str(_kubectl("1.27")), "--kubeconfig", stub.kubeconfig, "--cache-dir",
             str(cache / "cache-1.27"), "exec", "p", "--", "sleep", "300"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) as kubectl:
        try:
            record = stub.wait_for_session(before, 30)
        finally:
            kubectl.kill()
            kubectl.wait(30)
    assert record.wait_finished(30)
    assert record.exit_code == 128 + 9  # SIGKILL, sent when the connection went away


def test_kubectl_133_spdy_stdin_to_stdout(stub: FakeNode, cache: Path) -> None:
    data = os.urandom(256 * 1024)
    before = len(stub.sessions)
    result = _run(stub, cache, "1.33", ["exec", "-i", "p", "--", "cat"], stdin=data,
                  websockets=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(data).digest()
    record = stub.sessions[before]
    assert record.protocol == V4_NAME
    # 1.33 offers v5 first over SPDY too; no SPDY server accepts it (protocol-notes §2.1).
    assert record.offered[0] == "v5.channel.k8s.io"
