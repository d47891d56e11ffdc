"""Runtime-neutral pieces shared by the asyncio and trio adapters.

Everything here is plain Python: URL building, the option object, the TLS default, the
fallback ladder run, per-channel receive buffers with byte accounting, the heartbeat
clock, what a server answers for its handler, result types and the errors the adapters
add to kstream's error family. No asyncio or trio import (the one coroutine function
awaits only what the adapter hands it): both adapters build on these so that they
behave the same way.
"""

from __future__ import annotations

import logging
import math
import ssl
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar
from urllib.parse import quote, urlsplit

from .._channels import V5_NAME
from .._exec.fallback import TRANSPORTS, Attempt, plan, should_fall_back
from .._exec.session import ClientExecSession
from .._exec.spdy import SpdyExecClient
from .._http import _attach_target_for_path as http_attach_target
from .._http import _exec_target_for_path as http_exec_target
from .._http import query_bool
from .._status import Status, internal_error_status, success_status
from .._ws.connection import WebSocketChannelConnection
from .errors import (
    CalledRemoteProcessError,
    CompletedExec,
    ConnectionLostError,
    IncompleteReadError,
    PingTimeoutError,
    RemoteCommandError,
    connection_lost_error,
    outcome_returncode,
    receive_error,
)

__all__ = [
    "CLOSE_GRACE",
    "DEFAULT_BUFFER_LIMIT",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PONG_TIMEOUT",
    "LINGER",
    "MAX_PENDING_RESIZES",
    "READ_SIZE",
    "CalledRemoteProcessError",
    "CompletedExec",
    "ConnectionLostError",
    "ExecOptions",
    "Heartbeat",
    "IncompleteReadError",
    "PingTimeoutError",
    "ReceiveBuffer",
    "RemoteCommandError",
    "ServerAddress",
    "accept_switches",
    "attach_target",
    "can_close_stdin",
    "client_ssl_context",
    "connection_lost_error",
    "exec_target",
    "handler_exit_status",
    "handler_rejection",
    "new_client_session",
    "open_first_accepted",
    "outcome_returncode",
    "parse_server",
    "receive_error",
    "server_url",
    "shared_read_buffer",
]

_log = logging.getLogger("kstream")
_T = TypeVar("_T")

#: Ping period of client-go's WebSocket executor and kubectl's SPDY connections.
DEFAULT_PING_INTERVAL: Final = 5.0
#: Time without a pong after which the peer is declared dead (client-go: 12 x 5 s + 1 s).
DEFAULT_PONG_TIMEOUT: Final = 60.0
#: Bytes a channel may hold unread before the adapter stops reading the socket.
DEFAULT_BUFFER_LIMIT: Final = 1 << 20
#: Bytes read from the socket at once (the bound "one read" of the buffer guarantee).
READ_SIZE: Final = 256 * 1024
#: The per-thread receive buffer (see :func:`shared_read_buffer`).
_thread_state = threading.local()


def shared_read_buffer() -> memoryview:
    """The :data:`READ_SIZE` buffer every connection of this thread reads into.

    One per thread, made on first use, instead of one per connection: a zero-filled
    256 KiB buffer is resident memory, and most connections of a busy client sit idle
    (1000 idle sessions cost 266 KiB each with one buffer per connection, 10 KiB with
    this). Sharing is safe because a read fills the buffer and the session consumes it
    in one synchronous step, with no other connection of the thread running in between:
    the sans-IO layers copy every byte they keep (ChannelData payloads, partial frames
    and headers, the HTTP handshake, rejection bodies) before ``receive_data`` returns.

    Returns:
        A writable view of the thread's buffer; it must not be kept past the read.
    """
    buffer: memoryview | None = getattr(_thread_state, "read_buffer", None)
    if buffer is None:
        buffer = _thread_state.read_buffer = memoryview(bytearray(READ_SIZE))
    return buffer


#: How long closing may take to send what is queued (and the close) before the
#: connection is closed forcefully.
CLOSE_GRACE: Final = 5.0
#: How long a server keeps reading (and discarding) after its last bytes, until the client
#: closes: closing a socket with unread input makes the kernel send a reset that can
#: destroy output still in flight (the Go peer's hijackedConn does the same, 2 s).
LINGER: Final = 2.0
#: Terminal sizes a server keeps when the handler does not read them (the latest win).
MAX_PENDING_RESIZES: Final = 64


