"""The fuzz targets in ``make test``: bounded examples per target, and every regression.

Each target (``tests/fuzz/targets.py``: every decoder and connection class, both roles,
before and after the upgrade) gets raw bytes, mutations of recorded real sessions and,
where it reads frames, generated frames, all cut into arbitrary reads. Only the remote
error may escape. ``make fuzz`` runs the long, coverage-guided campaign over the same
targets and saves what it finds to ``tests/fuzz/regressions/``, replayed here.
"""

from __future__ import annotations

import pytest
from fuzz.inputs import chunked, mutate, mutations, spdy_frames, websocket_frames
from fuzz.targets import REGRESSIONS, TARGETS, Target, feed_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kstream import RemoteProtocolError

BOUNDED = settings(max_examples=40, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NAMES = sorted(TARGETS)
FRAMED = sorted(name for name in NAMES if TARGETS[name].frames)
CUTS = st.lists(st.integers(0, 1 << 16), max_size=8)


@pytest.mark.parametrize("name", NAMES)
def test_recorded_sessions_are_valid_so_targets_reach_deep_states(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The seeds are real sessions: fed as they are, whole and one byte at a time, they
    # must parse without error, or mutating them would only test the first bytes.
    import fuzz.targets

    def strict(receiver: fuzz.targets._Receiver, chunks: list[bytes]) -> None:
        for chunk in chunks:
            receiver.receive_data(chunk)
        receiver.data_to_send()

    monkeypatch.setattr(fuzz.targets, "feed_all", strict)
    target = TARGETS[name]
    assert target.seeds
    for seed in target.seeds:
        target.run([seed])
        target.run([seed[i:i + 1] for i in range(len(seed))])


@pytest.mark.parametrize("name", NAMES)
@BOUNDED
@given(data=st.binary(max_size=4096), cuts=CUTS)
def test_raw_bytes(name: str, data: bytes, cuts: list[int]) -> None:
    TARGETS[name].run(chunked(data, cuts))


@pytest.mark.parametrize("name", NAMES)
@BOUNDED
@given(choice=st.integers(0, 1 << 16), operations=mutations(), cuts=CUTS)
def test_mutated_recorded_sessions(name: str, choice: int,
                                   operations: list[tuple[str, int, int, bytes]],
                                   cuts: list[int]) -> None:
    target = TARGETS[name]
    seed = target.seeds[choice % len(target.seeds)]
    target.run(chunked(mutate(seed, operations), cuts))


@pytest.mark.parametrize("name", FRAMED)
@BOUNDED
@given(st.data())
def test_generated_frames(name: str, data: st.DataObject) -> None:
    target = TARGETS[name]
    if target.frames == "websocket":
        frames = data.draw(websocket_frames())
    else:
        frames = data.draw(spdy_frames())
    # Alone, and after a valid recorded prefix (so they land in an open session).
    target.run(chunked(frames, data.draw(CUTS)))
    seed = target.seeds[0]
    keep = data.draw(st.integers(0, len(seed)))
    target.run(chunked(seed[:keep] + frames, data.draw(CUTS)))


def test_saved_regressions() -> None:
    # Every input a campaign saved (tests/fuzz/regressions/TARGET/NAME), whole and one
    # byte at a time. The folder holds a README even when no campaign found anything.
    assert (REGRESSIONS / "README.md").exists()
    for path in sorted(REGRESSIONS.glob("*/*")):
        target: Target = TARGETS[path.parent.name]
        data = path.read_bytes()
        target.run([data])
        target.run([data[i:i + 1] for i in range(len(data))])


def test_feed_all_lets_only_the_remote_error_through() -> None:
    # The helper every target uses must not swallow anything but the remote error.
    class Broken:
        def receive_data(self, data: bytes | bytearray | memoryview) -> object:
            raise ValueError("a bug")

        def data_to_send(self) -> bytes:
            return b""

    class Refusing(Broken):
        def receive_data(self, data: bytes | bytearray | memoryview) -> object:
            raise RemoteProtocolError("bad bytes")

    with pytest.raises(ValueError):
        feed_all(Broken(), [b"x"])
    feed_all(Refusing(), [b"x"])
