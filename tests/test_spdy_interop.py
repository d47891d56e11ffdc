"""SPDY exec interop with an independent implementation (Go, moby/spdystream), over loopback.

Both directions, over real 127.0.0.1 sockets:

* our sans-IO client (:class:`SpdyExecClient`, driven by :class:`kstream.testing.pairs.SocketPump`)
  against ``kpeer serve``, which serves exec the kubelet way;
* ``kpeer spdy-client``, which execs the client-go way, against our sans-IO server
  (:class:`SpdyExecServer`) running kpeer's built-in commands in :class:`BuiltinExecServer`.

Each direction covers: 8 MiB of random bytes each way, byte-exact, with stdin half-close;
exit codes 0, 3 and 255 (v4 JSON); plain-text failures on v2 and v3; pings both ways; and
no stall past the 64 KiB SPDY window in the default (advisory) flow-control mode, checked
on the wire: neither side sends a WINDOW_UPDATE.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from peers.gopeer import GoPeerServer, SpdyClientError, SpdyClientResult, run_spdy_client

from kstream._channels import ERROR, RESIZE, STDERR, STDIN, STDOUT
from kstream._errors import LocalProtocolError
from kstream._events import (
    ChannelData,
    ChannelEnded,
    ConnectionClosed,
    Event,
    PingReceived,
    PongReceived,
    UpgradeAccepted,
    UpgradeRejected,
)
from kstream._exec.spdy import ExecReady
from kstream._exec.spdy_client import SpdyExecClient
from kstream._exec.spdy_server import SpdyExecServer
from kstream._http import _exec_target_for_path as exec_target
from kstream._http import query_bool
from kstream._resize import ResizeDecoder, encode_resize
from kstream._spdy.upgrade import DEFAULT_SPDY_PROTOCOLS
from kstream._status import (
    Exited,
    Failed,
    Status,
    exit_code_status,
    internal_error_status,
    parse_exit_status,
    success_status,
)
from kstream.testing.pairs import FrameTap, OneConnectionServer, SocketPump

#: Seconds any one exchange may take (socket waits, the Go client, the server thread).
TIMEOUT = 30.0
EIGHT_MIB = 8 * 1024 * 1024
#: The SPDY/3.1 initial window: a sender waiting for credit would stall here.
SPDY_WINDOW = 64 * 1024
#: client-go copies stdin in chunks of at most 32 KiB; kpeer's commands write as much.
CHUNK = 32 * 1024
#: Application data waiting in the socket pump's outbox before the producer pauses.
OUTBOX_HIGH_WATER = 1024 * 1024
#: Pings to see before ending a ping test (the answer to ping k is counted before k+1).
PINGS = 3


def connect(port: int) -> socket.socket:
    """A TCP connection to ``127.0.0.1:port``."""
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)

V2, V3 = "v2.channel.k8s.io", "v3.channel.k8s.io"
SUCCESS_JSON = b'{"metadata":{},"status":"Success"}'
FAILURE_TEXT = "Internal error occurred: error executing command in container: disk on fire"


def exit_json(code: int) -> bytes:
    """The exact v4 status kpeer (and a containerd kubelet) writes for ``exit <code>``."""
    return (
        '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit '
        f'code: error executing command [exit {code}], exit code {code}","reason":'
        f'"NonZeroExitCode","details":{{"causes":[{{"reason":"ExitCode","message":"{code}"}}]}}}}'
    ).encode()


def source_bytes(size: int) -> bytes:
    """What kpeer's ``source N`` writes: ``bytes(i % 251 for i in range(N))``."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


def sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_no_window_updates(sent: FrameTap | None, received: FrameTap | None) -> None:
    """Default mode, on the wire: nobody granted credit, yet more than a window flowed."""
    assert sent is not None and received is not None
    assert sent.control_frames["WindowUpdateFrame"] == 0
    assert received.control_frames["WindowUpdateFrame"] == 0
    assert sent.control_frames["SettingsFrame"] == received.control_frames["SettingsFrame"] == 0


# =========================================================================== our client


