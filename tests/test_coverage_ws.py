"""Branch-coverage tests of the WebSocket layer: codec, wsproto seam, channel framing, handshake.

Each test pins down one behaviour that the older test files left unexercised; the branch
it covers is named in its docstring.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from wsproto.utilities import generate_accept_token

from kstream._channels import ERROR, STDERR, STDOUT, V1_NAME, V4_NAME, V5_NAME
from kstream._errors import RemoteProtocolError
from kstream._ws.codec import OP_BINARY, OP_TEXT, Frame, FrameDecoder
from kstream._ws.frames import CloseFrame, FrameCodec, MessagePiece
from kstream._ws.framing import Base64PayloadDecoder, decode_base64
from kstream._ws.handshake import (
    check_request,
    check_switch,
    hello_channel,
    negotiate,
    offered_protocols,
    switch_headers,
)

# ----------------------------------------------------------------------------------------
# Helpers


def server_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """An unmasked frame, as a server sends it (7- or 16-bit length only)."""
    first = (0x80 if fin else 0) | opcode
    if len(payload) <= 125:
        return bytes((first, len(payload))) + payload
    return bytes((first, 126)) + len(payload).to_bytes(2, "big") + payload


def splits(data: bytes) -> Iterator[list[bytes]]:
    """``data`` whole, one byte at a time, and cut in two at every position."""
    yield [data]
    yield [data[index:index + 1] for index in range(len(data))]
    for cut in range(1, len(data)):
        yield [data[:cut], data[cut:]]


def feed_all(decoder: FrameDecoder, chunks: list[bytes], *,
             mutable: bool) -> list[Frame]:
    """Feed each chunk (as a fresh bytearray when ``mutable``) and scribble over it after."""
    items: list[Frame] = []
    for chunk in chunks:
        if not mutable:
            items += decoder.feed(chunk)
            continue
        buffer = bytearray(chunk)
        items += decoder.feed(buffer)
        # The caller reuses its receive buffer: what was handed out must not change.
        buffer[:] = b"\xee" * len(buffer)
    return items


# ----------------------------------------------------------------------------------------
# _ws/codec.py: FrameDecoder


@pytest.mark.parametrize("mutable", [False, True], ids=["bytes", "bytearray"])
def test_payload_continued_across_feeds_is_copied_out_of_a_mutable_buffer(
        mutable: bool) -> None:
    """A client decoder, unmasked data frames whose payload spans feeds: the pieces after
    the first come from ``_continue_payload``; from a mutable buffer they are copies
    (``copy`` branch), from ``bytes`` views."""
    payload = bytes(range(200))
    data = server_frame(OP_BINARY, payload) + server_frame(OP_TEXT, "héllo".encode())
    for chunks in splits(data):
        decoder = FrameDecoder(client=True)
        items = feed_all(decoder, chunks, mutable=mutable)
        binary = b"".join(bytes(piece) for opcode, piece, _, _ in items if opcode == OP_BINARY)
        text = b"".join(bytes(piece) for opcode, piece, _, _ in items if opcode == OP_TEXT)
        assert binary == payload
        assert text == "héllo".encode()
        assert [finished for opcode, _, _, finished in items if finished] == [True, True]
        for _opcode, piece, _frame_finished, _message_finished in items:
            assert type(piece) is (bytes if mutable else memoryview)
        assert not decoder.in_message
        assert not decoder._pending


def test_payload_continued_from_a_mutable_buffer_survives_reuse() -> None:
    """The continued piece of a frame fed from a bytearray is a copy: reusing the buffer
    does not change it."""
    decoder = FrameDecoder(client=True)
    data = server_frame(OP_BINARY, b"abcdef")
    first = bytearray(data[:4])
    [(opcode, head, frame_done, _)] = decoder.feed(first)
    assert (opcode, bytes(head), frame_done) == (OP_BINARY, b"ab", False)
    rest = bytearray(data[4:] + server_frame(OP_BINARY, b"next"))
    items = decoder.feed(rest)
    rest[:] = b"\x00" * len(rest)
    assert [(op, piece, fd, mf) for op, piece, fd, mf in items] == [
        (OP_BINARY, b"cdef", True, True), (OP_BINARY, b"next", True, True)]
    assert all(type(piece) is bytes for _, piece, _, _ in items)


# ----------------------------------------------------------------------------------------
# _ws/frames.py: the wsproto codec


def test_wsproto_codec_reports_a_bad_frame_as_a_remote_error() -> None:
    """wsproto reports a parse failure as a CloseConnection without a state change:
    ``_close_or_raise`` turns it into RemoteProtocolError with wsproto's close code."""
    codec = FrameCodec(client=True)
    with pytest.raises(RemoteProtocolError, match="invalid WebSocket frame") as caught:
        codec.receive(b"\xc2\x00")  # RSV1 set, no extension negotiated
    assert caught.value.close_code == 1002


