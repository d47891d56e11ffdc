"""Handler pods: an async function plays the process of every exec in the pod.

The handler gets a :class:`PodExec` -- argv, tty, stdin to read, stdout and stderr to
write, the terminal sizes -- and returns the exit code, or raises for a failure that has
none (the node then sends the kubelet's ``InternalError`` status, as for a command that
cannot start).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from .._resize import TerminalSize
from .._runtime.errors import ConnectionLostError
from .._runtime.server import handler_exit_status
from .._status_types import Status

if TYPE_CHECKING:
    from ..asyncio import ServerExec
    from ._faults import Faults

__all__ = ["Handler", "OutputStream", "PodDeclaration", "PodExec", "StdinStream",
           "run_handler"]

#: Bytes :meth:`StdinStream.read` returns at most by default.
_READ_SIZE = 64 * 1024


class StdinStream:
    """The exec's stdin, as the handler reads it (``b""`` at its end)."""

    def __init__(self, session: ServerExec) -> None:
        self._session = session

    async def read(self, max_bytes: int = _READ_SIZE) -> bytes:
        """Return the next bytes the client sent (at most ``max_bytes``); ``b""`` at EOF."""
        return await self._session.read_stdin(max_bytes)

    async def read_all(self) -> bytes:
        """Return everything up to the end of stdin."""
        chunks = []
        while chunk := await self.read():
            chunks.append(chunk)
        return b"".join(chunks)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.read():
            yield chunk


class OutputStream:
    """The exec's stdout or stderr, as the handler writes it.

    With a terminal, stderr writes go to stdout (a terminal has one output); a stream
    the client did not ask for swallows what is written.
    """

    def __init__(self, session: ServerExec, *, stderr: bool, wanted: bool) -> None:
        self._session = session
        self._stderr = stderr
        self._wanted = wanted

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` and wait until the connection takes more.

        Raises:
            ConnectionLostError: the client is gone.
        """
        session = self._session
        if session.closed:
            raise ConnectionLostError("the client went away")
        if not self._wanted:
            return
        if self._stderr:
            session.write_stderr(data)
        else:
            session.write_stdout(data)
        await session.drain()


@dataclass(eq=False)
class PodExec:
    """One exec in a handler pod: what the handler gets.

    Attributes:
        argv: the command the client asked for.
        pod: the pod's name.
        namespace: its namespace.
        tty: whether the client asked for a terminal.
        transport: ``"websocket"`` or ``"spdy"``.
        protocol: the negotiated protocol.
        stdin: what the client sends (empty at once if it sends no stdin).
        stdout: the process's output.
        stderr: its error output (stdout's with a terminal).
    """

    argv: tuple[str, ...]
    pod: str
    namespace: str
    tty: bool
    transport: str
    protocol: str
    stdin: StdinStream
    stdout: OutputStream
    stderr: OutputStream
    _session: ServerExec = field(repr=False)

    @property
    def terminal_sizes(self) -> AsyncIterator[TerminalSize]:
        """The client's terminal sizes, in order; ends when the connection does.

        Iterate it from one task only.
        """
        return self._session.resizes


#: An exec handler: gets the :class:`PodExec`, returns the exit code (``None`` is 0).
Handler: TypeAlias = Callable[[PodExec], Awaitable[int | None]]


@dataclass(frozen=True)
class PodDeclaration:
    """A pod of a fake node, as the test declared it."""

    name: str
    namespace: str
    command: tuple[str, ...] | None
    handler: Handler | None
    faults: Faults | None
    #: Named container ports, ``(name, number)`` pairs.
    ports: tuple[tuple[str, int], ...] = ()


def _exit_status(code: int | None, argv: tuple[str, ...]) -> Status:
    if not code:
        return Status.success()
    return Status.exit_code(code, argv)


async def run_handler(handler: Handler, session: ServerExec, exec_: PodExec,
                      lost: asyncio.Future[None]) -> None:
    """Run ``handler`` for one exec and end the session with what it returned.

    The handler is cancelled if the client leaves first.
    """
    task: asyncio.Future[int | None] = asyncio.ensure_future(handler(exec_))
    waiter: asyncio.Future[Any] = asyncio.ensure_future(asyncio.shield(lost))
    try:
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if task.cancelled():
        await session.abort()
        return
    error = task.exception()
    if isinstance(error, ConnectionLostError) or (error is not None and session.closed):
        await session.abort()
        return
    if error is not None:
        if not isinstance(error, Exception):
            raise error
        status = handler_exit_status(error)
    else:
        code = task.result()
        if code is not None and not 0 <= code <= 255:
            status = handler_exit_status(ValueError(f"exit code {code} is not 0..255"))
        else:
            status = _exit_status(code, exec_.argv)
    await session.exit(status)
