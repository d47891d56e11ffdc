"""Rows for people: terminal tables and PNG plots (matplotlib, the ``bench`` extra)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any, Final

from ._framing import PROTOCOLS
from ._rows import Comparison, Row, size_label

__all__ = [
    "PLOT_HINT",
    "format_comparison",
    "format_table",
    "plot_available",
    "write_plot",
]

#: What to install for :func:`write_plot`.
PLOT_HINT: Final = "plots need matplotlib: pip install 'kstream[bench]'"


def _render(header: Sequence[str], lines: Sequence[Sequence[str]],
            right: Sequence[bool]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(cell.rjust(width) if align else cell.ljust(width)
                         for cell, width, align in zip(cells, widths, right, strict=True)
                         ).rstrip()

    return [fmt(header), "  ".join("-" * width for width in widths), *map(fmt, lines)]


def _spread(row: Row, scale: float, digits: int) -> str:
    middle = f"{row.median * scale:,.{digits}f}"
    if len(row.seconds) < 2:
        return middle
    low, high = min(row.seconds) * scale, max(row.seconds) * scale
    return f"{middle} ({low:,.{digits}f}–{high:,.{digits}f})"


def _rate(row: Row) -> str:
    middle = f"{row.mb_per_s:,.0f}"
    if len(row.seconds) < 2:
        return middle
    fast, slow = min(row.seconds), max(row.seconds)
    return (f"{middle} ({row.payload_bytes / slow / 1e6:,.0f}–"
            f"{row.payload_bytes / fast / 1e6:,.0f})")


def _subject(row: Row) -> str:
    """``v5.channel.k8s.io``, or ``kubectl 1.33 (its default transport)``."""
    if row.impl == "kstream":
        return row.protocol
    return f"{row.impl} ({row.protocol or 'its default transport'})"


def _framing_table(rows: Sequence[Row]) -> list[str]:
    copies = {row.size: row for row in rows if row.group == "copy"}
    out = ["Framing in memory: median of the runs; 'x copy' = time over one bytes copy of",
           "the same payload (the one-copy ceiling, measured in this run); overhead = wire",
           "bytes beyond the payload. Port-forward framing: not measured (not implemented).",
           ""]
    header = ["op", "protocol", "role", "size", "us/msg", "GB/s", "x copy", "wire +B/msg",
              "wire +%"]
    lines = []
    for size, copy in copies.items():
        lines.append(["copy", "bytes(memoryview)", "-", size_label(size),
                      f"{copy.us_per_message:,.2f}", f"{copy.gb_per_s:,.2f}", "1.0", "-", "-"])
    for row in rows:
        if row.group == "copy":
            continue
        ceiling = copies.get(row.size)
        times = f"{row.median / ceiling.median:,.1f}" if ceiling is not None else "-"
        lines.append([row.group, row.protocol, row.role, size_label(row.size),
                      f"{row.us_per_message:,.2f}", f"{row.gb_per_s:,.2f}", times,
                      f"{row.overhead_per_message:,.0f}", f"{row.overhead * 100:.3g}"])
    right = [False, False, False, True, True, True, True, True, True]
    return out + _render(header, lines, right)


def _exec_table(rows: Sequence[Row]) -> list[str]:
    out = ["Exec: whole execs (connect, upgrade, transfer, exit status); median (min–max).",
           "Port-forward transports: not measured (port-forward is not implemented yet).", ""]
    subjects: list[tuple[str, str]] = []
    for row in rows:
        if (row.impl, row.protocol) not in subjects:
            subjects.append((row.impl, row.protocol))
    size = max((row.size for row in rows), default=0)
    header = ["client", "protocol", f"download MB/s ({size_label(size)})",
              f"upload MB/s ({size_label(size)})", "exec latency ms"]
    lines = []
    for impl, protocol in subjects:
        found = {row.group: row for row in rows if (row.impl, row.protocol) == (impl, protocol)}
        down, up, latency = found.get("download"), found.get("upload"), found.get("latency")
        lines.append([impl, protocol or "(its default)",
                      _rate(down) if down else "-", _rate(up) if up else "-",
                      _spread(latency, 1e3, 1) if latency else "-"])
    out += _render(header, lines, [False, False, True, True, True])
    commands: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row.note and not row.baseline:
            commands.setdefault((row.group, row.note), []).append(row.protocol)
    if commands:
        out += ["", "Commands run in the pod:"]
        out += [f"  {group}: {note}  ({', '.join(protocols)})"
                for (group, note), protocols in commands.items()]
    baselines = [f"  {row.impl} {row.group}: {row.note}" for row in rows
                 if row.baseline and row.note]
    if baselines:
        out += ["", "Baselines:", *baselines]
    return out


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a plain-text table (framing rows and exec rows each get their own).

    Returns:
        The text, lines joined with newlines, no trailing newline.
    """
    framing = [row for row in rows if row.bench == "framing"]
    execs = [row for row in rows if row.bench == "exec"]
    out: list[str] = []
    if framing:
        out += _framing_table(framing)
    if execs:
        if out:
            out.append("")
        out += _exec_table(execs)
    return "\n".join(out)


