"""Measure kstream where it runs: framing cost in memory, exec throughput on a cluster.

``kstream.bench`` is what the ``kstream bench`` command runs, as a typed API that returns
:class:`Row` objects (the rows of the command's table and of its ``--json`` file):

* :func:`measure_framing`: encode and decode cost of the five WebSocket channel
  subprotocols and SPDY/3.1, both roles, 64 B to 1 MiB, against one ``bytes`` copy;
* :func:`measure_exec` (a coroutine): download, upload and exec latency over every
  transport a server accepts, kubectl's figures beside them;
* :func:`compare`: match two runs' rows and tell which regressed;
* :func:`write_json` / :func:`read_json`, :func:`format_table`, :func:`write_plot`.

Port-forward is not measured yet: kstream does not implement it. ``import kstream`` does
not import this module (it starts processes and opens connections).
"""

from __future__ import annotations

from ._exec import EXEC_PROTOCOLS as EXEC_PROTOCOLS
from ._exec import ExecTarget as ExecTarget
from ._exec import commands as commands
from ._exec import kubectl_version as kubectl_version
from ._exec import measure_exec as measure_exec
from ._framing import PROTOCOLS as PROTOCOLS
from ._framing import QUICK_SIZES as QUICK_SIZES
from ._framing import SIZES as SIZES
from ._framing import SPDY as SPDY
from ._framing import WEBSOCKET_PROTOCOLS as WEBSOCKET_PROTOCOLS
from ._framing import measure_framing as measure_framing
from ._report import PLOT_HINT as PLOT_HINT
from ._report import format_comparison as format_comparison
from ._report import format_table as format_table
from ._report import plot_available as plot_available
from ._report import write_plot as write_plot
from ._rows import FORMAT as FORMAT
from ._rows import Change as Change
from ._rows import Comparison as Comparison
from ._rows import Row as Row
from ._rows import compare as compare
from ._rows import read_json as read_json
from ._rows import size_label as size_label
from ._rows import write_json as write_json

__all__ = [
    "EXEC_PROTOCOLS",
    "FORMAT",
    "PLOT_HINT",
    "PROTOCOLS",
    "QUICK_SIZES",
    "SIZES",
    "SPDY",
    "WEBSOCKET_PROTOCOLS",
    "Change",
    "Comparison",
    "ExecTarget",
    "Row",
    "commands",
    "compare",
    "format_comparison",
    "format_table",
    "kubectl_version",
    "measure_exec",
    "measure_framing",
    "plot_available",
    "read_json",
    "size_label",
    "write_json",
    "write_plot",
]
