"""The few engine internals the test kit reaches into, all in one place.

A fake node must do what a correct server never does: cut a connection in the middle of
a frame, leave pings unanswered, write an exit status that is not a ``Status``, send a
message larger than the kubelet's 32 KiB. The public server objects cannot, on purpose,
so these functions use the asyncio adapter's connection (``ServerRequest._conn``) and
the sans-IO session under it. ``tests/test_testing_node.py`` exercises each of them on
both transports: a change of those internals fails there, not in a user's test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._channels import ERROR
from .._exec.spdy_server import SpdyExecServer
from ._wire import PongFilter, WireTap

if TYPE_CHECKING:
    from ..asyncio import ServerExec, ServerRequest

__all__ = ["install_tap", "lost_future", "send_message", "send_raw_exit"]


def install_tap(request: ServerRequest, *, close_after_out: int | None,
                close_after_in: int | None, answer_pings: bool,
                on_out: Callable[[int], None], on_in: Callable[[int], None]) -> WireTap | None:
    """Put a :class:`WireTap` under the connection of ``request`` (before its upgrade).

    Returns:
        The tap, or ``None`` when the connection has no transport any more.
    """
    conn: Any = request._conn
    real = conn._transport
    if real is None:
        return None
    pongs = None if answer_pings else PongFilter(request.upgrade or "")
    tap = WireTap(real, close_after_out=close_after_out, pongs=pongs, on_out=on_out)
    conn._transport = tap
    receive = conn._receive
    budget = [close_after_in]

    def counted_receive(data: bytes | memoryview) -> None:
        left = budget[0]
        if left is not None:
            data = data[:left]
            budget[0] = left - len(data)
        if data:
            on_in(len(data))
            receive(data)
        if budget[0] == 0:
            budget[0] = None
            tap.cut()

    # The adapter calls self._receive for every read (buffer_updated, eof_received).
    conn._receive = counted_receive
    return tap


def _sans_io(session: ServerExec) -> Any:
    return session._conn.session


def send_message(session: ServerExec, channel: int, data: bytes) -> None:
    """Queue ``data`` as one message (one DATA frame on SPDY), whatever its size.

    ``ServerExec.write_stdout`` slices output into 32 KiB messages as the kubelet does;
    a fault may want other sizes.
    """
    if session.closed:
        return
    _sans_io(session)._session().send_data(channel, data)
    session._conn._schedule_flush()


async def send_raw_exit(session: ServerExec, document: bytes) -> None:
    """End the session with ``document`` on the error channel instead of a ``Status``."""
    if session.closed:
        await session.abort()
        return
    sans_io = _sans_io(session)
    engine = sans_io._session()
    if isinstance(engine, SpdyExecServer):
        stream = engine._by_channel.get(ERROR)
        inner = engine._session
        if stream is not None and inner is not None and not engine._status_sent:
            engine._status_sent = True
            stream.closed_locally = True
            stream.fin_sent = True
            inner.send_data(stream.stream_id, document, fin=True)
    elif document:
        engine.send_data(ERROR, document)
    sans_io.finish()
    conn: Any = session._conn
    conn.finished = True
    await conn.close()


def lost_future(session: ServerExec) -> Any:
    """The future the adapter completes once the session's connection is gone."""
    conn: Any = session._conn
    return conn.lost
