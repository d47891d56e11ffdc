"""Hypothesis strategies for the Kubernetes streaming protocols, and the oracle they need.

Each strategy draws what a peer puts on the wire, built here by hand (not by kstream's
encoders), so a test of any client or server -- kstream's or another -- can feed it:

* :func:`status_documents` -- the exit-status document of the error channel (``metav1.Status``
  JSON), every shape client-go accepts, or malformed ones; :func:`client_go_outcome` says
  what client-go reports for any of them.
* :func:`exit_codes` -- process exit codes.
* :func:`channel_messages` -- one message of any of the five WebSocket channel subprotocols.
* :func:`websocket_frames` / :func:`spdy_frames` -- frame streams, valid or adversarial.
* :func:`resize_messages` -- the JSON a client writes on the resize channel.
* :func:`split_points` / :func:`chunkers` -- the ways a byte stream arrives in reads.

This is the only kstream module that imports :mod:`hypothesis` (the ``testing`` extra):
``import kstream`` never loads it.
"""

from __future__ import annotations

import base64
import itertools
import json
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from hypothesis import strategies as st

from .._channels import WEBSOCKET_PROTOCOLS
from .._errors import RemoteProtocolError
from .._spdy.dictionary import HEADER_DICTIONARY
from .._spdy.frames import FrameEncoder, RstStatus
from .._status_types import Exited, Failed, Status

__all__ = [
    "CHANNEL_PROTOCOLS",
    "ChannelMessage",
    "Chunker",
    "Outcome",
    "ResizeMessage",
    "channel_messages",
    "chunkers",
    "client_go_outcome",
    "exit_codes",
    "resize_messages",
    "spdy_frames",
    "split_points",
    "status_documents",
    "websocket_frames",
]

#: The five WebSocket channel subprotocols, newest first.
CHANNEL_PROTOCOLS: Final = ("v5.channel.k8s.io", "v4.channel.k8s.io",
                            "v4.base64.channel.k8s.io", "channel.k8s.io",
                            "base64.channel.k8s.io")

#: What client-go reports for an error channel: the exit code, a failure without one, or
#: an ``error stream protocol error`` (kstream raises it as :class:`~kstream.RemoteProtocolError`).
Outcome = Exited | Failed | RemoteProtocolError

#: Splits a byte string into the reads a peer would see (non-empty, in order).
Chunker = Callable[[bytes], list[bytes]]


# --------------------------------------------------------------------------- the oracle


def client_go_outcome(document: bytes, version: int = 5) -> Outcome:
    """What client-go reports for ``document`` read whole from the error channel.

    client-go (``tools/remotecommand/v4.go`` ``errorDecoderV4``) decodes the document with
    ``encoding/json`` and reports an exit code, a failure, or a protocol error; kstream's
    decoder reproduces it (see docs/status.md), so this is that decoder, with a protocol
    error returned rather than raised. Message texts of undecodable JSON differ from Go's;
    the kind of outcome does not.

    Args:
        document: everything on the error channel (``b""`` is success).
        version: the remotecommand version, 1..5 (1-3 read the bytes as plain text).

    Returns:
        :class:`~kstream.Exited`, :class:`~kstream.Failed` or the
        :class:`~kstream.RemoteProtocolError` client-go's error would be.
    """
    try:
        return Status.parse_error_channel(document, version)
    except RemoteProtocolError as exc:
        return exc


# --------------------------------------------------------------------------- status documents

# Go matches keys case-insensitively, with two non-ASCII runes folding to ASCII letters.
_FOLDS: Final = {"k": ("k", "K", "\u212a"), "s": ("s", "S", "\u017f")}


@st.composite
def _go_key(draw: st.DrawFn, name: str) -> str:
    """A JSON key Go's ``encoding/json`` matches to the field ``name``."""
    style = draw(st.sampled_from(["exact", "exact", "lower", "upper", "mixed"]))
    if style == "exact":
        return name
    if style == "lower":
        return name.lower()
    if style == "upper":
        return name.upper()
    letters = []
    for char in name:
        options = _FOLDS.get(char.lower(), (char.lower(), char.upper()))
        letters.append(draw(st.sampled_from(options)))
    return "".join(letters)


_TEXT: Final = st.text(st.characters(codec="utf-8"), max_size=40)
_ASCII_WORD: Final = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1,
                             max_size=12)
_INT32: Final = st.integers(-(2**31), 2**31 - 1)
_INT64: Final = st.integers(-(2**63), 2**63 - 1)
_SPACE: Final = st.sampled_from(["", "", "", " ", "\n", "\t", " \r\n "])

