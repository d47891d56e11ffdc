"""Port-forward end to end: bytes down and up through a forwarded local port.

Every row is timed the same way, by the same load client (``kpeer pf-load``, Go, 256 KiB
reads and writes), at the same place: from connecting to the local port to the end of
the transfer (download: the pod's last byte and EOF; upload: the pod's confirmation of
the byte count and EOF). Only the forwarder in between changes:

- ``direct TCP``: no forwarder, the load client talks to the pod port itself: the anchor;
- ``kubectl 1.33`` (its default, the ``SPDY/3.1+portforward.k8s.io`` tunnel) and
  ``kubectl 1.27`` (SPDY ``portforward.k8s.io``), pointed straight at the Go peer
  (``kpeer serve``, which answers discovery and the pod GET itself);
- ``kstream port-forward`` (the whole CLI process) with ``--transport tunnel`` and
  ``--transport spdy``, against the same Go peer, when this checkout has it.

The "pod" is ``kpeer pod-serve``'s bench port on 127.0.0.1 (Go, spawns nothing). Each
forwarder moves one small untimed transfer first, so a lazily opened session is not
timed. Also measured: many connections through one forward (aggregate throughput, and
the forwarder's RSS per open connection), and ``kstream serve`` as the server kubectl
forwards through, against the Go peer (both behind the same
:class:`~benchmarks.kubefront.KubeFront`, which adds ``kstream serve``'s token).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from ._harness import Config, Result
from .kubefront import KubeFront

__all__ = ["bench_portforward", "kstream_port_forward_available"]

REPO: Final = Path(__file__).resolve().parent.parent
_TESTS: Final = REPO / "tests"
_POD: Final = "bench"
#: kubectl version per transport it is the baseline of (protocol-notes §5.1).
KUBECTL_FOR: Final = {"tunnel": "1.33", "spdy": "1.27"}
#: The RSS target of an open forwarded connection.
RSS_PER_CONNECTION_KIB: Final = 64.0


def _gopeer() -> Any:
    if str(_TESTS) not in sys.path:
        sys.path.insert(0, str(_TESTS))
    from peers import gopeer

    return gopeer


def _sizes(config: Config) -> tuple[int, int, int]:
    """(bytes per transfer, concurrent connections, bytes per concurrent connection)."""
    if config.mode == "full":
        return 256 << 20, 100, (256 << 20) // 100
    if config.mode == "quick":
        return 64 << 20, 100, (64 << 20) // 100
    return 1 << 20, 10, 64 << 10


def _kubectl_binary(version: str) -> Path | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    binary = Path(os.path.realpath(kubectl)).parent / f"kubectl.{version}"
    return binary if binary.is_file() else None


def _kubectl_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if not key.startswith("KUBECTL_") and key != "KUBECONFIG"}


def _kstream_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), str(REPO),
                                                      env.get("PYTHONPATH")]))
    return env


def kstream_port_forward_available() -> bool:
    """Whether this checkout's CLI has ``kstream port-forward`` yet."""
    completed = subprocess.run([sys.executable, "-m", "kstream", "port-forward", "--help"],
                               env=_kstream_env(), capture_output=True, timeout=60,
                               check=False)
    return completed.returncode == 0 and b"--transport" in completed.stdout


def _kubectl_command(version: str, kubeconfig: Path, workdir: Path,
                     *remotes: int) -> list[str] | None:
    binary = _kubectl_binary(version)
    if binary is None:
        return None
    return [str(binary), "--kubeconfig", str(kubeconfig), "--cache-dir",
            str(workdir / f"cache-{version}"), "port-forward", "--address", "127.0.0.1",
            f"pod/{_POD}", *(f":{remote}" for remote in remotes)]


