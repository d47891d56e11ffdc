"""SPDY/3.1 frames: types, a streaming decoder and an encoder, as Kubernetes uses them.

Wire format (all integers big-endian; ``moby/spdystream`` ``spdy/types.go``, ``read.go``,
``write.go``)::

    control frame: 1 | version(15) = 3 | type(16) | flags(8) | length(24) | payload
    data frame:    0 | stream-id(31)            | flags(8) | length(24) | payload

:class:`FrameDecoder` turns bytes into frames; it streams DATA payloads out as they arrive
(no reassembly) and buffers a control frame whole, up to a limit. :class:`FrameEncoder` turns
calls into bytes. Each owns one zlib stream of the session (inbound and outbound header
compression), so a session uses one decoder and one encoder for its whole life.

Deliberate differences from Go's reader (stricter where misparsing is the alternative,
more lenient where the session can decide):

* The version field must be 3 (Go does not check it). Kubernetes peers always send 3, and a
  different version means a different frame layout (SPDY/2 has 16-bit header lengths), so
  reading on would only misparse.
* Unknown control types (5 NOOP, 10 CREDENTIAL, ...) are skipped without buffering and
  reported as :class:`UnknownControlFrame`; Go ends the connection. The session decides.
* RST_STREAM must be exactly 8 bytes and SETTINGS exactly ``4 + 8 * count`` (Go reads the
  fields it needs and would misparse the rest).
* Reserved top bits of stream ids and window deltas are masked off, as SPDY/3 requires.
* DATA is delivered in pieces as it arrives; an empty non-FIN DATA frame yields nothing.
* Header blocks are checked as Go checks them (lower-case, no duplicate, no connection-specific
  name: ``host`` is allowed in SYN_REPLY and in HEADERS on odd stream ids, as in Go), and
  also refused when a name is empty or not visible ASCII or a value is not UTF-8.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeAlias

from .._errors import LocalProtocolError, RemoteProtocolError
from .headers import (
    FORBIDDEN_REQUEST_HEADERS,
    FORBIDDEN_RESPONSE_HEADERS,
    HeaderCompressor,
    HeaderDecompressor,
    Headers,
)

__all__ = [
    "FLAG_CLEAR_SETTINGS",
    "FLAG_FIN",
    "FLAG_UNIDIRECTIONAL",
    "GOAWAY",
    "HEADERS",
    "MAX_FRAME_LENGTH",
    "MAX_STREAM_ID",
    "PING",
    "RST_STREAM",
    "SETTINGS",
    "SETTINGS_FLAG_PERSISTED",
    "SETTINGS_FLAG_PERSIST_VALUE",
    "SPDY_VERSION",
    "SYN_REPLY",
    "SYN_STREAM",
    "WINDOW_UPDATE",
    "DataFrame",
    "Frame",
    "FrameDecoder",
    "FrameEncoder",
    "GoAwayFrame",
    "GoAwayStatus",
    "HeadersFrame",
    "PingFrame",
    "RstStatus",
    "RstStreamFrame",
    "SettingId",
    "SettingsFrame",
    "SynReplyFrame",
    "SynStreamFrame",
    "UnknownControlFrame",
    "WindowUpdateFrame",
    "pack_data_header",
]

#: The only protocol version this codec reads and writes.
SPDY_VERSION = 3

# Control frame types (spdy/types.go ControlFrameType).
SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

#: FIN on DATA, SYN_STREAM, SYN_REPLY, HEADERS: the sender's half of the stream is closed.
FLAG_FIN = 0x01
#: UNIDIRECTIONAL on SYN_STREAM: the receiver will not send on the stream.
FLAG_UNIDIRECTIONAL = 0x02
#: CLEAR_SETTINGS on SETTINGS: forget persisted settings.
FLAG_CLEAR_SETTINGS = 0x01

#: SETTINGS entry flags.
SETTINGS_FLAG_PERSIST_VALUE = 1
SETTINGS_FLAG_PERSISTED = 2

#: Largest frame payload: the length field has 24 bits (spdy/types.go MaxDataLength).
MAX_FRAME_LENGTH = (1 << 24) - 1
#: Largest stream id: 31 bits.
MAX_STREAM_ID = (1 << 31) - 1
_MAX_UINT32 = (1 << 32) - 1
_MAX_SETTING_ID = (1 << 24) - 1


class RstStatus(IntEnum):
    """RST_STREAM status codes (spdy/types.go RstStreamStatus); 0 is invalid."""

    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    INVALID_CREDENTIALS = 10
    FRAME_TOO_LARGE = 11


class GoAwayStatus(IntEnum):
    """GOAWAY status codes (spdy/types.go GoAwayStatus)."""

    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


class SettingId(IntEnum):
    """SETTINGS ids (spdy/types.go SettingsId)."""

    UPLOAD_BANDWIDTH = 1
    DOWNLOAD_BANDWIDTH = 2
    ROUND_TRIP_TIME = 3
    MAX_CONCURRENT_STREAMS = 4
    CURRENT_CWND = 5
    DOWNLOAD_RETRANS_RATE = 6
    INITIAL_WINDOW_SIZE = 7
    CLIENT_CERTIFICATE_VECTOR_SIZE = 8


# --------------------------------------------------------------------------- frame types


@dataclass(frozen=True, slots=True)
class DataFrame:
    """A DATA frame, or, when decoded, one piece of one.

    The decoder hands DATA payload bytes out as they arrive: a frame may come out as several
    pieces, and ``fin`` is True only on the piece that completes a FIN frame. An empty FIN
    frame decodes to one piece with ``data == b""``; an empty non-FIN frame decodes to
    nothing at all (it carries nothing).
    """

    stream_id: int
    #: Payload bytes. A decoded piece is a ``memoryview`` into the ``bytes`` given to
    #: :meth:`FrameDecoder.feed`, or a ``bytes`` copy when another buffer type was given.
    data: bytes | memoryview
    fin: bool = False

    def __repr__(self) -> str:
        # A memoryview's repr hides the bytes; show them (the first 64) instead.
        data = bytes(self.data[:64])
        more = "..." if len(self.data) > 64 else ""
        return f"DataFrame(stream_id={self.stream_id}, data={data!r}{more}, fin={self.fin})"


@dataclass(frozen=True, slots=True)
class SynStreamFrame:
    """SYN_STREAM: open a stream. ``priority`` is 0-7 (0 highest); ``slot`` is 0-255."""

    stream_id: int
    associated_id: int = 0
    priority: int = 0
    slot: int = 0
    headers: Headers = ()
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True, slots=True)
class SynReplyFrame:
    """SYN_REPLY: accept a stream the peer opened."""

    stream_id: int
    headers: Headers = ()
    fin: bool = False


@dataclass(frozen=True, slots=True)
class RstStreamFrame:
    """RST_STREAM: abort a stream. ``status`` is a :class:`RstStatus` value (or unknown)."""

    stream_id: int
    status: int


@dataclass(frozen=True, slots=True)
class SettingsFrame:
    """SETTINGS: ``entries`` are ``(flags, id, value)`` triples, in wire order."""

    entries: tuple[tuple[int, int, int], ...] = ()
    clear: bool = False


@dataclass(frozen=True, slots=True)
class PingFrame:
    """PING: echoed by the peer of the other parity (clients use odd ids, servers even)."""

    ping_id: int


@dataclass(frozen=True, slots=True)
class GoAwayFrame:
    """GOAWAY: the sender ends the session. ``status`` is a :class:`GoAwayStatus` value."""

    last_good_stream_id: int
    status: int = 0


@dataclass(frozen=True, slots=True)
class HeadersFrame:
    """HEADERS: more headers for an open stream."""

    stream_id: int
    headers: Headers = ()
    fin: bool = False


@dataclass(frozen=True, slots=True)
class WindowUpdateFrame:
    """WINDOW_UPDATE: flow-control credit (stream id 0 is the session window in 3.1)."""

    stream_id: int
    delta: int


@dataclass(frozen=True, slots=True)
class UnknownControlFrame:
    """A control frame of a type this codec does not know; its payload was skipped.

    Go's reader ends the connection on these (protocol-notes section 3.2); the session may
    do the same or ignore them. Decode-only: the encoder refuses it.
    """

    frame_type: int
    flags: int
    length: int


Frame: TypeAlias = (
    DataFrame | SynStreamFrame | SynReplyFrame | RstStreamFrame | SettingsFrame | PingFrame
    | GoAwayFrame | HeadersFrame | WindowUpdateFrame | UnknownControlFrame
)

# --------------------------------------------------------------------------- wire layouts

_FRAME_HEADER = struct.Struct(">II")  # first word, flags << 24 | length
#: ``pack_data_header(stream_id, length)``: the 8-byte header of a DATA frame without flags,
#: unchecked, for a caller that knows both are in range (the per-frame path of
#: ``SpdySession.send_data``); :meth:`FrameEncoder.data_header` is the checked form.
pack_data_header: Final = _FRAME_HEADER.pack
_UINT32 = struct.Struct(">I")
_TWO_UINT32 = struct.Struct(">II")
_SYN_STREAM_FIELDS = struct.Struct(">IIBB")  # id, associated id, priority << 5, slot
_SETTING = struct.Struct(">II")  # flags << 24 | id, value
_CONTROL_BIT = 0x80000000
_ID_MASK = 0x7FFFFFFF
_LENGTH_MASK = 0xFFFFFF
_FIN_FLAG_BITS = FLAG_FIN << 24  # FIN in a frame header's flags-and-length word

_SYN_STREAM_PREFIX = 10
_STREAM_ID_PREFIX = 4

# Fixed payload lengths Go's reader relies on (read.go; RST_STREAM is our addition).
_FIXED_LENGTHS = {RST_STREAM: 8, PING: 4, GOAWAY: 8, WINDOW_UPDATE: 8}
# Smallest payloads of the variable-length frames: the fields before the header block.
_MIN_LENGTHS = {SYN_STREAM: _SYN_STREAM_PREFIX, SYN_REPLY: _STREAM_ID_PREFIX,
                HEADERS: _STREAM_ID_PREFIX, SETTINGS: 4}
# Types whose flags byte Go requires to be zero (read.go PingFrame/GoAwayFrame/WindowUpdate).
_NO_FLAG_TYPES = frozenset({PING, GOAWAY, WINDOW_UPDATE})


def _remote_error(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(message, spdy_status=GoAwayStatus.PROTOCOL_ERROR)


# --------------------------------------------------------------------------- decoder


@dataclass(frozen=True, slots=True)
class _ControlHeader:
    frame_type: int
    flags: int
    length: int


class FrameDecoder:
    """Streaming SPDY/3.1 frame decoder: bytes in, frames out.

    Linear in the bytes fed, whatever the split points: a frame header or control frame
    split across calls is completed from the next ones, DATA payload is handed out as
    :class:`DataFrame` pieces without waiting for the rest of the frame. Every error is a
    :class:`RemoteProtocolError` with ``spdy_status`` GOAWAY PROTOCOL_ERROR; after one,
    every further :meth:`feed` raises again. Frames decoded earlier in the failing call are
    lost with it (the session is over anyway).
    """

    __slots__ = (
        "_buffer",
        "_control",
        "_data_fin",
        "_data_left",
        "_data_stream",
        "_failed",
        "_headers",
        "_max_control_frame_size",
        "_skip_left",
        "_skipped",
    )

    def __init__(self, *, max_control_frame_size: int = 1 << 20,
                 max_header_block_size: int = 256 * 1024, max_headers: int = 1024) -> None:
        """Create a decoder for one direction of one session.

        Args:
            max_control_frame_size: Largest control frame payload buffered; a bigger one is
                refused as soon as its 8-byte header is seen.
            max_header_block_size: Most bytes one header block may inflate to.
            max_headers: Most headers (and values) in one header block.
        """
        self._max_control_frame_size = max_control_frame_size
        self._headers = HeaderDecompressor(max_block_size=max_header_block_size,
                                           max_headers=max_headers)
        # Bytes of an incomplete frame header, or of an incomplete control payload.
        self._buffer = bytearray()
        # The header of the control frame whose payload is being collected.
        self._control: _ControlHeader | None = None
        # The DATA frame whose payload is being streamed out.
        self._data_stream = 0
        self._data_left = 0
        self._data_fin = False
        # The unknown control frame whose payload is being skipped.
        self._skipped: UnknownControlFrame | None = None
        self._skip_left = 0
        self._failed = False

    @property
    def has_partial_frame(self) -> bool:
        """Whether a frame has begun but not ended (bytes missing at EOF = truncation)."""
        return bool(self._buffer or self._control or self._data_left or self._skip_left)

    def feed(self, data: bytes | bytearray | memoryview, *,
             borrow: bool = False) -> list[Frame]:
        """Decode as many frames as ``data`` completes.

        DATA payload pieces taken from ``bytes`` (or a view of ``bytes``) are zero-copy
        ``memoryview`` slices of it; from any other buffer they are ``bytes`` copies, so the
        caller may reuse or resize its buffer.

        Args:
            data: The next bytes of the stream; ``b""`` decodes nothing.
            borrow: Hand DATA pieces out as ``memoryview`` slices of ``data`` whatever its
                type, copying nothing. The caller then copies what it keeps before it
                changes ``data`` or lets go of it (:class:`~kstream._spdy.session.SpdySession`
                does: it copies each run of pieces once, into one ``bytes``).

        Returns:
            The frames (and DATA pieces) completed, in wire order.

        Raises:
            RemoteProtocolError: The bytes break the protocol.
        """
        if self._failed:
            raise _remote_error("SPDY frame decoder is unusable after an earlier error")
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        frames: list[Frame] = []
        try:
            self._consume(view, frames, borrow)
        except RemoteProtocolError:
            self._failed = True
            raise
        return frames

    def _consume(self, view: memoryview, frames: list[Frame], borrow: bool) -> None:
        # Handing out views is only safe when nobody can change or resize the bytes under
        # them: a view of a caller's bytearray would also block the caller's next resize.
        zero_copy = borrow or (view.readonly and isinstance(view.obj, bytes))
        position, end = 0, len(view)
        unpack_header = _FRAME_HEADER.unpack_from
        while position < end:
            if self._data_left:
                position = self._take_data(view, position, zero_copy, frames)
            elif self._skip_left:
                position = self._skip_payload(view, position, end, frames)
            elif not self._buffer and self._control is None and end - position >= 8:
                # Fast path, the bulk of a transfer: a whole non-empty DATA frame in this
                # chunk is cut out in place, with no per-frame method calls. Anything else
                # (control frames, empty or partial DATA) takes the general path below,
                # which parses the header again.
                stream_id, flags_and_length = unpack_header(view, position)
                length = flags_and_length & _LENGTH_MASK
                start = position + 8
                if (stream_id and not stream_id & _CONTROL_BIT and length
                        and end - start >= length):
                    piece = view[start:start + length]
                    frames.append(DataFrame(stream_id,
                                            piece if zero_copy else piece.tobytes(),
                                            bool(flags_and_length >> 24 & FLAG_FIN)))
                    position = start + length
                else:
                    position = self._take_unit(view, position, end, frames)
            else:
                position = self._take_unit(view, position, end, frames)

    def _take_data(self, view: memoryview, position: int, zero_copy: bool,
                   frames: list[Frame]) -> int:
        size = min(self._data_left, len(view) - position)
        piece = view[position:position + size]
        self._data_left -= size
        finished = self._data_fin and not self._data_left
        frames.append(DataFrame(self._data_stream, piece if zero_copy else piece.tobytes(),
                                finished))
        return position + size

    def _skip_payload(self, view: memoryview, position: int, end: int,
                      frames: list[Frame]) -> int:
        size = min(self._skip_left, end - position)
        self._skip_left -= size
        if not self._skip_left and self._skipped is not None:
            frames.append(self._skipped)
            self._skipped = None
        return position + size

    def _take_unit(self, view: memoryview, position: int, end: int,
                   frames: list[Frame]) -> int:
        """Collect the next frame header or control payload; decode it once complete."""
        need = 8 if self._control is None else self._control.length
        if not self._buffer and end - position >= need:
            # Fast path: the whole unit is in this chunk; parse it in place.
            self._decode_unit(view[position:position + need], frames)
            return position + need
        size = min(need - len(self._buffer), end - position)
        self._buffer += view[position:position + size]
        if len(self._buffer) == need:
            with memoryview(self._buffer) as unit:
                self._decode_unit(unit, frames)
            self._buffer.clear()
        return position + size

    def _decode_unit(self, unit: memoryview, frames: list[Frame]) -> None:
        control = self._control
        if control is None:
            self._decode_frame_header(unit, frames)
        else:
            self._control = None
            frames.append(self._decode_control(control, unit))

    def _decode_frame_header(self, header: memoryview, frames: list[Frame]) -> None:
        first_word, flags_and_length = _FRAME_HEADER.unpack_from(header)
        flags = flags_and_length >> 24
        length = flags_and_length & _LENGTH_MASK
        if first_word & _CONTROL_BIT:
            self._start_control(first_word, flags, length, frames)
        else:
            self._start_data(first_word, flags, length, frames)

    def _start_data(self, stream_id: int, flags: int, length: int,
                    frames: list[Frame]) -> None:
        if stream_id == 0:
            raise _remote_error("DATA frame on stream 0")  # read.go parseDataFrame
        # Go ignores DATA flag bits other than FIN, and so do we.
        fin = bool(flags & FLAG_FIN)
        if length:
            self._data_stream, self._data_left, self._data_fin = stream_id, length, fin
        elif fin:
            frames.append(DataFrame(stream_id, b"", True))

    def _start_control(self, first_word: int, flags: int, length: int,
                       frames: list[Frame]) -> None:
        version = (first_word >> 16) & 0x7FFF
        frame_type = first_word & 0xFFFF
        if version != SPDY_VERSION:
            raise _remote_error(f"control frame of SPDY version {version}, expected 3")
        if frame_type not in _KNOWN_TYPES:
            skipped = UnknownControlFrame(frame_type, flags, length)
            if length:
                self._skipped, self._skip_left = skipped, length
            else:
                frames.append(skipped)
            return
        if length > self._max_control_frame_size:
            raise _remote_error(f"control frame of type {frame_type} has {length} bytes, "
                                f"limit {self._max_control_frame_size}")
        _check_control_shape(frame_type, flags, length)
        self._control = _ControlHeader(frame_type, flags, length)

    def _decode_control(self, header: _ControlHeader, payload: memoryview) -> Frame:
        decode = _CONTROL_DECODERS[header.frame_type]
        return decode(self, header.flags, payload)

    # One method per control type; lengths were checked against the header already.

    def _syn_stream(self, flags: int, payload: memoryview) -> Frame:
        stream_id, associated_id, priority, slot = _SYN_STREAM_FIELDS.unpack_from(payload)
        headers = self._headers.decompress(payload[_SYN_STREAM_PREFIX:],
                                           forbidden_names=FORBIDDEN_REQUEST_HEADERS)
        return SynStreamFrame(_nonzero_stream_id(stream_id, "SYN_STREAM"),
                              associated_id & _ID_MASK, priority >> 5, slot, headers,
                              bool(flags & FLAG_FIN), bool(flags & FLAG_UNIDIRECTIONAL))

    def _syn_reply(self, flags: int, payload: memoryview) -> Frame:
        stream_id: int = _UINT32.unpack_from(payload)[0]
        headers = self._headers.decompress(payload[_STREAM_ID_PREFIX:],
                                           forbidden_names=FORBIDDEN_RESPONSE_HEADERS)
        return SynReplyFrame(_nonzero_stream_id(stream_id, "SYN_REPLY"), headers,
                             bool(flags & FLAG_FIN))

    def _headers_frame(self, flags: int, payload: memoryview) -> Frame:
        stream_id: int = _UINT32.unpack_from(payload)[0] & _ID_MASK
        # read.go readHeadersFrame: even (server-initiated) ids get the request list.
        forbidden = FORBIDDEN_REQUEST_HEADERS if stream_id % 2 == 0 else FORBIDDEN_RESPONSE_HEADERS
        headers = self._headers.decompress(payload[_STREAM_ID_PREFIX:],
                                           forbidden_names=forbidden)
        return HeadersFrame(_nonzero_stream_id(stream_id, "HEADERS"), headers,
                            bool(flags & FLAG_FIN))

    def _rst_stream(self, flags: int, payload: memoryview) -> Frame:
        stream_id, status = _TWO_UINT32.unpack_from(payload)
        if status == 0:
            raise _remote_error("RST_STREAM with status 0")  # read.go InvalidControlFrame
        return RstStreamFrame(_nonzero_stream_id(stream_id, "RST_STREAM"), status)

    def _settings(self, flags: int, payload: memoryview) -> Frame:
        count: int = _UINT32.unpack_from(payload)[0]
        if len(payload) != 4 + 8 * count:
            raise _remote_error(f"SETTINGS of {len(payload)} bytes claims {count} entries")
        entries = tuple((flags_and_id >> 24, flags_and_id & _MAX_SETTING_ID, value)
                        for flags_and_id, value in _SETTING.iter_unpack(payload[4:]))
        return SettingsFrame(entries, bool(flags & FLAG_CLEAR_SETTINGS))

    def _ping(self, flags: int, payload: memoryview) -> Frame:
        ping_id: int = _UINT32.unpack_from(payload)[0]
        if ping_id == 0:
            raise _remote_error("PING with id 0")  # read.go PingFrame.read
        return PingFrame(ping_id)

    def _goaway(self, flags: int, payload: memoryview) -> Frame:
        last_good, status = _TWO_UINT32.unpack_from(payload)
        return GoAwayFrame(last_good & _ID_MASK, status)

    def _window_update(self, flags: int, payload: memoryview) -> Frame:
        stream_id, delta = _TWO_UINT32.unpack_from(payload)
        return WindowUpdateFrame(stream_id & _ID_MASK, delta & _ID_MASK)


_CONTROL_DECODERS = {
    SYN_STREAM: FrameDecoder._syn_stream,
    SYN_REPLY: FrameDecoder._syn_reply,
    RST_STREAM: FrameDecoder._rst_stream,
    SETTINGS: FrameDecoder._settings,
    PING: FrameDecoder._ping,
    GOAWAY: FrameDecoder._goaway,
    HEADERS: FrameDecoder._headers_frame,
    WINDOW_UPDATE: FrameDecoder._window_update,
}
_KNOWN_TYPES = frozenset(_CONTROL_DECODERS)


def _check_control_shape(frame_type: int, flags: int, length: int) -> None:
    """Refuse, from its header alone, a control frame whose length or flags cannot be right."""
    fixed = _FIXED_LENGTHS.get(frame_type)
    if fixed is not None and length != fixed:
        raise _remote_error(f"control frame of type {frame_type} has length {length}, "
                            f"expected {fixed}")
    if length < _MIN_LENGTHS.get(frame_type, 0):
        raise _remote_error(f"control frame of type {frame_type} is too short ({length} bytes)")
    if frame_type == SETTINGS and (length - 4) % 8:
        raise _remote_error(f"SETTINGS length {length} is not 4 + 8 * entries")
    if flags and frame_type in _NO_FLAG_TYPES:
        raise _remote_error(f"control frame of type {frame_type} has flags {flags:#x}")


def _nonzero_stream_id(raw_id: int, frame_name: str) -> int:
    stream_id = raw_id & _ID_MASK
    if stream_id == 0:
        raise _remote_error(f"{frame_name} on stream 0")  # spdy/types.go ZeroStreamId
    return stream_id


# --------------------------------------------------------------------------- encoder


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or not low <= value <= high:
        raise LocalProtocolError(f"{name} must be an int in {low}..{high}, not {value!r}")


def _control_header(frame_type: int, flags: int, length: int) -> bytes:
    return _FRAME_HEADER.pack(_CONTROL_BIT | SPDY_VERSION << 16 | frame_type,
                              flags << 24 | length)


class FrameEncoder:
    """SPDY/3.1 frame encoder: calls in, bytes out.

    Owns the outbound header compressor, so one session uses one encoder, and header-carrying
    frames must be sent in the order they were encoded. Arguments are validated before the
    compressor is touched; a refused call raises :class:`LocalProtocolError` and changes
    nothing.
    """

    __slots__ = ("_compressor",)

    def __init__(self) -> None:
        """Create an encoder with a fresh outbound zlib stream."""
        self._compressor = HeaderCompressor()

    def data_header(self, stream_id: int, length: int, fin: bool = False) -> bytes:
        """Return the 8-byte header of a DATA frame, to write the payload after it unchanged.

        Args:
            stream_id: 1..2^31-1.
            length: Payload length, 0..2^24-1.
            fin: Whether this frame half-closes the stream.

        Returns:
            The frame header.

        Raises:
            LocalProtocolError: An argument is out of range.
        """
        # The common case costs two type checks and two comparisons; anything else gets
        # the full checks (and their error message).
        if not (type(stream_id) is int and type(length) is int
                and 0 < stream_id <= MAX_STREAM_ID and 0 <= length <= MAX_FRAME_LENGTH):
            _check_int("stream id", stream_id, 1, MAX_STREAM_ID)
            _check_int("DATA length", length, 0, MAX_FRAME_LENGTH)
        return _FRAME_HEADER.pack(stream_id, _FIN_FLAG_BITS | length if fin else length)

    def data(self, stream_id: int, payload: bytes | bytearray | memoryview,
             fin: bool = False) -> bytes:
        """Return a whole DATA frame.

        Args:
            stream_id: 1..2^31-1.
            payload: At most 2^24-1 bytes.
            fin: Whether this frame half-closes the stream (an empty FIN frame is Go's
                ``Stream.Close``).

        Returns:
            The frame.

        Raises:
            LocalProtocolError: An argument is out of range.
        """
        return self.data_header(stream_id, memoryview(payload).nbytes, fin) + payload

    def syn_stream(self, stream_id: int, headers: Iterable[tuple[str, str]], *,
                   fin: bool = False, unidirectional: bool = False, priority: int = 0,
                   associated_id: int = 0, slot: int = 0) -> bytes:
        """Return a SYN_STREAM frame.

        Args:
            stream_id: 1..2^31-1.
            headers: ``(name, value)`` pairs; ``connection``, ``host``, ``keep-alive``,
                ``proxy-connection`` and ``transfer-encoding`` are refused (Go would end the
                connection).
            fin: Half-close the stream at once.
            unidirectional: The peer shall not send on the stream.
            priority: 0..7, 0 highest.
            associated_id: 0..2^31-1.
            slot: 0..255.

        Returns:
            The frame.

        Raises:
            LocalProtocolError: An argument or header is invalid.
        """
        _check_int("stream id", stream_id, 1, MAX_STREAM_ID)
        _check_int("associated stream id", associated_id, 0, MAX_STREAM_ID)
        _check_int("priority", priority, 0, 7)
        _check_int("slot", slot, 0, 255)
        block = self._compress(headers, FORBIDDEN_REQUEST_HEADERS, _SYN_STREAM_PREFIX)
        flags = (FLAG_FIN if fin else 0) | (FLAG_UNIDIRECTIONAL if unidirectional else 0)
        return b"".join((
            _control_header(SYN_STREAM, flags, _SYN_STREAM_PREFIX + len(block)),
            _SYN_STREAM_FIELDS.pack(stream_id, associated_id, priority << 5, slot),
            block,
        ))

    def syn_reply(self, stream_id: int, headers: Iterable[tuple[str, str]] = (), *,
                  fin: bool = False) -> bytes:
        """Return a SYN_REPLY frame (Kubernetes sends it with no headers and no FIN).

        Args:
            stream_id: 1..2^31-1.
            headers: ``(name, value)`` pairs (``host`` allowed, as in Go).
            fin: Half-close the stream at once.

        Returns:
            The frame.

        Raises:
            LocalProtocolError: An argument or header is invalid.
        """
        _check_int("stream id", stream_id, 1, MAX_STREAM_ID)
        block = self._compress(headers, FORBIDDEN_RESPONSE_HEADERS, _STREAM_ID_PREFIX)
        return self._stream_headers_frame(SYN_REPLY, stream_id, block, fin)

    def headers(self, stream_id: int, headers: Iterable[tuple[str, str]], *,
                fin: bool = False) -> bytes:
        """Return a HEADERS frame.

        Args:
            stream_id: 1..2^31-1.
            headers: ``(name, value)`` pairs; refused names depend on the id's parity as in
                Go's reader.
            fin: Half-close the stream.

        Returns:
            The frame.

        Raises:
            LocalProtocolError: An argument or header is invalid.
        """
        _check_int("stream id", stream_id, 1, MAX_STREAM_ID)
        forbidden = FORBIDDEN_REQUEST_HEADERS if stream_id % 2 == 0 else FORBIDDEN_RESPONSE_HEADERS
        block = self._compress(headers, forbidden, _STREAM_ID_PREFIX)
        return self._stream_headers_frame(HEADERS, stream_id, block, fin)

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        """Return a RST_STREAM frame.

        Args:
            stream_id: 1..2^31-1.
            status: A :class:`RstStatus` (1..2^32-1; 0 is invalid).

        Returns:
            The frame.

        Raises:
            LocalProtocolError: An argument is out of range.
        """
        _check_int("stream id", stream_id, 1, MAX_STREAM_ID)
        _check_int("RST_STREAM status", status, 1, _MAX_UINT32)
        return _control_header(RST_STREAM, 0, 8) + _TWO_UINT32.pack(stream_id, status)

    def settings(self, entries: Sequence[tuple[int, int, int]], *, clear: bool = False) -> bytes:
        """Return a SETTINGS frame.

        Args:
            entries: ``(flags, id, value)`` triples: flags 0..255, id 0..2^24-1, value
                0..2^32-1.
            clear: Set CLEAR_SETTINGS.

        Returns:
            The frame.

        Raises:
            LocalProtocolError: An entry is malformed, or there are too many.
        """
        body = [_UINT32.pack(len(entries))]
        for entry in entries:
            try:
                flags, setting_id, value = entry
            except (TypeError, ValueError):
                raise LocalProtocolError(
                    f"a setting is (flags, id, value), not {entry!r}") from None
            _check_int("setting flags", flags, 0, 255)
            _check_int("setting id", setting_id, 0, _MAX_SETTING_ID)
            _check_int("setting value", value, 0, _MAX_UINT32)
            body.append(_SETTING.pack(flags << 24 | setting_id, value))
        length = 8 * len(entries) + 4
        if length > MAX_FRAME_LENGTH:
            raise LocalProtocolError(f"{len(entries)} settings do not fit in one frame")
        flags = FLAG_CLEAR_SETTINGS if clear else 0
        return _control_header(SETTINGS, flags, length) + b"".join(body)

    def ping(self, ping_id: int) -> bytes:
        """Return a PING frame.

        Args:
            ping_id: 1..2^32-1 (clients odd, servers even: Go echoes only the other parity).

        Returns:
            The frame.

        Raises:
            LocalProtocolError: The id is out of range.
        """
        _check_int("ping id", ping_id, 1, _MAX_UINT32)
        return _control_header(PING, 0, 4) + _UINT32.pack(ping_id)

    def goaway(self, last_good_stream_id: int, status: int = 0) -> bytes:
        """Return a GOAWAY frame.

        Args:
            last_good_stream_id: Last peer stream id accepted, 0..2^31-1.
            status: A :class:`GoAwayStatus` (0..2^32-1).

        Returns:
            The frame.

        Raises:
            LocalProtocolError: An argument is out of range.
        """
        _check_int("last good stream id", last_good_stream_id, 0, MAX_STREAM_ID)
        _check_int("GOAWAY status", status, 0, _MAX_UINT32)
        return _control_header(GOAWAY, 0, 8) + _TWO_UINT32.pack(last_good_stream_id, status)

    def window_update(self, stream_id: int, delta: int) -> bytes:
        """Return a WINDOW_UPDATE frame (Go ignores these; Kubernetes peers never send them).

        Args:
            stream_id: 0..2^31-1 (0: the session window).
            delta: 1..2^31-1.

        Returns:
            The frame.

        Raises:
            LocalProtocolError: An argument is out of range.
        """
        _check_int("stream id", stream_id, 0, MAX_STREAM_ID)
        _check_int("window delta", delta, 1, MAX_STREAM_ID)
        return _control_header(WINDOW_UPDATE, 0, 8) + _TWO_UINT32.pack(stream_id, delta)

    def encode(self, frame: Frame) -> bytes:
        """Return the bytes of any frame object, by dispatching to the methods above.

        Args:
            frame: Any frame but :class:`UnknownControlFrame`.

        Returns:
            The frame's bytes.

        Raises:
            LocalProtocolError: The frame is invalid or cannot be encoded.
        """
        match frame:
            case DataFrame():
                return self.data(frame.stream_id, frame.data, frame.fin)
            case SynStreamFrame():
                return self.syn_stream(frame.stream_id, frame.headers, fin=frame.fin,
                                       unidirectional=frame.unidirectional,
                                       priority=frame.priority,
                                       associated_id=frame.associated_id, slot=frame.slot)
            case SynReplyFrame():
                return self.syn_reply(frame.stream_id, frame.headers, fin=frame.fin)
            case RstStreamFrame():
                return self.rst_stream(frame.stream_id, frame.status)
            case SettingsFrame():
                return self.settings(frame.entries, clear=frame.clear)
            case PingFrame():
                return self.ping(frame.ping_id)
            case GoAwayFrame():
                return self.goaway(frame.last_good_stream_id, frame.status)
            case HeadersFrame():
                return self.headers(frame.stream_id, frame.headers, fin=frame.fin)
            case WindowUpdateFrame():
                return self.window_update(frame.stream_id, frame.delta)
            case _:
                raise LocalProtocolError(f"cannot encode {frame!r}")

    def _compress(self, headers: Iterable[tuple[str, str]], forbidden: frozenset[str],
                  prefix: int) -> bytes:
        return self._compressor.compress(headers, forbidden_names=forbidden,
                                         max_compressed_size=MAX_FRAME_LENGTH - prefix)

    @staticmethod
    def _stream_headers_frame(frame_type: int, stream_id: int, block: bytes, fin: bool) -> bytes:
        return b"".join((
            _control_header(frame_type, FLAG_FIN if fin else 0, _STREAM_ID_PREFIX + len(block)),
            _UINT32.pack(stream_id),
            block,
        ))
