"""Tests of the resize codec (kstream._resize): protocol-notes §2.2."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream import LocalProtocolError, RemoteProtocolError
from kstream._resize import ResizeDecoder, TerminalSize, encode_resize


def feed_bytewise(decoder: ResizeDecoder, data: bytes) -> list[TerminalSize]:
    events: list[TerminalSize] = []
    for index in range(len(data)):
        events += decoder.feed(data[index:index + 1])
    return events


def outcome(data: bytes, chunks: list[int] | None = None) -> tuple[list[TerminalSize], str]:
    """Events and how the stream ended ("EOF", or "ERR"), feeding in the given chunks."""
    decoder = ResizeDecoder()
    events: list[TerminalSize] = []
    position = 0
    try:
        for size in [*(chunks or []), len(data)]:
            events += decoder.feed(data[position:position + size])
            position += size
        decoder.feed_eof()
    except RemoteProtocolError:
        return events, "ERR"
    return events, "EOF"


# ---------------------------------------------------------------------------------------
# Encoding


def test_encode_golden() -> None:
    # json.NewEncoder(w).Encode(&TerminalSize{80, 24}) in client-go v3.go.
    assert encode_resize(80, 24) == b'{"Width":80,"Height":24}\n'
    assert encode_resize(0, 65535) == b'{"Width":0,"Height":65535}\n'


@pytest.mark.parametrize(("width", "height"), [(-1, 1), (1, 65536), (True, 1), (1.0, 1)])
def test_encode_rejects_out_of_range(width: int, height: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_resize(width, height)


# ---------------------------------------------------------------------------------------
# Decoding against Go's json.Decoder into struct{Width, Height uint16}: the stream, then
# the events Go 1.19 decodes and how the loop ended (EOF, or ERR as in handleResizeEvents).

GO_PARITY: list[tuple[str, list[str]]] = [
    ('{"Width":80,"Height":24}\n', ["80,24", "EOF"]),
    ('{"Width":80,"Height":24}{"Width":100,"Height":30}', ["80,24", "100,30", "EOF"]),
    (' \t\r\n{"width":1,"HEIGHT":2} \n ', ["1,2", "EOF"]),
    ('{"w\\u0069dth":5,"Height":null}', ["5,0", "EOF"]),
    ('{"Width":5,"Width":null,"Width":6}', ["6,0", "EOF"]),
    ('{"x":[1,{"y":"z"},true,null,1.5e3],"Height":7}', ["0,7", "EOF"]),
    ("{}", ["0,0", "EOF"]),
    ("null", ["0,0", "EOF"]),
    ("null ", ["0,0", "EOF"]),
    ('{"Width":65535,"Height":0}', ["65535,0", "EOF"]),
    ('{"Width":65536}', ["ERR"]),
    ('{"Width":-1}', ["ERR"]),
    ('{"Width":-0}', ["ERR"]),
    ('{"Width":1.0}', ["ERR"]),
    ('{"Width":1e2}', ["ERR"]),
    ('{"Width":"80"}', ["ERR"]),
    ('{"Width":true}', ["ERR"]),
    ('{"Width":{}}', ["ERR"]),
    ('{"Width":[]}', ["ERR"]),
    ("[]", ["ERR"]),
    ('"x"', ["ERR"]),
    ("42 ", ["ERR"]),
    ('{"Width":80', ["ERR"]),
    ('{"Width":80,}', ["ERR"]),
    ('{"Width" 80}', ["ERR"]),
    ('{"Width":80}}', ["80,0", "ERR"]),
    ('{"Width":80}]', ["80,0", "ERR"]),
    ('{"Width":1}x', ["1,0", "ERR"]),
    ('{"Width":01}', ["ERR"]),
    ('{"W\u0131dth":3,"HE\u0130GHT":4}', ["0,0", "EOF"]),
    ('{"\u017f":1,"\u212a":2,"Height":9}', ["0,9", "EOF"]),
    ('{"WIDTH":2,"\u212a":1,"height":3}', ["2,3", "EOF"]),
]


def _go_form(events: list[TerminalSize], end: str) -> list[str]:
    return [f"{event.width},{event.height}" for event in events] + [end]


@pytest.mark.parametrize(("stream", "go_result"), GO_PARITY)
def test_matches_go_whole_and_bytewise(stream: str, go_result: list[str]) -> None:
    data = stream.encode()
    # Fed byte by byte, every event before an error comes out.
    assert _go_form(*outcome(data, [1] * len(data))) == go_result
    # Fed whole, the events are the same unless an error loses them with the exception.
    events, end = outcome(data)
    if end == "EOF":
        assert _go_form(events, end) == go_result
    else:
        assert go_result[-1] == "ERR"


def test_whole_bytewise_and_trailing_partial() -> None:
    data = encode_resize(80, 24) + encode_resize(120, 40)
    expected = [TerminalSize(80, 24), TerminalSize(120, 40)]
    assert ResizeDecoder().feed(data) == expected
    assert feed_bytewise(ResizeDecoder(), data) == expected
    decoder = ResizeDecoder()
    assert decoder.feed(data + b'{"Width":1') == expected
    assert decoder.buffered > 0
    assert decoder.feed(b"0,") == []
    assert decoder.feed(b'"Height":5}') == [TerminalSize(10, 5)]
    assert decoder.buffered == 0


def test_numbers_split_anywhere() -> None:
    decoder = ResizeDecoder()
    assert decoder.feed(b'{"x":1.5') == []
    assert decoder.feed(b"e") == []
    assert decoder.feed(b"+3,") == []
    assert decoder.feed(b'"Width":6') == []
    assert decoder.feed(b"5535}") == [TerminalSize(65535, 0)]


def test_multibyte_utf8_split() -> None:
    data = '{"x":"é😀","Height":4}'.encode()
    assert feed_bytewise(ResizeDecoder(), data) == [TerminalSize(0, 4)]


@pytest.mark.parametrize("data", [
    b"\xff", b'{"x":"\xc3"}', b'{"x":"\xed\xa0\x80"}', b"[", b"1", b'"', b"t",
    b'{"Width":0x1}', b'{"Width":1,,}', b'{"a"}', b"{:", b'{"x":[}', b'{"x":"\x01"}',
    b'{"x":"\\q"}', b'{"x":"\\u12g4"}', b"{\x00", b"\xf0\x9f",
])
def test_invalid_input_raises_early(data: bytes) -> None:
    # Each of these is invalid as soon as it is seen: no waiting for more bytes.
    with pytest.raises(RemoteProtocolError):
        ResizeDecoder().feed(data)


@pytest.mark.parametrize("data", [
    b"{", b'{"Wid', b'{"Width"', b'{"Width":', b'{"Width":6', b'{"x":"\\', b'{"x":"\\u12',
    b'{"x":tr', b'{"x":-', b'{"x":1.', b'{"x":1e', b'{"x":1e-', b"nu", b" \n",
    b'{"x":"\xc3', b'{"x":[[{}', b'{"x":"\xf0\x9f',
])
def test_incomplete_input_waits(data: bytes) -> None:
    decoder = ResizeDecoder()
    assert decoder.feed(data) == []
    if data.strip():
        with pytest.raises(RemoteProtocolError, match="ended inside an event"):
            decoder.feed_eof()
    else:
        decoder.feed_eof()


def test_error_is_sticky() -> None:
    decoder = ResizeDecoder()
    with pytest.raises(RemoteProtocolError) as first:
        decoder.feed(b'{"Width":-1}')
    with pytest.raises(RemoteProtocolError) as second:
        decoder.feed(encode_resize(1, 1))
    assert second.value is first.value
    with pytest.raises(RemoteProtocolError):
        decoder.feed_eof()


def test_error_names_the_value() -> None:
    expected = r'width must be an integer in 0\.\.65535, not "1\.5"'
    with pytest.raises(RemoteProtocolError, match=expected):
        ResizeDecoder().feed(b'{"width":1.5}')


def test_max_buffer() -> None:
    padded = b'{"x":"' + b"a" * 80 + b'","Width":3}'
    assert ResizeDecoder(max_buffer=len(padded)).feed(padded) == [TerminalSize(3, 0)]
    with pytest.raises(RemoteProtocolError, match="longer than"):
        ResizeDecoder(max_buffer=len(padded) - 1).feed(padded)
    # Also when the event arrives in pieces, and when it never completes.
    with pytest.raises(RemoteProtocolError, match="longer than"):
        feed_bytewise(ResizeDecoder(max_buffer=len(padded) - 1), padded)
    with pytest.raises(RemoteProtocolError, match="longer than"):
        ResizeDecoder(max_buffer=64).feed(b'{"x":"' + b"a" * 100)
    # Whitespace between events is not buffered.
    decoder = ResizeDecoder(max_buffer=32)
    assert decoder.feed(b" " * 1000 + encode_resize(1, 2) + b"\n" * 1000) == [TerminalSize(1, 2)]
    # Many small events in one feed are each within the limit.
    assert len(ResizeDecoder(max_buffer=32).feed(encode_resize(5, 5) * 500)) == 500


@pytest.mark.parametrize("max_buffer", [0, -1, True])
def test_max_buffer_must_be_positive(max_buffer: int) -> None:
    with pytest.raises(LocalProtocolError):
        ResizeDecoder(max_buffer=max_buffer)


def test_memoryview_and_bytearray_input() -> None:
    decoder = ResizeDecoder()
    assert decoder.feed(memoryview(b'{"Width":1,')) == []
    assert decoder.feed(bytearray(b'"Height":2}')) == [TerminalSize(1, 2)]


def test_kubectl_attach_sequence() -> None:
    # kubectl attach sends size+1 then the real size to force a redraw.
    data = encode_resize(81, 25) + encode_resize(80, 24)
    assert ResizeDecoder().feed(data) == [TerminalSize(81, 25), TerminalSize(80, 24)]


# ---------------------------------------------------------------------------------------
# Properties

SIZES = st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 65535)), max_size=8)
WHITESPACE = st.text(alphabet=" \t\r\n", max_size=3)


@settings(max_examples=200)
@given(SIZES, st.data())
def test_round_trip_with_arbitrary_splits(sizes: list[tuple[int, int]],
                                          data: st.DataObject) -> None:
    stream = b"".join(
        data.draw(WHITESPACE).encode() + encode_resize(width, height).rstrip(b"\n")
        + data.draw(WHITESPACE).encode()
        for width, height in sizes
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = ResizeDecoder()
    events: list[TerminalSize] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        events += decoder.feed(stream[start:end])
    decoder.feed_eof()
    assert events == [TerminalSize(width, height) for width, height in sizes]
    assert decoder.buffered == 0


JSONISH = st.lists(st.sampled_from([
    b"{", b"}", b"[", b"]", b":", b",", b'"Width"', b'"height"', b'"x"', b"0", b"80",
    b"65535", b"65536", b"-1", b"1.5", b"1e2", b"null", b"true", b" ", b"\n", b'"',
    b"\\", b"nu", b"\xc3", b"\xa9", b"\xff", encode_resize(3, 4),
]), max_size=20).map(b"".join)


@settings(max_examples=200)
@given(st.one_of(st.binary(max_size=200), JSONISH), st.data())
def test_arbitrary_bytes_only_raise_remote_protocol_error(data: bytes,
                                                          draw: st.DataObject) -> None:
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    chunks = [end - start for start, end in itertools.pairwise([0, *cuts])]
    whole = outcome(data)
    split = outcome(data, chunks)
    # Split or not, the stream is valid or invalid alike; valid streams give the same events.
    assert whole[1] == split[1]
    if whole[1] == "EOF":
        assert whole[0] == split[0]
    for event in split[0]:
        assert 0 <= event.width <= 65535 and 0 <= event.height <= 65535


def test_canonical_events_follow_the_general_rules() -> None:
    # client-go's own format takes a shortcut; its limits are those of any other event.
    with pytest.raises(RemoteProtocolError, match="65535"):
        ResizeDecoder().feed(b'{"Width":99999,"Height":1}')
    with pytest.raises(RemoteProtocolError, match="longer than"):
        ResizeDecoder(max_buffer=16).feed(encode_resize(80, 24))
    assert ResizeDecoder().feed(b'{"Width":80,"Height":24,"Extra":1}') == [TerminalSize(80, 24)]
