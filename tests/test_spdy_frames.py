"""SPDY/3.1 frame codec: golden frames, streaming decode, validation, limits, properties."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._spdy.dictionary import HEADER_DICTIONARY
from kstream._spdy.frames import (
    FLAG_FIN,
    GOAWAY,
    HEADERS,
    MAX_FRAME_LENGTH,
    MAX_STREAM_ID,
    PING,
    RST_STREAM,
    SETTINGS,
    SYN_REPLY,
    SYN_STREAM,
    WINDOW_UPDATE,
    DataFrame,
    Frame,
    FrameDecoder,
    FrameEncoder,
    GoAwayFrame,
    GoAwayStatus,
    HeadersFrame,
    PingFrame,
    RstStatus,
    RstStreamFrame,
    SettingId,
    SettingsFrame,
    SynReplyFrame,
    SynStreamFrame,
    UnknownControlFrame,
    WindowUpdateFrame,
    pack_data_header,
)
from kstream._spdy.headers import FORBIDDEN_REQUEST_HEADERS, Headers, encode_header_block


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def control(frame_type: int, payload: bytes, flags: int = 0, version: int = 3) -> bytes:
    """A control frame built by hand, so tests can also build invalid ones."""
    return struct.pack(">HHI", 0x8000 | version, frame_type, flags << 24 | len(payload)) + payload


def compressed_blocks(*raw_blocks: bytes) -> list[bytes]:
    """Compress raw header blocks through one Go-configured zlib stream."""
    stream = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                              zdict=HEADER_DICTIONARY)
    return [stream.compress(raw) + stream.flush(zlib.Z_SYNC_FLUSH) for raw in raw_blocks]


def normalized(frames: Iterable[Frame]) -> list[Frame]:
    """Merge consecutive DATA pieces of one stream and drop empty non-FIN ones.

    Applied to both sides of a comparison, it makes "one frame in N pieces" and "N frames"
    compare equal, which is all a DATA consumer can observe.
    """
    result: list[Frame] = []
    for frame in frames:
        if isinstance(frame, DataFrame):
            if not frame.data and not frame.fin:
                continue
            last = result[-1] if result else None
            if isinstance(last, DataFrame) and last.stream_id == frame.stream_id and not last.fin:
                result[-1] = DataFrame(frame.stream_id, bytes(last.data) + bytes(frame.data),
                                       frame.fin)
                continue
            frame = DataFrame(frame.stream_id, bytes(frame.data), frame.fin)
        result.append(frame)
    return result


def feed_in_pieces(decoder: FrameDecoder, data: bytes, cuts: Iterable[int]) -> list[Frame]:
    frames: list[Frame] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        frames += decoder.feed(data[start:cut])
        start = max(start, cut)
    return frames


def bytewise(decoder: FrameDecoder, data: bytes) -> list[Frame]:
    return feed_in_pieces(decoder, data, range(len(data)))


# --------------------------------------------------------------------------- golden frames

# protocol-notes section 3.3, produced by moby/spdystream's framer under Go 1.19.
# Client -> server: one zlib context for both SYN_STREAMs.
GOLDEN_CLIENT: list[tuple[bytes, Frame]] = [
    (h("80030001 00000029 00000001 00000000 0000"
       "78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff"),
     SynStreamFrame(1, headers=(("streamtype", "error"),))),
    (h("80030001 00000019 00000003 00000000 0000 c22ac5565c92925f5a02000000ffff"),
     SynStreamFrame(3, headers=(("streamtype", "stdout"),))),
    (h("00000001 01000000"), DataFrame(1, b"", fin=True)),
    (h("00000003 00000003 68690a"), DataFrame(3, b"hi\n")),
    (h("80030006 00000004 00000001"), PingFrame(1)),
]
# Server -> client: the server's own zlib context.
GOLDEN_SERVER: list[tuple[bytes, Frame]] = [
    (h("80030002 00000014 00000001 78f9e3c6a7c26260606000000000ffff"), SynReplyFrame(1)),
    (h("80030002 0000000c 00000003 026100000000ffff"), SynReplyFrame(3)),
    (h("80030003 00000008 00000003 00000005"), RstStreamFrame(3, RstStatus.CANCEL)),
    (h("80030007 00000008 00000000 00000000"), GoAwayFrame(0, GoAwayStatus.OK)),
    (h("80030009 00000008 00000001 00010000"), WindowUpdateFrame(1, 65536)),
    (h("80030004 0000000c 00000001 00000007 00010000"),
     SettingsFrame(((0, SettingId.INITIAL_WINDOW_SIZE, 65536),))),
]
GOLDEN_STREAMS = [GOLDEN_CLIENT, GOLDEN_SERVER]


def wire(golden: Sequence[tuple[bytes, Frame]]) -> bytes:
    return b"".join(data for data, _ in golden)


def expected(golden: Sequence[tuple[bytes, Frame]]) -> list[Frame]:
    return [frame for _, frame in golden]


@pytest.mark.parametrize("golden", GOLDEN_STREAMS)
def test_golden_frames_decode_fed_whole(golden: list[tuple[bytes, Frame]]) -> None:
    decoder = FrameDecoder()
    assert decoder.feed(wire(golden)) == expected(golden)
    assert not decoder.has_partial_frame


@pytest.mark.parametrize("golden", GOLDEN_STREAMS)
def test_golden_frames_decode_frame_by_frame(golden: list[tuple[bytes, Frame]]) -> None:
    decoder = FrameDecoder()
    assert [decoder.feed(data) for data, _ in golden] == [[frame] for frame in expected(golden)]


@pytest.mark.parametrize("golden", GOLDEN_STREAMS)
def test_golden_frames_decode_one_byte_at_a_time(golden: list[tuple[bytes, Frame]]) -> None:
    decoder = FrameDecoder()
    frames = bytewise(decoder, wire(golden))
    assert normalized(frames) == expected(golden)
    # DATA is streamed: "hi\n" arrives as three one-byte pieces, FIN only on the last.
    if golden is GOLDEN_CLIENT:
        assert [f for f in frames if isinstance(f, DataFrame) and f.stream_id == 3] == [
            DataFrame(3, b"h"), DataFrame(3, b"i"), DataFrame(3, b"\n")]


@pytest.mark.parametrize("golden", GOLDEN_STREAMS)
def test_partial_next_frame_stays_buffered(golden: list[tuple[bytes, Frame]]) -> None:
    ping = h("80030006 00000004 00000003")
    for cut in (1, 5, 8, 11):
        decoder = FrameDecoder()
        assert decoder.feed(wire(golden) + ping[:cut]) == expected(golden)
        assert decoder.has_partial_frame
        assert decoder.feed(ping[cut:]) == [PingFrame(3)]
        assert not decoder.has_partial_frame


def test_encoder_reproduces_every_uncompressed_golden_frame() -> None:
    encoder = FrameEncoder()
    assert encoder.data(1, b"", fin=True) == h("00000001 01000000")
    assert encoder.data(3, b"hi\n") == h("00000003 00000003 68690a")
    assert encoder.rst_stream(3, RstStatus.CANCEL) == h("80030003 00000008 00000003 00000005")
    assert encoder.ping(1) == h("80030006 00000004 00000001")
    assert encoder.goaway(0, GoAwayStatus.OK) == h("80030007 00000008 00000000 00000000")
    assert encoder.window_update(1, 65536) == h("80030009 00000008 00000001 00010000")
    assert encoder.settings([(0, SettingId.INITIAL_WINDOW_SIZE, 65536)]) == h(
        "80030004 0000000c 00000001 00000007 00010000")
    for data, frame in GOLDEN_CLIENT[2:] + GOLDEN_SERVER[2:]:
        assert encoder.encode(frame) == data


def test_encoder_header_frames_round_trip_through_the_decoder() -> None:
    encoder, decoder = FrameEncoder(), FrameDecoder()
    frames: list[Frame] = [
        SynStreamFrame(1, headers=(("streamtype", "error"),)),
        SynStreamFrame(3, headers=(("streamtype", "stdout"),)),
        SynReplyFrame(2),
        HeadersFrame(3, (("a", "1"), ("a", "2")), fin=True),
    ]
    data = b"".join(encoder.encode(frame) for frame in frames)
    assert data[:4] == h("80030001") and data[18:24] == h("38eae3c6a7c2")
    assert decoder.feed(data) == frames


def test_syn_stream_fields_on_the_wire() -> None:
    data = FrameEncoder().syn_stream(5, [("StreamType", "stdin")], fin=True, unidirectional=True,
                                     priority=7, associated_id=2, slot=9)
    assert data[:5] == h("80030001 03")
    assert int.from_bytes(data[5:8], "big") == len(data) - 8
    assert data[8:18] == h("00000005 00000002 e0 09")
    assert FrameDecoder().feed(data) == [SynStreamFrame(5, 2, 7, 9, (("streamtype", "stdin"),),
                                                        fin=True, unidirectional=True)]


# --------------------------------------------------------------------------- DATA streaming


def test_empty_non_fin_data_frame_yields_nothing() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(h("00000005 00000000")) == []
    assert decoder.feed(h("00000005 01000000")) == [DataFrame(5, b"", fin=True)]


def test_data_flags_other_than_fin_are_ignored_as_go_does() -> None:
    assert FrameDecoder().feed(h("00000001 fe000001 61")) == [DataFrame(1, b"a")]


def test_fin_only_on_the_piece_completing_the_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(h("00000007 01000004 6162")) == [DataFrame(7, b"ab", fin=False)]
    assert decoder.has_partial_frame
    assert decoder.feed(h("6364 00000007 00000001")) == [DataFrame(7, b"cd", fin=True)]
    assert decoder.feed(h("65")) == [DataFrame(7, b"e", fin=False)]


def test_one_mib_data_frame_is_not_copied() -> None:
    payload = bytes(range(256)) * 4096
    data = FrameEncoder().data(1, payload, fin=True)
    chunks = [data[i:i + (64 << 10)] for i in range(0, len(data), 64 << 10)]
    decoder = FrameDecoder()
    pieces: list[DataFrame] = []
    for chunk in chunks:
        frames = decoder.feed(chunk)
        for frame in frames:
            assert isinstance(frame, DataFrame)
            # Zero copies: each piece is a view of the very bytes object that was fed.
            assert isinstance(frame.data, memoryview) and frame.data.obj is chunk
        pieces += [f for f in frames if isinstance(f, DataFrame)]
    assert sum(len(p.data) for p in pieces) == len(payload)
    assert b"".join(pieces_data(pieces)) == payload
    assert [p.fin for p in pieces] == [False] * (len(pieces) - 1) + [True]


def pieces_data(pieces: Sequence[DataFrame]) -> list[bytes]:
    return [bytes(p.data) for p in pieces]


def test_mutable_input_is_copied_exactly_once() -> None:
    payload = b"x" * 100_000
    data = bytearray(FrameEncoder().data(1, payload))
    decoder = FrameDecoder()
    first = decoder.feed(data[:50_000])
    second = decoder.feed(memoryview(data)[50_000:])
    pieces = [f for f in first + second if isinstance(f, DataFrame)]
    # bytes of exactly the payload part of each fed buffer: the caller may reuse its buffer.
    assert [type(p.data) for p in pieces] == [bytes, bytes]
    assert [len(p.data) for p in pieces] == [50_000 - 8, 50_008]
    data.clear()  # would raise BufferError if a piece still viewed it
    assert b"".join(pieces_data(pieces)) == payload


def test_data_frame_repr_shows_bytes() -> None:
    assert "b'hi'" in repr(DataFrame(1, memoryview(b"hi")))
    assert "..." in repr(DataFrame(1, b"x" * 100))


# --------------------------------------------------------------------------- leniency


@pytest.mark.parametrize("split", [False, True])
def test_unknown_control_frames_are_skipped_and_reported(split: bool) -> None:
    data = (control(5, b"")  # NOOP
            + control(10, b"credential", flags=3)  # CREDENTIAL
            + h("80030006 00000004 00000001"))
    decoder = FrameDecoder()
    frames = bytewise(decoder, data) if split else decoder.feed(data)
    assert frames == [UnknownControlFrame(5, 0, 0), UnknownControlFrame(10, 3, 10), PingFrame(1)]


def test_unknown_control_frames_are_not_buffered() -> None:
    # Far bigger than the control-frame limit, yet accepted: its payload is skipped.
    decoder = FrameDecoder(max_control_frame_size=16)
    assert decoder.feed(h("8003 00ff 00100000")) == []
    for _ in range(16):
        assert decoder.feed(bytes(1 << 16)) in ([], [UnknownControlFrame(255, 0, 1 << 20)])
    assert not decoder.has_partial_frame
    assert decoder.feed(h("80030006 00000004 00000001")) == [PingFrame(1)]


def test_reserved_bits_are_masked() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(h("80030007 00000008 80000003 00000000")) == [GoAwayFrame(3, 0)]
    assert decoder.feed(h("80030009 00000008 80000000 80000001")) == [WindowUpdateFrame(0, 1)]


def test_host_header_follows_go_rules() -> None:
    blocks = compressed_blocks(*[encode_header_block([("host", "h")], forbidden_names=frozenset())
                                 for _ in range(3)])
    decoder = FrameDecoder()
    assert decoder.feed(control(SYN_REPLY, h("00000001") + blocks[0])) == [
        SynReplyFrame(1, (("host", "h"),))]
    assert decoder.feed(control(HEADERS, h("00000001") + blocks[1])) == [
        HeadersFrame(1, (("host", "h"),))]
    with pytest.raises(RemoteProtocolError, match="forbidden"):
        decoder.feed(control(HEADERS, h("00000002") + blocks[2]))


# --------------------------------------------------------------------------- validation


def header_frame(frame_type: int, prefix: str, *pairs: tuple[bytes, bytes]) -> bytes:
    raw = struct.pack(">I", len(pairs)) + b"".join(
        struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v for n, v in pairs)
    return control(frame_type, h(prefix) + compressed_blocks(raw)[0])


INVALID = {
    "data stream 0": h("00000000 00000001 61"),
    "version 2": control(PING, h("00000001"), version=2),
    "version 0": control(PING, h("00000001"), version=0),
    "rst status 0": control(RST_STREAM, h("00000003 00000000")),
    "rst stream 0": control(RST_STREAM, h("80000000 00000005")),
    "rst short": control(RST_STREAM, h("00000003")),
    "rst long": control(RST_STREAM, h("00000003 00000005 00")),
    "ping id 0": control(PING, h("00000000")),
    "ping flags": control(PING, h("00000001"), flags=1),
    "ping long": control(PING, h("00000001 00000000")),
    "goaway flags": control(GOAWAY, h("00000000 00000000"), flags=1),
    "goaway short": control(GOAWAY, h("00000000")),
    "window update flags": control(WINDOW_UPDATE, h("00000001 00000001"), flags=1),
    "window update short": control(WINDOW_UPDATE, h("00000001")),
    "settings empty": control(SETTINGS, b""),
    "settings 4+7": control(SETTINGS, h("00000001 00000007 000100")),
    "settings count": control(SETTINGS, h("00000002 00000007 00010000")),
    "syn stream short": control(SYN_STREAM, h("00000001 00000000 00")),
    "syn reply short": control(SYN_REPLY, h("000001")),
    "headers short": control(HEADERS, b""),
    "syn stream id 0": header_frame(SYN_STREAM, "00000000 00000000 0000", (b"a", b"b")),
    "syn reply id 0": header_frame(SYN_REPLY, "80000000"),
    "headers id 0": header_frame(HEADERS, "00000000"),
    "upper-case name": header_frame(SYN_STREAM, "00000001 00000000 0000", (b"Streamtype", b"x")),
    "duplicate name": header_frame(SYN_REPLY, "00000001", (b"a", b"1"), (b"a", b"2")),
    "empty name": header_frame(SYN_REPLY, "00000001", (b"", b"1")),
    "non-ascii name": header_frame(SYN_REPLY, "00000001", ("é".encode(), b"1")),
    "non-utf8 value": header_frame(SYN_REPLY, "00000001", (b"a", b"\xc3")),
    "connection": header_frame(SYN_REPLY, "00000001", (b"connection", b"close")),
    "host in syn stream": header_frame(SYN_STREAM, "00000001 00000000 0000", (b"host", b"h")),
    "uncompressed block": control(SYN_REPLY, h("00000001") + encode_header_block([])),
    "block trailing bytes": control(SYN_REPLY, h("00000001") + compressed_blocks(
        encode_header_block([]) + b"\x00")[0]),
    "too many headers": header_frame(SYN_REPLY, "00000001",
                                     *[(b"h%d" % i, b"") for i in range(1025)]),
}


@pytest.mark.parametrize("split", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_frames_raise_remote_protocol_error(name: str, split: bool) -> None:
    decoder = FrameDecoder()
    with pytest.raises(RemoteProtocolError) as info:
        if split:
            bytewise(decoder, INVALID[name])
        else:
            decoder.feed(INVALID[name])
    assert info.value.spdy_status == GoAwayStatus.PROTOCOL_ERROR
    # The decoder stays failed: the session must end.
    with pytest.raises(RemoteProtocolError, match="earlier error"):
        decoder.feed(h("80030006 00000004 00000001"))


def test_oversized_control_frame_is_refused_from_its_header() -> None:
    decoder = FrameDecoder(max_control_frame_size=1024)
    assert decoder.feed(control(SETTINGS, bytes(4 + 8 * 127))[:8] + bytes(4)) == []
    decoder = FrameDecoder(max_control_frame_size=1024)
    with pytest.raises(RemoteProtocolError, match="limit 1024") as info:
        decoder.feed(h("80030001 00000401"))  # 8 header bytes only: SYN_STREAM of 1025
    assert info.value.spdy_status == GoAwayStatus.PROTOCOL_ERROR
    with pytest.raises(RemoteProtocolError, match="limit 1048576"):
        FrameDecoder().feed(h("80030002 00ffffff"))


def test_zlib_bomb_in_syn_stream_is_stopped_while_inflating() -> None:
    ten_mib = 10 << 20
    stream = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY,
                              zdict=HEADER_DICTIONARY)
    bomb = stream.compress(struct.pack(">II", 1, 1) + b"a" + struct.pack(">I", ten_mib))
    bomb += stream.compress(bytes(ten_mib)) + stream.flush(zlib.Z_SYNC_FLUSH)
    frame = control(SYN_STREAM, h("00000001 00000000 0000") + bomb)
    assert len(frame) < 64 << 10  # well within the control-frame limit
    decoder = FrameDecoder(max_header_block_size=32 << 10)
    tracemalloc.start()
    try:
        with pytest.raises(RemoteProtocolError, match="more than 32768 bytes"):
            decoder.feed(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # inflating it all would take 10 MiB


# --------------------------------------------------------------------------- encoder checks


ENCODER_MISUSE: dict[str, Callable[[FrameEncoder], bytes]] = {
    "data id 0": lambda e: e.data(0, b""),
    "data id 2^31": lambda e: e.data(1 << 31, b""),
    "data length": lambda e: e.data_header(1, 1 << 24),
    "data length negative": lambda e: e.data_header(1, -1),
    "syn stream id 0": lambda e: e.syn_stream(0, []),
    "syn stream priority": lambda e: e.syn_stream(1, [], priority=8),
    "syn stream slot": lambda e: e.syn_stream(1, [], slot=256),
    "syn stream associated": lambda e: e.syn_stream(1, [], associated_id=-1),
    "syn stream header": lambda e: e.syn_stream(1, [("connection", "close")]),
    "syn stream host": lambda e: e.syn_stream(1, [("Host", "h")]),
    "syn reply id": lambda e: e.syn_reply(0),
    "syn reply header": lambda e: e.syn_reply(1, [("", "x")]),
    "headers id": lambda e: e.headers(-1, []),
    "headers host on even id": lambda e: e.headers(2, [("host", "h")]),
    "rst status 0": lambda e: e.rst_stream(1, 0),
    "rst id 0": lambda e: e.rst_stream(0, RstStatus.CANCEL),
    "rst status 2^32": lambda e: e.rst_stream(1, 1 << 32),
    "settings flags": lambda e: e.settings([(256, 1, 1)]),
    "settings id": lambda e: e.settings([(0, 1 << 24, 1)]),
    "settings value": lambda e: e.settings([(0, 1, 1 << 32)]),
    "settings shape": lambda e: e.settings([(0, 1)]),  # type: ignore[list-item]
    "ping 0": lambda e: e.ping(0),
    "ping 2^32": lambda e: e.ping(1 << 32),
    "ping str": lambda e: e.ping("1"),  # type: ignore[arg-type]
    "goaway id": lambda e: e.goaway(1 << 31),
    "goaway status": lambda e: e.goaway(0, -1),
    "window update delta 0": lambda e: e.window_update(1, 0),
    "window update delta 2^31": lambda e: e.window_update(1, 1 << 31),
    "unknown frame": lambda e: e.encode(UnknownControlFrame(5, 0, 0)),
}


@pytest.mark.parametrize("name", sorted(ENCODER_MISUSE))
def test_encoder_misuse_raises_local_protocol_error(name: str) -> None:
    encoder = FrameEncoder()
    with pytest.raises(LocalProtocolError):
        ENCODER_MISUSE[name](encoder)
    # Nothing reached the compressor: its first block still decodes on a fresh peer.
    assert FrameDecoder().feed(encoder.syn_stream(1, [("a", "b")])) == [
        SynStreamFrame(1, headers=(("a", "b"),))]


def test_allowed_host_and_zero_copy_header() -> None:
    encoder = FrameEncoder()
    decoder = FrameDecoder()
    data = encoder.syn_reply(1, [("host", "h")]) + encoder.headers(3, [("host", "i")])
    assert decoder.feed(data) == [SynReplyFrame(1, (("host", "h"),)),
                                  HeadersFrame(3, (("host", "i"),))]
    payload = memoryview(b"payload")
    header = encoder.data_header(9, len(payload), fin=True)
    assert header + payload == encoder.data(9, payload, True)
    assert encoder.data_header(9, 7, True)[4] == FLAG_FIN


# --------------------------------------------------------------------------- properties

stream_ids = st.integers(1, (1 << 31) - 1)
uint32 = st.integers(0, (1 << 32) - 1)
header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-:", min_size=1,
                       max_size=12).filter(lambda name: name not in FORBIDDEN_REQUEST_HEADERS)
header_values = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
                        max_size=20)


@st.composite
def header_tuples(draw: st.DrawFn) -> Headers:
    """Headers as a decoder returns them: each name's values adjacent, names unique."""
    names = draw(st.lists(header_names, unique=True, max_size=5))
    return tuple((name, value) for name in names
                 for value in draw(st.lists(header_values, min_size=1, max_size=3)))