#: A member: the key to fold, and the JSON text of its value.
_Member = tuple[str, str]


def _string(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)


@st.composite
def _json_string(draw: st.DrawFn, strategy: st.SearchStrategy[str] = _TEXT) -> str:
    literal = _string(draw(strategy), draw(st.booleans()))
    if draw(st.integers(0, 9)) == 0:
        # A lone surrogate escape: valid JSON, which Go decodes as U+FFFD.
        literal = literal[:-1] + "\\ud800" + literal[-1]
    return literal


@st.composite
def _render(draw: st.DrawFn, members: Sequence[_Member]) -> str:
    """An object with ``members`` in order: keys folded as Go allows, any whitespace."""
    parts = []
    for key, value in members:
        name = draw(_go_key(key)) if key.isascii() else key
        parts.append(f"{draw(_SPACE)}{_string(name, draw(st.booleans()))}{draw(_SPACE)}:"
                     f"{draw(_SPACE)}{value}{draw(_SPACE)}")
    return "{" + ",".join(parts) + draw(_SPACE) + "}"


_UNKNOWN_VALUES: Final = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
                                                                 allow_infinity=False), _TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_ASCII_WORD, inner, max_size=3)),
    max_leaves=6,
).map(lambda value: json.dumps(value))


@st.composite
def _unknown_members(draw: st.DrawFn) -> list[_Member]:
    # Keys no field has: Go ignores them, whatever their value.
    names = st.sampled_from(["extra", "spec", "items", "x-kstream", "detail", "Kinds"])
    return draw(st.lists(st.tuples(names, _UNKNOWN_VALUES), max_size=2))


@st.composite
def _metadata(draw: st.DrawFn) -> list[_Member]:
    shape = draw(st.sampled_from(["absent", "empty", "empty", "null", "full"]))
    if shape == "absent":
        return []
    if shape == "empty":
        return [("metadata", "{}")]
    if shape == "null":
        return [("metadata", "null")]
    fields: list[_Member] = [("selfLink", draw(_json_string())),
                             ("resourceVersion", draw(_json_string())),
                             ("continue", draw(_json_string())),
                             ("remainingItemCount", str(draw(_INT64)))]
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=4))
    return [("metadata", draw(_render(chosen)))]


@st.composite
def _cause(draw: st.DrawFn, *, reason: str | None = None, message: str | None = None) -> str:
    members: list[_Member] = []
    if reason is not None or draw(st.booleans()):
        members.append(("reason", _string(reason if reason is not None
                                          else draw(st.sampled_from(["", "FieldValueInvalid",
                                                                     "exitcode", "Exit"])),
                                          draw(st.booleans()))))
    if message is not None or draw(st.booleans()):
        members.append(("message", _string(message if message is not None else draw(_TEXT),
                                           draw(st.booleans()))))
    if draw(st.booleans()):
        members.append(("field", draw(_json_string())))
    members += draw(_unknown_members())
    return str(draw(_render(draw(st.permutations(members)))))


@st.composite
def _details(draw: st.DrawFn, causes: Sequence[str]) -> str:
    members: list[_Member] = [("causes", "[" + ",".join(causes) + "]")]
    for name in ("name", "group", "kind", "uid"):
        if draw(st.booleans()):
            members.append((name, draw(_json_string())))
    if draw(st.booleans()):
        members.append(("retryAfterSeconds", str(draw(_INT32))))
    members += draw(_unknown_members())
    if not causes and draw(st.booleans()):
        members = [member for member in members if member[0] != "causes"]
    return str(draw(_render(draw(st.permutations(members)))))


def _exit_code_text(code: int) -> st.SearchStrategy[str]:
    # strconv.ParseUint(s, 10, 8): decimal digits, leading zeros allowed.
    return st.integers(0, 3).map(lambda zeros: "0" * zeros + str(code))


