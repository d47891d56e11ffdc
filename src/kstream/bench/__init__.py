"""Measure kstream where it runs: framing cost in memory, exec throughput on a cluster.

``kstream.bench`` is what the ``kstream bench`` command runs, as a typed API returning
:class:`Row` objects. It is not imported by ``import kstream``.
"""

from __future__ import annotations

from ._framing import PROTOCOLS as PROTOCOLS
from ._framing import QUICK_SIZES as QUICK_SIZES
from ._framing import SIZES as SIZES
from ._framing import SPDY as SPDY
from ._framing import WEBSOCKET_PROTOCOLS as WEBSOCKET_PROTOCOLS
from ._framing import measure_framing as measure_framing
from ._rows import FORMAT as FORMAT
from ._rows import Change as Change
from ._rows import Comparison as Comparison
from ._rows import Row as Row
from ._rows import compare as compare
from ._rows import read_json as read_json
from ._rows import size_label as size_label
from ._rows import write_json as write_json

__all__ = [
    "FORMAT",
    "PROTOCOLS",
    "QUICK_SIZES",
    "SIZES",
    "SPDY",
    "WEBSOCKET_PROTOCOLS",
    "Change",
    "Comparison",
    "Row",
    "compare",
    "measure_framing",
    "read_json",
    "size_label",
    "write_json",
]
