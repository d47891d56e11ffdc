"""The trio port of the built-in test commands, and the harness that serves them.

The same commands, with the same output, as ``exec_commands.py`` (for
:func:`kstream.trio.serve`) and the Go peer (``tests/peers/go/kpeer/commands.go``): see
``exec_commands.py`` for the list. The trio server and client tests serve them with
:func:`inproc_server` and run their bodies with :func:`trun`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from typing import Any, Final, TypeVar

import exec_commands
import trio
from exec_commands import check_request, session_argv

from kstream._status import Status
from kstream.trio import ExecServer, ServerExec, ServerRequest, serve

T = TypeVar("T")
#: Bound on one test body run by :func:`trun`.
DEADLINE: Final = 60.0


# --------------------------------------------------------------------------- commands


async def handler(request: ServerRequest) -> None:
    """Serve ``.../pods/{pod}/exec`` and ``.../attach`` with the built-in commands."""
    if not await check_request(request):
        return
    session = await request.accept()
    status = await run_command(session, session_argv(request))
    if status is not None:
        await session.exit(status)


async def run_command(session: ServerExec, argv: Sequence[str]) -> Status | None:
    """Run one built-in command (the shared ones, with trio's background tasks)."""
    return await exec_commands.run_command(session, argv, background=_background)


@contextlib.asynccontextmanager
async def _background(function: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(function)
        yield
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
