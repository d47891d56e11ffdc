"""Build and run ``kpeer``, the Go interop peer (tests/peers/go/kpeer).

``kpeer`` is built offline from Debian's Go packages (golang-go,
golang-github-docker-spdystream-dev, golang-github-gorilla-websocket-dev) in GOPATH
mode. ``kpeer serve`` reproduces the kubelet/CRI exec server over SPDY/3.1 and
WebSocket, and port-forward on all three transports (SPDY ``portforward.k8s.io``,
WebSocket v4, the ``SPDY/3.1+portforward.k8s.io`` tunnel; pod ports are
``127.0.0.1:PORT``); it also answers discovery and the pod GET, so kubectl can point
straight at it (:meth:`GoPeerServer.write_kubeconfig`). ``kpeer spdy-client`` reproduces
client-go's SPDY executor; ``kpeer pod-serve`` is a pod to forward to (:class:`PodServer`)
and ``kpeer pf-load`` a load client (:func:`run_pf_load`). See ``kpeer --help`` and the
package comment in ``go/kpeer/main.go``.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

import pytest

GO_DIR = Path(__file__).resolve().parent / "go"
SOURCE_DIR = GO_DIR / "kpeer"
BIN_DIR = GO_DIR / "bin"  # git-ignored
BINARY = BIN_DIR / "kpeer"
# Debian installs the Go libraries' sources here, laid out as a GOPATH tree.
DEBIAN_GOPATH = "/usr/share/gocode"
BUILD_TIMEOUT = 300.0
STARTUP_TIMEOUT = 20.0
STOP_GRACE = 5.0
STDOUT_LINES_KEPT = 200


def _build_env() -> dict[str, str]:
    """The environment of an offline GOPATH-mode build."""
    env = dict(os.environ)
    env.update(
        GO111MODULE="off",  # GOPATH mode: imports resolve from DEBIAN_GOPATH
        GOPATH=DEBIAN_GOPATH,
        GOCACHE=str(BIN_DIR / ".gocache"),
        GOFLAGS="",
        GOPROXY="off",  # never reach for the network
        CGO_ENABLED="0",  # no C toolchain needed
    )
    return env


def _is_stale() -> bool:
    if not BINARY.exists():
        return True
    built_at = BINARY.stat().st_mtime
    return any(source.stat().st_mtime > built_at for source in SOURCE_DIR.glob("*.go"))


def build_kpeer() -> Path:
    """Build ``kpeer`` unless the binary is newer than every ``.go`` source.

    Returns:
        The path of the binary.

    Raises:
        pytest.fail.Exception: when ``go`` is missing or the build fails (never a skip:
            ``make test`` installs the Debian packages).
    """
    go = shutil.which("go")
    if go is None:
        pytest.fail("the Go interop peer needs `go`: install golang-go (make test does)")
    if not _is_stale():
        return BINARY
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    partial = BINARY.with_name("kpeer.partial")
    completed = subprocess.run(
        [go, "build", "-o", str(partial), "."],
        cwd=SOURCE_DIR,
        env=_build_env(),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(
            "building kpeer failed (are golang-github-docker-spdystream-dev and "
            f"golang-github-gorilla-websocket-dev installed?):\n{completed.stderr}"
        )
    partial.replace(BINARY)
    return BINARY


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    """Read one line from a pipe, giving up after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    line = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise TimeoutError(f"no complete line within {timeout} s (got {bytes(line)!r})")
            chunk = os.read(stream.fileno(), 1)  # one byte: never read past the line
            if not chunk:
                raise EOFError(f"stream ended before a complete line (got {bytes(line)!r})")
            line += chunk
    return bytes(line)


