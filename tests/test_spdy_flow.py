"""Tests of the SPDY/3.1 flow-control window accounting (_spdy_flow.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream._spdy.flow import (
    DEFAULT_WINDOW_SIZE,
    MAX_WINDOW_SIZE,
    ReceiveWindow,
    SendWindow,
    WindowOverflowError,
    guard_increment_window,
)


def test_constants() -> None:
    assert DEFAULT_WINDOW_SIZE == 65536
    assert MAX_WINDOW_SIZE == 2**31 - 1


def test_guard_allows_exactly_the_maximum() -> None:
    assert guard_increment_window(MAX_WINDOW_SIZE - 10, 10) == MAX_WINDOW_SIZE
    with pytest.raises(WindowOverflowError):
        guard_increment_window(MAX_WINDOW_SIZE - 10, 11)


def test_guard_from_a_negative_window() -> None:
    assert guard_increment_window(-100, 50) == -50


def test_send_window_consume_and_grow() -> None:
    window = SendWindow()
    assert window.size == 65536
    window.consume(65536)
    assert window.size == 0
    window.grow(1000)
    assert window.size == 1000


def test_send_window_may_go_negative_after_a_settings_decrease() -> None:
    window = SendWindow(100)
    window.consume(80)
    window.grow(-50)  # INITIAL_WINDOW_SIZE lowered by 50 while 80 bytes are in flight
    assert window.size == -30


def test_send_window_overflow_is_refused_and_keeps_the_size() -> None:
    window = SendWindow(MAX_WINDOW_SIZE)
    with pytest.raises(WindowOverflowError):
        window.grow(1)
    assert window.size == MAX_WINDOW_SIZE


def test_receive_window_refuses_more_than_granted() -> None:
    window = ReceiveWindow(100)
    assert window.consume(60)
    assert not window.consume(41)
    assert window.current == 40
    assert window.consume(40)
    assert window.current == 0


def test_receive_window_updates_at_half_the_window() -> None:
    window = ReceiveWindow(65536)
    assert window.consume(40000)
    assert window.process(32767) == 0  # less than half: not worth a frame yet
    assert window.outstanding == 40000 - 32767
    assert window.process(1) == 32768
    assert window.current == 65536 - 40000 + 32768


def test_receive_window_shut_window_rule() -> None:
    # h2 windows.py: a shut window is reopened once min(1024, max/4) bytes are processed.
    window = ReceiveWindow(4000)
    assert window.consume(4000)
    assert window.process(1000) == 0  # max/4 == 1000: needs strictly more
    assert window.process(1) == 1001
    assert window.current == 1001


def test_receive_window_tiny_frames_do_not_cause_one_update_each() -> None:
    window = ReceiveWindow()
    updates = []
    for _ in range(1000):
        assert window.consume(10)
        increment = window.process(10)
        if increment:
            updates.append(increment)
    assert updates == []  # 10 000 bytes < 32 KiB: still no WINDOW_UPDATE
    assert window.current == 65536 - 10000


@settings(max_examples=200)
@given(size=st.integers(1, 1 << 20),
       steps=st.lists(st.tuples(st.booleans(), st.floats(0, 1)), max_size=60))
def test_receive_window_invariants(size: int, steps: list[tuple[bool, float]]) -> None:
    window = ReceiveWindow(size)
    granted = 0  # every increment returned
    received = 0
    for is_receive, fraction in steps:
        if is_receive:
            amount = int(window.current * fraction)
            assert window.consume(amount)
            received += amount
        else:
            granted += window.process(int(window.outstanding * fraction))
        assert 0 <= window.current <= size
        assert window.outstanding >= 0
        # The peer's credit is what we granted minus what it used.
        assert window.current == size + granted - received
    # Once everything received is processed, nothing is outstanding, and the peer's
    # credit plus what we hold back adds up to the whole window.
    window.process(window.outstanding)
    assert window.outstanding == 0
