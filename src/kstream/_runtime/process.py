"""The client's user-facing objects, written once for both runtimes.

:class:`RemoteStdin`, :class:`RemoteOutput` and :class:`RemoteProcess` only call what
:class:`~kstream._runtime.core.ClientCore` declares, so they run on either runtime.
``kstream.asyncio`` exports them as they are; ``kstream.trio`` subclasses
:class:`RemoteProcess` to run the connection's tasks in the ``async with`` block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from .._channels import STDERR, STDOUT, V5_NAME
from .._exec.session import ClientExecSession
from .._status import Exited, Failed
from .buffers import READ_SIZE
from .errors import outcome_returncode

if TYPE_CHECKING:
    from .core import ClientCore

__all__ = ["RemoteOutput", "RemoteProcess", "RemoteStdin", "can_close_stdin"]


def can_close_stdin(session: ClientExecSession) -> bool:
    """Whether the negotiated protocol can half-close stdin.

    SPDY from remotecommand v2 (v1 cannot signal the end of stdin), WebSocket from
    ``v5.channel.k8s.io`` (its CLOSE signal).

    Args:
        session: a session whose upgrade succeeded.

    Returns:
        ``True`` when :meth:`~kstream._exec.session.ClientExecSession.close_stdin` can work.
    """
    if session.transport == "spdy":
        return (session.version or 1) >= 2
    return session.protocol == V5_NAME


class RemoteStdin:
    """The remote process's standard input: write, drain, close.

    Shaped like :attr:`asyncio.subprocess.Process.stdin` (an :class:`asyncio.StreamWriter`).
    """

    def __init__(self, connection: ClientCore) -> None:
        self._conn = connection

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` (sent in messages of at most 32 KiB; call :meth:`drain`).

        Bytes written after the remote process finished are dropped.

        Raises:
            LocalProtocolError: stdin was not requested or is closed.
            KstreamError: the session failed (its error).
        """
        self._conn.write_stdin(data)

    async def drain(self) -> None:
        """Wait until the connection takes more.

        On asyncio: until the socket's write buffer is below its high-water mark; on
        trio: until the connection's sending task has taken everything written.

        Raises:
            KstreamError: the session failed (its error).
            RuntimeError: trio: the process was not entered with ``async with``.
        """
        await self._conn.drain()

    def close(self) -> None:
        """Half-close stdin: the remote process reads end-of-file.

        Raises:
            LocalProtocolError: the negotiated protocol cannot (WebSocket v4 and older:
                "the negotiated protocol X cannot half-close stdin; use v5.channel.k8s.io
                or SPDY"), or stdin was not requested.
        """
        self._conn.close_stdin()

    def can_close(self) -> bool:
        """Whether :meth:`close` is possible on the negotiated protocol."""
        return can_close_stdin(self._conn.session)

    def is_closing(self) -> bool:
        """Whether stdin was closed (or never requested)."""
        return self._conn.stdin_closed

    async def wait_closed(self) -> None:
        """Flush what was written (a no-op kept for the :class:`asyncio.StreamWriter` shape)."""
        await self._conn.drain()


class RemoteOutput:
    """stdout or stderr of the remote process: read, read exactly, iterate in chunks.

    Shaped like :class:`asyncio.StreamReader`.
    """

    def __init__(self, connection: ClientCore, channel: int) -> None:
        self._conn = connection
        self._channel = channel

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes; with ``n < 0`` read until EOF. ``b""`` at EOF.

        Raises:
            KstreamError: the session failed before EOF (after the buffered bytes).
            RuntimeError: asyncio: another coroutine is reading this channel; trio: the
                process was not entered with ``async with``.
            trio.BusyResourceError: trio: another task is reading this channel.
        """
        self._conn.require_pump()
        return await self._conn.read(self._channel, n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises:
            IncompleteReadError: EOF came first (``partial`` holds what was read).
            KstreamError: the session failed.
        """
        self._conn.require_pump()
        return await self._conn.readexactly(self._channel, n)

    def at_eof(self) -> bool:
        """Whether the channel ended and every byte was read."""
        return self._conn.at_eof(self._channel)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.read(READ_SIZE):
            yield chunk


