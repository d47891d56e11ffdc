"""Tests of the zero-copy WebSocket frame codec, against RFC 6455 and against wsproto."""

from __future__ import annotations

import itertools
import os
from array import array
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.frame_protocol import FrameProtocol

from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._ws.codec import (
    KEYS_PER_DRAW,
    MAX_PENDING_BYTES,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Frame,
    FrameDecoder,
    FrameEncoder,
    ZeroCopyFrameCodec,
    is_valid_close_code,
)
from kstream._ws.frames import CloseFrame, FrameCodec, MessagePiece, PingFrame, PongFrame

KEY = bytes.fromhex("37fa213d")
LENGTH_BOUNDARIES = (0, 1, 125, 126, 127, 65535, 65536, 65537)
VALID_CLOSE_CODES = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                     3000, 3999, 4000, 4999)
INVALID_CLOSE_CODES = (0, 1, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2000, 2999, 5000, 65535)

# ----------------------------------------------------------------------------------------
# An independent frame builder (RFC 6455 §5.2), able to write what our encoder never does.


def naive_mask(data: bytes, key: bytes) -> bytes:
    return bytes(byte ^ key[index % 4] for index, byte in enumerate(data))


def build(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0,
          key: bytes | None = None, length_bytes: int | None = None) -> bytes:
    """A frame; ``key`` masks it (a client's frame); ``length_bytes`` forces 0, 2 or 8."""
    size = len(payload)
    if length_bytes is None:
        length_bytes = 0 if size <= 125 else 2 if size <= 65535 else 8
    mask_bit = 0x80 if key is not None else 0
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    if length_bytes == 0:
        head += bytes([mask_bit | size])
    elif length_bytes == 2:
        head += bytes([mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + size.to_bytes(8, "big")
    if key is not None:
        return head + key + naive_mask(payload, key)
    return head + payload


def from_client(opcode: int, payload: bytes = b"", **options: object) -> bytes:
    """A frame as a client sends it: what a server-role decoder reads."""
    return build(opcode, payload, key=KEY, **options)  # type: ignore[arg-type]


def from_server(opcode: int, payload: bytes = b"", **options: object) -> bytes:
    """A frame as a server sends it: what a client-role decoder reads."""
    return build(opcode, payload, **options)  # type: ignore[arg-type]


def peer_frame(client_decoder: bool) -> Callable[..., bytes]:
    """The frame builder of the peer of a decoder of the given role."""
    return from_server if client_decoder else from_client


# ----------------------------------------------------------------------------------------
# Feeding a decoder whole, byte by byte, with trailing data, at split points.

Summary = list[tuple[object, ...]]


def summarize(items: list[Frame], decoder: FrameDecoder) -> Summary:
    """Data pieces merged into messages; control frames as they are. Checks piece flags."""
    out: Summary = []
    message: bytearray | None = None
    message_opcode = 0
    for opcode, payload, frame_finished, message_finished in items:
        if opcode in (OP_TEXT, OP_BINARY):
            if message is None:
                message, message_opcode = bytearray(), opcode
            assert opcode == message_opcode
            assert frame_finished or not message_finished
            message += payload
            if message_finished:
                out.append(("message", opcode, bytes(message)))
                message = None
        else:
            assert frame_finished and message_finished
            assert type(payload) is bytes
            if opcode == OP_CLOSE:
                out.append(("close", decoder.close_code, decoder.close_reason))
            else:
                out.append(("ping" if opcode == OP_PING else "pong", payload))
    if message is not None:
        out.append(("partial", message_opcode, bytes(message)))
    return out


def feed_in_pieces(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[Frame]:
    bounds = sorted({0, len(data), *(cut for cut in cuts if 0 <= cut <= len(data))})
    items: list[Frame] = []
    for start, stop in itertools.pairwise(bounds):
        items += decoder.feed(data[start:stop])
    return items


def feeds(data: bytes) -> Iterator[tuple[str, list[int]]]:
    """Whole, then byte by byte (short inputs), then a few split points."""
    yield "whole", []
    if len(data) <= 4096:
        yield "byte by byte", list(range(len(data)))
    yield "split", [1, 2, 3, len(data) // 3, len(data) // 2, len(data) - 1]


def decode(data: bytes, *, client: bool, **options: object) -> Summary:
    """Decode ``data`` whole, byte by byte, and followed by trailing data: same result."""
    results = []
    for _how, cuts in feeds(data):
        decoder = FrameDecoder(client=client, **options)  # type: ignore[arg-type]
        results.append(summarize(feed_in_pieces(decoder, data, cuts), decoder))
    # Trailing data: the start of another frame, then the rest of it.
    trailer = peer_frame(client)(OP_PING, b"next")
    for split in (1, 3, len(trailer) - 1):
        decoder = FrameDecoder(client=client, **options)  # type: ignore[arg-type]
        items = decoder.feed(data + trailer[:split])
        summary = summarize(items, decoder)
        if not decoder.closed:
            assert len(decoder._pending) == split
            assert summarize(decoder.feed(trailer[split:]), decoder) == [("ping", b"next")]
        results.append(summary)
    assert all(result == results[0] for result in results), results
    return results[0]


def rejects(data: bytes, *, client: bool, code: int = 1002, **options: object) -> None:
    """``data`` raises RemoteProtocolError with ``code`` however it is fed."""
    for _how, cuts in feeds(data):
        decoder = FrameDecoder(client=client, **options)  # type: ignore[arg-type]
        with pytest.raises(RemoteProtocolError) as info:
            feed_in_pieces(decoder, data, cuts)
        assert info.value.close_code == code
        # A failed decoder stays failed.
        with pytest.raises(RemoteProtocolError) as again:
            decoder.feed(b"\x81\x00")
        assert again.value.close_code == code
    decoder = FrameDecoder(client=client, **options)  # type: ignore[arg-type]
    with pytest.raises(RemoteProtocolError) as info:
        decoder.feed(data + b"\x00" * 20)
    assert info.value.close_code == code


ROLES = pytest.mark.parametrize("client", [True, False], ids=["client", "server"])

# ----------------------------------------------------------------------------------------
# Decoder: frames that parse


@ROLES
@pytest.mark.parametrize("size", LENGTH_BOUNDARIES)
def test_binary_frame_at_length_boundaries(client: bool, size: int) -> None:
    payload = bytes(index % 251 for index in range(size))
    frame = peer_frame(client)(OP_BINARY, payload)
    assert decode(frame, client=client) == [("message", OP_BINARY, payload)]


@ROLES
def test_text_message_and_control_frames(client: bool) -> None:
    frame = peer_frame(client)
    data = (frame(OP_TEXT, "héllo".encode()) + frame(OP_PING, b"p") + frame(OP_PONG)
            + frame(OP_PING, b"x" * 125) + frame(OP_BINARY))
    assert decode(data, client=client) == [
        ("message", OP_TEXT, "héllo".encode()), ("ping", b"p"), ("pong", b""),
        ("ping", b"x" * 125), ("message", OP_BINARY, b"")]


@ROLES
def test_fragmented_message_with_interleaved_control_frames(client: bool) -> None:
    frame = peer_frame(client)
    text = "a€😀z".encode()
    data = (frame(OP_TEXT, text[:2], fin=False) + frame(OP_PING, b"1")
            + frame(OP_CONTINUATION, text[2:5], fin=False) + frame(OP_CONTINUATION, b"", fin=False)
            + frame(OP_PONG, b"2") + frame(OP_CONTINUATION, text[5:]))
    assert decode(data, client=client) == [
        ("ping", b"1"), ("pong", b"2"), ("message", OP_TEXT, text)]


@ROLES
@pytest.mark.parametrize(("size", "length_bytes"), [(0, 2), (5, 2), (125, 8), (200, 8), (0, 8)])
def test_non_minimal_length_encodings_are_accepted(client: bool, size: int,
                                                   length_bytes: int) -> None:
    # RFC 6455 §5.2 asks the sender for the minimal encoding; like gorilla, we accept.
    payload = b"\x07" * size
    frame = peer_frame(client)(OP_BINARY, payload, length_bytes=length_bytes)
    assert decode(frame, client=client) == [("message", OP_BINARY, payload)]


@ROLES
def test_close_frame_without_payload_reads_as_1005(client: bool) -> None:
    assert decode(peer_frame(client)(OP_CLOSE), client=client) == [("close", 1005, "")]


@ROLES
@pytest.mark.parametrize("code", VALID_CLOSE_CODES)
def test_close_frame_with_valid_code(client: bool, code: int) -> None:
    frame = peer_frame(client)(OP_CLOSE, code.to_bytes(2, "big") + "bye ✓".encode())
    assert decode(frame, client=client) == [("close", code, "bye ✓")]


@ROLES
def test_close_frame_with_the_longest_reason(client: bool) -> None:
    frame = peer_frame(client)(OP_CLOSE, b"\x03\xe8" + b"r" * 123)
    assert decode(frame, client=client) == [("close", 1000, "r" * 123)]


@ROLES
def test_nothing_after_a_close_frame_is_parsed(client: bool) -> None:
    frame = peer_frame(client)
    decoder = FrameDecoder(client=client)
    items = decoder.feed(frame(OP_CLOSE, b"\x03\xe8") + frame(OP_BINARY, b"late") + b"\xff\xff")
    assert summarize(items, decoder) == [("close", 1000, "")]
    assert decoder.closed
    assert decoder.feed(b"garbage that does not parse") == []
    assert decoder.feed(frame(OP_PING)) == []


@ROLES
def test_max_message_size_allows_exactly_the_limit(client: bool) -> None:
    frame = peer_frame(client)
    data = frame(OP_BINARY, b"a" * 6, fin=False) + frame(OP_CONTINUATION, b"b" * 4)
    assert decode(data, client=client, max_message_size=10) == [
        ("message", OP_BINARY, b"a" * 6 + b"b" * 4)]
    # The size is per message: the next one starts from zero.
    assert decode(data + data, client=client, max_message_size=10) == [
        ("message", OP_BINARY, b"a" * 6 + b"b" * 4)] * 2


@ROLES
def test_max_message_size_none_means_no_limit(client: bool) -> None:
    # The header announces 2**62 bytes: accepted; only the first bytes arrive.
    decoder = FrameDecoder(client=client, max_message_size=None)
    head = peer_frame(client)(OP_BINARY, b"")[:1]
    mask_bit = 0 if client else 0x80
    data = head + bytes([mask_bit | 127]) + (2**62).to_bytes(8, "big") + (b"" if client else KEY)
    assert decoder.feed(data) == []
    assert decoder.in_message


@ROLES
def test_validate_utf8_false_accepts_invalid_text(client: bool) -> None:
    frame = peer_frame(client)(OP_TEXT, b"\xff\xfe")
    assert decode(frame, client=client, validate_utf8=False) == [
        ("message", OP_TEXT, b"\xff\xfe")]


def test_decoder_rejects_a_bad_max_message_size() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(client=True, max_message_size=-1)
    with pytest.raises(ValueError):
        FrameDecoder(client=True, max_message_size=1.5)  # type: ignore[arg-type]


def test_empty_feed_returns_nothing() -> None:
    decoder = FrameDecoder(client=True)
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\x82") == []
    assert decoder.feed(b"") == []
    assert summarize(decoder.feed(b"\x01z"), decoder) == [("message", OP_BINARY, b"z")]


# ----------------------------------------------------------------------------------------
# Decoder: zero copy and streaming


def test_client_role_hands_out_views_of_immutable_input() -> None:
    data = from_server(OP_BINARY, b"payload") + from_server(OP_TEXT, b"text")
    items = FrameDecoder(client=True).feed(data)
    for _opcode, payload, _frame_finished, _message_finished in items:
        assert isinstance(payload, memoryview)
        assert payload.obj is data
    assert [bytes(item[1]) for item in items] == [b"payload", b"text"]


def test_client_role_copies_payload_of_mutable_input() -> None:
    data = bytearray(from_server(OP_BINARY, b"payload"))
    [item] = FrameDecoder(client=True).feed(data)
    assert type(item[1]) is bytes
    data[-7:] = b"XXXXXXX"
    assert item[1] == b"payload"
    data += b"resizable: no export is left on the buffer"


def test_server_role_unmasks_into_bytes() -> None:
    [item] = FrameDecoder(client=False).feed(memoryview(from_client(OP_BINARY, b"payload")))
    assert item == (OP_BINARY, b"payload", True, True)
    assert type(item[1]) is bytes


def test_decoder_accepts_buffers_of_other_formats() -> None:
    frame = from_server(OP_BINARY, b"12345678")
    words = array("H")  # two bytes per item
    words.frombytes(frame)
    decoder = FrameDecoder(client=True)
    assert summarize(decoder.feed(memoryview(words)), decoder) == [
        ("message", OP_BINARY, b"12345678")]


@ROLES
def test_a_large_frame_streams_in_pieces_as_it_arrives(client: bool) -> None:
    payload = bytes(index % 253 for index in range(100_000))
    data = peer_frame(client)(OP_BINARY, payload)
    decoder = FrameDecoder(client=client)
    chunks = [data[start:start + 7000] for start in range(0, len(data), 7000)]
    received = bytearray()
    for index, chunk in enumerate(chunks):
        items = decoder.feed(chunk)
        # The header chunk yields the first piece; every chunk yields exactly one piece.
        assert len(items) == 1
        opcode, piece, frame_finished, message_finished = items[0]
        assert opcode == OP_BINARY
        assert frame_finished == message_finished == (index == len(chunks) - 1)
        received += piece
        assert len(decoder._pending) == 0
    assert received == payload


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400),
       cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_pending_bytes_stay_bounded(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(client=True, max_message_size=None)
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut <= len(data))})
    for start, stop in itertools.pairwise(bounds):
        try:
            decoder.feed(data[start:stop])
        except RemoteProtocolError:
            return
        assert len(decoder._pending) < MAX_PENDING_BYTES


# ----------------------------------------------------------------------------------------
# Decoder: violations


@pytest.mark.parametrize("opcode", [OP_BINARY, OP_TEXT, OP_PING, OP_CLOSE])
def test_server_requires_masked_frames(opcode: int) -> None:
    rejects(from_server(opcode, b"ab"), client=False)


@pytest.mark.parametrize("opcode", [OP_BINARY, OP_TEXT, OP_PING, OP_CLOSE])
def test_client_requires_unmasked_frames(opcode: int) -> None:
    rejects(from_client(opcode, b"ab"), client=True)


@ROLES
@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
@pytest.mark.parametrize("opcode", [OP_BINARY, OP_CONTINUATION, OP_PING])
def test_reserved_bits_are_rejected(client: bool, rsv: int, opcode: int) -> None:
    rejects(peer_frame(client)(opcode, b"x", rsv=rsv), client=client)


@ROLES
@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes_are_rejected(client: bool, opcode: int) -> None:
    rejects(peer_frame(client)(opcode, b"x"), client=client)


@ROLES
def test_continuation_without_a_message_is_rejected(client: bool) -> None:
    frame = peer_frame(client)
    rejects(frame(OP_CONTINUATION, b"x"), client=client)
    rejects(frame(OP_BINARY, b"done") + frame(OP_CONTINUATION, b"x"), client=client)


@ROLES
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_new_message_while_one_is_unfinished_is_rejected(client: bool, opcode: int) -> None:
    frame = peer_frame(client)
    rejects(frame(OP_BINARY, b"a", fin=False) + frame(opcode, b"b"), client=client)


@ROLES
@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_fragmented_control_frames_are_rejected(client: bool, opcode: int) -> None:
    rejects(peer_frame(client)(opcode, b"", fin=False), client=client)


@ROLES
@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
@pytest.mark.parametrize("size", [126, 65536])
def test_control_frames_over_125_bytes_are_rejected(client: bool, opcode: int,
                                                    size: int) -> None:
    rejects(peer_frame(client)(opcode, b"\x03\xe8" + b"x" * (size - 2)), client=client)


@ROLES
def test_64_bit_length_with_the_top_bit_set_is_rejected(client: bool) -> None:
    head = bytes([0x82, (0 if client else 0x80) | 127]) + (2**63).to_bytes(8, "big")
    rejects(head + (b"" if client else KEY) + b"x", client=client)


@ROLES
def test_close_frame_with_a_1_byte_payload_is_rejected(client: bool) -> None:
    rejects(peer_frame(client)(OP_CLOSE, b"\x03"), client=client)


@ROLES
@pytest.mark.parametrize("code", INVALID_CLOSE_CODES)
def test_close_frame_with_an_invalid_code_is_rejected(client: bool, code: int) -> None:
    rejects(peer_frame(client)(OP_CLOSE, code.to_bytes(2, "big")), client=client)


@ROLES
def test_close_reason_must_be_utf8(client: bool) -> None:
    rejects(peer_frame(client)(OP_CLOSE, b"\x03\xe8\xc3"), client=client, code=1007)


@ROLES
@pytest.mark.parametrize("pieces", [
    [b"\xff"],  # never valid
    [b"ok", b"\xed\xa0\x80"],  # a surrogate, in a continuation
    [b"\xe2\x82"],  # truncated at the end of the message
    [b"\xe2", b"\x82"],  # truncated across frames
    [b"\xe2", b""],  # truncated, then an empty final frame
])
def test_text_messages_must_be_utf8(client: bool, pieces: list[bytes]) -> None:
    frame = peer_frame(client)
    data = b"".join(frame(OP_TEXT if index == 0 else OP_CONTINUATION, piece,
                          fin=index == len(pieces) - 1)
                    for index, piece in enumerate(pieces))
    rejects(data, client=client, code=1007)


@ROLES
def test_a_message_over_the_limit_is_rejected_with_1009(client: bool) -> None:
    frame = peer_frame(client)
    rejects(frame(OP_BINARY, b"x" * 11), client=client, code=1009, max_message_size=10)
    rejects(frame(OP_TEXT, b"x" * 6, fin=False) + frame(OP_CONTINUATION, b"x" * 5),
            client=client, code=1009, max_message_size=10)


def test_the_limit_is_checked_when_the_header_announces_the_size() -> None:
    decoder = FrameDecoder(client=True, max_message_size=1000)
    with pytest.raises(RemoteProtocolError) as info:
        decoder.feed(b"\x82\x7f" + (10**12).to_bytes(8, "big"))
    assert info.value.close_code == 1009


def test_default_message_limit_is_32_mib() -> None:
    decoder = FrameDecoder(client=True)
    assert decoder.feed(b"\x82\x7f" + (32 * 2**20).to_bytes(8, "big")) == []
    decoder = FrameDecoder(client=True)
    with pytest.raises(RemoteProtocolError) as info:
        decoder.feed(b"\x82\x7f" + (32 * 2**20 + 1).to_bytes(8, "big"))
    assert info.value.close_code == 1009


@ROLES
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300),
       cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=8))