@dataclass
class ClientOutcome:
    """What our client saw of one exec."""

    protocol: str = ""
    version: int = 0
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    error: bytearray = field(default_factory=bytearray)
    ended: list[int] = field(default_factory=list)
    pongs: list[PongReceived] = field(default_factory=list)
    pings_received: int = 0
    closed: ConnectionClosed | None = None
    rejected: UpgradeRejected | None = None
    sent: FrameTap | None = None
    received: FrameTap | None = None


class ClientExec:
    """Our :class:`SpdyExecClient` running one command on a server, over a socket.

    Stdin goes out in 32 KiB writes while output is read, then is half-closed once every
    gate is open: ``ping_server`` waits for the pong of our own ping, ``await_pings`` for
    that many pings from the server.
    """

    def __init__(self, port: int, command: Sequence[str], *, stdin: bytes | None = None,
                 stderr: bool = True, protocols: Sequence[str] = DEFAULT_SPDY_PROTOCOLS,
                 ping_server: bool = False, await_pings: int = 0,
                 strict_flow_control: bool = False, tty: bool = False) -> None:
        self.port = port
        self.client = SpdyExecClient(
            host=f"127.0.0.1:{port}",
            target=exec_target("/exec", command=command, stdin=stdin is not None,
                               stdout=True, stderr=stderr, tty=tty),
            stdin=stdin is not None, stdout=True, stderr=stderr, tty=tty,
            protocols=protocols, strict_flow_control=strict_flow_control)
        self.outcome = ClientOutcome()
        self._stdin = memoryview(stdin) if stdin is not None else None
        self._offset = 0
        self._stdin_closed = False
        self._ready = False
        self._ping_server = ping_server
        self._ping_sent_at: float | None = None
        self._await_pings = await_pings
        self._pump: SocketPump | None = None

    def run(self, *, tap: bool = True) -> ClientOutcome:
        """Connect, run the exec to the server's GOAWAY, close as client-go does."""
        with connect(self.port) as sock, SocketPump(sock, self.client,
                                                                    tap=tap) as pump:
            self._pump = pump
            pump.run(self.on_events, produce=self.produce, timeout=TIMEOUT,
                     until=lambda: self.outcome.closed is not None
                     or self.outcome.rejected is not None)
            self.client.close()
            pump.finish(self.on_events, timeout=TIMEOUT)
            self.outcome.sent, self.outcome.received = pump.sent, pump.received
        return self.outcome

    def on_events(self, events: list[Event]) -> None:
        outcome = self.outcome
        for event in events:
            if isinstance(event, ChannelData):
                {STDOUT: outcome.stdout, STDERR: outcome.stderr,
                 ERROR: outcome.error}[event.channel].extend(event.data)
            elif isinstance(event, ChannelEnded):
                outcome.ended.append(event.channel)
            elif isinstance(event, ExecReady):
                self._ready = True
            elif isinstance(event, UpgradeAccepted):
                outcome.protocol, outcome.version = event.protocol, self.client.version
            elif isinstance(event, PongReceived):
                outcome.pongs.append(event)
            elif isinstance(event, PingReceived):
                outcome.pings_received += 1
            elif isinstance(event, ConnectionClosed):
                outcome.closed = event
            elif isinstance(event, UpgradeRejected):
                outcome.rejected = event

    def produce(self) -> None:
        if not self._ready or self.outcome.closed is not None:
            return
        if self._ping_server and self._ping_sent_at is None:
            self._ping_sent_at = time.monotonic()
            self.client.ping(self._ping_sent_at)
        stdin, pump = self._stdin, self._pump
        if stdin is None or self._stdin_closed:
            return
        assert pump is not None
        while self._offset < len(stdin) and len(pump.outbox) < OUTBOX_HIGH_WATER:
            self.client.send_data(STDIN, stdin[self._offset:self._offset + CHUNK])
            self._offset += CHUNK
            pump.collect()
        if self._offset >= len(stdin) and self._gates_open():
            self._stdin_closed = True
            self.client.close_channel(STDIN)

    def _gates_open(self) -> bool:
        if self._ping_server and not self.outcome.pongs:
            return False
        return self.outcome.pings_received >= self._await_pings


