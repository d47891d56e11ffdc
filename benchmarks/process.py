"""Whole processes, timed from outside: ``kstream exec`` next to ``kubectl exec``.

What a person at a shell waits for: the interpreter or binary starting, its imports, the
kubeconfig, connecting, the upgrade, the transfer and the exit. Each figure is the wall
time of fresh processes started by this benchmark, the commands exactly as a user types
them, against the same server (the Go peer behind :class:`~benchmarks.kubefront.KubeFront`)
in the same run, the clients taking turns run by run so that a busy moment of the machine
falls on both:

* ``exec -- true``: ``kstream exec POD -- exit 0`` against ``kubectl exec POD -- exit 0``
  (the Go peer's built-in ``exit 0`` is its ``true``: no process is spawned);
* upload: ``head -c SIZE /dev/zero | kstream exec -i POD -- sink`` (the peer counts and
  hashes stdin, prints one line);
* download: ``kstream exec POD -- source SIZE | cat > /dev/null`` (stdout into a pipe).

kstream runs with ``--transport websocket`` or ``--transport spdy`` for the transfers
(compared with kubectl 1.33, which speaks WebSocket v5, and kubectl 1.27, which speaks
SPDY), and with its default (``auto``: WebSocket v5 first) for ``exec -- true``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import IO, Final

from ._harness import Config, Result
from .loopback import KUBECTL_FOR, Servers, _peer_cpu_seconds, kubectl_binary

__all__ = ["GROUPS", "bench_process", "kstream_command"]

_POD: Final = "bench"
_TIMEOUT: Final = 600.0
#: The result groups of this benchmark, for the report.
GROUPS: Final = ("process-start", "process-upload", "process-download")
#: kstream's --transport for each transport case.
_KSTREAM_TRANSPORT: Final = {"websocket v5": "websocket", "spdy": "spdy"}


def kstream_command() -> list[str]:
    """How a user runs kstream here: the ``kstream`` script of this interpreter's
    environment, or ``python -m kstream`` when it has none."""
    script = Path(sys.executable).with_name("kstream")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "kstream"]


def _compile_kstream(remarks: list[str]) -> None:
    # An installed kstream starts from bytecode (pip writes it); a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile every module at every start instead.
    import compileall

    import kstream

    package = Path(kstream.__file__).resolve().parent
    if compileall.compile_dir(package, quiet=1):
        remarks.append("whole process: kstream's bytecode was compiled before the runs, as "
                       "an installation has it.")


def _client_env() -> dict[str, str]:
    # Neither client may pick up the user's cluster; no coverage hooks in kstream.
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("KUBECTL_", "COVERAGE")) and key != "KUBECONFIG"}


def _kstream(servers: Servers, args: Sequence[str], transport: str | None) -> list[str]:
    flags = ["--transport", transport] if transport else []
    return [*kstream_command(), "exec", "--kubeconfig", str(servers.front.kubeconfig),
            *flags, *args]


def _kubectl(servers: Servers, binary: Path, args: Sequence[str]) -> list[str]:
    return [str(binary), "--kubeconfig", str(servers.front.kubeconfig), "--cache-dir",
            str(servers.workdir / f"cache-{binary.name}"), "--request-timeout", "600s",
            "exec", *args]


def _reap(process: subprocess.Popen[bytes]) -> float:
    """Wait for ``process``; return its CPU seconds (user + system)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _run(command: Sequence[str], *, upload: int = 0, download: bool = False,
         output: IO[bytes] | None = None) -> tuple[float, float]:
    """Run ``command`` as a shell pipeline would; return (wall seconds, client CPU seconds).

    ``upload``: ``head -c UPLOAD /dev/zero`` feeds its stdin through a pipe. ``download``:
    its stdout goes into a pipe read by ``cat`` (into /dev/null). Otherwise stdin is
    /dev/null and stdout goes to ``output`` (or /dev/null).
    """
    with tempfile.TemporaryFile() as errors, open(os.devnull, "r+b") as null:
        start = time.perf_counter()
        head = (subprocess.Popen(["head", "-c", str(upload), "/dev/zero"],
                                 stdout=subprocess.PIPE, stdin=null)
                if upload else None)
        client = subprocess.Popen(
            list(command), stdin=head.stdout if head else null,
            stdout=subprocess.PIPE if download else (output or null), stderr=errors,
            env=_client_env())
        reader = None
        if download:
            assert client.stdout is not None
            reader = subprocess.Popen(["cat"], stdin=client.stdout, stdout=null)
            client.stdout.close()
        if head is not None and head.stdout is not None:
            head.stdout.close()
        try:
            cpu = _reap(client)
            for helper in (head, reader):
                if helper is not None:
                    helper.wait(_TIMEOUT)
        except BaseException:
            for process in (head, client, reader):
                if process is not None and process.returncode is None:
                    process.kill()
                    process.wait()
            raise
        wall = time.perf_counter() - start
        if client.returncode != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{list(command)} exited {client.returncode}: {text}")
    return wall, cpu


def _upload(command: Sequence[str], size: int, output: IO[bytes]) -> tuple[float, float]:
    timed = _run(command, upload=size, output=output)
    _check_sink(output, size)
    return timed


