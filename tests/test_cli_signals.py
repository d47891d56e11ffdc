"""Ctrl-C, closed pipes and terminals: ``kstream exec``/``attach`` end as kubectl ends.

kubectl dies of the signal (SIGINT: the shell shows 130; SIGPIPE: 141) and prints
nothing; the server then ends the remote process. With a terminal, raw mode is always
restored, and ``attach -t`` to a main process without a terminal falls back to none.

The server is a :class:`~kstream.testing.FakeNode`: its pods run real local processes
(so a remote process id printed by the command can be watched here), and its session
records say when the node saw a session end.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from kstream.testing import FakeNode, SessionRecord

_TIMEOUT = 30


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """One fake node for the module: ``demo`` runs ``cat``, ``sleeper`` sleeps."""
    node = FakeNode()
    node.add_pod("demo")
    node.add_pod("sleeper", command=["sleep", "1000"])
    with node.in_thread():
        yield node


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for client processes, without proxies or stray kube settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
    env.update(extra)
    return env


def kubectl_dir() -> Path:
    """The directory holding the versioned kubectl binaries (``kubectl.1.27`` ...)."""
    kubectl = subprocess.run(["sh", "-c", 'readlink -f "$(command -v kubectl)"'],
                             capture_output=True, text=True, check=False).stdout.strip()
    return Path(kubectl).parent if kubectl else Path("/nonexistent")


def _ended(server: FakeNode, first: int, subresource: str) -> SessionRecord:
    """The one session the node accepted since session number ``first``, once over.

    The node sees the client go: the session's record is finished (its process ended
    with it, for an exec).
    """
    record = server.wait_for_session(first, _TIMEOUT)
    assert record.subresource == subresource
    assert record.wait_finished(_TIMEOUT), "the node still runs the session"
    assert len(server.sessions) == first + 1, server.sessions
    return record


def _gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether process ``pid`` ends (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except (FileNotFoundError, ProcessLookupError):  # reaped, even while reading
            return True
        time.sleep(0.05)
    return False


def _kstream(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "kstream", *args], env=clean_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _kubectl(*args: str) -> subprocess.Popen[bytes]:
    binary = kubectl_dir() / "kubectl.1.33"
    assert binary.exists(), f"kubectl is missing: {binary}"
    return subprocess.Popen([str(binary), *args], env=clean_env(), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("client", [_kstream, _kubectl], ids=["kstream", "kubectl"])
def test_ctrl_c_during_exec_is_silent_and_ends_the_remote_process(
        server: FakeNode, client: Callable[..., subprocess.Popen[bytes]]) -> None:
    first = len(server.sessions)
    process = client("exec", "--kubeconfig", str(server.kubeconfig), "-i", "demo", "--",
                     "sh", "-c", "echo $$; exec sleep 1000")
    try:
        assert process.stdout is not None
        remote = int(process.stdout.readline())
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Killed by SIGINT, as kubectl: the shell reports 128 + 2 = 130.
    assert (process.returncode, err) == (-signal.SIGINT, b"")
    assert _gone(remote), "the remote process outlived the client"
    record = _ended(server, first, "exec")
    # The node killed it when the client left: 128 + SIGKILL, as a runtime reports it.
    assert (record.argv[:2], record.exit_code) == (("sh", "-c"), 128 + signal.SIGKILL)


def test_ctrl_c_during_attach_is_silent(server: FakeNode) -> None:
    config = str(server.kubeconfig)
    first = len(server.sessions)
    process = _kstream("attach", "--kubeconfig", config, "-i", "sleeper")
    try:
        server.wait_for_session(first, _TIMEOUT)  # attached: the node upgraded it
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (process.returncode, err) == (-signal.SIGINT, b"")
    assert _ended(server, first, "attach").pod == "sleeper"
    # As in Kubernetes, leaving an attach does not end the main process.
    again = subprocess.run([sys.executable, "-m", "kstream", "exec", "--kubeconfig", config,
                            "sleeper", "--", "true"], capture_output=True, timeout=_TIMEOUT,
                           env=clean_env(), check=False)
    assert (again.returncode, again.stderr) == (0, b"")


@pytest.mark.parametrize("client", ["kstream", "kubectl"])
def test_a_closed_pipe_ends_quietly_with_141(server: FakeNode, client: str) -> None:
    # `kstream exec ... | head -1` in bash, as a user types it.
    first = len(server.sessions)
    program = [sys.executable, "-m", "kstream"] if client == "kstream" \
        else [str(kubectl_dir() / "kubectl.1.33")]
    script = ('"$@" exec --kubeconfig "$0" demo -- sh -c "echo \\$\\$; exec yes" '
              '| head -1; echo "${PIPESTATUS[0]}"')
    result = subprocess.run(["bash", "-c", script, str(server.kubeconfig), *program],
                            capture_output=True, timeout=_TIMEOUT, env=clean_env(),
                            check=False)
    remote, status = result.stdout.decode().split()
    assert (status, result.stderr) == ("141", b"")
    assert _gone(int(remote)), "the remote process outlived the client"
    assert _ended(server, first, "exec").exit_code == 128 + signal.SIGKILL  # by the node


# --------------------------------------------------------------------------- terminals


def _controlling_terminal() -> None:
    # The child's stdin (the pty) becomes its controlling terminal: ^C is a SIGINT.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class _Terminal:
    """A pseudo-terminal that is the controlling terminal of a ``kstream`` process."""

    def __init__(self, *args: str, program: Sequence[str] = (sys.executable, "-m",
                                                             "kstream")) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            [*program, *args], stdin=slave, stdout=slave,
            stderr=slave, env=clean_env(), preexec_fn=_controlling_terminal)
        os.close(slave)
        self.seen = bytearray()

    def read_until(self, marker: bytes, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.master], [], [], remaining)[0]:
                return False
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            self.seen += chunk
        return True

    def canonical(self) -> bool:
        """The terminal is in its cooked mode (line editing, echo), not raw."""
        flags = termios.tcgetattr(self.master)[3]
        return bool(flags & termios.ICANON and flags & termios.ECHO and flags & termios.ISIG)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        os.close(self.master)


def test_attach_tty_to_a_main_process_without_one_falls_back(server: FakeNode) -> None:
    first = len(server.sessions)
    terminal = _Terminal("attach", "--kubeconfig", str(server.kubeconfig), "-i", "-t", "demo")
    try:
        # kubectl 1.27-1.33 print exactly this line, then attach without a terminal.
        assert terminal.read_until(
            b"error: Unable to use a TTY - container main did not allocate one\r\n"), \
            terminal.seen
        record = server.wait_for_session(first, _TIMEOUT)  # attached
        assert (record.subresource, record.tty) == ("attach", False)
        assert terminal.canonical()
        os.write(terminal.master, b"hello\r")
        assert terminal.read_until(b"hello\r\nhello\r\n"), terminal.seen  # echo, then cat
        os.write(terminal.master, b"\x03")  # Ctrl-C works: no raw mode
        assert terminal.process.wait(timeout=_TIMEOUT) == -signal.SIGINT
        assert terminal.canonical()
        assert b"Traceback" not in terminal.seen
    finally:
        terminal.close()


def test_kubectl_attach_tty_falls_back_with_the_same_line(server: FakeNode) -> None:
    binary = kubectl_dir() / "kubectl.1.33"
    assert binary.exists(), f"kubectl is missing: {binary}"
    terminal = _Terminal("attach", "--kubeconfig", str(server.kubeconfig), "-i", "-t", "demo",
                         program=[str(binary)])
    try:
        assert terminal.read_until(
            b"error: Unable to use a TTY - container main did not allocate one\r\n"), \
            terminal.seen
    finally:
        terminal.close()


def test_raw_mode_is_restored_when_terminated(server: FakeNode) -> None:
    terminal = _Terminal("exec", "--kubeconfig", str(server.kubeconfig), "-i", "-t", "demo",
                         "--", "sh", "-c", "echo ready; exec sleep 1000")
    try:
        assert terminal.read_until(b"ready"), terminal.seen
        assert not terminal.canonical()  # raw while the session runs
        terminal.process.send_signal(signal.SIGTERM)
        assert terminal.process.wait(timeout=_TIMEOUT) == -signal.SIGTERM
        assert terminal.canonical()
        assert b"Traceback" not in terminal.seen
    finally:
        terminal.close()