def run_on_go(server: GoPeerServer, command: Sequence[str], *, stdin: bytes | None = None,
              protocols: Sequence[str] = DEFAULT_SPDY_PROTOCOLS, ping_server: bool = False,
              await_pings: int = 0) -> ClientOutcome:
    """Run ``command`` on kpeer serve with our client (arguments as :class:`ClientExec`)."""
    return ClientExec(server.port, command, stdin=stdin, protocols=protocols,
                      ping_server=ping_server, await_pings=await_pings).run()


def test_our_client_cat_8_mib_each_way_byte_exact_without_window_updates(
        go_server: GoPeerServer) -> None:
    data = os.urandom(EIGHT_MIB)
    outcome = run_on_go(go_server, ["cat"], stdin=data)
    assert outcome.protocol == "v4.channel.k8s.io"
    assert len(outcome.stdout) == EIGHT_MIB
    assert sha256(outcome.stdout) == sha256(data)
    assert outcome.error == SUCCESS_JSON
    assert parse_exit_status(outcome.error, outcome.version) == Exited(0)
    # The Go server ends the exec with RST CANCEL / FIN on every stream, then GOAWAY OK.
    assert sorted(outcome.ended) == sorted([ERROR, STDIN, STDOUT, STDERR])
    assert outcome.closed == ConnectionClosed(code=0, clean=True)
    assert_no_window_updates(outcome.sent, outcome.received)
    assert outcome.sent is not None and outcome.received is not None
    assert outcome.sent.data_bytes == EIGHT_MIB  # stdin, then its FIN
    assert outcome.sent.fins == 1
    assert outcome.received.data_bytes == EIGHT_MIB + len(SUCCESS_JSON)


def test_our_client_sink_hashes_8_mib_of_stdin_on_the_go_side(go_server: GoPeerServer) -> None:
    data = os.urandom(EIGHT_MIB)
    outcome = run_on_go(go_server, ["sink"], stdin=data)
    assert outcome.stdout == f"{EIGHT_MIB} {sha256(data)}\n".encode()
    assert outcome.error == SUCCESS_JSON


def test_our_client_receives_8_mib_from_source(go_server: GoPeerServer) -> None:
    outcome = run_on_go(go_server, ["source", str(EIGHT_MIB)])
    assert len(outcome.stdout) == EIGHT_MIB
    assert sha256(outcome.stdout) == sha256(source_bytes(EIGHT_MIB))
    assert outcome.error == SUCCESS_JSON
    assert_no_window_updates(outcome.sent, outcome.received)


@pytest.mark.parametrize("code", [0, 3, 255])
def test_our_client_decodes_the_v4_exit_status(go_server: GoPeerServer, code: int) -> None:
    outcome = run_on_go(go_server, ["exit", str(code)])
    assert outcome.version == 4
    expected = SUCCESS_JSON if code == 0 else exit_json(code)
    assert bytes(outcome.error) == expected
    message = f"command terminated with exit code {code}" if code else ""
    assert parse_exit_status(outcome.error, 4) == Exited(code, message)


@pytest.mark.parametrize("protocol", [V2, V3])
def test_our_client_gets_plain_text_failures_on_v2_and_v3(go_server: GoPeerServer,
                                                          protocol: str) -> None:
    outcome = run_on_go(go_server, ["fail", "disk", "on", "fire"], protocols=[protocol])
    assert outcome.protocol == protocol
    assert outcome.error.decode() == FAILURE_TEXT
    assert parse_exit_status(outcome.error, outcome.version) == Failed(FAILURE_TEXT)


@pytest.mark.parametrize("protocol", [V2, V3])
def test_our_client_success_on_v2_and_v3_is_an_empty_error_stream(go_server: GoPeerServer,
                                                                  protocol: str) -> None:
    outcome = run_on_go(go_server, ["echo", "hi"], protocols=[protocol])
    assert (outcome.protocol, bytes(outcome.stdout), bytes(outcome.error)) == (
        protocol, b"hi\n", b"")


