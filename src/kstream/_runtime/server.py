"""What a server answers for its handler: accepted switches, refusals, exit statuses."""

from __future__ import annotations

from collections.abc import Sequence

from .._http import query_bool
from .._status import Status, internal_error_status, success_status

__all__ = ["accept_switches", "handler_exit_status", "handler_rejection"]



def accept_switches(query: Sequence[tuple[str, str]], *, stdin: bool | None,
                    stdout: bool | None, stderr: bool | None,
                    tty: bool | None) -> dict[str, bool]:
    """Return the stdio switches a server accepts a session with.

    Args:
        query: the request's decoded query parameters.
        stdin: the handler's choice, or ``None`` for the query parameter of that name.
        stdout: likewise.
        stderr: likewise.
        tty: likewise.

    Returns:
        ``{"stdin": ..., "stdout": ..., "stderr": ..., "tty": ...}``, the keyword
        arguments of :meth:`~kstream._exec.session.ServerExecSession.accept`.
    """
    return {name: query_bool(query, name) if value is None else value
            for name, value in (("stdin", stdin), ("stdout", stdout),
                                ("stderr", stderr), ("tty", tty))}


def handler_rejection(error: Exception | None) -> tuple[int, str]:
    """Return how a server refuses a request its handler did not answer.

    Args:
        error: what the handler raised, or ``None`` if it returned.

    Returns:
        ``(status_code, message)``: 500 with the error, or 404 for a handler that
        returned without an answer.
    """
    if error is not None:
        return 500, f"handler error: {error}"
    return 404, "the handler did not answer the request"


def handler_exit_status(error: Exception | None) -> Status:
    """Return the exit status of an accepted session its handler did not end.

    Args:
        error: what the handler raised, or ``None`` if it returned.

    Returns:
        Success, or the kubelet's InternalError for a failed exec.
    """
    if error is None:
        return success_status()
    return internal_error_status(f"error executing command in container: {error}")
