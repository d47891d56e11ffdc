"""Run ``kstream serve`` as a child process for tests (test-only helper).

The server runs in its own process so that its event loop and the client's use both
cores. Its stderr (one line per session: transport and protocol) is collected by a
thread so tests can check which transport a real client used.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

_START_TIMEOUT = 30.0


def make_certificate(directory: Path, *, san: str = "IP:127.0.0.1,DNS:localhost"
                     ) -> tuple[Path, Path]:
    """A self-signed certificate and its key, made with ``openssl``.

    Args:
        directory: where to write the certificate and the key.
        san: the subjectAltName extension (IP SAN for 127.0.0.1 by default).

    Returns:
        ``(certificate, key)`` paths, named after ``san`` so several can coexist.
    """
    stem = "".join(c if c.isalnum() else "-" for c in san)
    cert, key = directory / f"cert-{stem}.pem", directory / f"key-{stem}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


class ServeProcess:
    """``kstream serve`` in a child process, with its kubeconfig written to ``directory``.

    Args:
        directory: where the kubeconfig goes.
        args: extra ``kstream serve`` arguments (``--pod``, ``--tls-cert``...).
    """

    def __init__(self, directory: Path, *args: str) -> None:
        self.kubeconfig = directory / "kubeconfig"
        self._args = args
        self._lines: list[str] = []
        self._lock = threading.Condition()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.url = ""

    def __enter__(self) -> ServeProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "kstream", "serve", "--port", "0",
             "--kubeconfig", str(self.kubeconfig), *self._args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._reader = threading.Thread(target=self._read_log, args=(self._process.stderr,),
                                        daemon=True)
        self._reader.start()
        banner = self._process.stdout.readline().decode()
        if "listening on" not in banner:
            self._process.kill()
            raise RuntimeError(f"kstream serve did not start: {banner!r} {self.log()}")
        self.url = banner.rsplit(" ", 1)[1].strip()
        return self

    def _read_log(self, stream: Any) -> None:
        for raw in stream:
            with self._lock:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._lock.notify_all()

    def log(self) -> list[str]:
        """Every line the server wrote on stderr so far."""
        with self._lock:
            return list(self._lines)

    def sessions_since(self, start: int, *, count: int = 1,
                       timeout: float = 10.0) -> list[str]:
        """Wait for ``count`` session lines after line ``start`` of the log; return them.

        The log is read by a thread, so a line may arrive just after the client is done.
        """
        def sessions() -> list[str]:
            return [line for line in self._lines[start:] if " over " in line]

        with self._lock:
            self._lock.wait_for(lambda: len(sessions()) >= count, timeout)
            return sessions()

    def config(self) -> dict[str, Any]:
        """The written kubeconfig."""
        document: dict[str, Any] = json.loads(self.kubeconfig.read_text())
        return document

    @property
    def token(self) -> str:
        """The bearer token from the kubeconfig."""
        return str(self.config()["users"][0]["user"]["token"])

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self._process is not None
        return self._process.pid

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the server with ``sig`` and return its exit status."""
        process = self._process
        assert process is not None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        return process.returncode

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


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