def test_arbitrary_bytes_parse_or_raise_remote_protocol_error(client: bool, data: bytes,
                                                              cuts: list[int]) -> None:
    for how in ([], cuts):
        decoder = FrameDecoder(client=client, max_message_size=100)
        try:
            items = feed_in_pieces(decoder, data, how)
        except RemoteProtocolError as exc:
            assert exc.close_code in (1002, 1007, 1009)
        else:
            summarize(items, decoder)


@ROLES
@settings(max_examples=200, deadline=None)
@given(frames=st.lists(st.tuples(st.sampled_from([0, 1, 2, 8, 9, 10, 3, 11]), st.booleans(),
                                 st.binary(max_size=130), st.sampled_from([0, 0, 0, 0x40])),
                       max_size=6),
       cuts=st.lists(st.integers(min_value=0, max_value=900), max_size=8))
def test_plausible_frames_parse_or_raise_remote_protocol_error(
        client: bool, frames: list[tuple[int, bool, bytes, int]], cuts: list[int]) -> None:
    # Well-formed headers in random sequences reach deeper than random bytes.
    data = b"".join(peer_frame(client)(opcode, payload, fin=fin, rsv=rsv)
                    for opcode, fin, payload, rsv in frames)
    results = []
    for how in ([], cuts):
        decoder = FrameDecoder(client=client)
        try:
            results.append(summarize(feed_in_pieces(decoder, data, how), decoder))
        except RemoteProtocolError as exc:
            results.append([("error", exc.close_code)])
    assert results[0] == results[1]


