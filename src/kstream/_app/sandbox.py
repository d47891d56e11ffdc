"""The "pods" of ``kstream serve``: local processes standing in for containers.

A :class:`Pod` has a private working directory and a main process (its "container").
``exec`` starts a new process from an argv -- never through a shell unless the argv names
one -- with pipes, or with a pseudo-terminal when a TTY is asked for (resizes are applied
to it with ``TIOCSWINSZ``). ``attach`` joins the main process: its output fans out to
every attached session, and any session's stdin feeds it.

The main process's stdin behaves like a container's with ``stdinOnce: true``: when an
attached session closes its stdin, the main process's stdin is closed. The main process
is started at the first attach and started again at the next attach after it exited
(``restartPolicy: Always``).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import fcntl
import os
import pty
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

from .podlog import PodLog

__all__ = [
    "AttachHandle",
    "MainProcess",
    "Pod",
    "SandboxProcess",
    "SpawnError",
    "force_end",
]

#: Bytes read from a terminal at once.
READ_CHUNK: Final = 64 * 1024
#: Most bytes read from an output pipe at once: what one message to the client carries.
#: Under glibc's 128 KiB mmap threshold on purpose: each chunk and the frame that carries
#: it are fresh allocations, and above the threshold every one is a new mapping whose
#: pages fault in (measured: twice the server's CPU per byte, most of it page faults).
PIPE_READ_CHUNK: Final = 120 * 1024
#: The capacity asked for stdout pipes (``F_SETPIPE_SZ``; the default is 64 KiB). The
#: process runs this far ahead of the server, which then reads full chunks: a third less
#: server CPU per byte than with the default. Only stdout, the bulk stream: Linux counts
#: every pipe of an unprivileged user against ``pipe-user-pages-soft`` (64 MiB), and
#: past it shrinks that user's new pipes.
PIPE_CAPACITY: Final = 256 * 1024
#: Chunks an attached session may have waiting before the main process is held back
#: (at most ``ATTACH_QUEUE_CHUNKS * PIPE_READ_CHUNK`` bytes).
ATTACH_QUEUE_CHUNKS: Final = 32
#: Seconds to wait for a killed process to exit.
_REAP_TIMEOUT: Final = 5.0
#: The terminal's end-of-file character, written when a TTY session closes stdin (a
#: terminal cannot be half-closed; this is what a person typing ^D does).
_EOT: Final = b"\x04"


class SpawnError(Exception):
    """The process could not start; ``message`` reads like the container runtime's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _spawn_error(argv: Sequence[str], exc: Exception) -> SpawnError:
    # runc's wording, which kubectl users know: `exec: "x": executable file not found in
    # $PATH` (runc libcontainer/standard_init_linux.go via os/exec LookPath errors).
    # Every kind of failure to start becomes this, not only OSError: an argv with a NUL
    # byte raises ValueError in the standard library (Go's exec reports "invalid
    # argument"), and a failing preexec_fn raises SubprocessError.
    name = argv[0] if argv else ""
    if isinstance(exc, FileNotFoundError):
        detail = f'exec: "{name}": executable file not found in $PATH'
    elif isinstance(exc, PermissionError):
        detail = f'exec: "{name}": permission denied'
    elif isinstance(exc, OSError):
        detail = f'exec: "{name}": {exc.strerror or exc}'
    else:
        detail = f'exec: "{name}": invalid argument'
    return SpawnError(
        "OCI runtime exec failed: exec failed: unable to start container process: "
        f"{detail}: unknown"
    )


def _kill_group(pid: int) -> None:
    # Each process leads its own session (start_new_session): killing the group also
    # ends whatever it started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _exit_code(returncode: int) -> int:
    # A process killed by signal N exits, as a container runtime reports it, with 128+N.
    return returncode if returncode >= 0 else 128 - returncode


