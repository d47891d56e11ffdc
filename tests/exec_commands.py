"""Built-in test commands for the in-process servers of both adapters, without processes.

The same commands, with the same output, as the Go peer (``tests/peers/go/kpeer/
commands.go``), so one test body runs against both. They serve
:func:`kstream.asyncio.start_server` and :func:`kstream.trio.serve` alike: the one thing
that is the runtime's, running a task next to another (``size``), comes in as
``background`` (see :meth:`runtimes.Runtime.background`).

* ``cat``: stdin to stdout; ``echo ARGS``: the args and a newline on stdout;
  ``stderr ARGS``: the same on stderr (stdout with a tty);
* ``exit N``: exit code N; ``fail MSG``: an InternalError status (no exit code);
* ``source N``: N bytes of the pattern ``i % 251`` on stdout, in 32 KiB writes;
* ``sink``: reads stdin to EOF, prints ``"<count> <sha256>"``;
* ``tee-stderr``: stdin to stdout and stderr;
* ``size``: prints each terminal size as ``WxH`` until stdin ends (or the client goes);
* ``sleep-forever``: until the client goes away;
* ``drop N``: N bytes of the pattern then a TCP drop with no status (fault tests);
* anything else: the runtime's "executable file not found" failure.

``attach`` runs ``cat`` (the pod's "main process" echoes its terminal).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Final, Protocol

import kstream.asyncio
import kstream.trio
from kstream._resize import TerminalSize
from kstream._status import Status, exit_code_status, internal_error_status, success_status

CHUNK: Final = 32 * 1024
PATTERN_PERIOD: Final = 251
_PATTERN: Final = bytes(i % PATTERN_PERIOD for i in range(CHUNK + PATTERN_PERIOD))


def pattern(offset: int, size: int) -> bytes:
    """Return ``size`` bytes of the ``source`` pattern starting at ``offset``."""
    out = bytearray()
    while size > 0:
        n = min(size, CHUNK)
        phase = offset % PATTERN_PERIOD
        out += _PATTERN[phase:phase + n]
        offset += n
        size -= n
    return bytes(out)


def not_found(name: str) -> Status:
    """The InternalError containerd/runc give for a missing binary."""
    return internal_error_status(
        "error executing command in container: failed to exec in container: failed to start "
        'exec "kpeer": OCI runtime exec failed: exec failed: unable to start container '
        f'process: exec: "{name}": executable file not found in $PATH: unknown')


class CommandSession(Protocol):
    """What the commands use of an accepted session: the same on asyncio and trio."""

    @property
    def tty(self) -> bool: ...
    @property
    def has_stdin(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def resizes(self) -> AsyncIterator[TerminalSize]: ...
    async def read_stdin(self, n: int = ..., /) -> bytes: ...
    def write_stdout(self, data: bytes, /) -> None: ...
    def write_stderr(self, data: bytes, /) -> None: ...
    async def drain(self) -> None: ...
    async def abort(self) -> None: ...


class CommandRequest(Protocol):
    """What :func:`serve_request` uses of a request, on asyncio and trio alike."""

    @property
    def path(self) -> str: ...
    @property
    def upgrade(self) -> str | None: ...
    @property
    def query(self) -> Sequence[tuple[str, str]]: ...
    async def reject(self, status_code: int, message: str, /) -> None: ...


#: Runs a coroutine function in a task for the duration of a block, cancelled at its end:
#: the one thing the commands need that is the runtime's (``size``).
Background = Callable[[Callable[[], Awaitable[None]]],
                      contextlib.AbstractAsyncContextManager[None]]


async def handler(request: kstream.asyncio.ServerRequest | kstream.trio.ServerRequest, *,
                  background: Background) -> None:
    """Serve ``.../pods/{pod}/exec`` and ``.../attach`` with the built-in commands."""
    if not await check_request(request):
        return
    session = await request.accept()
    status = await run_command(session, session_argv(request), background=background)
    if status is not None:
        await session.exit(status)


def session_argv(request: CommandRequest) -> list[str]:
    """The argv a request asks for (``cat`` for attach)."""
    if request.path.rsplit("/", 1)[-1] == "attach":
        return ["cat"]
    return [value for key, value in request.query if key == "command"]


async def check_request(request: CommandRequest) -> bool:
    """Answer 404/400 to requests the built-in commands cannot serve; True for the rest."""
    subresource = request.path.rsplit("/", 1)[-1]
    if request.upgrade is None or subresource not in ("exec", "attach"):
        await request.reject(404, f"no such resource {request.path}")
        return False
    if not session_argv(request):
        await request.reject(400, "you must specify a command")
        return False
    return True


async def run_command(session: CommandSession, argv: Sequence[str], *,
                      background: Background) -> Status | None:
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
        await _sizes(session, background)
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


def _write_err(session: CommandSession, data: bytes) -> None:
    # With a tty the runtime merges stderr into the terminal, i.e. stdout.
    if session.tty:
        session.write_stdout(data)
    else:
        session.write_stderr(data)


async def _copy_stdin(session: CommandSession, *, stdout: bool, stderr: bool) -> None:
    while data := await session.read_stdin(CHUNK):
        if stdout:
            session.write_stdout(data)
        if stderr:
            _write_err(session, data)
        await session.drain()


async def _source(session: CommandSession, total: int) -> None:
    offset = 0
    while offset < total:
        n = min(CHUNK, total - offset)
        phase = offset % PATTERN_PERIOD
        session.write_stdout(_PATTERN[phase:phase + n])
        offset += n
        await session.drain()
        if session.closed:
            return


async def _sizes(session: CommandSession, background: Background) -> None:
    async def echo_sizes() -> None:
        async for size in session.resizes:
            session.write_stdout(f"{size.width}x{size.height}\n".encode())
            await session.drain()

    if not session.has_stdin:
        await echo_sizes()  # until the client goes away
        return
    # Sizes and stdin travel on different channels: echo sizes until stdin ends.
    async with background(echo_sizes):
        while await session.read_stdin():
            pass
