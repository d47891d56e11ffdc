"""WebSocket payload masking (RFC 6455 §5.3): XOR with a 4-byte key, repeated.

:func:`mask` is both masking and unmasking. It runs on ``websockets.speedups.apply_mask``
(C, tens of GB/s) when the optional ``websockets`` package is installed (kstream's
``speedups`` extra), and otherwise on pure Python that still has no per-byte loop:

* below :data:`TRANSLATE_THRESHOLD` bytes, one big-integer XOR (the payload and the
  repeated key read as integers): the fewest Python-level operations;
* from there on, wsproto's ``XorMaskerSimple`` idea: 256 precomputed translation tables
  and four strided ``bytes.translate`` passes, one per key byte (frame_protocol.py).

The backend is imported and chosen on the first call of :func:`mask`, not at import time
(importing ``websockets.speedups`` imports ``socket`` and ``threading``), then kept.

A mask key applies from the first byte of ``data``; to continue masking a payload that
arrives in pieces, start each piece with :func:`rotate_key`.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Final

__all__ = ["MASK_BACKEND", "TRANSLATE_THRESHOLD", "mask", "mask_backend", "rotate_key"]

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


@functools.cache
def _load_speedups() -> Callable[[Buffer, bytes], bytes] | None:
    # websockets' C routine, or None when websockets is not installed. Called on first
    # use, not at import: importing websockets.speedups the usual way runs the websockets
    # package first (importlib.metadata, ~10 ms of every command's start-up), so the
    # extension, which needs nothing from its package, is loaded from its file alone.
    if "websockets.speedups" in sys.modules:  # loaded already, or None: blocked
        loaded = sys.modules["websockets.speedups"]
        return None if loaded is None else loaded.apply_mask  # type: ignore[no-any-return]
    from importlib.machinery import ExtensionFileLoader, PathFinder
    from importlib.util import find_spec, module_from_spec, spec_from_file_location

    try:
        package = find_spec("websockets")  # a top-level name: found, not imported
        found = (None if package is None or not package.submodule_search_locations else
                 PathFinder.find_spec("speedups", list(package.submodule_search_locations)))
        if found is None or not isinstance(found.loader, ExtensionFileLoader):
            return None
        spec = spec_from_file_location("websockets.speedups", found.origin)
        if spec is None or spec.loader is None:
            return None
        module = module_from_spec(spec)
        spec.loader.exec_module(module)
    except (ImportError, OSError, ValueError):
        return None
    sys.modules["websockets.speedups"] = module
    return module.apply_mask  # type: ignore[no-any-return]


def mask_backend() -> Callable[[Buffer, bytes], bytes]:
    """Return the function :func:`mask` runs on, importing and choosing it on first use.

    A hot loop may bind the result once (e.g. when a codec is built) and call it
    directly, which saves :func:`mask`'s one Python-level call.

    Returns:
        ``websockets.speedups.apply_mask`` when websockets is installed, else the
        pure-Python backend. The same function on every call.
    """
    global _backend
    if _backend is _first_mask:
        speedups = _load_speedups()
        _backend = _mask_python if speedups is None else speedups
    return _backend


def _first_mask(data: Buffer, key: bytes) -> bytes:
    # What mask() calls until the backend is chosen: choose it, then use it.
    return mask_backend()(data, key)


#: The function :func:`mask` calls: :func:`_first_mask` until the first call, then the
#: chosen backend (see :func:`mask_backend`).
_backend: Callable[[Buffer, bytes], bytes] = _first_mask


def mask(data: Buffer, key: bytes) -> bytes:
    """Mask (or unmask) ``data`` with the 4-byte ``key`` applied from its first byte.

    Runs on the fastest backend available (see the module docstring), chosen on the
    first call and kept (:func:`mask_backend`).

    Args:
        data: the bytes to mask or unmask.
        key: the 4-byte mask key.

    Returns:
        The result, as new ``bytes``.

    Raises:
        ValueError: ``key`` is not 4 bytes long.
    """
    return _backend(data, key)


#: The backend :func:`mask` runs on: ``"websockets"`` or ``"python"`` (reading it loads
#: the backend). ``_mask_speedups`` is websockets' function, or ``None``.
MASK_BACKEND: str
_mask_speedups: Callable[[Buffer, bytes], bytes] | None


def __getattr__(name: str) -> object:
    # PEP 562: MASK_BACKEND and _mask_speedups are computed on first access.
    if name == "_mask_speedups":
        return _load_speedups()
    if name == "MASK_BACKEND":
        return "python" if _load_speedups() is None else "websockets"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
