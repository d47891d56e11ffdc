"""The benchmark suite still runs: each benchmark once, on tiny sizes (never timed).

Benchmarks are not tests (``make test`` does not run them); this only keeps them working.
Nothing here asserts a speed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import cli, loopback  # noqa: E402
from benchmarks._harness import Config, Result  # noqa: E402
from benchmarks.framing import WS_PROTOCOLS, bench_spdy_framing, bench_ws_framing  # noqa: E402
from benchmarks.process import bench_process  # noqa: E402
from benchmarks.report import (  # noqa: E402
    evaluate_targets,
    write_headline,
    write_markdown,
    write_plot,
)
from kstream._app import bench as _bench  # noqa: E402

SMOKE = Config.smoke()


def _positive(results: list[Result]) -> None:
    assert results
    for result in results:
        assert result.seconds and all(seconds > 0 for seconds in result.seconds), result


def test_ws_framing_covers_every_subprotocol_both_roles_both_directions() -> None:
    results = bench_ws_framing(SMOKE, sizes=(64,))
    _positive(results)
    cases = {(r.group, r.case) for r in results}
    for protocol in WS_PROTOCOLS:
        for role in ("client (masked)", "server (unmasked)"):
            assert ("ws-encode", f"{protocol} {role} 64 B") in cases
        assert ("ws-decode", f"{protocol} client (unmasked) 64 B") in cases
        assert ("ws-decode", f"{protocol} server (masked) 64 B") in cases
    impls = {r.impl for r in results}
    assert impls == {"kstream", "wsproto", "bytes copy"}


def test_spdy_framing() -> None:
    results = bench_spdy_framing(SMOKE, sizes=(64, 32 * 1024))
    _positive(results)
    assert {r.group for r in results} == {"spdy-encode", "spdy-decode"}


@pytest.mark.timeout(180)  # ~10 s on an idle machine; dozens of short processes
def test_end_to_end_benchmarks_against_the_go_peer() -> None:
    remarks: list[str] = []
    with loopback.servers() as servers:
        results = loopback.bench_loopback(SMOKE, servers, remarks)
        results += loopback.bench_official(SMOKE, servers)
        results += loopback.bench_latency(SMOKE, servers)
        results += loopback.bench_scale(SMOKE, servers)
        results += loopback.bench_server_role(SMOKE, servers)
    _positive(results)
    rows = {(r.group, r.case, r.impl) for r in results}
    assert ("download", "websocket v5", "kstream asyncio") in rows
    assert ("download", "spdy", "kstream asyncio") in rows
    assert ("upload", "websocket v5", "kstream asyncio") in rows
    assert ("download", "websocket v5", "kubectl 1.33") in rows
    assert ("download", "spdy", "kubectl 1.27") in rows
    assert ("official-client", "websocket v4 download 64 KiB", "kubernetes (sync)") in rows
    assert ("scale", "3 sessions", "kstream asyncio") in rows
    assert ("scale-idle", "3 idle sessions", "kstream asyncio") in rows
    for version in ("1.33", "1.27"):
        assert ("server-role", f"kubectl {version} download", "kstream serve") in rows
        assert ("server-role", f"kubectl {version} download", "Go peer") in rows
    verdicts = {target.text: verdict for target, _, verdict in evaluate_targets(results)}
    assert verdicts["download, WebSocket v5, asyncio ≥ 1.0× kubectl 1.33"] != "not measured"
    assert verdicts["server role: kubectl 1.27 from kstream serve ≥ 0.8× from the Go peer"] \
        != "not measured"


@pytest.mark.timeout(180)  # a dozen whole kstream and kubectl processes on tiny sizes
def test_whole_process_benchmark_against_kubectl(tmp_path: Path) -> None:
    remarks: list[str] = []
    with loopback.servers() as servers:
        results = bench_process(SMOKE, servers, remarks)
    _positive(results)
    rows = {(r.group, r.case, r.impl) for r in results}
    assert {("process-start", "exec -- true", impl)
            for impl in ("kstream", "kubectl 1.33", "kubectl 1.27")} <= rows
    for direction in ("upload", "download"):
        for case, version in (("websocket v5", "1.33"), ("spdy", "1.27")):
            assert (f"process-{direction}", case, "kstream") in rows
            assert (f"process-{direction}", case, f"kubectl {version}") in rows
    verdicts = {target.text: verdict for target, _, verdict in evaluate_targets(results)}
    measured = [text for text, verdict in verdicts.items()
                if text.startswith("whole process") and verdict != "not measured"]
    assert len(measured) == 5
    assert write_headline(tmp_path / "headline.png", results)
    assert (tmp_path / "headline.png").read_bytes().startswith(b"\x89PNG")


def test_report_files(tmp_path: Path) -> None:
    results = [Result("ws-decode", "v5.channel.k8s.io client (unmasked) 32 KiB", "kstream",
                      [0.02, 0.01], 1 << 20, 32),
               Result("ws-decode", "v5.channel.k8s.io client (unmasked) 32 KiB", "wsproto",
                      [0.01], 1 << 20, 32, baseline=True)]
    write_markdown(tmp_path / "r.md", results, machine={"CPU": "x"}, command="cmd",
                   config_text="conf", remarks=["a remark"])
    text = (tmp_path / "r.md").read_text()
    assert "| v5.channel.k8s.io client (unmasked) 32 KiB | 70 (52–105) | 105 (105–105) | " \
           "0.67× |" in text
    assert "a remark" in text
    assert write_plot(tmp_path / "r.png", results)
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")


def test_cli_runs_a_benchmark_and_writes_results(tmp_path: Path) -> None:
    assert cli.main(["--smoke", "--only", "framing-spdy", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "results-smoke.json").read_text())
    assert document["command"].endswith(f"--only framing-spdy --out {tmp_path}")
    assert {row["group"] for row in document["results"]} == {"spdy-encode", "spdy-decode"}
    assert "## Machine" in (tmp_path / "results-smoke.md").read_text()


def test_cli_rejects_an_unknown_benchmark() -> None:
    with pytest.raises(SystemExit):
        cli.main(["--only", "nonsense"])


def test_kstream_bench_finds_this_checkout() -> None:
    assert _bench.find_checkout(REPO / "src" / "kstream") == REPO
    assert _bench.find_checkout(Path("/")) is None
