"""``kstream exec`` / ``attach`` against ``kstream serve``, and the Go peer; argument parsing."""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from peers.gopeer import GoPeerServer

from kstream._app.cli import _split_command, build_parser, parse_pod_option
from kstream.testing import FakeNode

_TIMEOUT = 60


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """One fake node for the module (TLS with its own CA, as ``kstream serve``)."""
    node = FakeNode()
    node.add_pod("demo")
    node.add_pod("box", namespace="team", command=["cat"])
    with node.in_thread():
        yield node


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for client processes, without proxies or stray kube settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
    env.update(extra)
    return env


def kstream(*args: str, stdin: bytes = b"", env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[bytes]:
    """Run the ``kstream`` command line in a child process."""
    return subprocess.run([sys.executable, "-m", "kstream", *args], input=stdin,
                          capture_output=True, timeout=_TIMEOUT, check=False,
                          env=env or clean_env())


def kstream_all(*invocations: Sequence[str], env: dict[str, str] | None = None
                ) -> list[subprocess.CompletedProcess[bytes]]:
    """Run several ``kstream`` command lines at once (no stdin); results in order."""
    with ThreadPoolExecutor(len(invocations)) as pool:
        return list(pool.map(lambda args: kstream(*args, env=env), invocations))


# (transport, protocol, how a non-zero exit reads): v4/v5 carry the exit code; v1-v3
# only a message, so the command fails with exit status 1 and prints it.
PROTOCOLS = [
    ("websocket", "v5.channel.k8s.io", "code"),
    ("websocket", "v4.channel.k8s.io", "code"),
    ("websocket", "v4.base64.channel.k8s.io", "code"),
    ("websocket", "channel.k8s.io", "message"),
    ("websocket", "base64.channel.k8s.io", "message"),
    ("spdy", "v4.channel.k8s.io", "code"),
    ("spdy", "v3.channel.k8s.io", "message"),
    ("spdy", "v2.channel.k8s.io", "message"),
    ("spdy", "channel.k8s.io", "message"),
]


@pytest.mark.parametrize(("transport", "protocol", "exit_form"), PROTOCOLS,
                         ids=[f"{t}-{p}" for t, p, _ in PROTOCOLS])
def test_exec_every_transport_and_protocol(server: FakeNode, transport: str,
                                          protocol: str, exit_form: str) -> None:
    binary = bytes(range(256)) * 4
    result = kstream(
        "exec", "--kubeconfig", str(server.kubeconfig), "-v", "--transport", transport,
        "--protocol", protocol, "demo", "--",
        sys.executable, "-c",
        "import sys; sys.stdout.buffer.write(bytes(range(256)) * 4); "
        "sys.stderr.write('to stderr\\n'); sys.exit(3)")
    assert result.stdout == binary
    lines = result.stderr.decode().splitlines()
    assert lines[0] == f"kstream: transport {transport}, protocol {protocol}"
    assert "to stderr" in lines[1]
    if exit_form == "code":
        assert result.returncode == 3
        assert lines[-1] == "command terminated with exit code 3"
    else:
        assert result.returncode == 1
        assert lines[-1].startswith("error: command terminated with non-zero exit code:")


@pytest.mark.parametrize(("transport", "protocol"), [
    ("websocket", "v5.channel.k8s.io"), ("spdy", "v4.channel.k8s.io"),
    ("spdy", "v2.channel.k8s.io")])
def test_stdin_forwarded_and_closed(server: FakeNode, transport: str,
                                    protocol: str | None) -> None:
    payload = os.urandom(3 << 20)
    extra = ["--protocol", protocol] if protocol else []
    result = kstream("exec", "--kubeconfig", str(server.kubeconfig), "-i",
                     "--transport", transport, *extra, "demo", "--", "cat", stdin=payload)
    assert result.returncode == 0, result.stderr
    assert result.stdout == payload


def test_stdin_on_v4_websocket_without_half_close(server: FakeNode) -> None:
    # v4 cannot signal end of input: the command must stop by itself.
    result = kstream("exec", "--kubeconfig", str(server.kubeconfig), "-i", "-v",
                     "--transport", "websocket", "--protocol", "v4.base64.channel.k8s.io",
                     "demo", "--", "head", "-c", "5", stdin=b"hello world")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello"


def test_exit_codes_and_double_dash(server: FakeNode) -> None:
    config = str(server.kubeconfig)
    *codes, dashes = kstream_all(
        *(["exec", "--kubeconfig", config, "demo", "--", "sh", "-c", f"exit {code}"]
          for code in (0, 255)),
        # A "--" inside the remote command stays there.
        ["exec", "--kubeconfig", config, "demo", "--",
         "sh", "-c", 'printf "%s," "$@"', "sh", "--", "-x"])
    assert [result.returncode for result in codes] == [0, 255]
    assert all(result.stderr == b"" for result in codes)  # without -v: the remote's only
    assert dashes.stdout == b"--,-x,"


def test_namespace_and_attach(server: FakeNode) -> None:
    result = kstream("attach", "--kubeconfig", str(server.kubeconfig), "-n", "team", "-i",
                     "box", stdin=b"attached\n")
    assert (result.returncode, result.stdout) == (0, b"attached\n")
    result = kstream("exec", "--kubeconfig", str(server.kubeconfig), "--namespace", "team",
                     "-c", "main", "box", "--", "pwd")
    assert b"kstream-pod-box-" in result.stdout


def _ca_file(server: FakeNode) -> str:
    """The CA the node generated (TLS is its default), as a PEM file."""
    assert server.ca_file is not None
    return server.ca_file


def test_errors_print_the_server_message(server: FakeNode) -> None:
    config = str(server.kubeconfig)
    missing, binary, container, no_command, refused, unreachable = kstream_all(
        ["exec", "--kubeconfig", config, "nopod", "--", "true"],
        ["exec", "--kubeconfig", config, "demo", "--", "kstream-no-such"],
        ["exec", "--kubeconfig", config, "-c", "side", "demo", "--", "true"],
        ["exec", "--kubeconfig", config, "demo"],
        ["exec", "--server", server.server, "--certificate-authority", _ca_file(server),
         "--token", "wrong", "demo", "--", "true"],
        ["exec", "--server", "http://127.0.0.1:1", "--token", "t", "--request-timeout", "5",
         "demo", "--", "true"],
    )
    assert missing.returncode == 1
    assert missing.stderr == b'Error from server (NotFound): pods "nopod" not found\n'
    assert binary.returncode == 1
    assert b"executable file not found in $PATH" in binary.stderr
    assert container.returncode == 1
    assert b"container side is not valid for pod demo" in container.stderr
    assert no_command.returncode == 1
    assert b"at least one command" in no_command.stderr
    assert refused.returncode == 1
    assert b"Unauthorized" in refused.stderr
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith(b"error: ")


def test_flags_environment_and_nothing(server: FakeNode, tmp_path: Path) -> None:
    bare = clean_env(HOME=str(tmp_path))
    by_env = clean_env(HOME=str(tmp_path), KUBECONFIG=str(server.kubeconfig))
    flags, nothing = kstream_all(
        # --server and --token alone, nothing else configured.
        ["exec", "--server", server.server, "--certificate-authority", _ca_file(server),
         "--token", server.token, "demo", "--", "echo", "f"],
        ["exec", "demo", "--", "true"], env=bare)
    assert (flags.returncode, flags.stdout) == (0, b"f\n")
    assert nothing.returncode == 1
    assert b"no configuration" in nothing.stderr
    from_env = kstream("exec", "demo", "--", "echo", "env", env=by_env)
    assert (from_env.returncode, from_env.stdout) == (0, b"env\n")


def test_tty_without_terminal_is_dropped(server: FakeNode) -> None:
    result = kstream("exec", "--kubeconfig", str(server.kubeconfig), "-i", "-t", "demo",
                     "--", "sh", "-c", "cat; test -t 0 || echo notty", stdin=b"x")
    assert result.stdout == b"xnotty\n"
    assert b"Unable to use a TTY" in result.stderr


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_exec_against_the_go_peer(go_server: GoPeerServer, transport: str) -> None:
    common = ["--server", go_server.url, "--token", "t", "--transport", transport]
    result = kstream("exec", *common, "-v", "-i", "demo", "--", "cat", stdin=b"to go\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"to go\n"
    assert f"kstream: transport {transport}, protocol ".encode() in result.stderr
    assert kstream("exec", *common, "demo", "--", "exit", "7").returncode == 7


# --------------------------------------------------------------------------- parsing


def test_parse_pod_option() -> None:
    assert parse_pod_option("web") == ("default", "web", ())
    assert parse_pod_option("apps/web=sh -c 'read x; echo $x'") == (
        "apps", "web", ("sh", "-c", "read x; echo $x"))
    with pytest.raises(argparse.ArgumentTypeError):
        parse_pod_option("=cat")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_pod_option("web=sh -c 'unclosed")


def test_split_command_keeps_inner_double_dash() -> None:
    assert _split_command(["exec", "-i", "p", "--", "a", "--", "b"]) == (
        ["exec", "-i", "p"], ["a", "--", "b"])
    assert _split_command(["serve"]) == (["serve"], [])


def test_parser_flags_match_kubectl() -> None:
    args = build_parser().parse_args(
        ["exec", "-n", "ns", "-c", "ctr", "-i", "-t", "--context", "ctx", "-s", "https://x",
         "--insecure-skip-tls-verify", "--protocol", "a", "--protocol", "b", "pod"])
    assert (args.namespace, args.container, args.stdin, args.tty) == ("ns", "ctr", True, True)
    assert (args.context, args.server, args.insecure_skip_tls_verify) == (
        "ctx", "https://x", True)
    assert args.protocol == ["a", "b"]
    serve = build_parser().parse_args(["serve", "--pod", "a=cat -n", "--port", "0"])
    assert serve.pod == [("default", "a", ("cat", "-n"))]


def _read_until(fd: int, marker: bytes, seen: bytearray, *, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return False
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        seen += chunk
    return True


def _set_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def test_tty_raw_mode_and_window_size_forwarding(server: FakeNode) -> None:
    master, slave = pty.openpty()
    _set_size(slave, 30, 100)
    process = subprocess.Popen(
        [sys.executable, "-m", "kstream", "exec", "--kubeconfig", str(server.kubeconfig),
         "-i", "-t", "demo", "--", "sh", "-c",
         "stty size; while read line; do [ \"$line\" = q ] && exit 4; stty size; done"],
        stdin=slave, stdout=slave, stderr=slave, env=clean_env(), start_new_session=True)
    os.close(slave)
    seen = bytearray()
    try:
        assert _read_until(master, b"30 100", seen), seen
        _set_size(master, 50, 120)
        process.send_signal(signal.SIGWINCH)
        # Each line makes the remote print its size; the resize travels on its own
        # channel, so repeat until the new size shows (bounded).
        for _ in range(50):
            os.write(master, b"\r")
            if _read_until(master, b"50 120", seen, timeout=0.2):
                break
        assert b"50 120" in seen, seen
        os.write(master, b"q\r")
        assert process.wait(timeout=_TIMEOUT) == 4
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
