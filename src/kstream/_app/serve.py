"""``kstream serve``: a local stand-in for the apiserver + kubelet pair.

It answers what kubectl asks before an exec (discovery: ``/api``, ``/apis``, ``/api/v1``;
``GET`` of the pod), then serves the ``exec`` and ``attach`` subresources over every
transport the asyncio adapter speaks (WebSocket v5, v4, v4.base64, channel.k8s.io,
base64.channel.k8s.io; SPDY/3.1 v4..v1). The pods are local sandboxes (:mod:`._serve_sandbox`).

Security model: binds 127.0.0.1 unless told otherwise; every request needs the token
(compared in constant time), as ``Authorization: Bearer`` or -- because kubectl sends no
credentials over plain HTTP -- as the path prefix ``/kstream/<token>`` that the written
kubeconfig puts in the server URL of ``http://`` servers; TLS when given a certificate;
the server never hands a command string to a shell -- an exec runs its argv as is.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import os
import re
import resource
import secrets
import ssl
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from .._errors import KstreamError
from .._http import query_bool
from .._runtime.options import DEFAULT_MAX_PENDING
from .._status import (
    STATUS_FAILURE,
    Status,
    encode_status,
    exit_code_status,
    internal_error_status,
    success_status,
)
from .._version import __version__
from . import certs
from .kubeapi import API_RESOURCES, CONTAINER, KubeApi
from .podports import check_ports
from .sandbox import AttachHandle, Pod, SandboxProcess, SpawnError, force_end
from .serve_portforward import serve_port_forward

if TYPE_CHECKING:
    from .._resize import TerminalSize
    from .._runtime.portforward_server import ServerPortForward
    from ..asyncio import ServerExec, ServerRequest

__all__ = [
    "DEFAULT_MAIN_COMMAND",
    "DEFAULT_POD",
    "TOKEN_PATH_PREFIX",
    "AcceptErrorLog",
    "PodSpec",
    "ServeApp",
    "ServeHooks",
    "ServerHandle",
    "kubeconfig_document",
    "start",
]

#: The pod served when none is declared.
DEFAULT_POD: Final = "demo"
#: What a pod's main process (the one ``attach`` joins) runs unless declared.
DEFAULT_MAIN_COMMAND: Final = ("cat",)
#: Path prefix carrying the token in the URL (``/kstream/<token>/api/v1/...``).
#: client-go sends no credentials over plain HTTP (clientcmd ``client_config.go``: "only
#: try to read the auth information if we are secure"), so for ``http://`` servers the
#: written kubeconfig puts the token in the server URL instead.
TOKEN_PATH_PREFIX: Final = "/kstream/"
#: The name of the cluster, user and context of the written kubeconfig.
KUBECONFIG_NAME: Final = "kstream"

#: Seconds a TTY exec waits for the client's first terminal size before starting.
_INITIAL_SIZE_WAIT: Final = 1.0

#: The Kubernetes version the discovery documents claim (kubectl only warns on skew).
_SERVED_MAJOR: Final = "1"
_SERVED_MINOR: Final = "33"


@dataclass(frozen=True, slots=True)
class PodSpec:
    """A pod to serve.

    Attributes:
        name: the pod's name.
        argv: its main process (what ``attach`` joins).
        namespace: its namespace.
        ports: the named container ports it declares, ``(name, number)`` pairs in
            ``spec.containers[0].ports`` (checked as the apiserver checks them).

    Raises:
        ValueError: a port name or number the apiserver would refuse.
    """

    name: str
    argv: tuple[str, ...] = DEFAULT_MAIN_COMMAND
    namespace: str = "default"
    ports: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        check_ports(self.ports)


# --------------------------------------------------------------------------- documents


def kubeconfig_document(server: str, token: str, *,
                        certificate_authority: bytes | None = None) -> dict[str, Any]:
    """A kubeconfig that reaches a ``kstream serve`` instance.

    Args:
        server: the URL the server listens on.
        token: its bearer token.
        certificate_authority: the PEM certificate to trust (TLS only).

    Returns:
        The kubeconfig (cluster, user and context named ``kstream``, namespace
        ``default``, current). JSON is valid YAML, so kubectl reads it as written.
    """
    cluster: dict[str, Any] = {"server": server}
    if certificate_authority is not None:
        cluster["certificate-authority-data"] = base64.b64encode(
            certificate_authority).decode("ascii")
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": KUBECONFIG_NAME, "cluster": cluster}],
        "users": [{"name": KUBECONFIG_NAME, "user": {"token": token}}],
        "contexts": [{"name": KUBECONFIG_NAME, "context": {
            "cluster": KUBECONFIG_NAME, "user": KUBECONFIG_NAME, "namespace": "default"}}],
        "current-context": KUBECONFIG_NAME,
    }


def _json_body(document: object) -> tuple[list[tuple[str, str]], bytes]:
    body = json.dumps(document, separators=(",", ":")).encode("utf-8") + b"\n"
    return [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body


def _status_body(status: Status) -> tuple[list[tuple[str, str]], bytes]:
    body = encode_status(status, kind=True) + b"\n"
    return [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body


def _not_found(name: str) -> Status:
    # apiserver wording (apimachinery errors.NewNotFound with the "pods" resource).
    return Status(status=STATUS_FAILURE, message=f'pods "{name}" not found',
                  reason="NotFound", details_name=name, details_kind="pods", code=404)


# --------------------------------------------------------------------------- hooks


#: Runs an accepted session the engine's own way (a sandbox process, or attach).
SessionRunner = Callable[["ServerExec"], Awaitable[None]]


class ServeHooks:
    """Extension points of the session engine; the defaults change nothing.

    ``kstream.testing`` subclasses it for handler pods, session records and faults.
    """

    async def before_accept(self, request: ServerRequest, pod: Pod, subresource: str) -> bool:
        """Called before an exec/attach upgrade is accepted.

        Returns:
            ``False`` when the hook answered the request itself (the engine then stops).
        """
        return True

    async def run_session(self, request: ServerRequest, session: ServerExec, pod: Pod,
                          subresource: str, argv: Sequence[str], run: SessionRunner) -> None:
        """Run an accepted session; ``await run(session)`` is what the engine does."""
        await run(session)

    def port_forward_accepted(self, request: ServerRequest,
                              session: ServerPortForward) -> None:
        """Called once a ``portforward`` upgrade is accepted (``before_accept`` let it)."""

    def port_forward_ended(self, request: ServerRequest) -> None:
        """Called when a ``portforward`` request is over, accepted or not."""


# --------------------------------------------------------------------------- the app


class ServeApp:
    """The request handler of ``kstream serve``: routing, auth, pods and sessions.

    Args:
        token: the bearer token every request must carry.
        pods: the pods to serve; ``demo`` running ``cat`` when empty.
        log: called with one line per session (what ran, over which transport), if given.
        hooks: the engine's extension points (:class:`ServeHooks`).
    """

    def __init__(self, token: str, pods: Sequence[PodSpec] = (),
                 log: Callable[[str], None] | None = None,
                 hooks: ServeHooks | None = None) -> None:
        if not token:
            raise ValueError("a token is required")
        self._token = token.encode("utf-8")
        self._pods: dict[tuple[str, str], Pod] = {}
        self._uids: dict[tuple[str, str], str] = {}
        for spec in pods or (PodSpec(DEFAULT_POD),):
            self.add_pod(spec)
        self._sessions: set[asyncio.Task[Any]] = set()
        self._log = log
        self._hooks = hooks or ServeHooks()
        self._kubeapi = KubeApi(self._pods, self._uids, time.time())

    def add_pod(self, spec: PodSpec) -> None:
        """Serve one more pod (replacing one of the same namespace and name)."""
        key = (spec.namespace, spec.name)
        self._pods[key] = Pod(spec.name, spec.namespace, spec.argv, ports=spec.ports)
        self._uids[key] = str(uuid.uuid4())

    @property
    def pods(self) -> list[Pod]:
        """The pods served."""
        return list(self._pods.values())

    async def __call__(self, request: ServerRequest) -> None:
        """Answer one request (the handler given to ``start_server``)."""
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            await self._route(request)
        finally:
            if task is not None:
                self._sessions.discard(task)

    async def close(self) -> None:
        """End every session and every process, and remove the pods' directories."""
        for task in list(self._sessions):
            task.cancel()
        for pod in self._pods.values():
            await pod.close()

    # ----------------------------------------------------------------- routing

    def _authenticate(self, request: ServerRequest) -> str | None:
        """Check the token; return the path to route (without a token prefix) or ``None``."""
        path = request.path
        if path.startswith(TOKEN_PATH_PREFIX):
            token, _, rest = path[len(TOKEN_PATH_PREFIX):].partition("/")
            if hmac.compare_digest(token.encode("utf-8"), self._token):
                return "/" + rest
        for name, value in request.headers:
            if name == "authorization":
                scheme, _, credential = value.partition(" ")
                if scheme.lower() == "bearer" and hmac.compare_digest(
                        credential.strip().encode("utf-8"), self._token):
                    return path
        return None

    async def _fail(self, request: ServerRequest, status: Status) -> None:
        if request.upgrade is not None:
            await request.reject(status.code, status.message)
        else:
            await request.respond(status.code, *_status_body(status))

    async def _route(self, request: ServerRequest) -> None:
        path = self._authenticate(request)
        if path is None:
            await self._fail(request, Status(status=STATUS_FAILURE, message="Unauthorized",
                                             reason="Unauthorized", code=401))
            return
        # The path arrives escaped (split_target checks, never decodes): the apiserver
        # decodes names, so its messages say pods "a b", not pods "a%20b".
        parts = [unquote(part) for part in path.rstrip("/").split("/")[1:]]
        if await self._kubeapi.answer(request, parts):
            return  # pods, logs, namespaces, events, refusals (kubeapi.py)
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) >= 6 and parts[4] == "pods":
            await self._pod_route(request, parts)
            return
        document = self._discovery(parts)
        if document is None or request.method not in ("GET", "HEAD") \
                or request.upgrade is not None:
            await self._fail(request, Status(
                status=STATUS_FAILURE, reason="NotFound", code=404,
                message="the server could not find the requested resource"))
            return
        await request.respond(200, *_json_body(document))

    def _discovery(self, parts: list[str]) -> object | None:
        if parts == ["version"]:
            return {"major": _SERVED_MAJOR, "minor": _SERVED_MINOR,
                    "gitVersion": f"v{_SERVED_MAJOR}.{_SERVED_MINOR}.0+kstream-{__version__}",
                    "platform": "linux/amd64"}
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
        if parts == ["api", "v1"]:
            return API_RESOURCES
        return None

    async def _pod_route(self, request: ServerRequest, parts: list[str]) -> None:
        # /api/v1/namespaces/{ns}/pods/{name}[/{subresource}], decoded by _route
        namespace, name = parts[3], parts[5]
        subresource = parts[6] if len(parts) == 7 else None
        key = (namespace, name)
        pod = self._pods.get(key)
        # kubeapi.py answers everything but exec, attach and port-forward.
        if len(parts) > 7 or subresource not in ("exec", "attach", "portforward"):
            await self._fail(request, Status(
                status=STATUS_FAILURE, reason="NotFound", code=404,
                message="the server could not find the requested resource"))
            return
        if pod is None:
            await self._fail(request, _not_found(name))
            return
        if subresource == "portforward":
            if not await self._hooks.before_accept(request, pod, subresource):
                return
            try:
                await serve_port_forward(
                    request, namespace, name, self._uids[key], self._log,
                    accepted=lambda session: self._hooks.port_forward_accepted(request,
                                                                               session))
            finally:
                self._hooks.port_forward_ended(request)
            return
        assert subresource is not None
        await self._stream(request, pod, subresource)

    # ----------------------------------------------------------------- sessions

    async def _stream(self, request: ServerRequest, pod: Pod, subresource: str) -> None:
        if request.method not in ("GET", "POST"):
            await self._fail(request, Status(
                status=STATUS_FAILURE, reason="MethodNotAllowed", code=405,
                message="the server does not allow this method on the requested resource"))
            return
        if request.upgrade is None:
            # apiserver: the exec/attach handlers only serve upgrades.
            await self._fail(request, Status(status=STATUS_FAILURE, reason="BadRequest",
                                             code=400, message="Upgrade request required"))
            return
        query = request.query
        stdin = query_bool(query, "stdin", "input")
        stdout = query_bool(query, "stdout", "output")
        stderr = query_bool(query, "stderr", "error")
        tty = query_bool(query, "tty")
        argv = [value for key, value in query if key == "command"]
        container = next((value for key, value in query if key == "container"), "")
        problem = ""
        if container not in ("", CONTAINER):
            problem = f"container {container} is not valid for pod {pod.name}"
        elif not (stdin or stdout or stderr):
            problem = "you must specify at least one of stdin, stdout, stderr"
        elif subresource == "exec" and not argv:
            problem = "you must specify at least one command for the container"
        if problem:
            await self._fail(request, Status(status=STATUS_FAILURE, reason="BadRequest",
                                             code=400, message=problem))
            return
        # With a terminal there is no separate stderr (kubelet httpstream.go NewOptions).
        stderr = stderr and not tty
        if not await self._hooks.before_accept(request, pod, subresource):
            return
        try:
            session = await request.accept(stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
        except KstreamError:
            return  # no protocol in common (answered 403) or the client left: closed
        if self._log is not None:
            what = f"exec {_loggable_argv(argv)}" if subresource == "exec" else "attach"
            self._log(f"{what} in {pod.namespace}/{pod.name} (stdin={stdin} tty={tty}) "
                      f"over {session.transport}/{session.protocol}")

        async def run(session: ServerExec) -> None:
            if subresource == "exec":
                await _run_exec(session, pod, argv, stdin=stdin, stdout=stdout,
                                stderr=stderr, tty=tty)
            else:
                await _run_attach(session, pod, stdin=stdin, stdout=stdout, stderr=stderr,
                                  tty=tty)

        await self._hooks.run_session(request, session, pod, subresource, argv, run)


#: How much of an exec's argv the session log shows: an argv can be as long as the
#: request line allows (64 KiB), and a log line should stay a line.
_LOGGED_ARGV_CHARS: Final = 200


def _loggable_argv(argv: Sequence[str]) -> str:
    text = repr(list(argv))
    if len(text) <= _LOGGED_ARGV_CHARS:
        return text
    return f"{text[:_LOGGED_ARGV_CHARS]}... ({len(argv)} arguments, {len(text)} characters)"


async def _copy_stdin(session: ServerExec, process: SandboxProcess) -> None:
    while True:
        data = await session.read_stdin()
        if not data:
            await process.close_stdin()
            return
        await process.write_stdin(data)


async def _copy_output(session: ServerExec, process: SandboxProcess, *, stderr: bool) -> None:
    read = process.read_stderr if stderr else process.read_stdout
    write = session.write_stderr if stderr else session.write_stdout
    while data := await read():
        write(data)
        await session.drain()


async def _first_size(resizes: AsyncIterator[TerminalSize]) -> tuple[int, int] | None:
    # Clients send the terminal size right after the upgrade (kubectl exec does);
    # waiting briefly for it lets the program start with the right size, as a runtime
    # given an initial console size does. (A timeout finalises this iterator; the
    # sizes live in the connection, so a fresh ``session.resizes`` carries on.)
    with contextlib.suppress(TimeoutError, StopAsyncIteration):
        size = await asyncio.wait_for(anext(resizes), _INITIAL_SIZE_WAIT)
        return size.width, size.height
    return None


async def _follow_client(resizes: AsyncIterator[TerminalSize],
                         process: SandboxProcess) -> None:
    # Applies terminal sizes; the iteration ends when the connection does. A client that
    # left before the process ended leaves nobody to read it: kill it.
    async for size in resizes:
        process.resize(size.width, size.height)
    process.kill()


async def _run_exec(session: ServerExec, pod: Pod, argv: Sequence[str], *, stdin: bool,
                    stdout: bool, stderr: bool, tty: bool) -> None:
    """Run one exec session: the process, its streams, its exit status."""
    size = await _first_size(session.resizes) if tty else None
    try:
        process = await pod.spawn(argv, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr,
                                  size=size)
    except SpawnError as exc:
        await session.exit(internal_error_status(
            f"error executing command in container: {exc.message}"))
        return
    helpers = [asyncio.create_task(_follow_client(session.resizes, process))]
    try:
        if stdin:
            helpers.append(asyncio.create_task(_copy_stdin(session, process)))
        await asyncio.gather(_copy_output(session, process, stderr=False),
                             _copy_output(session, process, stderr=True))
        code = await process.wait()
        await session.exit(success_status() if code == 0 else exit_code_status(code, argv))
    finally:
        await _cancel(helpers)
        pod.release(process)


async def _cancel(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def _attach_stdin(session: ServerExec, pod: Pod) -> None:
    while True:
        data = await session.read_stdin()
        if not data:
            await pod.main.close_stdin()
            return
        await pod.main.write_stdin(data)


async def _attach_output(session: ServerExec, handle: AttachHandle, *, stdout: bool,
                         stderr: bool, tty: bool) -> None:
    while (item := await handle.output.get()) is not None:
        stream, data = item
        if stream == 1 and stdout:
            session.write_stdout(data)
        elif stream == 2 and stderr:
            session.write_stderr(data)
        elif stream == 2 and tty and stdout:
            session.write_stdout(data)  # a terminal has one output stream
        else:
            continue
        await session.drain()


async def _follow_attached_client(session: ServerExec, handle: AttachHandle) -> None:
    # The main process keeps running without this session: when the client leaves, end
    # the session's output loop (there are no terminal sizes to apply: no pty).
    async for _ in session.resizes:
        pass
    force_end(handle)


async def _run_attach(session: ServerExec, pod: Pod, *, stdin: bool, stdout: bool,
                      stderr: bool, tty: bool) -> None:
    """Run one attach session on the pod's main process."""
    try:
        handle = await pod.main.attach()
    except SpawnError as exc:
        await session.exit(internal_error_status(
            f"error attaching to container: {exc.message}"))
        return
    helpers = [asyncio.create_task(_follow_attached_client(session, handle))]
    if stdin:
        helpers.append(asyncio.create_task(_attach_stdin(session, pod)))
    try:
        await _attach_output(session, handle, stdout=stdout, stderr=stderr, tty=tty)
        # kubelet attach reports success whatever the main process's exit code
        # (httpstream.go ServeAttach writes the attach call's error, nil here).
        await session.exit(success_status())
    finally:
        pod.main.detach(handle)
        await _cancel(helpers)


# --------------------------------------------------------------------------- running


@dataclass(eq=False)
class ServerHandle:
    """A running ``kstream serve``.

    Attributes:
        url: the URL it listens on (``http(s)://host:port``).
        port: the bound port.
        token: the bearer token.
        app: the request handler.
        server: the adapter's server object.
        certificate: the PEM certificate clients trust when serving TLS (the generated
            CA, or the certificates of ``tls_cert``).
        warnings: problems a client may have with the server (one line each).
    """

    url: str
    port: int
    token: str
    app: ServeApp
    server: Any
    certificate: bytes | None = None
    warnings: tuple[str, ...] = ()
    redact: logging.Filter | None = None

    @property
    def client_url(self) -> str:
        """The server URL for clients: over plain HTTP it carries the token in its path."""
        if self.certificate is None:
            return f"{self.url}{TOKEN_PATH_PREFIX}{self.token}"
        return self.url

    def kubeconfig(self) -> dict[str, Any]:
        """The kubeconfig reaching this server (see :func:`kubeconfig_document`)."""
        return kubeconfig_document(self.client_url, self.token,
                                   certificate_authority=self.certificate)

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`kubeconfig` to ``path``, readable by the owner only."""
        data = json.dumps(self.kubeconfig(), indent=2).encode("utf-8") + b"\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    async def close(self) -> None:
        """Stop listening, end every session and process."""
        self.server.close()
        # The sessions end first (cancelled, their processes killed), then the pods,
        # which wait for every killed process.
        with contextlib.suppress(Exception):
            await self.server.wait_closed()
        await self.app.close()
        if self.redact is not None:
            logging.getLogger("kstream").removeFilter(self.redact)


_PEM_CERTIFICATE: Final = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\r?\n?", re.DOTALL)


def _certificates_only(pem: bytes) -> bytes:
    # The certificate file may also hold the private key: only certificates go into the
    # kubeconfig.
    return b"".join(_PEM_CERTIFICATE.findall(pem))


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _bound_port(server: Any) -> int:
    port = getattr(server, "port", None)
    if isinstance(port, int):
        return port
    sockets = getattr(server, "sockets", None) or ()
    for sock in sockets:
        return int(sock.getsockname()[1])
    raise RuntimeError("cannot tell which port the server is bound to")


async def start(*, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                tls_cert: str | None = None, tls_key: str | None = None,
                plain_http: bool = False, pods: Sequence[PodSpec] = (),
                log: Callable[[str], None] | None = None,
                hooks: ServeHooks | None = None) -> ServerHandle:
    """Start ``kstream serve`` in the running event loop.

    TLS is the default: without ``tls_cert`` a fresh local CA and a serving certificate
    for ``host`` (and loopback) are generated, and the kubeconfig pins that CA. The token
    then travels as a normal ``Authorization: Bearer`` header.

    Args:
        host: the address to bind (loopback by default).
        port: the port, 0 for a free one.
        token: the bearer token; a random one when ``None``.
        tls_cert: a PEM certificate file (chain) to serve TLS with, with ``tls_key``.
        tls_key: the PEM private key of ``tls_cert`` (may be the same file).
        plain_http: serve plain HTTP instead (the kubeconfig then carries the token in
            the URL path, because kubectl sends no credentials over plain HTTP).
        pods: the pods to serve (``demo`` when empty).
        log: called with one line per session, if given.
        hooks: the engine's extension points (:class:`ServeHooks`), if given.

    Returns:
        The running server; :meth:`ServerHandle.close` stops it. Its ``warnings`` say
        what a client may refuse (a given certificate without an IP SAN for ``host``).

    Raises:
        ValueError: ``plain_http`` together with ``tls_cert``.
    """
    from ..asyncio import start_server

    if plain_http and tls_cert is not None:
        raise ValueError("plain HTTP and a TLS certificate exclude each other")
    token = token or secrets.token_urlsafe(32)
    context = None
    certificate = None
    warnings: list[str] = []
    if tls_cert is not None:
        context = _server_context()
        context.load_cert_chain(tls_cert, tls_key)
        with open(tls_cert, "rb") as handle:
            certificate = _certificates_only(handle.read())
        problem = certs.missing_ip_san(certificate, _url_host(host).strip("[]"))
        if problem is not None:
            warnings.append(f"{tls_cert}: {problem}")
    elif not plain_http:
        generated = certs.generate(host)
        context = _server_context()
        _load_generated(context, generated)
        certificate = generated.ca_pem
    app = ServeApp(token, pods, log, hooks)
    redact = _RedactSecret(token)
    logging.getLogger("kstream").addFilter(redact)
    try:
        server = await start_server(app, host=host, port=port, ssl=context,
                                    max_pending=_max_pending())
    except BaseException:
        logging.getLogger("kstream").removeFilter(redact)
        await app.close()
        raise
    bound = _bound_port(server)
    scheme = "https" if context is not None else "http"
    return ServerHandle(url=f"{scheme}://{_url_host(host)}:{bound}", port=bound, token=token,
                        app=app, server=server, certificate=certificate,
                        warnings=tuple(warnings), redact=redact)


class _RedactSecret(logging.Filter):
    """Replaces the server's token in every record of the ``kstream`` logger.

    The library's log lines never print credentials on purpose, but an error can quote a
    request target, and over plain HTTP serve's targets start with ``/kstream/<token>``.
    """

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret in message:
            record.msg = message.replace(self._secret, "<token>")
            record.args = None
        if record.exc_info is not None and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if self._secret in text:
                record.exc_text = text.replace(self._secret, "<token>")
        return True


class AcceptErrorLog:
    """An event-loop exception handler that keeps accept() failures to a line at a time.

    When the process runs out of descriptors, asyncio reports every failing ``accept()``
    with a traceback (thousands a second under a flood). This prints one line per
    ``interval`` seconds instead, with how many were left out, and passes every other
    error to the loop's default handler.

    Args:
        write: where the line goes (stderr for ``kstream serve``).
        clock: seconds, for the interval.
        interval: at most one line per this many seconds.
    """

    def __init__(self, write: Callable[[str], None], clock: Callable[[], float], *,
                 interval: float = 5.0) -> None:
        self._write = write
        self._clock = clock
        self._interval = interval
        self._last: float | None = None
        self._unreported = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The loop's exception handler."""
        if context.get("message") != "socket.accept() out of system resource":
            loop.default_exception_handler(context)
            return
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self._unreported += 1
            return
        exc = context.get("exception")
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "out of resources"
        more = f" ({self._unreported} more since the last report)" if self._unreported else ""
        self._write(f"kstream serve: cannot accept connections: {why}{more}")
        self._last = now
        self._unreported = 0


def _max_pending() -> int:
    # Idle clients must never take the descriptors real clients need: at most a quarter
    # of the process's limit waits for a request head (256 with a usual limit of 1024+).
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_PENDING
    return max(4, min(DEFAULT_MAX_PENDING, soft // 4))


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_alpn_protocols(["http/1.1"])
    return context


def _load_generated(context: ssl.SSLContext, generated: certs.LocalCertificates) -> None:
    # ssl loads a key only from a file: a private directory, removed at once.
    with tempfile.TemporaryDirectory(prefix="kstream-serve-") as directory:
        chain, key = os.path.join(directory, "chain.pem"), os.path.join(directory, "key.pem")
        for path, data in ((chain, generated.cert_pem), (key, generated.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        context.load_cert_chain(chain, key)
