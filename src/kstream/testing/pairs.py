"""Connected client/server pairs without a network, and a pump for real sockets.

Three ways to put both ends of an exec in one test:

* **Sans-IO pairs** (:class:`Pair`): a kstream client connection and a server connection
  wired back to back in memory. :func:`exec_pair` pairs the exec sessions for any
  transport and protocol (:data:`EXEC_PROTOCOLS`: five WebSocket subprotocols, SPDY v1-v4),
  :func:`websocket_pair` and :func:`spdy_pair` the bare connections, :func:`raw_exec_pair`
  kstream's client session against a bare server connection that writes anything. :meth:`Pair.pump`
  moves bytes both ways until both sides are quiet, cut into the reads a
  :data:`~kstream.testing.strategies.Chunker` chooses (``strategies.chunkers()``).
* **Runtime pairs** (:func:`asyncio_exec_pair`, :func:`trio_exec_pair`): kstream's client
  (``open_exec``) against kstream's server engine running a handler, over an in-memory
  connection (a socket pair on asyncio, in-memory streams on trio, cut by a chunker).
* **A socket pump** (:class:`SocketPump`, :class:`OneConnectionServer`,
  :class:`FrameTap`): drive one sans-IO connection over a real socket against a real peer
  (kubectl, a Go server), with every wait bounded.

Nothing here imports hypothesis; pass a chunker to cut reads.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar

from .._events import Event, UpgradeAccepted, UpgradeRequested
from .._exec.session import ClientExecSession, RequestReceived, ServerExecSession, SessionReady
from .._exec.spdy import ExecReady
from .._exec.spdy_client import SpdyExecClient
from .._exec.spdy_server import SpdyExecServer
from .._spdy.frames import DataFrame, FrameDecoder
from .._ws.connection import WebSocketChannelConnection

if TYPE_CHECKING:
    import trio

    import kstream.asyncio
    import kstream.trio

__all__ = [
    "EXEC_PROTOCOLS",
    "SPDY_PROTOCOLS",
    "TARGET",
    "WEBSOCKET_PROTOCOLS",
    "Connection",
    "FrameTap",
    "OneConnectionServer",
    "Pair",
    "SocketPump",
    "asyncio_exec_pair",
    "exec_pair",
    "raw_exec_pair",
    "spdy_pair",
    "transfer",
    "trio_exec_pair",
    "websocket_pair",
]

#: The five WebSocket channel subprotocols, newest first.
WEBSOCKET_PROTOCOLS: Final = ("v5.channel.k8s.io", "v4.channel.k8s.io",
                              "v4.base64.channel.k8s.io", "channel.k8s.io",
                              "base64.channel.k8s.io")
#: The four SPDY remotecommand versions, newest first.
SPDY_PROTOCOLS: Final = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                         "channel.k8s.io")
#: Every ``(transport, protocol)`` an exec can use: parametrize tests with it.
EXEC_PROTOCOLS: Final = (*(("websocket", p) for p in WEBSOCKET_PROTOCOLS),
                         *(("spdy", p) for p in SPDY_PROTOCOLS))
#: The request target the pairs' clients use (exec of ``cat`` with all three streams).
TARGET: Final = ("/api/v1/namespaces/default/pods/p/exec?command=cat&container=c"
                 "&stderr=true&stdin=true&stdout=true")
#: Rounds :meth:`Pair.pump` allows before deciding the pair never goes quiet.
MAX_ROUNDS: Final = 1000


class Connection(Protocol):
    """The input/output half every kstream connection has (docs/architecture.md)."""

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes from the peer (``b""`` = EOF) and return the events."""
        ...

    def data_to_send(self) -> bytes:
        """Drain the bytes queued for the peer."""
        ...


C = TypeVar("C", bound=Connection)
S = TypeVar("S", bound=Connection)


def transfer(source: Connection, sink: Connection,
             split: Callable[[bytes], list[bytes]] | None = None) -> list[Event]:
    """Move everything ``source`` has queued into ``sink``, in the reads ``split`` cuts.

    Args:
        source: the sending side.
        sink: the receiving side.
        split: cuts the bytes into reads (default: one read).

    Returns:
        The events ``sink`` reported, in order.
    """
    data = source.data_to_send()
    events: list[Event] = []
    for piece in (split(data) if split is not None else [data] if data else []):
        events += sink.receive_data(piece)
    return events


