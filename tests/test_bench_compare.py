"""``kstream bench compare`` and :func:`kstream.bench.compare` on fabricated documents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kstream import bench
from kstream._app import bench as bench_cli


def _row(group: str, seconds: float, *, impl: str = "kstream", protocol: str = "v5.channel.k8s.io",
         role: str = "client", size: int = 1024, kind: str = "framing") -> bench.Row:
    return bench.Row(kind, group, protocol, role, size, impl, (seconds, seconds * 1.01),
                     messages=100, payload_bytes=size * 100, wire_bytes=size * 100 + 700)


def _documents(tmp_path: Path, old: list[bench.Row],
               new: list[bench.Row]) -> tuple[Path, Path]:
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    bench.write_json(old_path, old, kind="framing")
    bench.write_json(new_path, new, kind="framing")
    return old_path, new_path


OLD = [
    _row("copy", 0.001, impl="bytes copy", protocol="", role=""),
    _row("encode", 0.010),
    _row("decode", 0.020),
    _row("download", 0.5, kind="exec", protocol="SPDY/3.1", role="", size=1 << 20),
    _row("latency", 0.004, kind="exec", protocol="SPDY/3.1", role="", size=0),
]


def test_a_fabricated_regression_is_flagged(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    new = [
        _row("copy", 0.003, impl="bytes copy", protocol="", role=""),  # baseline: never fails
        _row("encode", 0.015),   # 1.5x the time: regressed at the default 20 %
        _row("decode", 0.021),   # 5 % slower: within the threshold
        _row("download", 0.4, kind="exec", protocol="SPDY/3.1", role="", size=1 << 20),
        _row("latency", 0.004, kind="exec", protocol="SPDY/3.1", role="", size=0),
    ]
    comparison = bench.compare(OLD, new)
    assert [change.new.group for change in comparison.regressions] == ["encode"]
    by_group = {change.new.group: change for change in comparison.changes}
    assert by_group["encode"].speed == pytest.approx(1 / 1.5)
    assert by_group["download"].speed == pytest.approx(1.25)
    assert not by_group["copy"].regressed and by_group["copy"].speed == pytest.approx(1 / 3)

    old_path, new_path = _documents(tmp_path, OLD, new)
    assert bench_cli.main(["compare", str(old_path), str(new_path)]) == 1
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if "REGRESSED" in line]
    assert line.startswith("encode v5.channel.k8s.io client 1 KiB [kstream]")
    assert "0.67x" in line
    assert "baseline" in out and "1 regression(s) among 5 compared row(s)." in out
    # A looser threshold lets it pass; the flag takes a fraction or a percentage.
    assert bench_cli.main(["compare", str(old_path), str(new_path), "--threshold", "60%"]) == 0
    assert bench_cli.main(["compare", str(old_path), str(new_path), "--threshold", "0.6"]) == 0


def test_the_command_exits_non_zero_for_ci(tmp_path: Path) -> None:
    old_path, new_path = _documents(tmp_path, OLD, [_row("encode", 0.013)])
    result = subprocess.run([sys.executable, "-m", "kstream", "bench", "compare",
                             str(old_path), str(new_path), "--threshold", "0.25"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REGRESSED" in result.stdout
    assert "only in OLD (4)" in result.stdout
    same = subprocess.run([sys.executable, "-m", "kstream", "bench", "compare",
                           str(old_path), str(old_path)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "0 regression(s) among 5 compared row(s)." in same.stdout


def test_bad_input_exits_with_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, _ = _documents(tmp_path, OLD, OLD)
    other = tmp_path / "other.json"
    bench.write_json(other, [_row("encode", 0.01, size=77)], kind="framing")
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "foreign.json").write_text(json.dumps({"results": []}))
    assert bench_cli.main(["compare", str(good), str(other)]) == 2  # no row in common
    assert bench_cli.main(["compare", str(good), str(tmp_path / "broken.json")]) == 2
    assert bench_cli.main(["compare", str(good), str(tmp_path / "foreign.json")]) == 2
    assert bench_cli.main(["compare", str(good), str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "no row in common" in err and "not a kstream bench document" in err
    with pytest.raises(SystemExit):
        bench_cli.main(["compare", str(good), str(good), "--threshold", "-1"])
    with pytest.raises(ValueError):
        bench.compare(OLD, OLD, threshold=-0.1)


def test_rows_read_back_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    document = {"format": bench.FORMAT, "rows": [{"bench": "framing", "seconds": []}]}
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="not a kstream bench row"):
        bench.read_json(path)
    row = _row("encode", 0.01).to_json()
    row["seconds"] = [0.0]
    path.write_text(json.dumps({"format": bench.FORMAT, "rows": [row]}))
    with pytest.raises(ValueError, match="positive durations"):
        bench.read_json(path)
