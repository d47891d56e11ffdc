"""SPDY/3.1 flow-control windows: pure accounting, no I/O, no frames.

SPDY/3.1 has two levels of flow control, as HTTP/2 does: one window per stream and one for
the whole session (``WINDOW_UPDATE`` on stream 0). Both start at 64 KiB; SETTINGS
``INITIAL_WINDOW_SIZE`` changes the stream windows only, and applies to open streams as a
*delta*. No window may exceed 2^31-1.

The design is h2's ``windows.py``:

* :class:`SendWindow` is the credit the peer gave us; sending consumes it, the peer's
  WINDOW_UPDATE grows it.
* :class:`ReceiveWindow` is the credit we gave the peer; DATA consumes it, and once the
  application reports bytes as processed it decides when a WINDOW_UPDATE is worth sending
  (h2's ``WindowManager._maybe_update_window``: when half the window has been processed, or
  when the window is shut and a fair share has been processed), so tiny DATA frames do not
  cause a WINDOW_UPDATE each.

Kubernetes' Go peers (moby/spdystream) neither send nor honour WINDOW_UPDATE
(protocol-notes §3.5), so the session uses these classes only when asked to enforce flow
control.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEFAULT_WINDOW_SIZE",
    "MAX_WINDOW_SIZE",
    "ReceiveWindow",
    "SendWindow",
    "WindowOverflowError",
    "guard_increment_window",
]

#: Initial size of every SPDY/3.1 window (stream and session).
DEFAULT_WINDOW_SIZE: Final = 65536
#: Largest window a peer may grant (SPDY/3.1 §2.6.8: 2^31-1).
MAX_WINDOW_SIZE: Final = (1 << 31) - 1


class WindowOverflowError(Exception):
    """A window would grow beyond :data:`MAX_WINDOW_SIZE`.

    Internal: the session turns it into a FLOW_CONTROL_ERROR reset or a session error.
    """


def guard_increment_window(current: int, increment: int) -> int:
    """Return ``current + increment``, refusing to go beyond :data:`MAX_WINDOW_SIZE`.

    Args:
        current: The window size now (may be negative after a SETTINGS decrease).
        increment: The credit to add.

    Returns:
        The new window size.

    Raises:
        WindowOverflowError: The result would exceed 2^31-1.
    """
    new_size = current + increment
    if new_size > MAX_WINDOW_SIZE:
        raise WindowOverflowError(
            f"window of {current} + {increment} exceeds the maximum of {MAX_WINDOW_SIZE}")
    return new_size


class SendWindow:
    """Credit the peer granted us on one stream or on the session.

    The size may go negative when the peer shrinks INITIAL_WINDOW_SIZE below what is already
    in flight (SPDY/3.1 §2.6.8); nothing more may be sent until WINDOW_UPDATEs lift it.
    """

    __slots__ = ("size",)

    def __init__(self, size: int = DEFAULT_WINDOW_SIZE) -> None:
        """Start with ``size`` bytes of credit."""
        #: Bytes we may still send.
        self.size = size

    def consume(self, amount: int) -> None:
        """Record ``amount`` bytes sent; the caller checked :attr:`size` first."""
        self.size -= amount

    def grow(self, delta: int) -> None:
        """Apply a WINDOW_UPDATE or a SETTINGS change of the initial size.

        Args:
            delta: The change (negative for a SETTINGS decrease).

        Raises:
            WindowOverflowError: The window would exceed 2^31-1.
        """
        self.size = guard_increment_window(self.size, delta)


class ReceiveWindow:
    """Credit we granted the peer on one stream or on the session (h2 ``WindowManager``).

    ``current`` shrinks as DATA arrives and grows when a WINDOW_UPDATE is emitted;
    ``max_size`` is what the window returns to once everything received is processed.
    """

    __slots__ = ("_processed", "current", "max_size")

    def __init__(self, size: int = DEFAULT_WINDOW_SIZE) -> None:
        """Start with ``size`` bytes of credit granted."""
        #: Size the window is topped up to.
        self.max_size = size
        #: Bytes the peer may still send.
        self.current = size
        # Bytes the application processed that no WINDOW_UPDATE has returned yet.
        self._processed = 0

    @property
    def outstanding(self) -> int:
        """Bytes received that the application has not reported as processed yet."""
        return self.max_size - self.current - self._processed

    def consume(self, amount: int) -> bool:
        """Record ``amount`` bytes received.

        Args:
            amount: Payload bytes of a DATA frame (or piece of one).

        Returns:
            False (and nothing recorded) when the peer sent more than its credit.
        """
        if amount > self.current:
            return False
        self.current -= amount
        return True

    def process(self, amount: int) -> int:
        """Record ``amount`` bytes as processed by the application.

        Args:
            amount: Bytes the application is done with, at most :attr:`outstanding` (the
                session checks that before calling).

        Returns:
            The WINDOW_UPDATE delta to send now, or 0 when it is not yet worth one.
        """
        self._processed += amount
        return self._maybe_update()

    def _maybe_update(self) -> int:
        # h2 windows.py: update when half the window is processed, or when the window is
        # shut and a fair share of it (min(1024, window/4)) has been processed, so a peer
        # sending tiny frames does not get one WINDOW_UPDATE per frame.
        if not self._processed:
            return 0
        shut_and_worth_it = self.current <= 0 and self._processed > min(1024, self.max_size // 4)
        if not shut_and_worth_it and self._processed < self.max_size // 2:
            return 0
        increment = min(self._processed, self.max_size - self.current)
        # Everything processed so far is accounted for, even when the window is already
        # full (bytes processed after a SETTINGS decrease); never grant beyond max_size.
        self._processed = 0
        self.current += increment
        return increment
