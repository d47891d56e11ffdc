"""Go ``encoding/json`` compatibility helpers shared by the JSON codecs.

kstream reads and writes JSON byte for byte as the Go side of the wire does: object keys
match struct fields with Go's case folding, strings are escaped as ``json.Marshal``
escapes them. The exit-status codec (``_status_types``), the resize codec (``_resize``)
and the HTTP helpers (``_http``) share these. Standard library only.
"""

from __future__ import annotations

import json
import re
from typing import Final

__all__ = ["fold_key", "go_json_string", "quote_for_error"]

# How much of a peer's bytes an error message quotes.
_QUOTE_LIMIT: Final = 200

# Go's encoding/json matches object keys to struct fields case-insensitively, with the
# folding of bytes.EqualFold: ASCII letters by case, other runes by their unicode.SimpleFold
# orbit (encoding/json/fold.go, foldName/foldRune). Exactly two non-ASCII runes share an
# orbit with an ASCII letter: KELVIN SIGN (k) and LATIN SMALL LETTER LONG S (s).
_KEY_FOLD: Final = str.maketrans(
    {**{chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)},
     "\u212a": "k", "\u017f": "s"}
)


def fold_key(key: str) -> str:
    """Fold a JSON object key the way Go's ``encoding/json`` matches struct fields.

    Args:
        key: a decoded JSON object key.

    Returns:
        A string equal to ``fold_key(name)`` exactly when Go would match ``key`` to a field
        named ``name`` (for ASCII field names, which are all kstream needs).
    """
    return key.translate(_KEY_FOLD)


def quote_for_error(data: bytes | bytearray | memoryview | str) -> str:
    """Quote (at most 200 characters of) a peer's value for an error message.

    Args:
        data: the raw value, bytes or text.

    Returns:
        A double-quoted, escaped, possibly truncated rendering (``"..."`` marks a cut).
    """
    if isinstance(data, str):
        text = data[:_QUOTE_LIMIT]
        cut = len(data) > _QUOTE_LIMIT
    else:
        raw = bytes(data[:_QUOTE_LIMIT])
        text = raw.decode("utf-8", "replace")
        cut = len(data) > _QUOTE_LIMIT
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted + "..." if cut else quoted


_GO_ESCAPES: Final = {
    **{chr(c): f"\\u{c:04x}" for c in range(0x20)},
    "\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "\\": "\\\\",
    "<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
    "\u2028": "\\u2028", "\u2029": "\\u2029",
}
_GO_ESCAPE_RE: Final = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800-\udfff]')


def _go_escape_char(match: re.Match[str]) -> str:
    # Lone surrogates cannot be UTF-8; Go writes invalid UTF-8 as \ufffd.
    return _GO_ESCAPES.get(match.group(), "\\ufffd")


def go_json_string(text: str) -> str:
    """Quote ``text`` as Go's ``json.Marshal`` does (HTML-safe, Go 1.19 escapes).

    ``<``, ``>``, ``&``, U+2028 and U+2029 become ``\\u`` escapes, ``\\n \\r \\t \\" \\\\``
    short escapes, other control characters (``\\b`` and ``\\f`` included) ``\\u00XX``;
    everything else, non-ASCII included, is kept as is.

    Args:
        text: the string to quote.

    Returns:
        The JSON string literal, quotes included.
    """
    return '"' + _GO_ESCAPE_RE.sub(_go_escape_char, text) + '"'