def _end(process: subprocess.Popen[bytes]) -> None:
    """:func:`_terminate` a child that printed its address, and close its stdout."""
    _terminate(process)
    if process.stdout is not None:
        process.stdout.close()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """End a child: SIGTERM, then SIGKILL after :data:`STOP_GRACE` seconds; reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class GoPeerServer:
    """A running ``kpeer serve`` on 127.0.0.1, as a context manager.

    Example:
        with GoPeerServer(build_kpeer(), reject_websocket=403) as server:
            connect(server.host, server.port)

    Args:
        binary: the ``kpeer`` binary.
        reject_websocket: answer every WebSocket upgrade with this HTTP status.
        reject_spdy: answer every SPDY upgrade with this HTTP status.
        ping_interval: the server pings clients at this Go duration (e.g. ``"100ms"``)
            and prints ``PONGS <n>`` to its stderr when each session ends.
        extra_args: more ``kpeer serve`` arguments.
        reject_tunnel: answer every SPDY-over-WebSocket tunnel upgrade (port-forward)
            with this HTTP status, as an API server without the tunnel does: clients
            fall back to SPDY.
        tunnel_cut: cut every tunnel message the server sends to at most this many
            bytes. Without it each SPDY frame write is one message (a DATA frame is
            three: 4 bytes, 4 bytes, the payload), as the API server's relay sends them.
        pair_timeout: how long a port-forward stream pair may stay incomplete (Go
            duration; the kubelet's 30 s by default).

    The log (:meth:`stderr_text`) names the transport of every port-forward session:
    ``portforward: transport spdy|tunnel|websocket pod "NAME"``.
    """

    def __init__(
        self,
        binary: Path,
        *,
        reject_websocket: int | None = None,
        reject_spdy: int | None = None,
        ping_interval: str | None = None,
        extra_args: Sequence[str] = (),
        reject_tunnel: int | None = None,
        tunnel_cut: int | None = None,
        pair_timeout: str | None = None,
    ) -> None:
        self.args = [str(binary), "serve", "--listen", "127.0.0.1:0"]
        if reject_tunnel is not None:
            self.args += ["--reject-tunnel", str(reject_tunnel)]
        if tunnel_cut is not None:
            self.args += ["--tunnel-cut", str(tunnel_cut)]
        if pair_timeout is not None:
            self.args += ["--pair-timeout", pair_timeout]
        if reject_websocket is not None:
            self.args += ["--reject-websocket", str(reject_websocket)]
        if reject_spdy is not None:
            self.args += ["--reject-spdy", str(reject_spdy)]
        if ping_interval is not None:
            self.args += ["--ping-interval", ping_interval]
        self.args += list(extra_args)
        self.host = "127.0.0.1"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._final_stderr = ""

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, the base URL of the server."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process id (0 before it starts)."""
        return self._process.pid if self._process is not None else 0

    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        """Write a kubeconfig that points kubectl straight at this server; return it.

        Plain HTTP without credentials: kubectl sends no token over HTTP and the peer
        wants none. Any pod name is a Running pod.
        """
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "kpeer",
            "clusters": [{"name": "kpeer", "cluster": {"server": self.url}}],
            "users": [{"name": "kpeer", "user": {}}],
            "contexts": [{"name": "kpeer", "context": {
                "cluster": "kpeer", "user": "kpeer", "namespace": namespace}}],
        }))
        return path

    def __enter__(self) -> GoPeerServer:
        # stderr goes to a file, not a pipe: nobody drains it while tests run.
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr
        )
        try:
            assert self._process.stdout is not None
            line = _read_line(self._process.stdout, STARTUP_TIMEOUT).decode("ascii", "replace")
            word, _, address = line.strip().partition(" ")
            if word != "LISTENING":
                raise RuntimeError(f"kpeer serve printed {line!r}")
            host, _, port = address.rpartition(":")
            self.host, self.port = host, int(port)
        except BaseException as exc:
            self.close()
            raise RuntimeError(f"kpeer serve did not start: {exc}\n{self.stderr_text()}") from exc
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _stop(self) -> None:
        if self._process is not None:
            _end(self._process)

    def stderr_text(self) -> str:
        """Everything the server wrote to stderr so far (diagnostics, ``PONGS <n>``)."""
        if self._stderr is None:
            return self._final_stderr
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        """Stop the server (also done by ``__exit__``); ``stderr_text`` keeps working."""
        self._stop()
        if self._stderr is not None:
            self._final_stderr = self.stderr_text()
            self._stderr.close()
            self._stderr = None


@dataclass(frozen=True)
class SpdyClientResult:
    """What ``kpeer spdy-client`` reported, plus the stdio it received.

    Attributes:
        protocol: the negotiated ``X-Stream-Protocol-Version`` ("" if none).
        error: the raw error-stream text (Status JSON on v4, message on v1-v3).
        stdout_bytes: bytes received on stdout.
        stderr_bytes: bytes received on stderr.
        pongs: answered pings of the client's own (``ping_interval``).
        stdout: the stdout bytes.
        stderr: the stderr bytes.
    """

    protocol: str
    error: str
    stdout_bytes: int
    stderr_bytes: int
    pongs: int
    stdout: bytes
    stderr: bytes


