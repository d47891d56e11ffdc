"""One transfer in a fresh interpreter, reported as one JSON line on stdout.

The end-to-end benchmarks run every client transfer in its own process: the peak RSS is
then the transfer's own (``ru_maxrss`` only grows), and nothing else in the benchmark
process competes for its GIL. Run as ``python -m benchmarks._worker MODE [options]``.

Modes:

* ``raw-download`` / ``raw-upload``: a plain loopback socket and an asyncio
  ``BufferedProtocol`` (256 KiB receive buffer) against :mod:`benchmarks._rawpeer`: the
  most Python can move, the limit for any client.
* ``download`` / ``upload``: kstream (``--lib asyncio`` or ``trio``) running the Go
  peer's built-in ``source N`` / ``sink`` commands.
* ``official-download``: the official ``kubernetes`` client (sync, ``binary=True``).
* ``sessions``: ``--sessions N`` concurrent asyncio execs, each downloading ``--size``.

Printed: ``{"seconds": ..., "nbytes": ..., "rss_base_kib": ..., "rss_peak_kib": ...}``,
timed from just before the connection is opened to the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

__all__ = ["main"]

_READ_BUFFER: Final = 256 * 1024
_WRITE_CHUNK: Final = 256 * 1024
_NAMESPACE: Final = "default"
#: What an upload sends, 256 KiB of the peer's pattern, made once at import time: before
#: the exec starts, as kubectl's input file exists before it starts (building it with a
#: generator inside the timed window cost kstream ~25 ms per upload).
_UPLOAD_CHUNK: Final = memoryview((bytes(range(251)) * (_WRITE_CHUNK // 251 + 1))[:_WRITE_CHUNK])
_POD: Final = "bench"

#: transport name of the benchmark -> (open_exec transport, protocols)
TRANSPORTS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "websocket v5": ("websocket", ("v5.channel.k8s.io",)),
    "websocket v4": ("websocket", ("v4.channel.k8s.io",)),
    "websocket v4.base64": ("websocket", ("v4.base64.channel.k8s.io",)),
    "spdy": ("spdy", ("v4.channel.k8s.io",)),
}


def _peak_rss_kib() -> int:
    """This process's peak RSS (``VmHWM``) in KiB.

    Not ``ru_maxrss``: that survives ``execve`` and so reports the parent's peak when the
    parent forked us; ``VmHWM`` belongs to this address space alone.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: best effort


# ------------------------------------------------------------------------------ raw socket


class _Sink(asyncio.BufferedProtocol):
    """Counts received bytes into one reused buffer; resolves ``done`` at EOF."""

    def __init__(self, done: asyncio.Future[int]) -> None:
        self._buffer = memoryview(bytearray(_READ_BUFFER))
        self._done = done
        self.count = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.count += nbytes

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_result(self.count)


async def _raw_download(port: int, size: int) -> int:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: _Sink(done), "127.0.0.1", port)
    transport.write(f"download {size}\n".encode())
    count = await done
    transport.close()
    return count


async def _raw_upload(port: int, size: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"upload\n")
    chunk = _UPLOAD_CHUNK
    sent = 0
    while sent < size:
        piece = chunk[:min(_WRITE_CHUNK, size - sent)]
        writer.write(piece)
        sent += len(piece)
        await writer.drain()
    writer.write_eof()
    answer = await reader.readline()
    writer.close()
    count = int(answer.split()[0])
    assert count == size, (count, size)
    return count


# ------------------------------------------------------------------------------ kstream


def _exec_kwargs(transport: str) -> dict[str, Any]:
    kind, protocols = TRANSPORTS[transport]
    return {"transport": kind, "protocols": list(protocols), "fallback": False}


def _runtime(lib: str) -> Any:
    """``kstream.asyncio`` or ``kstream.trio``: the two have the same API, so one transfer
    function serves both, each run on its own event loop by ``_on_loop``."""
    if lib == "trio":
        import kstream.trio  # type: ignore[import-not-found,unused-ignore]

        return kstream.trio
    import kstream.asyncio

    return kstream.asyncio


async def _kstream_download(lib: str, url: str, transport: str, size: int) -> int:
    process = await _runtime(lib).open_exec(
        url, _NAMESPACE, _POD, ["source", str(size)], stdout=True, stderr=True,
        **_exec_kwargs(transport))
    count = 0
    async with process:
        while chunk := await process.stdout.read(_READ_BUFFER):
            count += len(chunk)
        code = await process.wait()
    assert code == 0 and count == size, (code, count, size)
    return count


async def _kstream_upload(lib: str, url: str, transport: str, size: int) -> int:
    process = await _runtime(lib).open_exec(
        url, _NAMESPACE, _POD, ["sink"], stdin=True, stdout=True, stderr=False,
        **_exec_kwargs(transport))
    chunk = _UPLOAD_CHUNK
    async with process:
        sent = 0
        while sent < size:
            piece = chunk[:min(_WRITE_CHUNK, size - sent)]
            process.stdin.write(piece)
            sent += len(piece)
            await process.stdin.drain()
        process.stdin.close()
        answer = await process.stdout.read()
        code = await process.wait()
    count = int(answer.split()[0])
    assert code == 0 and count == size, (code, answer, size)
    return count


