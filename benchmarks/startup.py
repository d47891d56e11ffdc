"""``python -m benchmarks.startup KUBECONFIG [RUNS]``: where ``kstream exec`` start-up goes.

Runs ``kstream exec --kubeconfig KUBECONFIG bench -- exit 0`` (the whole-process
benchmark's ``exec -- true``) ``RUNS`` times under ``python -X importtime`` and prints the
import time of each part of the program (the least of the runs, module by module: the
figure of a quiet machine), then the wall time of each phase of the command (imports,
parsing, kubeconfig, connect and upgrade, exit), the least of as many runs. The output is
the start-up profile in ``docs/benchmarks/``.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Final

__all__ = ["import_profile", "main"]

#: Parts of the program, by module name prefix (the first that matches wins).
PARTS: Final = (
    ("kstream CLI: parser, kubeconfig, stdio", ("kstream._app", "kstream.__main__")),
    ("kstream asyncio adapter and runtime", ("kstream.asyncio", "kstream._runtime")),
    ("kstream SPDY stack", ("kstream._spdy", "kstream._exec.spdy")),
    ("kstream sans-IO core: WebSocket, session, errors", ("kstream",)),
    ("wsproto and h11 (handshakes, frame seam)", ("wsproto", "h11")),
    ("websockets C mask (extension only)", ("websockets",)),
    ("asyncio, ssl, socket, selectors, logging, concurrent",
     ("asyncio", "ssl", "_ssl", "socket", "_socket", "selectors", "logging",
      "concurrent", "_asyncio", "select", "subprocess", "signal", "threading")),
    ("dataclasses, inspect, enum, typing, re", ("dataclasses", "inspect", "enum", "typing",
                                               "re", "ast", "dis", "sre_", "_sre")),
    ("interpreter start (site, encodings), argparse, json, urllib, other standard library",
     ("",)),
)


def _part(module: str) -> str:
    for name, prefixes in PARTS:
        if any(module == prefix or module.startswith(prefix + ".") or
               (prefix.endswith("_") and module.startswith(prefix)) or prefix == ""
               for prefix in prefixes):
            return name
    return PARTS[-1][0]


def _kstream_argv(kubeconfig: str) -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "kstream")
    return [script, "exec", "--kubeconfig", kubeconfig, "bench", "--", "exit", "0"]


def import_profile(kubeconfig: str, runs: int) -> dict[str, float]:
    """Milliseconds of import per module (self time, least of ``runs``)."""
    best: dict[str, int] = collections.defaultdict(lambda: 1 << 62)
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, "-X", "importtime", *_kstream_argv(kubeconfig)],
            capture_output=True, text=True, timeout=60, check=True)
        for line in completed.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            fields = line.split("|")
            micros = int(fields[0].split(":")[1])
            module = fields[2].strip()
            best[module] = min(best[module], micros)
    return {module: micros / 1e3 for module, micros in best.items()}


_PHASES: Final = """
import time
t0 = time.perf_counter()
import kstream._app.cli as cli
t1 = time.perf_counter()
args = cli.build_parser().parse_args(["exec", "--kubeconfig", KUBECONFIG, "bench"])
t2 = time.perf_counter()
import asyncio, kstream.asyncio
from kstream._app import kubeconfig
t3 = time.perf_counter()
config = kubeconfig.load_config(KUBECONFIG)
t4 = time.perf_counter()
async def run():
    process = await kstream.asyncio.open_exec(config.server, "default", "bench",
                                              ["exit", "0"], stdout=True, stderr=True)
    opened = time.perf_counter()
    await process.wait()
    await process.aclose()
    return opened
t5 = asyncio.run(run())
t6 = time.perf_counter()
for name, start, end in (("import the CLI", t0, t1), ("build the parser, parse", t1, t2),
                         ("import asyncio, the adapter, the kubeconfig loader", t2, t3),
                         ("read the kubeconfig", t3, t4),
                         ("connect and upgrade (open_exec)", t4, t5),
                         ("exit status, close, end the loop", t5, t6)):
    print(f"{(end - start) * 1e3:.3f}\t{name}")
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Print the start-up profile of ``kstream exec -- true``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    kubeconfig, runs = args[0], int(args[1]) if len(args) > 1 else 15
    started = time.perf_counter()
    profile = import_profile(kubeconfig, runs)
    parts: dict[str, float] = collections.defaultdict(float)
    for module, millis in profile.items():
        parts[_part(module)] += millis
    total = sum(parts.values())
    print(f"Imports of `kstream exec -- true`: {total:.1f} ms in {len(profile)} modules "
          f"(self time, least of {runs} runs per module)\n")
    for name, _ in PARTS:
        print(f"{parts.get(name, 0.0):8.1f} ms  {name}")
    print("\nThe 15 slowest modules (self time):\n")
    for module, millis in sorted(profile.items(), key=lambda item: -item[1])[:15]:
        print(f"{millis:8.1f} ms  {module}")
    print(f"\nPhases of the command (wall time, least of {runs} runs per phase):\n")
    phases: dict[str, float] = {}
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, "-c", f"KUBECONFIG = {kubeconfig!r}\n" + _PHASES],
            capture_output=True, text=True, check=True, timeout=60)
        for line in completed.stdout.splitlines():
            figure, name = line.split("\t")
            phases[name] = min(phases.get(name, float("inf")), float(figure))
    for name, millis in phases.items():
        print(f"{millis:8.1f} ms  {name}")
    print(f"\n(profiled in {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
