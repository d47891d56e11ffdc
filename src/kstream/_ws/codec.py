"""A zero-copy WebSocket frame codec for an open connection (RFC 6455 §5, no extensions).

The HTTP handshake stays with wsproto; once the connection is open, this module parses and
writes frames at close to the cost of the header arithmetic:

* :class:`FrameDecoder` hands out data-frame payload as it arrives, in pieces that are
  ``memoryview`` slices of the received bytes (server frames, unmasked) or the unmasked
  copy (client frames): no reassembly, no buffering of payload, at most one copy. The only
  bytes it keeps between calls are an incomplete frame header or control frame (at most
  :data:`MAX_PENDING_BYTES`).
* :class:`FrameEncoder` writes frames with FIN set as a header and the payload side by
  side (:meth:`FrameEncoder.frame_parts`, for ``writev``) or joined into one ``bytes``;
  client frames are masked with a fresh key from ``os.urandom`` each.
* :class:`ZeroCopyFrameCodec` puts both behind the interface of
  :class:`kstream._ws.frames.FrameCodec`, the seam the channel connection uses.

Every violation a peer can commit raises :class:`~kstream._errors.RemoteProtocolError`
with the close code to answer: 1002 (protocol error), 1007 (invalid UTF-8 in a text
message or a close reason) or 1009 (message too big). Checks follow RFC 6455 and agree
with wsproto (frame_protocol.py) and gorilla/websocket (conn.go), except that a length
encoded in more bytes than needed is accepted (RFC 6455 §5.2 puts the minimal encoding on
the sender; gorilla accepts it too).
"""

from __future__ import annotations

import os
import struct
from codecs import IncrementalDecoder, getincrementaldecoder
from collections.abc import Callable
from typing import Final

from .._errors import LocalProtocolError, RemoteProtocolError
from .frames import (
    CloseFrame,
    MessagePiece,
    PingFrame,
    PongFrame,
    Received,
)
from .mask import mask, rotate_key

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "KEYS_PER_DRAW",
    "MAX_CONTROL_PAYLOAD",
    "MAX_PENDING_BYTES",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Frame",
    "FrameDecoder",
    "FrameEncoder",
    "ZeroCopyFrameCodec",
    "is_valid_close_code",
]

Buffer = bytes | bytearray | memoryview

#: RFC 6455 §5.2 opcodes.
OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

#: Control frames carry at most 125 bytes of payload (RFC 6455 §5.5).
MAX_CONTROL_PAYLOAD: Final = 125

#: The largest header: 2 bytes, a 64-bit extended length and a mask key.
_MAX_HEADER: Final = 2 + 8 + 4

#: Bytes a decoder may hold between calls: an incomplete header, or an incomplete control
#: frame (which is handed out whole).
MAX_PENDING_BYTES: Final = _MAX_HEADER + MAX_CONTROL_PAYLOAD

#: Default limit on one message's size, as the Kubernetes API server's (32 MiB).
DEFAULT_MAX_MESSAGE_SIZE: Final = 32 * 1024 * 1024

_FIN: Final = 0x80
_RSV_BITS: Final = 0x70
_OPCODE_BITS: Final = 0x0F
_CONTROL_BIT: Final = 0x08
_MASK_BIT: Final = 0x80
_LENGTH_BITS: Final = 0x7F
_LENGTH_16: Final = 126
_LENGTH_64: Final = 127
_MAX_LENGTH_7: Final = 125
_MAX_LENGTH_16: Final = 0xFFFF

_PROTOCOL_ERROR: Final = 1002
_INVALID_PAYLOAD: Final = 1007
_MESSAGE_TOO_BIG: Final = 1009
_NO_STATUS_CODE: Final = 1005
_MAX_CLOSE_REASON_BYTES: Final = MAX_CONTROL_PAYLOAD - 2

# Close codes a close frame may carry (RFC 6455 §7.4, and the IANA registrations 1012-1013
# that wsproto and gorilla/websocket accept: conn.go validReceivedCloseCodes). 1004 is
# reserved; 1005, 1006 and 1015 only describe a connection locally.
_VALID_PROTOCOL_CLOSE_CODES: Final = frozenset({1000, 1001, 1002, 1003, *range(1007, 1014)})
_MIN_APPLICATION_CLOSE_CODE: Final = 3000
_MAX_APPLICATION_CLOSE_CODE: Final = 4999

