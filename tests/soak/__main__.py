"""``python -m tests.soak`` (``make soak``): hundreds of mixed sessions under random faults.

Against ``kstream serve`` (TLS, its default) and the Go peer at once, for a bounded time
(``--seconds``, 600 by default), ``--sessions`` workers run healthy sessions of mixed
kinds, each checked byte for byte:

- exec with stdin (``cat``: what goes in comes out; stdin closed by v5 or SPDY),
- downloads (serve: ``head -c N /dev/zero``; Go peer: ``source N``),
- uploads (serve: ``wc -c``; Go peer: ``sink``, which prints the count and SHA-256),
- attach (serve: whole ``tick`` lines from a pod whose main process prints them),

over WebSocket v5, v4 and SPDY, with both kstream runtimes' sans-IO core underneath the
asyncio adapter. Meanwhile ``--fault-workers`` inject faults against serve at random:
a TCP reset mid-download, a reader that stalls, a ping flood that never reads its pongs,
slowloris request heads, and malformed frames after a real upgrade.

It asserts, and exits non-zero otherwise, that every healthy session was byte-exact,
that serve's RSS stayed under ``--rss-limit-mib``, that serve's file descriptors and
pseudo-terminals came back to their baseline, and that no traceback reached its log.
It prints a summary table; ``docs/reliability.md`` keeps the latest figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import re
import socket
import ssl
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import kstream
import kstream.asyncio
from kstream.kubeconfig import load_config

# The Go peer's helper lives beside the tests, which run with tests/ on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peers.gopeer import GoPeerServer, build_kpeer

TRANSPORTS = [("websocket", ["v5.channel.k8s.io"]), ("websocket", ["v4.channel.k8s.io"]),
              ("spdy", None)]


@dataclass
class Target:
    """Where healthy sessions go: a server URL and how to reach it."""

    name: str
    url: str
    headers: tuple[tuple[str, str], ...]
    context: ssl.SSLContext | None


@dataclass
class Tally:
    """What happened, by kind."""

    ok: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def fail(self, kind: str, what: str, *, wrong: bool) -> None:
        (self.wrong if wrong else self.errors)[kind] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{kind}: {what}")


# --------------------------------------------------------------------------- healthy


async def _exec_stdin(target: Target, rng: random.Random) -> tuple[str, bool, str]:
    transport, protocols = rng.choice([t for t in TRANSPORTS if t[1] != ["v4.channel.k8s.io"]])
    data = rng.randbytes(rng.randint(1, 1 << 20))
    pod = "demo"
    async with await kstream.asyncio.open_exec(
            target.url, "default", pod, ["cat"], stdin=True, headers=target.headers,
            ssl=target.context, transport=transport, protocols=protocols,
            fallback=False) as proc:
        out, _ = await proc.communicate(data)
        code = await proc.wait()
    kind = f"exec-stdin/{target.name}/{transport}"
    return kind, out == data and code == 0, f"{len(out)} of {len(data)} bytes, exit {code}"


async def _download(target: Target, rng: random.Random) -> tuple[str, bool, str]:
    transport, protocols = rng.choice(TRANSPORTS)
    size = rng.randint(0, 8 << 20)
    argv = ["head", "-c", str(size), "/dev/zero"] if target.name == "serve" \
        else ["source", str(size)]
    async with await kstream.asyncio.open_exec(
            target.url, "default", "demo", argv, headers=target.headers, ssl=target.context,
            transport=transport, protocols=protocols, fallback=False) as proc:
        digest, count = hashlib.sha256(), 0
        async for chunk in proc.stdout:
            digest.update(chunk)
            count += len(chunk)
        code = await proc.wait()
    if target.name == "serve":
        expected = hashlib.sha256(bytes(size)).hexdigest()
    else:
        pattern = bytes(i % 251 for i in range(251))
        expected = hashlib.sha256((pattern * (size // 251 + 1))[:size]).hexdigest()
    kind = f"download/{target.name}/{transport}"
    return kind, digest.hexdigest() == expected and code == 0, f"{count} of {size} bytes"


async def _upload(target: Target, rng: random.Random) -> tuple[str, bool, str]:
    transport, protocols = rng.choice([t for t in TRANSPORTS if t[1] != ["v4.channel.k8s.io"]])
    data = rng.randbytes(rng.randint(0, 4 << 20))
    argv = ["wc", "-c"] if target.name == "serve" else ["sink"]
    async with await kstream.asyncio.open_exec(
            target.url, "default", "demo", argv, stdin=True, headers=target.headers,
            ssl=target.context, transport=transport, protocols=protocols,
            fallback=False) as proc:
        out, _ = await proc.communicate(data)
        code = await proc.wait()
    expected = f"{len(data)}\n" if target.name == "serve" \
        else f"{len(data)} {hashlib.sha256(data).hexdigest()}\n"
    kind = f"upload/{target.name}/{transport}"
    return kind, out.decode().strip() == expected.strip() and code == 0, out.decode()[:80]


async def _attach(target: Target, rng: random.Random) -> tuple[str, bool, str]:
    # The shared pod's main process prints "tick" lines; an attached session must see
    # whole ones. (No stdin: closing an attached stdin ends the main process, stdinOnce.)
    transport, protocols = rng.choice(TRANSPORTS)
    async with await kstream.asyncio.open_attach(
            target.url, "default", "ticker", headers=target.headers, ssl=target.context,
            transport=transport, protocols=protocols, fallback=False) as proc:
        seen = b""
        async with asyncio.timeout(30):
            while seen.count(b"tick\n") < 3:
                chunk = await proc.stdout.read(65536)
                if not chunk:
                    break
                seen += chunk
    lines = seen.split(b"\n")[1:-1]  # the first may have started before we attached
    good = len(lines) >= 2 and all(line == b"tick" for line in lines)
    return f"attach/{target.name}/{transport}", good, f"{seen[:60]!r}"


# --------------------------------------------------------------------------- faults


async def _raw_upgrade(target: Target, *, reader_limit: int = 1 << 16
                       ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter,
                                  kstream.WebSocketChannelConnection]:
    host, port = target.url.split("://", 1)[1].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port), ssl=target.context,
                                                   limit=reader_limit)
    connection = kstream.WebSocketChannelConnection.client(
        host=f"{host}:{port}", target="/api/v1/namespaces/default/pods/demo/exec?"
        "command=head&command=-c&command=67108864&command=/dev/zero&stdout=true",
        headers=list(target.headers), protocols=["v5.channel.k8s.io"])
    writer.write(connection.data_to_send())
    await writer.drain()
    return reader, writer, connection


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _fault_reset(target: Target, rng: random.Random) -> None:
    reader, writer, _ = await _raw_upgrade(target)
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        await reader.readexactly(rng.randint(1, 1 << 20))
    _reset(writer)


async def _fault_stall(target: Target, rng: random.Random) -> None:
    _, writer, _ = await _raw_upgrade(target)
    await asyncio.sleep(rng.uniform(1, 10))  # a reader that reads nothing
    _reset(writer)


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


async def _fault_ping_flood(target: Target, rng: random.Random) -> None:
    # Pings, never reading the pongs (nor the output): the server must not queue
    # replies without bound. Bounded here: 20,000 pings of 125 bytes, or 10 s.
    _, writer, _ = await _raw_upgrade(target, reader_limit=1)
    ping = _masked_frame(9, bytes(125))
    deadline = time.monotonic() + 10
    with contextlib.suppress(OSError, ConnectionError):
        for _ in range(200):
            writer.write(ping * 100)
            await asyncio.wait_for(writer.drain(), max(0.01, deadline - time.monotonic()))
    _reset(writer)


async def _fault_slowloris(target: Target, rng: random.Random) -> None:
    host, port = target.url.split("://", 1)[1].rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port), ssl=target.context)
    head = b"GET /api/v1/namespaces/default/pods/demo HTTP/1.1\r\nHost: x\r\n"
    with contextlib.suppress(OSError, ConnectionError):
        for byte in head[:rng.randint(1, len(head))]:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.5)
    _reset(writer)


async def _fault_malformed(target: Target, rng: random.Random) -> None:
    reader, writer, connection = await _raw_upgrade(target)
    with contextlib.suppress(OSError, ConnectionError, asyncio.IncompleteReadError,
                             kstream.ProtocolError):
        connection.receive_data(await reader.read(4096))
        writer.write(rng.randbytes(rng.randint(1, 4096)))
        await writer.drain()
        await asyncio.wait_for(reader.read(1 << 16), 5)
    _reset(writer)


HEALTHY: dict[str, Callable[[Target, random.Random], Awaitable[tuple[str, bool, str]]]] = {
    "exec-stdin": _exec_stdin, "download": _download, "upload": _upload, "attach": _attach}
FAULTS: dict[str, Callable[[Target, random.Random], Awaitable[None]]] = {
    "reset": _fault_reset, "stall": _fault_stall, "ping-flood": _fault_ping_flood,
    "slowloris": _fault_slowloris, "malformed": _fault_malformed}


# --------------------------------------------------------------------------- the server


def _fd_counts(pid: int) -> tuple[int, int]:
    """Open descriptors of ``pid``, and how many of them are pseudo-terminal masters."""
    fds = ptys = 0
    for entry in os.scandir(f"/proc/{pid}/fd"):
        fds += 1
        with contextlib.suppress(OSError):
            if os.readlink(entry.path) == "/dev/ptmx":
                ptys += 1
    return fds, ptys


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        match = re.search(r"VmRSS:\s+(\d+) kB", status.read())
    return int(match.group(1)) / 1024 if match else 0.0


async def _serve(directory: Path) -> tuple[asyncio.subprocess.Process, Target]:
    kubeconfig = directory / "kubeconfig"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kstream", "serve", "--kubeconfig", str(kubeconfig),
        "--pod", "demo=cat", "--pod", "ticker=sh -c 'while :; do echo tick; sleep 0.1; done'",
        stdout=asyncio.subprocess.PIPE,
        stderr=(directory / "serve.log").open("wb"), stdin=asyncio.subprocess.DEVNULL)
    assert process.stdout is not None
    await process.stdout.readline()
    await process.stdout.readline()
    cluster = load_config(str(kubeconfig), environ={})
    return process, Target("serve", cluster.server, cluster.headers, cluster.ssl_context)


async def soak(seconds: float, sessions: int, fault_workers: int, rss_limit: float,
               seed: int) -> int:
    rng = random.Random(seed)
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="kstream-soak-") as work, \
            GoPeerServer(build_kpeer()) as peer:
        directory = Path(work)
        serve, serve_target = await _serve(directory)
        peer_target = Target("go-peer", peer.url, (("Authorization", "Bearer t"),), None)
        # The ticker pod's main process starts with its first attach and runs as long as
        # serve does (its pipes are not a leak): start it before taking the baseline.
        await _attach(serve_target, random.Random(seed))
        await asyncio.sleep(1)
        baseline = _fd_counts(serve.pid)
        rss_base = _rss_mib(serve.pid)
        rss_peak = rss_base
        deadline = time.monotonic() + seconds

        async def healthy(worker: int) -> None:
            local = random.Random(rng.getrandbits(64))
            while time.monotonic() < deadline:
                kind = local.choice(list(HEALTHY))
                target = serve_target if kind == "attach" or local.random() < 0.6 \
                    else peer_target
                try:
                    async with asyncio.timeout(120):
                        name, good, what = await HEALTHY[kind](target, local)
                except Exception as exc:  # a healthy session must not fail at all
                    tally.fail(f"{kind}/{target.name}", f"{type(exc).__name__}: {exc}",
                               wrong=False)
                    continue
                if good:
                    tally.ok[name] += 1
                else:
                    tally.fail(name, what, wrong=True)

        async def faulty(worker: int) -> None:
            local = random.Random(rng.getrandbits(64))
            while time.monotonic() < deadline:
                kind = local.choice(list(FAULTS))
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(60):
                        await FAULTS[kind](serve_target, local)
                tally.faults[kind] += 1

        async def sample() -> None:
            nonlocal rss_peak
            while time.monotonic() < deadline:
                rss_peak = max(rss_peak, _rss_mib(serve.pid))
                await asyncio.sleep(0.5)

        started = time.monotonic()
        await asyncio.gather(sample(), *(healthy(i) for i in range(sessions)),
                             *(faulty(i) for i in range(fault_workers)))
        elapsed = time.monotonic() - started
        # Let the server notice every departed client (pong deadlines are 60 s; closed
        # sockets are seen at once), then compare with the baseline.
        settle = time.monotonic() + 90
        after = _fd_counts(serve.pid)
        while after != baseline and time.monotonic() < settle:
            await asyncio.sleep(1)
            after = _fd_counts(serve.pid)
        rss_end = _rss_mib(serve.pid)
        serve.terminate()
        await serve.wait()
        log = (directory / "serve.log").read_text(errors="replace")
        peer_log = peer.stderr_text()
    tracebacks = log.count("Traceback") + peer_log.count("panic:")
    healthy_total = sum(tally.ok.values())
    failed_total = sum(tally.wrong.values()) + sum(tally.errors.values())
    print(f"\nsoak: {elapsed:.0f} s, {sessions} session workers, {fault_workers} fault "
          f"workers, seed {seed}\n")
    print(f"{'healthy session':44} {'ok':>7} {'wrong':>6} {'error':>6}")
    for kind in sorted(set(tally.ok) | set(tally.wrong) | set(tally.errors)):
        print(f"{kind:44} {tally.ok[kind]:>7} {tally.wrong[kind]:>6} {tally.errors[kind]:>6}")
    print(f"\n{'fault injected':44} {'count':>7}")
    for kind in sorted(tally.faults):
        print(f"{kind:44} {tally.faults[kind]:>7}")
    checks = [
        ("every healthy session byte-exact", failed_total == 0,
         f"{healthy_total} ok, {failed_total} failed"),
        (f"serve RSS under {rss_limit:.0f} MiB", rss_peak < rss_limit,
         f"{rss_base:.0f} MiB at start, peak {rss_peak:.0f}, {rss_end:.0f} at the end"),
        ("serve file descriptors back to baseline", after[0] <= baseline[0],
         f"{baseline[0]} before, {after[0]} after"),
        ("serve pseudo-terminals back to baseline", after[1] <= baseline[1],
         f"{baseline[1]} before, {after[1]} after"),
        ("no traceback in any log", tracebacks == 0, f"{tracebacks} found"),
    ]
    print(f"\n{'check':44} {'verdict':>7}  figures")
    for name, passed, figures in checks:
        print(f"{name:44} {'pass' if passed else 'FAIL':>7}  {figures}")
    for example in tally.examples:
        print(f"  failure: {example}")
    if tracebacks:
        print(log[log.find("Traceback"):][:3000])
    return 0 if all(passed for _, passed, _ in checks) else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600, help="duration (600)")
    parser.add_argument("--sessions", type=int, default=200,
                        help="concurrent healthy-session workers (200)")
    parser.add_argument("--fault-workers", type=int, default=20,
                        help="concurrent fault injectors (20)")
    parser.add_argument("--rss-limit-mib", type=float, default=512,
                        help="bound on serve's resident memory (512)")
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    args = parser.parse_args()
    return asyncio.run(soak(args.seconds, args.sessions, args.fault_workers,
                            args.rss_limit_mib, args.seed))


if __name__ == "__main__":
    sys.exit(main())