class RemoteProcess:
    """A command running in a container, reached over one exec/attach session.

    Use it as an async context manager: leaving the block closes the connection (the
    remote process then sees its stdin and the connection end). Attributes:

    * ``stdin`` (:class:`RemoteStdin`), ``stdout`` / ``stderr`` (:class:`RemoteOutput`);
    * ``transport`` (``"websocket"`` / ``"spdy"``), ``protocol`` (the negotiated name),
      ``version`` (remotecommand 1..5);
    * ``returncode`` and ``result`` once known;
    * ``command``: the argv (empty for attach).
    """

    def __init__(self, connection: ClientCore, command: Sequence[str]) -> None:
        self._conn = connection
        self.command = tuple(command)
        self.stdin = RemoteStdin(connection)
        self.stdout = RemoteOutput(connection, STDOUT)
        self.stderr = RemoteOutput(connection, STDERR)

    def __repr__(self) -> str:
        return (f"<RemoteProcess {list(self.command)!r} {self.transport}/{self.protocol} "
                f"returncode={self.returncode}>")

    @property
    def transport(self) -> str:
        """``"websocket"`` or ``"spdy"``."""
        return self._conn.session.transport

    @property
    def protocol(self) -> str:
        """The negotiated subprotocol / stream protocol name."""
        return self._conn.session.protocol or ""

    @property
    def version(self) -> int:
        """The negotiated remotecommand version (1..5)."""
        return self._conn.session.version or 1

    @property
    def result(self) -> Exited | Failed | None:
        """The parsed exit status, once it arrived."""
        return self._conn.result

    @property
    def returncode(self) -> int | None:
        """The exit code once the process exited, else ``None`` (also for a failure)."""
        result = self._conn.result
        return result.code if isinstance(result, Exited) else None

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet read from stdout and stderr (bounded by the limit)."""
        return self._conn.buffered_bytes

    async def wait(self) -> int:
        """Wait for the session to end and return the exit code.

        Read stdout and stderr meanwhile (or use :meth:`communicate`): output nobody
        reads stops the connection at ``buffer_limit``, and the exit status comes after
        the output.

        Raises:
            RemoteCommandError: the command produced no exit code (binary not found...).
            PingTimeoutError: the peer stopped answering pings.
            ConnectionLostError: the connection ended before the exit status.
            RuntimeError: trio: the process was not entered with ``async with``.
        """
        await self._conn.wait_done()
        assert self._conn.result is not None
        return outcome_returncode(self._conn.result)

    async def resize(self, width: int, height: int) -> None:
        """Tell the remote terminal its new size (columns, rows); needs ``tty=True``.

        Raises:
            LocalProtocolError: no resize channel (SPDY v1/v2 or no tty) or bad sizes.
        """
        self._conn.session.resize(width, height)
        await self._conn.drain()

    async def communicate(self, input: bytes | None = None) -> tuple[bytes, bytes]:
        """Send ``input``, close stdin, read stdout and stderr to the end; wait.

        Like :meth:`asyncio.subprocess.Process.communicate` (and
        :meth:`subprocess.Popen.communicate`), the output is collected in memory without
        limit. Stdin is closed after ``input`` (and also without input when the protocol
        can); a :class:`RemoteCommandError` is left to :meth:`wait`.

        Returns:
            ``(stdout, stderr)``.

        Raises:
            LocalProtocolError: ``input`` given but stdin cannot be closed (WebSocket v4).
            PingTimeoutError, ConnectionLostError: the session failed.
        """
        self._conn.require_pump()
        self._conn.set_unbounded()
        if input is not None:
            self.stdin.write(input)
            await self.stdin.drain()
            self.stdin.close()
        elif not self.stdin.is_closing() and self.stdin.can_close():
            self.stdin.close()
        await self._conn.wait_done()
        return await self.stdout.read(), await self.stderr.read()

    async def aclose(self) -> None:
        """Close the connection (idempotent); the remote process sees the session end.

        On trio, the close is sent (within a grace period) even when cancelled.
        """
        await self._conn.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
