"""``kstream bench exec`` against a fake node (``kstream serve``'s engine, 127.0.0.1), issue 15.

Nothing here asserts a speed: only that every transport the server offers is measured,
kubectl beside them, that the outputs are written and that nothing is left behind.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstream import bench
from kstream._app import bench as bench_cli
from kstream.bench import ExecTarget, measure_exec
from kstream.testing import FakeNode

ALL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                 "channel.k8s.io", "base64.channel.k8s.io", "SPDY/3.1")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """The node runs on a thread of this process: its pods' processes are our children."""
    with FakeNode().in_thread() as running:
        yield running


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for client processes, without proxies or stray kube settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
    env.update(extra)
    return env


def _children(pid: int) -> list[str]:
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += (task / "children").read_text().split()
    return children


def _no_children_left(server: FakeNode) -> bool:
    deadline = time.monotonic() + 10
    while _children(os.getpid()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.timeout(240)
def test_quick_run_reports_every_transport_and_kubectl(server: FakeNode,
                                                       tmp_path: Path) -> None:
    """The acceptance command, from outside a checkout, with --json and --plot."""
    assert shutil.which("kubectl"), "kubectl must be on PATH (the project installs it)"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out, plot = tmp_path / "exec.json", tmp_path / "exec.png"
    result = subprocess.run(
        [sys.executable, "-m", "kstream", "bench", "exec", "--kubeconfig",
         str(server.kubeconfig), "demo", "--quick", "--json", str(out), "--plot", str(plot)],
        cwd=tmp_path, env=clean_env(TMPDIR=str(scratch)), capture_output=True, text=True,
        timeout=220, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = bench.read_json(out)
    measured = {(row.protocol, row.group) for row in rows if row.impl == "kstream"}
    assert measured == {(protocol, group) for protocol in ALL_PROTOCOLS
                        for group in ("download", "upload", "latency")}
    kubectl = [row for row in rows if row.impl.startswith("kubectl ")]
    assert {row.group for row in kubectl} == {"download", "upload", "latency"}
    for row in rows:
        assert row.size == (0 if row.group == "latency" else 4 << 20)
        assert len(row.seconds) == 3
    # The table, the commands it runs, progress, and the plot.
    assert "download MB/s (4 MiB)" in result.stdout
    assert "Port-forward transports: not measured" in result.stdout
    for command in ("head -c 4194304 /dev/zero", "wc -c", "head -c 4194304",
                    "cat /dev/null"):
        assert command in result.stderr
    assert "100%" in result.stderr
    assert plot.read_bytes().startswith(b"\x89PNG")
    # Clean-up: no process left in the "pod", no temporary upload file left.
    assert _no_children_left(server)
    assert list(scratch.iterdir()) == []


@pytest.mark.timeout(120)
def test_api_returns_rows(server: FakeNode) -> None:
    target = ExecTarget.from_kubeconfig("demo", kubeconfig=str(server.kubeconfig))
    assert "Bearer" not in repr(target)  # the credentials are never shown
    steps: list[str] = []
    rows = asyncio.run(measure_exec(
        target, size=300_000, runs=2, latency_runs=2, kubectl=None,
        protocols=["v4.channel.k8s.io", "SPDY/3.1"],
        progress=lambda done, total, label: steps.append(f"{done}/{total} {label}")))
    assert [(row.protocol, row.group) for row in rows] == [
        (protocol, group) for protocol in ("v4.channel.k8s.io", "SPDY/3.1")
        for group in ("latency", "download", "upload")]
    for row in rows:
        assert row.bench == "exec" and row.impl == "kstream" and len(row.seconds) == 2
        assert row.payload_bytes == (0 if row.group == "latency" else 300_000)
    notes = {(row.protocol, row.group): row.note for row in rows}
    assert notes[("v4.channel.k8s.io", "upload")] == "head -c 300000"  # v4: no end of stdin
    assert notes[("SPDY/3.1", "upload")] == "wc -c"
    assert steps[0] == "0/6 latency v4.channel.k8s.io" and steps[-1] == "6/6 done"
    assert _no_children_left(server)


@pytest.mark.timeout(120)
def test_failures_exit_1_with_the_reason(server: FakeNode,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = str(server.kubeconfig)
    assert bench_cli.main(["exec", "--kubeconfig", config, "nopod", "--no-kubectl",
                           "--protocol", "v5.channel.k8s.io"]) == 1
    err = capsys.readouterr().err
    assert 'pods "nopod" not found' in err and "accepted none" in err
    # Every exec is bounded in time.
    assert bench_cli.main(["exec", "--kubeconfig", config, "demo", "--no-kubectl",
                           "--protocol", "SPDY/3.1", "--timeout", "0.000001"]) == 1
    assert "error: SPDY/3.1: an exec took more than 1e-06 s (--timeout)" in capsys.readouterr().err
    assert _no_children_left(server)


def test_transfer_sizes_are_bounded(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_cli.main(["exec", "demo", "--bytes", "5G"])
    assert "bounded by 4 GiB" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_a_failing_kubectl_leaves_the_kstream_rows(server: FakeNode, tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text('#!/bin/sh\nif [ "$1" = version ]; then\n'
                    '  echo \'{"clientVersion": {"major": "1", "minor": "99"}}\'; exit 0\nfi\n'
                    'echo "error: no luck" >&2; exit 1\n')
    fake.chmod(0o755)
    target = ExecTarget.from_kubeconfig("demo", kubeconfig=str(server.kubeconfig))
    remarks: list[str] = []
    rows = asyncio.run(measure_exec(target, size=65536, runs=1, latency_runs=1,
                                    protocols=["v5.channel.k8s.io"], kubectl=str(fake),
                                    log=remarks.append))
    assert {row.impl for row in rows} == {"kstream"} and len(rows) == 3
    assert remarks == ["kubectl: failed, no kubectl figures: kubectl exited with 1: "
                       "error: no luck"]
    remarks.clear()
    asyncio.run(measure_exec(target, size=65536, runs=1, latency_runs=1,
                             protocols=["v5.channel.k8s.io"], kubectl="/bin/false",
                             log=remarks.append))
    assert remarks == ["kubectl: /bin/false does not run: no kubectl figures"]