@st.composite
def _outcome_members(draw: st.DrawFn) -> list[_Member]:
    """The members that decide the outcome: Success, an exit code, or another failure."""
    kind = draw(st.sampled_from(["success", "exit", "exit", "failure"]))
    members: list[_Member] = []
    if kind == "success":
        members.append(("status", '"Success"'))
        if draw(st.booleans()):
            members.append(("details", draw(_details(draw(st.lists(_cause(), max_size=2))))))
    elif kind == "exit":
        code = draw(exit_codes())
        exit_cause = draw(_cause(reason="ExitCode", message=draw(_exit_code_text(code))))
        before = draw(st.lists(_cause(reason=draw(st.sampled_from(["", "Other", "exitCode"]))),
                               max_size=2))
        # Causes after the first ExitCode cause are never read, valid or not.
        after = draw(st.lists(_cause(reason="ExitCode"), max_size=1))
        members += [("status", '"Failure"'), ("reason", '"NonZeroExitCode"'),
                    ("details", draw(_details([*before, exit_cause, *after])))]
    else:
        reason = draw(st.sampled_from(["InternalError", "", "NotFound", "Forbidden",
                                       "nonzeroexitcode", "Unknown"]))
        members += [("status", '"Failure"'), ("reason", _string(reason, draw(st.booleans())))]
        if draw(st.booleans()):
            members.append(("details", draw(_details(draw(st.lists(_cause(), max_size=2))))))
    if draw(st.booleans()):
        members.append(("message", draw(_json_string())))
    if draw(st.booleans()):
        members.append(("code", str(draw(_INT32))))
    return members


@st.composite
def _valid_document(draw: st.DrawFn) -> bytes:
    members = draw(_outcome_members())
    members += draw(_metadata())
    if draw(st.booleans()):
        members += [("kind", '"Status"'), ("apiVersion", '"v1"')]
    members += draw(_unknown_members())
    members = list(draw(st.permutations(members)))
    # Go lets a later duplicate key win and treats null as "leave alone": put overridden
    # and null members before the ones that decide.
    decided = {key for key, _ in members}
    decoys: list[_Member] = []
    for key in ("message", "code", "kind"):
        if draw(st.integers(0, 4)) == 0:
            decoys.append((key, "null"))
    if "status" in decided and draw(st.integers(0, 4)) == 0:
        decoys.append(("status", '"Bogus"'))
    if "details" not in decided and draw(st.integers(0, 3)) == 0:
        decoys.append(("details", "null"))
    return str(draw(_render(decoys + members))).encode("utf-8")


# Malformed documents, each a kind of mistake a broken server makes.
_WRONG_TYPES: Final = (
    '"code":"500"', '"code":1.5', '"code":1e2', '"code":2147483648', '"code":true',
    '"status":1', '"message":[]', '"reason":{}', '"metadata":[]', '"metadata":"x"',
    '"metadata":{"remainingItemCount":"1"}', '"details":[]', '"details":"x"',
    '"details":{"causes":{}}', '"details":{"causes":[1]}', '"details":{"causes":["x"]}',
    '"details":{"causes":[{"message":5}]}', '"details":{"retryAfterSeconds":1.0}',
    '"details":{"retryAfterSeconds":4294967296}', '"details":{"name":false}',
)

_BAD_EXIT_CODES: Final = ("256", "-1", "+1", "", " 1", "1 ", "1e2", "0x1", "١", "99999999999")


@st.composite
def _malformed_document(draw: st.DrawFn) -> bytes:
    valid = draw(_valid_document())
    kind = draw(st.sampled_from(["syntax", "type", "not-object", "exit-code",
                                 "no-details", "no-cause", "status", "utf8"]))
    if kind == "syntax":
        text = valid.decode("utf-8")
        mutation = draw(st.sampled_from(["truncate", "trailing", "quote", "nan", "comma"]))
        if mutation == "truncate":
            return text[:draw(st.integers(1, max(1, len(text) - 1)))].encode("utf-8")
        if mutation == "trailing":
            return (text + draw(st.sampled_from(["x", "{}", "]", ",", "\x00"]))).encode()
        if mutation == "quote":
            return text.replace('"', "'", 1).encode("utf-8")
        if mutation == "nan":
            return b'{"status":"Failure","code":NaN}'
        return text[:-1].rstrip().encode("utf-8") + b",}"
    if kind == "type":
        wrong = draw(st.sampled_from(_WRONG_TYPES))
        return ('{"status":"Failure",' + wrong + "}").encode("utf-8")
    if kind == "not-object":
        return draw(st.sampled_from([b"[]", b'"Success"', b"1", b"null", b"true",
                                     b'[{"status":"Success"}]']))
    if kind == "exit-code":
        cause = json.dumps({"reason": "ExitCode",
                            "message": draw(st.sampled_from(_BAD_EXIT_CODES))})
        return ('{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":['
                + cause + "]}}").encode("utf-8")
    if kind == "no-details":
        tail = draw(st.sampled_from(["", ',"details":null', ',"details":{},"details":null']))
        return ('{"status":"Failure","reason":"NonZeroExitCode","message":"x"' + tail
                + "}").encode("utf-8")
    if kind == "no-cause":
        causes = draw(st.sampled_from(["", '{"reason":"exitcode","message":"1"}',
                                       '{"message":"1"}']))
        return ('{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":['
                + causes + "]}}").encode("utf-8")
    if kind == "status":
        value = draw(st.sampled_from(['"success"', '"failure"', '""', '"Ok"', "null"]))
        return ('{"status":' + value + ',"reason":"NonZeroExitCode"}').encode("utf-8")
    return b'{"status":"Failure","message":"\xff\xfe"}'