async def _latency(url: str, transport: str) -> int:
    import kstream.asyncio

    process = await kstream.asyncio.open_exec(
        url, _NAMESPACE, _POD, ["exit", "0"], stdout=True, stderr=True,
        **_exec_kwargs(transport))
    async with process:
        await process.stdout.read()
        code = await process.wait()
    assert code == 0, code
    return 0


async def _idle_sessions(url: str, sessions: int) -> dict[str, float]:
    """Open ``sessions`` execs of ``sleep-forever`` (stdin open), measure, then end them.

    Returns the RSS with every session established and idle, against the RSS before the
    first one opened (both after a full GC): the cost of one idle session.
    """
    import gc

    import kstream.asyncio

    async def open_one() -> Any:
        return await kstream.asyncio.open_exec(
            url, _NAMESPACE, _POD, ["sleep-forever"], stdin=True, stdout=True, stderr=True,
            **_exec_kwargs("websocket v5"))

    gc.collect()
    before = _current_rss_kib()
    start = time.perf_counter()
    processes = []
    for first in range(0, sessions, 100):  # 100 handshakes at a time, as a pool would
        processes += await asyncio.gather(*(open_one()
                                            for _ in range(min(100, sessions - first))))
    opened = time.perf_counter() - start
    await asyncio.sleep(0.2)  # every connection settled: nothing in flight
    gc.collect()
    idle = _current_rss_kib()
    # Ending the connection from our side ends the peer's sleep-forever.
    await asyncio.gather(*(process.aclose() for process in processes),
                         return_exceptions=True)
    return {"seconds": opened, "nbytes": 0, "rss_before_kib": before, "rss_idle_kib": idle,
            "sessions": sessions}


def _current_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _sessions(url: str, sessions: int, size: int) -> int:
    results = await asyncio.gather(*(
        _kstream_download("asyncio", url, "websocket v5", size) for _ in range(sessions)))
    return sum(results)


# ------------------------------------------------------------------------------ official


def _official_download(url: str, size: int) -> int:
    from kubernetes import client
    from kubernetes.stream import stream

    configuration = client.Configuration()
    configuration.host = url
    api = client.CoreV1Api(client.ApiClient(configuration))
    response = stream(api.connect_get_namespaced_pod_exec, _POD, _NAMESPACE,
                      command=["source", str(size)], stdout=True, stderr=True, stdin=False,
                      tty=False, binary=True, _preload_content=False)
    count = 0
    while response.is_open():
        response.update(timeout=1)
        while response.peek_stdout():
            count += len(response.read_stdout())
    response.close()
    assert count == size, (count, size)
    return count


# ------------------------------------------------------------------------------ main


def _measure(run: Callable[[], int]) -> dict[str, float | int]:
    base = _peak_rss_kib()
    cpu_start = time.process_time()
    start = time.perf_counter()
    nbytes = run()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "nbytes": nbytes, "rss_base_kib": base,
            "rss_peak_kib": _peak_rss_kib(), "cpu_seconds": time.process_time() - cpu_start}


def _on_loop(lib: str, coroutine: Callable[[], Awaitable[int]]) -> Callable[[], int]:
    if lib == "trio":
        import trio

        return lambda: trio.run(coroutine)
    return lambda: asyncio.run(coroutine())  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """Run one transfer and print its JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks._worker")
    parser.add_argument("mode", choices=["raw-download", "raw-upload", "download", "upload",
                                         "official-download", "sessions", "idle-sessions",
                                         "latency"])
    parser.add_argument("--url", default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--transport", default="websocket v5", choices=sorted(TRANSPORTS))
    parser.add_argument("--lib", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--sessions", type=int, default=1)
    args = parser.parse_args(argv)
    # Import what the transfer needs before the baseline RSS is read.
    import kstream.asyncio

    if args.lib == "trio":
        import trio  # noqa: F401

        import kstream.trio  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    if args.mode == "official-download":
        import kubernetes.stream  # noqa: F401

    if args.mode == "idle-sessions":
        report = asyncio.run(_idle_sessions(args.url, args.sessions))
        print(json.dumps(report), flush=True)
        return 0
    run: Callable[[], int]
    if args.mode == "raw-download":
        run = _on_loop("asyncio", lambda: _raw_download(args.port, args.size))
    elif args.mode == "raw-upload":
        run = _on_loop("asyncio", lambda: _raw_upload(args.port, args.size))
    elif args.mode == "download":
        run = _on_loop(args.lib, lambda: _kstream_download(
            args.lib, args.url, args.transport, args.size))
    elif args.mode == "upload":
        run = _on_loop(args.lib, lambda: _kstream_upload(
            args.lib, args.url, args.transport, args.size))
    elif args.mode == "latency":
        run = _on_loop("asyncio", lambda: _latency(args.url, args.transport))
    elif args.mode == "sessions":
        run = _on_loop("asyncio", lambda: _sessions(args.url, args.sessions, args.size))
    else:
        run = lambda: _official_download(args.url, args.size)  # noqa: E731
    print(json.dumps(_measure(run)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
