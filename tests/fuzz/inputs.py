"""What the fuzz drivers feed the targets: raw bytes, generated frames, mutated sessions.

Frames are built here byte by byte, independently of kstream's own encoders, so that
they can be wrong in every way the wire allows: reserved bits, non-minimal lengths,
unmasked client frames, unknown opcodes and control frame types, bad versions, lengths
that disagree with the payload. SPDY header blocks are compressed with one zlib stream
per example (as a peer would), so that later blocks in the same input still inflate.
"""

from __future__ import annotations

import struct
import zlib

from hypothesis import strategies as st

from kstream._spdy.dictionary import HEADER_DICTIONARY

#: Mutation operations: what a fuzzer does to a recorded session.
MUTATIONS = ("flip", "set", "delete", "insert", "duplicate", "truncate")


def mutate(seed: bytes, operations: list[tuple[str, int, int, bytes]]) -> bytes:
    """Apply ``operations`` (name, position, size, bytes) to ``seed``; positions wrap."""
    data = bytearray(seed)
    for name, position, size, extra in operations:
        at = position % (len(data) + 1)
        if name == "flip" and data:
            data[at % len(data)] ^= 1 << (size % 8)
        elif name == "set" and data:
            data[at % len(data)] = size % 256
        elif name == "delete":
            del data[at:at + size]
        elif name == "insert":
            data[at:at] = extra
        elif name == "duplicate":
            data[at:at] = data[at:at + size]
        elif name == "truncate":
            del data[at:]
    return bytes(data)


def mutations() -> st.SearchStrategy[list[tuple[str, int, int, bytes]]]:
    """Lists of 1 to 8 mutation operations."""
    return st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 1 << 16),
                              st.integers(0, 64), st.binary(max_size=16)),
                    min_size=1, max_size=8)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` (positions wrap), as the reads of a socket."""
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(data[start:point])
        start = point
    pieces.append(data[start:])
    return pieces


# --------------------------------------------------------------------------- WebSocket


def websocket_frame(*, fin: bool, rsv: int, opcode: int, masked: bool, payload: bytes,
                    length_form: int, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    """One RFC 6455 frame; ``length_form`` 0 is minimal, 1 forces 16 bits, 2 forces 64."""
    first = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 15)
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if length_form == 0 and size < 126:
        header = bytes([first, mask_bit | size])
    elif length_form <= 1 and size < 1 << 16:
        header = bytes([first, mask_bit | 126]) + struct.pack("!H", size)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack("!Q", size)
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


@st.composite
def websocket_frames(draw: st.DrawFn, *, masked: bool | None = None) -> bytes:
    """A run of 1 to 6 WebSocket frames, valid and not, concatenated."""
    frames = []
    for _ in range(draw(st.integers(1, 6))):
        opcode = draw(st.sampled_from([0, 1, 2, 8, 9, 10]) | st.integers(0, 15))
        channel = draw(st.sampled_from([0, 1, 2, 3, 4, 255]) | st.integers(0, 255))
        body = draw(st.binary(max_size=200))
        if opcode == 8 and draw(st.booleans()):
            body = struct.pack("!H", draw(st.sampled_from([1000, 1001, 1002, 1009, 3000])
                                          | st.integers(0, 65535))) + body[:20]
        elif opcode in (1, 2) and draw(st.booleans()):
            body = bytes([channel]) + body
        frames.append(websocket_frame(
            fin=draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else True,
            rsv=draw(st.integers(0, 7)) if draw(st.integers(0, 7)) == 0 else 0,
            opcode=opcode,
            masked=draw(st.booleans()) if masked is None else masked,
            payload=body, length_form=draw(st.integers(0, 2)),
            mask=draw(st.binary(min_size=4, max_size=4))))
    return b"".join(frames)


# --------------------------------------------------------------------------- SPDY


def _header_block(headers: list[tuple[bytes, bytes]]) -> bytes:
    out = [struct.pack("!I", len(headers))]
    for name, value in headers:
        out += [struct.pack("!I", len(name)), name, struct.pack("!I", len(value)), value]
    return b"".join(out)


def spdy_control(frame_type: int, flags: int, data: bytes, *, version: int = 3) -> bytes:
    """A SPDY control frame: control bit, version, type, flags, 24-bit length, data."""
    return struct.pack("!HHI", 0x8000 | version, frame_type, (flags << 24) | len(data)) + data


def spdy_data(stream_id: int, flags: int, payload: bytes) -> bytes:
    """A SPDY DATA frame."""
    return struct.pack("!II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


@st.composite
def spdy_frames(draw: st.DrawFn) -> bytes:
    """A run of 1 to 8 SPDY/3.1 frames, valid and not, with one zlib stream for headers."""
    compressor = zlib.compressobj(zdict=HEADER_DICTIONARY)
    stream_ids = st.sampled_from([1, 2, 3, 4, 5, 7, 9]) | st.integers(0, 0x7FFFFFFF)

    def block() -> bytes:
        names = st.sampled_from([b"streamtype", b"port", b"requestid", b":status",
                                 b"Upper"]) | st.binary(max_size=12)
        values = st.sampled_from([b"error", b"stdin", b"stdout", b"stderr", b"resize",
                                  b"data", b"80"]) | st.binary(max_size=12)
        raw = _header_block(draw(st.lists(st.tuples(names, values), max_size=4)))
        if draw(st.integers(0, 9)) == 0:
            raw = draw(st.binary(max_size=64))
        return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)

    frames = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["data", "syn_stream", "syn_reply", "rst", "settings",
                                     "ping", "goaway", "headers", "window", "unknown"]))
        flags = draw(st.sampled_from([0, 1, 2]) | st.integers(0, 255))
        sid = draw(stream_ids)
        if kind == "data":
            frames.append(spdy_data(sid, flags, draw(st.binary(max_size=300))))
            continue
        if kind == "syn_stream":
            frame_type, data = 1, struct.pack("!IIH", sid, 0, 0) + block()
        elif kind == "syn_reply":
            frame_type, data = 2, struct.pack("!I", sid) + block()
        elif kind == "rst":
            frame_type, data = 3, struct.pack("!II", sid, draw(st.integers(0, 12)))
        elif kind == "settings":
            entries = draw(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 1 << 24),
                                              st.integers(0, (1 << 32) - 1)), max_size=4))
            data = struct.pack("!I", len(entries)) + b"".join(
                struct.pack("!II", (f << 24) | i, v) for f, i, v in entries)
            frame_type = 4
        elif kind == "ping":
            frame_type, data = 6, struct.pack("!I", draw(st.integers(0, (1 << 32) - 1)))
        elif kind == "goaway":
            frame_type, data = 7, struct.pack("!II", sid, draw(st.integers(0, 3)))
        elif kind == "headers":
            frame_type, data = 8, struct.pack("!I", sid) + block()
        elif kind == "window":
            frame_type, data = 9, struct.pack("!II", sid, draw(st.integers(0, 1 << 31)))
        else:
            frame_type, data = draw(st.integers(10, 0xFFFF)), draw(st.binary(max_size=32))
        if draw(st.integers(0, 9)) == 0:
            data = data[:draw(st.integers(0, len(data)))]  # a length that lies
        version = 3 if draw(st.integers(0, 15)) else draw(st.integers(0, 0x7FFF))
        frames.append(spdy_control(frame_type, flags, data, version=version))
    return b"".join(frames)