frames_strategy: st.SearchStrategy[Frame] = st.one_of(
    st.builds(DataFrame, stream_ids, st.binary(max_size=300), st.booleans()),
    st.builds(SynStreamFrame, stream_ids, st.integers(0, (1 << 31) - 1), st.integers(0, 7),
              st.integers(0, 255), header_tuples(), st.booleans(), st.booleans()),
    st.builds(SynReplyFrame, stream_ids, header_tuples(), st.booleans()),
    st.builds(HeadersFrame, stream_ids, header_tuples(), st.booleans()),
    st.builds(RstStreamFrame, stream_ids, st.integers(1, (1 << 32) - 1)),
    st.builds(SettingsFrame, st.lists(st.tuples(st.integers(0, 255), st.integers(0, (1 << 24) - 1),
                                                uint32), max_size=4).map(tuple), st.booleans()),
    st.builds(PingFrame, st.integers(1, (1 << 32) - 1)),
    st.builds(GoAwayFrame, st.integers(0, (1 << 31) - 1), uint32),
    st.builds(WindowUpdateFrame, st.integers(0, (1 << 31) - 1), st.integers(1, (1 << 31) - 1)),
)


@settings(max_examples=200)
@given(st.lists(frames_strategy, max_size=12), st.data())
def test_round_trip_with_arbitrary_split_points(frames: list[Frame], data: st.DataObject) -> None:
    encoder = FrameEncoder()
    wire_bytes = b"".join(encoder.encode(frame) for frame in frames)
    cuts = data.draw(st.lists(st.integers(0, len(wire_bytes)), max_size=10))
    decoder = FrameDecoder()
    decoded = feed_in_pieces(decoder, wire_bytes, cuts)
    assert normalized(decoded) == normalized(frames)
    assert not decoder.has_partial_frame
    for frame in decoded:
        if isinstance(frame, DataFrame):
            assert frame.data or frame.fin


