"""The measuring harness: runs, medians, baselines, and the machine they ran on.

Every benchmark returns :class:`Result` rows. A row is one implementation (``impl``) doing
one thing (``case``) in one ``group``; rows of the same group and case are compared with
each other, so a baseline is always measured in the same run as what it is compared to.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Config",
    "Result",
    "machine_description",
    "time_runs",
]


@dataclass(frozen=True)
class Config:
    """How big and how often.

    Attributes:
        mode: ``"full"``, ``"quick"`` or ``"smoke"`` (tiny sizes, one run: tests only).
        runs: measured runs per figure (the median is reported, with min and max).
        scale: multiplies the amount of work per run of the in-memory benchmarks.
        download_bytes: bytes of one end-to-end download.
        upload_bytes: bytes of one end-to-end upload.
        sessions: the concurrent-session counts of the scale benchmark.
        session_bytes: bytes each concurrent session moves.
        transfer_runs: runs per end-to-end figure when not ``runs`` (each is a whole
            transfer in a fresh process).
        warmup: untimed calls before the timed runs (a full GC runs before timing
            only when there is a warm-up: it costs 10-20 ms each time).
    """

    mode: str
    runs: int
    scale: float
    download_bytes: int
    upload_bytes: int
    sessions: tuple[int, ...]
    session_bytes: int
    warmup: int = 1
    transfer_runs: int = 0

    @property
    def e2e_runs(self) -> int:
        """Runs per end-to-end figure (``transfer_runs``, else ``runs``)."""
        return self.transfer_runs or self.runs

    @classmethod
    def full(cls) -> Config:
        """The whole suite (1 GiB down, 256 MiB up, 10..1000 sessions)."""
        return cls("full", runs=5, scale=1.0, download_bytes=1 << 30,
                   upload_bytes=256 << 20, sessions=(10, 100, 1000), session_bytes=1 << 20,
                   transfer_runs=3)

    @classmethod
    def quick(cls) -> Config:
        """A few minutes' worth less: the same figures on smaller transfers, 3 runs."""
        return cls("quick", runs=3, scale=0.05, download_bytes=64 << 20,
                   upload_bytes=16 << 20, sessions=(10, 100), session_bytes=1 << 20)

    @classmethod
    def smoke(cls) -> Config:
        """Tiny sizes, one run: only checks that every benchmark still works."""
        return cls("smoke", runs=1, scale=0.002, download_bytes=256 << 10,
                   upload_bytes=256 << 10, sessions=(3,), session_bytes=64 << 10, warmup=0)


@dataclass
class Result:
    """One figure: an implementation doing one case, timed over several runs.

    Attributes:
        group: what kind of figure (``"ws-decode"``, ``"download"``...).
        case: what was done (``"v5.channel.k8s.io client 32 KiB"``); rows sharing group
            and case are compared.
        impl: who did it (``"kstream"``, ``"wsproto"``, ``"kubectl 1.33"``...).
        seconds: the duration of each run.
        nbytes: payload bytes moved per run (0 when throughput means nothing).
        messages: messages per run (0 when not counted).
        baseline: this row is a baseline (others are compared with it).
        extra: more figures (peak RSS...), printed as they are.
        note: a remark printed beside the row.
    """

    group: str
    case: str
    impl: str
    seconds: list[float]
    nbytes: int = 0
    messages: int = 0
    baseline: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def median(self) -> float:
        """The median duration of a run, in seconds."""
        return statistics.median(self.seconds)

    def mbps(self, seconds: float | None = None) -> float:
        """Throughput in MB/s (10^6 bytes) at the median (or the given) duration."""
        return self.nbytes / (self.median if seconds is None else seconds) / 1e6

    def to_json(self) -> dict[str, object]:
        """The row as plain JSON data."""
        return {
            "group": self.group, "case": self.case, "impl": self.impl,
            "seconds": self.seconds, "nbytes": self.nbytes, "messages": self.messages,
            "baseline": self.baseline, "extra": self.extra, "note": self.note,
        }


def time_runs(run: Callable[[], object], runs: int, *, warmup: int = 1) -> list[float]:
    """Time ``run()`` ``runs`` times after ``warmup`` untimed calls, GC off while timing.

    Returns:
        The duration of each timed call, in seconds.
    """
    for _ in range(warmup):
        run()
    durations = []
    if warmup:
        gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(runs):
            start = time.perf_counter()
            run()
            durations.append(time.perf_counter() - start)
    finally:
        if enabled:
            gc.enable()
    return durations


def _command_output(args: Sequence[str]) -> str:
    try:
        completed = subprocess.run(list(args), capture_output=True, text=True, timeout=10,
                                   check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return completed.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / (1 << 20):.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_description() -> dict[str, str]:
    """What the figures were measured on: CPU, cores, memory, OS, Python, packages."""
    go = _command_output(["go", "version"])
    return {
        "CPU": _cpu_model(),
        "cores (usable)": str(len(os.sched_getaffinity(0))),
        "memory": _memory(),
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "kstream": _package_version("kstream"),
        "wsproto": _package_version("wsproto"),
        "trio": _package_version("trio"),
        "kubernetes": _package_version("kubernetes"),
        "websockets (C mask)": _package_version("websockets"),
        "Go (test peer)": go or "not found",
    }
