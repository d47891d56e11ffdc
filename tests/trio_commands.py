"""The trio port of the built-in test commands, and the harness that serves them.

The same commands, with the same output, as ``exec_commands.py`` (for
:func:`kstream.trio.serve`) and the Go peer (``tests/peers/go/kpeer/commands.go``): see
``exec_commands.py`` for the list. The trio server and client tests serve them with
:func:`inproc_server` and run their bodies with :func:`trun`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Final, TypeVar

import trio
from exec_commands import CHUNK, PATTERN_PERIOD, not_found, pattern

from kstream._status import Status, exit_code_status, internal_error_status, success_status
from kstream.trio import ExecServer, ServerExec, ServerRequest, serve

T = TypeVar("T")
#: Bound on one test body run by :func:`trun`.
DEADLINE: Final = 60.0


# --------------------------------------------------------------------------- commands


async def handler(request: ServerRequest) -> None:
    """Serve ``.../pods/{pod}/exec`` and ``.../attach`` with the built-in commands."""
    subresource = request.path.rsplit("/", 1)[-1]
    if request.upgrade is None or subresource not in ("exec", "attach"):
        await request.reject(404, f"no such resource {request.path}")
        return
    argv = [value for key, value in request.query if key == "command"]
    if subresource == "attach":
        argv = ["cat"]
    elif not argv:
        await request.reject(400, "you must specify a command")
        return
    session = await request.accept()
    status = await run_command(session, argv)
    if status is not None:
        await session.exit(status)


async def run_command(session: ServerExec, argv: Sequence[str]) -> Status | None:
    """Run one built-in command; return its status (``None``: the connection is gone)."""
    name, args = argv[0], list(argv[1:])
    if name == "cat":
        await _copy_stdin(session, stdout=True, stderr=False)
    elif name == "tee-stderr":
        await _copy_stdin(session, stdout=True, stderr=True)
    elif name == "echo":
        session.write_stdout((" ".join(args) + "\n").encode())
    elif name == "stderr":
        _write_err(session, (" ".join(args) + "\n").encode())
    elif name == "exit":
        code = int(args[0])
        return success_status() if code == 0 else exit_code_status(code, argv)
    elif name == "fail":
        return internal_error_status(" ".join(args))
    elif name == "source":
        await _source(session, int(args[0]))
    elif name == "drop":
        await _source(session, int(args[0]))
        await session.abort()
        return None
    elif name == "sink":
        digest = hashlib.sha256()
        count = 0
        while data := await session.read_stdin():
            digest.update(data)
            count += len(data)
        session.write_stdout(f"{count} {digest.hexdigest()}\n".encode())
    elif name == "size":
        await _sizes(session)
    elif name == "sleep-forever":
        while await session.read_stdin():
            pass
        async for _ in session.resizes:
            pass
        return None
    else:
        return not_found(name)
    await session.drain()
    return success_status()


def _write_err(session: ServerExec, data: bytes) -> None:
    # With a tty the runtime merges stderr into the terminal, i.e. stdout.
    if session.tty:
        session.write_stdout(data)
    else:
        session.write_stderr(data)


async def _copy_stdin(session: ServerExec, *, stdout: bool, stderr: bool) -> None:
    while data := await session.read_stdin(CHUNK):
        if stdout:
            session.write_stdout(data)
        if stderr:
            _write_err(session, data)
        await session.drain()


async def _source(session: ServerExec, total: int) -> None:
    block = pattern(0, CHUNK + PATTERN_PERIOD)
    offset = 0
    while offset < total and not session.closed:
        n = min(CHUNK, total - offset)
        phase = offset % PATTERN_PERIOD
        session.write_stdout(block[phase:phase + n])
        offset += n
        await session.drain()


async def _sizes(session: ServerExec) -> None:
    async def echo_sizes() -> None:
        async for size in session.resizes:
            session.write_stdout(f"{size.width}x{size.height}\n".encode())
            await session.drain()

    if not session.has_stdin:
        await echo_sizes()  # until the client goes away
        return
    # Sizes and stdin travel on different channels: echo sizes until stdin ends.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo_sizes)
        while await session.read_stdin():
            pass
        nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- harness


def trun(body: Callable[[], Awaitable[T]]) -> T:
    """Run a test body in a fresh trio run, bounded, and check it leaves no task behind."""
    async def bounded() -> T:
        baseline = trio.lowlevel.current_statistics().tasks_living
        with trio.fail_after(DEADLINE):
            result = await body()
        assert trio.lowlevel.current_statistics().tasks_living == baseline
        return result
    return trio.run(bounded)


@contextlib.asynccontextmanager
async def inproc_server(serve_handler: Callable[[ServerRequest], Awaitable[None]] = handler,
                        **kwargs: Any) -> AsyncIterator[ExecServer]:
    """``serve`` in a nursery for the duration of the block (cancelled at its end)."""
    async with trio.open_nursery() as nursery:
        server: ExecServer = await nursery.start(partial(serve, serve_handler, **kwargs))
        yield server
        nursery.cancel_scope.cancel()
