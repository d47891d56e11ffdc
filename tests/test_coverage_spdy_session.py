"""Branch-coverage tests of the SPDY/3.1 session (kstream._spdy.session, _spdy.handlers).

Each test pins down one behaviour the older test files left unexercised; the branch it
covers is named in its docstring.
"""

from __future__ import annotations

import struct

import pytest
from test_spdy_session import ERROR_STREAM, Peer, pump, strict_pair

from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._events import PongReceived
from kstream._spdy.events import SettingsReceived, StreamData, StreamReset
from kstream._spdy.frames import (
    MAX_STREAM_ID,
    FrameEncoder,
    PingFrame,
    RstStatus,
    RstStreamFrame,
    SettingId,
    WindowUpdateFrame,
)
from kstream._spdy.session import SpdySession, _immutable_view
from kstream._spdy.state import SessionState


def settings_frame(setting_id: int, value: int) -> bytes:
    """One SETTINGS entry, built by hand: the value may be any 32-bit number."""
    payload = struct.pack(">II", 1, setting_id) + struct.pack(">I", value)
    return struct.pack(">HHI", 0x8003, 4, len(payload)) + payload


def test_immutable_view_of_bytes_shares_them() -> None:
    """``_immutable_view``: ``bytes`` are viewed as they are, not copied."""
    data = b"abc"
    view = _immutable_view(data)
    assert view.obj is data and view.readonly and bytes(view) == data


def test_last_peer_stream_id_follows_the_peers_streams() -> None:
    """``last_peer_stream_id``: 0 until the peer opens a stream, then its highest id."""
    client, server = SpdySession(client=True), SpdySession(client=False)
    assert server.last_peer_stream_id == 0
    client.open_stream(ERROR_STREAM)
    last = client.open_stream(ERROR_STREAM)
    pump(client, server)
    assert server.last_peer_stream_id == last == 3
    assert client.last_peer_stream_id == 0


def test_strict_send_window_is_zero_for_a_stream_that_cannot_send() -> None:
    """``send_window``: strict mode answers 0 for unknown and half-closed streams."""
    client, _server, sid = strict_pair()
    assert client.send_window(sid) == 65536
    assert client.send_window(sid + 2) == 0
    client.end_stream(sid)
    assert client.send_window(sid) == 0


def test_stream_ids_run_out() -> None:
    """``open_stream``: past 2^31-1 no stream can be opened; the last id still can."""
    client = SpdySession(client=True)
    client._next_stream_id = MAX_STREAM_ID  # as after 2^30 streams
    assert client.open_stream(ERROR_STREAM) == MAX_STREAM_ID
    with pytest.raises(LocalProtocolError, match="exhausted"):
        client.open_stream(ERROR_STREAM)


def test_the_oldest_unanswered_ping_is_forgotten_past_the_bound() -> None:
    """``ping``: at 1024 unanswered pings the oldest one is dropped."""
    client = SpdySession(client=True)
    peer = Peer(client)
    for now in range(1025):
        client.ping(float(now))
    assert client.awaiting_pong_since == 1.0
    pings = peer.received()
    assert [f.ping_id for f in pings if isinstance(f, PingFrame)][:2] == [1, 3]
    # The echo of the forgotten ping is not a pong; the next one's is.
    assert peer.send(peer.encoder.ping(1)) == []
    assert peer.send(peer.encoder.ping(3)) == [PongReceived(payload=struct.pack(">I", 3),
                                                            sent_at=1.0)]


def test_acknowledging_data_of_a_forgotten_stream_credits_the_session_only() -> None:
    """``acknowledge_received_data``: the stream is closed and gone; the session window
    still gets its credit back."""
    client, server, sid = strict_pair()
    client.send_data(sid, b"x" * 40000, fin=True)
    events = pump(client, server)
    assert sum(len(e.data) for e in events if isinstance(e, StreamData)) == 40000
    server.end_stream(sid)
    server.data_to_send()
    assert sid not in server._streams
    server.acknowledge_received_data(sid, 40000)
    frames = Peer(server).received()
    assert frames == [WindowUpdateFrame(stream_id=0, delta=40000)]


def test_strict_initial_window_setting_over_2_31_is_a_session_error() -> None:
    """``_apply_initial_window``: INITIAL_WINDOW_SIZE above 2^31-1 fails the session."""
    client, _server, _sid = strict_pair()
    with pytest.raises(RemoteProtocolError, match="exceeds 2"):
        client.receive_data(settings_frame(SettingId.INITIAL_WINDOW_SIZE, 1 << 31))
    assert client.state is SessionState.FAILED


def test_strict_initial_window_delta_that_overflows_a_stream_resets_it() -> None:
    """``_apply_initial_window``: a delta pushing a stream's window past 2^31-1."""
    client, _server, sid = strict_pair()
    peer = Peer(client)
    peer.received()
    client.receive_data(FrameEncoder().window_update(sid, (1 << 31) - 1 - 65536))
    assert client.send_window(sid) == 65536  # the session window still bounds it
    events = peer.send(settings_frame(SettingId.INITIAL_WINDOW_SIZE, 65537))
    assert events == [
        StreamReset(stream_id=sid, status=RstStatus.FLOW_CONTROL_ERROR, local=True),
        SettingsReceived(entries=((0, SettingId.INITIAL_WINDOW_SIZE, 65537),)),
    ]
    assert peer.received() == [RstStreamFrame(stream_id=sid,
                                              status=RstStatus.FLOW_CONTROL_ERROR)]
