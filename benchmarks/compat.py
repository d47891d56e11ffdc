"""``kstream.compat.kubernetes`` against the original ``kubernetes.stream.stream``.

The same calls, word for word but for the import, against the same server, ``kstream
serve`` running ``head -c N /dev/zero`` (text-safe output): a 64 MiB download (full
mode; 4 MiB quick, 64 KiB smoke) collected three ways. Not the Go peer: once its
session is over it closes the connection within seconds, and the preloaded original is
still reading then (its time grows with the square of the output), so it loses the end.

* ``preloaded text``: ``stream(...)`` returning ``str``, the documented call;
* ``preloaded binary``: the same with ``binary=True``;
* ``read loop``: ``_preload_content=False, binary=True``, then ``update()`` and
  ``read_stdout()`` until closed (what the ``official`` group measures for kstream).

Each transfer runs in a fresh interpreter (``python -m benchmarks.compat worker ...``),
so its peak RSS (``VmHWM``) and CPU time are its own; the time is the worker's, from the
call to the result. The client CPU time is reported beside the wall time: on a busy
machine kstream.compat's wall time is mostly waiting for the server's processes, while
the original's is its own CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, Final

from ._harness import Config, Result

__all__ = ["CASES", "bench_compat", "main"]

#: case name -> (preloaded, binary)
CASES: Final[dict[str, tuple[bool, bool]]] = {
    "preloaded text": (True, False),
    "preloaded binary": (True, True),
    "read loop": (False, True),
}
IMPLS: Final = {"original": "kubernetes.stream", "compat": "kstream.compat.kubernetes"}
_POD: Final = "bench"
_TIMEOUT: Final = 900.0


def _download(impl: str, url: str, token: str, size: int, case: str) -> int:
    from kubernetes import client

    stream: Any
    if impl == "original":
        from kubernetes.stream import stream
    else:
        from kstream.compat.kubernetes import stream
    preloaded, binary = CASES[case]
    configuration = client.Configuration()
    configuration.host = url
    configuration.api_key["BearerToken"] = f"Bearer {token}"
    api = client.CoreV1Api(client.ApiClient(configuration))
    command = ["head", "-c", str(size), "/dev/zero"]
    if preloaded:
        out = stream(api.connect_get_namespaced_pod_exec, _POD, "default",
                     command=command, stdout=True, stderr=True, stdin=False,
                     tty=False, binary=binary)
        count = len(out)
        del out
        return count
    response = stream(api.connect_get_namespaced_pod_exec, _POD, "default",
                      command=command, stdout=True, stderr=True, stdin=False,
                      tty=False, binary=True, _preload_content=False)
    count = 0
    while response.is_open():
        response.update(timeout=1)
        while response.peek_stdout():
            count += len(response.read_stdout())
    response.close()
    return count


def _worker(args: argparse.Namespace) -> int:
    import warnings

    from kubernetes import client

    from ._worker import _peak_rss_kib

    # Imports before the baseline RSS and the clock: kubernetes.client loads CoreV1Api
    # (and ~250 pydantic models) on first access, about 0.3 s that is not the transfer.
    _ = client.CoreV1Api, client.ApiClient, client.Configuration
    if args.impl == "original":
        import kubernetes.stream  # noqa: F401
    else:
        import kstream.compat.kubernetes  # noqa: F401

    warnings.simplefilter("ignore", ResourceWarning)  # the original leaves its socket
    base = _peak_rss_kib()
    cpu = time.process_time()
    start = time.perf_counter()
    count = _download(args.impl, args.url, args.token, args.size, args.case)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "count": count, "rss_base_kib": base,
                      "rss_peak_kib": _peak_rss_kib(),
                      "cpu_seconds": time.process_time() - cpu}), flush=True)
    return 0


def _run_worker(impl: str, url: str, token: str, size: int, case: str) -> dict[str, Any]:
    from .loopback import REPO

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.compat", "worker", "--impl", impl, "--url", url,
         "--token", token, "--size", str(size), "--case", case],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"compat worker {impl} {case} failed:\n{completed.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    if report["count"] != size:
        raise RuntimeError(f"compat worker {impl} {case}: {report['count']} of {size} bytes")
    return report


def bench_compat(config: Config, servers: Any, cases: Sequence[str] = tuple(CASES)
                 ) -> list[Result]:
    """The original ``stream()`` against ``kstream.compat.kubernetes.stream()``.

    Args:
        config: the mode (sizes and runs).
        servers: the running :class:`benchmarks.loopback.Servers`.
        cases: which of :data:`CASES` to run.

    Returns:
        Two rows per case, the original being the baseline.
    """
    size = {"full": 64 << 20, "quick": 4 << 20}.get(config.mode, 64 << 10)
    # The original is quadratic in the preloaded cases (10 s and more at 64 MiB).
    runs = 1 if config.mode == "full" else config.e2e_runs
    label = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
    from .loopback import kstream_serve

    results: list[Result] = []
    with kstream_serve(servers.workdir) as (port, token):
        url = f"http://127.0.0.1:{port}"
        for case in cases:
            rows: dict[str, list[dict[str, Any]]] = {impl: [] for impl in IMPLS}
            # kstream.compat is cheap to repeat: at least 3 runs, so that its median
            # does not hang on one scheduling hiccup of a busy machine.
            for run in range(max(runs, 3)):
                for impl in IMPLS:
                    if impl == "compat" or run < runs:
                        rows[impl].append(_run_worker(impl, url, token, size, case))
            results += _rows(case, label, size, rows)
    return results


def _rows(case: str, label: str, size: int,
          rows: dict[str, list[dict[str, Any]]]) -> list[Result]:
    results: list[Result] = []
    for impl, reports in rows.items():
        peak = max(r["rss_peak_kib"] - r["rss_base_kib"] for r in reports)
        cpu = sorted(r["cpu_seconds"] for r in reports)[len(reports) // 2]
        results.append(Result(
            "compat", f"{case} download {label}", f"{impl} ({IMPLS[impl]})",
            [r["seconds"] for r in reports], size, baseline=impl == "original",
            extra={"peak RSS over base MiB": f"{peak / 1024:.0f}",
                   "client CPU s": f"{cpu:.2f}"},
            note="client CPU: the calling process's CPU time (both threads of compat)"))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.compat worker ...`` (one transfer) or ``run`` (the group)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compat")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="one transfer, one JSON line")
    worker.add_argument("--impl", choices=list(IMPLS), required=True)
    worker.add_argument("--url", required=True)
    worker.add_argument("--token", required=True)
    worker.add_argument("--size", type=int, required=True)
    worker.add_argument("--case", choices=list(CASES), required=True)
    sub.add_parser("run", help="the compat group alone, printed (python -m benchmarks "
                               "--only compat writes the result files)")
    args = parser.parse_args(argv)
    if args.command == "worker":
        return _worker(args)
    from . import loopback

    with loopback.servers() as servers:
        for result in bench_compat(Config.full(), servers):
            median = sorted(result.seconds)[len(result.seconds) // 2]
            print(f"{result.case:40} {result.impl:45} {median:8.3f} s "
                  f"{result.nbytes / median / 1e6:9.1f} MB/s {result.extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
