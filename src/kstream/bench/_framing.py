"""The sans-IO framing cost: encode and decode, both roles, every protocol, in memory.

Everything goes through the public sans-IO API (:class:`~kstream.WebSocketChannelConnection`,
:class:`~kstream.SpdyExecClient`, :class:`~kstream.SpdyExecServer`): no socket, no event
loop. Each pair of connections is upgraded in memory before anything is timed (the
handshake is not framing).

* encode: ``send_data()`` then ``data_to_send()`` per message, as a sender does. A client
  sends stdin (WebSocket: masked frames), a server sends stdout (unmasked).
* decode: ``receive_data()`` over the peer's bytes, handed over in 256 KiB reads as an
  adapter reads a socket, counting the payload of every ``ChannelData``. A client decodes
  the server's stdout, a server the client's stdin. Every run decodes with a fresh
  connection, made before timing.
* the one-copy ceiling: ``bytes(memoryview(payload))`` per message, the least any codec
  that hands out its own buffer can do.

Durations are CPU time of the measuring thread, so a busy machine does not inflate them.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, Protocol

from .. import (
    STDIN,
    STDOUT,
    ChannelData,
    Event,
    SpdyExecClient,
    SpdyExecServer,
    WebSocketChannelConnection,
    exec_target,
)
from ._rows import Row, size_label

__all__ = [
    "PROTOCOLS",
    "QUICK_SIZES",
    "SIZES",
    "SPDY",
    "WEBSOCKET_PROTOCOLS",
    "measure_framing",
]

#: The five WebSocket channel subprotocols, newest first.
WEBSOCKET_PROTOCOLS: Final = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
)
#: The name of the SPDY rows (exec streams over SPDY/3.1, remotecommand v4).
SPDY: Final = "SPDY/3.1"
#: Every protocol :func:`measure_framing` measures by default.
PROTOCOLS: Final = (*WEBSOCKET_PROTOCOLS, SPDY)
#: The default sweep: 64 B to 1 MiB (32 KiB is what a kubelet puts in one message).
SIZES: Final = (64, 256, 1024, 4096, 16384, 32768, 65536, 262144, 1 << 20)
#: The ``quick`` sweep.
QUICK_SIZES: Final = (64, 1024, 32768, 1 << 20)
#: The roles, in the order rows are produced.
ROLES: Final = ("client", "server")
#: The directions, in the order rows are produced.
DIRECTIONS: Final = ("encode", "decode")

#: What an adapter hands to ``receive_data`` at once.
_READ_SIZE: Final = 256 * 1024
_HOST: Final = "127.0.0.1"
_TARGET: Final = exec_target("default", "bench", ["cat"], stdin=True, stdout=True,
                             stderr=False)


class _Connection(Protocol):
    def receive_data(self, data: bytes | bytearray | memoryview, /) -> list[Event]: ...
    def data_to_send(self) -> bytes: ...
    def send_data(self, channel: int, data: bytes | bytearray | memoryview, /) -> None: ...


# -------------------------------------------------------------------------- plan


class _Plan:
    """How much work per run: enough messages for a run of a few ms, within a byte budget."""

    def __init__(self, *, quick: bool) -> None:
        self.runs = 3 if quick else 5
        self.budget = (4 if quick else 16) << 20
        self.min_messages = 8 if quick else 16
        self.max_messages = 2000 if quick else 8000

    def messages(self, size: int) -> int:
        return max(self.min_messages, min(self.max_messages, self.budget // size))


def _time_runs(run: Callable[[], int], runs: int) -> tuple[tuple[float, ...], int]:
    """One untimed call, then ``runs`` timed ones with the garbage collector off.

    Timed in CPU time of this thread (:func:`time.thread_time`): the work is pure
    computation on one core, and other processes of a busy machine then add only what
    they do to the caches, not the time they hold the core.

    Returns:
        The durations, and what the untimed call returned (bytes on the wire).
    """
    result = run()
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    durations = []
    try:
        for _ in range(runs):
            start = time.thread_time()
            run()
            durations.append(time.thread_time() - start)
    finally:
        if enabled:
            gc.enable()
    return tuple(durations), result


# -------------------------------------------------------------------------- pairs


def _websocket_pair(protocol: str) -> tuple[_Connection, _Connection]:
    client = WebSocketChannelConnection.client(host=_HOST, target=_TARGET,
                                               protocols=[protocol])
    server = WebSocketChannelConnection.server()
    _pass(client, server)
    server.accept(protocol)
    _pass(server, client)
    if client.protocol is None or client.protocol.name != protocol:
        raise RuntimeError(f"the in-memory upgrade to {protocol} failed")
    return client, server


def _pass(source: _Connection, destination: _Connection) -> None:
    """Hand what ``source`` queued to ``destination`` (``b""`` would mean end of stream)."""
    data = source.data_to_send()
    if data:
        destination.receive_data(data)


def _spdy_pair() -> tuple[_Connection, _Connection]:
    client = SpdyExecClient(host=_HOST, target=_TARGET, stdin=True, stdout=True,
                            stderr=False, tty=False)
    server = SpdyExecServer()
    _pass(client, server)
    server.accept(stdin=True, stdout=True, stderr=False, tty=False, now=0.0)
    for _ in range(4):  # 101 and streams, replies: ExecReady on both sides in two trips
        _pass(server, client)
        _pass(client, server)
        if client.ready and server.ready:
            break
    if not (client.ready and server.ready):
        raise RuntimeError("the in-memory SPDY exec did not become ready")
    return client, server


def _pair(protocol: str) -> tuple[_Connection, _Connection]:
    return _spdy_pair() if protocol == SPDY else _websocket_pair(protocol)


# -------------------------------------------------------------------------- work


def _payload(size: int) -> bytes:
    return bytes(index % 251 for index in range(size))


def _encode(protocol: str, role: str, payload: bytes, count: int) -> Callable[[], int]:
    client, server = _pair(protocol)
    sender, channel = (client, STDIN) if role == "client" else (server, STDOUT)
    send, drain = sender.send_data, sender.data_to_send

    def run() -> int:
        wire = 0
        for _ in range(count):
            send(channel, payload)
            wire += len(drain())
        return wire

    return run


def _decode(protocol: str, role: str, payload: bytes, count: int,
            runs: int) -> Callable[[], int]:
    client, server = _pair(protocol)
    peer, channel = (server, STDOUT) if role == "client" else (client, STDIN)
    stream = bytearray()
    for _ in range(count):
        peer.send_data(channel, payload)
        stream += peer.data_to_send()
    view = memoryview(bytes(stream))
    chunks = [bytes(view[offset:offset + _READ_SIZE])
              for offset in range(0, len(view), _READ_SIZE)]
    wire = len(view)
    expected = len(payload) * count

    def receiver() -> _Connection:
        # Fresh pairs make the same stream ids: the recorded bytes fit every one of them.
        fresh_client, fresh_server = _pair(protocol)
        return fresh_client if role == "client" else fresh_server

    ready = deque(receiver() for _ in range(runs + 1))

    def run() -> int:
        connection = ready.popleft() if ready else receiver()
        total = 0
        for chunk in chunks:
            for event in connection.receive_data(chunk):
                if type(event) is ChannelData:
                    total += len(event.data)
        if total != expected:
            raise RuntimeError(f"{protocol} {role} decoded {total} bytes, not {expected}")
        return wire

    return run


def _copy(payload: bytes, count: int) -> Callable[[], int]:
    view = memoryview(payload)

    def run() -> int:
        total = 0
        for _ in range(count):
            total += len(bytes(view))  # bytes(view) copies; bytes(payload) would not
        return total

    return run


# -------------------------------------------------------------------------- entry point


def measure_framing(*, quick: bool = False, sizes: Sequence[int] | None = None,
                    protocols: Sequence[str] = PROTOCOLS, roles: Sequence[str] = ROLES,
                    directions: Sequence[str] = DIRECTIONS, runs: int | None = None,
                    progress: Callable[[int, int, str], None] | None = None) -> list[Row]:
    """Measure the sans-IO framing cost, in memory, against the one-copy ceiling.

    For every payload size: one ``bytes copy`` row (the ceiling, measured in this run),
    then for every protocol, role and direction one ``kstream`` row. Row figures: per
    message :attr:`Row.us_per_message`, per byte :attr:`Row.gb_per_s`, on the wire
    :attr:`Row.overhead` and :attr:`Row.overhead_per_message`. Port-forward framing is
    not measured: kstream does not implement port-forward yet.

    Args:
        quick: fewer sizes (:data:`QUICK_SIZES`), runs and bytes: a few seconds.
        sizes: payload sizes in bytes (default :data:`SIZES`, or :data:`QUICK_SIZES`).
        protocols: names from :data:`PROTOCOLS`.
        roles: ``"client"`` and/or ``"server"``.
        directions: ``"encode"`` and/or ``"decode"``.
        runs: timed runs per figure (default 5, quick 3); the median is reported.
        progress: called before each figure with ``(done, total, label)``.

    Returns:
        The rows, copy ceiling first within each size.

    Raises:
        ValueError: an unknown protocol, role or direction, or a size below 1.
    """
    plan = _Plan(quick=quick)
    if runs is not None:
        if runs < 1:
            raise ValueError(f"runs must be >= 1, not {runs}")
        plan.runs = runs
    chosen_sizes = tuple(sizes) if sizes is not None else (QUICK_SIZES if quick else SIZES)
    for name, values, allowed in (("protocol", protocols, PROTOCOLS), ("role", roles, ROLES),
                                  ("direction", directions, DIRECTIONS)):
        unknown = [value for value in values if value not in allowed]
        if unknown:
            raise ValueError(f"unknown {name}(s) {unknown}; choose from {list(allowed)}")
    if not chosen_sizes or any(size < 1 for size in chosen_sizes):
        raise ValueError(f"sizes must be positive byte counts, not {list(chosen_sizes)}")
    total = len(chosen_sizes) * (1 + len(protocols) * len(roles) * len(directions))
    done = 0
    rows: list[Row] = []

    def step(label: str) -> None:
        nonlocal done
        if progress is not None:
            progress(done, total, label)
        done += 1

    for size in chosen_sizes:
        payload = _payload(size)
        count = plan.messages(size)
        nbytes = size * count
        step(f"bytes copy {size_label(size)}")
        seconds, _ = _time_runs(_copy(payload, count), plan.runs)
        rows.append(Row("framing", "copy", "", "", size, "bytes copy", seconds,
                        messages=count, payload_bytes=nbytes, wire_bytes=0,
                        note="the one-copy ceiling: bytes(memoryview(payload))"))
        for direction in directions:
            for protocol in protocols:
                for role in roles:
                    step(f"{direction} {protocol} {role} {size_label(size)}")
                    work = (_encode(protocol, role, payload, count) if direction == "encode"
                            else _decode(protocol, role, payload, count, plan.runs))
                    seconds, wire = _time_runs(work, plan.runs)
                    rows.append(Row("framing", direction, protocol, role, size, "kstream",
                                    seconds, messages=count, payload_bytes=nbytes,
                                    wire_bytes=wire))
    if progress is not None:
        progress(total, total, "done")
    return rows
