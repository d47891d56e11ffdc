"""``python -m benchmarks [--quick] [--only NAME]...``: run the suite and write the results.

Results go to ``docs/benchmarks/`` (``--out`` to change): ``results-<mode>.md`` (tables,
targets, machine, command), ``results-<mode>.png`` (plot, needs matplotlib: the ``bench``
extra), ``results-<mode>.json`` (every run of every figure) and, when the ``process``
benchmark ran, ``headline-<mode>.png`` (kstream against kubectl, whole processes).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from ._harness import Config, Result, machine_description
from .framing import bench_spdy_framing, bench_ws_framing
from .report import write_headline, write_json, write_markdown, write_plot

__all__ = ["BENCHMARKS", "main", "run"]

REPO: Final = Path(__file__).resolve().parent.parent
DEFAULT_OUT: Final = REPO / "docs" / "benchmarks"

#: Benchmark name -> what it measures. Those marked ``servers`` need the Go peer.
BENCHMARKS: Final[dict[str, str]] = {
    "framing-ws": "WebSocket channel framing in memory, every subprotocol, both roles",
    "framing-spdy": "SPDY DATA frames in memory",
    "loopback": "download and upload over loopback: kstream, kubectl, raw socket",
    "official": "kstream vs the official kubernetes client",
    "latency": "a trivial exec, kstream vs kubectl",
    "scale": "N concurrent sessions from one asyncio process, busy and idle",
    "server-role": "kubectl downloading from kstream serve vs from the Go peer",
    "compat": "kstream.compat.kubernetes.stream() vs the original stream(), same calls",
    "process": "whole processes: kstream exec vs kubectl exec (start, pipe upload, "
               "pipe download)",
    "portforward": "port-forward down and up: kstream, kubectl, direct TCP; concurrency; "
                   "kstream serve vs the Go peer",
}
_NEEDS_SERVERS: Final = frozenset({"loopback", "official", "latency", "scale",
                                   "server-role", "compat", "process"})


def run(config: Config, only: Sequence[str] = (), *, out: Path = DEFAULT_OUT,
        command: str = "python -m benchmarks",
        log: Callable[[str], None] = print) -> list[Result]:
    """Run the chosen benchmarks (all by default) and write the result files.

    Args:
        config: sizes and run counts.
        only: benchmark names (keys of :data:`BENCHMARKS`); empty runs them all.
        out: the directory to write ``results-<mode>.{md,png,json}`` into.
        command: the command line to record in the results.
        log: progress lines go here.

    Returns:
        Every result row.

    Raises:
        ValueError: an unknown benchmark name.
    """
    names = list(only) or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    results: list[Result] = []
    remarks: list[str] = []
    started = time.monotonic()
    for name in names:
        if name in _NEEDS_SERVERS:
            continue
        log(f"[{time.monotonic() - started:6.1f} s] {name}")
        if name == "framing-ws":
            results += bench_ws_framing(config)
        elif name == "framing-spdy":
            results += bench_spdy_framing(config)
        elif name == "portforward":
            from .portforward import bench_portforward

            results += bench_portforward(config, remarks)
    if any(name in _NEEDS_SERVERS for name in names):
        from . import loopback

        with loopback.servers() as servers:
            for name in names:
                if name not in _NEEDS_SERVERS:
                    continue
                log(f"[{time.monotonic() - started:6.1f} s] {name}")
                if name == "loopback":
                    results += loopback.bench_loopback(config, servers, remarks)
                elif name == "official":
                    results += loopback.bench_official(config, servers)
                elif name == "latency":
                    results += loopback.bench_latency(config, servers)
                elif name == "scale":
                    results += loopback.bench_scale(config, servers)
                elif name == "server-role":
                    results += loopback.bench_server_role(config, servers)
                elif name == "compat":
                    from .compat import bench_compat

                    results += bench_compat(config, servers)
                elif name == "process":
                    from .process import bench_process

                    results += bench_process(config, servers, remarks)
    elapsed = time.monotonic() - started
    log(f"[{elapsed:6.1f} s] done; writing results to {out}")
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_description()
    stem = out / f"results-{config.mode}"
    config_text = (f"Mode `{config.mode}`: {config.runs} runs per in-memory figure, "
                   f"{config.e2e_runs} per end-to-end figure (median, min–max), "
                   f"in-memory scale {config.scale}, download {config.download_bytes >> 20} "
                   f"MiB, upload {config.upload_bytes >> 20} MiB, sessions "
                   f"{list(config.sessions)} × {config.session_bytes >> 10} KiB. "
                   f"Suite run time: {elapsed:.0f} s.")
    write_markdown(stem.with_suffix(".md"), results, machine=machine, command=command,
                   config_text=config_text, remarks=remarks)
    write_json(stem.with_suffix(".json"), results, machine=machine, command=command)
    if not write_plot(stem.with_suffix(".png"), results):
        log("matplotlib is not installed (pip install 'kstream[bench]'): no plot written")
    write_headline(out / f"headline-{config.mode}.png", results)
    return results


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m benchmarks") -> int:
    """Parse the command line and run the suite."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="smaller transfers and 3 runs (under 2 minutes)")
    mode.add_argument("--smoke", action="store_true",
                      help="tiny sizes, one run: only checks that everything works")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        choices=list(BENCHMARKS),
                        help="run only this benchmark (repeatable): " + ", ".join(BENCHMARKS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"directory for the results (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    config = Config.quick() if args.quick else Config.smoke() if args.smoke else Config.full()
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = " ".join([prog, *map(shlex.quote, arguments)])
    run(config, args.only, out=args.out, command=command)
    return 0