def status_documents(valid: bool = True) -> st.SearchStrategy[bytes]:
    """Exit-status documents (v4/v5 error channel), as a server writes them whole.

    ``valid=True`` covers every shape client-go's ``errorDecoderV4`` turns into an outcome
    without a protocol error: ``Success``; ``Failure`` + ``NonZeroExitCode`` with an
    ``ExitCode`` cause (codes 0..255 with leading zeros, other causes before it, anything
    after it); ``Failure`` with any other reason, details or not. Around those: keys in
    any case Go folds (``STATUS``, ``ſtatus``, KELVIN SIGN for ``k``), any whitespace,
    any member order, ``\\u`` escapes (lone surrogates included), unknown members of any
    JSON type, ``metadata`` absent, empty, ``null`` or with typed fields,
    ``kind``/``apiVersion``, ``code`` and ``retryAfterSeconds`` anywhere in int32, and
    overridden duplicates and ``null`` members before the ones that decide.

    ``valid=False`` covers the documents client-go refuses: broken JSON (truncated,
    trailing data, single quotes, ``NaN``), a JSON value that is not an object, fields of
    the wrong type or range, ``NonZeroExitCode`` without details or without an
    ``ExitCode`` cause or with an exit code ``ParseUint(s, 10, 8)`` refuses, a status
    that is neither ``Success`` nor ``Failure``, and invalid UTF-8.

    :func:`client_go_outcome` says what client-go reports for each.

    Args:
        valid: draw accepted documents (default) or malformed ones.

    Returns:
        A strategy of the documents' bytes.
    """
    return _valid_document() if valid else _malformed_document()


def exit_codes() -> st.SearchStrategy[int]:
    """Exit codes of a remote process: 0..255, with 0, 1, 2, 126, 127, 128+signal and 255
    drawn often (the ones shells and container runtimes produce).

    Returns:
        A strategy of ints in 0..255.
    """
    return st.one_of(st.sampled_from([0, 1, 2, 126, 127, 130, 137, 143, 255]),
                     st.integers(0, 255))


# --------------------------------------------------------------------------- WebSocket


_OP_CONTINUATION, _OP_TEXT, _OP_BINARY = 0x0, 0x1, 0x2
_LARGE: Final = bytes(range(256))
_OP_CLOSE, _OP_PING, _OP_PONG = 0x8, 0x9, 0xA


