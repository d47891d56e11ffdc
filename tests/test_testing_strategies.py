"""kstream.testing.strategies: each strategy draws what its docstring says.

Valid draws are accepted by kstream's decoders (which follow the Go peers), adversarial
draws are refused with a RemoteProtocolError, never another exception; the oracle says
what client-go reports.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kstream import Exited, Failed, RemoteProtocolError
from kstream._channels import WEBSOCKET_PROTOCOLS
from kstream._resize import ResizeDecoder, TerminalSize
from kstream._spdy.frames import FrameDecoder as SpdyFrameDecoder
from kstream._status_types import Status
from kstream._ws.codec import OP_BINARY, OP_CLOSE, OP_TEXT
from kstream._ws.codec import FrameDecoder as WebSocketFrameDecoder
from kstream.testing import strategies
from kstream.testing.strategies import (
    CHANNEL_PROTOCOLS,
    ChannelMessage,
    ResizeMessage,
    client_go_outcome,
)

SOME = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- status


@SOME
@given(strategies.status_documents())
def test_valid_status_documents_have_an_outcome(document: bytes) -> None:
    outcome = client_go_outcome(document)
    assert isinstance(outcome, Exited | Failed), (document, outcome)
    # Valid JSON objects, whatever Go-only spellings they use.
    assert isinstance(json.loads(document), dict)


@SOME
@given(strategies.status_documents(valid=False))
def test_malformed_status_documents_are_protocol_errors(document: bytes) -> None:
    outcome = client_go_outcome(document)
    assert isinstance(outcome, RemoteProtocolError), (document, outcome)
    with pytest.raises(RemoteProtocolError):
        Status.parse_error_channel(document, 5)


def test_valid_documents_cover_every_kind_of_outcome() -> None:
    kinds: set[str] = set()

    @settings(max_examples=120, deadline=None, database=None)
    @given(strategies.status_documents())
    def collect(document: bytes) -> None:
        outcome = client_go_outcome(document)
        kinds.add("failed" if isinstance(outcome, Failed) else
                  "success" if outcome == Exited(0) else "exit code")

    collect()
    assert kinds == {"failed", "success", "exit code"}


def test_the_oracle_on_known_documents() -> None:
    assert client_go_outcome(b"") == Exited(0)
    assert client_go_outcome(b'{"metadata":{},"status":"Success"}') == Exited(0)
    assert client_go_outcome(
        b'{"status":"Failure","reason":"NonZeroExitCode",'
        b'"details":{"causes":[{"reason":"ExitCode","message":"007"}]}}'
    ) == Exited(7, "command terminated with exit code 7")
    assert client_go_outcome(b'{"STATUS":"Failure","message":"gone"}') == Failed("gone")
    assert isinstance(client_go_outcome(b'{"status":"success"}'), RemoteProtocolError)
    # v1-v3: plain text.
    assert client_go_outcome(b"it broke", 1) == Failed("it broke")


@SOME
@given(strategies.exit_codes())
def test_exit_codes_are_bytes(code: int) -> None:
    assert 0 <= code <= 255


# --------------------------------------------------------------------------- channels


@pytest.mark.parametrize("protocol", CHANNEL_PROTOCOLS)
@SOME
@given(data=st.data())
def test_channel_messages_decode_to_their_channel(protocol: str, data: st.DataObject) -> None:
    message = data.draw(strategies.channel_messages(protocol))
    info = WEBSOCKET_PROTOCOLS[protocol]
    if message.close:
        assert info.supports_close and message.payload == bytes((255, message.channel))
        return
    if info.base64:
        assert message.text
        assert message.payload[0] - ord("0") == message.channel
        assert base64.b64decode(message.payload[1:], validate=True) == message.data
    else:
        assert message.payload == bytes((message.channel,)) + message.data
    assert 0 <= message.channel <= 4


@pytest.mark.parametrize("protocol", CHANNEL_PROTOCOLS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_channel_message_frames_reach_a_server(protocol: str, data: st.DataObject) -> None:
    message: ChannelMessage = data.draw(strategies.channel_messages(protocol))
    decoder = WebSocketFrameDecoder(client=False)
    frames = decoder.feed(message.wire(masked=True))
    opcode = frames[0][0]
    assert opcode == (OP_TEXT if message.text else OP_BINARY)
    assert b"".join(bytes(frame[1]) for frame in frames) == message.payload


def test_channel_messages_refuse_an_unknown_protocol() -> None:
    with pytest.raises(KeyError):
        strategies.channel_messages("v9.channel.k8s.io")


# --------------------------------------------------------------------------- frames


@pytest.mark.parametrize("masked", [True, False])
@SOME
@given(data=st.data())
def test_valid_websocket_frames_decode(masked: bool, data: st.DataObject) -> None:
    stream = data.draw(strategies.websocket_frames(masked=masked))
    decoder = WebSocketFrameDecoder(client=not masked)
    for piece in data.draw(strategies.split_points(stream)):
        decoder.feed(piece)
    # Nothing left half-read unless a close ended the stream early.
    assert not decoder.in_message or decoder.closed


@pytest.mark.parametrize("masked", [True, False])
@SOME
@given(data=st.data())
def test_adversarial_websocket_frames_are_refused(masked: bool, data: st.DataObject) -> None:
    stream = data.draw(strategies.websocket_frames(valid=False, masked=masked))
    decoder = WebSocketFrameDecoder(client=not masked)
    with pytest.raises(RemoteProtocolError) as caught:
        for piece in data.draw(strategies.split_points(stream)):
            decoder.feed(piece)
    assert caught.value.close_code in (1002, 1007, 1009)


def test_valid_websocket_frames_may_end_with_a_close() -> None:
    stream = strategies.websocket_frames(masked=True)
    found: list[int] = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(stream)
    def collect(data: bytes) -> None:
        found.extend(frame[0] for frame in WebSocketFrameDecoder(client=False).feed(data))

    collect()
    assert OP_CLOSE in found and OP_TEXT in found


@SOME
@given(data=st.data())
def test_valid_spdy_frames_decode(data: st.DataObject) -> None:
    stream = data.draw(strategies.spdy_frames())
    decoder = SpdyFrameDecoder()
    for piece in data.draw(strategies.split_points(stream)):
        decoder.feed(piece)
    assert not decoder.has_partial_frame


@SOME
@given(data=st.data())
def test_adversarial_spdy_frames_are_refused(data: st.DataObject) -> None:
    stream = data.draw(strategies.spdy_frames(valid=False))
    decoder = SpdyFrameDecoder()
    with pytest.raises(RemoteProtocolError):
        for piece in data.draw(strategies.split_points(stream)):
            decoder.feed(piece)
        # A truncated frame is only an error once the stream ends there.
        if decoder.has_partial_frame:
            raise RemoteProtocolError("truncated")


# --------------------------------------------------------------------------- resize


@SOME
@given(data=st.data())
def test_resize_messages_decode_to_their_size(data: st.DataObject) -> None:
    message: ResizeMessage = data.draw(strategies.resize_messages())
    decoder = ResizeDecoder()
    sizes = []
    for piece in data.draw(strategies.split_points(message.data)):
        sizes += decoder.feed(piece)
    decoder.feed_eof()
    assert sizes == [TerminalSize(message.width, message.height)]


# --------------------------------------------------------------------------- splits


@SOME
@given(data=st.data(), payload=st.binary(max_size=5000))
def test_split_points_rebuild_the_data(data: st.DataObject, payload: bytes) -> None:
    pieces = data.draw(strategies.split_points(payload))
    assert b"".join(pieces) == payload
    assert all(pieces)


@SOME
@given(chunker=strategies.chunkers(), payload=st.binary(max_size=70_000))
def test_chunkers_rebuild_the_data(chunker: strategies.Chunker, payload: bytes) -> None:
    pieces = chunker(payload)
    assert b"".join(pieces) == payload
    assert all(pieces)
    assert chunker(payload) == pieces


# --------------------------------------------------------------------------- packaging


def test_only_the_strategies_module_imports_hypothesis() -> None:
    import ast
    from pathlib import Path

    import kstream

    root = Path(kstream.__file__).parent
    importers = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] == "hypothesis" for name in names):
                importers.add(path.relative_to(root).as_posix())
    assert importers == {"testing/strategies.py"}


def test_the_pairs_load_without_hypothesis() -> None:
    import subprocess
    import sys

    code = ("import sys, kstream.testing.pairs\n"
            "print('hypothesis' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, timeout=60)
    assert result.stdout.strip() == "False"
