"""The far end of the raw-socket baseline: no protocol, only bytes.

Run as ``python -m benchmarks._rawpeer``: it listens on 127.0.0.1, prints
``LISTENING <port>``, and serves each connection in a thread. The first line a client
sends picks what happens:

* ``download N``: send N pattern bytes in 32 KiB writes (as the Go peer's ``source``),
  then close;
* ``upload``: read until EOF, then answer ``<count>\\n`` (as the Go peer's ``sink``).
"""

from __future__ import annotations

import socket
import sys
import threading
from typing import Final

__all__ = ["main"]

_WRITE_SIZE: Final = 32 * 1024
_READ_SIZE: Final = 256 * 1024


def _read_line(connection: socket.socket) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = connection.recv(1)
        if not byte:
            break
        line += byte
    return bytes(line)


def _serve(connection: socket.socket) -> None:
    with connection:
        words = _read_line(connection).split()
        if words[:1] == [b"download"] and len(words) == 2:
            total = int(words[1])
            # One period of slack lets every write start at any phase of the pattern.
            pattern = memoryview(bytes(i % 251 for i in range(_WRITE_SIZE + 251)))
            sent = 0
            while sent < total:
                size = min(_WRITE_SIZE, total - sent)
                phase = sent % 251
                connection.sendall(pattern[phase:phase + size])
                sent += size
            connection.shutdown(socket.SHUT_WR)
            while connection.recv(_READ_SIZE):  # wait for the client to close
                pass
        elif words == [b"upload"]:
            buffer = bytearray(_READ_SIZE)
            count = 0
            while received := connection.recv_into(buffer):
                count += received
            connection.sendall(f"{count}\n".encode())


def main() -> int:
    """Serve until killed."""
    listener = socket.create_server(("127.0.0.1", 0))
    print(f"LISTENING {listener.getsockname()[1]}", flush=True)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=_serve, args=(connection,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