# ----------------------------------------------------------------------------------------
# Encoder


def fixed_keys(key: bytes) -> Callable[[int], bytes]:
    """A key source whose every key is ``key``."""
    return lambda size: key * (size // 4)


class CountingKeys:
    """A key source whose keys are 00000000, 00000001, ...: fixed, different per frame."""

    def __init__(self) -> None:
        self.keys = 0
        self.calls: list[int] = []

    def __call__(self, size: int) -> bytes:
        self.calls.append(size)
        assert size % 4 == 0
        start, self.keys = self.keys, self.keys + size // 4
        return b"".join(index.to_bytes(4, "big") for index in range(start, self.keys))


def test_server_frames_are_unmasked_and_keep_the_callers_buffers() -> None:
    encoder = FrameEncoder(client=False)
    payload = memoryview(b"payload")
    parts = encoder.frame_parts(OP_BINARY, payload, b"\x01")
    assert parts == [b"\x82\x08", b"\x01", payload]
    assert parts[2] is payload
    assert encoder.frame_parts(OP_TEXT, payload) == [b"\x81\x07", payload]
    assert encoder.frame(OP_BINARY, payload, b"\x01") == b"\x82\x08\x01payload"


def test_client_frames_use_a_fresh_key_each() -> None:
    source = CountingKeys()
    encoder = FrameEncoder(client=True, key_source=source)
    frames = [encoder.binary(b"abcd") for _ in range(KEYS_PER_DRAW + 2)]
    for index, frame in enumerate(frames):
        key = index.to_bytes(4, "big")
        assert frame == b"\x82\x84" + key + naive_mask(b"abcd", key)
    # Keys are drawn from the source in batches, each used once.
    assert source.calls == [4 * KEYS_PER_DRAW, 4 * KEYS_PER_DRAW]


def test_client_frames_use_os_urandom_by_default() -> None:
    encoder = FrameEncoder(client=True)
    assert encoder._key_source is os.urandom
    # Two frames, two keys (a collision has probability 2**-32).
    assert encoder.binary(b"x")[2:6] != encoder.binary(b"x")[2:6]


@settings(max_examples=100, deadline=None)
@given(prefix=st.binary(max_size=6), payload=st.binary(max_size=300))
def test_client_prefix_and_payload_are_masked_as_one(prefix: bytes, payload: bytes) -> None:
    encoder = FrameEncoder(client=True, key_source=fixed_keys(KEY))
    parts = encoder.frame_parts(OP_BINARY, payload, prefix)
    assert b"".join(parts) == build(OP_BINARY, prefix + payload, key=KEY)


@pytest.mark.parametrize("prefix", [b"\x01", b"12", b"123", b"1234", b"12345"])
@pytest.mark.parametrize("size", [4000, 4094, 4095, 5000, 70_000])
def test_client_prefix_and_large_payloads_are_masked_as_one(prefix: bytes, size: int) -> None:
    # From 4 KiB the payload is masked apart from the prefix (no join): the key carries on.
    payload = bytes(index % 251 for index in range(size))
    parts = FrameEncoder(client=True, key_source=fixed_keys(KEY)).frame_parts(
        OP_BINARY, memoryview(payload), prefix)
    assert b"".join(parts) == build(OP_BINARY, prefix + payload, key=KEY)


@pytest.mark.parametrize("client", [True, False])
def test_encoder_helpers(client: bool) -> None:
    encoder = FrameEncoder(client=client, key_source=fixed_keys(KEY))
    key = KEY if client else None
    assert encoder.binary(b"b", b"\x00") == build(OP_BINARY, b"\x00b", key=key)
    assert encoder.text("é", b"1") == build(OP_TEXT, "1é".encode(), key=key)
    assert encoder.text(b"raw") == build(OP_TEXT, b"raw", key=key)
    assert encoder.ping() == build(OP_PING, key=key)
    assert encoder.pong(b"p" * 125) == build(OP_PONG, b"p" * 125, key=key)
    assert encoder.close() == build(OP_CLOSE, key=key)
    assert encoder.close(1000) == build(OP_CLOSE, b"\x03\xe8", key=key)
    assert encoder.close(4000, "r" * 123) == build(OP_CLOSE, b"\x0f\xa0" + b"r" * 123, key=key)


@pytest.mark.parametrize("opcode", [OP_CONTINUATION, 3, 7, 0xB, 0xF])
def test_encoder_refuses_other_opcodes(opcode: int) -> None:
    with pytest.raises(LocalProtocolError):
        FrameEncoder(client=False).frame(opcode, b"")


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_encoder_refuses_control_payloads_over_125_bytes(opcode: int) -> None:
    encoder = FrameEncoder(client=True)
    assert encoder.frame(opcode, b"x" * 124, b"y")
    with pytest.raises(LocalProtocolError):
        encoder.frame(opcode, b"x" * 125, b"y")


@pytest.mark.parametrize("code", INVALID_CLOSE_CODES)
def test_encoder_refuses_invalid_close_codes(code: int) -> None:
    encoder = FrameEncoder(client=False)
    if code == 1005:
        assert encoder.close(code) == b"\x88\x00"
    else:
        with pytest.raises(LocalProtocolError):
            encoder.close(code)


def test_encoder_refuses_bad_close_reasons() -> None:
    encoder = FrameEncoder(client=False)
    with pytest.raises(LocalProtocolError):
        encoder.close(1000, "é" * 62)  # 124 bytes
    with pytest.raises(LocalProtocolError):
        encoder.close(1005, "a reason needs a code")
    with pytest.raises(LocalProtocolError):
        encoder.close(True)  # not an int


def test_is_valid_close_code() -> None:
    assert all(is_valid_close_code(code) for code in VALID_CLOSE_CODES)
    assert not any(is_valid_close_code(code) for code in INVALID_CLOSE_CODES)


# ----------------------------------------------------------------------------------------
# Agreement with wsproto, byte for byte


def wsproto_frame(client: bool, kind: str, payload: bytes, key: bytes) -> bytes:
    """What wsproto's FrameProtocol writes, with ``key`` as its mask key."""
    protocol = FrameProtocol(client, [])
    with mock.patch("wsproto.frame_protocol.os.urandom", return_value=key):
        if kind == "binary":
            return bytes(protocol.send_data(payload))
        if kind == "text":
            return bytes(protocol.send_data(payload.decode()))
        if kind == "ping":
            return bytes(protocol.ping(payload))
        if kind == "pong":
            return bytes(protocol.pong(payload))
        code = int.from_bytes(payload[:2], "big")
        return bytes(protocol.close(code, payload[2:].decode()))


def our_frame(client: bool, kind: str, payload: bytes, key: bytes) -> bytes:
    encoder = FrameEncoder(client=client, key_source=fixed_keys(key))
    if kind == "binary":
        return encoder.binary(payload)
    if kind == "text":
        return encoder.text(payload.decode())
    if kind == "ping":
        return encoder.ping(payload)
    if kind == "pong":
        return encoder.pong(payload)
    return encoder.close(int.from_bytes(payload[:2], "big"), payload[2:].decode())


@st.composite
def frame_specs(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["binary", "text", "ping", "pong", "close"]))
    if kind == "close":
        code = draw(st.sampled_from(VALID_CLOSE_CODES))
        reason = draw(st.text(max_size=20).filter(lambda text: len(text.encode()) <= 123))
        return kind, code.to_bytes(2, "big") + reason.encode()
    if kind in ("ping", "pong"):
        return kind, draw(st.binary(max_size=125))
    size = draw(st.one_of(st.sampled_from(LENGTH_BOUNDARIES), st.integers(0, 300)))
    if kind == "text":
        return kind, (draw(st.sampled_from("aé€😀")) * size).encode()[:size].decode(
            errors="ignore").encode()
    return kind, draw(st.binary(min_size=min(size, 64), max_size=min(size, 64))) * (
        size // 64) + bytes(size % 64)


@settings(max_examples=150, deadline=None)
@given(client=st.booleans(), spec=frame_specs(), key=st.binary(min_size=4, max_size=4))
def test_encoder_matches_wsproto_byte_for_byte(client: bool, spec: tuple[str, bytes],
                                               key: bytes) -> None:
    kind, payload = spec
    assert our_frame(client, kind, payload, key) == wsproto_frame(client, kind, payload, key)


@pytest.mark.parametrize("client", [True, False])
@pytest.mark.parametrize("size", LENGTH_BOUNDARIES)
def test_encoder_matches_wsproto_at_every_length_boundary(client: bool, size: int) -> None:
    payload = bytes(index % 256 for index in range(size))
    for kind in ("binary", "text"):
        data = payload if kind == "binary" else b"t" * size
        assert our_frame(client, kind, data, KEY) == wsproto_frame(client, kind, data, KEY)


def wsproto_decode(data: bytes, *, client: bool, cuts: list[int]) -> Summary:
    """What wsproto's Connection reads from ``data``, summarized like ours."""
    connection = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)
    out: Summary = []
    message = bytearray()
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut <= len(data))})
    for start, stop in itertools.pairwise(bounds):
        if connection.state.name not in ("OPEN", "LOCAL_CLOSING"):
            break
        connection.receive_data(data[start:stop])
        for event in connection.events():
            if isinstance(event, BytesMessage | TextMessage):
                text = isinstance(event, TextMessage)
                message += event.data.encode() if isinstance(event, TextMessage) else event.data
                if event.message_finished:
                    out.append(("message", OP_TEXT if text else OP_BINARY, bytes(message)))
                    message.clear()
            elif isinstance(event, Ping | Pong):
                out.append(("ping" if isinstance(event, Ping) else "pong", event.payload))
            else:
                assert isinstance(event, CloseConnection)
                out.append(("close", int(event.code), event.reason or ""))
    return out


