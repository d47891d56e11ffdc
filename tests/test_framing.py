"""Tests of the channel.k8s.io framing codecs (kstream._ws.framing), protocol-notes §1.3-§1.5."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._ws.framing import (
    MAX_BASE64_CHANNEL,
    MAX_CHANNEL,
    Base64PayloadDecoder,
    base64_channel_of,
    check_channel,
    decode_base64,
    decode_binary,
    decode_close,
    encode_base64,
    encode_binary,
    encode_close,
)

# --------------------------------------------------------------------------------------
# Golden bytes (protocol-notes §1.3, §1.4, §1.5, §7)


def test_binary_golden_stdout_hi() -> None:
    assert encode_binary(1, b"hi\n") == bytes.fromhex("0168690a")
    assert decode_binary(bytes.fromhex("0168690a")) == (1, b"hi\n")


def test_base64_golden_stdout_hi() -> None:
    assert encode_base64(1, b"hi\n") == b"1aGkK"
    assert decode_base64(b"1aGkK") == (1, b"hi\n")


def test_base64_golden_foo_has_two_pad_characters() -> None:
    # The comment in conn.go says Zm9vCgo=, which is "foo\n\n" (protocol-notes §1.3).
    assert encode_base64(0, b"foo\n") == b"0Zm9vCg=="
    assert decode_base64(b"0Zm9vCg==") == (0, b"foo\n")
    assert decode_base64(b"0Zm9vCgo=") == (0, b"foo\n\n")


def test_hello_messages_golden() -> None:
    # protocol-notes §1.4: binary [01] / [02] / [03], base64 "1" / "2" / "3".
    assert [encode_binary(ch, b"") for ch in (1, 2, 3)] == [b"\x01", b"\x02", b"\x03"]
    assert [encode_base64(ch, b"") for ch in (1, 2, 3)] == [b"1", b"2", b"3"]
    assert decode_binary(b"\x01") == (1, b"")
    assert decode_base64(b"3") == (3, b"")


def test_close_golden() -> None:
    assert encode_close(0) == bytes.fromhex("ff00")
    assert decode_close(bytes.fromhex("ff00")) == 0
    assert decode_close(bytearray(b"\xff\x04")) == 4


def test_base64_channel_characters_past_nine() -> None:
    # '0' + 10 is ':' (protocol-notes §1.3, derived).
    assert encode_base64(10, b"") == b":"
    assert decode_base64(b":")[0] == 10


def test_base64_channel_of_wraps_like_go_bytes() -> None:
    # Go computes data[0] - '0' on a byte: '/' wraps to 255, an unknown channel.
    assert base64_channel_of(ord("/")) == 255
    assert base64_channel_of(ord("0")) == 0
    assert base64_channel_of(0) == 0xD0


# --------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("message", [b"", b"\xff", b"\xff\x00\x00", b"\x00\x00", b"\xfe\x00"])
def test_decode_close_rejects_anything_but_ff_channel(message: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_close(message)
    assert info.value.close_code == 1002


def test_decode_empty_messages_fail() -> None:
    with pytest.raises(RemoteProtocolError):
        decode_binary(b"")
    with pytest.raises(RemoteProtocolError):
        decode_base64(b"")


def test_decode_base64_padded_group() -> None:
    assert decode_base64(b"1aGk=") == (1, b"hi")


@pytest.mark.parametrize("text", [
    b"1aGk",        # 3 characters left over: padding is required
    b"1aGkKa",      # 2 characters left over
    b"1a",          # 1 character left over
    b"1aG=",        # 2 characters and 1 pad: not a group
    b"1Zg==Zg==",   # data after padding
    b"1=AAA",       # leading padding
    b"1AB=C",       # discontinuous padding
    b"1Zm 9",       # space
    b"1Zm9v\n",     # newline
    b"1\xc3\xa9AA",  # non-ASCII UTF-8
])
def test_decode_base64_strictness(text: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_base64(text)
    assert info.value.close_code == 1007


@pytest.mark.parametrize("channel", [-1, 255, 256, True, 1.0, "1"])
def test_bad_channels_are_local_errors(channel: object) -> None:
    with pytest.raises(LocalProtocolError):
        encode_binary(channel, b"x")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_close(channel)  # type: ignore[arg-type]


def test_base64_channel_must_be_one_ascii_character() -> None:
    assert encode_base64(MAX_BASE64_CHANNEL, b"")[0] == 0x7F
    with pytest.raises(LocalProtocolError):
        encode_base64(MAX_BASE64_CHANNEL + 1, b"")
    check_channel(MAX_CHANNEL)
    with pytest.raises(LocalProtocolError):
        check_channel(MAX_BASE64_CHANNEL + 1, base64_text=True)


# --------------------------------------------------------------------------------------
# The incremental base64 decoder: whole, byte by byte, with trailing data


def _feed_in_pieces(encoded: bytes, cuts: list[int]) -> bytes:
    decoder = Base64PayloadDecoder()
    out = bytearray()
    start = 0
    for cut in [*sorted(cuts), len(encoded)]:
        out += decoder.feed(encoded[start:cut])
        start = cut
    decoder.finish()
    return bytes(out)


def test_base64_decoder_whole() -> None:
    decoder = Base64PayloadDecoder()
    assert decoder.feed(b"Zm9vCg==") == b"foo\n"
    decoder.finish()


def test_base64_decoder_byte_by_byte() -> None:
    decoder = Base64PayloadDecoder()
    pieces = [decoder.feed(bytes((byte,))) for byte in b"aGVsbG8gd29ybGQ="]
    decoder.finish()
    # A group is decoded as soon as its fourth character arrives, not before.
    assert pieces[:3] == [b"", b"", b""]
    assert pieces[3] == b"hel"
    assert b"".join(pieces) == b"hello world"


def test_base64_decoder_trailing_data_after_padding() -> None:
    decoder = Base64PayloadDecoder()
    assert decoder.feed(b"Zm9vCg==") == b"foo\n"
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"A")


def test_base64_decoder_trailing_data_after_padding_in_one_piece() -> None:
    decoder = Base64PayloadDecoder()
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"Zm9vCg==AAAA")


def test_base64_decoder_trailing_partial_group() -> None:
    decoder = Base64PayloadDecoder()
    assert decoder.feed(b"Zm9vCg==") == b"foo\n"
    decoder = Base64PayloadDecoder()
    assert decoder.feed(memoryview(b"Zm9vZm9vZ")) == b"foofoo"
    with pytest.raises(RemoteProtocolError):
        decoder.finish()


def test_base64_decoder_padding_split_across_pieces_then_data() -> None:
    decoder = Base64PayloadDecoder()
    assert decoder.feed(b"Zm9vC") == b"foo"
    assert decoder.feed(b"g=") == b""
    assert decoder.feed(b"=") == b"\n"
    with pytest.raises(RemoteProtocolError):
        decoder.feed(b"Zm9v")


def test_base64_decoder_empty_pieces() -> None:
    decoder = Base64PayloadDecoder()
    assert decoder.feed(b"") == b""
    decoder.finish()


# --------------------------------------------------------------------------------------
# Round trips


@settings(max_examples=150, deadline=None)
@given(channel=st.integers(0, MAX_CHANNEL), payload=st.binary(max_size=300))
def test_binary_round_trip(channel: int, payload: bytes) -> None:
    message = encode_binary(channel, payload)
    assert len(message) == len(payload) + 1
    assert decode_binary(message) == (channel, payload)
    assert decode_binary(memoryview(message)) == (channel, payload)


@settings(max_examples=150, deadline=None)
@given(channel=st.integers(0, MAX_BASE64_CHANNEL), payload=st.binary(max_size=300),
       cuts=st.lists(st.integers(0, 410), max_size=8))
def test_base64_round_trip_any_split(channel: int, payload: bytes, cuts: list[int]) -> None:
    message = encode_base64(channel, payload)
    assert message.isascii()
    assert message[1:] == base64.b64encode(payload)
    assert decode_base64(message) == (channel, payload)
    body = message[1:]
    assert _feed_in_pieces(body, [cut for cut in cuts if cut <= len(body)]) == payload


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=40))
def test_arbitrary_base64_input_only_raises_remote_protocol_error(data: bytes) -> None:
    decoder = Base64PayloadDecoder()
    try:
        for byte in data:
            decoder.feed(bytes((byte,)))
        decoder.finish()
    except RemoteProtocolError:
        pass
    with contextlib.suppress(RemoteProtocolError):
        decode_base64(data)
    try:
        decode_close(data)
    except RemoteProtocolError:
        assert len(data) != 2 or data[0] != 0xFF


@settings(max_examples=150, deadline=None)
@given(channel=st.integers(0, MAX_CHANNEL))
def test_close_round_trip(channel: int) -> None:
    assert decode_close(encode_close(channel)) == channel
