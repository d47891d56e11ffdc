"""Request targets of the adapters (``exec`` and ``attach`` of a pod), from :mod:`kstream._http`.

The rest of what used to live here is split along its seams: :mod:`.options` (server
address, options, TLS default), :mod:`.buffers` (read buffer, channel buffers,
heartbeat), :mod:`.fallback` (the fallback run), :mod:`.server` (what a server answers
for its handler) and :mod:`.errors`. ``READ_SIZE``, ``ReceiveBuffer`` and
``RemoteCommandError`` are still importable from here (the tests import them so).
"""

from __future__ import annotations

from .._http import attach_target as attach_target
from .._http import exec_target as exec_target
from .buffers import READ_SIZE as READ_SIZE
from .buffers import ReceiveBuffer as ReceiveBuffer
from .errors import RemoteCommandError as RemoteCommandError

__all__ = ["attach_target", "exec_target"]
