"""End to end over loopback: kstream, kubectl, the official client and a raw socket.

One Go test peer (``kpeer serve``, built-in ``source N`` / ``sink`` commands that spawn no
process) behind one :class:`~benchmarks.kubefront.KubeFront` serves every client, and the
front times every exec the same way (upgrade request in, both directions ended). Each
client transfer runs in its own interpreter (:mod:`benchmarks._worker`), so its peak RSS
is its own. The raw-socket baseline is Python's limit: a plain asyncio
``BufferedProtocol`` against :mod:`benchmarks._rawpeer`, no protocol at all.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from ._harness import Config, Result
from ._worker import TRANSPORTS
from .kubefront import KubeFront

__all__ = ["REPO", "Servers", "bench_latency", "bench_loopback", "bench_official",
           "bench_scale", "bench_server_role", "kstream_serve", "kubectl_binary", "servers"]

REPO: Final = Path(__file__).resolve().parent.parent
_TESTS: Final = REPO / "tests"
_WORKER_TIMEOUT: Final = 600.0
#: Transports an upload runs over: v4 (either encoding) cannot half-close stdin, so the
#: remote ``sink`` would never see its end (protocol-notes §1.5).
UPLOAD_TRANSPORTS: Final = ("websocket v5", "spdy")
#: kubectl version per transport it is the baseline of.
KUBECTL_FOR: Final = {"websocket v5": "1.33", "spdy": "1.27"}


class Servers:
    """The running servers of the end-to-end benchmarks.

    Attributes:
        peer_url: the Go peer, direct.
        front: the apiserver stand-in in front of the peer.
        raw_port: the raw-socket peer's port.
        workdir: a scratch directory.
    """

    def __init__(self, peer_url: str, peer_port: int, front: KubeFront, raw_port: int,
                 workdir: Path) -> None:
        self.peer_url = peer_url
        self.peer_port = peer_port
        self.front = front
        self.raw_port = raw_port
        self.workdir = workdir
        #: ``kpeer serve``'s process id (its CPU time is read from /proc).
        self.peer_pid = 0
        #: The Go peer's CPU seconds during the last kubectl run.
        self.last_peer_cpu = 0.0


def _go_peer_module() -> object:
    if str(_TESTS) not in sys.path:
        sys.path.insert(0, str(_TESTS))
    from peers import gopeer

    return gopeer


@contextmanager
def servers() -> Iterator[Servers]:
    """Start the Go peer, the front and the raw peer; stop them all on exit."""
    gopeer = _go_peer_module()
    binary = gopeer.build_kpeer()  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="kstream-bench-") as scratch, \
            gopeer.GoPeerServer(binary) as peer:  # type: ignore[attr-defined]
        raw = subprocess.Popen([sys.executable, "-m", "benchmarks._rawpeer"], cwd=REPO,
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            assert raw.stdout is not None
            line = raw.stdout.readline().decode()
            raw_port = int(line.split()[1])
            with KubeFront(peer.port, Path(scratch)) as front:
                running = Servers(peer.url, peer.port, front, raw_port, Path(scratch))
                process = getattr(peer, "_process", None)  # GoPeerServer keeps it private
                running.peer_pid = process.pid if process is not None else 0
                yield running
        finally:
            raw.terminate()
            raw.wait(10)
            if raw.stdout is not None:
                raw.stdout.close()


def _worker(args: Sequence[str]) -> dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    completed = subprocess.run([sys.executable, "-m", "benchmarks._worker", *args],
                               cwd=REPO, env=env, capture_output=True, text=True,
                               timeout=_WORKER_TIMEOUT, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"worker {list(args)} failed:\n{completed.stderr[-3000:]}")
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _front_timed(servers: Servers, args: Sequence[str]) -> tuple[float, dict[str, float]]:
    index = len(servers.front.execs)
    peer_cpu = _peer_cpu_seconds(servers)
    report = _worker(args)
    seconds = servers.front.wait_exec(index, 60).seconds
    report["peer_cpu_seconds"] = _peer_cpu_seconds(servers) - peer_cpu
    return seconds, report


def _peer_cpu_seconds(servers: Servers) -> float:
    """CPU time (user + system) the Go peer has used so far; 0 when unknown."""
    try:
        fields = Path(f"/proc/{servers.peer_pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kubectl_binary(version: str) -> Path | None:
    """``kubectl.<version>`` next to the ``kubectl`` on PATH, if installed."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    binary = Path(os.path.realpath(kubectl)).parent / f"kubectl.{version}"
    return binary if binary.is_file() else None


