"""WebSocket payload masking (RFC 6455 §5.3): XOR with a 4-byte key, repeated.

:func:`mask` is both masking and unmasking. It runs on ``websockets.speedups.apply_mask``
(C, tens of GB/s) when the optional ``websockets`` package is installed (kstream's
``speedups`` extra), and otherwise on pure Python that still has no per-byte loop:

* below :data:`TRANSLATE_THRESHOLD` bytes, one big-integer XOR (the payload and the
  repeated key read as integers): the fewest Python-level operations;
* from there on, wsproto's ``XorMaskerSimple`` idea: 256 precomputed translation tables
  and four strided ``bytes.translate`` passes, one per key byte (frame_protocol.py).

A mask key applies from the first byte of ``data``; to continue masking a payload that
arrives in pieces, start each piece with :func:`rotate_key`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["MASK_BACKEND", "TRANSLATE_THRESHOLD", "mask", "rotate_key"]

Buffer = bytes | bytearray | memoryview

#: Payload size from which the pure-Python path uses translation tables rather than one
#: big-integer XOR (measured: the two cross near 1 KiB on CPython 3.11).
TRANSLATE_THRESHOLD: Final = 1024

_KEY_SIZE: Final = 4

# _XOR_TABLES[k] maps each byte b to b ^ k; built on first use (64 KiB).
_XOR_TABLES: list[bytes] = []


def _check_key(key: bytes) -> None:
    if len(key) != _KEY_SIZE:
        raise ValueError(f"a WebSocket mask key is 4 bytes, not {len(key)}")


def _mask_bigint(data: Buffer, key: bytes) -> bytes:
    size = len(data)
    # The key repeated to a whole number of words at least as long as the payload, read
    # big-endian; shifting drops the bytes past the payload's end.
    words = (size + 3) >> 2
    spare_bits = ((words << 2) - size) << 3
    repeated_key = int.from_bytes(key * words, "big") >> spare_bits
    return (int.from_bytes(data, "big") ^ repeated_key).to_bytes(size, "big")


def _mask_translate(data: Buffer, key: bytes) -> bytes:
    if not _XOR_TABLES:
        _XOR_TABLES.extend(bytes(value ^ k for value in range(256)) for k in range(256))
    out = bytearray(data)
    out[0::4] = out[0::4].translate(_XOR_TABLES[key[0]])
    out[1::4] = out[1::4].translate(_XOR_TABLES[key[1]])
    out[2::4] = out[2::4].translate(_XOR_TABLES[key[2]])
    out[3::4] = out[3::4].translate(_XOR_TABLES[key[3]])
    return bytes(out)


def _mask_python(data: Buffer, key: bytes) -> bytes:
    """Mask ``data`` with ``key`` in pure Python (the fallback backend).

    Args:
        data: the bytes to mask or unmask.
        key: the 4-byte mask key, applied from ``data``'s first byte.

    Returns:
        The masked bytes, a new object.

    Raises:
        ValueError: ``key`` is not 4 bytes long.
    """
    _check_key(key)
    if len(data) < TRANSLATE_THRESHOLD:
        return _mask_bigint(data, key)
    return _mask_translate(data, key)


def _load_speedups() -> Callable[[Buffer, bytes], bytes] | None:
    try:
        from websockets.speedups import apply_mask
    except ImportError:
        return None
    return apply_mask


_mask_speedups: Final = _load_speedups()

#: The backend :func:`mask` runs on: ``"websockets"`` or ``"python"``.
MASK_BACKEND: Final = "python" if _mask_speedups is None else "websockets"

#: Mask (or unmask) ``data`` with the 4-byte ``key`` applied from its first byte, and
#: return the result as new ``bytes``; raises ``ValueError`` for a key of another size.
#: It is the fastest backend available (see the module docstring).
mask: Final[Callable[[Buffer, bytes], bytes]] = (
    _mask_python if _mask_speedups is None else _mask_speedups)


def rotate_key(key: bytes, offset: int) -> bytes:
    """Return the mask key that continues masking at byte ``offset`` of a payload.

    Args:
        key: the frame's 4-byte mask key.
        offset: how many payload bytes were masked with ``key`` before.

    Returns:
        ``key`` rotated so that its first byte applies to payload byte ``offset``.
    """
    phase = offset & 3
    if not phase:
        return key
    return key[phase:] + key[:phase]
