"""The server's user-facing objects, written once for both runtimes.

:class:`ServerRequest`, :class:`ServerExec` and the stdin reader only call what
:class:`~kstream._runtime.core.ServerCore` declares, so ``kstream.asyncio`` and
``kstream.trio`` export the same classes. Also here: what a server answers for its
handler (accepted switches, refusals, exit statuses).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from .._channels import STDIN
from .._errors import KstreamError, LocalProtocolError, ProtocolError, UpgradeRejectedError
from .._events import Event
from .._exec.session import RequestReceived, ServerExecSession
from .._http import query_bool
from .._resize import TerminalSize
from .._status import Status, internal_error_status, success_status
from .buffers import READ_SIZE
from .options import server_url
from .portforward_server import ServerPortForward, accept_port_forward


class ServerConnection(Protocol):
    """What the server objects need of their connection (:class:`.core.ServerCore`).

    A protocol rather than an import: the core creates these objects, so importing it
    here would make the two modules import each other.
    """

    session: ServerExecSession
    closed: bool
    finished: bool
    stream_errors: tuple[type[BaseException], ...]

    def _handle(self, event: Event) -> None: ...
    def _flush(self) -> None: ...
    def _schedule_flush(self) -> None: ...
    def _now(self) -> float: ...
    def _end_input(self, key: int, error: BaseException | None = None) -> None: ...
    def arm_stream_deadline(self) -> None: ...
    async def wait_ready(self) -> None: ...
    async def read(self, key: int, n: int = -1) -> bytes: ...
    async def readexactly(self, key: int, n: int) -> bytes: ...
    async def next_resize(self) -> TerminalSize | None: ...
    async def drain(self) -> None: ...
    async def close(self, *, abort: bool = False) -> None: ...

__all__ = [
    "SERVER_LIMITS_DOC",
    "SERVE_DOC",
    "ServerExec",
    "ServerRequest",
    "accept_switches",
    "handler_exit_status",
    "handler_rejection",
]


class ServerRequest:
    """One HTTP request to the server; answer it with exactly one of the three calls.

    Attributes:
        method: ``GET``, ``POST``, ...
        target: the raw request target.
        path: the target's path.
        query: the decoded query parameters, in order.
        headers: every header, names lower-cased, in order.
        upgrade: ``"websocket"``, ``"spdy"`` or ``None``.
        protocols: the protocols the client offered.
    """

    def __init__(self, connection: ServerConnection, event: RequestReceived) -> None:
        self._conn = connection
        self.method = event.method
        self.target = event.target
        self.path = event.path
        self.query = event.query
        self.headers = event.headers
        self.upgrade = event.upgrade
        self.protocols = event.protocols
        self.exec: ServerExec | None = None

    def __repr__(self) -> str:
        return f"<ServerRequest {self.method} {self.target} upgrade={self.upgrade}>"

    @property
    def answered(self) -> bool:
        """Whether respond(), reject() or accept() was called."""
        return self._conn.session.answered

    async def respond(self, status: int, headers: Sequence[tuple[str, str]] = (),
                      body: bytes = b"") -> None:
        """Answer with a plain HTTP response and close the connection.

        Raises:
            LocalProtocolError: already answered.
        """
        self._conn.session.respond(status, headers, body)
        await self._conn.close()

    async def reject(self, status_code: int = 403, message: str = "") -> None:
        """Refuse with a ``metav1.Status`` body (what kubectl prints) and close.

        Raises:
            LocalProtocolError: already answered, or a status outside 400..599.
        """
        self._conn.session.reject(status_code, message)
        await self._conn.close()

    async def accept(self, *, stdin: bool | None = None, stdout: bool | None = None,
                     stderr: bool | None = None, tty: bool | None = None) -> ServerExec:
        """Accept the upgrade and wait until the session carries data.

        Each switch defaults to the request's query parameter of the same name.

        Returns:
            The :class:`ServerExec`.

        Raises:
            UpgradeRejectedError: no protocol in common (a 403 was sent; closed).
            ConnectionLostError: the client went away or did not create its streams.
            LocalProtocolError: not an upgrade request, already answered, or nothing
                requested.
        """
        conn = self._conn
        switches = accept_switches(self.query, stdin=stdin, stdout=stdout, stderr=stderr,
                                   tty=tty)
        try:
            events = conn.session.accept(**switches, now=conn._now())
        except (UpgradeRejectedError, ProtocolError):
            if conn.session.answered:
                await conn.close()  # after the queued 403 (or 400) went out
            raise
        for event in events:
            conn._handle(event)
        conn._flush()
        if conn.session.transport == "spdy":
            conn.arm_stream_deadline()
        await conn.wait_ready()
        if not switches["stdin"]:
            conn._end_input(STDIN)
        self.exec = ServerExec(conn, stdin=switches["stdin"], tty=switches["tty"])
        return self.exec


    async def accept_port_forward(self) -> ServerPortForward:
        """Accept a port-forward upgrade (SPDY, the tunnel or WebSocket v4, as the client
        asked); see :class:`~kstream._runtime.portforward_server.ServerPortForward`.

        Raises:
            UpgradeRejectedError: refused (no protocol in common, bad ``?ports=``); the
                answer was sent and the connection closed.
            LocalProtocolError: not an upgrade request, or already answered.
        """
        return await accept_port_forward(self._conn, self.headers)


class ServerExec:
    """The server side of an accepted exec/attach session.

    Read stdin with :meth:`read_stdin` (or iterate :attr:`stdin`), write output with
    :meth:`write_stdout` / :meth:`write_stderr` and :meth:`drain`, follow terminal sizes
    with ``async for size in session.resizes``, and end with :meth:`exit`.

    Attributes:
        transport: ``"websocket"`` or ``"spdy"``.
        protocol: the negotiated protocol name.
        version: the remotecommand version (1..5).
        has_stdin: the client sends stdin.
        tty: the session has a terminal.
    """

    def __init__(self, connection: ServerConnection, *, stdin: bool, tty: bool) -> None:
        self._conn = connection
        self.has_stdin = stdin
        session = connection.session
        self.transport = session.transport or ""
        self.protocol = session.protocol or ""
        self.version = session.version or 1
        self.tty = tty
        self.stdin = _ServerStdin(connection)

    @property
    def closed(self) -> bool:
        """Whether the client is gone (or the session finished)."""
        return self._conn.closed or self._conn.finished

    async def read_stdin(self, max_bytes: int = READ_SIZE) -> bytes:
        """Return the next stdin bytes (at most ``max_bytes``); ``b""`` at stdin EOF.

        EOF comes when the client closes stdin (v5 CLOSE, SPDY FIN) or goes away.
        """
        with contextlib.suppress(KstreamError, *self._conn.stream_errors):
            return await self._conn.read(STDIN, max_bytes)
        return b""

    def write_stdout(self, data: bytes | bytearray | memoryview) -> None:
        """Queue process output for stdout (dropped once the client is gone)."""
        if not self.closed:
            self._conn.session.send_stdout(data)
            self._conn._schedule_flush()

    def write_stderr(self, data: bytes | bytearray | memoryview) -> None:
        """Queue process output for stderr (dropped once the client is gone)."""
        if not self.closed:
            self._conn.session.send_stderr(data)
            self._conn._schedule_flush()

    async def drain(self) -> None:
        """Wait until the connection takes more output (at once once the client is gone).

        On asyncio: until the socket's write buffer is below its high-water mark; on
        trio: until the sending task took the output.
        """
        await self._conn.drain()

    @property
    def resizes(self) -> AsyncIterator[TerminalSize]:
        """The client's terminal sizes, in order; ends when the connection does."""
        return self._resizes()

    async def _resizes(self) -> AsyncIterator[TerminalSize]:
        while (size := await self._conn.next_resize()) is not None:
            yield size

    async def exit(self, status: Status) -> None:
        """Send the exit status, end the session as the kubelet does, close the connection.

        Does nothing more if the client is already gone.

        Raises:
            LocalProtocolError: the session already finished.
        """
        conn = self._conn
        if conn.finished:
            raise LocalProtocolError("the session already finished")
        conn.finished = True
        if not conn.closed:
            with contextlib.suppress(ProtocolError):
                conn.session.exit(status)
        await conn.close()

    async def abort(self) -> None:
        """Drop the connection without a status (a crash, as tests need)."""
        self._conn.finished = True
        await self._conn.close(abort=True)


