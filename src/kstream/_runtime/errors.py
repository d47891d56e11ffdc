"""The errors and results the adapters add to kstream's error family.

Importable without a runtime: ``kstream`` re-exports them at the root, and ``import
kstream`` loads no I/O module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .._errors import KstreamError, ProtocolError, RemoteProtocolError
from .._status import Exited, Failed

__all__ = [
    "CalledRemoteProcessError",
    "CompletedExec",
    "ConnectionLostError",
    "IncompleteReadError",
    "PingTimeoutError",
    "PortForwardError",
    "RemoteCommandError",
    "connection_lost_error",
    "outcome_returncode",
    "receive_error",
]


# --------------------------------------------------------------------------- errors


class RemoteCommandError(KstreamError):
    """The remote command did not run to an exit code (binary not found, container gone, ...).

    The server reported a failure that is not a process exit code, as a ``metav1.Status``
    (v4/v5) or as plain text (v1-v3).

    Attributes:
        message: the server's message (``Status.message``, or the text).
        reason: the Status ``reason`` (``"InternalError"``, ...), ``""`` if none.
        code: the Status ``code`` (an HTTP status such as 500), 0 if none.
        result: the parsed :class:`~kstream._status.Failed` outcome.
    """

    def __init__(self, result: Failed) -> None:
        self.result = result
        self.message = result.message
        self.reason = result.reason
        self.code = result.code
        super().__init__(result.message
                         or f"remote command failed ({result.reason or 'no reason'})")


class CalledRemoteProcessError(KstreamError):
    """``run(check=True)``: the remote process exited with a non-zero code.

    Mirrors :class:`subprocess.CalledProcessError`.

    Attributes:
        returncode: the exit code.
        command: the argv (empty for attach).
        stdout: the captured standard output (``b""`` if not captured).
        stderr: the captured standard error (``b""`` if not captured).
    """

    def __init__(self, returncode: int, command: Sequence[str], stdout: bytes = b"",
                 stderr: bytes = b"") -> None:
        self.returncode = returncode
        self.command = tuple(command)
        self.stdout = stdout
        self.stderr = stderr
        super().__init__(f"remote command {list(self.command)!r} exited with code {returncode}")


class PingTimeoutError(KstreamError):
    """No pong arrived within the pong deadline: the peer or the path to it is dead."""


class IncompleteReadError(KstreamError, EOFError):
    """``readexactly()`` met the end of the channel first.

    Attributes:
        partial: the bytes read before the end.
        expected: how many were asked for.
    """

    def __init__(self, partial: bytes, expected: int) -> None:
        self.partial = partial
        self.expected = expected
        super().__init__(f"{len(partial)} bytes read on a total of {expected} expected bytes")


class ConnectionLostError(RemoteProtocolError, ConnectionError):
    """The connection ended before the session did (no exit status, abrupt close).

    Both a :class:`~kstream.RemoteProtocolError` and a :class:`ConnectionError`, so
    callers catching either see it.
    """


class PortForwardError(KstreamError, ConnectionError):
    """The server could not forward one connection to the pod port (port-forward).

    Only that forwarded connection ends; the session and its other connections go on.
    Raised by reads of the connection once the bytes that came before are read.

    Attributes:
        message: the server's text, e.g. ``error forwarding port 80 to pod ..., uid ...:
            ... connect: connection refused``.
        port: the pod port.
    """

    def __init__(self, message: str, *, port: int = 0) -> None:
        self.message = message
        self.port = port
        super().__init__(message)


def connection_lost_error(cause: BaseException | None) -> ConnectionLostError:
    """Return the error of a connection that broke or closed before the session ended.

    Args:
        cause: what the runtime reported (``OSError``, a broken stream, ...), if anything.

    Returns:
        A :class:`ConnectionLostError` chained to ``cause``.
    """
    detail = f": {cause}" if cause is not None and str(cause) else ""
    lost = ConnectionLostError(f"the connection was lost before the session ended{detail}")
    lost.__cause__ = cause
    return lost


def receive_error(exc: ProtocolError, *, at_eof: bool) -> ProtocolError:
    """Return the error a client session ends with when the sans-IO session raised.

    Args:
        exc: what ``receive_data`` raised.
        at_eof: it was fed the end of the byte stream (``b""``).

    Returns:
        ``exc``; at the end of the stream a :class:`ConnectionLostError` chained to it
        (the stream ended too early: no close frame or GOAWAY, no exit status).
    """
    if not at_eof:
        return exc
    lost = ConnectionLostError(str(exc))
    lost.__cause__ = exc
    return lost


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class CompletedExec:
    """What ``run()`` returns, like :class:`subprocess.CompletedProcess`.

    Attributes:
        command: the argv (empty for attach).
        returncode: the exit code of the remote process.
        stdout: everything the process wrote to stdout (``b""`` if not requested).
        stderr: everything it wrote to stderr (``b""`` if not requested, or with a tty).
        result: the parsed exit status.
    """

    command: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes
    result: Exited

    def check_returncode(self) -> None:
        """Raise :class:`CalledRemoteProcessError` if the exit code is non-zero.

        Raises:
            CalledRemoteProcessError: ``returncode != 0``.
        """
        if self.returncode:
            raise CalledRemoteProcessError(self.returncode, self.command, self.stdout,
                                           self.stderr)


def outcome_returncode(result: Exited | Failed) -> int:
    """Return the exit code of an outcome, or raise for a failure that has none.

    Args:
        result: the parsed exit status of a session.

    Returns:
        The exit code (0..255).

    Raises:
        RemoteCommandError: the outcome is a :class:`~kstream._status.Failed`.
    """
    if isinstance(result, Failed):
        raise RemoteCommandError(result)
    return result.code