def test_our_client_ping_is_echoed_by_the_go_server(go_server: GoPeerServer) -> None:
    outcome = run_on_go(go_server, ["cat"], stdin=b"ping\n", ping_server=True)
    assert len(outcome.pongs) == 1
    assert outcome.pongs[0].sent_at is not None
    assert outcome.stdout == b"ping\n"
    assert outcome.sent is not None and outcome.received is not None
    # Our PING (odd id) went out, and the only PING that came back is its echo.
    assert outcome.sent.control_frames["PingFrame"] == 1
    assert outcome.received.control_frames["PingFrame"] == 1


def test_go_server_pings_are_echoed_by_our_session(kpeer: Path) -> None:
    with GoPeerServer(kpeer, ping_interval="10ms") as server:
        outcome = run_on_go(server, ["cat"], stdin=b"", await_pings=PINGS)
        server.close()
        stderr = server.stderr_text()
    assert outcome.pings_received >= PINGS
    pongs = [int(n) for n in re.findall(r"^PONGS (\d+)$", stderr, re.MULTILINE)]
    assert len(pongs) == 1, stderr
    # Go's ticker sends ping k+1 only after the echo of ping k came back and was counted,
    # so when our stdin closed (after ping PINGS) at least PINGS - 1 echoes were counted;
    # it can count no echo of a ping we did not receive.
    assert PINGS - 1 <= pongs[0] <= outcome.pings_received
    assert outcome.sent is not None
    assert outcome.sent.control_frames["PingFrame"] >= PINGS  # our echoes, on the wire


def test_strict_flow_control_stalls_at_64_kib_against_go(go_server: GoPeerServer) -> None:
    """Why advisory is the default: Go never sends WINDOW_UPDATE, so credit never returns."""
    exec_ = ClientExec(go_server.port, ["cat"], stdin=b"", strict_flow_control=True)
    client = exec_.client
    with connect(go_server.port) as sock, SocketPump(sock, client) as pump:
        pump.run(exec_.on_events, until=lambda: client.ready, timeout=TIMEOUT)
        window = os.urandom(SPDY_WINDOW)
        for offset in range(0, SPDY_WINDOW, CHUNK):
            client.send_data(STDIN, window[offset:offset + CHUNK])
        # The whole window comes back through cat: Go has read every byte of it...
        pump.run(exec_.on_events, until=lambda: len(exec_.outcome.stdout) == SPDY_WINDOW,
                 timeout=TIMEOUT)
        assert exec_.outcome.stdout == window
        # ...and still granted nothing: one more byte is beyond the window.
        with pytest.raises(LocalProtocolError, match="window"):
            client.send_data(STDIN, b"x")
        assert pump.received is not None and pump.sent is not None
        assert pump.received.control_frames["WindowUpdateFrame"] == 0
        # Strict mode does give credit back for what it received (Go ignores it).
        assert pump.sent.control_frames["WindowUpdateFrame"] >= 1
        client.close_channel(STDIN)
        pump.run(exec_.on_events, until=lambda: exec_.outcome.closed is not None,
                 timeout=TIMEOUT)
        assert exec_.outcome.error == SUCCESS_JSON
        client.close()
        pump.finish(timeout=TIMEOUT)


@pytest.mark.parametrize("protocol", [V3, "v4.channel.k8s.io"])
def test_our_client_resize_events_reach_the_go_command(go_server: GoPeerServer,
                                                       protocol: str) -> None:
    exec_ = ClientExec(go_server.port, ["size"], stdin=b"", stderr=False, tty=True,
                       protocols=[protocol])
    client, outcome = exec_.client, exec_.outcome
    with connect(go_server.port) as sock, SocketPump(sock, client) as pump:
        pump.run(exec_.on_events, until=lambda: client.ready, timeout=TIMEOUT)
        client.send_data(RESIZE, encode_resize(80, 24))
        client.send_data(RESIZE, encode_resize(132, 43))
        # Resize and stdin are different streams: wait for the echo before closing stdin.
        pump.run(exec_.on_events, until=lambda: outcome.stdout.count(b"\n") == 2,
                 timeout=TIMEOUT)
        client.close_channel(STDIN)
        pump.run(exec_.on_events, until=lambda: outcome.closed is not None, timeout=TIMEOUT)
        client.close()
        pump.finish(exec_.on_events, timeout=TIMEOUT)
    assert outcome.protocol == protocol
    assert outcome.stdout == b"80x24\n132x43\n"
    assert parse_exit_status(outcome.error, outcome.version) == Exited(0)


