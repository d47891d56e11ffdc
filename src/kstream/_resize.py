"""Terminal resize events: the JSON stream on the resize channel (remotecommand v3+).

The client writes ``json.NewEncoder(w).Encode(TerminalSize{Width, Height})`` per event,
``{"Width":80,"Height":24}`` plus a newline (``client-go/tools/remotecommand/resize.go``,
``v3.go``). The server reads the stream with one ``json.NewDecoder`` decoding into
``struct{Width, Height uint16}`` until the first error
(``kubelet/pkg/cri/streaming/remotecommand/httpstream.go`` ``handleResizeEvents``).
:class:`ResizeDecoder` accepts what that Go decoder accepts (protocol-notes §2.2): values
may be split anywhere, newlines are optional, keys match case-insensitively, unknown keys
are skipped, ``null`` leaves a field alone. One deliberate difference: invalid UTF-8 is
refused (Go would read it as U+FFFD inside strings); no client writes it.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Final, NoReturn

from ._errors import LocalProtocolError, RemoteProtocolError
from ._gojson import fold_key, quote_for_error

__all__ = ["DEFAULT_MAX_RESIZE_BUFFER", "ResizeDecoder", "TerminalSize", "encode_resize"]

#: Default bound on one buffered resize event, in bytes.
DEFAULT_MAX_RESIZE_BUFFER: Final = 4096

_UINT16_MAX: Final = 0xFFFF


@dataclass(frozen=True, slots=True)
class TerminalSize:
    """A terminal size in character cells (``remotecommand.TerminalSize``).

    Attributes:
        width: columns, 0..65535.
        height: rows, 0..65535.
    """

    width: int
    height: int


def _check_dimension(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT16_MAX:
        raise LocalProtocolError(f"terminal {name} must be 0..65535, not {value!r}")


def encode_resize(width: int, height: int) -> bytes:
    """Encode one resize event exactly as client-go does.

    Args:
        width: columns, 0..65535.
        height: rows, 0..65535.

    Returns:
        ``b'{"Width":80,"Height":24}\\n'``.

    Raises:
        LocalProtocolError: a dimension is not an int in 0..65535.
    """
    _check_dimension(width, "width")
    _check_dimension(height, "height")
    return b'{"Width":%d,"Height":%d}\n' % (width, height)


# One JSON token, after optional whitespace. Possessive quantifiers keep a long string
# from backtracking.
_TOKEN: Final = re.compile(
    rb"""[ \t\n\r]*+(?:
        (?P<punct>[{}\[\]:,])
      | (?P<string>"(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+")
      | (?P<number>-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][-+]?[0-9]++)?)
      | (?P<literal>true|false|null)
    )""",
    re.VERBOSE,
)
# Everything a complete token could still start with, up to the end of the buffer: the
# buffer is incomplete rather than invalid when this matches from the current position.
_NUMBER_PREFIX: Final = rb"-?(?:(?:0|[1-9][0-9]*+)(?:\.[0-9]*+|(?:\.[0-9]++)?[eE][-+]?[0-9]*+)?)?"
_INCOMPLETE: Final = re.compile(
    rb"[ \t\n\r]*+(?:"
    rb'"(?:[^"\\\x00-\x1f]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+(?:\\(?:u[0-9a-fA-F]{0,3})?)?'
    rb"|t(?:r(?:u)?)?|f(?:a(?:l(?:s)?)?)?|n(?:u(?:l)?)?|" + _NUMBER_PREFIX + rb")"
)
_NUMBER_TO_END: Final = re.compile(_NUMBER_PREFIX)
# What client-go writes, decoded without going token by token.
_CANONICAL: Final = re.compile(
    rb'[ \t\n\r]*+\{"Width":(0|[1-9][0-9]{0,4}),"Height":(0|[1-9][0-9]{0,4})\}')
_CANONICAL_MAX: Final = len(b'{"Width":65535,"Height":65535}')
_WHITESPACE: Final = re.compile(rb"[ \t\n\r]*+")
_DIGITS: Final = re.compile(rb"[0-9]{1,5}")

# What the parser expects next.
_TOP: Final = 0  # the start of the next event (an object, or null)
_VALUE: Final = 1  # a value (after ":" or after "," in an array)
_FIRST_VALUE: Final = 2  # a value or "]" (just after "[")
_FIRST_KEY: Final = 3  # a key or "}" (just after "{")
_KEY: Final = 4  # a key (after "," in an object)
_COLON: Final = 5
_AFTER_VALUE: Final = 6  # "," or the end of the innermost container

_OPEN_TO_CLOSE: Final = {b"{": b"}", b"[": b"]"}
_FIELDS: Final = {fold_key("Width"): "width", fold_key("Height"): "height"}


class ResizeDecoder:
    """Incremental decoder of the resize channel's stream of JSON objects.

    Feed it bytes as they arrive; it returns every event completed so far. Partial input is
    buffered (at most ``max_buffer`` bytes per event). Whitespace between events is
    optional. A bare ``null`` is an event of size 0x0, as in Go.

    After a :class:`~kstream.RemoteProtocolError` the decoder stays failed: every later call
    raises the same error (the Go server stops reading resize events at the first error).
    """

    def __init__(self, *, max_buffer: int = DEFAULT_MAX_RESIZE_BUFFER) -> None:
        """Create a decoder.

        Args:
            max_buffer: the largest number of bytes one event may span.

        Raises:
            LocalProtocolError: ``max_buffer`` is not a positive int.
        """
        if isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 1:
            raise LocalProtocolError(f"max_buffer must be a positive int, not {max_buffer!r}")
        self._max_buffer = max_buffer
        self._buffer = bytearray()
        # Validates UTF-8 across feed() boundaries; its output is discarded.
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._error: RemoteProtocolError | None = None
        self._expect = _TOP
        self._closers: list[bytes] = []  # expected closing bracket per open container
        self._field: str | None = None  # "width"/"height" when its value comes next
        self._width = 0
        self._height = 0
        self._event_bytes = 0  # bytes of the current event already consumed

    def feed(self, data: bytes | bytearray | memoryview) -> list[TerminalSize]:
        """Add bytes from the resize channel.

        Args:
            data: the next bytes, split anywhere.

        Returns:
            The events completed by these bytes, in order (possibly none).

        Raises:
            RemoteProtocolError: invalid UTF-8 or JSON, a value that is not an object (or
                null), a ``Width``/``Height`` that is not an integer in 0..65535, or an
                event longer than ``max_buffer`` bytes.
        """
        if self._error is not None:
            raise self._error
        try:
            self._utf8.decode(data)
        except UnicodeDecodeError:
            self._fail("invalid UTF-8 in resize stream")
        self._buffer += data
        events: list[TerminalSize] = []
        del self._buffer[:self._parse(events)]
        # What is left is the start of an event (or of its next token): bound it.
        if self._event_bytes + len(self._buffer) > self._max_buffer:
            self._too_long()
        return events

    def feed_eof(self) -> None:
        """Tell the decoder the stream ended.

        Raises:
            RemoteProtocolError: the stream ended inside an event (Go reports
                ``io.ErrUnexpectedEOF``), or the decoder had already failed.
        """
        if self._error is not None:
            raise self._error
        if self._expect != _TOP or _WHITESPACE.fullmatch(self._buffer) is None:
            self._fail("resize stream ended inside an event: "
                       + quote_for_error(self._buffer))

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a completed event or token."""
        return len(self._buffer)

    # ----------------------------------------------------------------------------------

    def _fail(self, message: str) -> NoReturn:
        self._error = RemoteProtocolError(message)
        raise self._error

    def _too_long(self) -> NoReturn:
        self._fail(f"resize event longer than {self._max_buffer} bytes")

    def _parse(self, events: list[TerminalSize]) -> int:
        """Consume complete tokens; return the position of the first unconsumed byte."""
        buffer = self._buffer
        end = len(buffer)
        position = 0
        while position < end:
            if self._expect == _TOP:
                if not self._starts_event(position):
                    return end
                canonical = self._canonical(position)
                if canonical is not None:
                    position = canonical[0]
                    events.append(canonical[1])
                    continue
            match = _TOKEN.match(buffer, position)
            if match is None or (
                match.lastgroup == "number" and _NUMBER_TO_END.fullmatch(
                    buffer, match.start("number")) is not None
            ):
                if _INCOMPLETE.fullmatch(buffer, position) is not None:
                    return position
                self._fail("invalid JSON in resize stream at "
                           + quote_for_error(buffer[position:]))
            kind = match.lastgroup
            assert kind is not None  # every alternative is a named group
            if self._expect != _TOP:
                self._event_bytes += match.end() - position
                if self._event_bytes > self._max_buffer:
                    self._too_long()
            position = match.end()
            completed = self._token(kind, match.group(kind))
            if completed is not None:
                events.append(completed)
        return position

    def _canonical(self, position: int) -> tuple[int, TerminalSize] | None:
        """A whole event in client-go's own format at ``position``, if there is one."""
        match = _CANONICAL.match(self._buffer, position)
        if match is None or self._max_buffer < _CANONICAL_MAX:
            return None
        width, height = int(match.group(1)), int(match.group(2))
        if width > _UINT16_MAX or height > _UINT16_MAX:
            return None  # the general path reports it
        return match.end(), TerminalSize(width, height)

    def _starts_event(self, position: int) -> bool:
        """At the top level: skip whitespace; False if only whitespace is left."""
        first = _WHITESPACE.match(self._buffer, position)
        assert first is not None  # the pattern matches the empty string
        if first.end() == len(self._buffer):
            return False
        if self._buffer[first.end()] not in b"{n":
            # Not an object: Go's Decode fails with an UnmarshalTypeError.
            self._fail("resize event is not a JSON object: "
                       + quote_for_error(self._buffer[first.end():]))
        return True

    def _token(self, kind: str, token: bytes) -> TerminalSize | None:
        """Advance the grammar by one token; return an event when one completes."""
        expect = self._expect
        if expect == _COLON:
            if token != b":":
                self._unexpected(token)
            self._expect = _VALUE
        elif expect in (_FIRST_KEY, _KEY):
            if kind == "string":
                self._key(token)
            elif expect == _FIRST_KEY and token == b"}":
                return self._close(token)
            else:
                self._unexpected(token)
        elif expect == _AFTER_VALUE:
            if token == b",":
                self._expect = _KEY if self._closers[-1] == b"}" else _VALUE
            elif token in (b"}", b"]"):
                return self._close(token)
            else:
                self._unexpected(token)
        elif expect == _FIRST_VALUE and token == b"]":
            return self._close(token)
        else:
            return self._value(kind, token)
        return None

    def _value(self, kind: str, token: bytes) -> TerminalSize | None:
        if kind == "punct" and token not in _OPEN_TO_CLOSE:
            self._unexpected(token)
        if self._expect == _TOP:
            if token == b"null":
                return TerminalSize(0, 0)
            # _starts_event admits only "{" or "n", and "n..." tokens are "null".
            self._event_bytes = len(token)
            self._width = self._height = 0
        if self._field is not None:
            self._set_field(self._field, kind, token)
            self._field = None
        if kind == "punct":
            self._closers.append(_OPEN_TO_CLOSE[token])
            self._expect = _FIRST_KEY if token == b"{" else _FIRST_VALUE
        else:
            self._expect = _AFTER_VALUE
        return None

    def _key(self, token: bytes) -> None:
        if len(self._closers) == 1:
            key = json.loads(token) if b"\\" in token else token[1:-1].decode("utf-8")
            self._field = _FIELDS.get(fold_key(key))
        self._expect = _COLON

    def _set_field(self, name: str, kind: str, token: bytes) -> None:
        if token == b"null":
            return  # Go leaves the field unchanged
        if kind != "number":
            self._fail(f"resize {name} must be a number, not {quote_for_error(token)}")
        # strconv.ParseUint for a uint16 field: no sign, fraction or exponent.
        if _DIGITS.fullmatch(token) is None or int(token) > _UINT16_MAX:
            self._fail(f"resize {name} must be an integer in 0..65535, "
                       f"not {quote_for_error(token)}")
        if name == "width":
            self._width = int(token)
        else:
            self._height = int(token)

    def _close(self, token: bytes) -> TerminalSize | None:
        if token != self._closers[-1]:
            self._unexpected(token)
        self._closers.pop()
        self._expect = _AFTER_VALUE
        if self._closers:
            return None
        self._expect = _TOP
        self._event_bytes = 0
        return TerminalSize(self._width, self._height)

    def _unexpected(self, token: bytes) -> NoReturn:
        self._fail(f"invalid JSON in resize stream: unexpected {quote_for_error(token)}")
