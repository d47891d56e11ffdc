"""SPDY/3 header blocks: dictionary, block layout, zlib streams, limits, hostile input."""

from __future__ import annotations

import hashlib
import struct
import tracemalloc
import zlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._spdy.dictionary import HEADER_DICTIONARY, HEADER_DICTIONARY_ADLER32
from kstream._spdy.headers import (
    FORBIDDEN_REQUEST_HEADERS,
    FORBIDDEN_RESPONSE_HEADERS,
    HeaderCompressor,
    HeaderDecompressor,
    Headers,
    compressed_size_bound,
    decode_header_block,
    encode_header_block,
)


def block(*pairs: tuple[bytes, bytes], count: int | None = None) -> bytes:
    """Build a raw header block by hand, so tests can also build invalid ones."""
    parts = [struct.pack(">I", len(pairs) if count is None else count)]
    for name, value in pairs:
        parts += [struct.pack(">I", len(name)), name, struct.pack(">I", len(value)), value]
    return b"".join(parts)


def go_compressor() -> zlib._Compress:
    """A zlib stream configured as Go's spdystream writer (and HeaderCompressor)."""
    return zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                            zdict=HEADER_DICTIONARY)


def compress_raw(stream: zlib._Compress, raw: bytes) -> bytes:
    return stream.compress(raw) + stream.flush(zlib.Z_SYNC_FLUSH)


def grouped(headers: Sequence[tuple[str, str]]) -> Headers:
    """What a round trip yields: names lower-cased, values grouped under first occurrence."""
    groups: dict[str, list[str]] = {}
    for name, value in headers:
        groups.setdefault(name.lower(), []).append(value)
    return tuple((name, value) for name, values in groups.items() for value in values)


# --------------------------------------------------------------------------- dictionary


def test_dictionary_is_the_spdy3_dictionary() -> None:
    assert len(HEADER_DICTIONARY) == 1423
    assert zlib.adler32(HEADER_DICTIONARY) == 0xE3C6A7C2 == HEADER_DICTIONARY_ADLER32
    assert hashlib.sha256(HEADER_DICTIONARY).hexdigest() == (
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02")
    assert HEADER_DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert HEADER_DICTIONARY.endswith(b"enq=0.")


# --------------------------------------------------------------------------- raw blocks


def test_encode_block_layout() -> None:
    assert encode_header_block([("streamtype", "error")]) == (
        b"\x00\x00\x00\x01\x00\x00\x00\x0astreamtype\x00\x00\x00\x05error")
    assert encode_header_block([]) == b"\x00\x00\x00\x00"


def test_encode_lowercases_and_joins_repeated_names_in_first_seen_order() -> None:
    raw = encode_header_block([("B", "1"), ("a", "x"), ("b", "2"), ("A", "")])
    assert raw == block((b"b", b"1\x002"), (b"a", b"x\x00"))
    assert decode_header_block(raw) == (("b", "1"), ("b", "2"), ("a", "x"), ("a", ""))


def test_decode_splits_values_on_nul() -> None:
    assert decode_header_block(block((b"port", b"80\x00\x00443"))) == (
        ("port", "80"), ("port", ""), ("port", "443"))


def test_decode_accepts_pseudo_header_names_and_utf8_values() -> None:
    raw = block((b":host", "é".encode()), (b"x-1_~", b""))
    assert decode_header_block(raw) == ((":host", "é"), ("x-1_~", ""))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "truncated"),
        (b"\x00\x00\x00", "truncated"),
        (block((b"a", b"b"))[:-1], "runs past"),
        (block((b"a", b"b"))[:9], "claims"),
        (block((b"a", b"b"))[:12], "truncated"),
        (block((b"a", b"b")) + b"\x00", "trailing"),
        (block((b"a", b"b"), count=2), "claims"),
        (block((b"a", b"b"), count=0), "trailing"),
        (block((b"", b"b")), "invalid header name"),
        (block((b"Streamtype", b"error")), "invalid header name"),
        (block((b"a b", b"c")), "invalid header name"),
        (block((b"a\x00", b"c")), "invalid header name"),
        (block(("ä".encode(), b"c")), "invalid header name"),
        (block((b"a", b"1"), (b"a", b"2")), "twice"),
        (block((b"a", b"\xff")), "not UTF-8"),
        (block((b"connection", b"close")), "forbidden"),
        (block((b"host", b"x")), "forbidden"),
        (block((b"keep-alive", b"x")), "forbidden"),
        (block((b"proxy-connection", b"x")), "forbidden"),
        (block((b"transfer-encoding", b"chunked")), "forbidden"),
        (b"\xff\xff\xff\xff" + b"\x00" * 64, "claims"),
    ],
)
def test_decode_rejects_invalid_blocks(raw: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason) as info:
        decode_header_block(raw)
    assert info.value.spdy_status == 1


def test_host_is_allowed_where_go_allows_it() -> None:
    raw = block((b"host", b"example"))
    assert decode_header_block(raw, forbidden_names=FORBIDDEN_RESPONSE_HEADERS) == (
        ("host", "example"),)
    assert "host" in FORBIDDEN_REQUEST_HEADERS