@st.composite
def wsproto_streams(draw: st.DrawFn, client: bool) -> bytes:
    """A stream of frames as wsproto's peer of a ``client``-role decoder writes them."""
    protocol = FrameProtocol(not client, [])
    out = bytearray()
    with mock.patch("wsproto.frame_protocol.os.urandom",
                    return_value=draw(st.binary(min_size=4, max_size=4))):
        for _ in range(draw(st.integers(0, 5))):
            kind = draw(st.sampled_from(["binary", "text", "fragments", "ping", "pong"]))
            if kind == "binary":
                size = draw(st.sampled_from([0, 5, 125, 126, 65536]))
                out += protocol.send_data(bytes(index % 256 for index in range(size)))
            elif kind == "text":
                out += protocol.send_data(draw(st.text(max_size=40)))
            elif kind == "fragments":
                pieces = draw(st.lists(st.text(max_size=10), min_size=1, max_size=4))
                for index, piece in enumerate(pieces):
                    out += protocol.send_data(piece, fin=index == len(pieces) - 1)
                    if draw(st.booleans()):
                        out += protocol.ping(b"mid")
            else:
                payload = draw(st.binary(max_size=125))
                out += protocol.ping(payload) if kind == "ping" else protocol.pong(payload)
        if draw(st.booleans()):
            out += protocol.close(draw(st.sampled_from(VALID_CLOSE_CODES)), draw(st.text(
                max_size=10)))
            out += b"trailing bytes after the close"
    return bytes(out)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), client=st.booleans(),
       cuts=st.lists(st.integers(min_value=0, max_value=70_000), max_size=10))
