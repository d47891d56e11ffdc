"""What a fake node can do wrong, and how a session is made to do it.

:class:`Faults` is the test's description; :func:`instrument` applies the session-level
faults (stalled output, message sizes, a chosen exit status) by wrapping the methods of
one :class:`~kstream.asyncio.ServerExec`, and counts the payload for the session record.
The connection-level faults (cut after N bytes, unanswered pings) live in ``_wire``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .._channels import STDERR, STDOUT
from .._status_types import Exited, Status
from ._reach import send_message, send_raw_exit

if TYPE_CHECKING:
    from ..asyncio import ServerExec
    from ._records import SessionRecord

__all__ = ["Faults", "instrument"]


@dataclass(frozen=True, kw_only=True)
class Faults:
    """Faults a :class:`~kstream.testing.FakeNode` injects, per node or per pod.

    Every field defaults to "behave". Byte counts are of the upgraded connection: from the
    node's upgrade answer on (its head included) for output, from the end of the client's
    request head on for input.

    Attributes:
        close_after_bytes_out: close the TCP connection once this many bytes went to the
            client (0: right at the upgrade, before the answer).
        close_after_bytes_in: close it once this many bytes came from the client.
        stall_output_after: after this many bytes of stdout+stderr, send nothing more --
            no output, no exit status -- until the client leaves (0: from the start).
            Pings are still answered: the connection is alive, the process silent.
        upgrade_delay: seconds to wait before answering the upgrade.
        refuse_transport: answer upgrades over this transport (``"websocket"`` or
            ``"spdy"``) with 400, as an apiserver without it does: clients fall back.
            ``"tunnel"`` refuses port-forward's SPDY-in-WebSocket tunnel only (kubectl
            1.31+ then falls back to SPDY); ``"websocket"`` refuses port-forward's
            WebSocket ``v4.channel.k8s.io`` but not the tunnel.
        status: the exit status to send instead of the real one: a
            :class:`~kstream.Status`, or raw bytes for the error channel (malformed JSON,
            a wrong shape, anything).
        answer_pings: ``False`` leaves the client's pings unanswered (WebSocket pongs and
            SPDY PING replies are dropped on the way out).
        message_size: send output in messages (SPDY DATA frames) of exactly this many
            bytes (the last one of a stream may be shorter), instead of the kubelet's
            32 KiB at most.
    """

    close_after_bytes_out: int | None = None
    close_after_bytes_in: int | None = None
    stall_output_after: int | None = None
    upgrade_delay: float = 0.0
    refuse_transport: Literal["websocket", "spdy", "tunnel"] | None = None
    status: Status | bytes | None = None
    answer_pings: bool = True
    message_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("close_after_bytes_out", "close_after_bytes_in", "stall_output_after"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be 0 or more")
        if self.message_size is not None and self.message_size < 1:
            raise ValueError("message_size must be 1 or more")
        if self.upgrade_delay < 0:
            raise ValueError("upgrade_delay must be 0 or more")
        if self.refuse_transport not in (None, "websocket", "spdy", "tunnel"):
            raise ValueError("refuse_transport must be 'websocket', 'spdy', 'tunnel' or None")


def _exit_code(status: Status) -> int | None:
    try:
        result = status.exit_result()
    except Exception:  # a status client-go would refuse: no exit code
        return None
    return result.code if isinstance(result, Exited) else None


def instrument(session: ServerExec, record: SessionRecord, faults: Faults,
               lost: asyncio.Future[None]) -> None:
    """Wrap ``session``'s methods: count into ``record``, apply the session ``faults``.

    Args:
        session: the accepted session (its instance attributes are replaced).
        record: where the counts, the exit code and the status go.
        faults: what to do wrong.
        lost: done once the client's connection is gone.
    """
    write_stdout, write_stderr = session.write_stdout, session.write_stderr
    drain, exit_, read_stdin = session.drain, session.exit, session.read_stdin
    pending: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
    allowance = [faults.stall_output_after]
    size = faults.message_size

    def stalled() -> bool:
        return allowance[0] == 0

    def write(channel: int, data: bytes | bytearray | memoryview) -> None:
        chunk = bytes(data)
        if allowance[0] is not None:
            chunk = chunk[:allowance[0]]
            allowance[0] -= len(chunk)
        if channel == STDOUT:
            record.stdout_bytes += len(chunk)
        else:
            record.stderr_bytes += len(chunk)
        if not chunk:
            return
        if size is None:
            (write_stdout if channel == STDOUT else write_stderr)(chunk)
            return
        buffer = pending[channel]
        buffer += chunk
        while len(buffer) >= size:
            send_message(session, channel, bytes(buffer[:size]))
            del buffer[:size]

    async def wait_lost() -> None:
        await asyncio.shield(lost)

    async def faulty_drain() -> None:
        if stalled():
            await wait_lost()
        await drain()

    async def counted_read_stdin(max_bytes: int = 64 * 1024) -> bytes:
        data = await read_stdin(max_bytes)
        record.stdin_bytes += len(data)
        return data

    async def faulty_exit(status: Status) -> None:
        record.status = status
        record.exit_code = _exit_code(status)
        for channel, buffer in pending.items():
            if buffer:
                send_message(session, channel, bytes(buffer))
                buffer.clear()
        if stalled():
            await wait_lost()
            await session.abort()
            return
        chosen = faults.status
        if isinstance(chosen, bytes):
            await send_raw_exit(session, chosen)
        else:
            await exit_(status if chosen is None else chosen)

    # Instance attributes shadow the class's methods: the engine's copy loops and the
    # handler objects call these.
    session.write_stdout = lambda data: write(STDOUT, data)  # type: ignore[method-assign]
    session.write_stderr = lambda data: write(STDERR, data)  # type: ignore[method-assign]
    session.drain = faulty_drain  # type: ignore[method-assign]
    session.read_stdin = counted_read_stdin  # type: ignore[method-assign]
    session.exit = faulty_exit  # type: ignore[method-assign]