def format_comparison(comparison: Comparison) -> str:
    """The outcome of :func:`~kstream.bench.compare` as a plain-text table.

    ``new/old`` is the speed ratio (above 1: faster); rows marked ``REGRESSED`` take more
    than ``1 + threshold`` times their old time; baseline rows are never marked.
    """
    header = ["row", "old", "new", "new/old", "verdict"]
    lines = []
    for change in comparison.changes:
        old, new = change.old, change.new
        if new.bench == "framing":
            old_text, new_text = f"{old.us_per_message:,.2f} us", f"{new.us_per_message:,.2f} us"
        elif new.payload_bytes:
            old_text, new_text = f"{old.mb_per_s:,.1f} MB/s", f"{new.mb_per_s:,.1f} MB/s"
        else:
            old_text, new_text = f"{old.median * 1e3:,.1f} ms", f"{new.median * 1e3:,.1f} ms"
        verdict = ("REGRESSED" if change.regressed
                   else "baseline" if new.baseline else "ok")
        lines.append([new.label, old_text, new_text, f"{change.speed:.2f}x", verdict])
    out = [f"new/old: speed ratio (above 1: faster). A kstream row regressed when it takes "
           f"more than {1 + comparison.threshold:.2f}x its old time.", ""]
    out += _render(header, lines, [False, True, True, True, False])
    for title, missing in (("only in OLD", comparison.only_old),
                           ("only in NEW", comparison.only_new)):
        if missing:
            out += ["", f"{title} ({len(missing)}):", *(f"  {row.label}" for row in missing)]
    count = len(comparison.regressions)
    out += ["", f"{count} regression(s) among {len(comparison.changes)} compared row(s)."]
    return "\n".join(out)


# -------------------------------------------------------------------------- plots


def plot_available() -> bool:
    """Whether :func:`write_plot` can work (matplotlib is installed)."""
    return importlib.util.find_spec("matplotlib") is not None


_STYLE: Final = {
    "v5.channel.k8s.io": ("tab:blue", "-"),
    "v4.channel.k8s.io": ("tab:orange", "--"),
    "v4.base64.channel.k8s.io": ("tab:green", "-"),
    "channel.k8s.io": ("tab:red", ":"),
    "base64.channel.k8s.io": ("tab:purple", "--"),
    "SPDY/3.1": ("tab:brown", "-"),
}


