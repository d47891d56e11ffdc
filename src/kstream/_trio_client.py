"""The trio side of a client connection, exec's and port-forward's alike.

:class:`ClientPump` goes between a client core and ``kstream.trio``'s pump:
``class Connection(Core, ClientPump, _Pump)``, ``Core`` a
:class:`~kstream._runtime.core.ClientConnectionCore`. It adds the upgrade in the
caller's task, the heartbeat's task and closing; :func:`upgraded` connects, with TLS,
and upgrades, bounded by ``connect_timeout``.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final, TypeVar

import trio

from ._runtime.buffers import READ_SIZE, Heartbeat
from ._runtime.core import ClientConnectionCore
from ._runtime.errors import ConnectionLostError
from ._runtime.options import CLOSE_GRACE
from ._trio_dial import open_stream

if TYPE_CHECKING:
    from ._runtime.client import ExecRequest
    from ._runtime.portforward import PortForwardRequest

__all__ = ["STREAM_ERRORS", "ClientPump", "timeout", "upgraded"]

#: What a broken or closed trio stream raises.
STREAM_ERRORS: Final = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


@contextlib.contextmanager
def timeout(seconds: float | None, what: str) -> Iterator[None]:
    """Raise the built-in :class:`TimeoutError` (as kstream.asyncio) after ``seconds``."""
    if seconds is None:
        yield
        return
    with trio.move_on_after(seconds) as scope:
        yield
    if scope.cancelled_caught:
        raise TimeoutError(f"{what} took longer than {seconds:g} s")


class ClientPump(ClientConnectionCore):
    """What a client connection adds to the pump (see the module docstring).

    Call its ``__init__`` after the pump's.
    """

    # The pump's (``kstream.trio._Pump``), for checkers.
    _stream: trio.abc.Stream
    _scope: trio.CancelScope
    pump_started: bool
    pump_done: trio.Event

    if TYPE_CHECKING:
        def _take_output(self) -> bytes: ...

    def __init__(self) -> None:
        self.ready = trio.Event()
        self._ready_error: BaseException | None = None

    async def handshake(self) -> None:
        """Send the upgrade request and read until the session is ready.

        Raises:
            UpgradeRejectedError: the server refused the upgrade.
            ProtocolError: the server broke the protocol.
            ConnectionLostError: the stream ended or broke first.
        """
        stream = self._stream
        try:
            while not self.ready.is_set():
                out = self._take_output()
                if out:
                    await stream.send_all(out)
                data = await stream.receive_some(READ_SIZE)
                self._receive(bytes(data))
                if not data and not self.ready.is_set():
                    self._fail(ConnectionLostError("the connection closed during the upgrade"))
        except STREAM_ERRORS as exc:
            self._on_lost(exc)
        if self._ready_error is not None:
            raise self._ready_error

    def _set_ready(self) -> None:
        self.ready.set()

    async def _heartbeat_loop(self, heartbeat: Heartbeat) -> None:
        while not self.closed:
            await trio.sleep_until(heartbeat.next_wakeup())
            if not self._heartbeat_tick(heartbeat):
                return

    async def aclose(self) -> None:
        """End the connection (if it runs), then its tasks, within the grace period."""
        self._close_session()
        with trio.CancelScope(shield=True):
            if not self.pump_started:
                await trio.aclose_forcefully(self._stream)
                return
            with trio.move_on_after(CLOSE_GRACE):
                await self.pump_done.wait()
            self._scope.cancel()
            await self.pump_done.wait()


_Client = TypeVar("_Client", bound=ClientPump)


async def upgraded(request: ExecRequest | PortForwardRequest, context: ssl.SSLContext | None,
                   stream: trio.abc.Stream | None,
                   new_connection: Callable[[trio.abc.Stream], _Client]) -> _Client:
    """Connect (to ``stream`` if given, else through the request's proxy, if any), add
    TLS with a ``context``, make the connection over it and upgrade: bounded by
    ``connect_timeout``; on failure, the stream is closed before this raises."""
    connected = stream
    try:
        with timeout(request.options.connect_timeout, "connecting and upgrading"):
            if connected is None:
                connected = await open_stream(request, context)
            if context is not None:
                tls = trio.SSLStream(connected, context, https_compatible=True,
                                     server_hostname=request.server_hostname
                                     or request.address.host)
                connected = tls
                await tls.do_handshake()
            connection = new_connection(connected)
            await connection.handshake()
    except BaseException:
        if connected is not None:
            await trio.aclose_forcefully(connected)
        raise
    return connection
