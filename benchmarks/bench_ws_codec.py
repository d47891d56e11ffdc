"""Per-frame cost of kstream's zero-copy WebSocket codec against wsproto, and masking speed.

Run: ``.venv/bin/python benchmarks/bench_ws_codec.py [--quick]``. Prints four tables:

* decode: one frame per call, then 500 frames per call (as an adapter's large reads
  deliver them); client role: unmasked server frames; server role: masked client
  frames. ``FrameDecoder.feed`` is the codec alone; ``ZeroCopyFrameCodec`` adds the
  seam's item objects; ``wsproto seam`` is ``kstream._ws.frames.FrameCodec``;
  ``wsproto`` is ``Connection.receive_data`` + ``events()`` alone.
* encode: one binary frame per call with a 1-byte channel prefix, as the channel layer
  sends (client role masks).
* mask: throughput of each masking backend.

Each figure is the best of several runs, in CPU time of this process (the machine is
shared: the best run is the least disturbed).
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage

from kstream._ws import mask as _mask
from kstream._ws.codec import FrameDecoder, FrameEncoder, ZeroCopyFrameCodec
from kstream._ws.frames import FrameCodec as WsprotoFrameCodec

SIZES = (64, 1024, 32 * 1024, 1024 * 1024)
QUICK = "--quick" in sys.argv
BUDGET = 0.05 if QUICK else 0.2  # seconds per run
RUNS = 3 if QUICK else 5


def best_time(action: Callable[[], object], budget: float = BUDGET) -> float:
    """Return the best per-call time of ``action`` over :data:`RUNS` runs."""
    start = time.process_time()
    action()
    once = max(time.process_time() - start, 1e-7)
    number = max(1, int(budget / once))
    best = float("inf")
    for _ in range(RUNS):
        start = time.process_time()
        for _ in range(number):
            action()
        best = min(best, (time.process_time() - start) / number)
    return best


def wire_frame(size: int, *, client: bool) -> bytes:
    """A binary frame of ``size`` bytes as the peer of ``client`` sends it."""
    peer = Connection(ConnectionType.SERVER if client else ConnectionType.CLIENT)
    return peer.send(BytesMessage(data=os.urandom(size)))


def decode_row(size: int, *, client: bool) -> list[float]:
    frame = wire_frame(size, client=client)
    decoder = FrameDecoder(client=client, max_message_size=None)
    seam = ZeroCopyFrameCodec(client=client)
    wsproto_seam = WsprotoFrameCodec(client=client)
    connection = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)

    def wsproto_raw() -> None:
        connection.receive_data(frame)
        for _ in connection.events():
            pass

    return [best_time(lambda: decoder.feed(frame)), best_time(lambda: seam.receive(frame)),
            best_time(lambda: wsproto_seam.receive(frame)), best_time(wsproto_raw)]


def batched_decode_row(size: int, *, client: bool, count: int = 500) -> list[float]:
    chunk = b"".join(wire_frame(size, client=client) for _ in range(count))
    decoder = FrameDecoder(client=client, max_message_size=None)
    seam = ZeroCopyFrameCodec(client=client)
    wsproto_seam = WsprotoFrameCodec(client=client)
    connection = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)

    def wsproto_raw() -> None:
        connection.receive_data(chunk)
        for _ in connection.events():
            pass

    return [best_time(action) / count for action in (
        lambda: decoder.feed(chunk), lambda: seam.receive(chunk),
        lambda: wsproto_seam.receive(chunk), wsproto_raw)]


def encode_row(size: int, *, client: bool) -> list[float]:
    payload = os.urandom(size)
    encoder = FrameEncoder(client=client)
    seam = ZeroCopyFrameCodec(client=client)
    wsproto_seam = WsprotoFrameCodec(client=client)
    connection = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)
    prefixed = b"\x00" + payload
    return [best_time(lambda: encoder.frame_parts(2, payload, b"\x00")),
            best_time(lambda: seam.message(b"\x00", payload, text=False)),
            best_time(lambda: wsproto_seam.message(b"\x00", payload, text=False)),
            best_time(lambda: connection.send(BytesMessage(data=prefixed)))]


def show(seconds: float) -> str:
    return f"{seconds * 1e6:10.2f}"


def table(title: str, columns: list[str], rows: Callable[[int, bool], list[float]],
          sizes: tuple[int, ...] = SIZES) -> None:
    print(f"\n{title} (µs per frame; ratio = wsproto seam / ZeroCopyFrameCodec)")
    print(f"{'role':7}{'size':>9}" + "".join(f"{c:>22}" for c in columns) + f"{'ratio':>8}")
    for client in (True, False):
        for size in sizes:
            times = rows(size, client)
            print(f"{'client' if client else 'server':7}{size:>9}"
                  + "".join(f"{show(t):>22}" for t in times)
                  + f"{times[2] / times[1]:>8.1f}")


def mask_table() -> None:
    print("\nmask throughput (GB/s)")
    backends: dict[str, Callable[[bytes, bytes], bytes]] = {"python": _mask._mask_python}
    if _mask._mask_speedups is not None:
        backends["websockets"] = _mask._mask_speedups
    print(f"{'size':>9}" + "".join(f"{name:>14}" for name in backends))
    key = os.urandom(4)
    for size in SIZES:
        data = os.urandom(size)
        line = f"{size:>9}"
        for backend in backends.values():
            seconds = best_time(functools.partial(backend, data, key))
            line += f"{size / seconds / 1e9:>14.2f}"
        print(line)


def main() -> None:
    """Print the three tables."""
    print(f"mask backend in use: {_mask.MASK_BACKEND}")
    table("decode", ["FrameDecoder.feed", "ZeroCopyFrameCodec", "wsproto seam", "wsproto"],
          lambda size, client: decode_row(size, client=client))
    table("decode, 500 frames per call", ["FrameDecoder.feed", "ZeroCopyFrameCodec",
                                          "wsproto seam", "wsproto"],
          lambda size, client: batched_decode_row(size, client=client), sizes=(64, 1024))
    table("encode", ["FrameEncoder.parts", "ZeroCopyFrameCodec", "wsproto seam", "wsproto"],
          lambda size, client: encode_row(size, client=client))
    mask_table()


if __name__ == "__main__":
    main()
