"""The session behind ``kstream.compat.kubernetes.portforward``: one WebSocket, many ports.

The original client's ``portforward()`` opens one WebSocket (``v4.channel.k8s.io``)
carrying every requested port, one TCP connection per port, and hands out one end of a
``socket.socketpair()`` per port. So does this module, with kstream's sans-IO
:class:`~kstream._portforward.websocket.WebSocketPortForwardClient` on the asyncio pump of
``kstream.asyncio`` (the runtime session opens one WebSocket per connection on v4, which
is not what callers of the original see), run on a private event loop in a thread.

Backpressure both ways: bytes from the pod are read from the WebSocket only while the
port's buffer is under ``buffer_limit`` and are written to the local socket as it takes
them; bytes from the local socket are read only once the WebSocket took the previous ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Sequence
from typing import Any, Final

from .._asyncio_portforward import _ForwardConnection
from .._events import Event, UpgradeAccepted
from .._portforward.websocket import WebSocketPortForwardClient
from .._runtime.buffers import READ_SIZE
from .._runtime.options import client_ssl_context
from .._runtime.portforward import PortForwardOptions, port_forward_request
from ._common import PodURL, proxy_socket, tls_settings
from ._loop import LoopThread

__all__ = ["PortForward", "PortSocket"]

#: Unread bytes from the pod per port before the WebSocket stops being read.
_BUFFER_LIMIT: Final = 1 << 20
#: Seconds close() waits for the WebSocket to close before stopping the loop anyway.
_CLOSE_TIMEOUT: Final = 10.0


class _PortsConnection(_ForwardConnection):
    """One WebSocket v4 carrying every port of the call: request id ``i`` is ``ports[i]``.

    Each port is opened as the upgrade is accepted: the server's first messages for it
    may come in the same read as the 101, and the sans-IO client names them already.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, client: WebSocketPortForwardClient,
                 options: PortForwardOptions) -> None:
        super().__init__(loop, client, options, None)
        self.ports = client.ports
        #: The text each port's error channel carried, by request id (kept whole).
        self.errors: dict[int, str] = {}

    def _handle(self, event: Event) -> None:
        if isinstance(event, UpgradeAccepted):
            for port in self.ports:
                self.open(port)
        super()._handle(event)

    def _on_error_text(self, request_id: int, message: str) -> None:
        # The original joins every message of the error channel; the core keeps the last.
        self.errors[request_id] = self.errors.get(request_id, "") + message
        super()._on_error_text(request_id, message)


