"""A WebSocket that carries plain binary messages, no channel byte, both roles, sans-IO.

Skeleton: signatures and docstrings are the contract (docs/portforward-core.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .._events import Event

__all__ = ["BinaryData", "BinaryWebSocket"]

Buffer = bytes | bytearray | memoryview

_DEFAULT_MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryData(Event):
    """A piece of a binary message arrived (never empty; message boundaries are not
    reported: the users of this connection treat it as a byte stream)."""

    data: bytes


class BinaryWebSocket:
    """An RFC 6455 connection whose payload is binary messages as they are.

    Events: :class:`~kstream.UpgradeRequested` (server), :class:`~kstream.UpgradeAccepted`
    (``transport="websocket"``), :class:`~kstream.UpgradeRejected` (client; also when the
    101 names no subprotocol or one not offered), :class:`BinaryData`,
    :class:`~kstream.PingReceived`, :class:`~kstream.PongReceived`,
    :class:`~kstream.ConnectionClosed`. A text message is a
    :class:`~kstream.RemoteProtocolError` (close 1003).
    """

    @classmethod
    def client(cls, *, host: str, target: str, protocols: Sequence[str],
               headers: Sequence[tuple[str, str]] = (),
               max_message_size: int = _DEFAULT_MAX_MESSAGE_SIZE) -> BinaryWebSocket:
        """Queue the GET upgrade request offering ``protocols``."""
        raise NotImplementedError

    @classmethod
    def server(cls, *, max_message_size: int = _DEFAULT_MAX_MESSAGE_SIZE) -> BinaryWebSocket:
        """Wait for an upgrade request; answer with :meth:`accept` or :meth:`reject`."""
        raise NotImplementedError