@dataclass
class Pair(Generic[C, S]):
    """A client and a server connection wired back to back.

    Attributes:
        client: the client side.
        server: the server side.
        split: the default read cutter for every move (``None``: whole).
        client_events: every event the client reported through this pair, in order.
        server_events: the same for the server.
    """

    client: C
    server: S
    split: Callable[[bytes], list[bytes]] | None = None
    client_events: list[Event] = field(default_factory=list)
    server_events: list[Event] = field(default_factory=list)

    def to_server(self, split: Callable[[bytes], list[bytes]] | None = None) -> list[Event]:
        """Deliver what the client queued; return the server's events."""
        events = transfer(self.client, self.server, split or self.split)
        self.server_events += events
        return events

    def to_client(self, split: Callable[[bytes], list[bytes]] | None = None) -> list[Event]:
        """Deliver what the server queued; return the client's events."""
        events = transfer(self.server, self.client, split or self.split)
        self.client_events += events
        return events

    def pump(self, split: Callable[[bytes], list[bytes]] | None = None,
             ) -> tuple[list[Event], list[Event]]:
        """Move bytes both ways until neither side has anything to send.

        Args:
            split: cuts each delivery into reads (default: :attr:`split`).

        Returns:
            ``(client events, server events)`` of this call.

        Raises:
            AssertionError: still talking after :data:`MAX_ROUNDS` rounds.
        """
        client_events: list[Event] = []
        server_events: list[Event] = []
        for _ in range(MAX_ROUNDS):
            to_server = self.to_server(split)
            to_client = self.to_client(split)
            server_events += to_server
            client_events += to_client
            if not to_server and not to_client:
                # Neither side received anything, so neither queued an answer: quiet.
                return client_events, server_events
        raise AssertionError(f"the pair never went quiet in {MAX_ROUNDS} rounds")


def websocket_pair(protocol: str = WEBSOCKET_PROTOCOLS[0], *, target: str = TARGET,
                   headers: Sequence[tuple[str, str]] = (), hello: int | None = None,
                   split: Callable[[bytes], list[bytes]] | None = None,
                   ) -> Pair[WebSocketChannelConnection, WebSocketChannelConnection]:
    """Two WebSocket channel connections, upgraded to ``protocol``.

    Args:
        protocol: the subprotocol the client offers (one of :data:`WEBSOCKET_PROTOCOLS`).
        target: the request target.
        headers: extra request headers.
        hello: the channel of the server's empty hello message, if any (kubelets send one
            on the first output channel: ``kstream.websocket_hello_channel``).
        split: the pair's read cutter.

    Returns:
        The pair, its upgrade events recorded.
    """
    pair: Pair[WebSocketChannelConnection, WebSocketChannelConnection] = Pair(
        WebSocketChannelConnection.client(host="127.0.0.1", target=target,
                                          protocols=(protocol,), headers=headers),
        WebSocketChannelConnection.server(), split)
    events = pair.to_server()
    assert [type(e) for e in events] == [UpgradeRequested], events
    pair.server.accept(hello=hello)
    events = pair.to_client()
    assert isinstance(events[0], UpgradeAccepted), events
    return pair


def spdy_pair(protocol: str = SPDY_PROTOCOLS[0], *, target: str = TARGET,
              stdin: bool = True, stdout: bool = True, stderr: bool = True, tty: bool = False,
              split: Callable[[bytes], list[bytes]] | None = None,
              ) -> Pair[SpdyExecClient, SpdyExecServer]:
    """An exec client and server over SPDY/3.1, upgraded to ``protocol``, streams open.

    Args:
        protocol: the remotecommand version the client offers (:data:`SPDY_PROTOCOLS`).
        target: the request target (its query should match the switches).
        stdin: open a stdin stream.
        stdout: open a stdout stream.
        stderr: open a stderr stream (never with ``tty``).
        tty: a terminal session (a resize stream from v3).
        split: the pair's read cutter.

    Returns:
        The pair, both sides ready (:class:`ExecReady` reported).
    """
    pair: Pair[SpdyExecClient, SpdyExecServer] = Pair(
        SpdyExecClient(host="127.0.0.1", target=target, stdin=stdin, stdout=stdout,
                       stderr=stderr, tty=tty, protocols=(protocol,)),
        SpdyExecServer(), split)
    events = pair.to_server()
    assert [type(e) for e in events] == [UpgradeRequested], events
    pair.server.accept(stdin=stdin, stdout=stdout, stderr=stderr, tty=tty, now=0.0)
    pair.pump()
    assert any(isinstance(e, ExecReady) for e in pair.client_events), pair.client_events
    assert any(isinstance(e, ExecReady) for e in pair.server_events), pair.server_events
    return pair