class _OutputPipe:
    """The read end of a process's stdout or stderr pipe, read on demand in large chunks.

    Nothing is read until :meth:`read` is called, and the descriptor is watched only
    while a read waits: a client that stops reading leaves the output in the pipe, and
    the process blocks on its next write once the pipe is full (the memory bound: the
    pipe's capacity plus one chunk).
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        os.set_blocking(fd, False)
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._watching = False
        self._ready = array.array("i", [0])

    @staticmethod
    def open(capacity: int | None = None) -> tuple[int, int]:
        """Make a pipe for a child's output.

        Both ends are close-on-exec (``os.pipe``); the child gets its end through
        ``dup2``, which clears the flag on the copy.

        Args:
            capacity: the pipe's size in bytes (best effort); the system's by default.

        Returns:
            ``(read_fd, write_fd)``.
        """
        read_fd, write_fd = os.pipe()
        if capacity is not None:
            # Best effort: an unprivileged user past pipe-user-pages-soft gets EPERM.
            with contextlib.suppress(OSError):
                fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, capacity)
        return read_fd, write_fd

    async def read(self) -> bytes:
        """Return the next chunk of output, at most :data:`PIPE_READ_CHUNK` bytes.

        Returns:
            The bytes, or ``b""`` at the end of the output (or once closed).
        """
        while self._fd >= 0:
            # Read exactly what is buffered: os.read(fd, n) allocates n bytes and then
            # shrinks to what came, and with a large n and a small read glibc hands the
            # rest back to the kernel (heap trim) -- fresh pages and page faults on every
            # read, several times the cost of the copy itself.
            fcntl.ioctl(self._fd, termios.FIONREAD, self._ready, True)
            buffered = self._ready[0]
            try:
                if buffered:
                    return os.read(self._fd, min(buffered, PIPE_READ_CHUNK))
                # Nothing buffered: b"" at the end, BlockingIOError otherwise (a byte
                # written meanwhile is simply returned).
                return os.read(self._fd, 1)
            except BlockingIOError:
                await self._readable()
        return b""

    def _readable(self) -> asyncio.Future[None]:
        waiter = self._waiter = self._loop.create_future()
        if not self._watching:
            self._loop.add_reader(self._fd, self._on_readable)
            self._watching = True
        return waiter

    def _on_readable(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            # Nobody reads now (the client is behind): stop watching until someone does.
            # Staying registered between reads saves two epoll_ctl calls per chunk.
            self._loop.remove_reader(self._fd)
            self._watching = False
            return
        waiter.set_result(None)

    def close(self) -> None:
        """Stop watching and close the descriptor (idempotent)."""
        if self._fd < 0:
            return
        if self._watching:
            self._loop.remove_reader(self._fd)
            self._watching = False
        os.close(self._fd)
        self._fd = -1
        # A read waiting now ends with b"".
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _PtyMaster:
    """Non-blocking reads and writes on a pseudo-terminal's master side."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self._loop = asyncio.get_running_loop()
        self._closed = False

    async def _wait(self, add: Callable[..., None], remove: Callable[[int], object]) -> None:
        ready: asyncio.Future[None] = self._loop.create_future()
        add(self.fd, _resolve_once, ready)
        try:
            await ready
        finally:
            remove(self.fd)

    async def read(self) -> bytes:
        while not self._closed:
            try:
                return os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                await self._wait(self._loop.add_reader, self._loop.remove_reader)
            except OSError as exc:
                # Linux reports the slave side's last close as EIO: the end of output.
                if exc.errno == errno.EIO:
                    return b""
                raise
        return b""

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._closed:
            try:
                written = os.write(self.fd, view)
            except BlockingIOError:
                await self._wait(self._loop.add_writer, self._loop.remove_writer)
                continue
            except OSError:
                return  # the terminal is gone; the process has ended
            view = view[written:]

    def resize(self, width: int, height: int) -> None:
        if not self._closed:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.fd, termios.TIOCSWINSZ,
                            struct.pack("HHHH", height, width, 0, 0))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            os.close(self.fd)