def _kstream_command(transport: str, kubeconfig: Path, *remotes: int) -> list[str]:
    return [sys.executable, "-m", "kstream", "port-forward", "--kubeconfig", str(kubeconfig),
            "--address", "127.0.0.1", "--transport", transport, f"pod/{_POD}",
            *(f":{remote}" for remote in remotes)]


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process so far; 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int:
    """Resident set size (``VmRSS``) of a process, in KiB; 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class _Setup:
    """The Go peer, the pod and a scratch directory, shared by every row."""

    def __init__(self, gopeer: Any, binary: Path, peer: Any, pod: Any, workdir: Path) -> None:
        self.gopeer = gopeer
        self.binary = binary
        self.peer = peer
        self.pod = pod
        self.workdir = workdir
        self.kubeconfig: Path = peer.write_kubeconfig(workdir / "kubeconfig-kpeer")
        self.last_load_cpu = 0.0

    def load(self, port: int, mode: str, size: int, conns: int = 1) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = self.gopeer.run_pf_load(self.binary, port, mode=mode, size=size,
                                         conns=conns)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        #: CPU seconds of the last load client (it is a child that has exited).
        self.last_load_cpu = (after.ru_utime + after.ru_stime
                              - before.ru_utime - before.ru_stime)
        return float(result.seconds)

    def forward(self, command: Sequence[str], env: dict[str, str]) -> Any:
        return self.gopeer.ForwardingProcess(command, env=env)


@contextmanager
def _setup() -> Iterator[_Setup]:
    gopeer = _gopeer()
    binary = gopeer.build_kpeer()
    with tempfile.TemporaryDirectory(prefix="kstream-pf-bench-") as scratch, \
            gopeer.GoPeerServer(binary) as peer, gopeer.PodServer(binary) as pod:
        yield _Setup(gopeer, binary, peer, pod, Path(scratch))


#: A forwarder of the throughput rows: (case, impl, baseline, command, environment).
_Forwarder = tuple[str, str, bool, list[str], dict[str, str]]
#: Its timings: mode ("down"/"up") -> seconds per run, and CPU seconds per run of the
#: forwarder, the Go peer, and the pod server plus the load client.
_Timings = dict[str, tuple[list[float], list[float], list[float], list[float]]]


def _interleaved(setup: _Setup, ports: dict[str, int], pids: dict[str, int], size: int,
                 runs: int) -> dict[str, _Timings]:
    """Time every forwarder (name -> local port) in turns: run 1 of each, then run 2...

    Interleaving spreads a busy machine's swings over every row alike, so the ratios of
    one run stay meaningful. Each forwarder moves one small untimed transfer first.
    """
    for port in ports.values():
        setup.load(port, "down", 64 << 10)
    timings: dict[str, _Timings] = {name: {} for name in ports}
    for mode in ("down", "up"):
        for name in ports:
            timings[name][mode] = ([], [], [], [])
        for _ in range(runs):
            for name, port in ports.items():
                watched = (pids.get(name, 0), setup.peer.pid, setup.pod.pid)
                before = [_cpu_seconds(pid) for pid in watched]
                seconds = setup.load(port, mode, size)
                spent = [_cpu_seconds(pid) - was for pid, was in zip(watched, before,
                                                                    strict=True)]
                row = timings[name][mode]
                row[0].append(seconds)
                row[1].append(spent[0])
                row[2].append(spent[1])
                row[3].append(spent[2] + setup.last_load_cpu)
    return timings


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _forwarders(setup: _Setup, kstream_cli: bool, remarks: list[str]) -> list[_Forwarder]:
    remote = setup.pod.bench_port
    forwarders: list[_Forwarder] = []
    for transport, version in KUBECTL_FOR.items():
        command = _kubectl_command(version, setup.kubeconfig, setup.workdir, remote)
        if command is None:
            remarks.append(f"kubectl {version}: not installed, not measured.")
        else:
            forwarders.append((transport, f"kubectl {version}", True, command,
                               _kubectl_env()))
        if kstream_cli:
            forwarders.append((transport, "kstream port-forward", False,
                               _kstream_command(transport, setup.kubeconfig, remote),
                               _kstream_env()))
    return forwarders


def _bench_throughput(setup: _Setup, size: int, runs: int, kstream_cli: bool,
                      remarks: list[str]) -> list[Result]:
    """Download and upload through every forwarder at once running, and direct TCP."""
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        ports = {"direct TCP": setup.pod.bench_port}
        pids: dict[str, int] = {}
        started: list[_Forwarder] = []
        for forwarder in _forwarders(setup, kstream_cli, remarks):
            case, impl, _, command, env = forwarder
            try:
                forward = stack.enter_context(setup.forward(command, env))
            except RuntimeError as exc:
                remarks.append(f"port-forward, {case}, {impl}: failed: "
                               f"{_last_line(str(exc))}")
                continue
            ports[f"{case}/{impl}"] = forward.local_port
            pids[f"{case}/{impl}"] = forward.pid
            started.append(forwarder)
        timings = _interleaved(setup, ports, pids, size, runs)
    for mode, group in (("down", "pf-download"), ("up", "pf-upload")):
        direct, _, _, direct_cpu = timings["direct TCP"][mode]
        for transport in KUBECTL_FOR:
            results.append(Result(
                group, transport, "direct TCP", direct, size, baseline=True,
                extra={"pod + load client CPU s": f"{statistics.median(direct_cpu):.2f}"}))
            for case, impl, baseline, _, _ in started:
                if case != transport:
                    continue
                seconds, cpu, peer_cpu, ends_cpu = timings[f"{case}/{impl}"][mode]
                results.append(Result(
                    group, case, impl, seconds, size, baseline=baseline,
                    extra={"forwarder CPU s": f"{statistics.median(cpu):.2f}",
                           "Go peer CPU s": f"{statistics.median(peer_cpu):.2f}",
                           "pod + load client CPU s": f"{statistics.median(ends_cpu):.2f}"}))
    return results


def bench_portforward(config: Config, remarks: list[str]) -> list[Result]:
    """Every port-forward figure: throughput per transport, concurrency, server role."""
    size, conns, conn_size = _sizes(config)
    runs = config.e2e_runs if config.mode == "smoke" else max(5, config.e2e_runs)
    kstream_cli = kstream_port_forward_available()
    if not kstream_cli:
        remarks.append("kstream port-forward: not measured, this checkout's CLI has no "
                       "`port-forward` yet.")
    with _setup() as setup:
        results = _bench_throughput(setup, size, runs, kstream_cli, remarks)
        results += _bench_concurrent(setup, config, conns, conn_size, kstream_cli, remarks)
        results += _bench_server_role(setup, config, size, runs, remarks)
    remarks.append(f"port-forward: {size >> 20} MiB per transfer, {runs} runs per figure "
                   f"({conns} connections × {conn_size >> 10} KiB for `pf-concurrent`), "
                   "whatever the mode line says; every row is timed by `kpeer pf-load` at "
                   "the local port (connect to EOF), the forwarders of a table taking turns "
                   "run by run; `direct TCP` is the same client on the pod port (one "
                   "measurement, shown on both lines).")
    return results


def _bench_concurrent(setup: _Setup, config: Config, conns: int, conn_size: int,
                      kstream_cli: bool, remarks: list[str]) -> list[Result]:
    """``conns`` connections through one forward: aggregate throughput, RSS per connection."""
    results = []
    for transport, version in KUBECTL_FOR.items():
        case = f"{conns} connections, {transport}"
        # Two pod ports through one forward: bench for throughput, echo for the held
        # connections.
        command = _kubectl_command(version, setup.kubeconfig, setup.workdir,
                                   setup.pod.bench_port, setup.pod.echo_port)
        if command is not None:
            results += _two_port_row(setup, command, _kubectl_env(), config, conns,
                                     conn_size, case, f"kubectl {version}", baseline=True,
                                     remarks=remarks)
        if kstream_cli:
            command = _kstream_command(transport, setup.kubeconfig, setup.pod.bench_port,
                                       setup.pod.echo_port)
            results += _two_port_row(setup, command, _kstream_env(), config, conns,
                                     conn_size, case, "kstream port-forward",
                                     baseline=False, remarks=remarks)
    return results


class _Ports:
    """A forward's local ports for the bench and echo pod ports, from its output."""

    def __init__(self, forward: Any, pod: Any) -> None:
        self.forward = forward
        self.pid = forward.pid
        self.local_port = forward.local_port  # the first port named: bench
        self.echo_local_port = _second_local_port(forward, pod.echo_port)