def _kubectl_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if not key.startswith("KUBECTL_") and key != "KUBECONFIG"}


def _run_kubectl(servers: Servers, binary: Path, args: Sequence[str], *,
                 stdin: Path | None = None) -> tuple[float, float]:
    """Run one ``kubectl exec`` through the front; return (front seconds, wall seconds)."""
    index = len(servers.front.execs)
    servers.last_peer_cpu = _peer_cpu_seconds(servers)
    command = [str(binary), "--kubeconfig", str(servers.front.kubeconfig), "--cache-dir",
               str(servers.workdir / f"cache-{binary.name}"), "--request-timeout", "600s",
               "exec", *args]
    start = time.perf_counter()
    with open(stdin or os.devnull, "rb") as source:
        completed = subprocess.run(command, stdin=source, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, env=_kubectl_env(),
                                   timeout=_WORKER_TIMEOUT, check=False)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"{command} exited {completed.returncode}: "
                           f"{completed.stderr.decode(errors='replace')[-2000:]}")
    seconds = servers.front.wait_exec(index, 60).seconds
    servers.last_peer_cpu = _peer_cpu_seconds(servers) - servers.last_peer_cpu
    return seconds, wall


def _rss_growth_mib(reports: Sequence[dict[str, float]]) -> str:
    growth = [(r["rss_peak_kib"] - r["rss_base_kib"]) / 1024 for r in reports]
    return f"{statistics.median(growth):.1f}"


def _median_of(reports: Sequence[dict[str, float]], key: str) -> str:
    values = [report[key] for report in reports if key in report]
    return f"{statistics.median(values):.2f}" if values else "—"


def trio_available() -> bool:
    """Whether ``kstream.trio`` exists yet."""
    return importlib.util.find_spec("kstream.trio") is not None


def _pattern_file(directory: Path, size: int) -> Path:
    path = directory / f"upload-{size}"
    if not path.exists():
        chunk = bytes(index % 251 for index in range(1 << 20))
        with path.open("wb") as out:
            left = size
            while left:
                out.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))
    return path


def bench_loopback(config: Config, servers: Servers, remarks: list[str]) -> list[Result]:
    """Download and upload over every transport, kstream vs kubectl vs a raw socket."""
    results: list[Result] = []
    libs = ["asyncio", *(["trio"] if trio_available() else [])]
    remarks.append("raw socket (Python): measured once per direction, shown on every line "
                   "of that direction.")
    if "trio" not in libs:
        remarks.append("trio: not measured, kstream.trio does not exist yet.")
    for direction, size in (("download", config.download_bytes),
                            ("upload", config.upload_bytes)):
        raw_seconds = [_worker([f"raw-{direction}", "--port", str(servers.raw_port),
                                "--size", str(size)])["seconds"]
                       for _ in range(config.e2e_runs)]
        transports = list(TRANSPORTS) if direction == "download" else list(UPLOAD_TRANSPORTS)
        if config.mode == "smoke":  # keep the smoke test short: one of each transport
            transports = list(UPLOAD_TRANSPORTS)
        for transport in transports:
            results.append(Result(direction, transport, "raw socket (Python)", raw_seconds,
                                  size, baseline=True))
            for lib in libs:
                timed = [_front_timed(servers, [direction, "--url", servers.front.url,
                                                "--size", str(size), "--transport",
                                                transport, "--lib", lib])
                         for _ in range(config.e2e_runs)]
                reports = [r for _, r in timed]
                results.append(Result(
                    direction, transport, f"kstream {lib}", [seconds for seconds, _ in timed],
                    size, extra={"RSS growth MiB": _rss_growth_mib(reports),
                                 "client CPU s": _median_of(reports, "cpu_seconds"),
                                 "Go peer CPU s": _median_of(reports, "peer_cpu_seconds")}))
            version = KUBECTL_FOR.get(transport)
            binary = kubectl_binary(version) if version else None
            if version and binary is None:
                remarks.append(f"kubectl {version}: not installed, not measured.")
            if binary is not None:
                stdin_file = (_pattern_file(servers.workdir, size)
                              if direction == "upload" else None)
                args = (["-i", "bench", "--", "sink"] if direction == "upload"
                        else ["bench", "--", "source", str(size)])
                timed_kubectl, peer_cpu = [], []
                for _ in range(config.e2e_runs):
                    timed_kubectl.append(_run_kubectl(servers, binary, args, stdin=stdin_file))
                    peer_cpu.append(servers.last_peer_cpu)
                wall = statistics.median(wall for _, wall in timed_kubectl)
                results.append(Result(direction, transport, f"kubectl {version}",
                                      [seconds for seconds, _ in timed_kubectl], size,
                                      baseline=True,
                                      extra={"process wall s": f"{wall:.2f}",
                                             "Go peer CPU s":
                                                 f"{statistics.median(peer_cpu):.2f}"}))
    return results


