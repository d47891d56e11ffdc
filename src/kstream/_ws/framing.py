"""The channel.k8s.io framing: how one channel chunk becomes one WebSocket message.

Pure codecs, no state beyond one message. Source: ``wsstream/conn.go`` (``Conn.write``,
``Conn.handle``) in ``k8s.io/apimachinery`` (protocol-notes §1.3-§1.5).

* Binary subprotocols (``""``, ``channel.k8s.io``, ``v4.channel.k8s.io``,
  ``v5.channel.k8s.io``): a binary message is the channel byte followed by the payload.
* Base64 subprotocols (``base64.channel.k8s.io``, ``v4.base64.channel.k8s.io``): a text
  message is the character ``'0' + channel`` followed by the standard, padded base64 of
  the payload.
* v5 CLOSE (stdin half-close): exactly the two bytes ``FF <channel>``.

Base64 text is handled as ``bytes`` here (its UTF-8, which is ASCII): the WebSocket layer
turns it into a text frame.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from .._channels import CLOSE
from .._errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "BASE64_CHANNEL_OFFSET",
    "MAX_BASE64_CHANNEL",
    "MAX_CHANNEL",
    "Base64PayloadDecoder",
    "base64_channel_of",
    "check_channel",
    "decode_base64",
    "decode_binary",
    "decode_close",
    "encode_base64",
    "encode_binary",
    "encode_close",
]

#: Highest channel a message may carry: 255 is the v5 CLOSE marker.
MAX_CHANNEL: Final = 254
#: ``ord('0')``: base64 messages start with the character ``'0' + channel``.
BASE64_CHANNEL_OFFSET: Final = 0x30
#: Highest channel whose base64 prefix ``'0' + channel`` is still one ASCII character
#: (``'\x7f'``); beyond it the prefix would not be a single byte of a text frame.
MAX_BASE64_CHANNEL: Final = 0x7F - BASE64_CHANNEL_OFFSET

_CLOSE_MESSAGE_LENGTH: Final = 2
_BASE64_GROUP: Final = 4

Buffer = bytes | bytearray | memoryview


def check_channel(channel: int, *, base64_text: bool = False) -> None:
    """Check that ``channel`` can be sent as a message's channel prefix.

    Args:
        channel: the channel number.
        base64_text: the message is base64 text, whose prefix must be one ASCII character.

    Raises:
        LocalProtocolError: the channel is outside ``0..254`` (``0..79`` for base64).
    """
    highest = MAX_BASE64_CHANNEL if base64_text else MAX_CHANNEL
    # bool is an int subclass; a channel of True is a caller bug, not channel 1.
    if type(channel) is not int or not 0 <= channel <= highest:
        raise LocalProtocolError(f"channel must be an int in 0..{highest}, not {channel!r}")


def encode_binary(channel: int, payload: Buffer) -> bytes:
    """Encode one binary channel message: the channel byte, then the payload.

    Args:
        channel: the channel, ``0..254``.
        payload: the bytes to carry (may be empty: the server's hello message).

    Returns:
        The WebSocket binary message payload, e.g. ``b"\\x01hi\\n"`` for stdout ``hi\\n``.

    Raises:
        LocalProtocolError: the channel is out of range.
    """
    check_channel(channel)
    return bytes((channel,)) + payload


def encode_base64(channel: int, payload: Buffer) -> bytes:
    """Encode one base64 channel message: ``'0' + channel``, then padded base64.

    Args:
        channel: the channel, ``0..79``.
        payload: the bytes to carry.

    Returns:
        The text message as ASCII bytes, e.g. ``b"1aGkK"`` for stdout ``hi\\n``.

    Raises:
        LocalProtocolError: the channel is out of range.
    """
    check_channel(channel, base64_text=True)
    return bytes((BASE64_CHANNEL_OFFSET + channel,)) + base64.b64encode(payload)


def decode_binary(message: Buffer) -> tuple[int, bytes]:
    """Decode one whole binary channel message.

    Args:
        message: the WebSocket message payload.

    Returns:
        ``(channel, payload)``; the channel may be one no connection knows (``>= 5``).

    Raises:
        RemoteProtocolError: the message is empty (client-go fails the same way:
            ``read stream id: EOF``).
    """
    view = memoryview(message)
    if not view:
        raise RemoteProtocolError("empty channel message: no channel byte", close_code=1002)
    return view[0], bytes(view[1:])


def base64_channel_of(first_byte: int) -> int:
    """Return the channel that a base64 message's first byte stands for.

    The server subtracts ``'0'`` with Go's byte arithmetic, so a byte below ``'0'``
    wraps to a high channel number (dropped as unknown) rather than failing.
    """
    return (first_byte - BASE64_CHANNEL_OFFSET) & 0xFF


def decode_base64(message: Buffer) -> tuple[int, bytes]:
    """Decode one whole base64 channel message.

    Args:
        message: the text message as bytes (its UTF-8).

    Returns:
        ``(channel, payload)``.

    Raises:
        RemoteProtocolError: the message is empty, or the rest is not standard padded
            base64 (close code 1007).
    """
    view = memoryview(message)
    if not view:
        raise RemoteProtocolError("empty channel message: no channel character", close_code=1002)
    decoder = Base64PayloadDecoder()
    payload = decoder.feed(view[1:])
    decoder.finish()
    return base64_channel_of(view[0]), payload


def encode_close(channel: int) -> bytes:
    """Encode the v5 CLOSE signal for ``channel``: exactly ``FF <channel>``.

    Raises:
        LocalProtocolError: the channel is out of range.
    """
    check_channel(channel)
    return bytes((CLOSE, channel))


def decode_close(message: Buffer) -> int:
    """Decode a v5 CLOSE signal and return the channel it closes.

    Args:
        message: a whole binary message whose first byte is 255.

    Raises:
        RemoteProtocolError: the message is not exactly ``FF <channel>`` (the server
            aborts the connection on it: ``wsstream/conn.go`` ``handle``).
    """
    view = memoryview(message)
    if len(view) != _CLOSE_MESSAGE_LENGTH or view[0] != CLOSE:
        raise RemoteProtocolError(
            f"malformed CLOSE signal: {bytes(view[:8])!r} is not FF <channel>",
            close_code=1002)
    return view[1]


class Base64PayloadDecoder:
    """Decode the base64 payload of one text message that arrives in pieces.

    Complete 4-character groups are decoded as they come, so at most 3 characters are
    held back between pieces. Go decodes with ``base64.StdEncoding``: padding is required
    and nothing may follow it. Feed everything after the channel character, then call
    :meth:`finish` at the end of the message.
    """

    __slots__ = ("_carry", "_padded")

    def __init__(self) -> None:
        self._carry = bytearray()
        # A group that ended with "=" closes the encoding: nothing may follow it.
        self._padded = False

    def feed(self, piece: Buffer) -> bytes:
        """Decode what ``piece`` completes and return those bytes (maybe ``b""``).

        Raises:
            RemoteProtocolError: a character outside the base64 alphabet, misplaced
                padding, or data after padding (close code 1007).
        """
        if not piece:
            return b""
        if self._padded:
            raise _invalid_base64("data after the padding")
        if self._carry:
            self._carry += piece
            data: Buffer = self._carry
        else:
            data = piece
        usable = len(data) - len(data) % _BASE64_GROUP
        decoded = _strict_b64decode(memoryview(data)[:usable])
        # The carry is always shorter than one group, so this keeps the copy small.
        rest = bytes(memoryview(data)[usable:])
        self._carry = bytearray(rest)
        if usable and data[usable - 1] == 0x3D:  # "="
            self._padded = True
            if rest:
                raise _invalid_base64("data after the padding")
        return decoded

    def finish(self) -> None:
        """Check that the message ended on a group boundary.

        Raises:
            RemoteProtocolError: 1 to 3 characters are left over (close code 1007).
        """
        if self._carry:
            raise _invalid_base64(
                f"{len(self._carry)} characters left over, not a multiple of 4")


def _strict_b64decode(data: memoryview) -> bytes:
    if not data:
        return b""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error as exc:
        raise _invalid_base64(str(exc)) from None


def _invalid_base64(why: str) -> RemoteProtocolError:
    return RemoteProtocolError(f"invalid base64 in a channel message: {why}", close_code=1007)
