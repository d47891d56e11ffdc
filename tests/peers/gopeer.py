"""Build and run ``kpeer``, the Go interop peer (tests/peers/go/kpeer).

``kpeer`` is built offline from Debian's Go packages (golang-go,
golang-github-docker-spdystream-dev, golang-github-gorilla-websocket-dev) in GOPATH
mode. ``kpeer serve`` reproduces the kubelet/CRI exec server over SPDY/3.1 and
WebSocket; ``kpeer spdy-client`` reproduces client-go's SPDY executor. See
``kpeer --help`` and the package comment in ``go/kpeer/main.go``.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import tempfile
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
    """

    def __init__(
        self,
        binary: Path,
        *,
        reject_websocket: int | None = None,
        reject_spdy: int | None = None,
        ping_interval: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.args = [str(binary), "serve", "--listen", "127.0.0.1:0"]
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
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

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
