"""The one error family of kstream.

Every error kstream raises derives from :class:`KstreamError`. Protocol violations are
split the way h11 and wsproto split them:

* :class:`LocalProtocolError` -- *our* caller asked for something the protocol forbids
  (sending on a closed channel, closing stdin on a protocol that cannot, ...).
* :class:`RemoteProtocolError` -- the *peer* sent something that does not parse or that the
  protocol forbids. Whatever bytes a peer sends, a kstream parser either returns events or
  raises this error; nothing else escapes (no ``IndexError``, ``zlib.error``, ...).

A remote error carries a hint of what to answer on the wire before closing: a WebSocket
close code, or a SPDY GOAWAY / RST_STREAM status.

Import every error from here. The four base classes are defined in ``_errors_base`` and
re-exported: the exit-status types raise them, and :class:`UpgradeRejectedError` carries
such a status, so defining them here would make ``_errors`` and ``_status_types`` import
each other.
"""

from __future__ import annotations

from ._errors_base import KstreamError as KstreamError
from ._errors_base import LocalProtocolError as LocalProtocolError
from ._errors_base import ProtocolError as ProtocolError
from ._errors_base import RemoteProtocolError as RemoteProtocolError
from ._status_types import Status

__all__ = [
    "KstreamError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "UpgradeRejectedError",
]


class UpgradeRejectedError(KstreamError):
    """The server answered the HTTP upgrade with something other than a valid 101.

    Mirrors client-go's ``UpgradeFailureError``: a client may fall back to another
    transport on it. ``status`` holds the decoded ``metav1.Status`` when the body was one,
    so an RBAC 403 reports the server's own message.
    """

    def __init__(self, status_code: int, *, reason: str = "", body: bytes = b"",
                 status: Status | None = None, headers: tuple[tuple[str, str], ...] = (),
                 detail: str = "") -> None:
        self.status_code = status_code
        self.reason = reason
        self.body = body
        self.status = status
        self.headers = headers
        self.detail = detail
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"upgrade rejected: HTTP {self.status_code}"
        if self.reason:
            text += f" {self.reason}"
        if self.detail:
            text += f": {self.detail}"
        if self.status is not None and self.status.message:
            text += f": {self.status.message}"
        elif self.body:
            text += ": " + self.body[:1024].decode("utf-8", "replace").strip()
        return text