def _frame(opcode: int, payload: bytes, *, fin: bool = True, key: bytes | None = None,
           first_bits: int = 0) -> bytes:
    """One RFC 6455 frame, written by hand (minimal length encoding)."""
    first = (0x80 if fin else 0) | first_bits | opcode
    mask_bit = 0x80 if key is not None else 0
    size = len(payload)
    if size < 126:
        header = bytes((first, mask_bit | size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if key is None:
        return header + payload
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return header + key + masked


@dataclass(frozen=True, slots=True)
class ChannelMessage:
    """One WebSocket message of a channel subprotocol.

    Attributes:
        channel: the channel (0 stdin ... 4 resize; others are dropped by readers).
        data: the channel's bytes (empty for a CLOSE signal).
        payload: the message payload on the wire: channel byte + data, ``'0'+channel`` +
            base64 for the base64 protocols, ``FF channel`` for a v5 CLOSE signal.
        text: sent as a text message (the base64 protocols).
        close: a v5 CLOSE signal (``channel`` is the channel it ends).
    """

    channel: int
    data: bytes
    payload: bytes
    text: bool = False
    close: bool = False

    def wire(self, *, masked: bool, mask_key: bytes = b"\x37\xfa\x21\x3d") -> bytes:
        """The message as one frame: ``masked`` for client-to-server.

        Returns:
            The frame's bytes.
        """
        return _frame(_OP_TEXT if self.text else _OP_BINARY, self.payload,
                      key=mask_key if masked else None)


@st.composite
def _channel_message(draw: st.DrawFn, protocol: str, channels: st.SearchStrategy[int],
                     data: st.SearchStrategy[bytes]) -> ChannelMessage:
    info = WEBSOCKET_PROTOCOLS[protocol]
    channel = draw(channels)
    if info.supports_close and draw(st.integers(0, 5)) == 0:
        return ChannelMessage(channel, b"", bytes((255, channel)), close=True)
    payload = draw(data)
    if info.base64:
        if channel > 79:  # '0' + channel must stay a single byte below 0x80
            channel %= 80
        encoded = bytes((ord("0") + channel,)) + base64.b64encode(payload)
        return ChannelMessage(channel, payload, encoded, text=True)
    return ChannelMessage(channel, payload, bytes((channel,)) + payload)


def channel_messages(protocol: str, *, channels: st.SearchStrategy[int] | None = None,
                     data: st.SearchStrategy[bytes] | None = None,
                     ) -> st.SearchStrategy[ChannelMessage]:
    """Messages of one WebSocket channel subprotocol, as they travel.

    Covers every channel 0..4 (and, with ``channels``, unknown ones), empty and large
    payloads, the binary framing (``channel`` byte + data) of ``v5.channel.k8s.io``,
    ``v4.channel.k8s.io`` and ``channel.k8s.io``, the text framing (``'0'+channel`` then
    padded base64) of ``v4.base64.channel.k8s.io`` and ``base64.channel.k8s.io``, and on
    v5 the CLOSE signal ``FF channel``. :meth:`ChannelMessage.wire` frames one.

    Args:
        protocol: one of :data:`CHANNEL_PROTOCOLS`.
        channels: the channels to draw (default 0..4).
        data: the channel data to draw (default: up to 300 bytes, sometimes 64-68 KiB).

    Returns:
        A strategy of :class:`ChannelMessage`.

    Raises:
        KeyError: ``protocol`` is not a channel subprotocol.
    """
    WEBSOCKET_PROTOCOLS[protocol]  # fail early on a typo
    return _channel_message(
        protocol, channels if channels is not None else st.integers(0, 4),
        data if data is not None else st.one_of(
            st.binary(max_size=300), st.just(b""),
            # Large: past the 16-bit length form and client-go's 32 KiB pieces.
            st.integers(65_536, 70_000).map(lambda n: (_LARGE * (n // len(_LARGE) + 1))[:n])),
    )


@st.composite
def _valid_frames(draw: st.DrawFn, masked: bool) -> bytes:
    keys = st.binary(min_size=4, max_size=4)
    out = bytearray()
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["binary", "binary", "text", "fragmented", "ping", "pong"]))
        key = draw(keys) if masked else None
        if kind in ("ping", "pong"):
            payload = draw(st.binary(max_size=125))
            out += _frame(_OP_PING if kind == "ping" else _OP_PONG, payload, key=key)
        elif kind == "text":
            text = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
            try:
                text.decode("utf-8")
            except UnicodeDecodeError:
                text = b"x"
            out += _frame(_OP_TEXT, text, key=key)
        elif kind == "binary":
            size = draw(st.sampled_from([0, 1, 125, 126, 200, 65535, 65536]))
            out += _frame(_OP_BINARY, draw(st.binary(min_size=size, max_size=size))
                          if size < 300 else bytes(size), key=key)
        else:
            pieces = draw(st.lists(st.binary(max_size=50), min_size=2, max_size=4))
            for index, piece in enumerate(pieces):
                opcode = _OP_BINARY if index == 0 else _OP_CONTINUATION
                out += _frame(opcode, piece, fin=index == len(pieces) - 1,
                              key=draw(keys) if masked else None)
                if index == 0 and draw(st.booleans()):  # a control frame may interleave
                    out += _frame(_OP_PING, b"", key=draw(keys) if masked else None)
    if draw(st.booleans()):
        code = draw(st.sampled_from([1000, 1001, 1011, 3000, 4999]))
        out += _frame(_OP_CLOSE, struct.pack("!H", code) + draw(st.sampled_from(
            [b"", b"bye", "é".encode()])), key=draw(keys) if masked else None)
    return bytes(out)


@st.composite
def _adversarial_frame(draw: st.DrawFn, masked: bool) -> bytes:
    key = b"\x01\x02\x03\x04" if masked else None
    kind = draw(st.sampled_from([
        "rsv", "reserved-data-opcode", "reserved-control-opcode", "long-control",
        "fragmented-control", "orphan-continuation", "interrupted-message", "wrong-mask",
        "close-1-byte", "close-bad-code", "close-bad-utf8", "text-bad-utf8", "length-top-bit",
    ]))
    if kind == "rsv":
        return _frame(_OP_BINARY, b"\x01x", key=key,
                      first_bits=draw(st.sampled_from([0x10, 0x20, 0x40])))
    if kind == "reserved-data-opcode":
        return _frame(draw(st.integers(3, 7)), b"x", key=key)
    if kind == "reserved-control-opcode":
        return _frame(draw(st.integers(0xB, 0xF)), b"", key=key)
    if kind == "long-control":
        return _frame(draw(st.sampled_from([_OP_PING, _OP_PONG, _OP_CLOSE])),
                      b"\x03\xe8" + b"x" * 124, key=key)
    if kind == "fragmented-control":
        return _frame(_OP_PING, b"", fin=False, key=key)
    if kind == "orphan-continuation":
        return _frame(_OP_CONTINUATION, b"x", key=key)
    if kind == "interrupted-message":
        return (_frame(_OP_BINARY, b"\x01a", fin=False, key=key)
                + _frame(_OP_BINARY, b"\x01b", key=key))
    if kind == "wrong-mask":
        return _frame(_OP_BINARY, b"\x01x", key=None if masked else b"\x01\x02\x03\x04")
    if kind == "close-1-byte":
        return _frame(_OP_CLOSE, b"\x03", key=key)
    if kind == "close-bad-code":
        code = draw(st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]))
        return _frame(_OP_CLOSE, struct.pack("!H", code), key=key)
    if kind == "close-bad-utf8":
        return _frame(_OP_CLOSE, b"\x03\xe8\xff", key=key)
    if kind == "text-bad-utf8":
        return _frame(_OP_TEXT, draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])),
                      key=key)
    first = 0x80 | _OP_BINARY
    return struct.pack("!BBQ", first, (0x80 if masked else 0) | 127, 1 << 63) + (key or b"")