def exec_pair(transport: str = "websocket", protocol: str = WEBSOCKET_PROTOCOLS[0], *,
              stdin: bool = True, stdout: bool = True, stderr: bool = True, tty: bool = False,
              split: Callable[[bytes], list[bytes]] | None = None,
              ) -> Pair[ClientExecSession, ServerExecSession]:
    """kstream's exec sessions (client and server), connected and ready.

    Args:
        transport: ``"websocket"`` or ``"spdy"``.
        protocol: the protocol the client offers (see :data:`EXEC_PROTOCOLS`).
        stdin: the exec has stdin.
        stdout: the exec has stdout.
        stderr: the exec has stderr (dropped with ``tty``, as the kubelet does).
        tty: the exec has a terminal.
        split: the pair's read cutter (also used for the upgrade).

    Returns:
        The pair; both sides reported :class:`SessionReady`. Write with
        ``pair.client.write_stdin()`` / ``pair.server.send_stdout()``, end with
        ``pair.server.exit(status)``, then :meth:`Pair.pump`.

    Raises:
        ValueError: an unknown transport or protocol.
    """
    if (transport, protocol) not in EXEC_PROTOCOLS:
        raise ValueError(f"no exec protocol {protocol!r} on {transport!r}; "
                         f"choose from {EXEC_PROTOCOLS}")
    query = [f"{name}=true" for name, on in (("stderr", stderr), ("stdin", stdin),
                                             ("stdout", stdout), ("tty", tty)) if on]
    target = "/api/v1/namespaces/default/pods/p/exec?command=cat&" + "&".join(query)
    connection: SpdyExecClient | WebSocketChannelConnection
    if transport == "spdy":
        connection = SpdyExecClient(host="127.0.0.1", target=target, stdin=stdin,
                                    stdout=stdout, stderr=stderr, tty=tty,
                                    protocols=(protocol,))
    else:
        connection = WebSocketChannelConnection.client(host="127.0.0.1", target=target,
                                                       protocols=(protocol,))
    pair: Pair[ClientExecSession, ServerExecSession] = Pair(
        ClientExecSession(connection, tty=tty), ServerExecSession(), split)
    pair.pump()
    assert [type(e) for e in pair.server_events] == [RequestReceived], pair.server_events
    pair.server_events += pair.server.accept(stdin=stdin, stdout=stdout, stderr=stderr,
                                             tty=tty, now=0.0)
    pair.pump()
    assert SessionReady() in pair.client_events, pair.client_events
    assert SessionReady() in pair.server_events, pair.server_events
    return pair


def raw_exec_pair(protocol: str = WEBSOCKET_PROTOCOLS[0], *, stdin: bool = False,
                  split: Callable[[bytes], list[bytes]] | None = None,
                  ) -> Pair[ClientExecSession, WebSocketChannelConnection]:
    """kstream's exec client session against a bare WebSocket server connection.

    The server side is the connection below the server session, so a test writes any
    bytes on any channel: a status document of its choosing on the error channel
    (``server.send_data(ERROR, document)``), malformed ones included, then
    ``server.close()``. :attr:`ClientExecSession.result` is what kstream's clients (both
    runtimes run this session) report.

    Args:
        protocol: the WebSocket subprotocol (one of :data:`WEBSOCKET_PROTOCOLS`).
        stdin: the exec has stdin.
        split: the pair's read cutter.

    Returns:
        The pair, upgraded; the server sent the hello on stdout.
    """
    query = "&stdin=true" if stdin else ""
    target = f"/api/v1/namespaces/default/pods/p/exec?command=cat&stdout=true{query}"
    pair: Pair[ClientExecSession, WebSocketChannelConnection] = Pair(
        ClientExecSession(WebSocketChannelConnection.client(
            host="127.0.0.1", target=target, protocols=(protocol,)), tty=False),
        WebSocketChannelConnection.server(), split)
    pair.pump()
    assert [type(e) for e in pair.server_events] == [UpgradeRequested], pair.server_events
    pair.server.accept(hello=1)
    pair.pump()
    assert SessionReady() in pair.client_events, pair.client_events
    return pair


