"""The port-forward benchmark still runs: once, on tiny sizes (never timed).

Like ``tests/test_benchmarks_smoke.py``: benchmarks are not tests, this only keeps the
``portforward`` group working. Nothing here asserts a speed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks._harness import Config  # noqa: E402
from benchmarks.portforward import bench_portforward  # noqa: E402
from benchmarks.report import evaluate_targets  # noqa: E402


@pytest.mark.timeout(240)  # ~15 s on an idle machine: a dozen short forwards
def test_port_forward_benchmark_rows() -> None:
    remarks: list[str] = []
    results = bench_portforward(Config.smoke(), remarks)
    assert results
    for result in results:
        assert result.seconds and all(seconds > 0 for seconds in result.seconds), result
    rows = {(r.group, r.case, r.impl) for r in results}
    for group in ("pf-download", "pf-upload"):
        for case, kubectl in (("tunnel", "kubectl 1.33"), ("spdy", "kubectl 1.27")):
            assert (group, case, kubectl) in rows
            assert (group, case, "kstream port-forward") in rows
            assert (group, case, "direct TCP") in rows
    for case in ("tunnel", "spdy"):
        assert ("pf-concurrent", f"10 connections, {case}", "kstream port-forward") in rows
    assert ("pf-concurrent", "10 connections, tunnel", "kubectl 1.33") in rows
    for case in ("kubectl 1.33 (tunnel)", "kubectl 1.27 (spdy)"):
        for direction in ("download", "upload"):
            assert ("pf-server-role", f"{case} {direction}", "Go peer") in rows
            assert ("pf-server-role", f"{case} {direction}", "kstream serve") in rows
    assert not [remark for remark in remarks if "failed" in remark], remarks
    concurrent = [r for r in results if r.group == "pf-concurrent"]
    assert all(float(r.extra["RSS KiB/connection"]) >= 0 for r in concurrent)
    texts = {target.text for target, _, _ in evaluate_targets(results)}
    assert "port-forward download, tunnel: kstream ≥ 1.2× kubectl 1.33" in texts
