"""A pod's log for ``kstream serve``: what its main process wrote, kept within a bound.

``kubectl logs POD`` shows a container's output; the kubelet keeps it in files it rotates.
Here a pod keeps the last :data:`LOG_LIMIT` bytes its main process wrote on stdout and
stderr, interleaved in the order they were read, and readers follow it by byte position:
a follower that falls more than the bound behind skips ahead, as ``kubectl logs -f``
does across a rotation. One buffer per pod, whatever the number of readers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

__all__ = ["LOG_LIMIT", "PodLog"]

#: Bytes of main-process output a pod keeps for ``kubectl logs``.
LOG_LIMIT: Final = 1024 * 1024


class PodLog:
    """The retained output of one pod's main process.

    Args:
        limit: bytes kept; older output is dropped.

    Attributes:
        runs_ended: how many runs of the main process have ended (a follower stops when
            the run it followed ends, as ``kubectl logs -f`` does when a container exits).
    """

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        self._limit = limit
        self._data = bytearray()
        self._start = 0  # the position of _data[0] in everything ever written
        self._changed = asyncio.Event()
        self.runs_ended = 0

    @property
    def end(self) -> int:
        """The position after the last byte written."""
        return self._start + len(self._data)

    def append(self, chunk: bytes) -> None:
        """Keep ``chunk`` (dropping the oldest bytes past the limit) and wake followers."""
        self._data += chunk
        excess = len(self._data) - self._limit
        if excess > 0:
            del self._data[:excess]
            self._start += excess
        self._wake()

    def run_ended(self) -> None:
        """Note that the main process exited."""
        self.runs_ended += 1
        self._wake()

    def read(self, position: int = 0) -> tuple[bytes, int]:
        """Return what was written from ``position`` on (or the oldest kept) and the end."""
        start = max(position, self._start) - self._start
        return bytes(self._data[start:]), self.end

    def tail(self, lines: int | None = None, limit_bytes: int | None = None) -> bytes:
        """The kept output, cut to its last ``lines`` lines, then its first ``limit_bytes``."""
        data = bytes(self._data)
        if lines is not None:
            if lines <= 0:
                data = b""
            else:
                # The last N lines: a final line without a newline counts as one.
                cut = len(data) - 1 if data.endswith(b"\n") else len(data)
                for _ in range(lines):
                    cut = data.rfind(b"\n", 0, cut)
                    if cut < 0:
                        break
                data = data[cut + 1:] if cut >= 0 else data
        if limit_bytes is not None:
            data = data[:max(0, limit_bytes)]
        return data

    async def wait(self, timeout: float) -> None:
        """Wait until something is written or a run ends, at most ``timeout`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def _wake(self) -> None:
        # Wake every waiter, then re-arm for the next change.
        self._changed.set()
        self._changed = asyncio.Event()