class SandboxProcess:
    """One running process of a pod, with pipes or a pseudo-terminal.

    Use :meth:`start`. Output is read with :meth:`read_stdout` / :meth:`read_stderr`
    (``b""`` at the end); input goes through :meth:`write_stdin` and :meth:`close_stdin`.
    """

    def __init__(self, argv: Sequence[str], process: asyncio.subprocess.Process,
                 master: _PtyMaster | None, stdout: _OutputPipe | None = None,
                 stderr: _OutputPipe | None = None) -> None:
        self.argv = tuple(argv)
        self._process = process
        self._master = master
        self._stdout = stdout
        self._stderr = stderr

    @classmethod
    async def start(cls, argv: Sequence[str], *, cwd: str, tty: bool, stdin: bool,
                    stdout: bool = True, stderr: bool = True,
                    env: dict[str, str] | None = None,
                    size: tuple[int, int] | None = None) -> SandboxProcess:
        """Start ``argv`` (no shell) in ``cwd``.

        Args:
            argv: the program and its arguments.
            cwd: the working directory.
            tty: give the process a pseudo-terminal as stdin, stdout and stderr.
            stdin: connect stdin (otherwise it reads ``/dev/null``).
            stdout: keep stdout (otherwise it goes to ``/dev/null``).
            stderr: keep stderr (otherwise ``/dev/null``); ignored with ``tty``.
            env: the environment; the server's own by default.
            size: the terminal's initial ``(width, height)`` (with ``tty``).

        Returns:
            The running process.

        Raises:
            SpawnError: the program does not exist or cannot be run.
        """
        if not argv:
            raise SpawnError("you must specify at least one command for the container")
        try:
            if tty:
                return await cls._start_tty(argv, cwd=cwd, env=env, size=size)
            return await cls._start_piped(argv, cwd=cwd, env=env, stdin=stdin, stdout=stdout,
                                          stderr=stderr)
        except (OSError, ValueError, TypeError, subprocess.SubprocessError) as exc:
            raise _spawn_error(argv, exc) from None

    @classmethod
    async def _start_piped(cls, argv: Sequence[str], *, cwd: str,
                           env: dict[str, str] | None, stdin: bool, stdout: bool,
                           stderr: bool) -> SandboxProcess:
        # Output pipes are our own (not asyncio's StreamReader: 64 KiB reads, a copy into
        # its buffer and another out of it), read on demand by _OutputPipe.
        null = asyncio.subprocess.DEVNULL
        out = _OutputPipe.open(PIPE_CAPACITY) if stdout else None
        err = _OutputPipe.open() if stderr else None
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, env=env, start_new_session=True,
                stdin=asyncio.subprocess.PIPE if stdin else null,
                stdout=out[1] if out is not None else null,
                stderr=err[1] if err is not None else null,
            )
        except BaseException:
            for pair in (out, err):
                if pair is not None:
                    os.close(pair[0])
            raise
        finally:
            # Only the child keeps the write ends, so its exit ends our reads.
            for pair in (out, err):
                if pair is not None:
                    os.close(pair[1])
        return cls(argv, process, None,
                   _OutputPipe(out[0]) if out is not None else None,
                   _OutputPipe(err[0]) if err is not None else None)

    @classmethod
    async def _start_tty(cls, argv: Sequence[str], *, cwd: str, env: dict[str, str] | None,
                         size: tuple[int, int] | None) -> SandboxProcess:
        master_fd, slave_fd = pty.openpty()
        try:
            if size is not None and size[0] > 0 and size[1] > 0:
                # Set before the program starts, so that it reads the right size at once.
                fcntl.ioctl(slave_fd, termios.TIOCSWINSZ,
                            struct.pack("HHHH", size[1], size[0], 0, 0))
            process = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, env=env, stdin=slave_fd, stdout=slave_fd, stderr=slave_fd,
                start_new_session=True, preexec_fn=_make_controlling_terminal,
            )
        except BaseException:
            # Whatever failed (a NUL in argv is a ValueError), the master is ours to close.
            os.close(master_fd)
            raise
        finally:
            # Only the child keeps the slave open, so its exit ends our reads (EIO).
            os.close(slave_fd)
        return cls(argv, process, _PtyMaster(master_fd))

    @property
    def pid(self) -> int:
        """The process id (also its process group id)."""
        return self._process.pid

    @property
    def tty(self) -> bool:
        """Whether the process runs on a pseudo-terminal."""
        return self._master is not None

    async def read_stdout(self) -> bytes:
        """Read the next chunk of output (stdout, or the terminal); ``b""`` at the end."""
        if self._master is not None:
            return await self._master.read()
        if self._stdout is None:
            return b""
        return await self._stdout.read()

    async def read_stderr(self) -> bytes:
        """Read the next chunk of stderr; ``b""`` at the end (at once with a TTY)."""
        if self._stderr is None:
            return b""
        return await self._stderr.read()

    async def write_stdin(self, data: bytes) -> None:
        """Feed the process's stdin; silently drops data once the process is gone."""
        if self._master is not None:
            await self._master.write(data)
            return
        stdin = self._process.stdin
        if stdin is None or stdin.is_closing():
            return
        stdin.write(data)
        with contextlib.suppress(ConnectionError):
            await stdin.drain()

    async def close_stdin(self) -> None:
        """Signal the end of input: close the pipe, or type ^D on the terminal."""
        if self._master is not None:
            await self._master.write(_EOT)
            return
        stdin = self._process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
            # Shielded: on CPython 3.11 a cancelled wait cancels the pipe's own close
            # future, and the pipe's later connection_lost then raises InvalidStateError
            # inside the event loop.
            with contextlib.suppress(ConnectionError):
                await asyncio.shield(stdin.wait_closed())

    def resize(self, width: int, height: int) -> None:
        """Set the terminal size (``TIOCSWINSZ``, which also signals SIGWINCH)."""
        if self._master is not None and width > 0 and height > 0:
            self._master.resize(width, height)

    async def wait(self) -> int:
        """Wait for the process to exit.

        Returns:
            The exit code, 0..255 (128+N for a process killed by signal N).
        """
        returncode = await self._process.wait()
        return _exit_code(returncode)

    def kill(self) -> None:
        """Kill the process and everything it started (its whole process group)."""
        # Also after the leader exited: children it left behind may still hold the group.
        _kill_group(self._process.pid)

    def close(self) -> None:
        """Kill what is left and release the terminal and the output pipes."""
        self.kill()
        if self._master is not None:
            self._master.close()
        for pipe in (self._stdout, self._stderr):
            if pipe is not None:
                pipe.close()


