"""Result rows, their JSON documents, and the comparison of two documents."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .. import __version__

__all__ = [
    "FORMAT",
    "Change",
    "Comparison",
    "Row",
    "compare",
    "read_json",
    "write_json",
]

#: The ``format`` field of every JSON document ``kstream bench`` writes.
FORMAT: Final = "kstream-bench/1"
#: Implementations that are measured, not compared with: every other one is a baseline.
_MEASURED: Final = "kstream"


@dataclass(frozen=True)
class Row:
    """One figure: one implementation doing one thing, timed over several runs.

    Framing rows (``bench == "framing"``) time ``messages`` messages of ``size`` payload
    bytes per run; exec rows (``bench == "exec"``) time one whole transfer of ``size``
    bytes (``download``, ``upload``) or one trivial exec (``latency``, ``size == 0``).

    Attributes:
        bench: ``"framing"`` or ``"exec"``.
        group: ``"encode"`` / ``"decode"`` (framing); ``"download"`` / ``"upload"`` /
            ``"latency"`` (exec).
        protocol: the subprotocol (``"v5.channel.k8s.io"``...) or ``"SPDY/3.1"``; ``""``
            for a row that has none (the copy ceiling; kubectl, which picks its own).
        role: framing: the role doing the work, ``"client"`` or ``"server"`` (a client
            encodes masked frames and decodes unmasked ones); ``""`` otherwise.
        size: payload bytes per message (framing) or per transfer (exec).
        impl: who did it: ``"kstream"`` (measured) or a baseline such as
            ``"bytes copy"`` or ``"kubectl 1.33"``.
        seconds: the duration of each run, in seconds.
        messages: messages per run (1 for exec rows).
        payload_bytes: payload bytes per run.
        wire_bytes: bytes on the wire per run (framing rows; 0 when not known).
        note: a remark printed with the row (the command run, a caveat...).
    """

    bench: str
    group: str
    protocol: str
    role: str
    size: int
    impl: str
    seconds: tuple[float, ...]
    messages: int = 1
    payload_bytes: int = 0
    wire_bytes: int = 0
    note: str = field(default="", compare=False)

    # ------------------------------------------------------------------ identity

    @property
    def key(self) -> tuple[str, str, str, str, int, str]:
        """What :func:`compare` matches rows of two documents on."""
        return (self.bench, self.group, self.protocol, self.role, self.size, self.impl)

    @property
    def label(self) -> str:
        """A one-line name of the row, e.g. ``encode v5.channel.k8s.io client 64 B``."""
        parts = [self.group, self.protocol, self.role]
        if self.size:
            parts.append(size_label(self.size))
        parts.append(f"[{self.impl}]")
        return " ".join(part for part in parts if part)

    @property
    def baseline(self) -> bool:
        """Whether this row is a baseline (the copy ceiling, kubectl), not kstream."""
        return self.impl != _MEASURED

    # ------------------------------------------------------------------ figures

    @property
    def median(self) -> float:
        """The median duration of a run, in seconds."""
        return statistics.median(self.seconds)

    @property
    def us_per_message(self) -> float:
        """Per-message cost: microseconds per message at the median run."""
        return self.median / max(1, self.messages) * 1e6

    @property
    def gb_per_s(self) -> float:
        """Per-byte cost as throughput: payload GB (10^9 bytes) per second at the median."""
        return self.payload_bytes / self.median / 1e9 if self.median > 0 else math.inf

    @property
    def mb_per_s(self) -> float:
        """Payload MB (10^6 bytes) per second at the median run."""
        return self.gb_per_s * 1e3

    @property
    def overhead(self) -> float:
        """Wire bytes per payload byte beyond the payload (0.33 = +33 %); 0 when unknown."""
        if not self.wire_bytes or not self.payload_bytes:
            return 0.0
        return (self.wire_bytes - self.payload_bytes) / self.payload_bytes

    @property
    def overhead_per_message(self) -> float:
        """Wire bytes per message beyond the payload (header, channel byte, base64...)."""
        if not self.wire_bytes:
            return 0.0
        return (self.wire_bytes - self.payload_bytes) / max(1, self.messages)

    @property
    def cost(self) -> float:
        """Seconds per unit of work at the median run: per byte moved, else per run.

        Two rows with the same :attr:`key` are compared on this figure (lower is better).
        """
        if self.payload_bytes:
            return self.median / self.payload_bytes
        return self.median / max(1, self.messages)

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        """The row as plain JSON data (the derived figures are included for readers)."""
        return {
            "bench": self.bench, "group": self.group, "protocol": self.protocol,
            "role": self.role, "size": self.size, "impl": self.impl,
            "seconds": list(self.seconds), "messages": self.messages,
            "payload_bytes": self.payload_bytes, "wire_bytes": self.wire_bytes,
            "note": self.note,
            "median_s": self.median,
            "us_per_message": self.us_per_message,
            "gb_per_s": self.gb_per_s if self.payload_bytes else None,
            "overhead": self.overhead if self.wire_bytes else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        """Rebuild a row written by :meth:`to_json` (derived figures are recomputed).

        Raises:
            ValueError: a field is missing or has the wrong type.
        """
        try:
            seconds = tuple(float(value) for value in data["seconds"])
            row = cls(bench=str(data["bench"]), group=str(data["group"]),
                      protocol=str(data["protocol"]), role=str(data["role"]),
                      size=int(data["size"]), impl=str(data["impl"]), seconds=seconds,
                      messages=int(data.get("messages", 1)),
                      payload_bytes=int(data.get("payload_bytes", 0)),
                      wire_bytes=int(data.get("wire_bytes", 0)),
                      note=str(data.get("note", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a kstream bench row: {exc!r} in {data!r}") from None
        if not seconds or any(not value > 0 for value in seconds):
            raise ValueError(f"a row needs positive durations: {data!r}")
        return row


def size_label(size: int) -> str:
    """``64 B``, ``1 KiB``, ``32 KiB``, ``1 MiB``, ``1.5 MiB``."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size >= 1 << shift:
            value = size / (1 << shift)
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"


