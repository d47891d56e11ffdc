"""A minimal, TEST-ONLY stand-in for kube-apiserver + kubelet, for real kubectl over SPDY.

It serves exactly what ``kubectl exec`` (1.27 .. 1.33) asks for, found with
``kubectl -v=8``:

* ``GET /api``, ``GET /apis``, ``GET /api/v1`` -- discovery (core v1 with ``pods`` and
  ``pods/exec``, no groups);
* ``GET /api/v1/namespaces/{ns}/pods/{name}`` -- a Running pod with one container ``main``;
* ``POST /api/v1/namespaces/{ns}/pods/{name}/exec?...`` with ``Upgrade: SPDY/3.1`` -- run by
  :class:`kstream._exec.spdy_server.SpdyExecServer`: the argv runs as a REAL local process
  (``asyncio.create_subprocess_exec``, so never through a shell unless the argv is one),
  its stdin/stdout/stderr pumped over the streams, its exit code reported with
  ``exit_code_status`` / ``success_status``.

A WebSocket upgrade (kubectl >= 1.30 tries one first) is answered 400, so kubectl falls
back to SPDY. Every request needs ``Authorization: Bearer <token>``; kubectl only sends a
token over TLS, so the stub serves HTTPS with a throw-away self-signed certificate made by
the ``openssl`` command, and writes a kubeconfig trusting it.

Threads and sockets are fine here (test code): one thread runs an asyncio loop with the
server; :meth:`KubeApiStub.close` cancels every connection, kills every process and joins
the thread. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
import signal
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import h11

from kstream._channels import STDERR, STDIN, STDOUT
from kstream._errors import KstreamError
from kstream._events import (
    ChannelData,
    ChannelEnded,
    ConnectionClosed,
    Event,
    UpgradeRequested,
)
from kstream._exec.spdy import ExecReady
from kstream._exec.spdy_server import SpdyExecServer
from kstream._http import query_bool, status_response
from kstream._status import exit_code_status, internal_error_status, success_status

__all__ = ["ExecRecord", "KubeApiStub", "make_certificate"]

_EXEC_PATH = re.compile(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/exec")
_POD_PATH = re.compile(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)")
_CONTAINER = "main"
_READ_SIZE = 64 * 1024
_HEAD_LIMIT = 64 * 1024

_DISCOVERY: dict[str, object] = {
    "/api": {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    },
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
             "verbs": ["get", "list"], "shortNames": ["po"]},
            {"name": "pods/exec", "singularName": "", "namespaced": True,
             "kind": "PodExecOptions", "verbs": ["create", "get"]},
        ],
    },
}


def _pod(namespace: str, name: str) -> dict[str, object]:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "uid": "0000-stub"},
        "spec": {"containers": [{"name": _CONTAINER, "image": "stub"}]},
        "status": {"phase": "Running",
                   "containerStatuses": [{"name": _CONTAINER, "ready": True,
                                          "restartCount": 0, "image": "stub",
                                          "imageID": "", "state": {"running": {}}}]},
    }


@dataclass
class ExecRecord:
    """What the stub saw of one exec, for the tests' assertions.

    Attributes:
        argv: the command run.
        protocol: the negotiated ``X-Stream-Protocol-Version``.
        offered: the protocols the client offered.
        query: the decoded query parameters.
        exit_code: the process's exit code (None if it never ran).
        stdin_bytes: how many stdin bytes reached the process.
        events: names of the exec connection's events, in order.
        started: set once the process runs.
        finished: set once the exec connection is over (process reaped).
    """

    argv: list[str]
    protocol: str = ""
    offered: tuple[str, ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    exit_code: int | None = None
    stdin_bytes: int = 0
    events: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """Create a self-signed certificate for 127.0.0.1 with the ``openssl`` command.

    Args:
        directory: where to write ``stub.crt`` and ``stub.key``.

    Returns:
        The certificate and key paths.
    """
    cert, key = directory / "stub.crt", directory / "stub.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30)
    return cert, key


class KubeApiStub:
    """The stub server; use as a context manager.

    Attributes:
        port: the 127.0.0.1 port it listens on.
        token: the bearer token it requires.
        kubeconfig: path of a kubeconfig pointing kubectl at it (namespace ``default``).
        execs: one :class:`ExecRecord` per exec upgrade accepted.
        requests: ``"METHOD target"`` of every request seen, in order.
    """

    def __init__(self, directory: Path, *, token: str | None = None,
                 exec_timeout: float = 60.0) -> None:
        """Prepare (not start) the stub.

        Args:
            directory: scratch directory for the certificate and kubeconfig.
            token: the bearer token to require (random by default).
            exec_timeout: most seconds one exec connection may live.
        """
        self._directory = directory
        self.token = token or secrets.token_urlsafe(24)
        self._exec_timeout = exec_timeout
        self.port = 0
        self.kubeconfig = directory / "kubeconfig"
        self.execs: list[ExecRecord] = []
        self.requests: list[str] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._exec_added = threading.Condition()
        self._processes: set[asyncio.subprocess.Process] = set()

    def wait_for_exec(self, index: int, timeout: float) -> ExecRecord:
        """Wait until exec number ``index`` (0-based) was accepted and return its record.

        Raises:
            TimeoutError: it did not come within ``timeout`` seconds.
        """
        with self._exec_added:
            if not self._exec_added.wait_for(lambda: len(self.execs) > index, timeout):
                raise TimeoutError(f"exec #{index} did not arrive within {timeout} s")
            return self.execs[index]

    def _add_exec(self, record: ExecRecord) -> None:
        with self._exec_added:
            self.execs.append(record)
            self._exec_added.notify_all()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> KubeApiStub:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        """Create the certificate, start the server thread and write the kubeconfig."""
        cert, key = make_certificate(self._directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        context.set_alpn_protocols(["http/1.1"])  # upgrades cannot ride on HTTP/2
        self._thread = threading.Thread(target=self._run, args=(context,),
                                        name="kubeapi-stub", daemon=True)
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("stub server did not start")
        if self._startup_error is not None:
            raise RuntimeError("stub server failed to start") from self._startup_error
        ca = base64.b64encode(cert.read_bytes()).decode()
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stub", "cluster": {
                "server": f"https://127.0.0.1:{self.port}",
                "certificate-authority-data": ca}}],
            "users": [{"name": "stub", "user": {"token": self.token}}],
            "contexts": [{"name": "stub", "context": {
                "cluster": "stub", "user": "stub", "namespace": "default"}}],
            "current-context": "stub",
        }))

    def close(self) -> None:
        """Stop serving: cancel connections, kill processes, join the thread (bounded)."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already finished
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)
            if self._thread.is_alive():
                raise RuntimeError("stub server thread did not stop")

    def _run(self, context: ssl.SSLContext) -> None:
        try:
            asyncio.run(self._main(context))
        except BaseException as error:  # reported to start() or lost at shutdown
            self._startup_error = error
            self._started.set()

    async def _main(self, context: ssl.SSLContext) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=context,
                                            limit=_HEAD_LIMIT)
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for process in list(self._processes):
                await _kill(process)
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            lowered = head.lower()
            if b"\r\nupgrade: spdy/3.1" in lowered:
                await asyncio.wait_for(self._exec(head, reader, writer), self._exec_timeout)
            else:
                await self._plain_http(head, reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                TimeoutError, ssl.SSLError, h11.ProtocolError, KstreamError):
            pass  # the client went away or misbehaved: just drop the connection
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)

    # ------------------------------------------------------------------ plain HTTP

    def _authorized(self, headers: tuple[tuple[str, str], ...]) -> bool:
        expected = f"Bearer {self.token}"
        return any(name == "authorization" and value == expected for name, value in headers)

    async def _plain_http(self, head: bytes, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        connection.receive_data(head)
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(reader.read(_READ_SIZE), 30)
                connection.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return
            if not isinstance(event, h11.Request):
                continue
            headers = tuple((name.decode().lower(), value.decode())
                            for name, value in event.headers)
            target = event.target.decode()
            self.requests.append(f"{event.method.decode()} {target}")
            status, body = self._route(event.method.decode(), target, headers)
            await _skip_body(connection, reader)
            writer.write(connection.send(h11.Response(status_code=status, headers=[
                ("Content-Type", "application/json"), ("Content-Length", str(len(body)))])))
            writer.write(connection.send(h11.Data(data=body)))
            writer.write(connection.send(h11.EndOfMessage()))
            await writer.drain()
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    def _route(self, method: str, target: str,
               headers: tuple[tuple[str, str], ...]) -> tuple[int, bytes]:
        if not self._authorized(headers):
            return 401, status_response(401, "Unauthorized")[1]
        if any(name == "upgrade" for name, _ in headers):
            return 400, status_response(400, "only SPDY/3.1 upgrades are served")[1]
        path = target.split("?", 1)[0]
        if method == "GET" and path in _DISCOVERY:
            return 200, json.dumps(_DISCOVERY[path]).encode()
        pod = _POD_PATH.fullmatch(path)
        if method == "GET" and pod is not None:
            return 200, json.dumps(_pod(pod.group(1), pod.group(2))).encode()
        return 404, status_response(404, f"{path} not found")[1]

    # ------------------------------------------------------------------ exec

    async def _exec(self, head: bytes, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        server = SpdyExecServer()
        events = server.receive_data(head)
        while not any(isinstance(event, UpgradeRequested) for event in events):
            data = await asyncio.wait_for(reader.read(_READ_SIZE), 30)
            events = server.receive_data(data)
            if not data or any(isinstance(event, ConnectionClosed) for event in events):
                return  # the client left before finishing its request
        request = next(event for event in events if isinstance(event, UpgradeRequested))
        self.requests.append(f"{request.method} {request.target}")
        exec_ = _Exec(self, server, request, reader, writer)
        await exec_.run()


class _Exec:
    """One exec connection: upgrade decision, then the stream pump."""

    def __init__(self, stub: KubeApiStub, server: SpdyExecServer, request: UpgradeRequested,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._stub = stub
        self._server = server
        self._request = request
        self._reader = reader
        self._writer = writer
        self._ready = asyncio.Event()
        self._stdin: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._peer_gone = asyncio.Event()
        self._record = ExecRecord(argv=[c for k, c in request.query if k == "command"],
                                  offered=request.protocols, query=request.query)

    async def _flush(self) -> None:
        data = self._server.data_to_send()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    def _refusal(self) -> tuple[int, str] | None:
        if not self._stub._authorized(self._request.headers):
            return 401, "Unauthorized"
        if _EXEC_PATH.fullmatch(self._request.path) is None:
            return 404, f"{self._request.path} not found"
        containers = [value for key, value in self._request.query if key == "container"]
        if containers and containers[0] != _CONTAINER:
            return 400, f"container {containers[0]} is not valid for pod"
        if not self._record.argv:
            return 400, "you must specify at least one command for the container"
        return None

    async def run(self) -> None:
        refusal = self._refusal()
        query = self._request.query
        stdin = query_bool(query, "stdin", "input")
        stdout = query_bool(query, "stdout", "output")
        stderr = query_bool(query, "stderr", "error")
        tty = query_bool(query, "tty")
        if refusal is None and not (stdin or stdout or stderr):
            refusal = 400, "you must specify at least one of stdin, stdout, stderr"
        if refusal is not None:
            self._server.reject(refusal[0], message=refusal[1])
        elif not self._server.acceptable:
            self._server.refuse()  # no common protocol (403) or no upgrade headers (400)
        if refusal is not None or not self._server.acceptable:
            await self._flush()
            return
        loop = asyncio.get_running_loop()
        self._handle(self._server.accept(stdin=stdin, stdout=stdout, stderr=stderr, tty=tty,
                                         now=loop.time()))
        self._record.protocol = self._server.protocol
        self._stub._add_exec(self._record)
        await self._flush()
        pump = asyncio.create_task(self._pump_socket())
        try:
            await asyncio.wait_for(self._ready.wait(), 30)
            await self._run_process(stdin=stdin, stdout=stdout, stderr=stderr and not tty,
                                    tty=tty)
            self._server.finish()
            await self._flush()
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            self._record.finished.set()

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            self._record.events.append(type(event).__name__)
            if isinstance(event, ExecReady):
                self._ready.set()
            elif isinstance(event, ChannelData) and event.channel == STDIN:
                self._stdin.put_nowait(event.data)
            elif isinstance(event, ChannelEnded) and event.channel == STDIN:
                self._stdin.put_nowait(None)
            elif isinstance(event, ConnectionClosed):
                self._peer_gone.set()
                self._stdin.put_nowait(None)
            # Resize data is ignored: there is no pseudo-terminal here.

    async def _pump_socket(self) -> None:
        try:
            while not self._peer_gone.is_set():
                data = await self._reader.read(_READ_SIZE)
                try:
                    self._handle(self._server.receive_data(data))
                finally:
                    await self._flush()  # a GOAWAY PROTOCOL_ERROR too, if it raised
                if not data:
                    return
        finally:
            # However the reading ends, nothing more comes from the client.
            self._peer_gone.set()
            self._stdin.put_nowait(None)

    async def _run_process(self, *, stdin: bool, stdout: bool, stderr: bool,
                           tty: bool) -> None:
        argv = self._record.argv
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
                stderr=(asyncio.subprocess.STDOUT if tty and stdout else
                        asyncio.subprocess.PIPE if stderr else asyncio.subprocess.DEVNULL),
                start_new_session=True)
        except OSError as error:
            self._server.send_status(internal_error_status(
                f"error executing command in container: {error}"))
            return
        self._stub._processes.add(process)
        self._record.started.set()
        watcher = asyncio.create_task(self._kill_when_peer_gone(process))
        try:
            pumps = [self._feed_stdin(process)] if stdin else []
            if stdout:
                assert process.stdout is not None
                pumps.append(self._copy_output(process.stdout, STDOUT))
            if stderr:
                assert process.stderr is not None
                pumps.append(self._copy_output(process.stderr, STDERR))
            await asyncio.gather(*pumps)
            code = await process.wait()
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await _kill(process)
            self._stub._processes.discard(process)
        if code < 0:  # killed by a signal: report it the way a shell would
            code = 128 - code
        self._record.exit_code = code
        self._server.send_status(success_status() if code == 0 else
                                 exit_code_status(code, argv))

    async def _kill_when_peer_gone(self, process: asyncio.subprocess.Process) -> None:
        # kubectl went away (Ctrl-C, or a broken connection): the exec is over.
        await self._peer_gone.wait()
        await _kill(process)

    async def _feed_stdin(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None
        try:
            while (chunk := await self._stdin.get()) is not None:
                self._record.stdin_bytes += len(chunk)
                process.stdin.write(chunk)
                await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the process stopped reading: drop the rest, as a kubelet does
        finally:
            process.stdin.close()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await process.stdin.wait_closed()

    async def _copy_output(self, pipe: asyncio.StreamReader, channel: int) -> None:
        while chunk := await pipe.read(32 * 1024):
            self._server.send_data(channel, chunk)
            await self._flush()
        self._server.close_channel(channel)
        await self._flush()


async def _skip_body(connection: h11.Connection, reader: asyncio.StreamReader) -> None:
    """Read and drop a request body (GETs have none), bounded in time."""
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await asyncio.wait_for(reader.read(_READ_SIZE), 30))
        elif not isinstance(event, h11.Data):
            return  # EndOfMessage, or PAUSED after an upgrade request we will refuse


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            process.send_signal(signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 10)

