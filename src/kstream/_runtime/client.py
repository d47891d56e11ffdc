"""What ``open_exec``, ``open_attach`` and ``run`` share on both runtimes.

Their keyword arguments (:class:`ExecArguments`), validated into one
:class:`ExecRequest`; their documentation, written once here and completed by each
runtime with what is its own (the connected socket or stream it accepts); and the end of
:func:`run` (:func:`complete`).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from .._status import Exited
from .._ws.mask import mask_backend
from .common import attach_target, exec_target
from .errors import CompletedExec
from .options import ExecOptions, ServerAddress, parse_server, pop_connection_arguments
from .process import RemoteProcess

if TYPE_CHECKING:
    from .proxy import ProxyURL

# Choose the masking routine now, as the runtimes load, rather than on a session's first
# masked frame: importing websockets' C routine takes about 18 ms, which would land in
# the middle of the first exchange (``import kstream`` itself still loads none of it).
mask_backend()

__all__ = [
    "OPEN_ATTACH_DOC",
    "OPEN_EXEC_DOC",
    "RUN_DOC",
    "ExecArguments",
    "ExecRequest",
    "RunArguments",
    "complete",
    "documented",
    "exec_request",
]

_F = TypeVar("_F", bound=Callable[..., Any])


class RunArguments(TypedDict, total=False):
    """The keyword arguments of ``run`` besides its own (documented in :data:`OPEN_EXEC_DOC`)."""

    container: str | None
    stdout: bool
    stderr: bool
    tty: bool
    headers: Sequence[tuple[str, str]]
    ssl: ssl.SSLContext | None
    server_hostname: str | None
    proxy: str | None
    transport: str
    protocols: Sequence[str] | None
    fallback: bool
    ping_interval: float | None
    pong_timeout: float
    connect_timeout: float | None
    buffer_limit: int


class ExecArguments(RunArguments, total=False):
    """The keyword arguments of ``open_exec``/``open_attach`` besides the runtime's own."""

    stdin: bool


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """One ``open_exec``/``open_attach`` call, its arguments validated.

    Attributes:
        address: the parsed server URL.
        target: the request target of the upgrade.
        command: the argv (empty for attach).
        options: the session's options.
        ssl: the caller's TLS context, if any.
        server_hostname: the caller's TLS server name, if any.
        proxy: the proxy to connect through, if any.
    """

    address: ServerAddress
    target: str
    command: tuple[str, ...]
    options: ExecOptions
    ssl: ssl.SSLContext | None
    server_hostname: str | None
    proxy: ProxyURL | None = None


def exec_request(server: str, namespace: str, pod: str, command: Sequence[str] | None,
                 arguments: ExecArguments) -> ExecRequest:
    """Validate the arguments of ``open_exec`` (a ``command``) or ``open_attach`` (``None``).

    Returns:
        The request.

    Raises:
        ValueError: an invalid argument.
        TypeError: an unknown keyword argument.
    """
    given: dict[str, Any] = dict(arguments)
    container = given.pop("container", None)
    context, server_hostname, proxy = pop_connection_arguments(given)
    options = ExecOptions.build(**given)
    address = parse_server(server)
    if command is None:
        target = attach_target(namespace, pod, container=container, stdin=options.stdin,
                               stdout=options.stdout, stderr=options.stderr,
                               tty=options.tty, prefix=address.prefix)
    else:
        target = exec_target(namespace, pod, command, container=container,
                             stdin=options.stdin, stdout=options.stdout,
                             stderr=options.stderr, tty=options.tty, prefix=address.prefix)
    return ExecRequest(address=address, target=target, command=tuple(command or ()),
                       options=options, ssl=context, server_hostname=server_hostname,
                       proxy=proxy)


async def complete(process: RemoteProcess, input: bytes | None, *,
                   check: bool) -> CompletedExec:
    """Run ``process`` to its end as :func:`run` does and collect its output.

    Returns:
        The :class:`~kstream._runtime.errors.CompletedExec`.

    Raises:
        CalledRemoteProcessError: ``check`` and a non-zero exit code.
    """
    async with process:
        out, err = await process.communicate(input)
        code = await process.wait()
        result = process.result
    assert isinstance(result, Exited)
    completed = CompletedExec(process.command, code, out, err, result)
    if check:
        completed.check_returncode()
    return completed