def test_decoder_reads_wsproto_streams_at_any_split(data: st.DataObject, client: bool,
                                                    cuts: list[int]) -> None:
    stream = data.draw(wsproto_streams(client))
    decoder = FrameDecoder(client=client)
    ours = summarize(feed_in_pieces(decoder, stream, cuts), decoder)
    assert ours == wsproto_decode(stream, client=client, cuts=[])


@settings(max_examples=100, deadline=None)
@given(client=st.booleans(), specs=st.lists(frame_specs(), max_size=5),
       cuts=st.lists(st.integers(min_value=0, max_value=70_000), max_size=10))
def test_wsproto_reads_our_frames_at_any_split(client: bool, specs: list[tuple[str, bytes]],
                                               cuts: list[int]) -> None:
    encoder = FrameEncoder(client=client)
    stream = b"".join(our_frame(client, kind, payload, encoder._key_source(4))
                      for kind, payload in specs)
    theirs = wsproto_decode(stream, client=not client, cuts=cuts)
    decoder = FrameDecoder(client=not client)
    assert summarize(feed_in_pieces(decoder, stream, cuts), decoder) == theirs
    assert len(theirs) == len(specs) or specs[len(theirs) - 1][0] == "close"


def test_decoder_agrees_with_wsproto_on_rejections() -> None:
    cases = {
        "rsv": (from_server(OP_BINARY, b"x", rsv=0x40), True, 1002),
        "masked from server": (from_client(OP_BINARY, b"x"), True, 1002),
        "unmasked from client": (from_server(OP_BINARY, b"x"), False, 1002),
        "opcode": (from_server(3), True, 1002),
        "continuation": (from_server(OP_CONTINUATION, b"x"), True, 1002),
        "interleaved": (from_server(OP_TEXT, b"a", fin=False) + from_server(OP_BINARY), True,
                        1002),
        "long ping": (from_server(OP_PING, b"x" * 126), True, 1002),
        "fragmented ping": (from_server(OP_PING, fin=False), True, 1002),
        "close 1 byte": (from_server(OP_CLOSE, b"\x03"), True, 1002),
        "close 1004": (from_server(OP_CLOSE, b"\x03\xec"), True, 1002),
        "close reason": (from_server(OP_CLOSE, b"\x03\xe8\xff"), True, 1007),
        "utf-8": (from_server(OP_TEXT, b"\xff"), True, 1007),
    }
    for name, (data, client, code) in cases.items():
        with pytest.raises(RemoteProtocolError) as info:
            FrameDecoder(client=client).feed(data)
        assert info.value.close_code == code, name
        connection = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)
        connection.receive_data(data)
        [event] = [event for event in connection.events() if isinstance(event, CloseConnection)]
        assert int(event.code) == code, name