def test_our_client_reports_a_rejected_upgrade_with_its_status(kpeer: Path) -> None:
    with GoPeerServer(kpeer, reject_spdy=403) as server:
        outcome = ClientExec(server.port, ["cat"], stdin=b"").run(tap=False)
    assert outcome.rejected is not None
    error = outcome.rejected.error
    assert error.status_code == 403
    assert error.status is not None
    assert error.status.message == "spdy disabled by test"


# =========================================================================== our server


class BuiltinExecServer:
    """Our :class:`SpdyExecServer` serving one exec with kpeer's built-in commands.

    Commands (as ``tests/peers/go/kpeer/commands.go``): ``cat``, ``echo ARGS``,
    ``exit N``, ``fail MSG``, ``source N``, ``sink``, ``size [N]`` (prints each resize
    event as ``WxH`` until stdin ends or, test-only, N events were printed); plus
    ``ping-pong N`` (test-only):
    ping the client once, and exit 0 once its pong and N of its pings have arrived.
    Output is written in 32 KiB chunks, as kpeer's commands write.
    """

    def __init__(self) -> None:
        self.server = SpdyExecServer()
        self.argv: list[str] = []
        self.result: Status | None = None
        self.pings_received = 0
        self.pongs: list[PongReceived] = []
        self.stdin_ended = False
        self.sent: FrameTap | None = None
        self.received: FrameTap | None = None
        self._running = False
        self._digest = hashlib.sha256()
        self._stdin_bytes = 0
        self._source_left = 0
        self._resize = ResizeDecoder()
        self._sizes_printed = 0
        self._pump: SocketPump | None = None

    def __call__(self, sock: socket.socket) -> None:
        """Serve the exec on ``sock`` (a :class:`OneConnectionServer` handler)."""
        with SocketPump(sock, self.server) as pump:
            self._pump = pump
            self.sent, self.received = pump.sent, pump.received
            pump.run(self.on_events, until=lambda: self.server.request is not None,
                     timeout=TIMEOUT)
            if not self._accept():
                pump.finish(self.on_events, timeout=TIMEOUT)
                return
            pump.run(self.on_events, produce=self._produce, timeout=TIMEOUT,
                     until=lambda: self.result is not None)
            assert self.result is not None
            self.server.send_status(self.result)
            self.server.finish()
            pump.finish(self.on_events, timeout=TIMEOUT)

    def _accept(self) -> bool:
        server, request = self.server, self.server.request
        assert request is not None
        if not server.acceptable:
            server.refuse()
            return False
        query = request.query
        self.argv = [value for name, value in query if name == "command"]
        self.on_events(server.accept(
            stdin=query_bool(query, "stdin", "input"), stdout=query_bool(query, "stdout"),
            stderr=query_bool(query, "stderr"), tty=query_bool(query, "tty"),
            now=time.monotonic()))
        return True

    # ------------------------------------------------------------------ events

    def on_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ExecReady):
                self._start()
            elif isinstance(event, ChannelData) and event.channel == STDIN:
                self._on_stdin(event.data)
            elif isinstance(event, ChannelData) and event.channel == RESIZE:
                self._on_resize(event.data)
            elif isinstance(event, ChannelEnded) and event.channel == STDIN:
                self.stdin_ended = True
                self._on_stdin_end()
            elif isinstance(event, PingReceived):
                self.pings_received += 1
                self._check_ping_pong()
            elif isinstance(event, PongReceived):
                self.pongs.append(event)
                self._check_ping_pong()

    # ------------------------------------------------------------------ commands

    def _start(self) -> None:
        self._running = True
        name, args = (self.argv[0], self.argv[1:]) if self.argv else ("", [])
        if name == "exit":
            code = int(args[0])
            self.result = exit_code_status(code, self.argv) if code else success_status()
        elif name == "fail":
            self.result = internal_error_status(
                f"error executing command in container: {' '.join(args)}")
        elif name == "echo":
            self.server.send_data(STDOUT, (" ".join(args) + "\n").encode())
            self.result = success_status()
        elif name == "source":
            self._source_left = int(args[0])
        elif name == "ping-pong":
            self.server.ping(time.monotonic())
        elif name in ("cat", "sink", "size"):
            if self.stdin_ended:  # no stdin stream, or it already ended
                self._on_stdin_end()
        else:
            self.result = internal_error_status(f"no command {name!r} in this test server")

    def _on_stdin(self, data: bytes) -> None:
        if self.argv[:1] == ["cat"]:
            self.server.send_data(STDOUT, data)
        elif self.argv[:1] == ["sink"]:
            self._digest.update(data)
            self._stdin_bytes += len(data)

    def _on_resize(self, data: bytes) -> None:
        if self.argv[:1] != ["size"] or self.result is not None:
            return
        for size in self._resize.feed(data):
            self.server.send_data(STDOUT, f"{size.width}x{size.height}\n".encode())
            self._sizes_printed += 1
        if self.argv[1:] and self._sizes_printed >= int(self.argv[1]):
            self.result = success_status()

    def _on_stdin_end(self) -> None:
        if not self._running or self.result is not None:
            return
        if self.argv[:1] == ["sink"]:
            self.server.send_data(STDOUT,
                                  f"{self._stdin_bytes} {self._digest.hexdigest()}\n".encode())
            self.result = success_status()
        elif self.argv[:1] in (["cat"], ["size"]):
            self.result = success_status()

    def _check_ping_pong(self) -> None:
        if (self._running and self.argv[:1] == ["ping-pong"] and self.pongs
                and self.pings_received >= int(self.argv[1]) and self.result is None):
            self.result = success_status()

    def _produce(self) -> None:
        pump = self._pump
        assert pump is not None
        if not self._running or self.argv[:1] != ["source"] or self.result is not None:
            return
        total = int(self.argv[1])
        while self._source_left and len(pump.outbox) < OUTBOX_HIGH_WATER:
            offset = total - self._source_left
            size = min(CHUNK, self._source_left)
            phase = offset % 251
            self.server.send_data(STDOUT, _SOURCE_PATTERN[phase:phase + size])
            self._source_left -= size
            pump.collect()
        if not self._source_left:
            self.result = success_status()


