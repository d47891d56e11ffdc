"""Tests of WebSocket masking: every backend against a naive reference and each other."""

from __future__ import annotations

import importlib
import itertools
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream._ws import mask as _mask
from kstream._ws.mask import (
    MASK_BACKEND,
    TRANSLATE_THRESHOLD,
    _mask_bigint,
    _mask_python,
    _mask_translate,
    mask,
    rotate_key,
)

Masker = Callable[[bytes | bytearray | memoryview, bytes], bytes]

KEY = bytes.fromhex("37fa213d")
BOUNDARY_SIZES = (0, 1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, TRANSLATE_THRESHOLD - 1,
                  TRANSLATE_THRESHOLD, TRANSLATE_THRESHOLD + 1, 4099, 65536)

ALL_BACKENDS: dict[str, Masker] = {
    "mask": mask,
    "python": _mask_python,
    "bigint": _mask_bigint,
    "translate": _mask_translate,
}
if _mask._mask_speedups is not None:
    ALL_BACKENDS["websockets"] = _mask._mask_speedups


def naive_mask(data: bytes, key: bytes) -> bytes:
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(data))


def sample(size: int) -> bytes:
    # Every byte value, in an order that does not repeat with period 4.
    return bytes((index * 7 + index // 256) % 256 for index in range(size))


def test_websockets_speedups_is_installed_and_used() -> None:
    # The dev environment installs the speedups extra; mask must then run on the C
    # function, called directly once the first call has chosen it.
    assert _mask._mask_speedups is not None
    assert MASK_BACKEND == "websockets"
    mask(b"", KEY)
    assert _mask._backend is _mask._mask_speedups
    assert _mask.mask_backend() is _mask._mask_speedups


def test_fallback_is_selected_without_websockets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "websockets.speedups", None)
    reloaded = importlib.reload(_mask)
    try:
        assert reloaded.MASK_BACKEND == "python"
        assert reloaded.mask(b"\x00\x00\x00\x00\x00", KEY) == KEY + KEY[:1]
        assert reloaded._backend is reloaded._mask_python
        assert reloaded.mask_backend() is reloaded._mask_python
    finally:
        monkeypatch.undo()
        importlib.reload(_mask)
    assert _mask.MASK_BACKEND == "websockets"


def test_websockets_is_imported_on_first_use_only() -> None:
    # Importing websockets.speedups imports socket and threading: not at import time.
    code = (
        "import sys\n"
        "from kstream._ws import mask\n"
        "assert 'websockets' not in sys.modules\n"
        "assert mask.mask(b'abcde', bytes(4)) == b'abcde'\n"
        "assert mask._backend is sys.modules['websockets.speedups'].apply_mask\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", sorted(ALL_BACKENDS))
@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_backend_matches_naive_reference_at_boundaries(name: str, size: int) -> None:
    data = sample(size)
    masked = ALL_BACKENDS[name](data, KEY)
    assert type(masked) is bytes
    assert masked == naive_mask(data, KEY)


@pytest.mark.parametrize("name", sorted(ALL_BACKENDS))
def test_backend_accepts_every_buffer_type(name: str) -> None:
    backend = ALL_BACKENDS[name]
    data = sample(40)
    expected = naive_mask(data[3:], KEY)
    assert backend(bytearray(data[3:]), KEY) == expected
    assert backend(memoryview(data)[3:], KEY) == expected
    assert backend(memoryview(bytearray(data))[3:], KEY) == expected


@pytest.mark.parametrize("name", ["mask", "python", *(["websockets"] if
                                                      "websockets" in ALL_BACKENDS else [])])
@pytest.mark.parametrize("key", [b"", b"abc", b"abcde"])
def test_backend_rejects_a_key_that_is_not_4_bytes(name: str, key: bytes) -> None:
    with pytest.raises(ValueError):
        ALL_BACKENDS[name](b"payload", key)


def test_python_backend_does_not_modify_its_input() -> None:
    data = bytearray(sample(2 * TRANSLATE_THRESHOLD))
    before = bytes(data)
    _mask_python(data, KEY)
    _mask_python(memoryview(data)[:10], KEY)
    assert data == before


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=3 * TRANSLATE_THRESHOLD), key=st.binary(min_size=4, max_size=4))
def test_backends_agree_with_each_other_and_the_reference(data: bytes, key: bytes) -> None:
    expected = naive_mask(data, key)
    for name, backend in ALL_BACKENDS.items():
        assert backend(data, key) == expected, name


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=2 * TRANSLATE_THRESHOLD), key=st.binary(min_size=4, max_size=4))
def test_masking_twice_restores_the_data(data: bytes, key: bytes) -> None:
    assert mask(mask(data, key), key) == data
    assert _mask_python(_mask_python(data, key), key) == data


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=3000), key=st.binary(min_size=4, max_size=4),
       cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=6))
def test_rotate_key_continues_a_payload_in_pieces(data: bytes, key: bytes,
                                                  cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut <= len(data))})
    for backend in (mask, _mask_python):
        pieces = [backend(data[start:stop], rotate_key(key, start))
                  for start, stop in itertools.pairwise(bounds)]
        assert b"".join(pieces) == naive_mask(data, key)


def test_rotate_key() -> None:
    assert rotate_key(b"abcd", 0) == b"abcd"
    assert rotate_key(b"abcd", 1) == b"bcda"
    assert rotate_key(b"abcd", 2) == b"cdab"
    assert rotate_key(b"abcd", 3) == b"dabc"
    assert rotate_key(b"abcd", 4) == b"abcd"
    assert rotate_key(b"abcd", 4001) == b"bcda"


def _not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    # _load_speedups keeps what it loaded in sys.modules; start from nothing loaded.
    monkeypatch.delitem(sys.modules, "websockets.speedups", raising=False)


def test_speedups_not_an_extension_means_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.machinery

    _not_loaded(monkeypatch)
    monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec",
                        classmethod(lambda cls, name, path=None, target=None: None))
    assert _mask._load_speedups.__wrapped__() is None  # past the cache
    assert "websockets.speedups" not in sys.modules


def test_speedups_without_a_loadable_spec_means_pure_python(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    _not_loaded(monkeypatch)
    monkeypatch.setattr(importlib.util, "spec_from_file_location", lambda *a, **k: None)
    assert _mask._load_speedups.__wrapped__() is None  # past the cache


def test_speedups_failing_to_load_means_pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    def broken(spec: object) -> object:
        raise ImportError("undefined symbol")

    _not_loaded(monkeypatch)
    monkeypatch.setattr(importlib.util, "module_from_spec", broken)
    assert _mask._load_speedups.__wrapped__() is None  # past the cache
    assert "websockets.speedups" not in sys.modules