def test_wsproto_codec_reads_messages_then_a_real_close() -> None:
    codec = FrameCodec(client=True)
    data = (server_frame(OP_BINARY, b"\x01out") + server_frame(OP_TEXT, b"1aGk=")
            + server_frame(0x8, (1000).to_bytes(2, "big") + b"bye") + b"ignored")
    assert codec.receive(data) == [
        MessagePiece(False, b"\x01out", True), MessagePiece(True, b"1aGk=", True),
        CloseFrame(1000, "bye")]
    assert codec.receive(b"more") == []


# ----------------------------------------------------------------------------------------
# _ws/framing.py: base64 channel messages


def test_base64_group_with_padding_followed_by_more_characters_is_refused() -> None:
    """A piece that ends a padded group and carries 1-3 more characters: the
    "data after the padding" check at the end of ``feed`` (the rest is not empty)."""
    for extra in (b"Q", b"QU", b"QUI"):
        decoder = Base64PayloadDecoder()
        with pytest.raises(RemoteProtocolError, match="data after the padding") as caught:
            decoder.feed(b"aGk=" + extra)
        assert caught.value.close_code == 1007
        with pytest.raises(RemoteProtocolError, match="data after the padding"):
            decode_base64(b"1aGk=" + extra)


@pytest.mark.parametrize("payload", [b"", b"h", b"hi", b"hi!", b"hi!\n", bytes(range(256))])
def test_base64_payload_fed_whole_bytewise_or_split(payload: bytes) -> None:
    encoded = base64.b64encode(payload)
    for chunks in splits(encoded):
        decoder = Base64PayloadDecoder()
        assert b"".join(decoder.feed(chunk) for chunk in chunks) == payload
        decoder.finish()
    # Trailing data after the padding, in a later piece, is refused too.
    if encoded.endswith(b"="):
        decoder = Base64PayloadDecoder()
        decoder.feed(encoded)
        with pytest.raises(RemoteProtocolError, match="data after the padding"):
            decoder.feed(b"QUJD")


# ----------------------------------------------------------------------------------------
# _ws/handshake.py: the server's request checks


VALID_REQUEST = (
    ("host", "example"),
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-key", base64.b64encode(b"0123456789abcdef").decode()),
)


def test_check_request_accepts_a_valid_request() -> None:
    assert check_request(VALID_REQUEST) == (0, "", [])


def test_check_request_requires_a_host_header() -> None:
    """Every other header right, Host missing: the last of wsproto's checks."""
    headers = tuple(pair for pair in VALID_REQUEST if pair[0] != "host")
    assert check_request(headers) == (
        400, "invalid WebSocket upgrade request: Missing header, 'Host'", [])


def without(name: str) -> tuple[tuple[str, str], ...]:
    return tuple(pair for pair in VALID_REQUEST if pair[0] != name)


def replaced(name: str, value: str) -> tuple[tuple[str, str], ...]:
    return (*without(name), (name, value))


MISSING = "invalid WebSocket upgrade request: Missing header, "


@pytest.mark.parametrize(("headers", "status", "why"), [
    (without("connection"), 400, MISSING + "'Connection: Upgrade'"),
    (replaced("connection", "keep-alive, close"), 400, MISSING + "'Connection: Upgrade'"),
    (without("sec-websocket-version"), 400, MISSING + "'Sec-WebSocket-Version'"),
    (replaced("sec-websocket-version", "8"), 426, MISSING + "'Sec-WebSocket-Version'"),
    (without("sec-websocket-key"), 400, MISSING + "'Sec-WebSocket-Key'"),
    (without("upgrade"), 400, MISSING + "'Upgrade: websocket'"),
    (replaced("upgrade", "SPDY/3.1"), 400, MISSING + "'Upgrade: websocket'"),
    (replaced("sec-websocket-key", "not base64!"), 400,
     "invalid WebSocket upgrade request: 'Sec-WebSocket-Key' must be the base64 encoding "
     "of 16 bytes"),
    (replaced("sec-websocket-key", base64.b64encode(b"fifteen bytes!!").decode()), 400,
     "invalid WebSocket upgrade request: 'Sec-WebSocket-Key' must be the base64 encoding "
     "of 16 bytes"),
])
def test_check_request_refusals_in_wsprotos_order(headers: tuple[tuple[str, str], ...],
                                                 status: int, why: str) -> None:
    assert check_request(headers) == (
        status, why, [("Sec-WebSocket-Version", "13")] if "Version" in why else [])


