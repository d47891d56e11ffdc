"""Port-forward for both runtimes: the options, the client core, the session's logic.

Written once and runtime-neutral, like :mod:`.core` for exec:

* :class:`PortForwardOptions` and :func:`port_forward_request`: what
  ``open_port_forward`` takes, validated once;
* :class:`ForwardClientCore`: one upgraded connection of the client (SPDY or the tunnel:
  any number of forwarded connections; WebSocket v4: one), with a receive buffer per
  forwarded connection, the backpressure of :class:`~.core.ConnectionCore`, the
  heartbeat and the end of each forwarded connection;
* :class:`PortForwardSessionCore`: the transport choice (``auto``: the tunnel, then SPDY
  when its upgrade is refused, as kubectl 1.31+), one shared upgraded connection
  re-established when it died, one WebSocket per connection on WebSocket v4.

A runtime derives its connection class from :class:`ForwardClientCore` and its own pump
(the hooks of :mod:`.core`, plus ``_set_ready``, ``_set_done`` and ``_arm_heartbeat``),
and gives :class:`PortForwardSessionCore` a ``connect`` coroutine function and a lock.
The user-facing streams are in :mod:`.portforward_streams`.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypedDict

from .._errors import LocalProtocolError, ProtocolError, UpgradeRejectedError
from .._events import ConnectionClosed, Event, PongReceived, UpgradeAccepted, UpgradeRejected
from .._portforward.events import (
    ForwardClosed,
    ForwardData,
    ForwardEnded,
    ForwardError,
    ForwardReady,
    ForwardReset,
)
from .._portforward.handshake import check_port, portforward_target
from .._portforward.session import PortForwardClientConnection
from .._portforward.spdy import SpdyPortForwardClient
from .._portforward.websocket import WebSocketPortForwardClient
from .._tunnel import TunnelClient
from .buffers import Heartbeat, ReceiveBuffer
from .core import ClientConnectionCore
from .errors import (
    ConnectionLostError,
    PingTimeoutError,
    PortForwardError,
    record_earlier_attempts,
)
from .options import (
    DEFAULT_BUFFER_LIMIT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PONG_TIMEOUT,
    ServerAddress,
    check_flow_options,
    check_transport,
    parse_server,
    pop_connection_arguments,
)

if TYPE_CHECKING:
    from .proxy import ProxyURL

__all__ = [
    "FORWARD_TRANSPORTS",
    "LISTEN_DOC",
    "OPEN_PORT_FORWARD_DOC",
    "ForwardClientCore",
    "PortForwardArguments",
    "PortForwardOptions",
    "PortForwardRequest",
    "PortForwardSessionCore",
    "new_client_connection",
    "port_forward_request",
    "ready_key",
    "transport_plan",
]

_log = logging.getLogger("kstream")

#: Transport names a caller may ask for; ``"auto"`` is the tunnel, then SPDY.
FORWARD_TRANSPORTS: Final = ("auto", "tunnel", "spdy", "websocket")


# --------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True, kw_only=True)
class PortForwardOptions:
    """Every knob of a port-forward session, validated once for both runtimes.

    Attributes:
        headers: extra request headers (``Authorization``, ...).
        transport: ``"auto"``, ``"tunnel"``, ``"spdy"`` or ``"websocket"``.
        ping_interval: seconds between pings (``None``: no heartbeat).
        pong_timeout: seconds without a pong before the connection is declared dead.
        connect_timeout: bound on TCP/TLS connect plus upgrade, per attempt (``None``:
            none).
        buffer_limit: unread bytes a forwarded connection may hold before reading stops.
    """

    headers: tuple[tuple[str, str], ...] = ()
    transport: str = "auto"
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    pong_timeout: float = DEFAULT_PONG_TIMEOUT
    connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT
    buffer_limit: int = DEFAULT_BUFFER_LIMIT

    @classmethod
    def build(cls, *, headers: Sequence[tuple[str, str]] = (), transport: str = "auto",
              ping_interval: float | None = DEFAULT_PING_INTERVAL,
              pong_timeout: float = DEFAULT_PONG_TIMEOUT,
              connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
              buffer_limit: int = DEFAULT_BUFFER_LIMIT) -> PortForwardOptions:
        """Validate and normalise the keyword arguments of ``open_port_forward``.

        Raises:
            ValueError: an argument is out of range.
        """
        check_transport(transport, FORWARD_TRANSPORTS)
        check_flow_options(buffer_limit=buffer_limit, pong_timeout=pong_timeout,
                           ping_interval=ping_interval)
        if connect_timeout is not None and connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        return cls(headers=tuple((str(k), str(v)) for k, v in headers), transport=transport,
                   ping_interval=ping_interval or None, pong_timeout=pong_timeout,
                   connect_timeout=connect_timeout, buffer_limit=buffer_limit)


class PortForwardArguments(TypedDict, total=False):
    """The keyword arguments of ``open_port_forward`` (both runtimes)."""

    headers: Sequence[tuple[str, str]]
    ssl: ssl.SSLContext | None
    server_hostname: str | None
    proxy: str | None
    transport: str
    ping_interval: float | None
    pong_timeout: float
    connect_timeout: float | None
    buffer_limit: int


@dataclass(frozen=True, slots=True)
class PortForwardRequest:
    """One ``open_port_forward`` call, its arguments validated.

    Attributes:
        address: the parsed server URL.
        target: the ``.../pods/{pod}/portforward`` target, without ``?ports=``.
        pod: ``namespace/name``, for messages.
        options: the session's options.
        ssl: the caller's TLS context, if any.
        server_hostname: the caller's TLS server name, if any.
        proxy: the proxy to connect through, if any.
    """

    address: ServerAddress
    target: str
    pod: str
    options: PortForwardOptions
    ssl: ssl.SSLContext | None
    server_hostname: str | None
    proxy: ProxyURL | None = None


def port_forward_request(server: str, namespace: str, pod: str,
                         arguments: PortForwardArguments) -> PortForwardRequest:
    """Validate the arguments of ``open_port_forward``.

    Raises:
        ValueError: an invalid argument.
        TypeError: an unknown keyword argument.
    """
    given: dict[str, Any] = dict(arguments)
    context, server_hostname, proxy = pop_connection_arguments(given)
    options = PortForwardOptions.build(**given)
    address = parse_server(server)
    target = portforward_target(namespace, pod, prefix=address.prefix)
    return PortForwardRequest(address=address, target=target, pod=f"{namespace}/{pod}",
                              options=options, ssl=context, server_hostname=server_hostname,
                              proxy=proxy)


def transport_plan(transport: str) -> tuple[str, ...]:
    """The transports to try in order: ``auto`` is the tunnel then SPDY (kubectl 1.31+)."""
    return ("tunnel", "spdy") if transport == "auto" else (transport,)


def new_client_connection(request: PortForwardRequest, transport: str,
                          port: int | None = None) -> PortForwardClientConnection:
    """The sans-IO client connection of one attempt, its upgrade request queued.

    Args:
        request: the session's request.
        transport: ``"tunnel"``, ``"spdy"`` or ``"websocket"``.
        port: WebSocket v4 only: the one pod port of this WebSocket.
    """
    host, headers = request.address.authority, request.options.headers
    if transport == "websocket":
        assert port is not None
        return WebSocketPortForwardClient(host=host, target=request.target, ports=(port,),
                                          headers=headers)
    if transport == "tunnel":
        return TunnelClient(host=host, target=request.target, headers=headers)
    return SpdyPortForwardClient(host=host, target=request.target, headers=headers)


# --------------------------------------------------------------------------- the client core


@dataclass(slots=True)
class _Forwarded:
    """What the core knows of one forwarded connection (a request)."""

    port: int
    ready: bool = False
    reset: bool = False          # the peer aborted it
    closed: bool = False         # the connection forgot it (ForwardClosed)
    local_ended: bool = False    # end() was called
    remote_ended: bool = False   # the pod's side ended (or the request is over)
    error: str | None = None     # the server's error text


def ready_key(request_id: int) -> int:
    """The input key of a request's readiness (see :class:`ForwardClientCore`)."""
    # A request's readiness is a zero-byte input that ends when the server took the
    # request: waiting for it is waiting for that input, the one wait of the core.
    return -1 - request_id