_pack_header_16: Final = struct.Struct("!BBH").pack
_pack_header_64: Final = struct.Struct("!BBQ").pack
_pack_close_code: Final = struct.Struct("!H").pack
_Utf8Decoder: Final = getincrementaldecoder("utf-8")

#: A decoded item: ``(opcode, payload, frame_finished, message_finished)``.
#:
#: * Data pieces carry the message's opcode (:data:`OP_TEXT` or :data:`OP_BINARY`, also for
#:   continuation frames); ``frame_finished`` ends the frame, ``message_finished`` the
#:   message. The payload is unmasked; it is a ``memoryview`` of the bytes fed when they
#:   were immutable and unmasked, else ``bytes``. A piece of a text message may end inside
#:   a UTF-8 sequence (the message as a whole is validated).
#: * Control frames (:data:`OP_PING`, :data:`OP_PONG`, :data:`OP_CLOSE`) come whole, with
#:   ``bytes`` payload and both flags true. A close frame's code and reason are in
#:   :attr:`FrameDecoder.close_code` and :attr:`FrameDecoder.close_reason`.
Frame = tuple[int, Buffer, bool, bool]


def is_valid_close_code(code: int) -> bool:
    """Tell whether ``code`` may appear in a close frame on the wire (RFC 6455 §7.4).

    Args:
        code: a close code.

    Returns:
        True for 1000-1003, 1007-1013 and 3000-4999.
    """
    return (code in _VALID_PROTOCOL_CLOSE_CODES
            or _MIN_APPLICATION_CLOSE_CODE <= code <= _MAX_APPLICATION_CLOSE_CODE)


