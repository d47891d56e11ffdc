"""In-memory framing: encode and decode of every WebSocket subprotocol and of SPDY DATA frames.

No sockets, no event loop: only the sans-IO layers, fed and drained in a loop.

* ``ws-encode``: :meth:`WebSocketChannelConnection.send_data` then ``data_to_send()`` per
  message, as a sender does (client role: masked frames; server role: unmasked).
* ``ws-decode``: ``receive_data`` over the peer's frames, handed over in 256 KiB chunks
  as an adapter reads them (the chunks are cut before timing). Each run decodes with a
  fresh connection, upgraded before timing: the handshake (h11 parsing, key checks) is
  not framing, and at 64 B it cost more than the decoding itself. wsproto's baseline is
  timed the same way (its frame-level connection, made before timing, has no handshake).
* ``spdy-encode`` / ``spdy-decode``: :class:`FrameEncoder.data` and
  :meth:`FrameDecoder.feed` (SPDY frames are never masked: one codec for both roles).

Baselines, measured in the same run on the same messages:

* ``wsproto``: wsproto's frame protocol alone on the very messages kstream puts on the
  wire (channel byte included, base64 already done), so ``kstream / wsproto`` is the
  channel layer's own cost;
* ``bytes copy``: one copy of each payload, the ceiling of any codec.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable, Iterator
from typing import Final, TypeVar

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, TextMessage

from kstream._channels import STDIN, STDOUT, WEBSOCKET_PROTOCOLS
from kstream._events import ChannelData, UpgradeAccepted, UpgradeRequested
from kstream._spdy.frames import DataFrame, FrameDecoder, FrameEncoder
from kstream._ws.connection import WebSocketChannelConnection

from ._harness import Config, Result, time_runs

__all__ = ["SIZES", "bench_spdy_framing", "bench_ws_framing", "size_label"]

#: Message sizes of the issue: 64 B, 1 KiB, 32 KiB, 1 MiB.
SIZES: Final = (64, 1024, 32 * 1024, 1 << 20)
#: Payload bytes per run at scale 1.0, by size (small messages: fewer bytes, same time).
_BYTES_PER_RUN: Final = {64: 256 << 10, 1024: 4 << 20, 32 * 1024: 64 << 20, 1 << 20: 128 << 20}
#: What an adapter hands to receive_data at once.
_READ_SIZE: Final = 256 * 1024
#: Every named WebSocket channel subprotocol.
WS_PROTOCOLS: Final = tuple(name for name in WEBSOCKET_PROTOCOLS if name)
_HOST: Final = "127.0.0.1"
_TARGET: Final = "/api/v1/namespaces/default/pods/p/exec?command=cat&stdin=true&stdout=true"
_T = TypeVar("_T")


def size_label(size: int) -> str:
    """``64 B``, ``1 KiB``, ``32 KiB``, ``1 MiB``."""
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return f"{size >> 20} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size >> 10} KiB"
    return f"{size} B"


def _timed(run: Callable[[], int], config: Config) -> list[float]:
    return time_runs(run, config.runs, warmup=config.warmup)


def _prepared(make: Callable[[], _T], config: Config) -> Callable[[], _T]:
    """One fresh ``make()`` per timed call, all made now, before any timing.

    :func:`~benchmarks._harness.time_runs` calls ``run`` ``warmup + runs`` times; a call
    beyond that (none is planned) makes its object on the spot.
    """
    ready = deque(make() for _ in range(config.warmup + config.runs))
    return lambda: ready.popleft() if ready else make()


def _message_count(size: int, config: Config) -> int:
    return max(2, int(_BYTES_PER_RUN[size] * config.scale) // size)


def _open_pair(protocol: str) -> tuple[WebSocketChannelConnection, WebSocketChannelConnection]:
    """A client and a server connection, upgraded in memory to ``protocol``."""
    client = WebSocketChannelConnection.client(host=_HOST, target=_TARGET, protocols=[protocol])
    server = WebSocketChannelConnection.server()
    events = server.receive_data(client.data_to_send())
    assert any(isinstance(event, UpgradeRequested) for event in events), events
    server.accept(protocol)
    events = client.receive_data(server.data_to_send())
    assert any(isinstance(event, UpgradeAccepted) for event in events), events
    return client, server


def _chunks(data: bytes, size: int = _READ_SIZE) -> list[bytes]:
    return [data[offset:offset + size] for offset in range(0, len(data), size)]


def _wire_message(protocol: str, channel: int, payload: bytes) -> bytes | str:
    """The WebSocket message kstream sends for ``payload`` (what wsproto alone is given)."""
    if WEBSOCKET_PROTOCOLS[protocol].base64:
        return chr(ord("0") + channel) + base64.b64encode(payload).decode("ascii")
    return bytes((channel,)) + payload


def _wsproto_event(message: bytes | str) -> BytesMessage | TextMessage:
    if isinstance(message, str):
        return TextMessage(data=message)
    return BytesMessage(data=message)


# -------------------------------------------------------------------------------- encode


def _kstream_encode(protocol: str, client: bool, payload: bytes, count: int) -> Callable[[], int]:
    client_conn, server_conn = _open_pair(protocol)
    sender = client_conn if client else server_conn
    channel = STDIN if client else STDOUT

    def run() -> int:
        total = 0
        for _ in range(count):
            sender.send_data(channel, payload)
            total += len(sender.data_to_send())
        return total

    return run


def _wsproto_encode(message: bytes | str, client: bool, count: int) -> Callable[[], int]:
    connection = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)

    def run() -> int:
        total = 0
        for _ in range(count):
            total += len(connection.send(_wsproto_event(message)))
        return total

    return run


def _copy(payload: bytes, count: int) -> Callable[[], int]:
    view = memoryview(payload)

    def run() -> int:
        total = 0
        for _ in range(count):
            total += len(bytes(view))  # bytes(view) copies; bytes(payload) would not
        return total

    return run


# -------------------------------------------------------------------------------- decode


def _encoded_stream(protocol: str, client: bool, payload: bytes, count: int) -> bytes:
    """What the peer of ``client`` sends: ``count`` messages of ``payload``."""
    client_conn, server_conn = _open_pair(protocol)
    peer = server_conn if client else client_conn
    channel = STDOUT if client else STDIN
    out = bytearray()
    for _ in range(count):
        peer.send_data(channel, payload)
        out += peer.data_to_send()
    return bytes(out)


def _kstream_decode(protocol: str, client: bool, chunks: list[bytes], expected: int,
                    config: Config) -> Callable[[], int]:
    def open_receiver() -> WebSocketChannelConnection:
        client_conn, server_conn = _open_pair(protocol)
        return client_conn if client else server_conn

    next_receiver = _prepared(open_receiver, config)

    def run() -> int:
        receiver = next_receiver()
        total = 0
        for chunk in chunks:
            for event in receiver.receive_data(chunk):
                if type(event) is ChannelData:
                    total += len(event.data)
        assert total == expected, (total, expected)
        return total

    return run


def _wsproto_decode(client: bool, chunks: list[bytes], config: Config) -> Callable[[], int]:
    next_connection = _prepared(
        lambda: Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER), config)

    def run() -> int:
        connection = next_connection()
        total = 0
        for chunk in chunks:
            connection.receive_data(chunk)
            for event in connection.events():
                total += len(event.data)  # type: ignore[attr-defined]
        return total

    return run


# -------------------------------------------------------------------------------- cases


def _roles() -> Iterator[tuple[bool, str]]:
    yield False, "server (unmasked)"
    yield True, "client (masked)"


def bench_ws_framing(config: Config, protocols: tuple[str, ...] = WS_PROTOCOLS,
                     sizes: tuple[int, ...] = SIZES) -> list[Result]:
    """Encode and decode every WebSocket subprotocol, both roles, every size.

    ``ws-encode`` rows name the sending role; ``ws-decode`` rows name the receiving role
    (a client decodes the server's unmasked frames, a server the client's masked ones).
    """
    results: list[Result] = []
    for size in sizes:
        payload = bytes(index % 251 for index in range(size))
        count = _message_count(size, config)
        nbytes = size * count
        for protocol in protocols:
            for client, role in _roles():
                case = f"{protocol} {role} {size_label(size)}"
                message = _wire_message(protocol, STDIN if client else STDOUT, payload)
                results.append(Result("ws-encode", case, "kstream", _timed(
                    _kstream_encode(protocol, client, payload, count), config),
                    nbytes, count))
                results.append(Result("ws-encode", case, "wsproto", _timed(
                    _wsproto_encode(message, client, count), config),
                    nbytes, count, baseline=True))
                results.append(Result("ws-encode", case, "bytes copy", _timed(
                    _copy(payload, count), config), nbytes, count, baseline=True))
                # Decoding as `client` means reading what a server sent, and vice versa.
                receiver_case = f"{protocol} {'client' if client else 'server'} " + (
                    "(unmasked)" if client else "(masked)") + f" {size_label(size)}"
                stream = _encoded_stream(protocol, client, payload, count)
                chunks = _chunks(stream)
                results.append(Result("ws-decode", receiver_case, "kstream", _timed(
                    _kstream_decode(protocol, client, chunks, nbytes, config), config),
                    nbytes, count))
                results.append(Result("ws-decode", receiver_case, "wsproto", _timed(
                    _wsproto_decode(client, chunks, config), config), nbytes, count,
                    baseline=True))
                results.append(Result("ws-decode", receiver_case, "bytes copy", _timed(
                    _copy(payload, count), config), nbytes, count, baseline=True))
    return results


def _spdy_encode(payload: bytes, count: int) -> Callable[[], int]:
    encoder = FrameEncoder()

    def run() -> int:
        total = 0
        for _ in range(count):
            total += len(encoder.data(1, payload))
        return total

    return run


def _spdy_encode_header(payload: bytes, count: int) -> Callable[[], int]:
    """Header only, payload written after it unchanged (the zero-copy way to send)."""
    encoder = FrameEncoder()
    length = len(payload)

    def run() -> int:
        total = 0
        for _ in range(count):
            total += len(encoder.data_header(1, length)) + length
        return total

    return run


def _spdy_decode(chunks: list[bytes], expected: int) -> Callable[[], int]:
    def run() -> int:
        decoder = FrameDecoder()
        total = 0
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                if type(frame) is DataFrame:
                    total += len(frame.data)
        assert total == expected, (total, expected)
        return total

    return run


def bench_spdy_framing(config: Config, sizes: tuple[int, ...] = SIZES) -> list[Result]:
    """Encode and decode SPDY/3.1 DATA frames of every size (no masking: one codec)."""
    results: list[Result] = []
    for size in sizes:
        payload = bytes(index % 251 for index in range(size))
        count = _message_count(size, config)
        nbytes = size * count
        case = f"DATA {size_label(size)}"
        results.append(Result("spdy-encode", case, "kstream data()", _timed(
            _spdy_encode(payload, count), config), nbytes, count))
        results.append(Result("spdy-encode", case, "kstream data_header()", _timed(
            _spdy_encode_header(payload, count), config), nbytes, count,
            note="header only: the payload is written after it, uncopied"))
        results.append(Result("spdy-encode", case, "bytes copy", _timed(
            _copy(payload, count), config), nbytes, count, baseline=True))
        encoder = FrameEncoder()
        stream = b"".join(encoder.data(1, payload) for _ in range(count))
        results.append(Result("spdy-decode", case, "kstream", _timed(
            _spdy_decode(_chunks(stream), nbytes), config), nbytes, count))
        results.append(Result("spdy-decode", case, "bytes copy", _timed(
            _copy(payload, count), config), nbytes, count, baseline=True))
    return results
