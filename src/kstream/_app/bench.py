"""``kstream bench``: run the benchmark suite of a kstream checkout.

The suite lives in the repository's ``benchmarks/`` package, not in the installed
library: its end-to-end parts need the Go test peer (``tests/peers``) and kubectl, which
only a checkout has. This module finds that checkout (from the current directory upwards,
then from this file's location, which is inside it for an editable install) and runs
``benchmarks.cli.main`` there, so ``kstream bench`` and ``python -m benchmarks`` (what
``make bench`` runs) are the same program with the same options.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["find_checkout", "main"]


def _is_checkout(directory: Path) -> bool:
    return ((directory / "benchmarks" / "cli.py").is_file()
            and (directory / "tests" / "peers").is_dir())


def find_checkout(start: Path | None = None) -> Path | None:
    """Return the kstream checkout holding ``benchmarks/``, or ``None``.

    Args:
        start: where to start looking upwards (default: the current directory, then this
            module's own directory).
    """
    starts = [start] if start is not None else [Path.cwd(), Path(__file__).resolve().parent]
    for origin in starts:
        for directory in (origin, *origin.parents):
            if _is_checkout(directory):
                return directory
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kstream bench [--quick] [--only NAME]... [--out DIR]``.

    Args:
        argv: the arguments after ``bench`` (default: none, the full suite).

    Returns:
        The exit status: 0, or 2 when no checkout with ``benchmarks/`` is found.
    """
    checkout = find_checkout()
    if checkout is None:
        print("kstream bench: the benchmark suite needs a kstream checkout (benchmarks/, "
              "tests/peers/): run it from inside one", file=sys.stderr)
        return 2
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    cli = importlib.import_module("benchmarks.cli")
    status: int = cli.main(list(argv or ()), prog="kstream bench")
    return status
