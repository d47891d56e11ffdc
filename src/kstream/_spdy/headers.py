"""SPDY/3 header blocks: the uncompressed name/value layout and its zlib compression.

A SPDY/3 header block (``moby/spdystream`` ``spdy/write.go`` ``writeHeaderValueBlock``,
``spdy/read.go`` ``parseHeaderValueBlock``) is::

    uint32 number-of-headers
    repeat: uint32 name-length, name, uint32 value-length, value

with lower-case names and the values of one name joined by NUL. Blocks travel compressed:
each direction of a session has ONE zlib stream, primed with the SPDY/3 dictionary, whose
state persists across every SYN_STREAM, SYN_REPLY and HEADERS frame; each block ends with a
sync flush so that it can be inflated from its own frame's bytes alone.

Headers are ``tuple[tuple[str, str], ...]``: names lower-case, a multi-valued header as
several pairs with the same name, in wire order.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterable
from typing import TypeAlias

from .._errors import LocalProtocolError, RemoteProtocolError
from .dictionary import HEADER_DICTIONARY

__all__ = [
    "FORBIDDEN_REQUEST_HEADERS",
    "FORBIDDEN_RESPONSE_HEADERS",
    "HeaderCompressor",
    "HeaderDecompressor",
    "Headers",
    "compressed_size_bound",
    "decode_header_block",
    "encode_header_block",
]

#: Decoded headers: ``(name, value)`` pairs, names lower-case, wire order.
Headers: TypeAlias = tuple[tuple[str, str], ...]

#: Connection-specific headers a Go reader refuses in a SYN_STREAM (``spdy/types.go``
#: ``invalidReqHeaders``); receiving one ends the whole connection on the Go side.
FORBIDDEN_REQUEST_HEADERS = frozenset(
    {"connection", "host", "keep-alive", "proxy-connection", "transfer-encoding"}
)
#: The same for a SYN_REPLY (``invalidRespHeaders``): ``host`` is allowed there.
FORBIDDEN_RESPONSE_HEADERS = FORBIDDEN_REQUEST_HEADERS - {"host"}

# GOAWAY PROTOCOL_ERROR (spdy/types.go GoAwayProtocolError); kept literal so this codec does
# not depend on the frame module above it.
_GOAWAY_PROTOCOL_ERROR = 1

_UINT32 = struct.Struct(">I")
_VALUE_SEPARATOR = "\x00"

# A header name: visible ASCII except upper-case letters. Go rejects a name that changes when
# lower-cased (read.go parseHeaderValueBlock); control characters, spaces, DEL and non-ASCII
# cannot be HTTP field names either. SPDY pseudo-headers such as ":host" stay legal.
_NAME_BYTES = re.compile(rb"[!-@\[-~]+\Z")
_NAME_TEXT = re.compile(r"[!-@\[-~]+\Z")

_ZLIB_LEVEL = 9  # Go's zlib.BestCompression.
# Our compressor only ever sees tiny header blocks, so it needs neither Go's 32 KiB window
# nor its default memory level: a 2 KiB window (which still holds the whole 1423-byte
# dictionary) and memLevel 1 cut its state from ~390 KiB to ~20 KiB per session, which is
# most of what an idle SPDY session costs. Any inflater accepts any window up to 32 KiB
# (the zlib header says which), Go's included.
_ZLIB_COMPRESS_WINDOW_BITS = 11
_ZLIB_MEM_LEVEL = 1
# The peer chooses its window; 15 bits accepts every one.
_ZLIB_DECOMPRESS_WINDOW_BITS = 15


def _remote_error(message: str) -> RemoteProtocolError:
    return RemoteProtocolError(message, spdy_status=_GOAWAY_PROTOCOL_ERROR)


# --------------------------------------------------------------------------- encoding


def encode_header_block(
    headers: Iterable[tuple[str, str]],
    *,
    forbidden_names: frozenset[str] = FORBIDDEN_REQUEST_HEADERS,
) -> bytes:
    """Serialise headers as an uncompressed SPDY/3 header block.

    Names are lower-cased; the values of a repeated name are joined with NUL under the
    first occurrence, in first-seen order (SPDY/3 forbids the same name twice in a block).

    Args:
        headers: ``(name, value)`` pairs of ``str``.
        forbidden_names: Lower-case names refused because the peer would reject the block
            (defaults to the connection-specific headers Go refuses in a SYN_STREAM).

    Returns:
        The block: ``uint32`` count, then length-prefixed name and value per header.

    Raises:
        LocalProtocolError: A name is empty, not ASCII, contains a space or control
            character, or is forbidden; a value contains NUL; a pair is not two ``str``.
    """
    grouped: dict[str, list[str]] = {}
    for pair in headers:
        name, value = _checked_pair(pair, forbidden_names)
        grouped.setdefault(name, []).append(value)
    parts = [_UINT32.pack(len(grouped))]
    for name, values in grouped.items():
        name_bytes = name.encode("ascii")
        value_bytes = _VALUE_SEPARATOR.join(values).encode("utf-8")
        parts += (_UINT32.pack(len(name_bytes)), name_bytes,
                  _UINT32.pack(len(value_bytes)), value_bytes)
    return b"".join(parts)


def _checked_pair(pair: tuple[str, str], forbidden_names: frozenset[str]) -> tuple[str, str]:
    """Validate one caller-supplied header and return it with its name lower-cased."""
    try:
        name, value = pair
    except (TypeError, ValueError):
        raise LocalProtocolError(f"a header must be a (name, value) pair, not {pair!r}") from None
    if not isinstance(name, str) or not isinstance(value, str):
        raise LocalProtocolError(f"header name and value must be str, not {pair!r}")
    name = name.lower()
    if not _NAME_TEXT.match(name):
        raise LocalProtocolError(f"invalid SPDY header name {name!r}")
    if name in forbidden_names:
        raise LocalProtocolError(f"header {name!r} is connection-specific; SPDY forbids it")
    if _VALUE_SEPARATOR in value:
        raise LocalProtocolError(f"value of header {name!r} contains NUL, the value separator")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"value of header {name!r} is not encodable as UTF-8") from None
    return name, value


def compressed_size_bound(raw_size: int) -> int:
    """Return an upper bound of the compressed size of a ``raw_size``-byte block.

    zlib's ``deflateBound`` plus the 6-byte zlib wrapper and room for the sync-flush marker
    (an empty stored block) and a pending partial byte.

    Args:
        raw_size: Length of the uncompressed header block.

    Returns:
        The bound, in bytes.
    """
    return (raw_size + (raw_size >> 12) + (raw_size >> 14) + (raw_size >> 25)
            + 13 + 6 + 10)


class HeaderCompressor:
    """The outbound zlib stream of one SPDY session (one per direction, for its whole life).

    Like Go's ``zlib.NewWriterLevelDict(..., BestCompression, dictionary)`` but with a
    2 KiB window and the smallest memory level (see ``_ZLIB_COMPRESS_WINDOW_BITS``); each
    block ends with a sync flush (``00 00 FF FF``). The compressed bytes differ from Go's,
    but Go inflates them (protocol-notes section 3.3).
    """

    __slots__ = ("_zlib",)

    def __init__(self) -> None:
        """Create the zlib stream, primed with the SPDY/3 dictionary."""
        self._zlib = zlib.compressobj(_ZLIB_LEVEL, zlib.DEFLATED, _ZLIB_COMPRESS_WINDOW_BITS,
                                      _ZLIB_MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY,
                                      zdict=HEADER_DICTIONARY)

    def compress(
        self,
        headers: Iterable[tuple[str, str]],
        *,
        forbidden_names: frozenset[str] = FORBIDDEN_REQUEST_HEADERS,
        max_compressed_size: int | None = None,
    ) -> bytes:
        """Encode and compress one header block, continuing the session's zlib stream.

        The block is validated, and checked against ``max_compressed_size``, BEFORE the zlib
        stream is touched: a block that is refused leaves the stream in step with the peer's.

        Args:
            headers: ``(name, value)`` pairs, see :func:`encode_header_block`.
            forbidden_names: Names refused, see :func:`encode_header_block`.
            max_compressed_size: Refuse a block whose compressed form could exceed this.

        Returns:
            The compressed block, ending with a sync flush.

        Raises:
            LocalProtocolError: Invalid headers, or a block that might be too large.
        """
        raw = encode_header_block(headers, forbidden_names=forbidden_names)
        bound = compressed_size_bound(len(raw))
        if max_compressed_size is not None and bound > max_compressed_size:
            raise LocalProtocolError(
                f"header block of {len(raw)} bytes may exceed {max_compressed_size} bytes "
                "once compressed")
        return self._zlib.compress(raw) + self._zlib.flush(zlib.Z_SYNC_FLUSH)


# --------------------------------------------------------------------------- decoding


def decode_header_block(
    raw: bytes | bytearray | memoryview,
    *,
    max_headers: int = 1024,
    forbidden_names: frozenset[str] = FORBIDDEN_REQUEST_HEADERS,
) -> Headers:
    """Parse an uncompressed SPDY/3 header block.

    The block must parse exactly: every length within bounds and no trailing bytes. Values
    are split on NUL, so a multi-valued header yields one pair per value.

    Args:
        raw: The inflated block.
        max_headers: Most names in the block, and most ``(name, value)`` pairs after values
            are split on NUL.
        forbidden_names: Lower-case names that make the block invalid (defaults to Go's
            SYN_STREAM list, ``spdy/types.go`` ``invalidReqHeaders``).

    Returns:
        ``(name, value)`` pairs in wire order.

    Raises:
        RemoteProtocolError: Truncated or trailing bytes, too many headers, an empty,
            upper-case, non-ASCII, duplicate or forbidden name, or a value that is not UTF-8.
            ``spdy_status`` is GOAWAY PROTOCOL_ERROR.
    """
    view = memoryview(raw).cast("B")
    total = len(view)
    count = _read_uint32(view, 0, "header count")
    # Each header takes at least 8 bytes (two lengths): a cheap bound before the loop.
    if count > max_headers or count * 8 > total - 4:
        raise _remote_error(f"header block claims {count} headers in {total} bytes "
                            f"(limit {max_headers})")
    offset = 4
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for _ in range(count):
        name_bytes, offset = _read_string(view, offset, "header name")
        value_bytes, offset = _read_string(view, offset, "header value")
        name = _checked_name(name_bytes, seen, forbidden_names)
        try:
            value = value_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise _remote_error(f"value of header {name!r} is not UTF-8") from None
        pairs.extend((name, item) for item in value.split(_VALUE_SEPARATOR))
        if len(pairs) > max_headers:
            raise _remote_error(f"header block has more than {max_headers} values")
    if offset != total:
        raise _remote_error(f"header block has {total - offset} trailing bytes")
    return tuple(pairs)


def _read_uint32(view: memoryview, offset: int, what: str) -> int:
    if offset + 4 > len(view):
        raise _remote_error(f"header block truncated in {what}")
    value: int = _UINT32.unpack_from(view, offset)[0]
    return value


def _read_string(view: memoryview, offset: int, what: str) -> tuple[bytes, int]:
    length = _read_uint32(view, offset, f"{what} length")
    start = offset + 4
    end = start + length
    if end > len(view):
        raise _remote_error(f"{what} length {length} runs past the header block")
    return bytes(view[start:end]), end


def _checked_name(name_bytes: bytes, seen: set[str], forbidden_names: frozenset[str]) -> str:
    """Validate one received header name, as Go's reader does, and record it in ``seen``."""
    if not _NAME_BYTES.match(name_bytes):
        # Go: UnlowercasedHeaderName (read.go parseHeaderValueBlock); we also refuse empty,
        # control-character and non-ASCII names, which no Kubernetes peer sends.
        raise _remote_error(f"invalid header name {name_bytes[:64]!r}")
    name = name_bytes.decode("ascii")
    if name in seen:
        raise _remote_error(f"header {name!r} appears twice in one block")  # DuplicateHeaders
    if name in forbidden_names:
        raise _remote_error(f"forbidden connection-specific header {name!r}")
    seen.add(name)
    return name