# One period of slack lets every chunk start at any phase (as kpeer's sourceCommand).
_SOURCE_PATTERN = source_bytes(CHUNK + 251)


def run_go_client(kpeer: Path, query: str, *, stdin: bytes | None = None,
                  protocols: Sequence[str] = (), ping_interval: str | None = None,
                  resize: Sequence[tuple[int, int]] = ()
                  ) -> tuple[SpdyClientResult, BuiltinExecServer]:
    """Run ``kpeer spdy-client`` against a :class:`BuiltinExecServer` on 127.0.0.1."""
    handler = BuiltinExecServer()
    with OneConnectionServer(handler, timeout=TIMEOUT) as listener:
        url = f"http://127.0.0.1:{listener.port}/exec?{query}"
        try:
            result = run_spdy_client(kpeer, url, stdin=stdin, protocols=protocols,
                                     ping_interval=ping_interval, resize=resize,
                                     timeout=TIMEOUT)
        except SpdyClientError:
            listener.join()  # our server's own failure explains the client's
            raise
        listener.join()
    return result, handler


def test_go_client_cat_8_mib_each_way_byte_exact_without_window_updates(kpeer: Path) -> None:
    data = os.urandom(EIGHT_MIB)
    result, server = run_go_client(kpeer, "command=cat&stdin=true&stdout=true&stderr=true",
                                   stdin=data)
    assert result.protocol == "v4.channel.k8s.io"
    assert result.stdout_bytes == EIGHT_MIB
    assert sha256(result.stdout) == sha256(data)
    assert result.error == SUCCESS_JSON.decode()
    assert server.stdin_ended  # the Go client half-closed stdin after the 8 MiB
    assert_no_window_updates(server.sent, server.received)
    assert server.sent is not None and server.received is not None
    assert server.received.data_bytes == EIGHT_MIB
    assert server.sent.data_bytes == EIGHT_MIB + len(SUCCESS_JSON)