# ----------------------------------------------------------------------------------------
# ZeroCopyFrameCodec: the seam's interface


def normalize(items: list[object]) -> list[object]:
    out: list[object] = []
    for item in items:
        if isinstance(item, MessagePiece):
            out.append(("piece", item.text, bytes(item.data), item.message_finished))
        else:
            out.append(item)
    return out


def merged(items: list[object]) -> list[object]:
    # Pieces merged per message: the two codecs may cut a message differently.
    out: list[object] = []
    buffer = bytearray()
    for item in normalize(items):
        if isinstance(item, tuple):
            buffer += item[2]
            if item[3]:
                out.append(("message", item[1], bytes(buffer)))
                buffer.clear()
        else:
            out.append(item)
    return out


@pytest.mark.parametrize("client", [True, False])
def test_seam_codec_reads_as_the_wsproto_codec(client: bool) -> None:
    frame = peer_frame(client)
    data = (frame(OP_TEXT, "é".encode(), fin=False) + frame(OP_PING, b"p")
            + frame(OP_CONTINUATION, b"x") + frame(OP_BINARY, b"\x01" * 70_000)
            + frame(OP_PONG, b"q") + frame(OP_CLOSE, b"\x0f\xa0bye") + frame(OP_PING))
    for cuts in ([], list(range(0, len(data), 999))):
        ours, theirs = ZeroCopyFrameCodec(client=client), FrameCodec(client=client)
        ours_items: list[object] = []
        theirs_items: list[object] = []
        for start, stop in itertools.pairwise(sorted({0, len(data), *cuts})):
            ours_items += ours.receive(data[start:stop])
            theirs_items += theirs.receive(data[start:stop])
        assert merged(ours_items) == merged(theirs_items) == [
            PingFrame(b"p"), ("message", True, "é".encode() + b"x"),
            ("message", False, b"\x01" * 70_000), PongFrame(b"q"), CloseFrame(4000, "bye")]
        assert ours.receive(frame(OP_PING)) == theirs.receive(frame(OP_PING)) == []


