"""Receive-side state of a connection: the shared read buffer, channel buffers, heartbeat.

Plain Python shared by both runtimes: the one read buffer per thread, the per-channel
receive buffers with byte accounting, and the heartbeat clock (times are ``now``
arguments).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from .errors import PingTimeoutError

__all__ = ["READ_SIZE", "Heartbeat", "ReceiveBuffer", "shared_read_buffer"]

#: Bytes read from the socket at once (the bound "one read" of the buffer guarantee).
READ_SIZE: Final = 256 * 1024
#: The per-thread receive buffer (see :func:`shared_read_buffer`).
_thread_state = threading.local()


def shared_read_buffer() -> memoryview:
    """The :data:`READ_SIZE` buffer every connection of this thread reads into.

    One per thread, made on first use, instead of one per connection: a zero-filled
    256 KiB buffer is resident memory, and most connections of a busy client sit idle
    (1000 idle sessions cost 266 KiB each with one buffer per connection, 10 KiB with
    this). Sharing is safe because a read fills the buffer and the session consumes it
    in one synchronous step, with no other connection of the thread running in between:
    the sans-IO layers copy every byte they keep (ChannelData payloads, partial frames
    and headers, the HTTP handshake, rejection bodies) before ``receive_data`` returns.

    Returns:
        A writable view of the thread's buffer; it must not be kept past the read.
    """
    buffer: memoryview | None = getattr(_thread_state, "read_buffer", None)
    if buffer is None:
        buffer = _thread_state.read_buffer = memoryview(bytearray(READ_SIZE))
    return buffer


# --------------------------------------------------------------------------- buffers


@dataclass(slots=True)
class ReceiveBuffer:
    """Unread bytes of one output channel, as a queue of received chunks.

    Chunks are kept as they arrived (no concatenation on receipt); reads join only what
    they return. ``size`` is the byte count the adapters compare with ``buffer_limit``.

    Attributes:
        size: bytes held.
        eof: the channel ended; no more bytes will be appended.
        error: set when the session failed; reads raise it once the buffer is empty.
        peak: the largest ``size`` ever reached (a diagnostic for tests and tuning).
    """

    size: int = 0
    eof: bool = False
    error: BaseException | None = None
    peak: int = 0
    _chunks: deque[bytes] = field(default_factory=deque)
    # Bytes of the first chunk already read: a short read takes the front of a chunk
    # without copying the rest of it.
    _offset: int = 0

    def append(self, data: bytes) -> None:
        """Queue received bytes (ignored after EOF, and when empty)."""
        if data and not self.eof:
            self._chunks.append(data)
            self.size += len(data)
            self.peak = max(self.peak, self.size)

    def end(self, error: BaseException | None = None) -> None:
        """Mark the end of the channel, with the error that ended the session if any."""
        self.eof = True
        if error is not None and self.error is None:
            self.error = error

    def unread(self, data: bytes) -> None:
        """Put ``data`` back in front of the buffer (what a failed read had taken).

        Not counted against ``peak``: these bytes were already held once.
        """
        if not data:
            return
        if self._offset:
            self._chunks[0] = self._chunks[0][self._offset:]
            self._offset = 0
        self._chunks.appendleft(data)
        self.size += len(data)

    @property
    def finished(self) -> bool:
        """Whether a read can be answered now without waiting (data, EOF or error)."""
        return bool(self.size) or self.eof

    def take(self, n: int = -1) -> bytes:
        """Remove and return up to ``n`` bytes (all of them when ``n < 0``).

        A bounded read returns whole received chunks while they fit and cuts a chunk
        only when the first one alone is larger than ``n``: it may return fewer bytes
        than are held (as a socket read may), and in exchange copies nothing when one
        chunk fits, and each byte at most once otherwise.

        Raises:
            BaseException: the session's error, when the buffer is empty and it failed.
        """
        if not self.size:
            if self.error is not None:
                raise self.error
            return b""
        chunks = self._chunks
        first = chunks[0]
        offset = self._offset
        head = len(first) - offset
        if 0 <= n < head:
            # The first chunk alone is too big: return its front, keep its place.
            self._offset = offset + n
            self.size -= n
            return first[offset:offset + n]
        chunks.popleft()
        self._offset = 0
        piece = first[offset:] if offset else first
        if n < 0:
            n = self.size
        taken = head
        if taken + (len(chunks[0]) if chunks else n) > n:
            # The common case (one read per received chunk): no copy at all.
            self.size -= taken
            return piece
        pieces = [piece]
        while chunks and taken + len(chunks[0]) <= n:
            chunk = chunks.popleft()
            pieces.append(chunk)
            taken += len(chunk)
        self.size -= taken
        return b"".join(pieces)


# --------------------------------------------------------------------------- heartbeat


class Heartbeat:
    """The ping clock and pong deadline of one session (times are ``now`` arguments).

    client-go pings every 5 s and moves its read deadline forward only when a pong
    arrives (``tools/remotecommand/websocket.go``, protocol-notes §1.7): incoming data
    does not count as a sign of life. While the adapter has stopped reading on purpose
    (backpressure), pongs cannot be seen, so the deadline is suspended and re-armed a
    full ``pong_timeout`` after reading resumes.
    """

    def __init__(self, interval: float, timeout: float, now: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self._alive_at = now
        self._next_ping = now + interval
        self._suspended = False

    @property
    def deadline(self) -> float:
        """When the peer is declared dead (``inf`` while suspended)."""
        return math.inf if self._suspended else self._alive_at + self.timeout

    @property
    def next_ping(self) -> float:
        """When the next ping is due."""
        return self._next_ping

    def next_wakeup(self) -> float:
        """The earliest time the adapter must call :meth:`poll`."""
        return min(self._next_ping, self.deadline)

    def poll(self, now: float) -> bool:
        """Advance the clock.

        Returns:
            ``True`` when a ping should be sent now.

        Raises:
            PingTimeoutError: the pong deadline passed.
        """
        if now >= self.deadline:
            raise PingTimeoutError(f"no pong from the peer within {self.timeout:g} s")
        if now >= self._next_ping:
            self._next_ping = now + self.interval
            return True
        return False

    def pong(self, now: float) -> None:
        """Record a pong (any pong proves the peer alive)."""
        self._alive_at = max(self._alive_at, now)

    def suspend(self) -> None:
        """Stop the deadline: the adapter is not reading on purpose."""
        self._suspended = True

    def resume(self, now: float) -> None:
        """Re-arm the deadline after reading resumed."""
        if self._suspended:
            self._suspended = False
            self._alive_at = now