def test_decode_limits_headers_and_values() -> None:
    assert len(decode_header_block(block(*[(b"h%d" % i, b"") for i in range(4)]),
                                   max_headers=4)) == 4
    with pytest.raises(RemoteProtocolError, match="limit 3"):
        decode_header_block(block(*[(b"h%d" % i, b"") for i in range(4)]), max_headers=3)
    # One name, many NUL-separated values: the split result is bounded too.
    with pytest.raises(RemoteProtocolError, match="more than 3 values"):
        decode_header_block(block((b"a", b"\x00" * 3)), max_headers=3)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([("", "x")], "invalid SPDY header name"),
        ([("a b", "x")], "invalid SPDY header name"),
        ([("naïve", "x")], "invalid SPDY header name"),
        ([("a", "x\x00y")], "NUL"),
        ([("a", "\ud800")], "UTF-8"),
        ([("Connection", "close")], "connection-specific"),
        ([("host", "h")], "connection-specific"),
        ([("a", 1)], "must be str"),
        ([("a",)], "pair"),
        ([None], "pair"),
    ],
)
def test_encode_rejects_invalid_headers(headers: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(LocalProtocolError, match=reason):
        encode_header_block(headers)


def test_encode_allows_host_when_told() -> None:
    raw = encode_header_block([("Host", "h")], forbidden_names=FORBIDDEN_RESPONSE_HEADERS)
    assert decode_header_block(raw, forbidden_names=FORBIDDEN_RESPONSE_HEADERS) == (
        ("host", "h"),)


# --------------------------------------------------------------------------- zlib streams


# Compressed header blocks of protocol-notes section 3.3, made by Go's spdystream framer.
GO_CLIENT_BLOCKS = [
    (bytes.fromhex("78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff"),
     (("streamtype", "error"),)),
    (bytes.fromhex("c22ac5565c92925f5a02000000ffff"), (("streamtype", "stdout"),)),
]
GO_SERVER_BLOCKS = [
    (bytes.fromhex("78f9e3c6a7c26260606000000000ffff"), ()),
    (bytes.fromhex("026100000000ffff"), ()),
]


@pytest.mark.parametrize("blocks", [GO_CLIENT_BLOCKS, GO_SERVER_BLOCKS])
def test_go_blocks_decode_through_one_stream(blocks: list[tuple[bytes, Headers]]) -> None:
    decompressor = HeaderDecompressor()
    assert [decompressor.decompress(data) for data, _ in blocks] == [h for _, h in blocks]


def test_go_block_out_of_order_fails() -> None:
    # The second block depends on the first one's zlib state.
    with pytest.raises(RemoteProtocolError):
        HeaderDecompressor().decompress(GO_CLIENT_BLOCKS[1][0])


def test_compressor_output_is_shaped_as_go_expects() -> None:
    compressor = HeaderCompressor()
    first = compressor.compress([("streamtype", "error")])
    second = compressor.compress([("streamtype", "stdout")])
    # zlib header: deflate with a 2 KiB window (0x38), level 9 with a preset dictionary
    # (0xEA), then the dictionary's Adler-32. Go writes 78 F9 (32 KiB window); both inflate
    # anywhere, Go's reader included (test_spdy_interop.py, test_kubectl_spdy.py).
    assert first.startswith(b"\x38\xea\xe3\xc6\xa7\xc2")
    assert int.from_bytes(first[:2], "big") % 31 == 0  # the zlib header checksum
    assert first.endswith(b"\x00\x00\xff\xff") and second.endswith(b"\x00\x00\xff\xff")
    assert not second.startswith(b"\x78")  # one stream, one zlib header
    decompressor = HeaderDecompressor()
    assert decompressor.decompress(first) == (("streamtype", "error"),)
    assert decompressor.decompress(memoryview(second)) == (("streamtype", "stdout"),)


def test_compressor_refuses_possibly_oversized_block_without_touching_the_stream() -> None:
    compressor = HeaderCompressor()
    with pytest.raises(LocalProtocolError, match="may exceed"):
        compressor.compress([("a", "x" * 100)], max_compressed_size=50)
    with pytest.raises(LocalProtocolError):
        compressor.compress([("connection", "close")])
    # The refused calls left no trace: the peer's first block still decodes.
    assert HeaderDecompressor().decompress(compressor.compress([("a", "b")])) == (("a", "b"),)
    assert compressed_size_bound(0) > 0
    assert compressed_size_bound(1 << 20) > 1 << 20


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"\x78\xf9\xe3\xc6\xa7\xc2", "truncated"),  # header only, no block
        (b"not zlib at all", "corrupt"),
        (b"\x78\xda" + b"\x00" * 8, "corrupt"),  # wrong dictionary id / no dictionary
        (GO_CLIENT_BLOCKS[0][0][:12], "claims 1 headers in 4 bytes"),  # cut inside the block
    ],
)
def test_decompress_rejects_bad_streams(data: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason) as info:
        HeaderDecompressor().decompress(data)
    assert info.value.spdy_status == 1


