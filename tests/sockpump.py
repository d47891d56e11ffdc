"""Drive kstream's sans-IO connections over real loopback sockets, for tests.

Test-only helpers (threads, selectors and clocks are fine here):

* :class:`SocketPump` moves bytes between a socket and any connection with the shared
  sans-IO shape (``receive_data`` / ``data_to_send``), in one selector loop that reads and
  writes as the socket allows, so a large upload never blocks the download it causes.
* :class:`FrameTap` decodes one direction of a SPDY connection (after its HTTP head) with
  an independent :class:`~kstream._spdy.frames.FrameDecoder` and counts what went by, so a
  test can assert on the wire (no WINDOW_UPDATE, how many DATA bytes, ...).
* :class:`OneConnectionServer` listens on 127.0.0.1 and runs a handler for the first
  connection in a thread, handing the handler's exception back to the test.

Every wait is bounded by a deadline; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Protocol

from kstream._events import Event
from kstream._spdy.frames import DataFrame, FrameDecoder

__all__ = [
    "FrameTap",
    "OneConnectionServer",
    "SansIOConnection",
    "SocketPump",
    "connect",
]

#: Most bytes one recv() takes.
READ_SIZE = 256 * 1024
#: Longest HTTP head a tap waits for before the SPDY frames start.
MAX_HEAD = 64 * 1024


class SansIOConnection(Protocol):
    """The input/output half of every kstream connection (docs/architecture.md)."""

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes from the peer (``b""`` = EOF) and return the events."""
        ...

    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the peer."""
        ...


def connect(port: int, *, timeout: float) -> socket.socket:
    """Open a TCP connection to ``127.0.0.1:port``.

    Args:
        port: the server's port.
        timeout: seconds allowed for the connect.

    Returns:
        The connected socket.
    """
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


class FrameTap:
    """Counts the SPDY frames of one direction of an upgraded connection.

    The bytes before the first blank line are the HTTP request or response head (an
    upgrade has no body); everything after is decoded as SPDY/3.1 frames by a decoder of
    our own, independent of the connection under test.

    Attributes:
        control_frames: control frames seen, by frame class name (``"PingFrame"``...).
        data_bytes: DATA payload bytes seen, all streams together.
        fins: DATA frames seen with FIN set.
    """

    def __init__(self) -> None:
        self._head: bytearray | None = bytearray()
        self._decoder = FrameDecoder()
        self.control_frames: Counter[str] = Counter()
        self.data_bytes = 0
        self.fins = 0

    def feed(self, data: bytes) -> None:
        """Account for the next bytes of this direction.

        Args:
            data: bytes exactly as they went over the socket.

        Raises:
            AssertionError: the HTTP head is implausibly long.
            kstream.RemoteProtocolError: the bytes after the head are not SPDY frames.
        """
        if self._head is not None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                assert len(self._head) <= MAX_HEAD, "no end of the HTTP head in 64 KiB"
                return
            data = bytes(self._head[end + 4:])
            self._head = None
        for frame in self._decoder.feed(data):
            if isinstance(frame, DataFrame):
                self.data_bytes += len(frame.data)
                self.fins += frame.fin
            else:
                self.control_frames[type(frame).__name__] += 1


class SocketPump:
    """Moves bytes between a socket and a sans-IO connection, reading and writing at once.

    The socket is made non-blocking. Outgoing bytes wait in :attr:`outbox` until the socket
    takes them. Use it as a context manager (closes the selector, not the socket).

    Args:
        sock: a connected socket.
        connection: the sans-IO connection (``receive_data`` / ``data_to_send``).
        tap: decode both directions with a :class:`FrameTap` (upgraded SPDY connections).

    Attributes:
        outbox: bytes queued for the socket.
        received_eof: the peer closed its sending side (EOF was fed to the connection).
        write_closed: nothing more can be written (the peer reset the connection, or
            :meth:`finish` sent our FIN): outgoing bytes are dropped from now on.
        sent: tap of the bytes we sent (None without ``tap``).
        received: tap of the bytes we received (None without ``tap``).
    """

    def __init__(self, sock: socket.socket, connection: SansIOConnection, *,
                 tap: bool = True) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.connection = connection
        self.outbox = bytearray()
        self.received_eof = False
        self.write_closed = False
        self.sent = FrameTap() if tap else None
        self.received = FrameTap() if tap else None
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._registered_for = selectors.EVENT_READ

    def __enter__(self) -> SocketPump:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._selector.close()

    def collect(self) -> None:
        """Move what the connection has queued into :attr:`outbox`."""
        data = self.connection.data_to_send()
        if not data or self.write_closed:
            return
        if self.sent is not None:
            self.sent.feed(data)
        self.outbox += data

    def run(self, on_events: Callable[[list[Event]], None], *, until: Callable[[], bool],
            timeout: float, produce: Callable[[], None] | None = None) -> None:
        """Pump until ``until()`` is true.

        Each round calls ``produce()`` (the application writing, e.g. the next stdin
        chunk), moves queued bytes to the outbox, then waits for the socket and reads or
        writes. Events go to ``on_events`` as each read completes them.

        Args:
            on_events: receives every list of events :meth:`receive_data` returns.
            until: the condition to stop at (checked before every round).
            timeout: seconds allowed in total.
            produce: called once per round, before the outbox is refilled.

        Raises:
            TimeoutError: ``until()`` still false after ``timeout`` seconds.
            AssertionError: EOF received, nothing left to send, and ``until()`` false.
        """
        deadline = time.monotonic() + timeout
        while not until():
            if produce is not None:
                produce()
            self.collect()
            if until():
                break
            wanted = 0 if self.received_eof else selectors.EVENT_READ
            if self.outbox and not self.write_closed:
                wanted |= selectors.EVENT_WRITE
            assert wanted, "the peer closed the connection before the condition was met"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            self._wait_for(wanted, remaining, on_events)
        self.collect()

    def flush(self, on_events: Callable[[list[Event]], None] = lambda events: None, *,
              timeout: float) -> None:
        """Write everything queued, feeding what arrives meanwhile to the connection.

        Args:
            on_events: receives the events of what arrives meanwhile.
            timeout: seconds allowed.

        Raises:
            TimeoutError: the peer did not take the bytes in time.
        """
        self.collect()
        self.run(on_events, until=lambda: not self.outbox or self.write_closed,
                 timeout=timeout)

    def finish(self, on_events: Callable[[list[Event]], None] = lambda events: None, *,
               timeout: float) -> None:
        """End as a lingering close: flush, send FIN, and read until the peer's EOF.

        Args:
            on_events: receives the events of what still arrives.
            timeout: seconds allowed in total.

        Raises:
            TimeoutError: the peer neither took our bytes nor closed in time.
        """
        deadline = time.monotonic() + timeout
        self.flush(on_events, timeout=timeout)
        if not self.write_closed:
            with contextlib.suppress(OSError):  # the peer already reset the connection
                self.sock.shutdown(socket.SHUT_WR)
            # Whatever the connection still queues (a late PING echo) cannot go out now.
            self.write_closed = True
        self.run(on_events, until=lambda: self.received_eof,
                 timeout=max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ internals

    def _wait_for(self, wanted: int, remaining: float,
                  on_events: Callable[[list[Event]], None]) -> None:
        if wanted != self._registered_for:
            self._selector.modify(self.sock, wanted)
            self._registered_for = wanted
        for _key, ready in self._selector.select(remaining):
            if ready & selectors.EVENT_WRITE:
                self._write()
            if ready & selectors.EVENT_READ:
                self._read(on_events)

    def _write(self) -> None:
        try:
            sent = self.sock.send(self.outbox)
        except BlockingIOError:
            return
        except (BrokenPipeError, ConnectionResetError):
            self.write_closed = True
            self.outbox.clear()
            return
        del self.outbox[:sent]

    def _read(self, on_events: Callable[[list[Event]], None]) -> None:
        try:
            data = self.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data = b""
        if not data:
            self.received_eof = True
        elif self.received is not None:
            self.received.feed(data)
        on_events(self.connection.receive_data(data))


class OneConnectionServer:
    """Listen on 127.0.0.1 and run ``handler(sock)`` for the first connection, in a thread.

    Example:
        with OneConnectionServer(handle, timeout=30) as server:
            run_client(server.port)
            server.join()  # re-raises what the handler raised

    Leaving the context unblocks a waiting ``accept`` and shuts the accepted connection
    down (the handler then sees EOF), joins the thread and closes every socket.

    Args:
        handler: called with the accepted socket (closed afterwards by the server).
        timeout: seconds allowed for a connection to arrive and for :meth:`join`.
    """

    def __init__(self, handler: Callable[[socket.socket], None], *, timeout: float) -> None:
        self._handler = handler
        self._timeout = timeout
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._accepted: socket.socket | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="one-connection-server",
                                        daemon=True)
        self.error: BaseException | None = None
        #: The port to connect to.
        self.port: int = self._listener.getsockname()[1]

    def __enter__(self) -> OneConnectionServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._wake_writer.send(b"x")
        with self._lock:
            if self._accepted is not None:
                with contextlib.suppress(OSError):  # already closed by the handler
                    self._accepted.shutdown(socket.SHUT_RDWR)
        self._thread.join(self._timeout)
        self._listener.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def join(self) -> None:
        """Wait for the handler to return and re-raise its exception, if any.

        Raises:
            TimeoutError: the handler did not return within the timeout.
        """
        self._thread.join(self._timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the server handler did not finish in {self._timeout} s")
        if self.error is not None:
            raise self.error

    def _serve(self) -> None:
        try:
            accepted = self._accept()
            if accepted is None:
                return
            with accepted:
                self._handler(accepted)
        except BaseException as exc:  # handed to join(): a thread must not raise
            self.error = exc

    def _accept(self) -> socket.socket | None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            ready = selector.select(self._timeout)
        if not ready:
            raise TimeoutError(f"no connection within {self._timeout} s")
        if any(key.fileobj is self._wake_reader for key, _ in ready):
            return None
        accepted, _address = self._listener.accept()
        with self._lock:
            self._accepted = accepted
        return accepted
