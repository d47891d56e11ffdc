"""``kstream exec``/``attach`` as whole processes: every failure is one line, no traceback.

Connecting (refused, unknown host, TLS, a silent server, both transports refused),
arguments (kubectl's hint for a missing ``--``, ``-v=6``, ``--request-timeout``, usage on
errors, ``attach POD -- ARGS``, ``pod/NAME``) and server text (escaped, one line). The
wording is kubectl's where kubectl has one (checked against kubectl 1.27 and 1.33).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kstream.testing import FakeNode

_TIMEOUT = 60


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """One fake node for the module (TLS with its own CA, as ``kstream serve``)."""
    node = FakeNode()
    node.add_pod("demo")
    node.add_pod("box")
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


def kstream(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the ``kstream`` command line in a child process."""
    return subprocess.run([sys.executable, "-m", "kstream", *args], capture_output=True,
                          timeout=_TIMEOUT, check=False, env=clean_env(), stdin=subprocess.DEVNULL)


def kstream_all(*invocations: Sequence[str]) -> list[subprocess.CompletedProcess[bytes]]:
    """Run several command lines at once; results in order."""
    with ThreadPoolExecutor(len(invocations)) as pool:
        return list(pool.map(lambda args: kstream(*args), invocations))


def one_line(result: subprocess.CompletedProcess[bytes]) -> str:
    """The single line on stderr (asserting there is one, and no traceback)."""
    text = result.stderr.decode()
    assert "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def usage_error(result: subprocess.CompletedProcess[bytes], subcommand: str) -> str:
    """The error line of an argument error: exit code 2, the subcommand's usage first."""
    text = result.stderr.decode()
    assert "Traceback" not in text
    assert result.returncode == 2, text
    lines = text.splitlines()
    assert lines[0].startswith(f"usage: kstream {subcommand} "), lines
    errors = [line for line in lines if line.startswith(f"kstream {subcommand}: error: ")]
    assert len(errors) == 1, lines
    return errors[0].removeprefix(f"kstream {subcommand}: error: ")


def _ca_file(server: FakeNode) -> str:
    """The CA the node generated (TLS is its default), as a PEM file."""
    assert server.ca_file is not None
    return server.ca_file


# --------------------------------------------------------------------------- connecting


def test_connection_failures_name_the_server(server: FakeNode) -> None:
    assert server.server.startswith("https://127.0.0.1:")
    port = server.server.rsplit(":", 1)[1]
    ca = _ca_file(server)
    refused, unknown, untrusted, wrong_name = kstream_all(
        ["exec", "--server", "https://127.0.0.1:1", "--token", "t", "demo", "--", "true"],
        ["exec", "--server", "https://kstream-no-such-host.invalid:6443", "--token", "t",
         "--request-timeout", "20", "demo", "--", "true"],
        ["exec", "--server", server.server, "--token", "t", "demo", "--", "true"],
        ["exec", "--server", server.server, "--token", "t", "--certificate-authority", ca,
         "--tls-server-name", "wrong.example", "demo", "--", "true"])
    # kubectl's exact words.
    assert one_line(refused) == ("The connection to the server 127.0.0.1:1 was refused - "
                                 "did you specify the right host or port?")
    assert one_line(unknown).startswith(
        "Unable to connect to the server kstream-no-such-host.invalid:6443: "
        "lookup kstream-no-such-host.invalid: ")
    # kubectl: "Unable to connect to the server: tls: failed to verify certificate: x509:
    # certificate signed by unknown authority" -- here with the server named.
    assert one_line(untrusted) == (
        f"Unable to connect to the server 127.0.0.1:{port}: tls: failed to verify "
        f"certificate: self-signed certificate in certificate chain")
    assert one_line(wrong_name).startswith(
        f"Unable to connect to the server 127.0.0.1:{port}: tls: failed to verify "
        f"certificate: Hostname mismatch")
    assert {r.returncode for r in (refused, unknown, untrusted, wrong_name)} == {1}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_silent_server_times_out_with_a_message(silent_port: int) -> None:
    common = ["--server", f"http://127.0.0.1:{silent_port}", "--token", "t"]
    seconds, duration = kstream_all(
        ["exec", *common, "--request-timeout", "0.5", "demo", "--", "true"],
        ["exec", *common, "--request-timeout=500ms", "demo", "--", "true"])
    for result in (seconds, duration):
        assert result.returncode == 1
        assert one_line(result) == (
            f"Unable to connect to the server 127.0.0.1:{silent_port}: no answer within "
            f"0.5 s while connecting and upgrading (--request-timeout sets this deadline)")


def test_the_connect_deadline_defaults_to_30_seconds() -> None:
    from kstream._runtime.options import DEFAULT_CONNECT_TIMEOUT, ExecOptions

    assert DEFAULT_CONNECT_TIMEOUT == 30.0
    assert ExecOptions.build().connect_timeout == 30.0
    assert ExecOptions.build(connect_timeout=None).connect_timeout is None


