"""Test any exec client without a cluster.

* :class:`FakeNode` -- the engine of ``kstream serve`` in the test's process: discovery,
  pods, exec and attach over every transport, with :class:`Faults` to inject and a
  :class:`SessionRecord` per session to assert on.
* ``kstream.testing.plugin`` -- the pytest plugin (``kstream_node`` fixture), registered
  through the ``pytest11`` entry point.
* ``kstream.testing.strategies`` and ``kstream.testing.pairs`` -- hypothesis strategies
  and in-memory session pairs (import those submodules by name).

See ``docs/testing.md``.
"""

from __future__ import annotations

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
