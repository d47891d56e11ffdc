"""The state table of the WebSocket channel connection (``_ws/connection.py``).

h2-style, as data: ``(state, input) -> next state``. A pair that is missing is a misuse by
the caller (``LocalProtocolError``); the receive path only produces pairs that are present.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

__all__ = ["TRANSITIONS", "StateInput", "WebSocketState"]


class WebSocketState(Enum):
    """Where a :class:`WebSocketChannelConnection` is in its life."""

    #: The HTTP upgrade is under way.
    CONNECTING = "CONNECTING"
    #: Upgraded: channel messages flow both ways.
    OPEN = "OPEN"
    #: We sent a close frame and wait for the peer's.
    CLOSING = "CLOSING"
    #: Both close frames went (or the byte stream ended); nothing more happens.
    CLOSED = "CLOSED"
    #: The upgrade was answered with something other than a valid 101.
    REJECTED = "REJECTED"
    #: The peer broke the protocol; ``receive_data`` raises from now on.
    FAILED = "FAILED"


class StateInput(Enum):
    """What can happen to a connection, as far as its state is concerned."""

    #: A 101 was sent (server) or a valid one received (client).
    ACCEPT = "accept the upgrade"
    #: A non-101 answer was sent (server) or received (client).
    REJECT = "reject the upgrade"
    #: Channel data, a CLOSE signal or a ping is sent.
    SEND = "send"
    #: Bytes arrived.
    RECEIVE = "receive data"
    #: We send a close frame (``close()``).
    CLOSE = "close"
    #: The peer's close frame arrived.
    PEER_CLOSE = "receive a close frame"
    #: The byte stream ended (``receive_data(b"")``).
    EOF = "receive end of stream"
    #: The peer broke the protocol.
    FAIL = "fail"


_S = WebSocketState
_I = StateInput

#: The state machine: (state, input) -> next state. A pair that is missing is a misuse by
#: the caller (LocalProtocolError); the receive path only produces pairs that are present.
#: In FAILED, receive_data raises the peer's error again instead of doing anything.
TRANSITIONS: Final[dict[tuple[WebSocketState, StateInput], WebSocketState]] = {
    (_S.CONNECTING, _I.ACCEPT): _S.OPEN,
    (_S.CONNECTING, _I.REJECT): _S.REJECTED,
    (_S.CONNECTING, _I.RECEIVE): _S.CONNECTING,
    (_S.CONNECTING, _I.EOF): _S.FAILED,
    (_S.CONNECTING, _I.FAIL): _S.FAILED,
    (_S.OPEN, _I.SEND): _S.OPEN,
    (_S.OPEN, _I.RECEIVE): _S.OPEN,
    (_S.OPEN, _I.CLOSE): _S.CLOSING,
    (_S.OPEN, _I.PEER_CLOSE): _S.CLOSED,
    (_S.OPEN, _I.EOF): _S.CLOSED,
    (_S.OPEN, _I.FAIL): _S.FAILED,
    (_S.CLOSING, _I.RECEIVE): _S.CLOSING,
    (_S.CLOSING, _I.CLOSE): _S.CLOSING,
    (_S.CLOSING, _I.PEER_CLOSE): _S.CLOSED,
    (_S.CLOSING, _I.EOF): _S.CLOSED,
    (_S.CLOSING, _I.FAIL): _S.FAILED,
    (_S.CLOSED, _I.RECEIVE): _S.CLOSED,
    (_S.CLOSED, _I.CLOSE): _S.CLOSED,
    (_S.CLOSED, _I.EOF): _S.CLOSED,
    (_S.REJECTED, _I.RECEIVE): _S.REJECTED,
    (_S.REJECTED, _I.CLOSE): _S.REJECTED,
    (_S.REJECTED, _I.EOF): _S.REJECTED,
    (_S.FAILED, _I.RECEIVE): _S.FAILED,
    (_S.FAILED, _I.CLOSE): _S.FAILED,
    (_S.FAILED, _I.EOF): _S.FAILED,
}
