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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._status import Status

__all__ = [
    "KstreamError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "UpgradeRejectedError",
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