class _RefusingServer:
    """Answers every upgrade with a refusal: WebSocket with a plain-text body of several
    lines, SPDY with a Status whose message holds control characters."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection, contextlib.suppress(OSError):
                connection.settimeout(10)
                head = connection.recv(4096)
                if head[:1] == b"\x16":  # a TLS handshake: answer as Go's HTTP server
                    connection.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")
                    continue
                while b"\r\n\r\n" not in head:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                if b"upgrade: websocket" in head.lower():
                    body = b"<html>\x1b[2Jno websocket here\nsecond line\n</html>"
                    answer = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n"
                else:
                    body = json.dumps({
                        "kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "Forbidden", "code": 403,
                        "message": "spdy is off\x1b]0;owned\x07 here"}).encode()
                    answer = b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
                connection.sendall(answer + b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                                   % len(body) + body)

    def close(self) -> None:
        self._listener.close()


def test_both_transports_refused_names_both_failures() -> None:
    refusing = _RefusingServer()
    try:
        result = kstream("exec", "--server", f"http://127.0.0.1:{refusing.port}", "--token",
                         "t", "demo", "--", "true")
    finally:
        refusing.close()
    assert result.returncode == 1
    # The last failure in kubectl's words, the first one after it; the server's text
    # escaped, the body that is not a Status cut to its first line.
    assert one_line(result) == (
        "Error from server (Forbidden): spdy is off\\x1b]0;owned\\x07 here (after WebSocket "
        "first: error: upgrade rejected: HTTP 400 Bad Request: <html>\\x1b[2Jno websocket "
        "here)")


def test_both_transports_refused_travel_with_the_error() -> None:
    import asyncio

    from kstream import UpgradeRejectedError
    from kstream._runtime.errors import earlier_attempts
    from kstream.asyncio import open_exec

    refusing = _RefusingServer()
    try:
        with pytest.raises(UpgradeRejectedError) as raised:
            asyncio.run(open_exec(f"http://127.0.0.1:{refusing.port}", "default", "demo",
                                  ["true"]))
    finally:
        refusing.close()
    assert raised.value.status_code == 403
    [(transport, first)] = earlier_attempts(raised.value)
    assert transport == "websocket"
    assert isinstance(first, UpgradeRejectedError) and first.status_code == 400
    assert raised.value.__notes__[0].startswith(
        "kstream: the websocket attempt failed first: upgrade rejected: HTTP 400")


def test_a_server_that_hangs_up_or_speaks_no_tls() -> None:
    refusing = _RefusingServer()
    with socket.socket() as hanging_up:
        hanging_up.bind(("127.0.0.1", 0))
        hanging_up.listen(8)
        port = hanging_up.getsockname()[1]

        def hang_up() -> None:
            with contextlib.suppress(OSError):
                while True:
                    hanging_up.accept()[0].close()

        threading.Thread(target=hang_up, daemon=True).start()
        try:
            closed, plain = kstream_all(
                ["exec", "--server", f"http://127.0.0.1:{port}", "--token", "t", "demo",
                 "--", "true"],
                ["exec", "--server", f"https://127.0.0.1:{refusing.port}", "--token", "t",
                 "demo", "--", "true"])
        finally:
            refusing.close()
    # (With "(connection reset by peer)" when the close finds the request unread.)
    assert one_line(closed).startswith(f"Unable to connect to the server 127.0.0.1:{port}: "
                                       f"the server closed the connection before answering")
    # kubectl: "Unable to connect to the server: http: server gave HTTP response to HTTPS
    # client".
    assert one_line(plain) == (f"Unable to connect to the server 127.0.0.1:{refusing.port}: "
                               f"tls: the server does not speak TLS (is it http://?)")


# --------------------------------------------------------------------------- arguments


def test_argument_errors_print_the_usage() -> None:
    missing_dash, attach_args, attach_dash, bad_timeout, unknown_flag, service, no_pod = \
        kstream_all(
            ["exec", "demo", "ls", "-l"],
            ["attach", "demo", "ls"],
            ["attach", "demo", "--", "ls"],
            ["exec", "--request-timeout=abc", "demo", "--", "true"],
            ["exec", "--no-such-flag", "demo", "--", "true"],
            ["exec", "svc/demo", "--", "true"],
            ["exec", "--", "true"])
    # kubectl 1.33: "error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD]
    # -- [COMMAND] instead"
    assert usage_error(missing_dash, "exec") == (
        "exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead")
    # kubectl reads `attach demo -- ls` as TYPE NAME and answers: the server doesn't have
    # a resource type "demo"; kstream says what is wrong.
    for result in (attach_args, attach_dash):
        assert usage_error(result, "attach") == (
            "attach takes no command (saw 'ls'); to run one, use: kstream exec POD -- "
            "COMMAND")
    assert usage_error(bad_timeout, "exec") == (
        "argument --request-timeout: Invalid timeout value. Timeout must be a single integer "
        "in seconds, or an integer followed by a corresponding time unit (e.g. 1s | 2m | 3h)")
    assert usage_error(unknown_flag, "exec") == "unrecognized arguments: --no-such-flag"
    assert usage_error(service, "exec") == (
        "kstream reaches pods only, not 'svc': give POD, pod/POD, pods/POD or po/POD")
    assert usage_error(no_pod, "exec") == "pod, type/name or --filename must be specified"


def test_kubectl_flags_and_pod_forms_are_accepted(server: FakeNode) -> None:
    config = ["--kubeconfig", str(server.kubeconfig)]
    results = kstream_all(
        ["exec", *config, "-v=6", "demo", "--", "echo", "ok"],
        ["exec", *config, "--request-timeout=30s", "demo", "--", "echo", "ok"],
        ["exec", *config, "--request-timeout=0", "demo", "--", "echo", "ok"],
        ["exec", *config, "pod/demo", "--", "echo", "ok"],
        ["exec", *config, "pods/demo", "--", "echo", "ok"],
        ["exec", *config, "po/demo", "--", "echo", "ok"],
        # kubectl's TYPE NAME form; stdin is empty: the main process (cat) ends.
        ["attach", *config, "-i", "pod", "box"])
    assert [(r.returncode, r.stdout) for r in results] == [(0, b"ok\n")] * 6 + [(0, b"")]
    assert results[0].stderr.startswith(b"kstream: transport websocket, protocol ")
    assert all(r.stderr == b"" for r in results[1:])


# --------------------------------------------------------------------------- output


def test_exit_code_line_and_server_text(server: FakeNode) -> None:
    config = ["--kubeconfig", str(server.kubeconfig)]
    exited, spaced, escaped = kstream_all(
        ["exec", *config, "demo", "--", "sh", "-c", "exit 3"],
        ["exec", *config, "a b", "--", "true"],
        ["exec", *config, "demo", "--", "\x1b[31mred\rx"])
    # kubectl prints it whenever the code is not 0.
    assert (exited.returncode, one_line(exited)) == (3, "command terminated with exit code 3")
    # The apiserver decodes the name: never shown percent-encoded.
    assert one_line(spaced) == 'Error from server (NotFound): pods "a b" not found'
    line = one_line(escaped)
    assert escaped.returncode == 1
    assert "\x1b" not in line and "\r" not in line
    assert 'exec: "\\x1b[31mred\\rx": executable file not found in $PATH' in line


# --------------------------------------------------------------------------- kubectl


def _last_line(result: subprocess.CompletedProcess[bytes]) -> str:
    # kubectl also logs its discovery retries (klog lines "E1206 22:22:15.006 ...").
    lines = [line for line in result.stderr.decode().splitlines()
             if not (line[:1] in "EIW" and line[1:5].isdigit())]
    return lines[-1]


@pytest.mark.parametrize("version", ["1.27", "1.33"])
def test_kubectl_says_the_same(server: FakeNode, version: str) -> None:
    binary = kubectl_dir() / f"kubectl.{version}"
    assert binary.exists(), f"kubectl {version} is missing: {binary}"
    config = ["--kubeconfig", str(server.kubeconfig)]
    situations = [
        ["--server", "https://127.0.0.1:1", "--token", "t", "demo", "--", "true"],
        [*config, "demo", "--", "sh", "-c", "exit 3"],
        [*config, "a b", "--", "true"],
    ]
    with ThreadPoolExecutor(2 * len(situations)) as pool:
        theirs = list(pool.map(lambda args: subprocess.run(
            [str(binary), "exec", *args], capture_output=True, timeout=_TIMEOUT,
            env=clean_env(), stdin=subprocess.DEVNULL, check=False), situations))
        ours = list(pool.map(lambda args: kstream("exec", *args), situations))
    assert [(r.returncode, _last_line(r)) for r in theirs] == \
        [(r.returncode, one_line(r)) for r in ours]


# --------------------------------------------------------------------------- units


def test_request_timeout_values() -> None:
    import argparse

    from kstream._app.args import request_timeout

    assert [request_timeout(v) for v in ("30", "30s", "1m30s", "500ms", "2.5", "0", "0s")] \
        == [30.0, 30.0, 90.0, 0.5, 2.5, 0.0, 0.0]
    for bad in ("abc", "-1s", "1x", "", "inf", "nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            request_timeout(bad)


def test_verbosity_rewriting() -> None:
    from kstream._app.args import normalize_verbosity

    assert normalize_verbosity(["exec", "-v=6", "-v", "--v=2", "-v3", "-v", "4", "p"]) == [
        "exec", "--verbosity=6", "-v", "--verbosity=2", "--verbosity=3", "--verbosity=4",
        "p"]
    assert normalize_verbosity(["-v", "pod"]) == ["-v", "pod"]


def test_printable_and_first_line() -> None:
    from kstream._app.errors_text import first_line, printable

    assert printable("a\x1b[2Jb\n\t\x7f\u202e") == "a\\x1b[2Jb\\n\\t\\x7f\\u202e"
    assert first_line("\n  \n<h1>Bad</h1>\nmore") == "<h1>Bad</h1>"
    assert first_line("x" * 400, limit=10) == "x" * 10 + "..."