def _resolve_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _make_controlling_terminal() -> None:
    # Runs in the child after setsid(): make the pty (fd 0) the controlling terminal so
    # that ^C and job control reach the process as they would in a container.
    with contextlib.suppress(OSError):
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)


# --------------------------------------------------------------------------- attach


@dataclass(eq=False)
class AttachHandle:
    """One session attached to a pod's main process.

    ``output`` yields ``(stream, chunk)`` with stream 1 (stdout) or 2 (stderr); ``None``
    means the main process ended.
    """

    output: asyncio.Queue[tuple[int, bytes] | None]


class MainProcess:
    """A pod's main process, shared by every attached session."""

    def __init__(self, argv: Sequence[str], cwd: str, env: dict[str, str] | None) -> None:
        self.argv = tuple(argv)
        self._cwd = cwd
        self._env = env
        self._process: SandboxProcess | None = None
        self._attached: set[AttachHandle] = set()
        self._pumps: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._stdin_lock = asyncio.Lock()
        #: What it wrote, for ``kubectl logs`` (bounded).
        self.log = PodLog()

    async def attach(self) -> AttachHandle:
        """Join the main process, starting it if it is not running.

        Returns:
            The handle whose queue receives the process's output from now on.

        Raises:
            SpawnError: the main process could not start.
        """
        async with self._lock:
            if self._process is None:
                self._process = await SandboxProcess.start(
                    self.argv, cwd=self._cwd, tty=False, stdin=True, env=self._env)
                self._pumps = [
                    asyncio.create_task(self._run(self._process)),
                ]
            handle = AttachHandle(asyncio.Queue(ATTACH_QUEUE_CHUNKS))
            self._attached.add(handle)
            return handle

    def detach(self, handle: AttachHandle) -> None:
        """Stop sending output to ``handle`` (its session ended)."""
        self._attached.discard(handle)

    async def write_stdin(self, data: bytes) -> None:
        """Feed the main process's stdin (from any attached session)."""
        process = self._process
        if process is not None:
            async with self._stdin_lock:
                await process.write_stdin(data)

    async def close_stdin(self) -> None:
        """Close the main process's stdin (``stdinOnce``)."""
        process = self._process
        if process is not None:
            async with self._stdin_lock:
                await process.close_stdin()

    async def _fan_out(self, stream: int, read: Callable[[], Awaitable[bytes]]) -> None:
        while True:
            chunk = await read()
            if not chunk:
                return
            self.log.append(chunk)
            for handle in list(self._attached):
                await handle.output.put((stream, chunk))

    async def _run(self, process: SandboxProcess) -> None:
        try:
            await asyncio.gather(self._fan_out(1, process.read_stdout),
                                 self._fan_out(2, process.read_stderr))
            await process.wait()
        finally:
            process.close()
            self.log.run_ended()
            # Everyone attached now sees the end; the next attach starts a new process.
            self._process = None
            for handle in list(self._attached):
                self._attached.discard(handle)
                force_end(handle)

    async def close(self) -> None:
        """Kill the main process and end every attached session."""
        process = self._process
        if process is not None:
            process.kill()
        for task in self._pumps:
            task.cancel()
        for task in self._pumps:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pumps = []
        if process is not None:
            await _reaped(process)