# --------------------------------------------------------------------------- runtimes


@contextlib.asynccontextmanager
async def asyncio_exec_pair(
        handler: kstream.asyncio.Handler, command: Sequence[str] = ("cat",), *,
        transport: str = "auto", protocols: Sequence[str] | None = None,
        stdin: bool = False, tty: bool = False,
        websocket_protocols: Sequence[str] | None = None,
        spdy_protocols: Sequence[str] | None = None,
) -> AsyncIterator[kstream.asyncio.RemoteProcess]:
    """``kstream.asyncio.open_exec`` against ``handler``, over a connected socket pair.

    The server side is the engine of :func:`kstream.asyncio.start_server` on one end of
    :func:`socket.socketpair`; nothing listens.

    Args:
        handler: the server's request handler (as for ``start_server``).
        command: the argv the client asks for.
        transport: ``"websocket"``, ``"spdy"`` or ``"auto"`` (WebSocket: one connection,
            so no fallback).
        protocols: the protocols the client offers.
        stdin: the exec has stdin.
        tty: the exec has a terminal.
        websocket_protocols: the WebSocket subprotocols the server accepts.
        spdy_protocols: the SPDY versions the server accepts.

    Yields:
        The open remote process; the server is stopped when the block ends.
    """
    import asyncio

    import kstream.asyncio as adapter

    from .._runtime.core import ServerOptions
    from .._runtime.options import DEFAULT_BUFFER_LIMIT

    loop = asyncio.get_running_loop()
    options = ServerOptions(buffer_limit=DEFAULT_BUFFER_LIMIT,
                            websocket_protocols=websocket_protocols,
                            spdy_protocols=spdy_protocols, stream_creation_timeout=30.0)
    server = adapter.ExecServer(handler, loop=loop, options=options)
    client_sock, server_sock = socket.socketpair()
    try:
        await loop.connect_accepted_socket(
            lambda: adapter._ServerConnection(server), server_sock)
        process = await adapter.open_exec(
            "http://127.0.0.1", "default", "p", command, sock=client_sock,
            transport="websocket" if transport == "auto" else transport,
            protocols=protocols, stdin=stdin, tty=tty)
        async with process:
            yield process
    finally:
        client_sock.close()
        server.close()
        await server.wait_closed()


class _ChunkedStream:
    """One end of an in-memory trio stream pair whose reads are cut by a chunker."""

    def __init__(self, outgoing: trio.MemorySendChannel[bytes],
                 incoming: trio.MemoryReceiveChannel[bytes],
                 split: Callable[[bytes], list[bytes]] | None) -> None:
        self._outgoing = outgoing
        self._incoming = incoming
        self._split = split
        self._leftover = b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        import trio

        payload = bytes(data)
        if not payload:
            return
        try:
            for piece in self._split(payload) if self._split else [payload]:
                await self._outgoing.send(piece)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise trio.BrokenResourceError("the other end is closed") from None

    async def wait_send_all_might_not_block(self) -> None:
        return

    async def send_eof(self) -> None:
        await self._outgoing.aclose()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        import trio

        if not self._leftover:
            try:
                self._leftover = await self._incoming.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return b""
        limit = len(self._leftover) if max_bytes is None else max_bytes
        piece, self._leftover = self._leftover[:limit], self._leftover[limit:]
        return piece

    async def aclose(self) -> None:
        await self._outgoing.aclose()
        await self._incoming.aclose()


#: Pieces an in-memory trio stream holds before a writer waits (the memory bound).
_STREAM_PIECES: Final = 64


def _trio_stream_pair(split: Callable[[bytes], list[bytes]] | None,
                      ) -> tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]:
    import trio

    class Stream(_ChunkedStream, trio.abc.HalfCloseableStream):
        pass

    a_out, b_in = trio.open_memory_channel[bytes](_STREAM_PIECES)
    b_out, a_in = trio.open_memory_channel[bytes](_STREAM_PIECES)
    return Stream(a_out, a_in, split), Stream(b_out, b_in, split)


