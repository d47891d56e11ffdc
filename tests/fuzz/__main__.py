"""``python -m tests.fuzz`` (``make fuzz``): a coverage-guided campaign over every target.

Each target of ``tests/fuzz/targets.py`` runs under atheris (libFuzzer) in its own
process for its share of the time budget, starting from the recorded sessions, and any
input that makes a target raise anything but the remote error is saved as
``tests/fuzz/regressions/TARGET/crash-SHA1``, which ``make test`` replays from then on.

    python -m tests.fuzz [--seconds 600] [--target NAME ...]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .targets import REGRESSIONS, TARGETS


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz")
    parser.add_argument("--seconds", type=int, default=600,
                        help="the whole campaign's time budget (default 600)")
    parser.add_argument("--target", action="append", default=[], choices=sorted(TARGETS),
                        metavar="NAME", help="fuzz only these targets (repeatable)")
    args = parser.parse_args()
    names = args.target or sorted(TARGETS)
    share = max(1, args.seconds // len(names))
    print(f"fuzzing {len(names)} targets, {share} s each", flush=True)
    rows: list[tuple[str, int, int, int]] = []
    started = time.monotonic()
    for name in names:
        found = REGRESSIONS / name
        found.mkdir(parents=True, exist_ok=True)
        before = set(found.iterdir())
        with tempfile.TemporaryDirectory() as work, tempfile.TemporaryDirectory() as seeds:
            for index, seed in enumerate(TARGETS[name].seeds):
                Path(seeds, f"seed-{index}").write_bytes(seed)
            run = subprocess.run(
                [sys.executable, "-m", "tests.fuzz.atheris_target", name,
                 f"-max_total_time={share}", "-timeout=10", "-rss_limit_mb=2048",
                 f"-artifact_prefix={found}/", "-print_final_stats=1", work, seeds],
                capture_output=True, text=True, check=False)
        executions = [int(n) for n in re.findall(r"stat::number_of_executed_units:\s+(\d+)",
                                                  run.stderr)]
        coverage = re.findall(r"cov: (\d+)", run.stderr)
        new = sorted(set(found.iterdir()) - before)
        if not any(found.iterdir()):
            found.rmdir()
        rows.append((name, executions[-1] if executions else 0,
                     int(coverage[-1]) if coverage else 0, len(new)))
        print(f"{name:48} {rows[-1][1]:>9} runs  cov {rows[-1][2]:>5}  "
              f"{'FOUND ' + str(len(new)) if new else 'clean'}", flush=True)
        if new and run.returncode != 0:
            print("\n".join(run.stderr.splitlines()[-30:]))
    total = sum(row[1] for row in rows)
    failures = sum(row[3] for row in rows)
    print(f"\n{len(rows)} targets, {total} inputs in {time.monotonic() - started:.0f} s, "
          f"{failures} failing inputs saved to {REGRESSIONS}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