@st.composite
def _invalid_frames(draw: st.DrawFn, masked: bool) -> bytes:
    prefix = draw(_valid_frames(masked)) if draw(st.booleans()) else b""
    if _ends_with_close(prefix, masked):
        prefix = b""
    return prefix + draw(_adversarial_frame(masked))


def _ends_with_close(stream: bytes, masked: bool) -> bool:
    # A reader ignores what follows a close frame: keep the bad frame before any close.
    position = 0
    last = -1
    while position < len(stream):
        opcode = stream[position] & 0x0F
        size = stream[position + 1] & 0x7F
        header = 2
        if size == 126:
            size = struct.unpack_from("!H", stream, position + 2)[0]
            header = 4
        elif size == 127:
            size = struct.unpack_from("!Q", stream, position + 2)[0]
            header = 10
        last = opcode
        position += header + (4 if masked else 0) + size
    return last == _OP_CLOSE


def websocket_frames(valid: bool = True, *, masked: bool = True) -> st.SearchStrategy[bytes]:
    """A stream of RFC 6455 frames, as one peer writes them after the upgrade.

    ``valid=True``: binary messages of 0, 1, 125, 126, 200, 65535 and 65536 bytes (every
    length encoding and its edges), UTF-8 text messages, fragmented messages with a ping
    between fragments, pings and pongs up to 125 bytes, and maybe a final close frame
    with a valid code and reason. Every frame is masked when ``masked`` (client to
    server), none otherwise, with random keys.

    ``valid=False``: optionally a valid prefix, then one frame every reader must refuse:
    a reserved bit, a reserved data or control opcode, a control frame over 125 bytes or
    fragmented, a continuation without a message, a new message inside a fragmented one,
    the wrong masking for the direction, a close frame of 1 byte, with an invalid code or
    a reason that is not UTF-8, a text message that is not UTF-8, a 64-bit length with
    the top bit set.

    Args:
        valid: draw valid streams (default) or adversarial ones.
        masked: the frames travel client to server (masked), else server to client.

    Returns:
        A strategy of the stream's bytes.
    """
    return _valid_frames(masked) if valid else _invalid_frames(masked)


# --------------------------------------------------------------------------- SPDY

_SPDY_HEADERS: Final = st.lists(
    st.tuples(st.sampled_from(["streamtype", "x-kstream", ":path", "user-agent"]),
              st.sampled_from(["error", "stdin", "stdout", "stderr", "resize", "", "é"])),
    max_size=4, unique_by=lambda pair: pair[0])


