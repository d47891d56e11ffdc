"""The client's user-facing objects, written once for both runtimes."""

from __future__ import annotations

from .._channels import V5_NAME
from .._exec.session import ClientExecSession

__all__ = ["can_close_stdin"]



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

