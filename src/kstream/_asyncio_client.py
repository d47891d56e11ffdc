"""The asyncio side of a client connection, exec's and port-forward's alike.

:class:`ClientPump` goes between a client core and ``kstream.asyncio``'s pump:
``class Connection(Core, ClientPump, _Pump)``, ``Core`` a
:class:`~kstream._runtime.core.ClientConnectionCore`. It adds the ``ready`` and ``done``
futures, the heartbeat's timer (armed again after each wake-up), connecting with the
upgrade bounded by ``connect_timeout``, and closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import TYPE_CHECKING

from ._asyncio_dial import connect
from ._runtime.buffers import Heartbeat
from ._runtime.core import ClientConnectionCore

if TYPE_CHECKING:
    from ._runtime.client import ExecRequest
    from ._runtime.portforward import PortForwardRequest

__all__ = ["ClientPump", "silence"]


def silence(future: asyncio.Future[None]) -> None:
    """Keep asyncio from logging the exception of a future nobody awaits."""
    # A session's futures may fail with nobody awaiting them (the caller never called
    # wait()); retrieving the exception keeps asyncio from logging it.
    future.add_done_callback(lambda f: None if f.cancelled() else f.exception())


class ClientPump(ClientConnectionCore, asyncio.BufferedProtocol):
    """What a client connection adds to the pump (see the module docstring).

    Args:
        loop: the running loop (call this after the pump's ``__init__``).
    """

    # The pump's (``kstream.asyncio._Pump``), for checkers.
    _loop: asyncio.AbstractEventLoop
    _transport: asyncio.Transport | None
    lost: asyncio.Future[None]

    if TYPE_CHECKING:
        async def _close_transport(self, *, abort: bool = False) -> None: ...

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.ready: asyncio.Future[None] = loop.create_future()
        self.done: asyncio.Future[None] = loop.create_future()
        silence(self.ready)
        silence(self.done)
        self._heartbeat_handle: asyncio.TimerHandle | None = None

    async def connect(self, request: ExecRequest | PortForwardRequest,
                      context: ssl.SSLContext | None, sock: socket.socket | None) -> None:
        """Connect (to ``sock``, else through the request's proxy, if any) and wait until
        the upgrade is accepted; on failure, the socket is closed before this raises."""
        hostname = (request.server_hostname or request.address.host) if context else None
        try:
            async with asyncio.timeout(request.options.connect_timeout):
                await connect(self._loop, self, request, context, hostname, sock)
                await asyncio.shield(self.ready)
        except BaseException:
            transport = self._transport
            if transport is not None:
                transport.abort()
                # Let the loop close the socket now, so no socket outlives the failure.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(self.lost)
            raise

    def _set_ready(self) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _arm_heartbeat(self, heartbeat: Heartbeat) -> None:
        self._heartbeat_handle = self._loop.call_at(heartbeat.next_wakeup(),
                                                    self._on_heartbeat)

    def _on_heartbeat(self) -> None:
        self._heartbeat_handle = None
        heartbeat = self._heartbeat
        if heartbeat is None or self.closed:
            return
        if self._heartbeat_tick(heartbeat) is not False:
            self._arm_heartbeat(heartbeat)

    def _stop_heartbeat(self) -> None:
        if self._heartbeat_handle is not None:
            self._heartbeat_handle.cancel()
            self._heartbeat_handle = None
        ClientConnectionCore._stop_heartbeat(self)

    async def aclose(self) -> None:
        """End the connection (if it runs) and close the transport, bounded."""
        self._close_session()
        await self._close_transport()
