"""The base classes of kstream's error family, below everything else.

:mod:`kstream._errors` is where the family is imported from; the four classes here are
defined apart only so that the exit-status types (``_status_types``), which raise them,
sit below ``_errors``, whose :class:`~kstream._errors.UpgradeRejectedError` carries a
``Status``. Standard library only, no kstream import.
"""

from __future__ import annotations

__all__ = [
    "KstreamError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
]


class KstreamError(Exception):
    """Base class of every error kstream raises."""


class ProtocolError(KstreamError):
    """A violation of one of the streaming protocols, by us or by the peer.

    Not raised directly: it is either a :class:`LocalProtocolError` or a
    :class:`RemoteProtocolError`.
    """

    def __init__(self, message: str, *, close_code: int | None = None,
                 spdy_status: int | None = None) -> None:
        if type(self) is ProtocolError:
            raise TypeError("raise LocalProtocolError or RemoteProtocolError, not ProtocolError")
        super().__init__(message)
        #: WebSocket close code to send before closing (1002 protocol error, 1009 too big, ...).
        self.close_code = close_code
        #: SPDY status to send (GOAWAY status or RST_STREAM status), when one applies.
        self.spdy_status = spdy_status


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol or the connection's state forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that do not parse, or that the protocol forbids."""
