"""Request targets of the adapters (``exec`` and ``attach`` of a pod).

The rest of what used to live here is split along its seams: :mod:`.options` (server
address, options, TLS default), :mod:`.buffers` (read buffer, channel buffers,
heartbeat), :mod:`.fallback` (the fallback run), :mod:`.server` (what a server answers
for its handler) and :mod:`.errors`. ``READ_SIZE``, ``ReceiveBuffer`` and
``RemoteCommandError`` are still importable from here (the tests import them so).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from .._http import attach_target as http_attach_target
from .._http import exec_target as http_exec_target
from .buffers import READ_SIZE as READ_SIZE
from .buffers import ReceiveBuffer as ReceiveBuffer
from .errors import RemoteCommandError as RemoteCommandError

__all__ = ["attach_target", "exec_target"]

def exec_target(namespace: str, pod: str, command: Sequence[str], *, container: str | None,
                stdin: bool, stdout: bool, stderr: bool, tty: bool, prefix: str = "") -> str:
    """Return the request target of a pod ``exec`` upgrade, query encoded as kubectl does.

    Args:
        namespace: the pod's namespace.
        pod: the pod's name.
        command: the argv, one ``command=`` parameter each, order kept.
        container: the container, or ``None`` for the server's default.
        stdin: request stdin.
        stdout: request stdout.
        stderr: request stderr.
        tty: request a terminal.
        prefix: a path prefix (see :class:`ServerAddress`).

    Returns:
        ``/api/v1/namespaces/{ns}/pods/{pod}/exec?command=...``

    Raises:
        ValueError: ``command`` is empty or a string.
    """
    if isinstance(command, str | bytes):
        raise ValueError("command must be a sequence of arguments, not a string")
    if not command:
        raise ValueError("command must not be empty")
    return http_exec_target(_pod_path("exec", namespace, pod, prefix), command=command,
                            container=container or "", stdin=stdin, stdout=stdout,
                            stderr=stderr, tty=tty)


def attach_target(namespace: str, pod: str, *, container: str | None, stdin: bool,
                  stdout: bool, stderr: bool, tty: bool, prefix: str = "") -> str:
    """Return the request target of a pod ``attach`` upgrade.

    Args:
        namespace: the pod's namespace.
        pod: the pod's name.
        container: the container, or ``None`` for the server's default.
        stdin: request stdin.
        stdout: request stdout.
        stderr: request stderr.
        tty: request a terminal.
        prefix: a path prefix (see :class:`ServerAddress`).

    Returns:
        ``/api/v1/namespaces/{ns}/pods/{pod}/attach?...``
    """
    return http_attach_target(_pod_path("attach", namespace, pod, prefix),
                              container=container or "", stdin=stdin, stdout=stdout,
                              stderr=stderr, tty=tty)


def _pod_path(subresource: str, namespace: str, pod: str, prefix: str) -> str:
    if not namespace or not pod:
        raise ValueError("namespace and pod must not be empty")
    return (f"{prefix}/api/v1/namespaces/{quote(namespace, safe='')}"
            f"/pods/{quote(pod, safe='')}/{subresource}")

