"""Branch-coverage tests of the JSON codecs: resize events and the exit-status document.

Each test pins down one behaviour that the older test files left unexercised; the branch
it covers is named in its docstring.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kstream._errors import RemoteProtocolError
from kstream._resize import ResizeDecoder, TerminalSize
from kstream._status_types import Status, StatusCause, decode_status_and_kind


def splits(data: bytes) -> Iterator[list[bytes]]:
    """``data`` whole, one byte at a time, and cut in two at every position."""
    yield [data]
    yield [data[index:index + 1] for index in range(len(data))]
    for cut in range(1, len(data)):
        yield [data[:cut], data[cut:]]


def resize_events(chunks: list[bytes]) -> list[TerminalSize]:
    decoder = ResizeDecoder()
    events: list[TerminalSize] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    decoder.feed_eof()
    return events


# ----------------------------------------------------------------------------------------
# _resize.py


@pytest.mark.parametrize("document", [
    b'{"Width":3,"x":[],"Height":4}',
    b'{"x":[ ],"Width":3,"Height":4}',
    b'{"Width":3,"x":[[],{"y":[]}],"Height":4}',
])
def test_resize_skips_an_unknown_key_whose_value_is_an_empty_array(document: bytes) -> None:
    """``[]``: "]" right after "[" closes the array (the _FIRST_VALUE arm of _token)."""
    data = document + b"\n" + b'{"Width":5,"Height":6}\n'
    for chunks in splits(data):
        assert resize_events(chunks) == [TerminalSize(3, 4), TerminalSize(5, 6)]


@pytest.mark.parametrize("document", [
    b'{"Width":3,"x":[1}',
    b'{"Width":3,"x":{"y":1]',
    b'{"Width":3]',
    b'{"x":[[1]}',
])
def test_resize_refuses_a_mismatched_closing_bracket(document: bytes) -> None:
    """A "}" closing an array or a "]" closing an object: _close's mismatch check."""
    for chunks in splits(document + b'{"Width":1,"Height":1}'):
        decoder = ResizeDecoder()
        with pytest.raises(RemoteProtocolError, match="unexpected"):
            for chunk in chunks:
                decoder.feed(chunk)
        # The decoder stays failed.
        with pytest.raises(RemoteProtocolError, match="unexpected"):
            decoder.feed(b"{}")


# ----------------------------------------------------------------------------------------
# _status_types.py: null leaves a Go field unchanged


@pytest.mark.parametrize(("document", "expected"), [
    # _int_field(None) for code; the value set before stays.
    (b'{"status":"Failure","code":null}', Status(status="Failure")),
    (b'{"status":"Failure","code":500,"code":null}', Status(status="Failure", code=500)),
    # A null metadata object, and metadata keys that ListMeta does not have.
    (b'{"metadata":null,"status":"Success"}', Status(status="Success")),
    (b'{"metadata":{"name":"x","labels":{"a":"b"},"resourceVersion":"1"},'
     b'"status":"Success"}', Status(status="Success")),
    # details.name and details.retryAfterSeconds null.
    (b'{"details":{"name":"pod","name":null,"retryAfterSeconds":null}}',
     Status(details_name="pod", has_details=True)),
    (b'{"details":{"retryAfterSeconds":7,"retryAfterSeconds":null}}',
     Status(retry_after_seconds=7)),
    # A cause's fields null.
    (b'{"details":{"causes":[{"reason":null,"message":"3","field":null}]}}',
     Status(causes=(StatusCause(message="3"),))),
])
def test_status_null_members_leave_fields_unchanged(document: bytes, expected: Status) -> None:
    assert Status.decode(document) == expected
    assert Status.decode(bytearray(document)) == expected


def test_status_metadata_keys_are_type_checked_but_unknown_ones_ignored() -> None:
    status, kind = decode_status_and_kind(
        b'{"kind":"Status","metadata":{"unknown":[1,2],"continue":"x",'
        b'"remainingItemCount":3},"status":"Failure","reason":"NotFound","code":404}')
    assert (status, kind) == (Status(status="Failure", reason="NotFound", code=404), "Status")
    with pytest.raises(RemoteProtocolError, match=r"metadata\.continue"):
        Status.decode(b'{"metadata":{"continue":1}}')
