"""Test any exec client without a cluster.

* :class:`FakeNode` -- the engine of ``kstream serve`` in the test's process: discovery,
  pods, exec and attach over every transport, with :class:`Faults` to inject and a
  :class:`SessionRecord` per session to assert on.
* The pytest plugin (the ``kstream_node`` fixture) is the module ``kstream_pytest``,
  registered through the ``pytest11`` entry point.
* ``kstream.testing.strategies`` and ``kstream.testing.pairs`` -- hypothesis strategies
  and in-memory session pairs (import those submodules by name).

The names below load on first use: importing a submodule such as
``kstream.testing.strategies`` does not load the node's server engine.

See ``docs/testing.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._resize import TerminalSize as TerminalSize
    from ._faults import Faults as Faults
    from ._node import FakeNode as FakeNode
    from ._pods import Handler as Handler
    from ._pods import OutputStream as OutputStream
    from ._pods import PodExec as PodExec
    from ._pods import StdinStream as StdinStream
    from ._records import SessionRecord as SessionRecord

__all__ = [
    "FakeNode",
    "Faults",
    "Handler",
    "OutputStream",
    "PodExec",
    "SessionRecord",
    "StdinStream",
    "TerminalSize",
]

#: Where each public name lives (relative to this package).
_HOMES = {
    "FakeNode": "._node", "Faults": "._faults", "Handler": "._pods",
    "OutputStream": "._pods", "PodExec": "._pods", "StdinStream": "._pods",
    "SessionRecord": "._records", "TerminalSize": ".._resize",
}


if not TYPE_CHECKING:  # type checkers see the imports above, and reject unknown names

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, __name__), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
