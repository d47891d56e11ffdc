"""The CLI's standard streams (``kstream._app.stdio``): every kind of stdin, every byte.

A fake remote process records what the CLI would send; stdin is a pipe, a regular file,
``/dev/null``, or a descriptor the selector refuses (the reader thread). Output goes to
pipes, blocking or made non-blocking by someone else. Nothing here is timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstream import ConnectionLostError
from kstream._app import stdio

PAYLOAD = bytes(range(251)) * 9000  # 2.2 MB, not a multiple of any read size


class FakeStdin:
    def __init__(self, *, can_close: bool = True, fail_after: int = -1) -> None:
        self.received = bytearray()
        self.writes = 0
        self.closed = False
        self._can_close = can_close
        self._fail_after = fail_after

    def write(self, data: bytes) -> None:
        self.received += data
        self.writes += 1

    async def drain(self) -> None:
        if 0 <= self._fail_after <= self.writes:
            raise ConnectionLostError("the session ended")
        await asyncio.sleep(0)

    def can_close(self) -> bool:
        return self._can_close

    def close(self) -> None:
        self.closed = True


class FakeProcess:
    protocol = "v4.channel.k8s.io"

    def __init__(self, stdin: FakeStdin | None = None) -> None:
        self.stdin = stdin or FakeStdin()


class FakeOutput:
    def __init__(self, data: bytes, chunk: int = 70_000) -> None:
        self._chunks = [data[i:i + chunk] for i in range(0, len(data), chunk)]

    async def read(self, n: int = -1) -> bytes:
        await asyncio.sleep(0)
        return self._chunks.pop(0) if self._chunks else b""


def _run(coroutine: object) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 30))  # type: ignore[arg-type]


def _feed(fd: int, data: bytes) -> threading.Thread:
    def write() -> None:
        with open(fd, "wb", closefd=True) as out:
            for start in range(0, len(data), 10_000):  # small writes, like `head`
                out.write(data[start:start + 10_000])
                out.flush()

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def _drain_pipe(fd: int, into: bytearray) -> threading.Thread:
    def read() -> None:
        with open(fd, "rb", closefd=True) as source:
            while chunk := source.read1(50_000):
                into.extend(chunk)

    thread = threading.Thread(target=read)
    thread.start()
    return thread


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):  # closed by the test already
            os.close(fd)


def test_stdin_pipe_is_read_on_the_loop_whole_and_closed(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    process = FakeProcess()
    writer = _feed(write_end, PAYLOAD)
    _run(stdio.forward_stdin(process, False, read_end))  # type: ignore[arg-type]
    writer.join(10)
    assert bytes(process.stdin.received) == PAYLOAD
    assert process.stdin.closed
    # No reader thread for a pipe (other tests' fake nodes may run threads of their own).
    assert "kstream-stdin" not in {thread.name for thread in threading.enumerate()}


def test_stdin_pipe_is_enlarged(pipe: tuple[int, int]) -> None:
    read_end, _ = pipe
    stdio.enlarge_pipe(read_end)
    assert fcntl.fcntl(read_end, 1032) >= stdio.PIPE_SIZE  # F_GETPIPE_SZ


def test_stdin_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "input"
    path.write_bytes(PAYLOAD)
    process = FakeProcess()
    with path.open("rb") as source:
        _run(stdio.forward_stdin(process, False, source.fileno()))  # type: ignore[arg-type]
    assert bytes(process.stdin.received) == PAYLOAD
    assert process.stdin.closed


def test_stdin_dev_null_closes_at_once() -> None:
    process = FakeProcess()
    with open(os.devnull, "rb") as source:
        _run(stdio.forward_stdin(process, False, source.fileno()))  # type: ignore[arg-type]
    assert process.stdin.received == b"" and process.stdin.closed


def test_stdin_thread_when_the_selector_refuses(pipe: tuple[int, int],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: object, fd: int, callback: object, *args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(asyncio.SelectorEventLoop, "add_reader", refuse)
    read_end, write_end = pipe
    process = FakeProcess()
    writer = _feed(write_end, PAYLOAD)
    _run(stdio.forward_stdin(process, False, read_end))  # type: ignore[arg-type]
    writer.join(10)
    assert bytes(process.stdin.received) == PAYLOAD
    assert process.stdin.closed


def test_stdin_ends_quietly_when_the_session_ends_first(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    process = FakeProcess(FakeStdin(fail_after=1))
    os.write(write_end, b"x" * 1000)
    _run(stdio.forward_stdin(process, False, read_end))  # type: ignore[arg-type]
    assert not process.stdin.closed  # nothing raised, nothing closed


def test_stdin_that_cannot_close_says_so_when_verbose(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    process = FakeProcess(FakeStdin(can_close=False))
    with open(os.devnull, "rb") as source:
        _run(stdio.forward_stdin(process, True, source.fileno()))  # type: ignore[arg-type]
    assert "v4.channel.k8s.io cannot close stdin" in capsys.readouterr().err
    assert not process.stdin.closed


def test_output_to_a_pipe_every_byte(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    received = bytearray()
    reader = _drain_pipe(read_end, received)
    _run(stdio.forward_output(FakeOutput(PAYLOAD), write_end))  # type: ignore[arg-type]
    os.close(write_end)
    reader.join(10)
    assert bytes(received) == PAYLOAD


def test_output_to_a_descriptor_someone_made_non_blocking(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    os.set_blocking(write_end, False)
    received = bytearray()
    readers: list[threading.Thread] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # The reader starts late: the first writes fill the pipe and would block.
        loop.call_later(0.2, lambda: readers.append(_drain_pipe(read_end, received)))
        await stdio.forward_output(FakeOutput(PAYLOAD * 2), write_end)  # type: ignore[arg-type]

    _run(main())
    os.close(write_end)
    # Only the reader: the suite's other threads (a module's node) would each cost 10 s.
    for reader in readers:
        reader.join(10)
    assert bytes(received) == PAYLOAD * 2