def _protocol_error(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(message, close_code=_PROTOCOL_ERROR)


def _parse_close_payload(payload: bytes) -> tuple[int, str]:
    # RFC 6455 §5.5.1: empty, or a 2-byte code and a UTF-8 reason.
    if not payload:
        return _NO_STATUS_CODE, ""
    if len(payload) == 1:
        raise _protocol_error("close frame with a 1-byte payload")
    code = (payload[0] << 8) | payload[1]
    if not is_valid_close_code(code):
        raise _protocol_error(f"close frame with invalid close code {code}")
    try:
        reason = str(payload[2:], "utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("close reason is not valid UTF-8",
                                  close_code=_INVALID_PAYLOAD) from None
    return code, reason


class FrameDecoder:
    """Parse the frames a peer sends on an open WebSocket connection.

    Args:
        client: we are the client: frames must arrive unmasked. A server requires masked
            frames (RFC 6455 §5.1).
        max_message_size: the largest message accepted, in bytes (a message over it fails
            with close code 1009 as soon as a frame header announces it); ``None`` for no
            limit. Payload is never buffered, so the limit protects the consumer.
        validate_utf8: check that text messages are UTF-8 (close code 1007).

    Attributes:
        close_code: the code of the close frame received (1005 if it had none), or None.
        close_reason: the reason of the close frame received.
    """

    __slots__ = (
        "_client", "_closed", "_error", "_frame_fin", "_key", "_max_message_size",
        "_message_opcode", "_message_size", "_offset", "_pending", "_remaining", "_utf8",
        "_validate_utf8", "close_code", "close_reason",
    )

    def __init__(self, *, client: bool, max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
                 validate_utf8: bool = True) -> None:
        if max_message_size is not None and (type(max_message_size) is not int
                                             or max_message_size < 0):
            raise ValueError(
                f"max_message_size must be a non-negative int or None, not {max_message_size!r}")
        self._client = client
        self._max_message_size = max_message_size
        self._validate_utf8 = validate_utf8
        self.close_code: int | None = None
        self.close_reason = ""
        # An incomplete header or control frame carried over to the next call.
        self._pending = bytearray()
        # The data frame whose payload is arriving: bytes still due, its mask key, how
        # much of its payload was unmasked, and its FIN bit.
        self._remaining = 0
        self._key: bytes | None = None
        self._offset = 0
        self._frame_fin = False
        # The message in progress: its opcode (0: none), size so far, and the state of
        # its UTF-8 validation when it is text that arrived in more than one piece.
        self._message_opcode = 0
        self._message_size = 0
        self._utf8: IncrementalDecoder | None = None
        self._closed = False
        self._error: RemoteProtocolError | None = None

    @property
    def closed(self) -> bool:
        """A close frame was received: nothing after it is parsed."""
        return self._closed

    @property
    def in_message(self) -> bool:
        """A data message has started and not finished."""
        return self._message_opcode != 0

    def feed(self, data: Buffer, *, borrow: bool = False) -> list[Frame]:
        """Parse ``data``, the next bytes from the peer, into frames and payload pieces.

        Bytes after a close frame are ignored, then and in later calls.

        Args:
            data: received bytes (any contiguous buffer; may be empty).
            borrow: hand out unmasked payload as views of ``data`` even when it is
                mutable, instead of copies; the caller must be done with them before
                ``data`` changes (an adapter's reused receive buffer: the caller then
                makes the one copy it keeps).

        Returns:
            The :data:`Frame` items ``data`` completes, in order.

        Raises:
            RemoteProtocolError: the bytes break RFC 6455 (``close_code`` 1002, 1007 or
                1009). The decoder is then failed and raises again on every call; the
                items parsed before the error in this call are lost with it.
        """
        if self._error is not None:
            raise RemoteProtocolError(f"frame decoder already failed: {self._error}",
                                      close_code=self._error.close_code)
        items: list[Frame] = []
        if self._closed:
            return items
        view = memoryview(data)
        # Unmasked payload from a mutable buffer is copied (unless borrowed): the caller
        # may reuse it.
        copy = False
        if type(data) is not bytes:
            if view.format != "B" or view.ndim != 1:
                view = view.cast("B")
            copy = not (borrow or view.readonly)
        try:
            pos = self._parse_pending(view, items) if self._pending else 0
            self._parse(view, pos, len(view), items, copy)
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        return items

    def _parse_pending(self, view: memoryview, items: list[Frame]) -> int:
        # Finish the header or control frame begun in the carried-over bytes: top them
        # up to the largest such unit and parse just that unit. Bytes taken past its end
        # are parsed again from ``view``; return where in ``view`` that is.
        pending = self._pending
        carried = len(pending)
        pending += view[:MAX_PENDING_BYTES - carried]
        joined = bytes(pending)
        pending.clear()
        # If the unit is still incomplete, _parse keeps all of ``joined`` (which then
        # holds all of ``view``: a full buffer always parses) and returns its end.
        return self._parse(memoryview(joined), 0, carried, items, False) - carried

    def _parse(self, buf: memoryview, pos: int, until: int, items: list[Frame],
               copy: bool) -> int:
        # Parse the frames that start before ``until`` (their headers may extend past it)
        # and the payload before it; return the position reached. An incomplete header or
        # control frame at the end is kept in ``_pending``. Whole data frames, the common
        # case, are parsed inline: each function call costs a tenth of a small frame.
        end = len(buf)
        while pos < until:
            if self._remaining:
                pos = self._continue_payload(buf, pos, until, items, copy)
                continue
            if self._closed:
                return until
            if end - pos < 2:
                break
            first = buf[pos]
            second = buf[pos + 1]
            opcode = first & _OPCODE_BITS
            length = second & _LENGTH_BITS
            if first & _RSV_BITS:
                raise _protocol_error("reserved bits set in a frame (no extension negotiated)")
            if opcode & _CONTROL_BIT:
                if opcode > OP_PONG:
                    raise _protocol_error(f"reserved control opcode {opcode:#x}")
                if not first & _FIN:
                    raise _protocol_error("fragmented control frame")
                if length > _MAX_LENGTH_7:
                    raise _protocol_error("control frame payload longer than 125 bytes")
            elif opcode > OP_BINARY:
                raise _protocol_error(f"reserved data opcode {opcode:#x}")
            masked = second & _MASK_BIT
            if self._client:
                if masked:
                    raise _protocol_error("masked frame from the server")
            elif not masked:
                raise _protocol_error("unmasked frame from the client")
            start = pos + 2
            if length == _LENGTH_16:
                start += 2
                if start > end:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
            elif length == _LENGTH_64:
                start += 8
                if start > end:
                    break
                length = int.from_bytes(buf[pos + 2:start], "big")
                if length >> 63:
                    raise _protocol_error("64-bit payload length with the top bit set")
            key = None
            if masked:
                start += 4
                if start > end:
                    break
                key = bytes(buf[start - 4:start])
            stop = start + length
            if opcode & _CONTROL_BIT:
                if stop > end:
                    break
                self._control_frame(opcode, buf[start:stop], key, items)
                pos = stop
                continue
            # A data frame. RFC 6455 §5.4: a message is a frame with an opcode, then
            # continuation frames up to one with FIN.
            if opcode:
                if self._message_opcode:
                    raise _protocol_error(
                        "new data frame while a fragmented message is unfinished")
                self._message_opcode = opcode
                self._message_size = length
            elif self._message_opcode:
                self._message_size += length
            else:
                raise _protocol_error("continuation frame without a message to continue")
            if self._max_message_size is not None and self._message_size > self._max_message_size:
                raise RemoteProtocolError(f"message larger than {self._max_message_size} bytes",
                                          close_code=_MESSAGE_TOO_BIG)
            fin = first >= _FIN
            if stop > until or not length:
                # The payload is still arriving (or there is none).
                self._frame_fin = fin
                self._remaining = length
                self._key = key
                self._offset = 0
                pos = start
                if not length:
                    self._emit(b"", True, items)
                continue
            payload: Buffer
            if key is not None:
                payload = mask(buf[start:stop], key)
            elif copy:
                payload = bytes(buf[start:stop])
            else:
                payload = buf[start:stop]
            opcode = self._message_opcode
            if opcode == OP_TEXT and self._validate_utf8:
                self._check_utf8(payload, fin)
            items.append((opcode, payload, True, fin))
            if fin:
                self._message_opcode = 0
            pos = stop
        else:
            return pos
        # An incomplete header or control frame: keep it for the next call.
        self._pending += buf[pos:]
        return end

    def _continue_payload(self, buf: memoryview, pos: int, until: int, items: list[Frame],
                          copy: bool) -> int:
        # Hand out the next piece of the data frame whose header came before.
        stop = pos + self._remaining
        if stop > until:
            stop = until
        self._remaining -= stop - pos
        key = self._key
        payload: Buffer
        if key is not None:
            offset = self._offset
            payload = mask(buf[pos:stop], rotate_key(key, offset) if offset & 3 else key)
            self._offset = offset + stop - pos
        elif copy:
            payload = bytes(buf[pos:stop])
        else:
            payload = buf[pos:stop]
        self._emit(payload, not self._remaining, items)
        return stop

    def _control_frame(self, opcode: int, payload: memoryview, key: bytes | None,
                       items: list[Frame]) -> None:
        unmasked = bytes(payload) if key is None else mask(payload, key)
        if opcode == OP_CLOSE:
            self.close_code, self.close_reason = _parse_close_payload(unmasked)
            self._closed = True
        items.append((opcode, unmasked, True, True))

    def _emit(self, payload: Buffer, frame_finished: bool, items: list[Frame]) -> None:
        message_finished = frame_finished and self._frame_fin
        opcode = self._message_opcode
        if opcode == OP_TEXT and self._validate_utf8:
            self._check_utf8(payload, message_finished)
        items.append((opcode, payload, frame_finished, message_finished))
        if message_finished:
            self._message_opcode = 0

    def _check_utf8(self, payload: Buffer, final: bool) -> None:
        decoder = self._utf8
        try:
            if decoder is None:
                if final:
                    # The whole message in one piece: no decoder state needed.
                    str(payload, "utf-8")
                    return
                decoder = self._utf8 = _Utf8Decoder()
            decoder.decode(payload, final)
        except UnicodeDecodeError:
            raise RemoteProtocolError("text message is not valid UTF-8",
                                      close_code=_INVALID_PAYLOAD) from None
        if final:
            self._utf8 = None


#: Mask keys drawn from the key source at once (see :class:`FrameEncoder`).
KEYS_PER_DRAW: Final = 256

# Below this size, a client frame's prefix and payload are joined, then masked in one go.
_JOIN_PREFIX_BELOW: Final = 4096


def _header(first: int, mask_bit: int, size: int) -> bytes:
    # RFC 6455 §5.2: the length in 7 bits, or 126/127 and 16/64 bits, minimally.
    if size <= _MAX_LENGTH_7:
        return bytes((first, mask_bit | size))
    if size <= _MAX_LENGTH_16:
        return _pack_header_16(first, mask_bit | _LENGTH_16, size)
    return _pack_header_64(first, mask_bit | _LENGTH_64, size)


class FrameEncoder:
    """Write single-frame messages and control frames (FIN set: kstream never fragments).

    Args:
        client: we are the client: every frame is masked with a fresh key.
        key_source: returns ``n`` random bytes (``n`` a multiple of 4); mask keys are
            drawn from it :data:`KEYS_PER_DRAW` at a time. Tests inject fixed keys.

    Text payloads given as bytes must be UTF-8; they are not checked.
    """

    __slots__ = ("_client", "_key_source", "_keys", "_keys_used")

    def __init__(self, *, client: bool,
                 key_source: Callable[[int], bytes] = os.urandom) -> None:
        self._client = client
        self._key_source = key_source
        self._keys = b""
        self._keys_used = 0

    def _next_key(self) -> bytes:
        # RFC 6455 §5.3: a fresh, unpredictable key per frame. os.urandom is a system call
        # (a third of a small frame's cost), so keys come from one call per KEYS_PER_DRAW
        # frames; each key is still 4 bytes from the kernel's CSPRNG, used once.
        used = self._keys_used
        if used == len(self._keys):
            self._keys = self._key_source(4 * KEYS_PER_DRAW)
            used = 0
        self._keys_used = used + 4
        return self._keys[used:used + 4]

    def frame_parts(self, opcode: int, payload: Buffer, prefix: Buffer = b"") -> list[Buffer]:
        """Serialize one frame as pieces to write in order (``writev``-friendly).

        The payload is ``prefix`` followed by ``payload``, kept apart so that a one-byte
        channel prefix costs no copy of the payload. Unmasked, the pieces are the header
        and the caller's own buffers; masked, the header with the key and the masked
        payload (the one copy masking has to make).

        Args:
            opcode: :data:`OP_TEXT`, :data:`OP_BINARY`, :data:`OP_PING`, :data:`OP_PONG`
                or :data:`OP_CLOSE`.
            payload: the frame's payload (after ``prefix``).
            prefix: bytes that go before ``payload``.

        Returns:
            The frame's bytes as a list of buffers.

        Raises:
            LocalProtocolError: an opcode not listed, or a control frame payload over 125
                bytes.
        """
        size = len(prefix) + len(payload)
        if opcode & _CONTROL_BIT:
            if opcode > OP_PONG:
                raise LocalProtocolError(f"cannot send a frame with opcode {opcode!r}")
            if size > MAX_CONTROL_PAYLOAD:
                raise LocalProtocolError(
                    f"control frame payload of {size} bytes (at most {MAX_CONTROL_PAYLOAD})")
        elif opcode not in (OP_TEXT, OP_BINARY):
            raise LocalProtocolError(f"cannot send a frame with opcode {opcode!r}")
        if not self._client:
            if prefix:
                return [_header(_FIN | opcode, 0, size), prefix, payload]
            return [_header(_FIN | opcode, 0, size), payload]
        key = self._next_key()
        head = _header(_FIN | opcode, _MASK_BIT, size) + key
        if not prefix:
            return [head, mask(payload, key)]
        if size < _JOIN_PREFIX_BELOW:
            # Copying a small payload once costs less than a second masking call.
            return [head, mask(b"".join((prefix, payload)), key)]
        return [head, mask(prefix, key), mask(payload, rotate_key(key, len(prefix)))]

    def frame(self, opcode: int, payload: Buffer, prefix: Buffer = b"") -> bytes:
        """Serialize one frame as ``bytes``; see :meth:`frame_parts` for the arguments.

        Raises:
            LocalProtocolError: as :meth:`frame_parts`.
        """
        return b"".join(self.frame_parts(opcode, payload, prefix))

    def binary(self, payload: Buffer, prefix: Buffer = b"") -> bytes:
        """Serialize a binary message of ``prefix + payload``."""
        return self.frame(OP_BINARY, payload, prefix)

    def text(self, payload: str | Buffer, prefix: Buffer = b"") -> bytes:
        """Serialize a text message of ``prefix + payload`` (``str`` is UTF-8 encoded)."""
        if isinstance(payload, str):
            payload = payload.encode()
        return self.frame(OP_TEXT, payload, prefix)

    def ping(self, payload: Buffer = b"") -> bytes:
        """Serialize a ping frame.

        Raises:
            LocalProtocolError: ``payload`` is longer than 125 bytes.
        """
        return self.frame(OP_PING, payload)

    def pong(self, payload: Buffer = b"") -> bytes:
        """Serialize a pong frame.

        Raises:
            LocalProtocolError: ``payload`` is longer than 125 bytes.
        """
        return self.frame(OP_PONG, payload)

    def close(self, code: int = _NO_STATUS_CODE, reason: str = "") -> bytes:
        """Serialize a close frame.

        Args:
            code: the close code; 1005 (what a code-less close reads as) sends an empty
                payload, so that a received close can be echoed as it came.
            reason: the reason, at most 123 bytes of UTF-8.

        Raises:
            LocalProtocolError: a code that may not go on the wire, a reason with code
                1005, or a reason too long.
        """
        if code == _NO_STATUS_CODE and type(code) is int:
            if reason:
                raise LocalProtocolError("a close reason needs a close code")
            return self.frame(OP_CLOSE, b"")
        if type(code) is not int or not is_valid_close_code(code):
            raise LocalProtocolError(f"close code {code!r} cannot be sent in a close frame")
        encoded = reason.encode()
        if len(encoded) > _MAX_CLOSE_REASON_BYTES:
            raise LocalProtocolError(
                f"close reason is longer than {_MAX_CLOSE_REASON_BYTES} bytes of UTF-8")
        return self.frame(OP_CLOSE, encoded, _pack_close_code(code))


# ZeroCopyFrameCodec's states, as wsproto's ConnectionState (connection.py).
_OPEN: Final = 0
_LOCAL_CLOSING: Final = 1  # we sent a close frame
_REMOTE_CLOSING: Final = 2  # the peer sent one
_CLOSED: Final = 3


class ZeroCopyFrameCodec:
    """The interface of the seam's :class:`kstream._ws.frames.FrameCodec`, on this module.

    A drop-in replacement: same methods, same items, same closing rules (after wsproto's
    ``Connection``): data and pings only while open (a pong is then ``b""``), one close
    frame each way, nothing parsed after the peer's close. Differences: a
    :class:`~kstream._ws.frames.MessagePiece`'s ``data`` may be a ``memoryview`` of the
    bytes received (immutable input, unmasked frames) rather than ``bytes``; a text piece
    may end inside a UTF-8 sequence (the message is validated as a whole); a failed codec
    raises again on every later :meth:`receive`.

    Args:
        client: we are the client (our frames are masked, the peer's must not be).
        max_message_size: passed to :class:`FrameDecoder`; ``None`` (the default) leaves
            the limit to the caller, as the wsproto codec does.
        key_source: passed to :class:`FrameEncoder`.
    """

    __slots__ = ("_decoder", "_encoder", "_state")

    def __init__(self, *, client: bool, max_message_size: int | None = None,
                 key_source: Callable[[int], bytes] = os.urandom) -> None:
        self._decoder = FrameDecoder(client=client, max_message_size=max_message_size)
        self._encoder = FrameEncoder(client=client, key_source=key_source)
        self._state = _OPEN

    @property
    def close_code(self) -> int | None:
        """The code of the peer's close frame (1005 if it had none), or ``None``."""
        return self._decoder.close_code

    @property
    def close_reason(self) -> str:
        """The reason of the peer's close frame (``""`` until one arrived)."""
        return self._decoder.close_reason

    def receive_frames(self, data: Buffer) -> list[Frame]:
        """As :meth:`receive`, but the decoder's :data:`Frame` tuples, payload borrowed.

        The hot path of the channel connection: no item object per piece, and unmasked
        payload is always a view of ``data`` (mutable or not), valid only until ``data``
        changes; the caller copies what it keeps. A close frame's code and reason are in
        :attr:`close_code` and :attr:`close_reason`.

        Raises:
            RemoteProtocolError: as :meth:`receive`.
        """
        if self._state != _OPEN and self._state != _LOCAL_CLOSING:
            return []
        frames = self._decoder.feed(data, borrow=True)
        if self._decoder.closed:
            self._state = _CLOSED if self._state == _LOCAL_CLOSING else _REMOTE_CLOSING
        return frames

    def receive(self, data: Buffer) -> list[Received]:
        """Parse ``data`` (appended to what is buffered) into frames and message pieces.

        Parsing stops for good after a close frame.

        Args:
            data: bytes received from the peer.

        Returns:
            The items parsed, in order.

        Raises:
            RemoteProtocolError: the bytes break RFC 6455; ``close_code`` is the code to
                close with (1002, 1007 or 1009).
        """
        if self._state not in (_OPEN, _LOCAL_CLOSING):
            return []
        received: list[Received] = []
        for opcode, payload, _frame_finished, message_finished in self._decoder.feed(data):
            if opcode <= OP_BINARY:
                received.append(MessagePiece(opcode == OP_TEXT, payload,
                                             message_finished))
            elif opcode == OP_PING:
                received.append(PingFrame(bytes(payload)))  # control payloads are bytes
            elif opcode == OP_PONG:
                received.append(PongFrame(bytes(payload)))
            else:
                decoder = self._decoder
                assert decoder.close_code is not None
                received.append(CloseFrame(decoder.close_code, decoder.close_reason))
                self._state = _CLOSED if self._state == _LOCAL_CLOSING else _REMOTE_CLOSING
        return received

    def message(self, prefix: bytes, payload: Buffer, *, text: bool) -> bytes:
        """Serialize one unfragmented data message whose payload is ``prefix + payload``.

        Raises:
            LocalProtocolError: the connection is closing or closed.
        """
        self._require_open("send a message")
        return self._encoder.frame(OP_TEXT if text else OP_BINARY, payload, prefix)

    def message_parts(self, prefix: bytes, payload: Buffer, *, text: bool) -> list[Buffer]:
        """As :meth:`message`, but the frame's pieces, unjoined (see
        :meth:`FrameEncoder.frame_parts`): appending them to an output buffer one by one
        copies the payload once, where ``+= message(...)`` copies it twice.

        Raises:
            LocalProtocolError: the connection is closing or closed.
        """
        self._require_open("send a message")
        return self._encoder.frame_parts(OP_TEXT if text else OP_BINARY, payload, prefix)

    def ping(self, payload: bytes = b"") -> bytes:
        """Serialize a ping frame (payload at most 125 bytes)."""
        self._require_open("send a ping")
        return self._encoder.ping(payload)

    def pong(self, payload: bytes = b"") -> bytes:
        """Serialize a pong frame answering a ping with ``payload``.

        Returns ``b""`` once a close frame was sent or received, as the wsproto codec: a
        ping parsed in the same read as the peer's close is answered by nothing.
        """
        if self._state != _OPEN:
            return b""
        return self._encoder.pong(payload)

    def close(self, code: int, reason: str = "") -> bytes:
        """Serialize a close frame (see :meth:`FrameEncoder.close`).

        Raises:
            LocalProtocolError: an invalid code or reason, or a close frame was already
                sent.
        """
        if self._state not in (_OPEN, _REMOTE_CLOSING):
            raise LocalProtocolError("a close frame was already sent")
        frame = self._encoder.close(code, reason)
        self._state = _CLOSED if self._state == _REMOTE_CLOSING else _LOCAL_CLOSING
        return frame

    def _require_open(self, verb: str) -> None:
        if self._state != _OPEN:
            raise LocalProtocolError(f"cannot {verb}: the WebSocket is closing or closed")