@pytest.mark.parametrize("client", [True, False])
def test_seam_codec_item_types(client: bool) -> None:
    frame = peer_frame(client)
    items = ZeroCopyFrameCodec(client=client).receive(
        frame(OP_BINARY, b"ab") + frame(OP_PING, b"1") + frame(OP_PONG, b"2") + frame(OP_CLOSE))
    assert items == [MessagePiece(False, b"ab", True), PingFrame(b"1"), PongFrame(b"2"),
                     CloseFrame(1005, "")]
    assert isinstance(items[0], MessagePiece)
    assert isinstance(items[0].data, memoryview if client else bytes)


@pytest.mark.parametrize("client", [True, False])
def test_seam_codec_writes_as_the_wsproto_codec(client: bool) -> None:
    ours = ZeroCopyFrameCodec(client=client, key_source=fixed_keys(KEY))
    theirs = FrameCodec(client=client)
    with mock.patch("wsproto.frame_protocol.os.urandom", return_value=KEY):
        for prefix, payload, text in [(b"\x00", b"data", False), (b"1", b"aGk=", True),
                                      (b"\x02", b"x" * 70_000, False), (b"", b"", False)]:
            assert (ours.message(prefix, memoryview(payload), text=text)
                    == theirs.message(prefix, memoryview(payload), text=text))
            assert b"".join(ours.message_parts(prefix, payload, text=text)) == ours.message(
                prefix, payload, text=text)
        assert ours.ping(b"p") == theirs.ping(b"p")
        assert ours.pong(b"q") == theirs.pong(b"q")
        assert ours.close(1000, "done") == theirs.close(1000, "done")


@pytest.mark.parametrize("codec_class", [ZeroCopyFrameCodec, FrameCodec])
def test_seam_codec_closing_rules(codec_class: type[ZeroCopyFrameCodec] | type[FrameCodec]
                                  ) -> None:
    # Both codecs: we close first, then only receiving continues until the peer's close.
    codec = codec_class(client=False)
    assert codec.close(1005) == b"\x88\x00"
    with pytest.raises(LocalProtocolError):
        codec.message(b"", b"x", text=False)
    if isinstance(codec, ZeroCopyFrameCodec):
        with pytest.raises(LocalProtocolError):
            codec.message_parts(b"", b"x", text=False)
    with pytest.raises(LocalProtocolError):
        codec.ping(b"")
    assert codec.pong(b"") == b""
    with pytest.raises(LocalProtocolError):
        codec.close(1000)
    assert codec.receive(from_client(OP_BINARY, b"late")) == [
        MessagePiece(False, b"late", True)]
    assert codec.receive(from_client(OP_CLOSE, b"\x03\xe8")) == [CloseFrame(1000, "")]
    assert codec.receive(from_client(OP_BINARY, b"after")) == []
    # The peer closes first: we may still echo the close, and nothing else.
    codec = codec_class(client=True)
    assert codec.receive(from_server(OP_CLOSE, b"\x03\xe9")) == [CloseFrame(1001, "")]
    with pytest.raises(LocalProtocolError):
        codec.message(b"", b"x", text=False)
    assert codec.pong(b"") == b""
    assert codec.close(1001)[:2] == b"\x88\x82"
    with pytest.raises(LocalProtocolError):
        codec.close(1000)
    assert codec.receive(from_server(OP_PING)) == []