def documented(template: str, **parts: str) -> Callable[[_F], _F]:
    """Give the decorated function ``template`` as its docstring, ``parts`` filled in."""

    def decorate(function: _F) -> _F:
        function.__doc__ = template.format(**parts)
        return function

    return decorate


#: The documentation of ``open_exec``. Each runtime fills in ``{usage}`` (a paragraph
#: or nothing) and ``{connection}`` (its argument for an already connected socket or
#: stream).
OPEN_EXEC_DOC = """Run ``command`` in a pod's container and return the running process.
{usage}
    Args:
        server: the API server (or kubelet, or any exec endpoint), ``http(s)://host:port``.
        namespace: the pod's namespace.
        pod: the pod's name.
        command: the argv (no shell is involved unless the argv runs one).
        container: the container; ``None`` lets the server choose.
        stdin: send stdin (default ``False``).
        stdout: receive stdout (default ``True``).
        stderr: receive stderr (default ``True``; always off with ``tty``: a terminal
            merges it).
        tty: allocate a terminal (resize with :meth:`RemoteProcess.resize`).
        headers: extra request headers, e.g. ``[("Authorization", "Bearer ...")]``.
        ssl: the TLS context for ``https`` (default: the system's trust store, ALPN
            ``http/1.1``); used as given, never modified.
        server_hostname: the TLS server name, when not the URL's host.
        proxy: connect through this proxy, ``http://``, ``https://`` (HTTP ``CONNECT``)
            or ``socks5://``, with an optional ``user:password@``; ``None`` (the
            default) connects directly. :func:`kstream.kubeconfig.load_config` chooses it
            as kubectl does (``proxy-url``, ``HTTPS_PROXY``, ``NO_PROXY``).
        transport: ``"auto"`` (WebSocket, then SPDY; the default), ``"websocket"`` or
            ``"spdy"``.
        protocols: a custom protocol list (see :func:`kstream._exec.fallback.plan`).
        fallback: try the next transport when an upgrade is rejected (default ``True``).
        ping_interval: seconds between pings (default 5); ``None`` disables the
            heartbeat.
        pong_timeout: seconds without a pong before :class:`PingTimeoutError`
            (default 60).
        connect_timeout: bound on connect + TLS + upgrade, per attempt (default 30 s,
            as client-go's dialer; ``None``: no bound).
        buffer_limit: unread bytes per output channel before reading stops (default
            1 MiB).
        {connection}

    Returns:
        The :class:`RemoteProcess`.

    Raises:
        UpgradeRejectedError: every attempt was rejected (the last one's, with the HTTP
            status and the decoded ``Status``).
        ValueError: invalid arguments.
        OSError, TimeoutError: connecting failed (no fallback on those).
    """

OPEN_ATTACH_DOC = """Attach to the main process of a pod's container.

    Same arguments as :func:`open_exec`, without ``command``.

    Returns:
        The :class:`RemoteProcess` (``command`` is empty).
    """

#: The documentation of ``run``. Each runtime fills in ``{like}`` (what it is modelled
#: on), ``{timeout}`` (more about the deadline) and ``{connection}``.
RUN_DOC = """Run a command to completion and collect its output, like {like}.

    Args:
        input: bytes for stdin (stdin is requested, and closed after them, only then).
        check: raise :class:`CalledRemoteProcessError` on a non-zero exit code.
        timeout: overall deadline in seconds (:class:`TimeoutError`{timeout}).
        server: see :func:`open_exec` for this and every other argument.
        namespace: the pod's namespace.
        pod: the pod's name.
        command: the argv.
        container: the container.
        stdout: capture stdout.
        stderr: capture stderr.
        tty: allocate a terminal.
        headers: extra request headers.
        ssl: TLS context.
        server_hostname: TLS server name.
        proxy: the proxy URL.
        transport: transport preference.
        protocols: custom protocol list.
        fallback: fall back between transports.
        ping_interval: heartbeat period.
        pong_timeout: pong deadline.
        connect_timeout: connect + upgrade bound.
        buffer_limit: per-channel buffer limit while connecting (the output is then
            collected whole).
        {connection}

    Returns:
        The :class:`CompletedExec`.

    Raises:
        CalledRemoteProcessError: ``check`` and a non-zero exit code.
        RemoteCommandError: the command produced no exit code.
        UpgradeRejectedError, PingTimeoutError, ConnectionLostError, TimeoutError.
    """