def _second_local_port(forward: Any, remote: int) -> int:
    """The local port of ``-> remote`` in the forward's ``Forwarding from`` lines."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in list(forward.stdout_lines):
            if line.startswith("Forwarding from 127.0.0.1:") and line.rstrip().endswith(
                    f"-> {remote}"):
                return int(line.split()[2].rpartition(":")[2])
        time.sleep(0.05)
    raise RuntimeError(f"no 'Forwarding from ... -> {remote}' line; got {forward.stdout_lines}")


def _two_port_row(setup: _Setup, command: Sequence[str], env: dict[str, str], config: Config,
                  conns: int, conn_size: int, case: str, impl: str, *,
                  baseline: bool, remarks: list[str]) -> list[Result]:
    try:
        return [_concurrent_row(setup, command, env, config, conns, conn_size, case, impl,
                                baseline=baseline)]
    except RuntimeError as exc:
        remarks.append(f"port-forward, {case}, {impl}: failed: {_last_line(str(exc))}")
        return []


def _concurrent_row(setup: _Setup, command: Sequence[str], env: dict[str, str],
                    config: Config, conns: int, conn_size: int, case: str, impl: str, *,
                    baseline: bool) -> Result:
    with setup.forward(command, env) as forward:
        ports = _Ports(forward, setup.pod)
        # Memory first, on a fresh forwarder (big transfers would leave freed memory the
        # held connections could reuse). One connection first, so that a lazily opened
        # session is not counted as the connections' cost.
        with setup.gopeer.HeldConnections(setup.binary, ports.echo_local_port, 1):
            before = _rss_kib(ports.pid)
        with setup.gopeer.HeldConnections(setup.binary, ports.echo_local_port, conns):
            during = _rss_kib(ports.pid)
        setup.load(ports.local_port, "down", 64 << 10)
        seconds = [setup.load(ports.local_port, "down", conn_size, conns)
                   for _ in range(config.e2e_runs)]
    per_connection = max(0, during - before) / max(1, conns - 1)
    return Result("pf-concurrent", case, impl, seconds, conn_size * conns, baseline=baseline,
                  extra={"RSS before KiB": str(before), "RSS open KiB": str(during),
                         "RSS KiB/connection": f"{per_connection:.1f}"},
                  note=f"{conns} connections at once, {conn_size >> 10} KiB down each; RSS "
                       f"(VmRSS) with {conns} echo connections open minus with one, "
                       f"over {conns - 1}; measured first, on a fresh forwarder")


def _bench_server_role(setup: _Setup, config: Config, size: int, runs: int,
                       remarks: list[str]) -> list[Result]:
    """kubectl forwarding through ``kstream serve`` vs through the Go peer, in turns."""
    from .loopback import kstream_serve

    results: list[Result] = []
    remote = setup.pod.bench_port
    with kstream_serve(setup.workdir) as (port, token), \
            KubeFront(port, setup.workdir, peer_token=token, name="pf-serve") as serve_front, \
            KubeFront(setup.peer.port, setup.workdir, name="pf-peer") as peer_front:
        for transport, version in KUBECTL_FOR.items():
            with contextlib.ExitStack() as stack:
                ports: dict[str, int] = {}
                for server, front in (("kstream serve", serve_front), ("Go peer", peer_front)):
                    command = _kubectl_command(version, front.kubeconfig, setup.workdir,
                                               remote)
                    if command is None:
                        continue
                    try:
                        forward = stack.enter_context(setup.forward(command, _kubectl_env()))
                    except RuntimeError as exc:
                        remarks.append(f"port-forward server role, {server}, kubectl "
                                       f"{version}: failed: {_last_line(str(exc))}")
                        continue
                    ports[server] = forward.local_port
                timings = _interleaved(setup, ports, {}, size, runs)
            for mode, direction in (("down", "download"), ("up", "upload")):
                for server in ports:
                    results.append(Result(
                        "pf-server-role", f"kubectl {version} ({transport}) {direction}",
                        server, timings[server][mode][0], size,
                        baseline=server == "Go peer",
                        extra={"front": "KubeFront (splice)"}))
    return results