def bench_official(config: Config, servers: Servers) -> list[Result]:
    """kstream vs the official ``kubernetes`` client (sync, WebSocket v4, binary)."""
    size = {"full": 64 << 20, "quick": 4 << 20}.get(config.mode, 64 << 10)
    runs = 1 if config.mode == "full" else config.e2e_runs
    case = f"websocket v4 download {size >> 20} MiB" if size >= 1 << 20 else \
        f"websocket v4 download {size >> 10} KiB"
    official = [_front_timed(servers, ["official-download", "--url", servers.front.url,
                                       "--size", str(size)])[0] for _ in range(runs)]
    kstream = [_front_timed(servers, ["download", "--url", servers.front.url, "--size",
                                      str(size), "--transport", "websocket v4"])[0]
               for _ in range(runs)]
    return [Result("official-client", case, "kstream asyncio", kstream, size),
            Result("official-client", case, "kubernetes (sync)", official, size,
                   baseline=True)]


def bench_latency(config: Config, servers: Servers) -> list[Result]:
    """A trivial exec (``exit 0``): connect, upgrade, exit status; kstream vs kubectl."""
    runs = max(config.e2e_runs, 3) if config.mode != "smoke" else 1
    results = []
    for transport in ("websocket v5", "spdy"):
        seconds = [_worker(["latency", "--url", servers.front.url, "--size", "0",
                            "--transport", transport])["seconds"] for _ in range(runs)]
        results.append(Result("latency", transport, "kstream asyncio", seconds))
        version = KUBECTL_FOR[transport]
        binary = kubectl_binary(version)
        if binary is not None:
            walls = [_run_kubectl(servers, binary, ["bench", "--", "exit", "0"])[1]
                     for _ in range(runs)]
            results.append(Result("latency", transport, f"kubectl {version}", walls,
                                  baseline=True,
                                  note="process wall time: start, discovery (cached), "
                                       "pod GET, exec"))
    return results


