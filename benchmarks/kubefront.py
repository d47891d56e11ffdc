"""A tiny kube-apiserver stand-in in front of the Go test peer, for kubectl and kstream alike.

kubectl asks for discovery and for the pod before it execs; the Go peer (``kpeer serve``)
only speaks exec. This front answers ``GET /api``, ``/apis``, ``/api/v1`` and the pod GET
itself (documents shaped like ``kstream serve``'s), and hands every upgrade request
to the Go peer unchanged, then copies the bytes both ways with ``os.splice`` (kernel to
kernel through a pipe: no Python copy, so the front costs every client the same little).

Every client of a benchmark (kstream, kubectl, the official client) goes through the same
front to the same peer, and every exec is timed here, by the same clock: from the upgrade
request's arrival to the end of both directions. Plain HTTP without credentials: kubectl
sends no token over HTTP and needs none; a server behind the front that wants a bearer
token (``kstream serve``) gets it added to each upgrade request (``peer_token``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final

__all__ = ["ExecTiming", "KubeFront"]

_SPLICE_SIZE: Final = 1 << 20
_HEAD_LIMIT: Final = 64 * 1024
_POD_PATH: Final = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/?]+)$")
_CONTAINER: Final = "main"
_DISCOVERY: Final[dict[str, object]] = {
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [
                 {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
         "verbs": ["get", "list"], "shortNames": ["po"]},
        {"name": "pods/exec", "singularName": "", "namespaced": True,
         "kind": "PodExecOptions", "verbs": ["create", "get"]}]},
}


def _pod(namespace: str, name: str) -> dict[str, object]:
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "uid": "0000-bench"},
        "spec": {"containers": [{"name": _CONTAINER, "image": "bench"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": _CONTAINER, "ready": True, "restartCount": 0, "image": "bench",
             "imageID": "", "state": {"running": {}}}]},
    }


@dataclass
class ExecTiming:
    """One exec seen by the front.

    Attributes:
        target: the request target.
        started: ``time.perf_counter()`` when the request head arrived.
        finished: when both directions had ended (0 while running).
        to_client: bytes the peer sent after the request (response head included).
        to_peer: bytes the client sent after the request head.
    """

    target: str
    started: float
    finished: float = 0.0
    to_client: int = 0
    to_peer: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def seconds(self) -> float:
        """Duration of the exec connection."""
        return self.finished - self.started


class KubeFront:
    """The front, as a context manager: ``with KubeFront(peer_port, workdir) as front``.

    Attributes:
        port: where it listens on 127.0.0.1.
        url: ``http://127.0.0.1:<port>``.
        kubeconfig: a kubeconfig pointing at it (namespace ``default``, no credentials).
        execs: an :class:`ExecTiming` per upgrade request, in arrival order.
    """

    def __init__(self, peer_port: int, directory: Path, *, peer_token: str = "",
                 name: str = "front") -> None:
        self._peer_port = peer_port
        # A server behind the front that wants a bearer token (kstream serve) gets it in
        # every upgrade request; kubectl itself sends none over plain HTTP.
        self._peer_token = peer_token
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.kubeconfig = directory / f"kubeconfig-{name}"
        self.execs: list[ExecTiming] = []
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> KubeFront:
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "bench",
            "clusters": [{"name": "bench", "cluster": {"server": self.url}}],
            "users": [{"name": "bench", "user": {}}],
            "contexts": [{"name": "bench", "context": {
                "cluster": "bench", "user": "bench", "namespace": "default"}}],
        }))
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._closed = True
        # shutdown() wakes the accept() blocked in the thread on Linux.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)

    def wait_exec(self, index: int, timeout: float) -> ExecTiming:
        """Wait for exec number ``index`` (0-based) to finish and return its timing."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                timing = self.execs[index] if len(self.execs) > index else None
            if timing is not None:
                if not timing.done.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"exec #{index} did not finish in {timeout} s")
                return timing
            if time.monotonic() > deadline:
                raise TimeoutError(f"exec #{index} never arrived in {timeout} s")
            time.sleep(0.01)

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffered = b""
        try:
            while True:
                head, buffered = self._read_head(connection, buffered)
                if head is None:
                    return
                request_line, headers = self._parse(head)
                if "upgrade" in headers:
                    if self._peer_token:
                        head = head[:-2] + (f"Authorization: Bearer {self._peer_token}"
                                            "\r\n\r\n").encode()
                    self._proxy(connection, head + buffered, request_line.split(" ")[1])
                    return
                length = int(headers.get("content-length", "0"))
                while len(buffered) < length:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                buffered = buffered[length:]
                connection.sendall(self._answer(request_line))
        except OSError:
            return
        finally:
            connection.close()

    @staticmethod
    def _read_head(connection: socket.socket, buffered: bytes) -> tuple[bytes | None, bytes]:
        while b"\r\n\r\n" not in buffered:
            if len(buffered) > _HEAD_LIMIT:
                return None, b""
            chunk = connection.recv(65536)
            if not chunk:
                return None, b""
            buffered += chunk
        end = buffered.index(b"\r\n\r\n") + 4
        return buffered[:end], buffered[end:]

    @staticmethod
    def _parse(head: bytes) -> tuple[str, dict[str, str]]:
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        return lines[0], headers

    @staticmethod
    def _answer(request_line: str) -> bytes:
        method, target = request_line.split(" ")[:2]
        path = target.split("?")[0]
        document: object | None = None
        if method == "GET" and path in _DISCOVERY:
            document = _DISCOVERY[path]
        elif method == "GET" and (match := _POD_PATH.match(path)):
            document = _pod(match.group(1), match.group(2))
        if document is None:
            body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "reason": "NotFound", "code": 404}).encode()
            status = "404 Not Found"
        else:
            body, status = json.dumps(document).encode(), "200 OK"
        return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    def _proxy(self, client: socket.socket, request: bytes, target: str) -> None:
        timing = ExecTiming(target, time.perf_counter())
        with self._lock:
            self.execs.append(timing)
        try:
            with socket.create_connection(("127.0.0.1", self._peer_port)) as peer:
                peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                peer.sendall(request)
                upstream = threading.Thread(target=_pipe_counting,
                                            args=(client, peer, timing, "to_peer"))
                upstream.start()
                _pipe_counting(peer, client, timing, "to_client")
                upstream.join()
        finally:
            timing.finished = time.perf_counter()
            timing.done.set()


def _pipe_counting(source: socket.socket, sink: socket.socket, timing: ExecTiming,
                   counter: str) -> None:
    """Copy ``source`` to ``sink`` until EOF with splice(2), then half-close ``sink``."""
    read_end, write_end = os.pipe()
    total = 0
    try:
        while True:
            moved = os.splice(source.fileno(), write_end, _SPLICE_SIZE)
            if moved == 0:
                break
            left = moved
            while left:
                left -= os.splice(read_end, sink.fileno(), left)
            total += moved
    except OSError:
        pass
    finally:
        os.close(read_end)
        os.close(write_end)
        setattr(timing, counter, total)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