# --------------------------------------------------------------------------- URLs


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where to connect, parsed from ``"http(s)://host[:port][/prefix]"``.

    Attributes:
        host: the host name or IP address (IPv6 without brackets).
        port: the TCP port (443 / 80 by default).
        tls: ``https`` was given.
        authority: the ``Host`` header value (port omitted when it is the default).
        prefix: a path prefix in front of ``/api/v1`` (``""`` usually; some proxies
            such as Rancher serve clusters under a prefix).
    """

    host: str
    port: int
    tls: bool
    authority: str
    prefix: str = ""


def parse_server(server: str) -> ServerAddress:
    """Parse a server URL as found in a kubeconfig.

    Args:
        server: ``"https://host:6443"``, ``"http://127.0.0.1:8001"``, ...

    Returns:
        The parsed address.

    Raises:
        ValueError: not an ``http`` or ``https`` URL with a host.
    """
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"server must be an http:// or https:// URL, not {server!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"server URL must not have a query or fragment: {server!r}")
    tls = parts.scheme == "https"
    default_port = 443 if tls else 80
    port = parts.port or default_port
    host = parts.hostname
    shown = _bracketed(host)
    authority = shown if port == default_port else f"{shown}:{port}"
    return ServerAddress(host=host, port=port, tls=tls, authority=authority,
                         prefix=parts.path.rstrip("/"))


def server_url(scheme: str, host: str, port: int) -> str:
    """Return ``scheme://host:port`` for a bound server (an IPv6 host in brackets).

    Args:
        scheme: ``"http"`` or ``"https"``.
        host: the bound address.
        port: the bound port.

    Returns:
        The URL clients connect to.
    """
    return f"{scheme}://{_bracketed(host)}:{port}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


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


# --------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecOptions:
    """Every knob of an exec/attach session, validated once for both adapters.

    Attributes:
        stdin: send stdin.
        stdout: receive stdout.
        stderr: receive stderr; always ``False`` with a tty (kubectl does the same: the
            terminal merges stderr into stdout, and the kubelet rejects tty + stderr).
        tty: allocate a terminal.
        headers: extra request headers (``Authorization``, ...).
        transport: ``"auto"``, ``"websocket"`` or ``"spdy"``.
        protocols: a custom protocol list, or ``None`` for the ladder's defaults.
        fallback: move to the next transport when an upgrade is rejected.
        ping_interval: seconds between pings (``None`` or 0: no heartbeat).
        pong_timeout: seconds without a pong before :class:`PingTimeoutError`.
        connect_timeout: bound on TCP/TLS connect plus upgrade, per attempt.
        buffer_limit: unread bytes a channel may hold before reading stops.
    """

    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    transport: str = "auto"
    protocols: tuple[str, ...] | None = None
    fallback: bool = True
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    pong_timeout: float = DEFAULT_PONG_TIMEOUT
    connect_timeout: float | None = None
    buffer_limit: int = DEFAULT_BUFFER_LIMIT

    @classmethod
    def build(cls, *, stdin: bool = False, stdout: bool = True, stderr: bool = True,
              tty: bool = False, headers: Sequence[tuple[str, str]] = (),
              transport: str = "auto", protocols: Sequence[str] | None = None,
              fallback: bool = True, ping_interval: float | None = DEFAULT_PING_INTERVAL,
              pong_timeout: float = DEFAULT_PONG_TIMEOUT, connect_timeout: float | None = None,
              buffer_limit: int = DEFAULT_BUFFER_LIMIT) -> ExecOptions:
        """Validate and normalise the keyword arguments of ``open_exec``.

        Returns:
            The options.

        Raises:
            ValueError: an argument is out of range, or no stdio stream is requested.
        """
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, "
                             f"not {transport!r}")
        if tty:
            stderr = False
        if not (stdin or stdout or stderr):
            # The kubelet answers 400 when none is requested (protocol-notes §2.1).
            raise ValueError("at least one of stdin, stdout and stderr must be requested")
        if buffer_limit < 1:
            raise ValueError("buffer_limit must be positive")
        if not (pong_timeout > 0 and math.isfinite(pong_timeout)):
            raise ValueError("pong_timeout must be a positive number of seconds")
        if ping_interval is not None and (ping_interval < 0 or not math.isfinite(ping_interval)):
            raise ValueError("ping_interval must be None or a non-negative number of seconds")
        if connect_timeout is not None and connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        if isinstance(protocols, str):
            raise ValueError("protocols must be a sequence of names, not a string")
        return cls(stdin=stdin, stdout=stdout, stderr=stderr, tty=tty,
                   headers=tuple((str(k), str(v)) for k, v in headers), transport=transport,
                   protocols=None if protocols is None else tuple(protocols),
                   fallback=fallback, ping_interval=ping_interval or None,
                   pong_timeout=pong_timeout, connect_timeout=connect_timeout,
                   buffer_limit=buffer_limit)


# --------------------------------------------------------------------------- client


def client_ssl_context(address: ServerAddress,
                       context: ssl.SSLContext | None) -> ssl.SSLContext | None:
    """Return the TLS context of a client connection, or ``None`` for plain TCP.

    Args:
        address: where to connect (``https`` asks for TLS).
        context: the caller's context, if any.

    Returns:
        The caller's context as is (never modified: it may be shared; without ALPN,
        servers speak HTTP/1.1, which the upgrades need); else, for ``https``, the
        system's default context with ALPN ``http/1.1``.
    """
    if context is not None:
        return context
    if not address.tls:
        return None
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def new_client_session(address: ServerAddress, target: str, attempt: Attempt,
                       options: ExecOptions) -> ClientExecSession:
    """Return a fresh client session for one attempt of the fallback ladder.

    Args:
        address: the server (its ``authority`` is the ``Host`` header).
        target: the request target (see :func:`exec_target`).
        attempt: the transport and protocols to offer.
        options: the session's options (stdio switches, headers).

    Returns:
        The :class:`~kstream._exec.session.ClientExecSession`, its upgrade request queued.
    """
    if attempt.transport == "websocket":
        connection: WebSocketChannelConnection | SpdyExecClient = \
            WebSocketChannelConnection.client(host=address.authority, target=target,
                                              protocols=attempt.protocols,
                                              headers=options.headers)
    else:
        connection = SpdyExecClient(host=address.authority, target=target,
                                    stdin=options.stdin, stdout=options.stdout,
                                    stderr=options.stderr, tty=options.tty,
                                    protocols=attempt.protocols, headers=options.headers)
    return ClientExecSession(connection, tty=options.tty)


async def open_first_accepted(options: ExecOptions,
                              connect: Callable[[Attempt], Awaitable[_T]], *,
                              fallback: bool = True) -> _T:
    """Run the fallback ladder: ``connect`` each planned attempt until one is accepted.

    Args:
        options: the session's options (transport, protocols, fallback).
        connect: the adapter's coroutine function that connects and upgrades for one
            attempt.
        fallback: ``False`` allows one attempt only (a caller's socket or stream is
            spent after a rejection).

    Returns:
        What ``connect`` returned for the first accepted attempt.

    Raises:
        Exception: what the last attempt raised, or the first error that is not a
            reason to fall back (see :func:`kstream._exec.fallback.should_fall_back`).
    """
    attempts = plan(stdin=options.stdin, transport=options.transport,
                    protocols=options.protocols, fallback=options.fallback and fallback)
    for index, attempt in enumerate(attempts):
        try:
            return await connect(attempt)
        except Exception as exc:
            if index + 1 < len(attempts) and should_fall_back(exc):
                _log.debug("upgrade over %s rejected (%s); trying %s", attempt.transport,
                           exc, attempts[index + 1].transport)
                continue
            raise
    raise AssertionError("plan() returns at least one attempt")


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


# --------------------------------------------------------------------------- buffers


@dataclass(slots=True)
class ReceiveBuffer:
    """Unread bytes of one output channel, as a queue of received chunks.

    Chunks are kept as they arrived (no concatenation on receipt); reads join only what
    they return. ``size`` is the byte count the adapters compare with ``buffer_limit``.

    Attributes:
        size: bytes held.
        eof: the channel ended; no more bytes will be appended.
        error: set when the session failed; reads raise it once the buffer is empty.
        peak: the largest ``size`` ever reached (a diagnostic for tests and tuning).
    """

    size: int = 0
    eof: bool = False
    error: BaseException | None = None
    peak: int = 0
    _chunks: deque[bytes] = field(default_factory=deque)
    # Bytes of the first chunk already read: a short read takes the front of a chunk
    # without copying the rest of it.
    _offset: int = 0

    def append(self, data: bytes) -> None:
        """Queue received bytes (ignored after EOF, and when empty)."""
        if data and not self.eof:
            self._chunks.append(data)
            self.size += len(data)
            self.peak = max(self.peak, self.size)

    def end(self, error: BaseException | None = None) -> None:
        """Mark the end of the channel, with the error that ended the session if any."""
        self.eof = True
        if error is not None and self.error is None:
            self.error = error

    def unread(self, data: bytes) -> None:
        """Put ``data`` back in front of the buffer (what a failed read had taken).

        Not counted against ``peak``: these bytes were already held once.
        """
        if not data:
            return
        if self._offset:
            self._chunks[0] = self._chunks[0][self._offset:]
            self._offset = 0
        self._chunks.appendleft(data)
        self.size += len(data)

    @property
    def finished(self) -> bool:
        """Whether a read can be answered now without waiting (data, EOF or error)."""
        return bool(self.size) or self.eof

    def take(self, n: int = -1) -> bytes:
        """Remove and return up to ``n`` bytes (all of them when ``n < 0``).

        A bounded read returns whole received chunks while they fit and cuts a chunk
        only when the first one alone is larger than ``n``: it may return fewer bytes
        than are held (as a socket read may), and in exchange copies nothing when one
        chunk fits, and each byte at most once otherwise.

        Raises:
            BaseException: the session's error, when the buffer is empty and it failed.
        """
        if not self.size:
            if self.error is not None:
                raise self.error
            return b""
        chunks = self._chunks
        first = chunks[0]
        offset = self._offset
        head = len(first) - offset
        if 0 <= n < head:
            # The first chunk alone is too big: return its front, keep its place.
            self._offset = offset + n
            self.size -= n
            return first[offset:offset + n]
        chunks.popleft()
        self._offset = 0
        piece = first[offset:] if offset else first
        if n < 0:
            n = self.size
        taken = head
        if taken + (len(chunks[0]) if chunks else n) > n:
            # The common case (one read per received chunk): no copy at all.
            self.size -= taken
            return piece
        pieces = [piece]
        while chunks and taken + len(chunks[0]) <= n:
            chunk = chunks.popleft()
            pieces.append(chunk)
            taken += len(chunk)
        self.size -= taken
        return b"".join(pieces)


# --------------------------------------------------------------------------- heartbeat


class Heartbeat:
    """The ping clock and pong deadline of one session (times are ``now`` arguments).

    client-go pings every 5 s and moves its read deadline forward only when a pong
    arrives (``tools/remotecommand/websocket.go``, protocol-notes §1.7): incoming data
    does not count as a sign of life. While the adapter has stopped reading on purpose
    (backpressure), pongs cannot be seen, so the deadline is suspended and re-armed a
    full ``pong_timeout`` after reading resumes.
    """

    def __init__(self, interval: float, timeout: float, now: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self._alive_at = now
        self._next_ping = now + interval
        self._suspended = False

    @property
    def deadline(self) -> float:
        """When the peer is declared dead (``inf`` while suspended)."""
        return math.inf if self._suspended else self._alive_at + self.timeout

    @property
    def next_ping(self) -> float:
        """When the next ping is due."""
        return self._next_ping

    def next_wakeup(self) -> float:
        """The earliest time the adapter must call :meth:`poll`."""
        return min(self._next_ping, self.deadline)

    def poll(self, now: float) -> bool:
        """Advance the clock.

        Returns:
            ``True`` when a ping should be sent now.

        Raises:
            PingTimeoutError: the pong deadline passed.
        """
        if now >= self.deadline:
            raise PingTimeoutError(f"no pong from the peer within {self.timeout:g} s")
        if now >= self._next_ping:
            self._next_ping = now + self.interval
            return True
        return False

    def pong(self, now: float) -> None:
        """Record a pong (any pong proves the peer alive)."""
        self._alive_at = max(self._alive_at, now)

    def suspend(self) -> None:
        """Stop the deadline: the adapter is not reading on purpose."""
        self._suspended = True

    def resume(self, now: float) -> None:
        """Re-arm the deadline after reading resumed."""
        if self._suspended:
            self._suspended = False
            self._alive_at = now


# --------------------------------------------------------------------------- server


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