@st.composite
def _valid_spdy(draw: st.DrawFn) -> bytes:
    # kstream's encoder owns the one zlib stream a direction has; the frames' fields are
    # drawn here.
    encoder = FrameEncoder()
    out = bytearray()
    stream_ids = st.integers(1, 2**31 - 1)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["syn_stream", "syn_reply", "headers", "data", "rst",
                                     "settings", "ping", "goaway", "window_update"]))
        if kind == "syn_stream":
            out += encoder.syn_stream(draw(stream_ids), draw(_SPDY_HEADERS),
                                      fin=draw(st.booleans()),
                                      unidirectional=draw(st.booleans()))
        elif kind == "syn_reply":
            out += encoder.syn_reply(draw(stream_ids), draw(_SPDY_HEADERS),
                                     fin=draw(st.booleans()))
        elif kind == "headers":
            out += encoder.headers(draw(stream_ids), draw(_SPDY_HEADERS),
                                   fin=draw(st.booleans()))
        elif kind == "data":
            size = draw(st.sampled_from([0, 1, 100, 4096, 70_000]))
            out += encoder.data(draw(stream_ids), bytes(size), fin=draw(st.booleans()))
        elif kind == "rst":
            out += encoder.rst_stream(draw(stream_ids), draw(st.sampled_from(list(RstStatus))))
        elif kind == "settings":
            entries = draw(st.lists(st.tuples(st.integers(0, 1), st.integers(1, 8),
                                              st.integers(0, 2**32 - 1)), max_size=3))
            out += encoder.settings(entries)
        elif kind == "ping":
            out += encoder.ping(draw(st.integers(1, 2**32 - 1)))
        elif kind == "goaway":
            out += encoder.goaway(draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2)))
        else:
            out += encoder.window_update(draw(st.integers(0, 2**31 - 1)),
                                         draw(st.integers(1, 2**31 - 1)))
    return bytes(out)


def _control(frame_type: int, payload: bytes, *, flags: int = 0, version: int = 3,
             length: int | None = None) -> bytes:
    size = len(payload) if length is None else length
    return struct.pack("!HHI", 0x8000 | version, frame_type, (flags << 24) | size) + payload


def _header_block(pairs: Sequence[tuple[bytes, bytes]]) -> bytes:
    raw = struct.pack("!I", len(pairs)) + b"".join(
        struct.pack("!I", len(name)) + name + struct.pack("!I", len(value)) + value
        for name, value in pairs)
    compressor = zlib.compressobj(zdict=HEADER_DICTIONARY)
    return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)


@st.composite
def _adversarial_spdy(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from([
        "version", "fixed-length", "settings-length", "flags", "data-stream-zero",
        "syn-stream-zero", "too-long", "garbage-block", "upper-case-name", "duplicate-name",
        "short",
    ]))
    if kind == "version":
        return _control(6, b"\x00\x00\x00\x01", version=draw(st.sampled_from([1, 2, 4])))
    if kind == "fixed-length":
        frame_type, size = draw(st.sampled_from([(3, 7), (3, 9), (6, 3), (6, 5), (7, 4),
                                                 (9, 7)]))
        return _control(frame_type, bytes(size))
    if kind == "settings-length":
        return _control(4, struct.pack("!I", 1) + bytes(5))
    if kind == "flags":
        frame_type = draw(st.sampled_from([6, 7, 9]))
        size = 4 if frame_type == 6 else 8
        return _control(frame_type, struct.pack("!II", 1, 1)[:size], flags=1)
    if kind == "data-stream-zero":
        return struct.pack("!II", 0, 1) + b"x"
    if kind == "syn-stream-zero":
        return _control(1, struct.pack("!IIH", 0, 0, 0) + _header_block([]))
    if kind == "too-long":
        return _control(1, b"", length=(1 << 24) - 1)
    if kind == "garbage-block":
        return _control(2, struct.pack("!I", 1) + draw(st.binary(min_size=1, max_size=20)))
    if kind == "upper-case-name":
        return _control(2, struct.pack("!I", 1) + _header_block([(b"StreamType", b"error")]))
    if kind == "duplicate-name":
        return _control(2, struct.pack("!I", 1) + _header_block(
            [(b"streamtype", b"error"), (b"streamtype", b"stdin")]))
    return _control(1, struct.pack("!I", 1))


@st.composite
def _invalid_spdy(draw: st.DrawFn) -> bytes:
    frame = draw(_adversarial_spdy())
    # Header blocks above are each a fresh zlib stream: they must come first.
    if frame[2:4] in (b"\x00\x01", b"\x00\x02") or not draw(st.booleans()):
        return frame
    return draw(_valid_spdy()) + frame