def test_go_client_sink_8_mib_hashed_by_our_server(kpeer: Path) -> None:
    data = os.urandom(EIGHT_MIB)
    result, _server = run_go_client(kpeer, "command=sink&stdin=true&stdout=true", stdin=data)
    assert result.stdout == f"{EIGHT_MIB} {sha256(data)}\n".encode()
    assert result.error == SUCCESS_JSON.decode()


def test_go_client_receives_8_mib_from_our_source(kpeer: Path) -> None:
    result, server = run_go_client(
        kpeer, f"command=source&command={EIGHT_MIB}&stdout=true&stderr=true")
    assert result.stdout_bytes == EIGHT_MIB
    assert sha256(result.stdout) == sha256(source_bytes(EIGHT_MIB))
    assert result.stderr_bytes == 0
    assert_no_window_updates(server.sent, server.received)


@pytest.mark.parametrize("code", [0, 3, 255])
def test_go_client_gets_our_v4_exit_status_byte_for_byte(kpeer: Path, code: int) -> None:
    result, _server = run_go_client(kpeer, f"command=exit&command={code}&stdout=true")
    assert result.protocol == "v4.channel.k8s.io"
    assert result.error.encode() == (SUCCESS_JSON if code == 0 else exit_json(code))


@pytest.mark.parametrize("protocol", [V2, V3])
def test_go_client_gets_our_plain_text_failures_on_v2_and_v3(kpeer: Path,
                                                             protocol: str) -> None:
    result, _server = run_go_client(
        kpeer, "command=fail&command=disk&command=on&command=fire&stdout=true",
        protocols=[protocol])
    assert result.protocol == protocol
    assert result.error == FAILURE_TEXT


@pytest.mark.parametrize("protocol", [V2, V3])
def test_go_client_success_on_v2_and_v3_is_an_empty_error_stream(kpeer: Path,
                                                                 protocol: str) -> None:
    result, _server = run_go_client(kpeer, "command=echo&command=hi&stdout=true",
                                    protocols=[protocol])
    assert (result.protocol, result.stdout, result.error) == (protocol, b"hi\n", "")


def test_go_client_resize_events_reach_our_server(kpeer: Path) -> None:
    result, _server = run_go_client(
        kpeer, "command=size&command=2&stdout=true&tty=true", protocols=[V3],
        resize=[(80, 24), (132, 43)])
    assert result.protocol == V3
    assert result.stdout == b"80x24\n132x43\n"
    assert result.error == ""


def test_pings_both_ways_between_go_client_and_our_server(kpeer: Path) -> None:
    result, server = run_go_client(kpeer, f"command=ping-pong&command={PINGS}&stdout=true",
                                   ping_interval="10ms")
    assert result.error == SUCCESS_JSON.decode()
    # Our session echoed the Go client's pings: Go counts the echo of ping k before it
    # sends ping k+1, and our server ended the exec only after ping PINGS.
    assert server.pings_received >= PINGS
    assert PINGS - 1 <= result.pongs <= server.pings_received
    # The Go client echoed our ping (even id): exactly one pong, with our timestamp.
    assert len(server.pongs) == 1
    assert server.pongs[0].sent_at is not None
    assert server.sent is not None
    assert server.sent.control_frames["PingFrame"] >= 1 + PINGS  # ours and the echoes


# =========================================================================== docs/spdy.md

DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "spdy.md"


def test_docs_examples_run_and_print_what_the_page_says(
        capsys: pytest.CaptureFixture[str]) -> None:
    page = DOCS_PAGE.read_text(encoding="utf-8")
    examples = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    [printed] = re.findall(r"It prints:\n\n```text\n(.*?)```", page, re.DOTALL)
    assert len(examples) == 2
    exec(compile(examples[0], f"{DOCS_PAGE}:example-1", "exec"), {"__name__": "example"})
    assert capsys.readouterr().out == printed
    exec(compile(examples[1], f"{DOCS_PAGE}:example-2", "exec"), {"__name__": "example"})
    assert "StreamEnded(stream_id=1)" in capsys.readouterr().out
