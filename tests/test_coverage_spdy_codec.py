"""Branch-coverage tests of the SPDY/3.1 frame codec (kstream._spdy.frames).

The decoder takes any buffer, whatever its item format or shape; the encoder refuses a
SETTINGS frame whose entries do not fit in one frame.
"""

from __future__ import annotations

import pytest

from kstream._errors import LocalProtocolError
from kstream._spdy.frames import (
    MAX_FRAME_LENGTH,
    FrameDecoder,
    FrameEncoder,
    PingFrame,
    SettingsFrame,
)


def test_decoder_takes_a_buffer_of_wider_items() -> None:
    data = FrameEncoder().ping(7) + FrameEncoder().ping(9)  # 24 bytes: 12 items of 2
    view = memoryview(data).cast("H")
    assert view.format == "H"
    assert FrameDecoder().feed(view) == [PingFrame(7), PingFrame(9)]


def test_decoder_takes_a_two_dimensional_buffer() -> None:
    data = FrameEncoder().ping(7) + FrameEncoder().ping(9)
    view = memoryview(data).cast("B", shape=[2, 12])
    assert view.ndim == 2
    assert FrameDecoder().feed(view) == [PingFrame(7), PingFrame(9)]


def test_decoder_takes_a_wide_buffer_with_trailing_bytes_kept() -> None:
    data = FrameEncoder().ping(7) + FrameEncoder().ping(9)[:4]
    decoder = FrameDecoder()
    assert decoder.feed(memoryview(data).cast("I")) == [PingFrame(7)]
    assert decoder.feed(FrameEncoder().ping(9)[4:]) == [PingFrame(9)]


def test_settings_that_do_not_fit_in_one_frame_are_refused() -> None:
    most = (MAX_FRAME_LENGTH - 4) // 8  # 8 bytes per entry after the 4-byte count
    entry = (0, 1, 1)
    with pytest.raises(LocalProtocolError, match=f"{most + 1} settings do not fit"):
        FrameEncoder().settings([entry] * (most + 1))
    frame = FrameEncoder().settings([entry] * 3, clear=True)
    assert FrameDecoder().feed(frame) == [SettingsFrame((entry,) * 3, clear=True)]