class _Session:
    """The loop-thread side: pumps each port between its local socket and the WebSocket.

    Ends, and stops its loop thread, once every port ended: a port ends when the pod's
    side ended (its pending bytes delivered first), its error channel spoke, the
    WebSocket closed, or the local socket read end-of-file (v4 has no half-close, so a
    ``shutdown(SHUT_WR)`` ends the port, as with the original). The WebSocket closes then.
    """

    def __init__(self, runner: LoopThread, connection: _PortsConnection,
                 ours: Sequence[socket.socket]) -> None:
        self.runner = runner
        self.connection = connection
        self._ports = asyncio.gather(*(self._serve_port(request_id, sock)
                                       for request_id, sock in enumerate(ours)))
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        # Waited for, not awaited: shutdown() cancels the ports, never the closing below
        # (an interrupted close would leave the socket to the garbage collector).
        await asyncio.wait({self._ports})
        if not self._ports.cancelled():
            # Retrieved: on CPython 3.11 a gather whose ports shutdown() cancelled ends
            # with CancelledError as its exception, logged when collected if unread.
            self._ports.exception()
        with contextlib.suppress(Exception):
            await self.connection.aclose()
        self.runner.stop()  # the thread ends with the session

    async def _serve_port(self, request_id: int, sock: socket.socket) -> None:
        download = asyncio.ensure_future(self._download(request_id, sock))
        upload = asyncio.ensure_future(self._upload(request_id, sock))
        try:
            await asyncio.wait((download, upload), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (download, upload):
                task.cancel()
            await asyncio.gather(download, upload, return_exceptions=True)
            self.connection.discard_input(request_id)
            _close_local(sock)

    async def _download(self, request_id: int, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):  # the port's error, a lost connection...
            while data := await self.connection.read(request_id, READ_SIZE):
                await loop.sock_sendall(sock, data)

    async def _upload(self, request_id: int, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        connection = self.connection
        with contextlib.suppress(Exception):  # the caller closed its end, the port ended...
            while data := await loop.sock_recv(sock, READ_SIZE):
                connection.send(request_id, data)
                await connection.drain()
            connection.end(request_id)

    async def shutdown(self) -> None:
        """Stop every port (their local sockets close), then close the WebSocket."""
        self._ports.cancel()
        await asyncio.shield(self.task)


def _close_local(sock: socket.socket) -> None:
    # Unread bytes left in a closing AF_UNIX socket make the other end's reads fail with
    # ECONNRESET (Linux) instead of returning what is still queued for it, then EOF.
    with contextlib.suppress(OSError):
        while sock.recv(READ_SIZE):
            pass
    sock.close()


async def _connect(target: PodURL, ports: Sequence[int], headers: tuple[tuple[str, str], ...],
                   configuration: Any, connect_timeout: float | None) -> _PortsConnection:
    """Connect (TLS and proxy from ``configuration``) and upgrade to the WebSocket."""
    context, server_hostname = tls_settings(configuration, target.server)
    request = port_forward_request(target.server, target.namespace, target.pod, {
        "headers": headers, "ssl": context, "server_hostname": server_hostname,
        "transport": "websocket", "connect_timeout": connect_timeout,
        "buffer_limit": _BUFFER_LIMIT})
    client = WebSocketPortForwardClient(host=request.address.authority,
                                        target=request.target, ports=ports,
                                        headers=request.options.headers)
    sock = None
    if getattr(configuration, "proxy", None):
        sock = await asyncio.to_thread(proxy_socket, configuration, target.server,
                                       connect_timeout)
    connection = _PortsConnection(asyncio.get_running_loop(), client, request.options)
    try:
        await connection.connect(request, client_ssl_context(request.address, context), sock)
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    return connection


class PortSocket:
    """The caller's end of a port: a connected ``socket.socketpair()`` socket.

    Everything is the socket's, but ``setsockopt(IPPROTO_TCP, TCP_NODELAY, ...)``, which
    ``http.client`` sets and a Unix socket refuses: it is ignored (as by the original's
    ``PortForward._Port._Socket``).
    """

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._socket, name)

    def setsockopt(self, level: int, optname: int, value: Any, *rest: Any) -> None:
        """``socket.setsockopt``, with ``TCP_NODELAY`` ignored (no TCP here)."""
        if level == socket.IPPROTO_TCP and optname == socket.TCP_NODELAY:
            return
        self._socket.setsockopt(level, optname, value, *rest)

    def __repr__(self) -> str:
        return f"<kstream.compat PortSocket {self._socket!r}>"


class PortForward:
    """Ports of a pod forwarded over one WebSocket, as the official ``PortForward``.

    Made by :func:`kstream.compat.kubernetes.portforward`. Each requested port has a
    socket (:meth:`socket`) connected, through the WebSocket, to one TCP connection to
    that pod port. The sockets are served by a kstream session on a private event loop
    in a daemon thread named ``kstream-compat-portforward``, which ends once every port
    ended (:meth:`close`, or each socket closed, or the WebSocket closed): a socket kept
    after this object was dropped goes on working, as with the original. Unlike the
    original, it is also a context manager (leaving it calls :meth:`close`).
    """

    def __init__(self, runner: LoopThread, session: _Session, ports: Sequence[int],
                 theirs: Sequence[socket.socket]) -> None:
        self._runner = runner
        self._session = session
        self._ports = {port: index for index, port in enumerate(ports)}
        self._sockets = [PortSocket(sock) for sock in theirs]

    @classmethod
    def _open(cls, target: PodURL, ports: Sequence[int], headers: tuple[tuple[str, str], ...],
              configuration: Any, connect_timeout: float | None) -> PortForward:
        """Connect and start forwarding.

        Raises:
            kstream.UpgradeRejectedError, kstream.KstreamError, OSError, TimeoutError:
                the WebSocket could not be opened.
        """
        runner = LoopThread("kstream-compat-portforward")
        pairs = [socket.socketpair() for _ in ports]
        theirs = [pair[0] for pair in pairs]
        ours = [pair[1] for pair in pairs]
        for sock in ours:
            sock.setblocking(False)

        async def start() -> _Session:
            connection = await _connect(target, ports, headers, configuration,
                                        connect_timeout)
            return _Session(runner, connection, ours)

        try:
            session = runner.submit(start()).result()
        except BaseException:
            runner.stop()
            for sock in (*theirs, *ours):
                sock.close()
            raise
        return cls(runner, session, ports, theirs)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed"
        return f"<kstream.compat PortForward ports={list(self._ports)} {state}>"

    def _index(self, port_number: int) -> int:
        index = self._ports.get(port_number)
        if index is None:
            raise ValueError("Invalid port number")
        return index

    @property
    def connected(self) -> bool:
        """Whether the WebSocket is open."""
        return not self._session.connection.closed

    def socket(self, port_number: int) -> PortSocket:
        """The socket connected to ``port_number`` of the pod (the same one each time).

        Raises:
            ValueError: ``"Invalid port number"``: a port the call did not ask for.
        """
        return self._sockets[self._index(port_number)]

    def error(self, port_number: int) -> str | None:
        """What the server sent on the port's error channel (the pod port could not be
        reached...), ``None`` while it sent nothing.

        Raises:
            ValueError: ``"Invalid port number"``: a port the call did not ask for.
        """
        return self._session.connection.errors.get(self._index(port_number))

    def close(self) -> None:
        """Close the WebSocket and every socket, and stop the thread (idempotent)."""
        # The session first: closing the sockets first would also end it, racing this.
        self._runner.run_bounded(self._session.shutdown(), _CLOSE_TIMEOUT)
        self._runner.stop()
        for sock in self._sockets:
            sock.close()

    def __enter__(self) -> PortForward:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