class HeaderDecompressor:
    """The inbound zlib stream of one SPDY session (one per direction, for its whole life).

    Each compressed block must inflate from exactly its own bytes: Go's reader fails with
    "compressed payload size was incorrect" otherwise (``spdy/read.go``). Inflation is
    bounded WHILE it runs, so a zlib bomb costs at most ``max_block_size`` bytes of memory.
    After any error the stream is out of step with the peer's, so every later call fails.
    """

    __slots__ = ("_broken", "_max_block_size", "_max_headers", "_zlib")

    def __init__(self, *, max_block_size: int = 256 * 1024, max_headers: int = 1024) -> None:
        """Create the zlib stream, primed with the SPDY/3 dictionary.

        Args:
            max_block_size: Most bytes one block may inflate to.
            max_headers: Most headers (and values) in one block.
        """
        self._zlib = zlib.decompressobj(_ZLIB_DECOMPRESS_WINDOW_BITS, zdict=HEADER_DICTIONARY)
        self._max_block_size = max_block_size
        self._max_headers = max_headers
        self._broken = False

    def decompress(
        self,
        block: bytes | bytearray | memoryview,
        *,
        forbidden_names: frozenset[str] = FORBIDDEN_REQUEST_HEADERS,
    ) -> Headers:
        """Inflate and parse one compressed header block.

        Args:
            block: The compressed bytes of one frame's header block, exactly.
            forbidden_names: Names that make the block invalid, see
                :func:`decode_header_block`.

        Returns:
            ``(name, value)`` pairs in wire order.

        Raises:
            RemoteProtocolError: Corrupt zlib data, bytes past the end of the zlib stream,
                a block inflating to more than ``max_block_size``, or an invalid block.
        """
        if self._broken:
            raise _remote_error("header decompressor is unusable after an earlier error")
        self._broken = True  # until this block has been inflated and parsed cleanly
        raw = self._inflate(block)
        headers = decode_header_block(raw, max_headers=self._max_headers,
                                      forbidden_names=forbidden_names)
        self._broken = False
        return headers

    def _inflate(self, block: bytes | bytearray | memoryview) -> bytes:
        limit = self._max_block_size
        try:
            # Asking for one byte more than allowed is the bound: zlib stops producing output
            # there (the rest of the input is parked in unconsumed_tail), so a bomb never
            # inflates past limit + 1 bytes. A shorter result means all input was consumed.
            raw = self._zlib.decompress(block, limit + 1)
        except zlib.error as exc:
            raise _remote_error(f"corrupt compressed header block: {exc}") from None
        if len(raw) > limit:
            raise _remote_error(f"header block inflates to more than {limit} bytes")
        if self._zlib.unused_data or self._zlib.unconsumed_tail:
            # Bytes after the end of the zlib stream (spdy/read.go
            # WrongCompressedPayloadSize): the frame's block was not one flushed chunk.
            raise _remote_error("compressed header block has bytes past the zlib stream's end")
        return raw