@contextlib.asynccontextmanager
async def trio_exec_pair(
        handler: kstream.trio.Handler, command: Sequence[str] = ("cat",), *,
        transport: str = "auto", protocols: Sequence[str] | None = None,
        stdin: bool = False, tty: bool = False,
        websocket_protocols: Sequence[str] | None = None,
        spdy_protocols: Sequence[str] | None = None,
        split: Callable[[bytes], list[bytes]] | None = None,
) -> AsyncIterator[kstream.trio.RemoteProcess]:
    """``kstream.trio.open_exec`` against ``handler``, over in-memory streams.

    The server side is :func:`kstream.trio.serve_stream`. Every write is cut into the
    reads ``split`` chooses (e.g. ``strategies.chunkers()``); at most 64 pieces wait in
    each direction.

    Args:
        handler: the server's request handler.
        command: the argv the client asks for.
        transport: ``"websocket"``, ``"spdy"`` or ``"auto"`` (WebSocket).
        protocols: the protocols the client offers.
        stdin: the exec has stdin.
        tty: the exec has a terminal.
        websocket_protocols: the WebSocket subprotocols the server accepts.
        spdy_protocols: the SPDY versions the server accepts.
        split: cuts each write into reads (default: whole).

    Yields:
        The open remote process (its I/O runs inside the block).
    """
    import trio

    import kstream.trio as adapter

    client_stream, server_stream = _trio_stream_pair(split)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: adapter.serve_stream(
            handler, server_stream, websocket_protocols=websocket_protocols,
            spdy_protocols=spdy_protocols))
        process = await adapter.open_exec(
            "http://127.0.0.1", "default", "p", command, stream=client_stream,
            transport="websocket" if transport == "auto" else transport,
            protocols=protocols, stdin=stdin, tty=tty)
        async with process:
            yield process
        nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- sockets

#: Most bytes one recv() takes.
READ_SIZE: Final = 256 * 1024
#: Longest HTTP head a tap waits for before the SPDY frames start.
MAX_HEAD: Final = 64 * 1024


class FrameTap:
    """Counts the SPDY frames of one direction of an upgraded connection.

    The bytes before the first blank line are the HTTP head (an upgrade has no body);
    everything after is decoded as SPDY/3.1 frames by a decoder of its own, independent
    of the connection under test.

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

    The socket is made non-blocking; outgoing bytes wait in :attr:`outbox` until the
    socket takes them, so a large upload never blocks the download it causes. Use it as
    a context manager (closes the selector, not the socket).

    Args:
        sock: a connected socket.
        connection: the sans-IO connection.
        tap: decode both directions with a :class:`FrameTap` (upgraded SPDY connections).

    Attributes:
        outbox: bytes queued for the socket.
        received_eof: the peer closed its sending side (EOF was fed to the connection).
        write_closed: nothing more can be written (the peer reset the connection, or
            :meth:`finish` sent our FIN): outgoing bytes are dropped from now on.
        sent: tap of the bytes sent (None without ``tap``).
        received: tap of the bytes received (None without ``tap``).
    """

    def __init__(self, sock: socket.socket, connection: Connection, *,
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

        Each round calls ``produce()`` (the application writing), moves queued bytes to
        the outbox, then waits for the socket and reads or writes.

        Args:
            on_events: receives every list of events the connection returns.
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

        Raises:
            TimeoutError: the peer did not take the bytes in time.
        """
        self.collect()
        self.run(on_events, until=lambda: not self.outbox or self.write_closed,
                 timeout=timeout)

    def finish(self, on_events: Callable[[list[Event]], None] = lambda events: None, *,
               timeout: float) -> None:
        """End as a lingering close: flush, send FIN, and read until the peer's EOF.

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

    Example::

        with OneConnectionServer(handle, timeout=30) as server:
            run_client(server.port)
            server.join()  # re-raises what the handler raised

    Leaving the context unblocks a waiting ``accept``, shuts the accepted connection down
    (the handler then sees EOF), joins the thread and closes every socket.

    Args:
        handler: called with the accepted socket (closed afterwards by the server).
        timeout: seconds allowed for a connection to arrive and for :meth:`join`.

    Attributes:
        port: the port to connect to.
        error: what the handler raised, if anything.
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