def bench_scale(config: Config, servers: Servers) -> list[Result]:
    """N concurrent asyncio sessions against the Go peer directly: busy, then idle.

    Busy: each of N sessions downloads ``session_bytes``; wall time and peak RSS. Idle: N
    sessions of ``sleep-forever`` (stdin open) established at once; the RSS they add,
    per session, is what the "RSS per idle session" target bounds.
    """
    results = []
    for sessions in config.sessions:
        report = _worker(["sessions", "--url", servers.peer_url, "--size",
                          str(config.session_bytes), "--sessions", str(sessions)])
        growth_kib = report["rss_peak_kib"] - report["rss_base_kib"]
        results.append(Result(
            "scale", f"{sessions} sessions", "kstream asyncio", [report["seconds"]],
            config.session_bytes * sessions,
            extra={"peak RSS MiB": f"{report['rss_peak_kib'] / 1024:.1f}",
                   "RSS growth MiB": f"{growth_kib / 1024:.1f}",
                   "busy RSS KiB/session": f"{growth_kib / sessions:.1f}"},
            note="one run; busy: every session downloads at once; peak RSS over the run"))
    for sessions in config.sessions:
        report = _worker(["idle-sessions", "--url", servers.peer_url, "--size", "0",
                          "--sessions", str(sessions)])
        added_kib = report["rss_idle_kib"] - report["rss_before_kib"]
        results.append(Result(
            "scale-idle", f"{sessions} idle sessions", "kstream asyncio",
            [report["seconds"]],
            extra={"RSS added MiB": f"{added_kib / 1024:.1f}",
                   "RSS KiB/session": f"{added_kib / sessions:.1f}"},
            note="one run; time = opening all sessions (100 handshakes at a time); RSS "
                 "(VmRSS, after a full GC) with all of them established and idle, minus "
                 "before the first"))
    return results


@contextmanager
def kstream_serve(directory: Path) -> Iterator[tuple[int, str]]:
    """Run ``kstream serve`` (pod ``default/bench``); yield its port and bearer token."""
    token = secrets.token_hex(16)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # Plain HTTP, as the Go peer it is compared with serves: the figure is the server's
    # own speed, not TLS's.
    process = subprocess.Popen(
        [sys.executable, "-m", "kstream", "serve", "--plain-http", "--port", "0",
         "--token", token, "--pod", "default/bench",
         "--kubeconfig", str(directory / "kubeconfig-serve")],
        cwd=directory, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            text = line.decode(errors="replace")
            if "listening on" in text:
                port = int(text.strip().rsplit(":", 1)[1].rstrip("/"))
                break
        else:
            raise RuntimeError("kstream serve exited before listening")
        yield port, token
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


#: What kstream serve runs for a download: a real process writing 32 KiB blocks (as the Go
#: peer's built-in ``source`` writes 32 KiB chunks, but through a pipe).
def _dd_command(size: int) -> list[str]:
    block = 32 * 1024
    if size % block:
        raise ValueError(f"download size {size} is not a multiple of {block}")
    return ["dd", "if=/dev/zero", f"bs={block}", f"count={size // block}", "status=none"]


def bench_server_role(config: Config, servers: Servers) -> list[Result]:
    """kubectl 1.33 and 1.27 downloading from ``kstream serve`` vs from the Go peer.

    Both servers sit behind a :class:`KubeFront` (the same front code, the same timing:
    upgrade request in, both directions ended). The Go peer's ``source N`` is built in;
    ``kstream serve`` runs a real process (``dd``, 32 KiB writes into a pipe), as it
    always does: the process, its pipe and reading it are part of the server's cost.
    """
    size = config.download_bytes
    results: list[Result] = []
    with kstream_serve(servers.workdir) as (port, token), \
            KubeFront(port, servers.workdir, peer_token=token, name="serve-front") as front:
        serve = Servers(servers.peer_url, port, front, servers.raw_port, servers.workdir)
        for version, transport in (("1.33", "websocket v5"), ("1.27", "spdy")):
            binary = kubectl_binary(version)
            if binary is None:
                continue
            case = f"kubectl {version} download"
            on_serve = [_run_kubectl(serve, binary, ["bench", "--", *_dd_command(size)])
                        for _ in range(config.e2e_runs)]
            on_peer = [_run_kubectl(servers, binary, ["bench", "--", "source", str(size)])
                       for _ in range(config.e2e_runs)]
            results.append(Result(
                "server-role", case, "kstream serve", [s for s, _ in on_serve], size,
                extra={"server": "kstream serve, `dd` process (32 KiB writes)",
                       "transport": transport},
                note="a real process and a pipe on this side; the Go peer's source is "
                     "built in"))
            results.append(Result(
                "server-role", case, "Go peer", [s for s, _ in on_peer], size,
                baseline=True, extra={"server": "kpeer serve, built-in source"}))
    return results
