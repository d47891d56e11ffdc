"""Pod-side TCP servers for the port-forward tests (test-only helper).

``kstream serve`` forwards a pod port to ``127.0.0.1:PORT``: these are what listens
there. Each runs on its own thread with blocking sockets, so the same servers serve the
asyncio and the trio tests, and kubectl's.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        with contextlib.suppress(OSError):
            while data := sock.recv(262144):
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)


class _Source(socketserver.BaseRequestHandler):
    """Sends ``server.size`` bytes of a known pattern, then closes."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        size: int = self.server.size  # type: ignore[attr-defined]
        chunk = bytes(range(256)) * 256
        with contextlib.suppress(OSError):
            sent = 0
            while sent < size:
                piece = chunk[:size - sent]
                sock.sendall(piece)
                sent += len(piece)
            sock.shutdown(socket.SHUT_WR)


class PodServer:
    """A TCP server on ``127.0.0.1`` (a free port), on a thread.

    Args:
        kind: ``"echo"`` (returns what it reads, half-closes after EOF) or ``"source"``
            (sends ``size`` bytes, then EOF).
        size: for ``"source"``.
    """

    def __init__(self, kind: str = "echo", size: int = 0) -> None:
        handler: Any = _Echo if kind == "echo" else _Source
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.size = size  # type: ignore[attr-defined]
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PodServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def dead_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class CuttingProxy:
    """A TCP proxy to ``127.0.0.1:upstream`` whose connections :meth:`cut` drops at once.

    Simulates an upgraded connection that dies (a server restart, an idle timeout)."""

    def __init__(self, upstream: int) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        return self

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self._upstream))
                with self._lock:
                    self.accepted += 1
                    self._sockets += [client, server]
                for a, b in ((client, server), (server, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(262144):
                b.sendall(data)
            b.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        """Reset every proxied connection."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._listener.close()
        self.cut()


@contextlib.contextmanager
def pods(*servers: PodServer) -> Iterator[tuple[PodServer, ...]]:
    """Run several pod servers for the duration of a block."""
    with contextlib.ExitStack() as stack:
        yield tuple(stack.enter_context(server) for server in servers)
