"""The client's forwarded connections, written once for both runtimes.

:class:`ForwardedConnection` is one TCP connection to a pod port, carried by a
:class:`~.portforward.ForwardClientCore`; it only awaits what the core declares.
``kstream.asyncio`` hands it out as a :class:`PortForwardReader` /
:class:`PortForwardWriter` pair (the shape of :func:`asyncio.open_connection`);
``kstream.trio`` wraps it in a :class:`trio.abc.HalfCloseableStream`.
:class:`PortForwardSessionBase` is what both runtimes' ``PortForwardSession`` share.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from .._errors import KstreamError
from .buffers import READ_SIZE
from .errors import IncompleteReadError
from .portforward import ForwardClientCore, PortForwardSessionCore

__all__ = [
    "ErrorHandler",
    "ForwardedConnection",
    "PortForwardReader",
    "PortForwardSessionBase",
    "PortForwardWriter",
    "log_forward_error",
]

_log = logging.getLogger("kstream")

#: What ``PortForwardSession.listen`` calls with each forwarded connection's error.
ErrorHandler = Callable[[int, BaseException], None]


def log_forward_error(port: int, exc: BaseException) -> None:
    """The default :data:`ErrorHandler`: a warning on the ``kstream`` logger."""
    _log.warning("port-forward to port %d failed: %s", port, exc)


class ForwardedConnection:
    """One forwarded connection to a pod port.

    Args:
        session: the session that opened it.
        core: the upgraded connection that carries it.
        request_id: its id on that connection.
        port: the pod port.
    """

    def __init__(self, session: PortForwardSessionCore, core: ForwardClientCore,
                 request_id: int, port: int) -> None:
        self._session = session
        self._core = core
        self.request_id = request_id
        self.port = port
        self.transport = core.transport
        self.closed = False
        self._error_text: str | None = None  # kept when the connection is released

    def __repr__(self) -> str:
        return f"<ForwardedConnection port={self.port} over {self.transport}>"

    @property
    def error(self) -> str | None:
        """The server's error text for this connection, if it sent one."""
        state = self._core.state(self.request_id)
        return state.error if state is not None else self._error_text

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n < 0``: until EOF); ``b""`` at EOF.

        Raises:
            PortForwardError: the server could not reach the pod port (its text).
            ConnectionResetError: the server reset this connection.
            ConnectionLostError: the port-forward connection broke.
        """
        if self.closed:
            return b""
        return await self._core.read(self.request_id, n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes (:class:`~kstream.IncompleteReadError` at an early EOF)."""
        if self.closed:
            raise IncompleteReadError(b"", n)
        return await self._core.readexactly(self.request_id, n)

    def at_eof(self) -> bool:
        """Whether the pod's side ended and every byte was read."""
        return self.closed or self._core.at_eof(self.request_id)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes for the pod (see :meth:`drain`).

        Raises:
            ConnectionResetError: the server ended this connection.
            ConnectionLostError: the port-forward connection broke.
        """
        self._core.send(self.request_id, data)

    def write_eof(self) -> None:
        """Close the sending side: the pod reads EOF (SPDY and the tunnel; WebSocket v4
        has no half-close, so there nothing is sent)."""
        self._core.end(self.request_id)

    async def drain(self) -> None:
        """Wait until the connection takes more bytes."""
        await self._core.drain()

    def close(self) -> None:
        """Forget the connection: an orderly end once the pod's side ended, else an abort."""
        if self.closed:
            return
        state = self._core.state(self.request_id)
        self._error_text = state.error if state is not None else None
        self.closed = True
        self._core.release(self.request_id)
        if self.transport == "websocket":
            self._session.forget(self._core)

    async def wait_closed(self) -> None:
        """Wait until what was written went out (WebSocket v4: the WebSocket closed)."""
        with contextlib.suppress(KstreamError, OSError):
            if self.transport == "websocket":
                await self._core.aclose()
            else:
                await self._core._checkpoint()


class PortForwardReader:
    """The reading half of a forwarded connection (``kstream.asyncio``), as a
    :class:`asyncio.StreamReader` reads: ``read``, ``readexactly``, ``at_eof`` and
    ``async for chunk in reader``."""

    def __init__(self, connection: ForwardedConnection) -> None:
        self.connection = connection

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n < 0``: until EOF); ``b""`` at EOF."""
        return await self.connection.read(n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes."""
        return await self.connection.readexactly(n)

    def at_eof(self) -> bool:
        """Whether the pod's side ended and every byte was read."""
        return self.connection.at_eof()

    def __aiter__(self) -> PortForwardReader:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read(READ_SIZE)
        if not chunk:
            raise StopAsyncIteration
        return chunk


class PortForwardWriter:
    """The writing half of a forwarded connection (``kstream.asyncio``), as a
    :class:`asyncio.StreamWriter` writes: ``write``, ``drain``, ``write_eof``,
    ``close`` and ``wait_closed``."""

    def __init__(self, connection: ForwardedConnection) -> None:
        self.connection = connection

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes for the pod; ``await drain()`` to wait for room."""
        self.connection.write(data)

    def writelines(self, data: Any) -> None:
        """Queue each buffer of ``data``."""
        for item in data:
            self.connection.write(item)

    async def drain(self) -> None:
        """Wait until the connection takes more bytes."""
        await self.connection.drain()

    def can_write_eof(self) -> bool:
        """Always ``True`` (on WebSocket v4 the end is only remembered)."""
        return True

    def write_eof(self) -> None:
        """Half-close: the pod reads EOF."""
        self.connection.write_eof()

    def close(self) -> None:
        """Close the connection (both ways)."""
        self.connection.close()

    def is_closing(self) -> bool:
        """Whether :meth:`close` was called."""
        return self.connection.closed

    async def wait_closed(self) -> None:
        """Wait until the close went out."""
        await self.connection.wait_closed()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``"port"`` (the pod port), ``"transport"``, ``"request_id"``; else ``default``."""
        return {"port": self.connection.port, "transport": self.connection.transport,
                "request_id": self.connection.request_id}.get(name, default)


class PortForwardSessionBase:
    """What both runtimes' ``PortForwardSession`` share: the session core, what was
    negotiated, and opening a forwarded connection.

    Args:
        core: the session's core (its ``connect`` and lock are the runtime's).
    """

    def __init__(self, core: PortForwardSessionCore) -> None:
        self._core = core

    def __repr__(self) -> str:
        return f"<PortForwardSession {self._core.request.pod} over {self.transport}>"

    @property
    def transport(self) -> str:
        """``"tunnel"``, ``"spdy"`` or ``"websocket"``."""
        return self._core.transport

    @property
    def protocol(self) -> str:
        """The negotiated protocol (``""`` until known)."""
        return self._core.protocol

    async def _open(self, port: int) -> ForwardedConnection:
        core, request_id = await self._core.open(port)
        return ForwardedConnection(self._core, core, request_id, port)
