"""Write the results: a Markdown table, a PNG plot, and the raw figures as JSON.

Rows of one group and case are pivoted into one table line: a column per implementation
(median MB/s, min–max in brackets) and a ratio column per non-baseline implementation
against each baseline of the same line.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ._harness import Result

__all__ = ["TARGETS", "Target", "evaluate_targets", "write_headline", "write_json",
           "write_markdown", "write_plot"]


@dataclass(frozen=True)
class Target:
    """One performance target: ``impl`` against ``baseline`` in one group and case.

    Attributes:
        text: the target, in words.
        group: the result group.
        case: the result case.
        impl: the measured implementation.
        baseline: what it is compared with.
        kind: ``"ratio"``: throughput(impl) / throughput(baseline) must be ``>= bound``;
            ``"overhead"``: time(impl) / time(baseline) - 1 must be ``<= bound``;
            ``"extra-max"``: the ``extra`` figure named ``baseline`` of ``impl`` must be
            ``<= bound``.
        bound: the threshold.
    """

    text: str
    group: str
    case: str
    impl: str
    baseline: str
    kind: str
    bound: float


V5 = "v5.channel.k8s.io"
#: Encode rows name the sender (masked if a client); decode rows name the receiver.
_ROLES = {"ws-encode": ("client (masked)", "server (unmasked)"),
          "ws-decode": ("client (unmasked)", "server (masked)")}

TARGETS: tuple[Target, ...] = (
    Target("download, WebSocket v5, asyncio ≥ 1.0× kubectl 1.33", "download", "websocket v5",
           "kstream asyncio", "kubectl 1.33", "ratio", 1.0),
    Target("upload, WebSocket v5, asyncio ≥ 1.0× kubectl 1.33", "upload", "websocket v5",
           "kstream asyncio", "kubectl 1.33", "ratio", 1.0),
    Target("download, SPDY, asyncio ≥ 1.2× kubectl 1.27", "download", "spdy",
           "kstream asyncio", "kubectl 1.27", "ratio", 1.2),
    Target("upload, SPDY, asyncio ≥ 1.2× kubectl 1.27", "upload", "spdy",
           "kstream asyncio", "kubectl 1.27", "ratio", 1.2),
    *(Target(f"{direction}, {case}: trio within 20% of asyncio", direction, case,
             "kstream trio", "kstream asyncio", "ratio", 0.8)
      for direction in ("download", "upload")
      for case in ("websocket v5", "websocket v4", "websocket v4.base64", "spdy")),
    *(Target(f"channel layer over wsproto, {group} {V5} {role} {size}: ≤ +{bound:.0%}",
             group, f"{V5} {role} {size}", "kstream", "wsproto", "overhead", bound)
      for size, bound in (("32 KiB", 0.10), ("64 B", 0.30))
      for group, roles in _ROLES.items() for role in roles),
    Target("≥ 100× the official kubernetes sync client at 64 MiB", "official-client",
           "websocket v4 download 64 MiB", "kstream asyncio", "kubernetes (sync)", "ratio",
           100.0),
    Target("peak RSS of the download ≤ 64 MiB above the interpreter's baseline", "download",
           "websocket v5", "kstream asyncio", "RSS growth MiB", "extra-max", 64.0),
    Target("1000 concurrent sessions: ≤ 64 KiB RSS per idle session", "scale-idle",
           "1000 idle sessions", "kstream asyncio", "RSS KiB/session", "extra-max", 64.0),
    Target("server role: kubectl 1.33 from kstream serve ≥ 0.8× from the Go peer",
           "server-role", "kubectl 1.33 download", "kstream serve", "Go peer", "ratio", 0.8),
    Target("server role: kubectl 1.27 from kstream serve ≥ 0.8× from the Go peer",
           "server-role", "kubectl 1.27 download", "kstream serve", "Go peer", "ratio", 0.8),
    # Whole processes (benchmarks/process.py): what a person at a shell waits for.
    Target("whole process: `kstream exec -- true` as fast as kubectl 1.33 (≥ 1.0×: "
           "kubectl's time over kstream's)",
           "process-start", "exec -- true", "kstream", "kubectl 1.33", "ratio", 1.0),
    *(Target(f"whole process: pipe {direction}, {name} ≥ 1.2× kubectl {version}",
             f"process-{direction}", case, "kstream", f"kubectl {version}", "ratio", 1.2)
      for direction in ("upload", "download")
      for case, name, version in (("websocket v5", "WebSocket v5", "1.33"),
                                  ("spdy", "SPDY", "1.27"))),
    # Port-forward (benchmarks/portforward.py).
    *(Target(f"port-forward {direction}, {case}: kstream ≥ 1.2× kubectl {version}",
             f"pf-{direction}", case, "kstream port-forward", f"kubectl {version}", "ratio", 1.2)
      for direction in ("download", "upload")
      for case, version in (("tunnel", "1.33"), ("spdy", "1.27"))),
    *(Target(f"port-forward, 100 connections, {case}: ≤ 64 KiB RSS per open connection",
             "pf-concurrent", f"100 connections, {case}", "kstream port-forward",
             "RSS KiB/connection", "extra-max", 64.0) for case in ("tunnel", "spdy")),
    *(Target(f"port-forward server role: kubectl {version} {direction} through kstream "
             "serve ≥ 0.8× the Go peer", "pf-server-role",
             f"kubectl {version} ({case}) {direction}", "kstream serve", "Go peer", "ratio",
             0.8)
      for case, version in (("tunnel", "1.33"), ("spdy", "1.27"))
      for direction in ("download", "upload")),
)


def _find(results: Sequence[Result], group: str, case: str, impl: str) -> Result | None:
    for result in results:
        if (result.group, result.case, result.impl) == (group, case, impl):
            return result
    return None


def evaluate_targets(results: Sequence[Result]) -> list[tuple[Target, str, str]]:
    """Every target with its measured figure and ``met`` / ``MISSED`` / ``not measured``."""
    rows = []
    for target in TARGETS:
        measured = _find(results, target.group, target.case, target.impl)
        if target.kind == "extra-max":
            if measured is None or target.baseline not in measured.extra:
                rows.append((target, "—", "not measured"))
                continue
            value = float(measured.extra[target.baseline])
            verdict = "met" if value <= target.bound else "MISSED"
            rows.append((target, f"{value:.1f} (bound {target.bound:g})", verdict))
            continue
        baseline = _find(results, target.group, target.case, target.baseline)
        if measured is None or baseline is None:
            rows.append((target, "—", "not measured"))
            continue
        if target.kind == "ratio":
            ratio = baseline.median / measured.median * (measured.nbytes / baseline.nbytes
                                                          if baseline.nbytes else 1.0)
            verdict = "met" if ratio >= target.bound else "MISSED"
            rows.append((target, f"{ratio:.2f}×", verdict))
        else:
            overhead = measured.median / baseline.median - 1
            verdict = "met" if overhead <= target.bound else "MISSED"
            rows.append((target, f"{overhead:+.0%}", verdict))
    return rows


def _cell(result: Result) -> str:
    if result.nbytes:
        low, high = result.mbps(max(result.seconds)), result.mbps(min(result.seconds))
        return f"{result.mbps():,.0f} ({low:,.0f}–{high:,.0f})"
    low, high = min(result.seconds) * 1e3, max(result.seconds) * 1e3
    return f"{result.median * 1e3:,.1f} ms ({low:,.1f}–{high:,.1f})"


def _groups(results: Sequence[Result]) -> dict[str, dict[str, list[Result]]]:
    groups: dict[str, dict[str, list[Result]]] = {}
    for result in results:
        groups.setdefault(result.group, {}).setdefault(result.case, []).append(result)
    return groups


def _table(cases: dict[str, list[Result]]) -> list[str]:
    impls: list[str] = []
    baselines: list[str] = []
    for rows in cases.values():
        for row in rows:
            if row.impl not in impls:
                impls.append(row.impl)
            if row.baseline and row.impl not in baselines:
                baselines.append(row.impl)
    measured = [impl for impl in impls if impl not in baselines]
    any_bytes = any(row.nbytes for rows in cases.values() for row in rows)
    unit = "MB/s median (min–max)" if any_bytes else "time"
    header = ["case", *(f"{impl}" for impl in impls)]
    ratios = [(impl, base) for impl in measured for base in baselines]
    header += [f"{impl} / {base}" for impl, base in ratios]
    lines = [f"Cells: {unit}. Ratios: throughput of the first over the second "
             "(> 1: faster).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    notes: list[str] = []
    for case, rows in cases.items():
        by_impl = {row.impl: row for row in rows}
        cells = [case]
        for impl in impls:
            found = by_impl.get(impl)
            cells.append(_cell(found) if found else "—")
            if found is not None:
                extra = ", ".join(f"{key} {value}" for key, value in found.extra.items())
                if extra or found.note:
                    notes.append(f"{case} / {impl}: " + "; ".join(
                        part for part in (extra, found.note) if part))
        for impl, base in ratios:
            mine, theirs = by_impl.get(impl), by_impl.get(base)
            if mine is None or theirs is None:
                cells.append("—")
            else:
                per_byte = (mine.nbytes / theirs.nbytes) if theirs.nbytes else 1.0
                cells.append(f"{theirs.median / mine.median * per_byte:.2f}×")
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return lines


_GROUP_TITLES = {
    "ws-encode": "WebSocket encode (send_data + data_to_send per message), in memory "
                 "(kstream.bench)",
    "ws-decode": "WebSocket decode (receive_data over 256 KiB reads), in memory "
                 "(kstream.bench)",
    "spdy-encode": "SPDY DATA encode (SpdyExec{Client,Server}.send_data + data_to_send), "
                   "in memory (kstream.bench)",
    "spdy-decode": "SPDY DATA decode (SpdyExec{Client,Server}.receive_data over 256 KiB "
                   "reads), in memory (kstream.bench)",
    "download": "End to end over loopback: stdout download",
    "upload": "End to end over loopback: stdin upload",
    "official-client": "Official kubernetes client",
    "latency": "Latency of a trivial exec (connect, upgrade, exit status)",
    "scale": "Concurrent sessions from one asyncio process, each downloading",
    "scale-idle": "Idle concurrent sessions from one asyncio process (RSS per session)",
    "server-role": "Server role: kubectl downloading from kstream serve vs the Go peer",
    "process-start": "Whole process: `exec -- true`, wall time from outside (lower is better)",
    "process-upload": "Whole process: `head -c SIZE /dev/zero | … exec -i POD -- sink`",
    "process-download": "Whole process: `… exec POD -- source SIZE | cat > /dev/null`",
    "pf-download": "Port-forward download through the local port (kpeer pf-load, connect to "
                   "EOF)",
    "pf-upload": "Port-forward upload through the local port (kpeer pf-load, connect to the "
                 "pod's confirmation)",
    "pf-concurrent": "Port-forward: concurrent connections through one forward (aggregate "
                     "download; RSS per open connection)",
    "pf-server-role": "Port-forward server role: kubectl through kstream serve vs through "
                      "the Go peer",
}


def write_markdown(path: Path, results: Sequence[Result], *, machine: dict[str, str],
                   command: str, config_text: str, remarks: Sequence[str] = ()) -> None:
    """Write the results page: command, machine, targets, then one table per group."""
    lines = ["# kstream benchmark results", "",
             "Generated by the benchmark suite (`benchmarks/`); do not edit by hand.", "",
             "## Command", "", "```", command, "```", "", config_text, "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in machine.items()]
    lines += ["", "## Targets", "", "| target | measured | verdict |",
              "|---|---|---|"]
    # A run of some benchmarks (--only) lists the targets of what it measured only.
    measured_groups = {result.group for result in results}
    lines += [f"| {target.text} | {value} | {verdict} |"
              for target, value, verdict in evaluate_targets(results)
              if target.group in measured_groups]
    if remarks:
        lines += ["", "## Remarks", "", *(f"- {remark}" for remark in remarks)]
    for group, cases in _groups(results).items():
        lines += ["", f"## {_GROUP_TITLES.get(group, group)}", "", *_table(cases)]
    path.write_text("\n".join(lines) + "\n")


def write_json(path: Path, results: Sequence[Result], *, machine: dict[str, str],
               command: str) -> None:
    """Write every figure, every run, as JSON (for later comparison)."""
    document = {"command": command, "machine": machine,
                "results": [result.to_json() for result in results]}
    path.write_text(json.dumps(document, indent=1) + "\n")


def write_plot(path: Path, results: Sequence[Result]) -> bool:
    """Plot throughput per group, one bar per implementation and case.

    The axis is linear (a ratio reads as a ratio) unless a panel's bars span more than
    :data:`_LOG_SPAN` times, which the in-memory groups do (64 B to 1 MiB messages, base64
    to binary); such a panel says "log scale" on its axis.

    Returns:
        False when matplotlib is missing (the optional ``bench`` extra): nothing written.
    """
    plt = _pyplot()
    if plt is None:
        return False
    groups = {}
    for name, cases in _groups(results).items():
        if name.startswith("ws-"):
            # Every subprotocol is in the table; the plot keeps v5 to stay readable.
            cases = {case: rows for case, rows in cases.items() if case.startswith(V5)}
        if any(row.nbytes for rows in cases.values() for row in rows):
            groups[name] = cases
    if not groups:
        return False
    figure, axes = plt.subplots(len(groups), 1, figsize=(13, 4.8 * len(groups)),
                                squeeze=False)
    for axis, (group, cases) in zip(axes[:, 0], groups.items(), strict=True):
        _plot_group(axis, group, cases)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True


#: A panel whose bars span more than this many times gets a log axis.
_LOG_SPAN = 100.0


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _plot_group(axis: Any, group: str, cases: dict[str, list[Result]]) -> None:
    impls: list[str] = []
    for rows in cases.values():
        for row in rows:
            if row.impl not in impls:
                impls.append(row.impl)
    names = list(cases)
    width = 0.8 / max(1, len(impls))
    every: list[float] = []
    for index, impl in enumerate(impls):
        xs, heights, low, high = [], [], [], []
        for position, case in enumerate(names):
            found = next((row for row in cases[case] if row.impl == impl and row.nbytes),
                         None)
            if found is None:
                continue
            xs.append(position + index * width)
            heights.append(found.mbps())
            low.append(found.mbps() - found.mbps(max(found.seconds)))
            high.append(found.mbps(min(found.seconds)) - found.mbps())
        every += heights
        axis.bar(xs, heights, width, yerr=[low, high], label=impl, capsize=2)
    wide = bool(every) and min(every) > 0 and max(every) / min(every) > _LOG_SPAN
    if wide:
        axis.set_yscale("log")
    axis.set_ylabel("throughput, MB/s" + (" (log scale)" if wide else "")
                    + "\nhigher is better", fontsize=10)
    title = _GROUP_TITLES.get(group, group) + (f" ({V5} only)" if group.startswith("ws-")
                                               else "")
    axis.set_title(title, fontsize=11)
    axis.set_xticks([p + 0.4 - width / 2 for p in range(len(names))])
    labels = [textwrap.fill(name.removeprefix(f"{V5} "), 16) for name in names]
    axis.set_xticklabels(labels, rotation=0 if len(names) <= 8 else 45,
                         ha="center" if len(names) <= 8 else "right", fontsize=9)
    axis.tick_params(axis="y", labelsize=9)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=9)


# --------------------------------------------------------------------------- headline

_KSTREAM_COLOR = "#1f77b4"
_KUBECTL_COLOR = "#9a9a9a"
_TRANSPORT_NAMES = {"websocket v5": "WebSocket v5", "spdy": "SPDY"}


def write_headline(path: Path, results: Sequence[Result]) -> bool:
    """The one chart to read first: kstream against kubectl, whole processes.

    Three panels from the ``process-*`` groups (:mod:`benchmarks.process`): the wall time
    of ``exec -- true``, and the throughput of a pipe upload and of a pipe download on
    each transport, every bar labelled with its figure and kstream's bars with their
    ratio to kubectl's. Linear axes starting at zero.

    Returns:
        False when matplotlib is missing or no whole-process figure was measured.
    """
    plt = _pyplot()
    groups = _groups(results)
    if plt is None or not any(name in groups for name in _HEADLINE_PANELS):
        return False
    panels = [name for name in _HEADLINE_PANELS if name in groups]
    figure, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6),
                                squeeze=False)
    for axis, group in zip(axes[0], panels, strict=True):
        _headline_panel(axis, group, groups[group])
    figure.suptitle("kstream exec vs kubectl exec: whole processes, same server, same run",
                    fontsize=13)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


_HEADLINE_PANELS: Final = {
    "process-start": "Start: exec -- true\nmedian wall time, ms (lower is better)",
    "process-upload": "Upload from a pipe\nMB/s (higher is better)",
    "process-download": "Download into a pipe\nMB/s (higher is better)",
}


def _headline_panel(axis: Any, group: str, cases: dict[str, list[Result]]) -> None:
    labels: list[str] = []
    values: list[float] = []
    colors: list[str] = []
    notes: list[str] = []
    for case, rows in cases.items():
        prefix = "" if group == "process-start" else f"{_TRANSPORT_NAMES.get(case, case)}\n"
        baseline = next((row for row in rows if row.baseline), None)
        for row in rows:
            value = row.median * 1e3 if group == "process-start" else row.mbps()
            unit = "ms" if group == "process-start" else "MB/s"
            note = f"{value:,.0f} {unit}"
            if not row.baseline and baseline is not None and group == "process-start":
                note += f"  ({row.median / baseline.median:.1f}× {baseline.impl}'s time)"
            elif not row.baseline and baseline is not None:
                speed = row.mbps() / baseline.mbps()
                note += f"  ({speed:.2f}× {baseline.impl})"
            labels.append(prefix + row.impl)
            values.append(value)
            colors.append(_KUBECTL_COLOR if row.baseline else _KSTREAM_COLOR)
            notes.append(note)
    positions = list(range(len(values)))[::-1]
    axis.barh(positions, values, color=colors, height=0.7)
    axis.set_yticks(positions)
    axis.set_yticklabels(labels, fontsize=10)
    axis.set_xlim(0, max(values) * 1.9 if values else 1)
    for position, value, note in zip(positions, values, notes, strict=True):
        axis.text(value, position, " " + note, va="center", fontsize=9)
    size = next((row.nbytes for rows in cases.values() for row in rows if row.nbytes), 0)
    title = _HEADLINE_PANELS[group]
    if size:
        amount = f"{size >> 30} GiB" if size >= 1 << 30 else f"{size / (1 << 20):,.0f} MiB"
        title = title.replace("\n", f", {amount}\n", 1)
    axis.set_title(title, fontsize=11)
    axis.tick_params(axis="x", labelsize=9)
    axis.grid(axis="x", alpha=0.3)


# --------------------------------------------------------------------------- re-plotting


def read_json(path: Path) -> list[Result]:
    """The rows of a results file written by :func:`write_json`."""
    document = json.loads(path.read_text())
    return [Result(**row) for row in document["results"]]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.report RESULTS.json...``: redraw the charts of saved runs.

    Each ``results-<mode>.json`` gets its ``results-<mode>.png`` (and, when it holds
    whole-process figures, ``headline-<mode>.png``) written again beside it, from its
    figures: a change of the charts needs no new run.
    """
    import sys

    paths = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python -m benchmarks.report RESULTS.json...", file=sys.stderr)
        return 2
    for path in paths:
        results = read_json(path)
        mode = path.stem.removeprefix("results-")
        written = [name for name, ok in (
            (path.with_suffix(".png").name, write_plot(path.with_suffix(".png"), results)),
            (f"headline-{mode}.png",
             write_headline(path.with_name(f"headline-{mode}.png"), results))) if ok]
        print(f"{path}: {', '.join(written) or 'nothing to draw'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