class _ServerStdin:
    """The stdin of a server session as a reader (``read``, ``readexactly``, iteration)."""

    def __init__(self, connection: ServerConnection) -> None:
        self._conn = connection

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n < 0``: until EOF); ``b""`` at EOF."""
        return await self._conn.read(STDIN, n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes (:class:`IncompleteReadError` at an early EOF)."""
        return await self._conn.readexactly(STDIN, n)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self.read(READ_SIZE):
            yield chunk



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


#: The documentation of the per-connection limits every server entry point takes.
SERVER_LIMITS_DOC = """buffer_limit: unread stdin bytes per session before reading stops.
        websocket_protocols: WebSocket subprotocols to accept (default: all, v5 to v1).
        spdy_protocols: SPDY versions to accept (default: v4 to v1).
        stream_creation_timeout: SPDY: seconds a client has to create its streams.
        head_timeout: seconds a client has, from its connection (a TLS handshake
            included), to send its whole request head before it is dropped (10).
        max_pending: connections that may wait for their request head at once; past
            it the oldest is dropped (256; ``serve_stream`` has one connection)."""

#: The documentation of a runtime's server (``start_server``, ``serve``). It fills in
#: ``{summary}``, ``{lifetime}`` (how it starts and stops), ``{returns}`` (its own
#: arguments and return value) and ``{limits}`` (:data:`SERVER_LIMITS_DOC`).
SERVE_DOC = """{summary}

    {lifetime}``handler(request)`` runs once per connection, in its own task, with a
    :class:`ServerRequest`; it answers with ``respond``, ``reject`` or ``accept`` and, for
    an accepted session, ends with ``await session.exit(status)``. A handler that returns
    without an answer gives a 404; one that raises gives a 500 (or an InternalError
    status after the upgrade); one that returns after accepting without exit() reports
    success.

    Args:
        handler: the coroutine function serving each request.
        host: the address to bind (loopback by default).
        port: the port (0: any free one; see :attr:`ExecServer.port`).
        ssl: a server TLS context (set its ALPN to ``http/1.1`` if it offers any).
        {limits}
{returns}"""


class ListeningAddress:
    """Where a server listens: ``host``, ``port`` and ``url`` of its first socket.

    A runtime's server object implements :meth:`_address` (and sets ``scheme``).
    """

    scheme = "http"

    def _address(self) -> tuple[str, int]:
        raise NotImplementedError

    @property
    def host(self) -> str:
        """The bound address of the first listening socket."""
        return self._address()[0]

    @property
    def port(self) -> int:
        """The bound port of the first listening socket."""
        return self._address()[1]

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the first listening socket."""
        return server_url(self.scheme, self.host, self.port)