def force_end(handle: AttachHandle) -> None:
    """Put the end marker in ``handle``'s queue, dropping a chunk if it is full."""
    # The marker must get through even when the session stopped reading.
    queue = handle.output
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(None)


# --------------------------------------------------------------------------- pods


class Pod:
    """A pod of ``kstream serve``: a name, a private directory and a main process.

    Args:
        name: the pod's name.
        namespace: its namespace.
        main_argv: the main process (what ``attach`` joins).
        ports: the named container ports it declares, ``(name, number)`` pairs.
    """

    container: Final = "main"

    def __init__(self, name: str, namespace: str, main_argv: Sequence[str], *,
                 ports: Sequence[tuple[str, int]] = ()) -> None:
        self.name = name
        self.namespace = namespace
        self.ports = tuple(ports)
        self.workdir = tempfile.mkdtemp(prefix=f"kstream-pod-{name}-")
        self.env = dict(os.environ, HOSTNAME=name)
        self.main = MainProcess(main_argv, self.workdir, self.env)
        self._processes: set[SandboxProcess] = set()
        self._reaping: set[asyncio.Task[None]] = set()

    async def spawn(self, argv: Sequence[str], *, tty: bool, stdin: bool, stdout: bool,
                    stderr: bool, size: tuple[int, int] | None = None) -> SandboxProcess:
        """Start an exec process in this pod (see :meth:`SandboxProcess.start`).

        Raises:
            SpawnError: the program does not exist or cannot be run.
        """
        process = await SandboxProcess.start(argv, cwd=self.workdir, tty=tty, stdin=stdin,
                                             stdout=stdout, stderr=stderr, env=self.env,
                                             size=size)
        self._processes.add(process)
        return process

    def release(self, process: SandboxProcess) -> None:
        """Forget an exec process after its session ended, killing what is left of it."""
        process.close()
        self._processes.discard(process)
        self._reap(process)

    def _reap(self, process: SandboxProcess) -> None:
        # A killed process is still waited for: until then its asyncio transport is open
        # (a ResourceWarning if the loop ends first, as an in-process FakeNode's does).
        task = asyncio.ensure_future(_reaped(process))
        self._reaping.add(task)
        task.add_done_callback(self._reaping.discard)

    async def close(self) -> None:
        """Kill every process of the pod, wait for them, and remove its directory."""
        for process in list(self._processes):
            process.close()
            self._reap(process)
        self._processes.clear()
        await self.main.close()
        if self._reaping:
            await asyncio.wait(list(self._reaping))
        shutil.rmtree(self.workdir, ignore_errors=True)


async def _reaped(process: SandboxProcess) -> None:
    """Wait (bounded) for a killed process to exit."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), _REAP_TIMEOUT)
