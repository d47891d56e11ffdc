"""In-memory framing: the public :func:`kstream.bench.measure_framing`, plus wsproto.

The kstream rows and the one-copy ceiling come from :mod:`kstream.bench` (what
``kstream bench framing`` runs for users: the public sans-IO API, encode and decode, both
roles, every WebSocket subprotocol and SPDY/3.1); this module only renames them into the
suite's groups and cases and adds the baseline that needs the repository's view of the
wire:

* ``wsproto``: wsproto's frame protocol alone on the very messages kstream puts on the
  wire (channel byte included, base64 already done), ``count`` messages of the same size
  as the kstream row it sits beside, timed the same way (CPU time of this thread), so
  ``kstream / wsproto`` is the channel layer's own cost. Decoding is fed the same way
  (256 KiB reads, a fresh connection per run, made before timing: wsproto's frame-level
  connection has no handshake).

Groups and cases, as the report and its targets expect: ``ws-encode`` rows name the
sending role (``client (masked)`` / ``server (unmasked)``), ``ws-decode`` rows the
receiving one (``client (unmasked)`` / ``server (masked)``); ``spdy-encode`` /
``spdy-decode`` rows are ``DATA <role> <size>``.
"""

from __future__ import annotations

import base64
import gc
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, TextMessage

from kstream import STDIN, STDOUT
from kstream.bench import SPDY, WEBSOCKET_PROTOCOLS, Row, measure_framing, size_label

from ._harness import Config, Result

__all__ = ["SIZES", "WS_PROTOCOLS", "bench_spdy_framing", "bench_ws_framing", "size_label"]

#: Message sizes measured: 64 B, 1 KiB, 32 KiB, 1 MiB.
SIZES: Final = (64, 1024, 32 * 1024, 1 << 20)
#: Every named WebSocket channel subprotocol.
WS_PROTOCOLS: Final = WEBSOCKET_PROTOCOLS
#: What an adapter hands to receive_data at once.
_READ_SIZE: Final = 256 * 1024
_BASE64: Final = frozenset({"v4.base64.channel.k8s.io", "base64.channel.k8s.io"})
_SENDER: Final = {"client": "client (masked)", "server": "server (unmasked)"}
_RECEIVER: Final = {"client": "client (unmasked)", "server": "server (masked)"}


def _measure(config: Config, protocols: tuple[str, ...], sizes: tuple[int, ...]) -> list[Row]:
    return measure_framing(quick=config.mode != "full", sizes=sizes, protocols=protocols,
                           runs=config.runs)


def _cpu_time_runs(run: Callable[[], object], config: Config) -> list[float]:
    """Time ``run`` as :func:`kstream.bench.measure_framing` times its rows.

    CPU time of this thread, the garbage collector off, after ``config.warmup`` untimed
    calls: the wsproto baseline must be timed like the kstream rows beside it.
    """
    for _ in range(config.warmup):
        run()
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    durations = []
    try:
        for _ in range(config.runs):
            start = time.thread_time()
            run()
            durations.append(time.thread_time() - start)
    finally:
        if enabled:
            gc.enable()
    return durations


def _result(group: str, case: str, row: Row) -> Result:
    return Result(group, case, row.impl, list(row.seconds), row.payload_bytes, row.messages,
                  baseline=row.baseline)


# -------------------------------------------------------------------------------- wsproto


def _wire_message(protocol: str, channel: int, payload: bytes) -> bytes | str:
    """The WebSocket message kstream sends for ``payload`` (what wsproto alone is given)."""
    if protocol in _BASE64:
        return chr(ord("0") + channel) + base64.b64encode(payload).decode("ascii")
    return bytes((channel,)) + payload


def _wsproto_event(message: bytes | str) -> BytesMessage | TextMessage:
    if isinstance(message, str):
        return TextMessage(data=message)
    return BytesMessage(data=message)


def _wsproto_encode(message: bytes | str, client: bool, count: int) -> Callable[[], int]:
    connection = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)

    def run() -> int:
        total = 0
        for _ in range(count):
            total += len(connection.send(_wsproto_event(message)))
        return total

    return run


def _wsproto_decode(message: bytes | str, client: bool, count: int,
                    config: Config) -> Callable[[], int]:
    """Decode, as ``client`` or not, ``count`` frames of ``message`` sent by the peer."""
    sender = Connection(ConnectionType.SERVER if client else ConnectionType.CLIENT)
    stream = b"".join(sender.send(_wsproto_event(message)) for _ in range(count))
    chunks = [stream[offset:offset + _READ_SIZE] for offset in range(0, len(stream),
                                                                     _READ_SIZE)]

    def fresh() -> Connection:
        return Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)

    ready = deque(fresh() for _ in range(config.warmup + config.runs))

    def run() -> int:
        connection = ready.popleft() if ready else fresh()
        total = 0
        for chunk in chunks:
            connection.receive_data(chunk)
            for event in connection.events():
                total += len(event.data)  # type: ignore[attr-defined]
        return total

    return run


# -------------------------------------------------------------------------------- cases


def bench_ws_framing(config: Config, protocols: tuple[str, ...] = WS_PROTOCOLS,
                     sizes: tuple[int, ...] = SIZES) -> list[Result]:
    """Encode and decode every WebSocket subprotocol, both roles, every size.

    ``ws-encode`` rows name the sending role; ``ws-decode`` rows name the receiving role
    (a client decodes the server's unmasked frames, a server the client's masked ones).
    """
    rows = _measure(config, protocols, sizes)
    copies = {row.size: row for row in rows if row.group == "copy"}
    results: list[Result] = []
    for row in rows:
        if row.group == "copy":
            continue
        client = row.role == "client"
        payload = bytes(index % 251 for index in range(row.size))
        copy = copies[row.size]
        if row.group == "encode":
            case = f"{row.protocol} {_SENDER[row.role]} {size_label(row.size)}"
            message = _wire_message(row.protocol, STDIN if client else STDOUT, payload)
            wsproto = _cpu_time_runs(_wsproto_encode(message, client, row.messages), config)
            group = "ws-encode"
        else:
            case = f"{row.protocol} {_RECEIVER[row.role]} {size_label(row.size)}"
            message = _wire_message(row.protocol, STDOUT if client else STDIN, payload)
            wsproto = _cpu_time_runs(_wsproto_decode(message, client, row.messages, config),
                                     config)
            group = "ws-decode"
        results.append(_result(group, case, row))
        results.append(Result(group, case, "wsproto", wsproto, row.payload_bytes,
                              row.messages, baseline=True))
        results.append(_result(group, case, copy))
    return results


def bench_spdy_framing(config: Config, sizes: tuple[int, ...] = SIZES) -> list[Result]:
    """Encode and decode SPDY/3.1 DATA frames of every size, as client and server.

    Through :class:`kstream.SpdyExecClient` / :class:`kstream.SpdyExecServer` (the session
    included), as ``kstream bench framing`` measures them.
    """
    rows = _measure(config, (SPDY,), sizes)
    copies = {row.size: row for row in rows if row.group == "copy"}
    results: list[Result] = []
    for row in rows:
        if row.group == "copy":
            continue
        case = f"DATA {row.role} {size_label(row.size)}"
        group = f"spdy-{row.group}"
        results.append(_result(group, case, row))
        results.append(_result(group, case, copies[row.size]))
    return results