@pytest.mark.parametrize(("name", "value"), [
    ("connection", "Upgrade, \u00e9"),
    ("host", "\u00e9xample"),
    ("host", "xn--zz"),
    ("sec-websocket-protocol", "v5.channel.k8s.io, \u00e9"),
    ("sec-websocket-extensions", "\u00e9"),
])
def test_check_request_refuses_undecodable_header_values(name: str, value: str) -> None:
    status, why, extra = check_request(replaced(name, value))
    assert (status, extra) == (400, [])
    assert why.startswith("invalid WebSocket upgrade request: ")
    assert "Missing header" not in why


def test_check_request_ignores_other_headers_and_reads_tokens_loosely() -> None:
    """Unknown headers are skipped (even non-ASCII ones); tokens are trimmed, case-folded."""
    headers = (
        ("x-other", "\u00e9"),
        ("host", "example"),
        ("connection", " keep-alive , UPGRADE ,"),
        ("upgrade", "WebSocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", " " + base64.b64encode(b"0123456789abcdef").decode() + " "),
        ("sec-websocket-protocol", "v5.channel.k8s.io, ,channel.k8s.io"),
    )
    assert check_request(headers) == (0, "", [])


def test_switch_headers_with_and_without_a_subprotocol() -> None:
    # RFC 6455 §1.3's example key and accept token.
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    base = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")]
    assert switch_headers(key, "") == base
    assert switch_headers(key, V5_NAME) == [*base, ("Sec-WebSocket-Protocol", V5_NAME)]


@pytest.mark.parametrize(("offered", "supported", "chosen"), [
    ((), (V5_NAME, V1_NAME), ""),
    ((), (V5_NAME,), None),
    (("",), (V1_NAME,), ""),
    (("x", V4_NAME, V5_NAME), (V5_NAME, V4_NAME), V4_NAME),
    (("V5.CHANNEL.K8S.IO",), (V5_NAME,), None),
])
def test_negotiate_walks_the_clients_list(offered: tuple[str, ...],
                                          supported: tuple[str, ...],
                                          chosen: str | None) -> None:
    assert negotiate(offered, supported) == chosen


@pytest.mark.parametrize(("stdout", "stderr", "channel"), [
    (True, True, STDOUT), (True, False, STDOUT), (False, True, STDERR), (False, False, ERROR),
])
def test_hello_channel(stdout: bool, stderr: bool, channel: int) -> None:
    assert hello_channel(stdout, stderr) == channel


NONCE = b"0123456789abcdef"
ACCEPT = generate_accept_token(base64.b64encode(NONCE)).decode()
SWITCH = (("upgrade", "websocket"), ("connection", "Upgrade"),
          ("sec-websocket-accept", ACCEPT))


@pytest.mark.parametrize(("headers", "offered", "result"), [
    (SWITCH, (), ("", "")),
    ((*SWITCH, ("sec-websocket-protocol", V5_NAME), ("sec-websocket-protocol", "x")),
     (V4_NAME, V5_NAME), ("", V5_NAME)),
    (SWITCH[1:], (), ("the 101 response lacks 'Upgrade: websocket'", "")),
    ((SWITCH[0], ("connection", "keep-alive"), SWITCH[2]), (),
     ("the 101 response lacks 'Connection: Upgrade'", "")),
    ((*SWITCH[:2], ("sec-websocket-accept", "wrong")), (),
     ("the 101 response has a wrong Sec-WebSocket-Accept", "")),
    ((*SWITCH, ("sec-websocket-extensions", "permessage-deflate")), (),
     ("the server chose WebSocket extensions we did not offer", "")),
    ((*SWITCH, ("sec-websocket-protocol", "x")), (V5_NAME,),
     (f"the server chose subprotocol 'x', which we did not offer (we offered "
      f"{[V5_NAME]})", "")),
    (SWITCH, (V5_NAME,), (f"the server chose no subprotocol (we offered {[V5_NAME]})", "")),
])
def test_check_switch(headers: tuple[tuple[str, str], ...], offered: tuple[str, ...],
                      result: tuple[str, str]) -> None:
    # The request's key is the base64 of the nonce; the accept token is computed from it.
    assert check_switch(headers, base64.b64encode(NONCE), offered) == result


@pytest.mark.parametrize(("headers", "offered"), [
    ((), ()),
    ((("host", "h"),), ()),
    ((("sec-websocket-protocol", " a, ,b ,"), ("sec-websocket-protocol", "c")), ("a", "b")),
])
def test_offered_protocols_reads_the_first_header_line(
        headers: tuple[tuple[str, str], ...], offered: tuple[str, ...]) -> None:
    assert offered_protocols(headers) == offered