class ForwardClientCore(ClientConnectionCore):
    """One upgraded client connection and the forwarded connections it carries.

    Inputs are keyed by request id (the bytes from the pod) and by :func:`_ready_key`
    (the readiness of a request). Reading stops, for the whole connection, while any
    forwarded connection holds more than ``buffer_limit`` unread bytes: memory stays
    bounded per connection when one side stops reading.

    Args:
        session: the sans-IO client connection of this attempt.
        options: the session's options.
    """

    session: PortForwardClientConnection
    options: PortForwardOptions

    def __init__(self, session: PortForwardClientConnection,
                 options: PortForwardOptions, port: int | None = None) -> None:
        ClientConnectionCore.__init__(self, options.buffer_limit)
        self.session = session
        self.options = options
        self.transport = session.transport
        self.upgraded = False
        # WebSocket v4: the one port, opened as the upgrade is accepted (the server's
        # first messages for it may come in the same read as the 101).
        self._port = port
        #: WebSocket v4: the request id of that port, once upgraded.
        self.first_request: int | None = None
        self._requests: dict[int, _Forwarded] = {}
        #: Why the connection ended (``None`` while it runs, or after a clean end).
        self.error: BaseException | None = None

    # -- hooks

    def _set_done(self, error: BaseException | None) -> None:
        raise NotImplementedError

    # -- events

    def _handle(self, event: Event) -> None:
        if isinstance(event, ForwardData):
            self._feed_input(event.request_id, event.data)
        elif isinstance(event, ForwardEnded):
            self._remote_end(event.request_id, None)
        elif isinstance(event, ForwardReady):
            state = self._requests.get(event.request_id)
            if state is not None:
                state.ready = True
                self._end_input(ready_key(event.request_id))
        elif isinstance(event, ForwardError):
            self._on_error_text(event.request_id, event.message)
        elif isinstance(event, ForwardReset):
            state = self._requests.get(event.request_id)
            if state is not None:
                state.reset = True
        elif isinstance(event, ForwardClosed):
            self._on_forward_closed(event.request_id)
        elif isinstance(event, PongReceived):
            self._on_pong()
        elif isinstance(event, UpgradeAccepted):
            self.upgraded = True
            if self._port is not None:
                self.first_request = self.open(self._port)
            self._start_heartbeat()
            self._set_ready()
        elif isinstance(event, UpgradeRejected):
            self._fail(event.error, abort=False)
        elif isinstance(event, ConnectionClosed):
            self._fail(ConnectionLostError("the port-forward connection closed"
                                           + (f" ({event.reason})" if event.reason else "")),
                       abort=False)

    def _on_error_text(self, request_id: int, message: str) -> None:
        state = self._requests.get(request_id)
        if state is None:
            return
        state.error = message
        error = PortForwardError(message, port=state.port)
        # What arrived before the error is still read first; then reads raise it.
        self._remote_end(request_id, error)

    def _remote_end(self, request_id: int, error: BaseException | None) -> None:
        state = self._requests.get(request_id)
        if state is None:
            return
        state.remote_ended = True
        self._end_input(request_id, error)
        if not state.ready:
            self._end_input(ready_key(request_id), error or ConnectionResetError(
                f"the server ended the connection to port {state.port}"))

    def _on_forward_closed(self, request_id: int) -> None:
        state = self._requests.get(request_id)
        if state is None:
            return
        state.closed = True
        error = None
        if state.reset and state.error is None:
            error = ConnectionResetError(f"the server reset the connection to port "
                                         f"{state.port}")
        self._remote_end(request_id, error)

    def _fail(self, exc: BaseException, *, abort: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        self.error = exc
        for state in self._requests.values():
            state.closed = state.remote_ended = True
        for key, buffer in self._inputs.items():
            if not buffer.eof:  # what ended in order before stays an orderly end
                self._end_input(key, exc)
        self._stop_heartbeat()
        self._set_done(exc)
        self._close(abort=abort)

    # -- heartbeat

    def _heartbeat_tick(self, heartbeat: Heartbeat) -> bool:
        """Ping if due; fail the connection once the pong deadline passed.

        Returns:
            ``True``: wake up again at ``heartbeat.next_wakeup()``; ``False``: stop.
        """
        if self.closed or heartbeat is not self._heartbeat:
            return False
        return ClientConnectionCore._heartbeat_tick(self, heartbeat) is True

    # -- forwarded connections

    @property
    def active(self) -> int:
        """Forwarded connections not released yet."""
        return len(self._requests)

    def open(self, port: int) -> int:
        """Start a forwarded connection to ``port``; return its request id.

        Raises:
            ConnectionLostError (or the error the connection ended with): it is over.
        """
        if self.closed:
            raise self.error or ConnectionLostError("the port-forward connection is closed")
        request_id = self.session.open(port)
        self._requests[request_id] = _Forwarded(port)
        self._inputs[request_id] = ReceiveBuffer()
        self._inputs[ready_key(request_id)] = ReceiveBuffer()
        self._schedule_flush()
        return request_id

    async def wait_ready(self, request_id: int) -> None:
        """Wait until the server took the request.

        Raises:
            PortForwardError, ConnectionResetError, ConnectionLostError: it never will.
        """
        buffer = await self._wait_input(ready_key(request_id))
        state = self._requests.get(request_id)
        if state is None or not state.ready:
            buffer.take()  # raises the error the request ended with
            raise ConnectionResetError("the connection was closed before the server took it")

    def state(self, request_id: int) -> _Forwarded | None:
        """What is known of a request (``None`` once released)."""
        return self._requests.get(request_id)

    def send(self, request_id: int, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes for the pod.

        Raises:
            ConnectionResetError: the server reset or ended this connection.
            ConnectionLostError: the whole port-forward connection is over.
        """
        state = self._requests.get(request_id)
        if self.closed:
            raise self.error or ConnectionLostError("the port-forward connection is closed")
        if state is None or state.local_ended:
            raise LocalProtocolError("the connection was closed for writing")
        if state.reset or state.closed:
            raise ConnectionResetError(state.error or f"the server ended the connection to "
                                                      f"port {state.port}")
        if data:
            self.session.send(request_id, data)
            self._schedule_flush()

    def end(self, request_id: int) -> None:
        """Half-close: the pod reads EOF (SPDY FIN; nothing on WebSocket v4)."""
        state = self._requests.get(request_id)
        if state is None or state.local_ended:
            return
        state.local_ended = True
        if not (self.closed or state.closed or state.reset):
            with contextlib.suppress(ProtocolError):
                self.session.end(request_id)
            self._schedule_flush()

    def release(self, request_id: int) -> None:
        """Forget a forwarded connection (its stream was closed).

        Like closing a socket: once the pod's side ended this is an orderly end (FIN if
        not sent yet); before, with bytes still coming, it aborts the request (SPDY RST).
        A WebSocket v4 connection carries one forwarded connection: it closes.
        """
        state = self._requests.pop(request_id, None)
        self._drop_inputs(request_id)
        if state is None:
            return
        if self.transport == "websocket":
            self.close_connection()
            return
        if not (self.closed or state.closed):
            with contextlib.suppress(ProtocolError):
                if state.remote_ended and not state.reset:
                    if not state.local_ended:
                        self.session.end(request_id)
                else:
                    self.session.reset(request_id)
            self._schedule_flush()
        self._maybe_resume_reading()

    def discard_input(self, request_id: int) -> None:
        """Drop what the pod sent to ``request_id`` and not read, and all it sends later.

        For a connection whose reader is gone while its request must stay open (WebSocket
        v4 cannot end one port alone): its unread bytes no longer hold the others back.
        """
        self._drop_inputs(request_id)
        self._maybe_resume_reading()

    def _drop_inputs(self, request_id: int) -> None:
        self._inputs.pop(request_id, None)
        self._inputs.pop(ready_key(request_id), None)

    async def drain(self) -> None:
        """Wait until the transport takes more; raise if the connection failed."""
        self.require_pump()
        await self._drain()
        if self.error is not None and self.closed:
            raise self.error

    def close_connection(self) -> None:
        """End the whole upgraded connection (GOAWAY / close 1000), then the transport."""
        if self.closed:
            return
        with contextlib.suppress(ProtocolError):
            self.session.close()
        self._fail(ConnectionLostError("the port-forward session was closed"), abort=False)

    def _close_session(self) -> None:
        self.close_connection()


# --------------------------------------------------------------------------- the session


Connect = Callable[[str, "int | None"], Awaitable[ForwardClientCore]]


class PortForwardSessionCore:
    """The transport choice and the shared connection of one port-forward session.

    Args:
        request: the validated ``open_port_forward`` call.
        connect: the runtime's coroutine function: connect and upgrade over a transport
            (``"tunnel"``, ``"spdy"``, or ``"websocket"`` with its one port); returns
            the running connection or raises (``UpgradeRejectedError`` when refused).
        lock: the runtime's lock (one connection is made at a time).
    """

    def __init__(self, request: PortForwardRequest, connect: Connect,
                 lock: AbstractAsyncContextManager[object]) -> None:
        self.request = request
        self._connect = connect
        self._lock = lock
        self._shared: ForwardClientCore | None = None
        self._websockets: set[ForwardClientCore] = set()
        self._plan = transport_plan(request.options.transport)
        #: ``"tunnel"``, ``"spdy"`` or ``"websocket"`` once known.
        self.transport = "websocket" if self._plan == ("websocket",) else ""
        #: The negotiated protocol once known (WebSocket v4: after a first connection).
        self.protocol = ""
        self.closed = False

    async def start(self) -> None:
        """Connect at once (not on WebSocket v4, whose URL needs the port)."""
        if self.transport != "websocket":
            await self._shared_connection()

    async def _shared_connection(self) -> ForwardClientCore:
        async with self._lock:
            if self.closed:
                raise LocalProtocolError("the port-forward session is closed")
            core = self._shared
            if core is None or core.closed:
                core = self._shared = await self._first_accepted()
            return core

    async def _first_accepted(self) -> ForwardClientCore:
        plan = self._plan
        earlier: list[tuple[str, BaseException]] = []
        for index, transport in enumerate(plan):
            try:
                core = await self._connect(transport, None)
            except UpgradeRejectedError as exc:
                if index + 1 < len(plan):
                    _log.debug("port-forward over %s refused (%s); trying %s", transport,
                               exc, plan[index + 1])
                    earlier.append((transport, exc))
                    continue
                record_earlier_attempts(exc, earlier)
                raise
            except Exception as exc:
                # With "auto", the message then names both failures (the CLI shows them).
                record_earlier_attempts(exc, earlier)
                raise
            # Later reconnections go straight to what worked.
            self._plan = (transport,)
            self.transport = transport
            self.protocol = core.session.protocol
            return core
        raise AssertionError("the plan has at least one transport")

    async def open(self, port: int) -> tuple[ForwardClientCore, int]:
        """Start a forwarded connection to ``port`` and wait until the server took it.

        On SPDY and the tunnel it shares the session's connection; if that connection
        turns out dead, one new connection is made and the request made again there.

        Returns:
            The connection and the request id.
        """
        check_port(port)
        if self.transport == "websocket":
            return await self._open_websocket(port)
        for attempt in (1, 2):
            core = await self._shared_connection()
            try:
                request_id = core.open(port)
            except (ConnectionLostError, PingTimeoutError, ProtocolError):
                if attempt == 2 or not core.closed:
                    raise
                continue
            try:
                await core.wait_ready(request_id)
            except (ConnectionLostError, PingTimeoutError):
                core.release(request_id)
                if attempt == 2 or not core.closed:
                    raise
                _log.debug("port-forward connection lost; connecting again")
                continue
            except BaseException:
                core.release(request_id)
                raise
            return core, request_id
        raise AssertionError("unreachable")

    async def _open_websocket(self, port: int) -> tuple[ForwardClientCore, int]:
        if self.closed:
            raise LocalProtocolError("the port-forward session is closed")
        core = await self._connect("websocket", port)
        self.protocol = core.session.protocol
        self._websockets.add(core)
        try:
            request_id = core.first_request
            if request_id is None:
                raise ConnectionLostError("the WebSocket ended during the upgrade")
            await core.wait_ready(request_id)
        except BaseException:
            core.close_connection()
            self._websockets.discard(core)
            raise
        return core, request_id

    def forget(self, core: ForwardClientCore) -> None:
        """A WebSocket v4 connection ended (its one forwarded connection was released)."""
        self._websockets.discard(core)

    def connections(self) -> list[ForwardClientCore]:
        """Every live upgraded connection of the session."""
        live = [core for core in self._websockets if not core.closed]
        if self._shared is not None and not self._shared.closed:
            live.append(self._shared)
        return live

    def close(self) -> list[ForwardClientCore]:
        """Stop the session: no new connection; returns the connections to close."""
        self.closed = True
        connections = self.connections()
        self._websockets.clear()
        self._shared = None
        return connections


#: The documentation of ``open_port_forward``. Each runtime fills in ``{usage}`` and
#: ``{stream}`` (what ``open_connection`` returns on it).
OPEN_PORT_FORWARD_DOC = """Open a port-forward session to a pod (``kubectl port-forward``).
{usage}
    From the session: ``await session.open_connection(port)`` gives a connection to a
    pod port ({stream}); ``await session.listen(remote_port, host=..., port=0)`` forwards
    every connection accepted on a local address and returns the bound port;
    ``session.transport`` and ``session.protocol`` say what was negotiated.

    SPDY and the tunnel carry every forwarded connection on one upgraded connection,
    made again for the next forwarded connection when it died (a server restart, an
    idle timeout); WebSocket v4 opens one WebSocket per forwarded connection. A pod port
    that cannot be reached ends that connection only: reading it raises
    :class:`~kstream.PortForwardError` with the server's text.

    Args:
        server: the API server (or kubelet, or ``kstream serve``), ``http(s)://host:port``.
        namespace: the pod's namespace.
        pod: the pod's name.
        headers: extra request headers, e.g. ``[("Authorization", "Bearer ...")]``.
        ssl: the TLS context for ``https`` (default: the system's trust store).
        server_hostname: the TLS server name, when not the URL's host.
        proxy: connect through this proxy, ``http://``, ``https://`` (HTTP ``CONNECT``)
            or ``socks5://``, as exec does (``ClusterConnection.proxy`` is the one
            kubectl would use: ``proxy-url``, ``HTTPS_PROXY``, ``NO_PROXY``).
        transport: ``"auto"`` (the tunnel ``SPDY/3.1+portforward.k8s.io``, then SPDY when
            its upgrade is refused, as kubectl 1.31+; the default), ``"tunnel"``,
            ``"spdy"`` or ``"websocket"`` (``v4.channel.k8s.io``).
        ping_interval: seconds between pings (default 5); ``None`` disables them.
        pong_timeout: seconds without a pong before the connection is declared dead.
        connect_timeout: bound on connect + TLS + upgrade, per attempt (default 30 s, as
            client-go bounds its dial); ``None`` for none.
        buffer_limit: unread bytes per forwarded connection before reading stops
            (default 1 MiB).

    Returns:
        The session, an async context manager (leaving it closes every connection).

    Raises:
        UpgradeRejectedError: the server refused every transport tried.
        ValueError: invalid arguments.
        OSError, TimeoutError: connecting failed.
    """


#: The documentation of ``PortForwardSession.listen`` (both runtimes).
LISTEN_DOC = """Forward every connection accepted on ``host:port`` to ``remote_port`` of the pod.

        Args:
            remote_port: the pod port.
            host: the local address to bind (loopback by default).
            port: the local port (0: a free one).
            on_error: called with ``(remote_port, exception)`` when one forwarded
                connection fails (default: a warning on the ``kstream`` logger). The
                listener goes on.
            on_accept: called with the bound local port as each connection is accepted,
                before it is forwarded (``kstream port-forward`` prints kubectl's
                ``Handling connection for PORT`` there).

        Returns:
            The bound local port.
        """