class SpdyClientError(Exception):
    """``kpeer spdy-client`` failed (upgrade refused, streams failed, timeout).

    Attributes:
        returncode: its exit status.
        stderr: its diagnostics, e.g. ``unable to upgrade connection: HTTP 403: ...``.
    """

    def __init__(self, returncode: int, stderr: str) -> None:
        super().__init__(f"kpeer spdy-client exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


def run_spdy_client(
    binary: Path,
    url: str,
    *,
    protocols: Sequence[str] = (),
    stdin: bytes | None = None,
    tty: bool = False,
    resize: Sequence[tuple[int, int]] = (),
    ping_interval: str | None = None,
    headers: Sequence[str] = (),
    timeout: float = 30.0,
) -> SpdyClientResult:
    """Run one exec with ``kpeer spdy-client`` (client-go's SPDY executor).

    The URL's query picks the streams (``stdin``/``stdout``/``stderr``/``tty``).

    Args:
        binary: the ``kpeer`` binary.
        url: the full exec URL, e.g. ``server.url + "/exec?command=cat&stdin=true&stdout=true"``.
        protocols: X-Stream-Protocol-Version values in preference order (default
            v4, v3, v2, channel.k8s.io).
        stdin: bytes copied to the stdin stream before it is half-closed.
        tty: terminal mode (no stderr stream; resize stream on v3+).
        resize: terminal sizes (width, height) sent on the resize stream.
        ping_interval: ping the server at this Go duration, e.g. ``"10ms"``.
        headers: extra request headers as ``"Name: value"``.
        timeout: seconds before the client gives up (it exits 3).

    Returns:
        The parsed result line with the received stdout/stderr bytes.

    Raises:
        SpdyClientError: the client exited non-zero.
    """
    with tempfile.TemporaryDirectory(prefix="kpeer-") as workdir:
        work = Path(workdir)
        args = [str(binary), "spdy-client", "--url", url, "--timeout", f"{timeout}s"]
        args += ["--stdout", str(work / "stdout"), "--stderr", str(work / "stderr")]
        for protocol in protocols:
            args += ["--protocol", protocol]
        if stdin is not None:
            (work / "stdin").write_bytes(stdin)
            args += ["--stdin", str(work / "stdin")]
        if tty:
            args.append("--tty")
        for width, height in resize:
            args += ["--resize", f"{width}x{height}"]
        if ping_interval is not None:
            args += ["--ping-interval", ping_interval]
        for header in headers:
            args += ["--header", header]
        completed = subprocess.run(
            args, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 10, check=False
        )
        if completed.returncode != 0:
            raise SpdyClientError(completed.returncode, completed.stderr.decode("utf-8", "replace"))
        fields = json.loads(completed.stdout.decode("utf-8").strip().splitlines()[-1])
        return SpdyClientResult(
            protocol=str(fields["protocol"]),
            error=str(fields["error"]),
            stdout_bytes=int(fields["stdout_bytes"]),
            stderr_bytes=int(fields["stderr_bytes"]),
            pongs=int(fields["pongs"]),
            stdout=_read_if_exists(work / "stdout"),
            stderr=_read_if_exists(work / "stderr"),
        )


def _read_if_exists(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


class PodServer:
    """``kpeer pod-serve``: the "pod" of port-forward tests, on 127.0.0.1, as a context manager.

    Attributes:
        echo_port: sends back every byte until the client's FIN, then closes.
        bench_port: a 9-byte request, ``b"D"`` or ``b"U"`` and a big-endian uint64 N:
            ``D`` sends N bytes and closes; ``U`` reads N bytes, answers their count as a
            big-endian uint64 and closes (see :func:`run_pf_load`).
    """

    def __init__(self, binary: Path) -> None:
        self.args = [str(binary), "pod-serve"]
        self.echo_port = 0
        self.bench_port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The pod server's process id (0 when not running)."""
        return self._process.pid if self._process is not None else 0

    def __enter__(self) -> PodServer:
        self._process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert self._process.stdout is not None
            for _ in range(2):
                line = _read_line(self._process.stdout, STARTUP_TIMEOUT).decode("ascii")
                word, _, address = line.strip().partition(" ")
                port = int(address.rpartition(":")[2])
                if word == "ECHO":
                    self.echo_port = port
                elif word == "BENCH":
                    self.bench_port = port
                else:
                    raise RuntimeError(f"kpeer pod-serve printed {line!r}")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the pod server (also done by ``__exit__``)."""
        if self._process is not None:
            _end(self._process)
        self._process = None


@dataclass(frozen=True)
class LoadResult:
    """What ``kpeer pf-load`` measured: ``conns`` transfers at once, ``nbytes`` in all."""

    seconds: float
    nbytes: int
    conns: int


def run_pf_load(binary: Path, port: int, *, mode: str, size: int, conns: int = 1,
                timeout: float = 300.0) -> LoadResult:
    """Time ``conns`` concurrent transfers of ``size`` bytes each through 127.0.0.1:``port``.

    ``mode`` is ``"down"`` (the pod sends) or ``"up"`` (the pod receives and confirms
    the count); the far end must be a :class:`PodServer` bench port (directly, or
    through a forward). Timed from the first connect to the last connection's EOF.

    Raises:
        RuntimeError: a transfer failed or came up short.
    """
    args = [str(binary), "pf-load", "--addr", f"127.0.0.1:{port}", "--mode", mode,
            "--bytes", str(size), "--conns", str(conns), "--timeout", f"{timeout}s"]
    completed = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout + 10, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"kpeer pf-load exited {completed.returncode}: "
                           f"{completed.stderr.decode('utf-8', 'replace').strip()}")
    fields = json.loads(completed.stdout.decode("utf-8").strip().splitlines()[-1])
    return LoadResult(seconds=float(fields["seconds"]), nbytes=int(fields["bytes"]),
                      conns=int(fields["conns"]))


class HeldConnections:
    """``kpeer pf-load --mode hold``: ``conns`` echo connections kept open, as a context manager.

    On entry every connection has made a one-byte round trip (so each is forwarded end
    to end); on exit each is half-closed and read to EOF.
    """

    def __init__(self, binary: Path, port: int, conns: int, *, timeout: float = 120.0) -> None:
        self.args = [str(binary), "pf-load", "--addr", f"127.0.0.1:{port}", "--mode", "hold",
                     "--conns", str(conns), "--timeout", f"{timeout}s"]
        self.timeout = timeout
        self.open_seconds = 0.0
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HeldConnections:
        self._process = subprocess.Popen(self.args, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._process.stdout is not None
        try:
            line = _read_line(self._process.stdout, self.timeout).decode("ascii", "replace")
        except (TimeoutError, EOFError) as exc:
            self._kill()
            raise RuntimeError(f"kpeer pf-load --mode hold failed: {exc}") from exc
        word, _, seconds = line.strip().partition(" ")
        if word != "OPEN":
            self._kill()
            raise RuntimeError(f"kpeer pf-load --mode hold printed {line!r}")
        self.open_seconds = float(seconds)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        process = self._process
        if process is None:
            return
        try:
            process.communicate(b"\n", timeout=30)
        except subprocess.TimeoutExpired:
            self._kill()

    def _kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate()


class ForwardingProcess:
    """A ``port-forward`` command (kubectl's or kstream's) running, as a context manager.

    It waits for the first ``Forwarding from 127.0.0.1:L -> R`` line (kubectl's, which
    ``kstream port-forward`` prints too) and keeps its stdout and stderr in a file.

    Example:
        with ForwardingProcess([kubectl, "--kubeconfig", kc, "port-forward",
                                "--address", "127.0.0.1", "pod/p", ":8080"]) as forward:
            connect(("127.0.0.1", forward.local_port))

    Attributes:
        local_port: L of the first ``Forwarding from`` line.
        pid: the process id (for its RSS).
    """

    def __init__(self, args: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.env = env
        self.local_port = 0
        self.pid = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._final_log = ""
        self._drain: threading.Thread | None = None
        #: The last lines of stdout after the first ``Forwarding from`` line.
        self.stdout_lines: list[str] = []

    def __enter__(self) -> ForwardingProcess:
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=self._log,
                                         env=self.env)
        self.pid = self._process.pid
        try:
            assert self._process.stdout is not None
            while True:
                line = _read_line(self._process.stdout, STARTUP_TIMEOUT).decode("utf-8",
                                                                              "replace")
                if line.startswith("Forwarding from 127.0.0.1:"):
                    self.local_port = int(line.split()[2].rpartition(":")[2])
                    break
            # kubectl prints "Handling connection for L" per connection: keep draining
            # stdout, or a full pipe would stall it.
            self._drain = threading.Thread(target=self._drain_stdout, daemon=True)
            self._drain.start()
        except BaseException as exc:
            self.close()
            raise RuntimeError(f"{self.args[0]} port-forward did not start: {exc}\n"
                               f"{self.log_text()}") from exc
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _drain_stdout(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for line in iter(process.stdout.readline, b""):
                self.stdout_lines.append(line.decode("utf-8", "replace"))
                del self.stdout_lines[:-STDOUT_LINES_KEPT]

    def poll(self) -> int | None:
        """The exit status once the process has ended, else None."""
        return self._process.poll() if self._process is not None else None

    def wait(self, timeout: float) -> int:
        """Wait for the process to end by itself; return its exit status."""
        assert self._process is not None
        return self._process.wait(timeout)

    def log_text(self) -> str:
        """Its stderr so far (stdout after the first line is not kept)."""
        if self._log is None:
            return self._final_log
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def close(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL); ``log_text`` keeps working."""
        process = self._process
        if process is not None:
            _terminate(process)
            if self._drain is not None:
                self._drain.join(STOP_GRACE)
            if process.stdout is not None:
                process.stdout.close()
        if self._log is not None:
            self._final_log = self.log_text()
            self._log.close()
            self._log = None