def spdy_frames(valid: bool = True) -> st.SearchStrategy[bytes]:
    """A stream of SPDY/3.1 frames, as one direction of a session carries them.

    ``valid=True``: SYN_STREAM, SYN_REPLY and HEADERS with remotecommand-like headers
    (one zlib stream with the SPDY/3 dictionary across them, as on a real connection),
    DATA of 0 to 70,000 bytes with or without FIN, RST_STREAM of every status, SETTINGS,
    PING, GOAWAY and WINDOW_UPDATE, on any stream id. Valid frame by frame; whether a
    session accepts them in this order is the session's business.

    ``valid=False``: optionally valid frames, then one a reader must refuse: a version
    other than 3, a fixed-size frame (RST_STREAM, PING, GOAWAY, WINDOW_UPDATE) of the
    wrong length, a SETTINGS length that is not ``4 + 8n``, flags on a frame that has
    none (PING, GOAWAY, WINDOW_UPDATE), DATA or SYN_STREAM on stream 0, a control frame
    far too long, a header block that is not zlib, or that names a header in upper case
    or twice, a truncated SYN_STREAM.

    Args:
        valid: draw valid streams (default) or adversarial ones.

    Returns:
        A strategy of the stream's bytes.
    """
    return _valid_spdy() if valid else _invalid_spdy()


# --------------------------------------------------------------------------- resize


@dataclass(frozen=True, slots=True)
class ResizeMessage:
    """One resize event as a client writes it on the resize channel.

    Attributes:
        data: the JSON bytes.
        width: the columns a server must read from it.
        height: the rows.
    """

    data: bytes
    width: int
    height: int


@st.composite
def _resize_message(draw: st.DrawFn) -> ResizeMessage:
    width = draw(st.integers(0, 65535))
    height = draw(st.integers(0, 65535))
    if draw(st.integers(0, 2)) == 0:  # client-go's own encoding, the common case
        return ResizeMessage(f'{{"Width":{width},"Height":{height}}}\n'.encode(), width, height)
    members: list[_Member] = [("Width", str(width)), ("Height", str(height))]
    members += draw(_unknown_members())
    members = list(draw(st.permutations(members)))
    if draw(st.booleans()):  # a null leaves the field alone
        members.insert(0, (draw(st.sampled_from(["Width", "Height"])), "null"))
    newline = draw(st.sampled_from(["", "\n", "\r\n", " "]))
    return ResizeMessage((str(draw(_render(members))) + newline).encode("utf-8"),
                         width, height)


def resize_messages() -> st.SearchStrategy[ResizeMessage]:
    """Resize events (``remotecommand.TerminalSize`` JSON), as clients write them.

    Covers client-go's ``{"Width":W,"Height":H}\\n`` for every uint16 size, and what Go's
    ``json.Decoder`` also accepts: keys in any folded case and order, whitespace and no
    newline, unknown members of any JSON type, a ``null`` field before the real one.

    Returns:
        A strategy of :class:`ResizeMessage` (bytes and the size they mean).
    """
    return _resize_message()


# --------------------------------------------------------------------------- splits


def _cut(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    pieces = []
    start = 0
    index = 0
    while start < len(data):
        size = max(1, sizes[index % len(sizes)]) if sizes else len(data)
        pieces.append(data[start:start + size])
        start += size
        index += 1
    return pieces


@st.composite
def _split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    if not data:
        return []
    style = draw(st.sampled_from(["whole", "bytes", "cuts", "cuts", "sizes"]))
    if style == "whole":
        return [data]
    if style == "bytes" and len(data) <= 4096:
        return [data[i:i + 1] for i in range(len(data))]
    if style == "sizes":
        return _cut(data, draw(st.lists(st.integers(1, 4096), min_size=1, max_size=8)))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=12))))
    edges = [0, *(cut for cut in cuts if 0 < cut < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def split_points(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """The ways ``data`` can arrive as reads: one read, one byte per read, reads cut at
    any points (the cut positions are the running sums of the pieces' lengths), or
    repeating read sizes up to 4 KiB.

    Args:
        data: the byte string to cut.

    Returns:
        A strategy of lists of non-empty pieces whose concatenation is ``data``
        (``[]`` for ``b""``: no read carries nothing, an empty read is EOF).
    """
    return _split(bytes(data))


def chunkers() -> st.SearchStrategy[Chunker]:
    """Read-size policies for a pump: each cuts any byte string it is given.

    Covers whole writes, one byte per read, and repeating read sizes from 1 byte to
    64 KiB (a socket's reads). Use it where the data is not known in advance, e.g.
    ``pair.pump(split=data.draw(chunkers()))`` (:mod:`kstream.testing.pairs`).

    Returns:
        A strategy of :data:`Chunker` callables (deterministic: the same input gives the
        same pieces).
    """
    sizes = st.lists(st.one_of(st.integers(1, 16), st.integers(1, 65536)), min_size=1,
                     max_size=6)
    return st.one_of(st.just(lambda data: [data] if data else []),
                     st.just(lambda data: _cut(data, [1])),
                     sizes.map(lambda chosen: lambda data: _cut(data, chosen)))
