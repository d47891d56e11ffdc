"""The CLI's standard streams: our stdin to the remote process, its output to ours.

The bytes of ``kstream exec`` cross these functions, so they are built for speed, but
never change how the descriptors are shared: stdin and stdout stay in blocking mode
(another process may hold the same open file), and every wait is the event loop's.

stdin is read according to what it is:

* a pipe, FIFO, socket or terminal: read on the loop when the selector says it is
  readable (``add_reader``). A read after "readable" returns what is there without
  blocking, up to :data:`READ_SIZE`; a pipe we read is first enlarged to
  :data:`PIPE_SIZE`, so a fast writer fills large reads and a transfer costs few turns
  of the loop;
* a regular file or a block device: read directly, one :data:`READ_SIZE` block per turn
  of the loop (such reads never block, and selectors refuse these descriptors);
* anything the selector refuses otherwise (``/dev/null``, or a terminal where the
  platform cannot poll one): a reader thread with blocking reads, which works
  everywhere, handing blocks to the loop through a bounded queue.

Output is written with blocking writes of whole chunks (a stdout pipe is enlarged too);
a descriptor someone else made non-blocking is waited on with ``add_writer``.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from typing import TYPE_CHECKING, Final

from .._errors import KstreamError

if TYPE_CHECKING:
    from .._runtime.process import RemoteOutput, RemoteProcess

__all__ = ["OUTPUT_READ_SIZE", "PIPE_SIZE", "READ_SIZE", "StdinThread", "enlarge_pipe",
           "forward_output", "forward_stdin"]

#: Most bytes read from stdin at once (the session cuts them into 32 KiB messages): under
#: glibc's 128 KiB mmap threshold, so that neither the block read nor the frames joined
#: from it get fresh pages to fault in (measured: a third less system time uploading).
READ_SIZE: Final = 120 * 1024
#: Most bytes taken from remote output at once: received chunks pass whole, uncopied,
#: when one fits (a SPDY read's joined DATA frames), and small WebSocket messages are
#: written a megabyte at a time.
OUTPUT_READ_SIZE: Final = 1 << 20
#: The capacity asked for a pipe on stdin or stdout (Linux ``F_SETPIPE_SZ``; 1 MiB is the
#: most an unprivileged process may ask by default, ``/proc/sys/fs/pipe-max-size``).
PIPE_SIZE: Final = 1 << 20
#: Blocks the reader thread may read ahead of the connection.
_THREAD_QUEUE: Final = 8
#: ``fcntl.F_SETPIPE_SZ`` and ``F_GETPIPE_SZ`` (Linux values; Python names them only where
#: the platform has them).
_F_SETPIPE_SZ: Final = 1031
_F_GETPIPE_SZ: Final = 1032


def enlarge_pipe(fd: int) -> None:
    """Ask for a :data:`PIPE_SIZE` pipe behind ``fd`` if it is a pipe (best effort).

    Fewer, larger reads and writes: with the default 64 KiB pipe a writer and a reader
    wake each other every 64 KiB.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return
        import fcntl

        if fcntl.fcntl(fd, _F_GETPIPE_SZ) < PIPE_SIZE:
            fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # over the system's limit, or not ours to change: keep the pipe as it is


def _always_readable(fd: int) -> bool:
    # Regular files and block devices never block a read (and epoll refuses them).
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) or stat.S_ISBLK(mode)


async def _wait_ready(loop: asyncio.AbstractEventLoop, fd: int, *, write: bool) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


def _read(fd: int) -> bytes | None:
    """One read of ``fd``: ``None`` when it would block (a non-blocking descriptor)."""
    try:
        return os.read(fd, READ_SIZE)
    except BlockingIOError:
        return None
    except OSError:
        return b""  # an unreadable stdin ends like an empty one (as kubectl's copy ends)


async def _send(process: RemoteProcess, data: bytes) -> None:
    process.stdin.write(data)
    await process.stdin.drain()


async def _forward_readable(process: RemoteProcess, fd: int) -> None:
    # Pipes, FIFOs, sockets, terminals: wait for the loop to say readable, then read.
    loop = asyncio.get_running_loop()
    while True:
        await _wait_ready(loop, fd, write=False)
        data = _read(fd)
        if data is None:
            continue
        if not data:
            return
        await _send(process, data)


async def _forward_file(process: RemoteProcess, fd: int) -> None:
    # Regular files and block devices: no wait, one block per loop turn.
    while data := _read(fd) or b"":
        await _send(process, data)


class StdinThread:
    """Reads a descriptor in a thread with blocking reads, for the loop to take.

    For a descriptor the loop's selector refuses: a thread works for every kind of file.
    It reads at most :data:`_THREAD_QUEUE` blocks ahead of :meth:`get`; ``b""`` is the
    end. The thread is a daemon: a read still blocked when the command ends is left.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int = 0) -> None:
        import threading

        self._loop = loop
        self._fd = fd
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._slots = threading.BoundedSemaphore(_THREAD_QUEUE)
        threading.Thread(target=self._read_loop, name="kstream-stdin", daemon=True).start()

    async def get(self) -> bytes:
        """The next block read (``b""``: end of input), freeing its slot."""
        data = await self._queue.get()
        self._slots.release()
        return data

    def _read_loop(self) -> None:
        while True:
            self._slots.acquire()
            try:
                data = os.read(self._fd, READ_SIZE)
            except BlockingIOError:
                import select

                select.select([self._fd], [], [])
                self._slots.release()
                continue
            except OSError:
                data = b""
            try:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, data)
            except RuntimeError:
                return  # the loop is closed: nobody reads any more
            if not data:
                return


async def _forward_threaded(process: RemoteProcess, fd: int) -> None:
    reader = StdinThread(asyncio.get_running_loop(), fd)
    while data := await reader.get():
        await _send(process, data)


async def forward_stdin(process: RemoteProcess, verbose: bool, fd: int = 0) -> None:
    """Copy ``fd`` (our stdin) to the remote process's stdin, then half-close it.

    Ends quietly when the session ends first (the rest of stdin has no reader). On a
    protocol that cannot half-close stdin (WebSocket v4 and older), says so on stderr
    when ``verbose``.
    """
    try:
        if _always_readable(fd):
            await _forward_file(process, fd)
        else:
            enlarge_pipe(fd)
            try:
                asyncio.get_running_loop().add_reader(fd, lambda: None)
            except (OSError, ValueError):
                await _forward_threaded(process, fd)  # the selector refuses this file
            else:
                asyncio.get_running_loop().remove_reader(fd)
                await _forward_readable(process, fd)
    except KstreamError:
        return  # the session ended first: the rest of stdin has no reader
    if process.stdin.can_close():
        process.stdin.close()
    elif verbose:
        # WebSocket v4 and older cannot signal end of input (protocol-notes §1.5).
        sys.stderr.write(f"kstream: {process.protocol or 'this protocol'} cannot close "
                         "stdin; the remote process does not see end of input\n")
        sys.stderr.flush()


async def forward_output(stream: RemoteOutput, fd: int) -> None:
    """Write every chunk of ``stream`` (remote stdout or stderr) to ``fd``.

    Raises:
        OSError: the write failed (``BrokenPipeError`` when our reader went away).
    """
    enlarge_pipe(fd)
    loop = asyncio.get_running_loop()
    while data := await stream.read(OUTPUT_READ_SIZE):
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                # Someone made this shared descriptor non-blocking: wait, never spin.
                await _wait_ready(loop, fd, write=True)
                continue
            view = view[written:]