def feed_expecting_remote_errors(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> None:
    try:
        feed_in_pieces(decoder, data, cuts)
    except RemoteProtocolError as exc:
        assert exc.spdy_status == GoAwayStatus.PROTOCOL_ERROR


@settings(max_examples=200)
@given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=4))
def test_arbitrary_bytes_only_raise_remote_errors(garbage: bytes, cuts: list[int]) -> None:
    feed_expecting_remote_errors(FrameDecoder(), garbage, cuts)


@settings(max_examples=200)
@given(st.lists(frames_strategy, max_size=3), st.binary(max_size=300),
       st.lists(st.integers(0, 2000), max_size=4))
def test_arbitrary_bytes_after_valid_frames_only_raise_remote_errors(
        frames: list[Frame], garbage: bytes, cuts: list[int]) -> None:
    encoder = FrameEncoder()
    prefix = b"".join(encoder.encode(frame) for frame in frames)
    feed_expecting_remote_errors(FrameDecoder(max_header_block_size=4096), prefix + garbage, cuts)


@settings(max_examples=200)
@given(st.sampled_from([SYN_STREAM, SYN_REPLY, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY,
                        WINDOW_UPDATE, 0, 5, 10, 0xFFFF]),
       st.integers(0, 255), st.binary(max_size=200), st.booleans())
