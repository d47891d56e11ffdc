"""``python -m kstream`` and the ``kstream`` console script."""

from __future__ import annotations

import sys

from ._app.cli import main as _cli_main

__all__ = ["main"]


def main() -> None:
    """Run the ``kstream`` command line and exit with its status."""
    sys.exit(_cli_main())


if __name__ == "__main__":
    main()
