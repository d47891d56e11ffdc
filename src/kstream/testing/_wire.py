"""Faults on the bytes of one upgraded connection: counting, cutting, dropping pongs.

:class:`WireTap` stands between a server connection and its asyncio transport from the
moment the engine is about to answer an upgrade. It counts what goes each way, closes
the connection after a given number of bytes either way, and can leave the client's
pings unanswered by removing the node's pong frames (WebSocket) and PING replies (SPDY)
from the byte stream -- the protocol engine itself always answers, as it must.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

__all__ = ["PongFilter", "WireTap"]

#: The end of the HTTP response head that precedes the frames.
_HEAD_END: Final = b"\r\n\r\n"
#: Bounds the response head kept while looking for its end (the engine's are small).
_MAX_HEAD: Final = 64 * 1024
_WS_PONG: Final = 0xA
_SPDY_PING: Final = 6


class PongFilter:
    """Removes pong frames (WebSocket) or PING frames (SPDY) from a server's output.

    Fed the server's bytes in any chunks, it returns them without those frames. The
    HTTP response head passes untouched; a response that is not ``101`` passes whole.

    Args:
        transport: ``"websocket"`` or ``"spdy"``.
    """

    def __init__(self, transport: str) -> None:
        self._spdy = transport == "spdy"
        self._head: bytearray | None = bytearray()
        self._header = bytearray()
        self._remaining = 0  # payload bytes left in the current frame
        self._dropping = False
        self._passthrough = False

    def feed(self, data: bytes) -> bytes:
        """Return ``data`` without the frames this filter removes."""
        if self._passthrough:
            return data
        out = bytearray()
        view = memoryview(data)
        if self._head is not None:
            view = self._take_head(view, out)
        while view:
            if self._remaining:
                step = min(self._remaining, len(view))
                if not self._dropping:
                    out += view[:step]
                self._remaining -= step
                view = view[step:]
                continue
            self._header += view[:1]
            view = view[1:]
            needed = self._header_size()
            if needed is not None and len(self._header) >= needed:
                header = bytes(self._header)
                self._header.clear()
                self._start_frame(header)
                if not self._dropping:
                    out += header
        return bytes(out)

    def _take_head(self, view: memoryview, out: bytearray) -> memoryview:
        assert self._head is not None
        self._head += view
        end = self._head.find(_HEAD_END)
        if end < 0:
            if len(self._head) > _MAX_HEAD:
                self._passthrough = True
                out += self._head
            return view[len(view):]
        head, rest = bytes(self._head[:end + 4]), bytes(self._head[end + 4:])
        self._head = None
        out += head
        if not head.startswith((b"HTTP/1.1 101", b"HTTP/1.0 101")):
            self._passthrough = True
            out += rest
            return memoryview(b"")
        return memoryview(rest)

    def _header_size(self) -> int | None:
        header = self._header
        if self._spdy:
            return 8
        if len(header) < 2:
            return None
        length = header[1] & 0x7F
        masked = 4 if header[1] & 0x80 else 0
        return 2 + masked + (2 if length == 126 else 8 if length == 127 else 0)

    def _start_frame(self, header: bytes) -> None:
        if self._spdy:
            length = int.from_bytes(header[5:8], "big")
            control = bool(header[0] & 0x80)
            self._dropping = control and int.from_bytes(header[2:4], "big") == _SPDY_PING
        else:
            length = header[1] & 0x7F
            if length == 126:
                length = int.from_bytes(header[2:4], "big")
            elif length == 127:
                length = int.from_bytes(header[2:10], "big")
            self._dropping = header[0] & 0x0F == _WS_PONG
        self._remaining = length


class WireTap(asyncio.Transport):
    """Wraps a server connection's transport: counts, cuts and filters its bytes.

    Args:
        transport: the real transport.
        close_after_out: close once this many bytes went to the client.
        pongs: removes the node's pong frames, or ``None`` to keep them.
        on_out: called with the count of each write that reaches the client.
    """

    def __init__(self, transport: asyncio.Transport, *, close_after_out: int | None,
                 pongs: PongFilter | None, on_out: Callable[[int], None]) -> None:
        super().__init__()
        self._real = transport
        self._budget = close_after_out
        self._pongs = pongs
        self._on_out = on_out
        self._cut = False

    def cut(self) -> None:
        """Close the connection now; whatever comes later is dropped."""
        if not self._cut:
            self._cut = True
            self._real.close()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._cut:
            return
        chunk: bytes | bytearray | memoryview = data  # copied only when cut or filtered
        if self._pongs is not None:
            chunk = self._pongs.feed(bytes(chunk))
        if self._budget is not None:
            chunk = bytes(chunk[:self._budget])
            self._budget -= len(chunk)
        if len(chunk):
            self._on_out(len(chunk))
            self._real.write(chunk)
        if self._budget == 0:
            self.cut()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        if not self._cut:
            self._real.write_eof()

    def can_write_eof(self) -> bool:
        return self._real.can_write_eof()

    def abort(self) -> None:
        self._cut = True
        self._real.abort()

    def close(self) -> None:
        self._real.close()

    def is_closing(self) -> bool:
        return self._cut or self._real.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._real.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._real.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._real.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._real.pause_reading()

    def resume_reading(self) -> None:
        self._real.resume_reading()

    def is_reading(self) -> bool:
        return self._real.is_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._real.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._real.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._real.get_protocol()

