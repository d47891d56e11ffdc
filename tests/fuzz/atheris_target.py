"""Run one fuzz target under atheris (libFuzzer): ``python -m tests.fuzz.atheris_target NAME
[libFuzzer flags] [corpus dirs]``. Started by ``python -m tests.fuzz``, one process per
target, so that a crash ends only its own campaign."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["kstream"]):
    from .targets import TARGETS


def main() -> None:
    target = TARGETS[sys.argv[1]]

    def one_input(data: bytes) -> None:
        target.run([data])
        # The same bytes in small reads: partial frames, heads and headers.
        target.run([data[i:i + 7] for i in range(0, len(data), 7)])

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
