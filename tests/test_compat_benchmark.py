"""The compat benchmark group still runs (smoke sizes, never timed).

``python -m benchmarks --only compat`` measures ``kstream.compat.kubernetes.stream``
against the original ``stream()``; this only keeps it working.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import cli, loopback  # noqa: E402
from benchmarks._harness import Config  # noqa: E402
from benchmarks.compat import CASES, bench_compat  # noqa: E402


@pytest.mark.timeout(180)
def test_compat_group_runs_every_case() -> None:
    assert "compat" in cli.BENCHMARKS
    with loopback.servers() as servers:
        results = bench_compat(Config.smoke(), servers)
    rows = {(r.case, r.impl.split()[0]) for r in results}
    assert rows == {(f"{case} download 64 KiB", impl) for case in CASES
                    for impl in ("original", "compat")}
    assert all(r.seconds and r.seconds[0] > 0 for r in results)
    assert [r.baseline for r in results if r.impl.startswith("original")] == [True] * 3