def _check_sink(output: IO[bytes], size: int) -> None:
    # The peer's `sink` prints "COUNT SHA256": every byte must have arrived.
    output.seek(0)
    text = output.read().decode(errors="replace")
    output.seek(0)
    output.truncate()
    count = int(text.split()[0]) if text.split() else -1
    if count != size:
        raise RuntimeError(f"sink received {count} bytes of {size}: {text!r}")


_Measured = dict[str, tuple[list[float], list[float], list[float]]]


def _side_by_side(servers: Servers, runs: int,
                  clients: dict[str, Callable[[], tuple[float, float]]],
                  warmup: int) -> _Measured:
    """Run every client ``runs`` times, taking turns; return each one's walls, CPU
    seconds and the Go peer's CPU seconds during its runs."""
    for _ in range(warmup):
        for run in clients.values():
            run()
    measured: _Measured = {name: ([], [], []) for name in clients}
    for index in range(runs):
        # Alternate who goes first, so neither always runs right after the other.
        order = list(clients) if index % 2 == 0 else list(reversed(clients))
        for name in order:
            peer_before = _peer_cpu_seconds(servers)
            wall, cpu = clients[name]()
            walls, cpus, peer = measured[name]
            walls.append(wall)
            cpus.append(cpu)
            peer.append(_peer_cpu_seconds(servers) - peer_before)
    return measured


def _median_text(values: Sequence[float]) -> str:
    ordered = sorted(values)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return f"{value:.2f}"


def _rows(group: str, case: str, measured: _Measured, nbytes: int,
          note: str) -> list[Result]:
    return [Result(group, case, name, walls, nbytes, baseline=name.startswith("kubectl"),
                   extra={"client CPU s": _median_text(cpus),
                          "Go peer CPU s": _median_text(peer)},
                   note=note if index == 0 else "")
            for index, (name, (walls, cpus, peer)) in enumerate(measured.items())]


def bench_process(config: Config, servers: Servers, remarks: list[str]) -> list[Result]:
    """``exec -- true``, a pipe upload and a pipe download: kstream vs kubectl, whole
    processes, side by side."""
    results: list[Result] = []
    smoke = config.mode == "smoke"
    _compile_kstream(remarks)
    start_runs = 1 if smoke else 10
    # Whole processes on a shared machine vary run to run far more than in-process
    # figures: at least 5 transfers per figure outside the smoke test.
    transfer_runs = config.e2e_runs if smoke else max(config.e2e_runs, 5)
    binaries = {version: kubectl_binary(version) for version in ("1.33", "1.27")}
    for version, binary in binaries.items():
        if binary is None:
            remarks.append(f"whole process: kubectl {version} is not installed, not measured.")

    clients: dict[str, Callable[[], tuple[float, float]]] = {
        "kstream": partial(_run, _kstream(servers, [_POD, "--", "exit", "0"], None))}
    for version, binary in binaries.items():
        if binary is not None:
            clients[f"kubectl {version}"] = partial(
                _run, _kubectl(servers, binary, [_POD, "--", "exit", "0"]))
    started = _side_by_side(servers, start_runs, clients, 1)
    results += _rows("process-start", "exec -- true", started, 0,
                     f"wall time of the whole process, median of {start_runs}; kstream "
                     "with its default transport (auto)")

    with tempfile.TemporaryFile() as output:
        for transport, kstream_transport in _KSTREAM_TRANSPORT.items():
            version = KUBECTL_FOR[transport]
            binary = binaries[version]
            size = config.upload_bytes
            upload_args = ["-i", _POD, "--", "sink"]
            clients = {"kstream": partial(_upload, _kstream(servers, upload_args,
                                                             kstream_transport), size, output)}
            if binary is not None:
                clients[f"kubectl {version}"] = partial(
                    _upload, _kubectl(servers, binary, upload_args), size, output)
            results += _rows("process-upload", transport,
                             _side_by_side(servers, transfer_runs, clients,
                                           0 if smoke else 1),
                             size, f"head -c {size} /dev/zero | CLIENT exec -i … -- sink")

            size = config.download_bytes
            download_args = [_POD, "--", "source", str(size)]
            clients = {"kstream": partial(_run, _kstream(servers, download_args,
                                                          kstream_transport), download=True)}
            if binary is not None:
                clients[f"kubectl {version}"] = partial(
                    _run, _kubectl(servers, binary, download_args), download=True)
            results += _rows("process-download", transport,
                             _side_by_side(servers, transfer_runs, clients, 0),
                             size, f"CLIENT exec … -- source {size} | cat > /dev/null")
    return results


def _main() -> None:
    # python -m benchmarks.process: print the figures without writing any result file.
    from .loopback import servers as running_servers

    mode = sys.argv[1] if len(sys.argv) > 1 else "quick"
    config = {"full": Config.full, "quick": Config.quick, "smoke": Config.smoke}[mode]()
    remarks: list[str] = []
    with running_servers() as servers:
        for result in bench_process(config, servers, remarks):
            figure = (f"{result.mbps():8.1f} MB/s" if result.nbytes
                      else f"{result.median * 1e3:8.1f} ms")
            print(f"{result.group:17} {result.case:13} {result.impl:13} {figure}  "
                  f"runs {' '.join(f'{s:.3f}' for s in result.seconds)}  {result.extra}")
    for remark in remarks:
        print(remark)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        _main()
