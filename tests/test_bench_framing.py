"""``kstream bench framing`` and :func:`kstream.bench.measure_framing` (issue 15).

Nothing here asserts a speed: only that every protocol, role and direction is measured,
that the wire overheads are the protocols' own, and that the outputs are written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kstream import bench
from kstream._app import bench as bench_cli

ALL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                 "channel.k8s.io", "base64.channel.k8s.io", "SPDY/3.1")


@pytest.fixture(scope="module")
def rows() -> list[bench.Row]:
    return bench.measure_framing(sizes=(64, 32 * 1024, 1 << 20), runs=1)


def _find(rows: list[bench.Row], group: str, protocol: str, role: str,
          size: int) -> bench.Row:
    [row] = [row for row in rows if (row.group, row.protocol, row.role, row.size)
             == (group, protocol, role, size)]
    return row


def test_every_protocol_role_direction_and_the_copy_ceiling(rows: list[bench.Row]) -> None:
    assert bench.PROTOCOLS == ALL_PROTOCOLS
    for size in (64, 32 * 1024, 1 << 20):
        copy = [row for row in rows if row.group == "copy" and row.size == size]
        assert [row.impl for row in copy] == ["bytes copy"] and copy[0].baseline
        for protocol in ALL_PROTOCOLS:
            for role in ("client", "server"):
                for group in ("encode", "decode"):
                    row = _find(rows, group, protocol, role, size)
                    assert row.impl == "kstream" and not row.baseline
                    assert row.bench == "framing"
                    assert row.payload_bytes == size * row.messages
                    assert row.us_per_message > 0 and row.gb_per_s > 0
    assert len(rows) == 3 * (1 + 6 * 2 * 2)


@pytest.mark.parametrize(("protocol", "role", "size", "per_message"), [
    # v5/v4/v1: 1 channel byte + 2..14 bytes of WebSocket header (+4 mask from a client).
    ("v5.channel.k8s.io", "server", 64, 1 + 2),
    ("v5.channel.k8s.io", "client", 64, 1 + 2 + 4),
    ("v5.channel.k8s.io", "server", 32 * 1024, 1 + 4),
    ("v5.channel.k8s.io", "server", 1 << 20, 1 + 10),
    ("v5.channel.k8s.io", "client", 1 << 20, 1 + 10 + 4),
    ("channel.k8s.io", "client", 32 * 1024, 1 + 4 + 4),
    # base64: one channel digit, 4 characters per 3 bytes (64 B -> 88), header.
    ("v4.base64.channel.k8s.io", "server", 64, 1 + 88 - 64 + 2),
    ("base64.channel.k8s.io", "client", 64, 1 + 88 - 64 + 2 + 4),
    # SPDY DATA frames: an 8-byte header, both roles, never masked.
    ("SPDY/3.1", "client", 64, 8),
    ("SPDY/3.1", "server", 1 << 20, 8),
])
def test_wire_overhead_is_the_protocols_own(rows: list[bench.Row], protocol: str, role: str,
                                            size: int, per_message: int) -> None:
    for group in ("encode", "decode"):
        # A decoding client reads what a server encodes, and vice versa.
        sender = role if group == "encode" else ("server" if role == "client" else "client")
        row = _find(rows, group, protocol, sender, size)
        assert row.overhead_per_message == per_message
        assert row.overhead == pytest.approx(per_message / size)


def test_base64_adds_a_third(rows: list[bench.Row]) -> None:
    row = _find(rows, "encode", "v4.base64.channel.k8s.io", "server", 1 << 20)
    assert row.overhead == pytest.approx(1 / 3, abs=0.001)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        bench.measure_framing(protocols=["v3.channel.k8s.io"])
    with pytest.raises(ValueError, match="role"):
        bench.measure_framing(roles=["proxy"])
    with pytest.raises(ValueError, match="positive"):
        bench.measure_framing(sizes=[0])
    with pytest.raises(ValueError, match="runs"):
        bench.measure_framing(runs=0)


def test_progress_is_reported() -> None:
    calls: list[tuple[int, int, str]] = []
    bench.measure_framing(sizes=(64,), protocols=["SPDY/3.1"], runs=1,
                          progress=lambda done, total, label: calls.append((done, total, label)))
    assert calls[0] == (0, 5, "bytes copy 64 B")
    assert calls[-1] == (5, 5, "done")
    assert [done for done, _, _ in calls] == list(range(6))


def test_table_and_json_round_trip(rows: list[bench.Row], tmp_path: Path) -> None:
    text = bench.format_table(rows)
    assert "Port-forward framing: not measured" in text
    assert "v4.base64.channel.k8s.io" in text and "x copy" in text
    path = tmp_path / "rows.json"
    bench.write_json(path, rows, kind="framing", command="test")
    document = json.loads(path.read_text())
    assert document["format"] == bench.FORMAT and document["kind"] == "framing"
    assert bench.read_json(path) == rows


@pytest.mark.timeout(120)
def test_cli_quick_outside_a_checkout(tmp_path: Path) -> None:
    """The acceptance command, run where no checkout is: rows for all six protocols."""
    out, plot = tmp_path / "out.json", tmp_path / "out.png"
    result = subprocess.run(
        [sys.executable, "-m", "kstream", "bench", "framing", "--quick", "--json", str(out),
         "--plot", str(plot)], cwd=tmp_path, capture_output=True, text=True, timeout=110,
        check=False)
    assert result.returncode == 0, result.stderr
    assert "us/msg" in result.stdout and "GB/s" in result.stdout
    assert "100%" in result.stderr  # the progress indication
    rows = bench.read_json(out)
    assert {row.protocol for row in rows if row.impl == "kstream"} == set(ALL_PROTOCOLS)
    assert {row.size for row in rows} == set(bench.QUICK_SIZES)
    assert {(row.group, row.role) for row in rows if row.impl == "kstream"} == {
        (group, role) for group in ("encode", "decode") for role in ("client", "server")}
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_plot_without_matplotlib_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # find_spec() then says: missing
    status = bench_cli.main(["framing", "--quick", "--plot", str(tmp_path / "p.png")])
    assert status == 2
    assert "pip install 'kstream[bench]'" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


def test_import_kstream_loads_no_bench_and_no_io_module() -> None:
    code = ("import sys, kstream; bad = [name for name in ('kstream.bench', 'asyncio', "
            "'subprocess', 'ssl', 'matplotlib') if name in sys.modules]; print(bad)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_sizes_parse() -> None:
    assert bench_cli.parse_size("64") == 64
    assert bench_cli.parse_size("64K") == 64 << 10
    assert bench_cli.parse_size("16MiB") == 16 << 20
    assert bench_cli.parse_size("1g") == 1 << 30
    for bad in ("", "x", "-1", "0", "3T"):
        with pytest.raises(Exception, match="invalid size"):
            bench_cli.parse_size(bad)