def _plot_framing(plt: Any, rows: Sequence[Row]) -> Any:
    from matplotlib.ticker import FuncFormatter

    copies = sorted((row for row in rows if row.group == "copy"), key=lambda row: row.size)
    panels = [(group, role) for group in ("encode", "decode") for role in ("client", "server")
              if any(row.group == group and row.role == role for row in rows)]
    columns = 2 if len(panels) > 1 else 1
    lines = (len(panels) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(7 * columns, 4.6 * lines),
                                squeeze=False)
    sizes = sorted({row.size for row in rows})
    for axis, (group, role) in zip(axes.flat, panels, strict=False):
        if copies:
            axis.plot([row.size for row in copies], [row.gb_per_s for row in copies],
                      color="gray", linestyle="-", linewidth=3, alpha=0.5,
                      label="one bytes copy (ceiling)")
        for protocol in PROTOCOLS:
            mine = sorted((row for row in rows if (row.group, row.role, row.protocol)
                           == (group, role, protocol)), key=lambda row: row.size)
            if not mine:
                continue
            color, style = _STYLE.get(protocol, ("black", "-"))
            axis.plot([row.size for row in mine], [row.gb_per_s for row in mine],
                      color=color, linestyle=style, marker="o", markersize=4, label=protocol)
        masked = "masked" if (group == "encode") == (role == "client") else "unmasked"
        what = "sends" if group == "encode" else "receives"
        axis.set_title(f"{group}: the {role} {what} ({masked} WebSocket frames)", fontsize=11)
        axis.set_xscale("log", base=2)
        axis.set_xticks(sizes)
        axis.set_xticklabels([size_label(size) for size in sizes], rotation=45, fontsize=8)
        axis.minorticks_off()
        axis.set_xlabel("payload per message")
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
        axis.set_ylabel("payload throughput, GB/s (higher is better)")
        axis.grid(True, which="major", alpha=0.3)
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=9)
    figure.suptitle("kstream framing cost in memory (one core, median of the runs)",
                    fontsize=13)
    figure.tight_layout(rect=(0, 0.07, 1, 0.97))
    return figure


def _plot_exec(plt: Any, rows: Sequence[Row]) -> Any:
    groups = [("download", "download, MB/s (higher is better)"),
              ("upload", "upload, MB/s (higher is better)"),
              ("latency", "exec latency, ms (lower is better)")]
    subjects: list[Row] = []
    for row in rows:
        if all((row.impl, row.protocol) != (seen.impl, seen.protocol) for seen in subjects):
            subjects.append(row)
    positions = list(range(len(subjects)))[::-1]
    figure, axes = plt.subplots(1, 3, figsize=(14, 0.5 * max(4, len(subjects)) + 1.8),
                                squeeze=False, sharey=True)
    for axis, (group, title) in zip(axes[0], groups, strict=True):
        found = {(row.impl, row.protocol): row for row in rows if row.group == group}
        values = []
        for subject in subjects:
            match = found.get((subject.impl, subject.protocol))
            values.append(0.0 if match is None else
                          match.median * 1e3 if group == "latency" else match.mb_per_s)
        colors = ["tab:blue" if subject.impl == "kstream" else "tab:gray"
                  for subject in subjects]
        axis.barh(positions, values, color=colors)
        axis.set_title(title, fontsize=11)
        axis.set_xlim(0, max(values, default=1) * 1.18)
        axis.grid(True, axis="x", alpha=0.3)
        for position, value in zip(positions, values, strict=True):
            text = "n/a" if not value else f"{value:,.0f}" if value >= 10 else f"{value:.1f}"
            axis.text(value, position, f" {text}", va="center", fontsize=8)
    # sharey: one set of labels, on the left panel.
    axes[0][0].set_yticks(positions)
    axes[0][0].set_yticklabels([_subject(subject) for subject in subjects], fontsize=9)
    size = max((row.size for row in rows), default=0)
    figure.suptitle(f"kstream exec: {size_label(size)} transfers (kstream blue, kubectl gray)",
                    fontsize=13)
    figure.tight_layout()
    return figure


def write_plot(path: str | os.PathLike[str], rows: Sequence[Row]) -> None:
    """Write a PNG plot of framing rows (throughput by size) or exec rows (bars).

    Raises:
        ModuleNotFoundError: matplotlib is not installed (:data:`PLOT_HINT`).
        ValueError: no rows to plot.
    """
    if not plot_available():
        raise ModuleNotFoundError(PLOT_HINT, name="matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    framing = [row for row in rows if row.bench == "framing"]
    execs = [row for row in rows if row.bench == "exec"]
    if not framing and not execs:
        raise ValueError("no rows to plot")
    figure = _plot_framing(plt, framing) if framing else _plot_exec(plt, execs)
    try:
        figure.savefig(os.fspath(path), dpi=90)
    finally:
        plt.close(figure)