@pytest.mark.parametrize("codec_class", [ZeroCopyFrameCodec, FrameCodec])
@pytest.mark.parametrize(("code", "reason"), [(1006, ""), (999, ""), (1000, "x" * 124)])
def test_seam_codec_refuses_bad_closes(codec_class: type[ZeroCopyFrameCodec] | type[FrameCodec],
                                       code: int, reason: str) -> None:
    codec = codec_class(client=True)
    with pytest.raises(LocalProtocolError):
        codec.close(code, reason)
    # Refused closes send nothing and leave the codec open.
    assert codec.ping(b"still open")


def test_seam_codec_errors_carry_the_close_code() -> None:
    codec = ZeroCopyFrameCodec(client=False, max_message_size=3)
    with pytest.raises(RemoteProtocolError) as info:
        codec.receive(from_client(OP_BINARY, b"four"))
    assert info.value.close_code == 1009
    with pytest.raises(RemoteProtocolError) as info:
        codec.receive(from_client(OP_BINARY, b""))
    assert info.value.close_code == 1009


# ----------------------------------------------------------------------------------------
# Borrowed payload: the channel connection's hot path (receive_frames)


def feed_through_reused_buffer(feed: Callable[[memoryview], list[Frame]], data: bytes,
                               cuts: list[int]) -> list[Frame]:
    """Feed ``data`` as an adapter does: slices of one buffer, overwritten by every read.

    Items are copied before the next read, as a borrowing caller must; the buffer is then
    scribbled over, so a piece that was kept instead of copied would read garbage.
    """
    buffer = bytearray(len(data) + 1)
    items: list[Frame] = []
    bounds = sorted({0, len(data), *(cut for cut in cuts if 0 <= cut <= len(data))})
    for start, stop in itertools.pairwise(bounds):
        size = stop - start
        buffer[:size] = data[start:stop]
        items += [(opcode, bytes(payload), frame_finished, message_finished)
                  for opcode, payload, frame_finished, message_finished
                  in feed(memoryview(buffer)[:size])]
        buffer[:] = b"\xee" * len(buffer)
    return items


@pytest.mark.parametrize("client", [True, False])
def test_borrowed_feed_hands_out_views_of_mutable_input(client: bool) -> None:
    frame = peer_frame(client)
    buffer = bytearray(frame(OP_BINARY, b"abc") + frame(OP_PING, b"p"))
    [(_, borrowed, _, _), (_, ping, _, _)] = FrameDecoder(client=client).feed(buffer, borrow=True)
    [(_, copied, _, _), _] = FrameDecoder(client=client).feed(buffer)
    assert bytes(borrowed) == bytes(copied) == b"abc"
    assert type(copied) is bytes
    assert type(ping) is bytes  # control frames are always copied
    if client:  # unmasked: a view of the very buffer, no copy
        assert isinstance(borrowed, memoryview) and borrowed.obj is buffer
    else:  # masked: unmasking is the copy
        assert type(borrowed) is bytes


@settings(max_examples=100, deadline=None)
@given(data=st.data(), client=st.booleans(),
       cuts=st.lists(st.integers(min_value=0, max_value=70_000), max_size=10))
def test_receive_frames_agrees_with_receive_at_any_split(data: st.DataObject, client: bool,
                                                         cuts: list[int]) -> None:
    stream = data.draw(wsproto_streams(client))
    seam = ZeroCopyFrameCodec(client=client, key_source=fixed_keys(KEY))
    hot = ZeroCopyFrameCodec(client=client, key_source=fixed_keys(KEY))
    seam_items: list[object] = []
    for start, stop in itertools.pairwise(sorted({0, len(stream), *(
            cut for cut in cuts if cut <= len(stream))})):
        seam_items += seam.receive(stream[start:stop])
    hot_items = feed_through_reused_buffer(hot.receive_frames, stream, cuts)
    assert summarize(hot_items, hot._decoder) == wsproto_decode(stream, client=client, cuts=[])
    # The same pieces as the seam's items (same cuts), the same close, the same state.
    assert as_seam_items(hot_items, hot) == normalize(seam_items)
    assert hot.pong(b"x") == seam.pong(b"x")
    closed = any(isinstance(item, CloseFrame) for item in seam_items)
    ping = from_server(OP_PING) if client else from_client(OP_PING)
    assert hot.receive_frames(ping) == ([] if closed else [(OP_PING, b"", True, True)])


def as_seam_items(frames: list[Frame], codec: ZeroCopyFrameCodec) -> list[object]:
    out: list[object] = []
    for opcode, payload, _, message_finished in frames:
        if opcode in (OP_TEXT, OP_BINARY):
            out.append(("piece", opcode == OP_TEXT, bytes(payload), message_finished))
        elif opcode == OP_PING:
            out.append(PingFrame(bytes(payload)))
        elif opcode == OP_PONG:
            out.append(PongFrame(bytes(payload)))
        else:
            assert codec.close_code is not None
            out.append(CloseFrame(codec.close_code, codec.close_reason))
    return out


def test_receive_frames_after_our_close_then_the_peers() -> None:
    codec = ZeroCopyFrameCodec(client=True)
    codec.close(1000)
    assert codec.receive_frames(bytearray(from_server(OP_BINARY, b"late"))) == [
        (OP_BINARY, memoryview(b"late"), True, True)]
    assert codec.receive_frames(from_server(OP_CLOSE, b"\x03\xe8ok")) == [
        (OP_CLOSE, b"\x03\xe8ok", True, True)]
    assert (codec.close_code, codec.close_reason) == (1000, "ok")
    assert codec.receive_frames(from_server(OP_BINARY, b"after")) == []
    with pytest.raises(LocalProtocolError):
        codec.close(1000)