# -------------------------------------------------------------------------- documents


def _machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": str(cores),
            "os": f"{platform.system()} {platform.release()}",
            "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
            "kstream": __version__}


def write_json(path: str | os.PathLike[str], rows: Sequence[Row], *, kind: str,
               command: str = "", remarks: Sequence[str] = ()) -> None:
    """Write rows as a JSON document that :func:`read_json` and :func:`compare` read.

    Args:
        path: the file to write.
        rows: the rows.
        kind: ``"framing"`` or ``"exec"``.
        command: the command line that produced them (recorded as is).
        remarks: free-text remarks (skipped transports...).
    """
    document = {
        "format": FORMAT, "kind": kind, "command": command,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": _machine(), "remarks": list(remarks),
        "rows": [row.to_json() for row in rows],
    }
    Path(path).write_text(json.dumps(document, indent=1) + "\n")


def read_json(path: str | os.PathLike[str]) -> list[Row]:
    """Read the rows of a document written by :func:`write_json`.

    Raises:
        ValueError: the file is not such a document.
        OSError: it cannot be read.
    """
    try:
        document = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path}: not a kstream bench document (format {FORMAT!r})")
    rows = document.get("rows")
    if not isinstance(rows, list):
        raise ValueError(f"{path}: no rows")
    return [Row.from_json(row) for row in rows]


# -------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Change:
    """One row present in both documents.

    Attributes:
        old: the row of the old document.
        new: the row of the new document.
        speed: ``old.cost / new.cost``: above 1 the new run is faster, below 1 slower
            (0.8 = the new run takes 1.25× the time).
        regressed: a measured (kstream) row got slower beyond the threshold. Baseline
            rows (copy ceiling, kubectl) measure the machine and the cluster, not
            kstream: they are shown and never count as regressions.
    """

    old: Row
    new: Row
    speed: float
    regressed: bool


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`.

    Attributes:
        changes: the rows found in both documents, in the new document's order.
        only_old: rows of the old document missing from the new one.
        only_new: rows of the new document missing from the old one.
        threshold: the slowdown beyond which a row regressed (0.2 = 20 % more time).
    """

    changes: tuple[Change, ...]
    only_old: tuple[Row, ...]
    only_new: tuple[Row, ...]
    threshold: float

    @property
    def regressions(self) -> tuple[Change, ...]:
        """The changes that regressed."""
        return tuple(change for change in self.changes if change.regressed)


def compare(old: Iterable[Row], new: Iterable[Row], *, threshold: float = 0.2) -> Comparison:
    """Match the rows of two runs and tell which ones regressed.

    A measured row regressed when its new cost (time per byte, or per message, or per
    exec) is more than ``1 + threshold`` times its old cost.

    Args:
        old: the reference rows.
        new: the rows to check.
        threshold: allowed slowdown as a fraction (0.2: up to 20 % more time is fine).

    Returns:
        The :class:`Comparison`.

    Raises:
        ValueError: a negative threshold.
    """
    if not threshold >= 0:
        raise ValueError(f"the threshold must be >= 0, not {threshold!r}")
    old_rows = {row.key: row for row in old}
    new_rows = list(new)
    seen = set()
    changes = []
    for row in new_rows:
        before = old_rows.get(row.key)
        if before is None:
            continue
        seen.add(row.key)
        speed = before.cost / row.cost if row.cost > 0 else math.inf
        regressed = not row.baseline and row.cost > before.cost * (1 + threshold)
        changes.append(Change(old=before, new=row, speed=speed, regressed=regressed))
    return Comparison(
        changes=tuple(changes),
        only_old=tuple(row for key, row in old_rows.items() if key not in seen),
        only_new=tuple(row for row in new_rows if row.key not in old_rows),
        threshold=threshold,
    )