def test_decompress_rejects_bytes_past_the_end_of_the_zlib_stream() -> None:
    stream = go_compressor()
    data = stream.compress(encode_header_block([("a", "b")])) + stream.flush()  # Z_FINISH
    decompressor = HeaderDecompressor()
    with pytest.raises(RemoteProtocolError, match="past the zlib stream"):
        decompressor.decompress(data + b"\x00")


def test_decompressor_stays_broken_after_an_error() -> None:
    decompressor = HeaderDecompressor()
    with pytest.raises(RemoteProtocolError):
        decompressor.decompress(b"garbage")
    with pytest.raises(RemoteProtocolError, match="earlier error"):
        decompressor.decompress(HeaderCompressor().compress([]))
    # A block that inflates fine but does not parse also breaks the stream.
    stream = go_compressor()
    decompressor = HeaderDecompressor()
    with pytest.raises(RemoteProtocolError, match="trailing"):
        decompressor.decompress(compress_raw(stream, block((b"a", b"b")) + b"x"))
    with pytest.raises(RemoteProtocolError, match="earlier error"):
        decompressor.decompress(compress_raw(stream, block()))


def test_zlib_bomb_is_stopped_while_inflating() -> None:
    ten_mib = 10 << 20
    stream = go_compressor()
    bomb = stream.compress(struct.pack(">II", 1, 1) + b"a" + struct.pack(">I", ten_mib))
    bomb += stream.compress(bytes(ten_mib)) + stream.flush(zlib.Z_SYNC_FLUSH)
    assert len(bomb) < 64 << 10
    decompressor = HeaderDecompressor(max_block_size=64 << 10)
    tracemalloc.start()
    try:
        with pytest.raises(RemoteProtocolError, match="more than 65536 bytes"):
            decompressor.decompress(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Inflating the whole bomb would need 10 MiB; the bound keeps it near the limit.
    assert peak < 1 << 20


def test_block_exactly_at_the_limit_is_accepted() -> None:
    raw = encode_header_block([("a", "x" * 1000)])
    data = compress_raw(go_compressor(), raw)
    assert HeaderDecompressor(max_block_size=len(raw)).decompress(data) == (("a", "x" * 1000),)
    with pytest.raises(RemoteProtocolError, match="more than"):
        HeaderDecompressor(max_block_size=len(raw) - 1).decompress(data)


# --------------------------------------------------------------------------- properties

header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_:.", min_size=1,
                       max_size=20).filter(lambda n: n.lower() not in FORBIDDEN_REQUEST_HEADERS)
header_values = st.text(alphabet=st.characters(exclude_characters="\x00",
                                               exclude_categories=["Cs"]), max_size=40)
header_lists = st.lists(st.tuples(header_names, header_values), max_size=8)


@settings(max_examples=100)
@given(st.lists(header_lists, min_size=1, max_size=6))
def test_blocks_round_trip_through_one_stream(blocks: list[list[tuple[str, str]]]) -> None:
    compressor, decompressor = HeaderCompressor(), HeaderDecompressor()
    for headers in blocks:
        assert decode_header_block(encode_header_block(headers)) == grouped(headers)
        assert decompressor.decompress(compressor.compress(headers)) == grouped(headers)


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_arbitrary_raw_blocks_only_raise_remote_errors(raw: bytes) -> None:
    try:
        headers = decode_header_block(raw)
    except RemoteProtocolError as exc:
        assert exc.spdy_status == 1
    else:
        # A block that parses has unique lower-case names, so it re-encodes to itself.
        assert encode_header_block(headers) == raw


@settings(max_examples=200)
@given(header_lists, st.binary(max_size=100), st.binary(max_size=100))
def test_arbitrary_compressed_bytes_only_raise_remote_errors(
        headers: list[tuple[str, str]], tail: bytes, garbage: bytes) -> None:
    # A valid first block, then a block with arbitrary bytes (fresh or appended to a valid
    # one), so the dictionary-primed state and the parsing paths are both exercised.
    compressor, decompressor = HeaderCompressor(), HeaderDecompressor(max_block_size=4096)
    assert decompressor.decompress(compressor.compress(headers)) == grouped(headers)
    for data in (compressor.compress(headers)[:len(tail)] + tail, garbage):
        try:
            decompressor.decompress(data)
        except RemoteProtocolError as exc:
            assert exc.spdy_status == 1
            break


@settings(max_examples=200)
@given(st.lists(st.tuples(st.binary(max_size=12), st.binary(max_size=12)), max_size=6),
       st.none() | st.integers(0, 8))
def test_blocks_of_arbitrary_names_and_values_only_raise_remote_errors(
        pairs: list[tuple[bytes, bytes]], count: int | None) -> None:
    # The lengths are right (and the count mostly), so the name and value checks, not only
    # the framing checks, see arbitrary bytes; both raw and through a zlib stream.
    raw = block(*pairs, count=count)
    for decode in (decode_header_block,
                   lambda data: HeaderDecompressor().decompress(compress_raw(go_compressor(),
                                                                             data))):
        try:
            headers = decode(raw)
        except RemoteProtocolError as exc:
            assert exc.spdy_status == 1
        else:
            assert encode_header_block(headers) == raw