def test_well_framed_arbitrary_payloads_only_raise_remote_errors(
        frame_type: int, flags: int, payload: bytes, compress_tail: bool) -> None:
    # Correct frame header and length, so every payload parser sees arbitrary bytes; a valid
    # SYN_STREAM first primes the zlib stream, and the payload may be real compressed bytes.
    encoder = FrameEncoder()
    prefix = encoder.syn_stream(1, [("streamtype", "error")])
    if compress_tail:
        payload = payload[:10] + encoder.syn_reply(3, [("p", payload.hex())])[12:]
    decoder = FrameDecoder(max_header_block_size=4096)
    try:
        frames = decoder.feed(prefix + control(frame_type, payload, flags))
    except RemoteProtocolError as exc:
        assert exc.spdy_status == GoAwayStatus.PROTOCOL_ERROR
    else:
        assert frames[0] == SynStreamFrame(1, headers=(("streamtype", "error"),))
        assert len(frames) == 2


def test_borrow_hands_out_views_of_a_mutable_buffer() -> None:
    encoder = FrameEncoder()
    buffer = bytearray(encoder.data(1, b"abc") + encoder.data(3, b"de", fin=True))
    frames = FrameDecoder().feed(buffer, borrow=True)
    assert [(f.stream_id, bytes(f.data), f.fin) for f in frames if isinstance(f, DataFrame)] \
        == [(1, b"abc", False), (3, b"de", True)]
    assert all(isinstance(f.data, memoryview) for f in frames if isinstance(f, DataFrame))
    # Without borrow, the same buffer yields copies.
    copies = FrameDecoder().feed(buffer)
    assert all(type(f.data) is bytes for f in copies if isinstance(f, DataFrame))


def test_data_header_fast_and_slow_checks_agree() -> None:
    encoder = FrameEncoder()
    assert encoder.data_header(5, 10, fin=True) == bytes.fromhex("00000005 0100000a"
                                                                 .replace(" ", ""))
    assert encoder.data_header(MAX_STREAM_ID, MAX_FRAME_LENGTH) == \
        bytes.fromhex("7fffffff 00ffffff".replace(" ", ""))
    for stream_id, length in ((0, 1), (MAX_STREAM_ID + 1, 1), (1, -1),
                              (1, MAX_FRAME_LENGTH + 1), (1.0, 1), (1, "1")):
        with pytest.raises(LocalProtocolError):
            encoder.data_header(stream_id, length)  # type: ignore[arg-type]
    assert encoder.data_header(True, 1) == encoder.data_header(1, 1)  # bool is an int


def test_unchecked_data_header_is_the_checked_one_without_flags() -> None:
    encoder = FrameEncoder()
    for stream_id, length in ((1, 0), (5, 10), (MAX_STREAM_ID, MAX_FRAME_LENGTH)):
        assert pack_data_header(stream_id, length) == encoder.data_header(stream_id, length)
