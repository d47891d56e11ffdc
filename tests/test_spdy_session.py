"""Tests of the sans-IO SPDY/3.1 session (_spdy/session.py, events.py, state.py)."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._events import ConnectionClosed, PingReceived, PongReceived
from kstream._spdy.events import (
    DataDropped,
    GoAwayReceived,
    HeadersReceived,
    SettingsReceived,
    SpdyEvent,
    StreamData,
    StreamEnded,
    StreamOpened,
    StreamReplied,
    StreamReset,
    UnknownFrameSkipped,
    WindowUpdated,
)
from kstream._spdy.frames import (
    DataFrame,
    Frame,
    FrameDecoder,
    FrameEncoder,
    GoAwayFrame,
    GoAwayStatus,
    HeadersFrame,
    PingFrame,
    RstStatus,
    RstStreamFrame,
    SettingId,
    SettingsFrame,
    SynReplyFrame,
    SynStreamFrame,
    WindowUpdateFrame,
)
from kstream._spdy.session import SpdySession, StreamClosedError
from kstream._spdy.state import (
    SESSION_SENDING_STATES,
    SESSION_TRANSITIONS,
    STREAM_RECEIVE_VIOLATIONS,
    STREAM_RECEIVING_STATES,
    STREAM_SENDING_STATES,
    STREAM_TRANSITIONS,
    SessionInput,
    SessionState,
    StreamInput,
    StreamState,
)

S = StreamState
I = StreamInput  # noqa: E741
ERROR_STREAM = (("streamtype", "error"),)
# A control frame of SPDY version 2: the decoder refuses it.
MALFORMED = bytes.fromhex("80020001 00000000".replace(" ", ""))
# An unknown control type (10, CREDENTIAL) with a 4-byte payload.
UNKNOWN_FRAME = bytes.fromhex("8003000a 00000004 deadbeef".replace(" ", ""))


class Peer:
    """The far end, frame by frame: encodes what it sends, decodes what the session sends."""

    def __init__(self, session: SpdySession) -> None:
        self.session = session
        self.encoder = FrameEncoder()
        self.decoder = FrameDecoder()

    def send(self, *frames: bytes) -> list[SpdyEvent]:
        return self.session.receive_data(b"".join(frames))

    def received(self) -> list[Frame]:
        return self.decoder.feed(self.session.data_to_send())


def goaway_protocol_error_queued(data: bytes) -> bool:
    """Whether ``data`` ends with a GOAWAY PROTOCOL_ERROR frame."""
    return len(data) >= 16 and data[-16:-8] == bytes.fromhex("8003000700000008") and \
        data[-4:] == b"\x00\x00\x00\x01"


def pump(source: SpdySession, sink: SpdySession) -> list[SpdyEvent]:
    data = source.data_to_send()
    return sink.receive_data(data) if data else []  # b"" would mean EOF


def pair() -> tuple[SpdySession, SpdySession]:
    return SpdySession(client=True), SpdySession(client=False)


# --------------------------------------------------------------------------- stream table


def simulate(state: StreamState, inputs: Sequence[StreamInput]) -> tuple[StreamState, str]:
    """What the tables say happens when ``inputs`` are received, one after the other.

    Returns the final state and the outcome of the last input applied: "deliver", "drop",
    a RstStatus name, or "session".
    """
    outcome = "deliver"
    for inp in inputs:
        target = STREAM_TRANSITIONS.get((state, inp))
        if target is not None:
            state, outcome = target, "deliver"
            continue
        if (state, inp) not in STREAM_RECEIVE_VIOLATIONS:
            return state, "session"
        status = STREAM_RECEIVE_VIOLATIONS[state, inp]
        if status is None:
            return state, "drop"
        return S.CLOSED, status.name
    return state, outcome


SEND_INPUTS = [inp for inp in StreamInput if inp.value.startswith("SEND_")]
RECV_INPUTS = [inp for inp in StreamInput if inp.value.startswith("RECV_")]


def test_stream_tables_classify_every_pair() -> None:
    for state in StreamState:
        for inp in RECV_INPUTS:
            in_transitions = (state, inp) in STREAM_TRANSITIONS
            in_violations = (state, inp) in STREAM_RECEIVE_VIOLATIONS
            assert not (in_transitions and in_violations), (state, inp)
            if not (in_transitions or in_violations):
                # The only session-level stream violation.
                assert (state, inp) == (S.IDLE, I.RECV_SYN_REPLY)
        for inp in SEND_INPUTS:
            assert (state, inp) not in STREAM_RECEIVE_VIOLATIONS


def test_stream_table_shape() -> None:
    for (state, inp), target in STREAM_TRANSITIONS.items():
        assert target is not S.IDLE  # nothing goes back to IDLE
        if state is S.CLOSED:
            assert target is S.CLOSED
        if inp in (I.SEND_RST, I.RECV_RST):
            assert target is S.CLOSED
    # Every opened stream can be reset from our side.
    for state in StreamState:
        if state is not S.IDLE:
            assert STREAM_TRANSITIONS[state, I.SEND_RST] is S.CLOSED


def setup_stream(state: StreamState, inp: StreamInput) -> tuple[Peer, int]:
    """A client session with a stream in ``state``; return the peer and the stream id."""
    peer = Peer(SpdySession(client=True))
    session, enc = peer.session, peer.encoder
    sid = 1
    if state is S.IDLE:
        sid = 2 if inp is I.RECV_SYN_STREAM else 1
    elif state in (S.AWAITING_REPLY, S.OPEN, S.HALF_CLOSED_REMOTE, S.CLOSED):
        sid = session.open_stream(ERROR_STREAM)
        if state is S.OPEN:
            peer.send(enc.syn_reply(sid))
        elif state is S.HALF_CLOSED_REMOTE:
            peer.send(enc.syn_reply(sid, fin=True))
        elif state is S.CLOSED:
            session.reset_stream(sid)
    elif state in (S.AWAITING_REPLY_LOCAL_CLOSED, S.HALF_CLOSED_LOCAL):
        sid = session.open_stream(ERROR_STREAM, fin=True)
        if state is S.HALF_CLOSED_LOCAL:
            peer.send(enc.syn_reply(sid))
    else:
        sid = 2
        peer.send(enc.syn_stream(sid, ERROR_STREAM, fin=state is S.UNREPLIED_REMOTE_CLOSED))
    assert session.stream_state(sid) is state
    peer.received()  # drain, keeping the peer's decoder in step
    return peer, sid


RECEIVED_FRAME: dict[StreamInput, tuple[Callable[[FrameEncoder, int], bytes],
                                        list[StreamInput]]] = {
    I.RECV_SYN_STREAM: (lambda e, sid: e.syn_stream(sid, ERROR_STREAM), [I.RECV_SYN_STREAM]),
    I.RECV_SYN_REPLY: (lambda e, sid: e.syn_reply(sid), [I.RECV_SYN_REPLY]),
    I.RECV_HEADERS: (lambda e, sid: e.headers(sid, (("a", "b"),)), [I.RECV_HEADERS]),
    I.RECV_DATA: (lambda e, sid: e.data(sid, b"xyz"), [I.RECV_DATA]),
    # An empty DATA frame with FIN: one empty piece, i.e. DATA then FIN.
    I.RECV_FIN: (lambda e, sid: e.data(sid, b"", fin=True), [I.RECV_DATA, I.RECV_FIN]),
    I.RECV_RST: (lambda e, sid: e.rst_stream(sid, RstStatus.CANCEL), [I.RECV_RST]),
}
DELIVERED_EVENT: dict[StreamInput, type[SpdyEvent]] = {
    I.RECV_SYN_STREAM: StreamOpened, I.RECV_SYN_REPLY: StreamReplied,
    I.RECV_HEADERS: HeadersReceived, I.RECV_DATA: StreamData, I.RECV_FIN: StreamEnded,
    I.RECV_RST: StreamReset,
}


@pytest.mark.parametrize("inp", RECV_INPUTS, ids=lambda i: i.value)
@pytest.mark.parametrize("state", list(StreamState), ids=lambda s: s.value)
def test_every_stream_state_and_received_input(state: StreamState, inp: StreamInput) -> None:
    peer, sid = setup_stream(state, inp)
    build, inputs = RECEIVED_FRAME[inp]
    expected_state, outcome = simulate(state, inputs)
    if inp is I.RECV_SYN_STREAM and state is not S.IDLE:
        # Reusing a stream id breaks connection.go validateStreamId: RST PROTOCOL_ERROR.
        assert outcome == "PROTOCOL_ERROR"
    if outcome == "session":
        with pytest.raises(RemoteProtocolError):
            peer.send(build(peer.encoder, sid))
        assert peer.session.state is SessionState.FAILED
        assert isinstance(peer.received()[-1], GoAwayFrame)
        return
    events = peer.send(build(peer.encoder, sid))
    sent = peer.received()
    assert peer.session.stream_state(sid) is expected_state
    if outcome == "deliver":
        assert type(events[-1]) is DELIVERED_EVENT[inp]
        assert sent == []
    elif outcome == "drop":
        expected: list[SpdyEvent] = []
        if inp is I.RECV_DATA:
            expected = [DataDropped(stream_id=sid, size=3)]
        assert events == expected
        assert sent == []
    else:
        assert sent == [RstStreamFrame(sid, RstStatus[outcome])]
        resets = [e for e in events if isinstance(e, StreamReset)]
        if state is not S.CLOSED:
            assert resets == [StreamReset(stream_id=sid, status=RstStatus[outcome], local=True)]


SEND_ACTION: dict[StreamInput, Callable[[SpdySession, int], object]] = {
    I.SEND_SYN_REPLY: lambda s, sid: s.reply(sid),
    I.SEND_HEADERS: lambda s, sid: s.send_headers(sid, (("a", "b"),)),
    I.SEND_DATA: lambda s, sid: s.send_data(sid, b"x"),
    I.SEND_FIN: lambda s, sid: s.end_stream(sid),
    I.SEND_RST: lambda s, sid: s.reset_stream(sid),
}
SENT_FRAME: dict[StreamInput, type] = {
    I.SEND_SYN_REPLY: SynReplyFrame, I.SEND_HEADERS: HeadersFrame, I.SEND_DATA: DataFrame,
    I.SEND_FIN: DataFrame, I.SEND_RST: RstStreamFrame,
}


@pytest.mark.parametrize("inp", SEND_INPUTS, ids=lambda i: i.value)
@pytest.mark.parametrize("state", list(StreamState), ids=lambda s: s.value)
def test_every_stream_state_and_sent_input(state: StreamState, inp: StreamInput) -> None:
    peer, sid = setup_stream(state, inp)
    session = peer.session
    target = STREAM_TRANSITIONS.get((state, inp))
    if inp is I.SEND_SYN_STREAM:
        # open_stream always takes a fresh id: an opened stream is never re-opened.
        new_id = session.open_stream(ERROR_STREAM)
        assert new_id != sid or state is S.IDLE
        assert (target is not None) == (state is S.IDLE)
        assert isinstance(peer.received()[-1], SynStreamFrame)
        return
    if target is None:
        with pytest.raises(LocalProtocolError):
            SEND_ACTION[inp](session, sid)
        assert session.stream_state(sid) is state
        assert session.data_to_send() == b""
        return
    SEND_ACTION[inp](session, sid)
    assert session.stream_state(sid) is target
    sent = peer.received()
    if state is S.CLOSED:  # resetting a closed stream sends nothing
        assert sent == []
        return
    assert len(sent) == 1
    assert type(sent[0]) is SENT_FRAME[inp]
    if inp is I.SEND_FIN:
        assert sent[0] == DataFrame(sid, b"", True)


# --------------------------------------------------------------------------- session table


def setup_session(state: SessionState) -> Peer:
    """A client session with streams 1 (open), 3 (awaiting reply), 2 (peer's, unreplied)."""
    peer = Peer(SpdySession(client=True))
    session, enc = peer.session, peer.encoder
    session.open_stream(ERROR_STREAM)
    session.open_stream(ERROR_STREAM)
    peer.send(enc.syn_reply(1), enc.syn_stream(2, ERROR_STREAM))
    if state is SessionState.GOAWAY_SENT:
        session.goaway()
    elif state is SessionState.GOAWAY_RECEIVED:
        peer.send(enc.goaway(0))
    elif state is SessionState.CLOSED:
        peer.send(b"")
    elif state is SessionState.FAILED:
        with pytest.raises(RemoteProtocolError):
            peer.send(MALFORMED)
    assert session.state is state
    peer.received()
    return peer


SESSION_ACTION: dict[SessionInput, Callable[[Peer], object]] = {
    SessionInput.RECV_SYN_STREAM: lambda p: p.send(p.encoder.syn_stream(4, ERROR_STREAM)),
    SessionInput.RECV_SYN_REPLY: lambda p: p.send(p.encoder.syn_reply(3)),
    SessionInput.RECV_RST_STREAM: lambda p: p.send(p.encoder.rst_stream(1, RstStatus.CANCEL)),
    SessionInput.RECV_SETTINGS: lambda p: p.send(p.encoder.settings([(0, 7, 1000)])),
    SessionInput.RECV_PING: lambda p: p.send(p.encoder.ping(2)),
    SessionInput.RECV_GOAWAY: lambda p: p.send(p.encoder.goaway(0)),
    SessionInput.RECV_HEADERS: lambda p: p.send(p.encoder.headers(1, (("a", "b"),))),
    SessionInput.RECV_WINDOW_UPDATE: lambda p: p.send(p.encoder.window_update(1, 10)),
    SessionInput.RECV_DATA: lambda p: p.send(p.encoder.data(1, b"x")),
    SessionInput.RECV_UNKNOWN: lambda p: p.send(UNKNOWN_FRAME),
    SessionInput.RECV_EOF: lambda p: p.send(b""),
    SessionInput.RECV_MALFORMED: lambda p: p.send(MALFORMED),
    SessionInput.SEND_SYN_STREAM: lambda p: p.session.open_stream(ERROR_STREAM),
    SessionInput.SEND_SYN_REPLY: lambda p: p.session.reply(2),
    SessionInput.SEND_RST_STREAM: lambda p: p.session.reset_stream(1),
    SessionInput.SEND_PING: lambda p: p.session.ping(0.0),
    SessionInput.SEND_GOAWAY: lambda p: p.session.goaway(),
    SessionInput.SEND_HEADERS: lambda p: p.session.send_headers(1, (("a", "b"),)),
    SessionInput.SEND_WINDOW_UPDATE: lambda p: p.session.acknowledge_received_data(1, 0),
    SessionInput.SEND_DATA: lambda p: p.session.send_data(1, b"x"),
}


def test_session_actions_cover_every_input() -> None:
    assert set(SESSION_ACTION) == set(SessionInput)


def test_session_table_shape() -> None:
    for (state, inp), target in SESSION_TRANSITIONS.items():
        assert state is not SessionState.FAILED  # terminal
        if state is SessionState.CLOSED:
            assert (inp, target) == (SessionInput.RECV_EOF, SessionState.CLOSED)
        if inp is SessionInput.RECV_MALFORMED:
            assert target is SessionState.FAILED
    assert not [key for key in SESSION_TRANSITIONS
                if key[0] is SessionState.GOAWAY_SENT and key[1].value.startswith("SEND_")]


@pytest.mark.parametrize("inp", list(SessionInput), ids=lambda i: i.value)
@pytest.mark.parametrize("state", list(SessionState), ids=lambda s: s.value)
def test_every_session_state_and_input(state: SessionState, inp: SessionInput) -> None:
    peer = setup_session(state)
    target = SESSION_TRANSITIONS.get((state, inp))
    action = SESSION_ACTION[inp]
    receiving = inp.value.startswith("RECV_")
    if target is None:
        expected_error: type[Exception] = LocalProtocolError
        if receiving and state is SessionState.FAILED:
            expected_error = RemoteProtocolError
        with pytest.raises(expected_error):
            action(peer)
        assert peer.session.state is state
        assert peer.session.data_to_send() == b""
        return
    if inp is SessionInput.RECV_MALFORMED:
        with pytest.raises(RemoteProtocolError):
            action(peer)
        data = peer.session.data_to_send()
        # Before raising, GOAWAY PROTOCOL_ERROR is queued (unless ours went out already).
        assert goaway_protocol_error_queued(data) == (state is not SessionState.GOAWAY_SENT)
    else:
        action(peer)
    assert peer.session.state is target


# --------------------------------------------------------------------------- back to back


def test_stream_ids_are_odd_for_clients_and_even_for_servers() -> None:
    client, server = pair()
    assert [client.open_stream(ERROR_STREAM) for _ in range(3)] == [1, 3, 5]
    assert [server.open_stream(ERROR_STREAM) for _ in range(3)] == [2, 4, 6]
    assert client.is_client and not server.is_client


def test_open_reply_data_both_ways_and_half_close() -> None:
    client, server = pair()
    sid = client.open_stream((("streamtype", "stdin"),))
    client.send_data(sid, b"early")  # the opener may write before the reply (Go does)
    assert pump(client, server) == [
        StreamOpened(stream_id=sid, headers=(("streamtype", "stdin"),)),
        StreamData(stream_id=sid, data=b"early")]
    server.reply(sid)
    server.send_data(sid, bytearray(b"from server"))
    assert pump(server, client) == [StreamReplied(stream_id=sid),
                                    StreamData(stream_id=sid, data=b"from server")]
    client.send_data(sid, memoryview(b"from client"), fin=True)
    assert pump(client, server) == [StreamData(stream_id=sid, data=b"from client"),
                                    StreamEnded(stream_id=sid)]
    assert client.stream_state(sid) is S.HALF_CLOSED_LOCAL
    assert server.stream_state(sid) is S.HALF_CLOSED_REMOTE
    server.send_data(sid, b"still open")
    server.end_stream(sid)
    assert pump(server, client) == [StreamData(stream_id=sid, data=b"still open"),
                                    StreamEnded(stream_id=sid)]
    assert client.stream_state(sid) is S.CLOSED
    assert server.stream_state(sid) is S.CLOSED
    with pytest.raises(LocalProtocolError):
        client.send_data(sid, b"late")


def test_server_opened_stream() -> None:
    client, server = pair()
    sid = server.open_stream((("port", "80"),), fin=True)
    assert pump(server, client) == [
        StreamOpened(stream_id=2, headers=(("port", "80"),), fin=True), StreamEnded(stream_id=2)]
    client.reply(sid, fin=True)
    assert pump(client, server) == [StreamReplied(stream_id=2, fin=True),
                                    StreamEnded(stream_id=2)]
    assert client.stream_state(sid) is S.CLOSED and server.stream_state(sid) is S.CLOSED


def test_reset_ends_the_stream_and_late_data_is_dropped() -> None:
    client, server = pair()
    sid = client.open_stream(ERROR_STREAM)
    pump(client, server)
    server.reply(sid)
    pump(server, client)
    client.reset_stream(sid)
    assert pump(client, server) == [StreamReset(stream_id=sid, status=RstStatus.CANCEL)]
    # Data the server wrote before it saw the RST crosses it: dropped, not an error.
    events = client.receive_data(FrameEncoder().data(sid, b"late"))
    assert events == [DataDropped(stream_id=sid, size=4)]
    client.reset_stream(sid)  # resetting again: nothing happens
    assert client.data_to_send() == b""


def test_reset_before_reply_fails_the_pending_stream() -> None:
    client, server = pair()
    sid = client.open_stream(ERROR_STREAM)
    pump(client, server)
    server.reset_stream(sid, RstStatus.REFUSED_STREAM)
    assert pump(server, client) == [StreamReset(stream_id=sid,
                                                status=RstStatus.REFUSED_STREAM)]


def test_pings_both_ways_use_their_parity() -> None:
    client, server = pair()
    client.ping(10.0)
    client.ping(11.0)
    assert client.awaiting_pong_since == 10.0
    assert pump(client, server) == [PingReceived(payload=b"\0\0\0\1"),
                                    PingReceived(payload=b"\0\0\0\3")]
    assert pump(server, client) == [PongReceived(payload=b"\0\0\0\1", sent_at=10.0),
                                    PongReceived(payload=b"\0\0\0\3", sent_at=11.0)]
    assert client.awaiting_pong_since is None
    server.ping(20.0)
    assert server.awaiting_pong_since == 20.0
    assert pump(server, client) == [PingReceived(payload=b"\0\0\0\2")]
    assert pump(client, server) == [PongReceived(payload=b"\0\0\0\2", sent_at=20.0)]
    assert server.awaiting_pong_since is None


def test_unknown_pong_is_ignored() -> None:
    session = SpdySession(client=True)
    assert session.receive_data(FrameEncoder().ping(7)) == []  # odd: "ours", never sent
    assert session.data_to_send() == b""


def test_ping_ids_wrap_keeping_their_parity() -> None:
    session = SpdySession(client=True)
    session._next_ping_id = 0x7FFFFFFF
    session.ping(1.0)
    session.ping(2.0)
    frames = FrameDecoder().feed(session.data_to_send())
    assert frames == [PingFrame(0x7FFFFFFF), PingFrame(1)]


def test_goaway_ends_both_sides() -> None:
    client, server = pair()
    sid = client.open_stream(ERROR_STREAM)
    pump(client, server)
    server.reply(sid)
    server.goaway()
    assert server.state is SessionState.GOAWAY_SENT
    with pytest.raises(LocalProtocolError):
        server.send_data(sid, b"x")
    with pytest.raises(LocalProtocolError):
        server.goaway()
    events = pump(server, client)
    assert events == [StreamReplied(stream_id=sid),
                      GoAwayReceived(last_good_stream_id=sid, status=GoAwayStatus.OK)]
    assert client.goaway_received
    with pytest.raises(LocalProtocolError):
        client.open_stream(ERROR_STREAM)
    client.send_data(sid, b"existing streams carry on")
    assert client.receive_data(b"") == [ConnectionClosed(code=0, clean=True)]


def test_goaway_last_good_is_zero_without_peer_streams() -> None:
    session = SpdySession(client=False)
    session.goaway(GoAwayStatus.INTERNAL_ERROR)
    assert FrameDecoder().feed(session.data_to_send()) == [
        GoAwayFrame(0, GoAwayStatus.INTERNAL_ERROR)]


def test_close_is_goaway_ok() -> None:
    session = SpdySession(client=True)
    session.close()
    assert session.data_to_send() == bytes.fromhex("800300070000000800000000" "00000000")


def test_syn_stream_after_our_goaway_is_ignored() -> None:
    peer = Peer(SpdySession(client=False))
    peer.session.goaway()
    peer.received()
    assert peer.send(peer.encoder.syn_stream(1, ERROR_STREAM)) == []
    assert peer.received() == []


@pytest.mark.parametrize("bad_id", [1, 3, 2])
def test_stream_id_rule_violations_are_reset(bad_id: int) -> None:
    peer = Peer(SpdySession(client=False))
    assert [type(e) for e in peer.send(peer.encoder.syn_stream(3, ERROR_STREAM))] == [
        StreamOpened]
    peer.session.reply(3)
    peer.received()
    # 1: lower than one seen; 3: equal (a live stream: it is closed with it); 2: our parity.
    events = peer.send(peer.encoder.syn_stream(bad_id, ERROR_STREAM))
    assert peer.received() == [RstStreamFrame(bad_id, RstStatus.PROTOCOL_ERROR)]
    if bad_id == 3:
        assert events == [StreamReset(stream_id=3, status=RstStatus.PROTOCOL_ERROR, local=True)]
    else:
        assert events == []
    assert peer.session.state is SessionState.OPEN
    # The session carries on.
    assert [type(e) for e in peer.send(peer.encoder.syn_stream(5, ERROR_STREAM))] == [
        StreamOpened]


def test_max_concurrent_streams_refuses_the_excess() -> None:
    peer = Peer(SpdySession(client=False, max_concurrent_streams=2))
    enc = peer.encoder
    events = peer.send(enc.syn_stream(1, ERROR_STREAM), enc.syn_stream(3, ERROR_STREAM),
                       enc.syn_stream(5, ERROR_STREAM))
    assert [e.stream_id for e in events if isinstance(e, StreamOpened)] == [1, 3]
    assert peer.received() == [RstStreamFrame(5, RstStatus.REFUSED_STREAM)]
    assert peer.session.stream_state(5) is S.CLOSED
    peer.session.reset_stream(1)
    events = peer.send(enc.syn_stream(7, ERROR_STREAM))
    assert [type(e) for e in events] == [StreamOpened]


def test_unidirectional_stream_cannot_be_answered() -> None:
    peer = Peer(SpdySession(client=False))
    events = peer.send(peer.encoder.syn_stream(1, ERROR_STREAM, unidirectional=True))
    assert events == [StreamOpened(stream_id=1, headers=ERROR_STREAM, unidirectional=True)]
    assert peer.session.stream_state(1) is S.HALF_CLOSED_LOCAL
    with pytest.raises(LocalProtocolError):
        peer.session.reply(1)
    assert peer.send(peer.encoder.data(1, b"one way")) == [
        StreamData(stream_id=1, data=b"one way")]


def test_data_for_unknown_and_unreplied_streams_is_dropped() -> None:
    peer = Peer(SpdySession(client=True))
    enc = peer.encoder
    assert peer.send(enc.data(9, b"abc")) == [DataDropped(stream_id=9, size=3)]
    sid = peer.session.open_stream(ERROR_STREAM)
    # Before SYN_REPLY: Go's handleDataFrame drops it ("Data frame not replied").
    assert peer.send(enc.data(sid, b"early", fin=True)) == [DataDropped(stream_id=sid, size=5)]
    assert peer.session.stream_state(sid) is S.AWAITING_REPLY


def test_data_after_fin_resets_the_stream() -> None:
    peer = Peer(SpdySession(client=False))
    enc = peer.encoder
    peer.send(enc.syn_stream(1, ERROR_STREAM, fin=True))
    peer.session.reply(1)
    peer.received()
    events = peer.send(enc.data(1, b"after fin"))
    assert events == [StreamReset(stream_id=1, status=RstStatus.STREAM_ALREADY_CLOSED,
                                  local=True)]
    assert peer.received() == [RstStreamFrame(1, RstStatus.STREAM_ALREADY_CLOSED)]


def test_second_syn_reply_is_stream_in_use() -> None:
    peer = Peer(SpdySession(client=True))
    sid = peer.session.open_stream(ERROR_STREAM)
    peer.received()
    peer.send(peer.encoder.syn_reply(sid))
    events = peer.send(peer.encoder.syn_reply(sid))
    assert events == [StreamReset(stream_id=sid, status=RstStatus.STREAM_IN_USE, local=True)]


def test_syn_reply_for_a_stream_never_opened_fails_the_session() -> None:
    peer = Peer(SpdySession(client=True))
    with pytest.raises(RemoteProtocolError) as info:
        peer.send(peer.encoder.syn_reply(5))
    assert info.value.spdy_status == GoAwayStatus.PROTOCOL_ERROR
    assert peer.received() == [GoAwayFrame(0, GoAwayStatus.PROTOCOL_ERROR)]
    with pytest.raises(RemoteProtocolError):
        peer.send(peer.encoder.ping(2))
    with pytest.raises(LocalProtocolError):
        peer.session.open_stream(ERROR_STREAM)


def test_malformed_bytes_fail_the_session_once() -> None:
    peer = Peer(SpdySession(client=False))
    peer.send(peer.encoder.syn_stream(1, ERROR_STREAM))
    with pytest.raises(RemoteProtocolError):
        peer.send(MALFORMED)
    assert peer.received() == [GoAwayFrame(1, GoAwayStatus.PROTOCOL_ERROR)]
    with pytest.raises(RemoteProtocolError):
        peer.send(b"")
    assert peer.session.data_to_send() == b""  # no second GOAWAY


def test_unknown_control_frame_is_skipped() -> None:
    session = SpdySession(client=True)
    assert session.receive_data(UNKNOWN_FRAME + FrameEncoder().ping(2)) == [
        UnknownFrameSkipped(frame_type=10), PingReceived(payload=b"\0\0\0\2")]


def test_settings_and_window_update_are_reported() -> None:
    session = SpdySession(client=True)
    enc = FrameEncoder()
    entries = ((0, SettingId.INITIAL_WINDOW_SIZE, 1000), (1, SettingId.MAX_CONCURRENT_STREAMS, 5))
    events = session.receive_data(enc.settings(entries) + enc.window_update(0, 77))
    assert events == [SettingsReceived(entries=entries), WindowUpdated(stream_id=0, delta=77)]
    assert session.peer_settings == {7: 1000, 4: 5}
    events = session.receive_data(enc.settings([(0, 3, 9)], clear=True))
    assert session.peer_settings == {3: 9}


def test_eof_reports_the_session_end() -> None:
    session = SpdySession(client=True)
    assert session.receive_data(b"") == [ConnectionClosed(code=None, clean=True)]
    assert session.receive_data(b"") == []
    with pytest.raises(LocalProtocolError):
        session.receive_data(b"more")


def test_eof_with_open_streams_or_mid_frame_is_not_clean() -> None:
    session = SpdySession(client=True)
    session.open_stream(ERROR_STREAM)
    assert session.receive_data(b"") == [ConnectionClosed(code=None, clean=False)]
    session = SpdySession(client=True)
    session.receive_data(FrameEncoder().ping(2)[:5])
    assert session.receive_data(b"") == [ConnectionClosed(code=None, clean=False)]
    session = SpdySession(client=True)
    session.receive_data(FrameEncoder().goaway(0, GoAwayStatus.INTERNAL_ERROR))
    assert session.receive_data(b"") == [ConnectionClosed(code=2, clean=False)]


def test_trailing_data_is_decoded_first() -> None:
    enc = FrameEncoder()
    session = SpdySession(client=False, trailing_data=enc.syn_stream(1, ERROR_STREAM))
    assert session.receive_trailing_data() == [StreamOpened(stream_id=1, headers=ERROR_STREAM)]
    assert session.receive_trailing_data() == []
    frame = FrameEncoder().syn_stream(1, ERROR_STREAM)
    session = SpdySession(client=False, trailing_data=frame[:10])
    # Not fetched explicitly: the next receive_data starts with it.
    events = session.receive_data(frame[10:])
    assert events == [StreamOpened(stream_id=1, headers=ERROR_STREAM)]


def test_caller_misuse() -> None:
    session = SpdySession(client=True)
    with pytest.raises(LocalProtocolError):
        session.send_data(1, b"no stream")
    with pytest.raises(LocalProtocolError):
        session.reset_stream(1)
    with pytest.raises(LocalProtocolError):
        session.reply(2)
    with pytest.raises(LocalProtocolError):
        session.open_stream((("Connection", "x"),))  # refused by the encoder
    assert session.open_stream(ERROR_STREAM) == 1  # the refused call did not use an id
    with pytest.raises(LocalProtocolError):
        session.acknowledge_received_data(1, -1)
    with pytest.raises(LocalProtocolError):
        SpdySession(client=True, max_concurrent_streams=0)
    with pytest.raises(LocalProtocolError):
        SpdySession(client=True, initial_window_size=2**31)


def test_empty_send_without_fin_sends_nothing() -> None:
    session = SpdySession(client=True)
    sid = session.open_stream(ERROR_STREAM)
    session.data_to_send()
    session.send_data(sid, b"")
    assert session.data_to_send() == b""


def test_big_writes_are_split_into_24_bit_frames() -> None:
    session = SpdySession(client=True)
    sid = session.open_stream(ERROR_STREAM)
    session.data_to_send()
    payload = bytes(range(256)) * ((1 << 24) // 256 + 1)  # 2^24 + 256 bytes
    session.send_data(sid, payload, fin=True)
    out = session.data_to_send()
    first = struct.unpack(">II", out[:8])
    assert first == (sid, (1 << 24) - 1)
    second_at = 8 + (1 << 24) - 1
    assert struct.unpack(">II", out[second_at:second_at + 8]) == (sid, 0x01 << 24 | 257)
    assert out[8:second_at] + out[second_at + 8:] == payload


# --------------------------------------------------------------------------- Go's bytes


def test_golden_frames_from_go() -> None:
    # protocol-notes §3.3 golden frames (moby/spdystream framer, Go 1.19).
    client = SpdySession(client=True)
    sid = client.open_stream(ERROR_STREAM)
    client.data_to_send()
    client.end_stream(sid)
    assert client.data_to_send() == bytes.fromhex("0000000101000000")
    client.reset_stream(sid)
    client.ping(0.0)
    client.goaway()
    assert client.data_to_send() == bytes.fromhex(
        "80030003000000080000000100000005" "800300060000000400000001"
        "800300070000000800000000" "00000000")
    server = SpdySession(client=False)
    events = server.receive_data(bytes.fromhex(
        "80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c68"
        "51c29a0a0a6800000000ffff" "80030001000000190000000300000000"
        "0000c22ac5565c92925f5a02000000ffff"))
    assert events == [StreamOpened(stream_id=1, headers=ERROR_STREAM),
                      StreamOpened(stream_id=3, headers=(("streamtype", "stdout"),))]


# What a Go exec server sends after its 101 (recorded: Go 1.19 net/http and
# moby/spdystream, replying to SYN_STREAM 1, writing "hi\n", Reset(), Close()).
GO_SERVER_SESSION = bytes.fromhex(
    "80030002000000140000000178f9e3c6a7c26260606000000000ffff"  # SYN_REPLY 1 {}
    "000000010000000368690a"  # DATA 1 "hi\n"
    "800300030000000800000001" "00000005"  # RST_STREAM 1 CANCEL
    "800300070000000800000001" "00000000")  # GOAWAY last=1 OK


def test_recorded_go_server_session() -> None:
    client = SpdySession(client=True)
    assert client.open_stream(ERROR_STREAM) == 1
    events = client.receive_data(GO_SERVER_SESSION)
    assert events == [
        StreamReplied(stream_id=1), StreamData(stream_id=1, data=b"hi\n"),
        StreamReset(stream_id=1, status=RstStatus.CANCEL),
        GoAwayReceived(last_good_stream_id=1, status=GoAwayStatus.OK)]
    assert client.receive_data(b"") == [ConnectionClosed(code=0, clean=True)]


def collapse(events: list[SpdyEvent]) -> list[object]:
    """Events with the DATA pieces of each stream joined (split points vary)."""
    out: list[object] = []
    for event in events:
        if isinstance(event, StreamData) and out and isinstance(out[-1], StreamData) and \
                out[-1].stream_id == event.stream_id:
            out[-1] = StreamData(stream_id=event.stream_id, data=out[-1].data + event.data)
        else:
            out.append(event)
    return out


def test_byte_by_byte_feeding() -> None:
    whole = SpdySession(client=True)
    whole.open_stream(ERROR_STREAM)
    expected = whole.receive_data(GO_SERVER_SESSION)
    split = SpdySession(client=True)
    split.open_stream(ERROR_STREAM)
    events: list[SpdyEvent] = []
    for i in range(len(GO_SERVER_SESSION)):
        events += split.receive_data(GO_SERVER_SESSION[i:i + 1])
    assert collapse(events) == expected


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, len(GO_SERVER_SESSION)), max_size=8))
def test_arbitrary_split_points(cuts: list[int]) -> None:
    session = SpdySession(client=True)
    session.open_stream(ERROR_STREAM)
    events: list[SpdyEvent] = []
    bounds = [0, *sorted(cuts), len(GO_SERVER_SESSION)]
    for start, end in itertools.pairwise(bounds):
        if end > start:  # b"" would mean EOF
            events += session.receive_data(GO_SERVER_SESSION[start:end])
    assert collapse(events) == [
        StreamReplied(stream_id=1), StreamData(stream_id=1, data=b"hi\n"),
        StreamReset(stream_id=1, status=RstStatus.CANCEL),
        GoAwayReceived(last_good_stream_id=1, status=GoAwayStatus.OK)]


# --------------------------------------------------------------------------- flow control


def test_advisory_mode_sends_a_mebibyte_without_window_update() -> None:
    client, server = pair()
    sid = client.open_stream((("streamtype", "stdin"),))
    pump(client, server)
    server.reply(sid)
    pump(server, client)
    assert client.send_window(sid) is None
    client.send_data(sid, b"x" * (1 << 20))  # 16 x the 64 KiB window, no WINDOW_UPDATE
    events = pump(client, server)
    assert sum(len(e.data) for e in events if isinstance(e, StreamData)) == 1 << 20
    server.acknowledge_received_data(sid, 1 << 20)  # a no-op in advisory mode
    assert server.data_to_send() == b""


def strict_pair(initial_window_size: int = 65536) -> tuple[SpdySession, SpdySession, int]:
    client = SpdySession(client=True, strict_flow_control=True,
                         initial_window_size=initial_window_size)
    server = SpdySession(client=False, strict_flow_control=True,
                         initial_window_size=initial_window_size)
    pump(server, client)
    sid = client.open_stream((("streamtype", "stdin"),))
    pump(client, server)
    server.reply(sid)
    pump(server, client)
    return client, server, sid


def test_strict_mode_enforces_the_send_window() -> None:
    client, server, sid = strict_pair()
    assert client.send_window(sid) == 65536
    with pytest.raises(LocalProtocolError):
        client.send_data(sid, b"x" * 65537)
    client.send_data(sid, b"x" * 65536)
    assert client.send_window(sid) == 0
    with pytest.raises(LocalProtocolError):
        client.send_data(sid, b"y")
    client.end_stream(sid)  # FIN needs no window
    assert sum(len(e.data) for e in pump(client, server) if isinstance(e, StreamData)) == 65536


def test_strict_mode_window_updates_follow_acknowledgements() -> None:
    client, server, sid = strict_pair()
    client.send_data(sid, b"x" * 65536)
    pump(client, server)
    server.acknowledge_received_data(sid, 1000)
    assert server.data_to_send() == b""  # not worth a frame yet
    server.acknowledge_received_data(sid, 40000)
    frames = FrameDecoder().feed(server.data_to_send())
    assert frames == [WindowUpdateFrame(sid, 41000), WindowUpdateFrame(0, 41000)]
    with pytest.raises(LocalProtocolError):
        server.acknowledge_received_data(sid, 65536)  # more than is outstanding


def test_strict_mode_window_update_reopens_the_window() -> None:
    client, server, sid = strict_pair()
    client.send_data(sid, b"x" * 65536)
    pump(client, server)
    server.acknowledge_received_data(sid, 65536)
    events = pump(server, client)
    assert events == [WindowUpdated(stream_id=sid, delta=65536),
                      WindowUpdated(stream_id=0, delta=65536)]
    assert client.send_window(sid) == 65536


def test_strict_mode_window_update_for_an_unknown_stream_is_reported_and_ignored() -> None:
    # A WINDOW_UPDATE may cross a stream's end on the wire: it is no error, and opens no
    # window of any other stream.
    client, _server, sid = strict_pair()
    peer_frames = FrameEncoder()
    events = client.receive_data(peer_frames.window_update(sid + 2, 1000))
    assert events == [WindowUpdated(stream_id=sid + 2, delta=1000)]
    assert client.send_window(sid) == 65536
    assert client.data_to_send() == b""


def test_strict_mode_resets_a_peer_overrunning_the_window() -> None:
    # The peer behaves like Go: it ignores windows (here, a 1000-byte stream window).
    peer = Peer(SpdySession(client=False, strict_flow_control=True, initial_window_size=1000))
    assert peer.received() == [SettingsFrame(((0, SettingId.INITIAL_WINDOW_SIZE, 1000),))]
    peer.send(peer.encoder.syn_stream(1, ERROR_STREAM))
    peer.session.reply(1)
    peer.received()
    events = peer.send(peer.encoder.data(1, b"x" * 1000))
    assert sum(len(e.data) for e in events if isinstance(e, StreamData)) == 1000
    events = peer.send(peer.encoder.data(1, b"y"))
    assert events == [StreamReset(stream_id=1, status=RstStatus.FLOW_CONTROL_ERROR, local=True)]
    assert peer.received() == [RstStreamFrame(1, RstStatus.FLOW_CONTROL_ERROR)]


def test_strict_mode_session_window_overrun_is_a_session_error() -> None:
    peer = Peer(SpdySession(client=False, strict_flow_control=True))
    enc = peer.encoder
    peer.send(enc.syn_stream(1, ERROR_STREAM), enc.syn_stream(3, ERROR_STREAM))
    peer.session.reply(1)
    peer.session.reply(3)
    peer.send(enc.data(1, b"x" * 65536))  # fills stream 1 and the session
    with pytest.raises(RemoteProtocolError):
        peer.send(enc.data(3, b"y"))  # stream 3 has room, the session has not
    assert isinstance(peer.received()[-1], GoAwayFrame)


def test_strict_mode_announces_a_non_default_initial_window() -> None:
    session = SpdySession(client=True, strict_flow_control=True, initial_window_size=1 << 20)
    assert FrameDecoder().feed(session.data_to_send()) == [
        SettingsFrame(((0, SettingId.INITIAL_WINDOW_SIZE, 1 << 20),)),
        WindowUpdateFrame(0, (1 << 20) - 65536)]
    # Advisory mode (Go's) announces nothing.
    assert SpdySession(client=True, initial_window_size=1 << 20).data_to_send() == b""


def test_strict_mode_big_windows_let_a_mebibyte_through() -> None:
    client, server, sid = strict_pair(initial_window_size=1 << 20)
    assert client.send_window(sid) == 1 << 20
    client.send_data(sid, b"x" * (1 << 20))
    events = pump(client, server)
    assert sum(len(e.data) for e in events if isinstance(e, StreamData)) == 1 << 20


def test_strict_mode_initial_window_setting_applies_as_a_delta() -> None:
    client, _server, sid = strict_pair()
    client.send_data(sid, b"x" * 1000)
    enc = FrameEncoder()
    # (Use a fresh encoder: SETTINGS carries no header block.)
    client.receive_data(enc.settings([(0, SettingId.INITIAL_WINDOW_SIZE, 2000)]))
    assert client.send_window(sid) == 1000  # 2000 - 1000 in flight
    new = client.open_stream(ERROR_STREAM)
    assert client.send_window(new) == 2000


def test_strict_mode_window_overflow() -> None:
    client, _server, sid = strict_pair()
    enc = FrameEncoder()
    events = client.receive_data(enc.window_update(sid, 2**31 - 1))
    assert events[-1] == StreamReset(stream_id=sid, status=RstStatus.FLOW_CONTROL_ERROR,
                                     local=True)
    with pytest.raises(RemoteProtocolError):
        client.receive_data(enc.window_update(0, 2**31 - 1))


# --------------------------------------------------------------------------- robustness


def frame_shaped(draw: st.DrawFn) -> bytes:
    """Bytes shaped like frames: headers with small ids and plausible types, random payloads."""
    payload = draw(st.binary(max_size=24))
    if draw(st.booleans()):
        frame_type = draw(st.integers(0, 12))
        flags = draw(st.sampled_from([0, 1, 2, 3, 0xFF]))
        header = struct.pack(">HHI", 0x8003, frame_type, flags << 24 | len(payload))
    else:
        stream_id = draw(st.integers(0, 8))
        header = struct.pack(">II", stream_id, draw(st.sampled_from([0, 1])) << 24 | len(payload))
    return header + payload


def valid_frames(draw: st.DrawFn, encoder: FrameEncoder) -> bytes:
    """One valid frame, with small random ids: exercises the session's rules."""
    sid = draw(st.integers(1, 9))
    fin = draw(st.booleans())
    kind = draw(st.integers(0, 8))
    if kind == 0:
        return encoder.syn_stream(sid, ERROR_STREAM, fin=fin,
                                  unidirectional=draw(st.booleans()))
    if kind == 1:
        return encoder.syn_reply(sid, fin=fin)
    if kind == 2:
        return encoder.headers(sid, (("a", "b"),), fin=fin)
    if kind == 3:
        return encoder.data(sid, draw(st.binary(max_size=8)), fin=fin)
    if kind == 4:
        return encoder.rst_stream(sid, draw(st.integers(1, 12)))
    if kind == 5:
        return encoder.ping(sid)
    if kind == 6:
        return encoder.window_update(draw(st.integers(0, 9)), draw(st.integers(1, 2**31 - 1)))
    if kind == 7:
        return encoder.settings([(0, 7, draw(st.integers(0, 2**32 - 1)))])
    return encoder.goaway(sid, draw(st.integers(0, 3)))


@st.composite
def hostile_input(draw: st.DrawFn) -> tuple[bool, bool, list[bytes]]:
    encoder = FrameEncoder()
    chunks = [encoder.syn_stream(1, ERROR_STREAM), encoder.data(1, b"prefix")]
    for _ in range(draw(st.integers(0, 12))):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            chunks.append(valid_frames(draw, encoder))
        elif choice == 1:
            chunks.append(frame_shaped(draw))
        else:
            chunks.append(draw(st.binary(max_size=32)))
    return draw(st.booleans()), draw(st.booleans()), chunks


@settings(max_examples=200, deadline=None)
@given(hostile_input())
def test_arbitrary_bytes_after_a_valid_prefix(case: tuple[bool, bool, list[bytes]]) -> None:
    strict, split, chunks = case
    session = SpdySession(client=False, strict_flow_control=strict)
    session.data_to_send()
    data = b"".join(chunks)
    pieces = [chunk for chunk in chunks if chunk] if split else [data]  # b"" = EOF
    try:
        for piece in pieces:
            session.receive_data(piece)
            session.data_to_send()
        session.receive_data(b"")
    except RemoteProtocolError:
        assert session.state is SessionState.FAILED
        assert goaway_protocol_error_queued(session.data_to_send())
        with pytest.raises(RemoteProtocolError):
            session.receive_data(b"\x00")
    else:
        assert session.state is SessionState.CLOSED


# --------------------------------------------------------------------------- bulk data paths


def replied_pair(*, join_data: bool) -> tuple[SpdySession, SpdySession, int]:
    client = SpdySession(client=True, join_data=join_data)
    server = SpdySession(client=False)
    sid = client.open_stream((("streamtype", "stdout"),))
    pump(client, server)
    server.reply(sid)
    pump(server, client)
    return client, server, sid


def test_join_data_reports_consecutive_frames_of_a_stream_as_one_event() -> None:
    client, server, sid = replied_pair(join_data=True)
    other = client.open_stream((("streamtype", "stderr"),))
    pump(client, server)
    server.reply(other)
    pump(server, client)
    for piece in (b"a" * 5, b"b" * 7, b"c" * 3):
        server.send_data(sid, piece)
    server.send_data(other, b"err")
    server.send_data(sid, b"d")
    server.send_data(sid, b"e", fin=True)
    wire = server.data_to_send()
    assert client.receive_data(wire) == [
        StreamData(stream_id=sid, data=b"a" * 5 + b"b" * 7 + b"c" * 3),
        StreamData(stream_id=other, data=b"err"),
        StreamData(stream_id=sid, data=b"d"),
        # A FIN frame is never joined: its bytes, then its end.
        StreamData(stream_id=sid, data=b"e"),
        StreamEnded(stream_id=sid)]


def test_without_join_data_every_frame_is_its_own_event() -> None:
    client, server, sid = replied_pair(join_data=False)
    server.send_data(sid, b"one")
    server.send_data(sid, b"two")
    assert client.receive_data(server.data_to_send()) == [
        StreamData(stream_id=sid, data=b"one"), StreamData(stream_id=sid, data=b"two")]


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=6),
       cuts=st.lists(st.integers(0, 20000), max_size=6), join_data=st.booleans())
def test_data_fed_from_a_reused_buffer_at_any_split_is_copied_out(
        sizes: list[int], cuts: list[int], join_data: bool) -> None:
    # The adapters feed views of one reused bytearray: every byte delivered must be a copy
    # (borrowed pieces never escape), and the buffer must stay resizable afterwards.
    client, server, sid = replied_pair(join_data=join_data)
    payload = bytes(index % 251 for index in range(sum(sizes)))
    start = 0
    for size in sizes:
        server.send_data(sid, payload[start:start + size])
        start += size
    wire = server.data_to_send()
    points = sorted({0, len(wire), *(cut % (len(wire) + 1) for cut in cuts)})
    buffer = bytearray(len(wire))
    received: list[StreamData] = []
    for begin, end in itertools.pairwise(points):
        buffer[:end - begin] = wire[begin:end]
        events = client.receive_data(memoryview(buffer)[:end - begin])
        received += [event for event in events if isinstance(event, StreamData)]
        buffer[:] = b"\xff" * len(buffer)  # scribble: delivered bytes must not change
        buffer += b"x"  # and resizing works: no view of it is alive
        del buffer[-1]
    assert all(type(event.data) is bytes for event in received)
    assert b"".join(event.data for event in received) == payload


def test_send_data_frames_immutable_bytes_without_a_copy_and_copies_the_rest() -> None:
    client, server, sid = replied_pair(join_data=False)
    shared = bytes(range(200))
    mutable = bytearray(b"mutable")
    client.send_data(sid, memoryview(shared)[10:20])  # a view of bytes: framed as it is
    client.send_data(sid, mutable)  # a bytearray: copied now
    mutable[:] = b"CHANGED"
    client.send_data(sid, b"")  # nothing at all
    view = memoryview(shared)
    client.send_data(sid, view[0:3])
    view.release()  # the caller's view may go away: the session holds its own
    client.send_data(sid, memoryview(shared)[::50])  # not contiguous: copied
    events = pump(client, server)
    assert events == [StreamData(stream_id=sid, data=shared[10:20]),
                      StreamData(stream_id=sid, data=b"mutable"),
                      StreamData(stream_id=sid, data=shared[0:3]),
                      StreamData(stream_id=sid, data=shared[::50])]


def test_send_data_fast_path_refuses_what_the_general_path_refuses() -> None:
    client, _server, sid = replied_pair(join_data=False)
    client.end_stream(sid)
    with pytest.raises(LocalProtocolError):
        client.send_data(sid, b"after fin")
    with pytest.raises(LocalProtocolError):
        client.send_data(99, b"never opened")
    client.goaway()
    with pytest.raises(LocalProtocolError):
        client.send_data(sid, b"after goaway")


# --------------------------------------------------------------------------- one send path


def test_the_per_frame_send_path_is_where_send_data_moves_neither_machine() -> None:
    # send_data() skips the table lookups only where the tables say SEND_DATA is a no-op
    # move; SEND_FIN is allowed exactly where SEND_DATA is (can_send answers for both).
    sending = {state for state in StreamState if (state, I.SEND_DATA) in STREAM_TRANSITIONS}
    assert sending == {state for state in StreamState
                       if (state, I.SEND_FIN) in STREAM_TRANSITIONS}
    assert sending == STREAM_SENDING_STATES
    assert all(STREAM_TRANSITIONS[state, I.SEND_DATA] is state for state in sending)
    receiving = {state for state in StreamState if (state, I.RECV_DATA) in STREAM_TRANSITIONS}
    assert receiving == STREAM_RECEIVING_STATES
    session_sending = {state for state in SessionState
                       if (state, SessionInput.SEND_DATA) in SESSION_TRANSITIONS}
    assert session_sending == SESSION_SENDING_STATES
    for state in SESSION_SENDING_STATES:
        assert SESSION_TRANSITIONS[state, SessionInput.SEND_DATA] is state


@pytest.mark.parametrize("fin", [False, True], ids=["data", "data+fin"])
@pytest.mark.parametrize("data", [b"x", bytearray(b"x"), memoryview(b"xy")[1:], b""],
                         ids=["bytes", "bytearray", "view", "empty"])
@pytest.mark.parametrize("state", list(StreamState), ids=lambda s: s.value)
def test_send_data_in_every_stream_state_is_the_tables_answer(
        state: StreamState, data: bytes | bytearray | memoryview, fin: bool) -> None:
    peer, sid = setup_stream(state, I.SEND_DATA)
    session = peer.session
    allowed = (state, I.SEND_DATA) in STREAM_TRANSITIONS
    assert session.can_send(sid) is allowed
    if not allowed:
        with pytest.raises(StreamClosedError):
            session.send_data(sid, data, fin=fin)
        assert session.stream_state(sid) is state
        assert session.data_to_send() == b""
        return
    session.send_data(sid, data, fin=fin)
    assert session.stream_state(sid) is (STREAM_TRANSITIONS[state, I.SEND_FIN] if fin
                                         else state)
    assert peer.received() == ([DataFrame(sid, bytes(data), fin)] if data or fin else [])


@pytest.mark.parametrize("state", list(StreamState), ids=lambda s: s.value)
def test_end_stream_in_every_stream_state_is_the_tables_answer(state: StreamState) -> None:
    peer, sid = setup_stream(state, I.SEND_FIN)
    session = peer.session
    if not session.can_send(sid):
        with pytest.raises(StreamClosedError):
            session.end_stream(sid)
        assert session.stream_state(sid) is state
        assert session.data_to_send() == b""
        return
    session.end_stream(sid)
    assert session.stream_state(sid) is STREAM_TRANSITIONS[state, I.SEND_FIN]
    assert peer.received() == [DataFrame(sid, b"", True)]


@pytest.mark.parametrize("state", list(SessionState), ids=lambda s: s.value)
def test_a_stream_that_cannot_send_is_reported_before_the_session(state: SessionState) -> None:
    peer = setup_session(state)  # stream 1 open, stream 2 the peer's, not replied
    session = peer.session
    with pytest.raises(StreamClosedError):
        session.send_data(2, b"x")
    with pytest.raises(StreamClosedError):
        session.end_stream(2)
    if (state, SessionInput.SEND_DATA) in SESSION_TRANSITIONS:
        session.send_data(1, b"x")
        assert peer.received() == [DataFrame(1, b"x")]
        return
    with pytest.raises(LocalProtocolError) as refused:
        session.send_data(1, b"x")
    assert not isinstance(refused.value, StreamClosedError)
    with pytest.raises(LocalProtocolError) as refused:
        session.end_stream(1)
    assert not isinstance(refused.value, StreamClosedError)
    assert session.data_to_send() == b""


def test_data_frames_on_the_wire_are_the_codecs() -> None:
    client, _server, sid = replied_pair(join_data=False)
    codec = FrameEncoder()
    client.send_data(sid, b"abc")  # the per-frame path
    client.send_data(sid, bytearray(b"de"), fin=True)  # the general path
    assert client.data_to_send() == codec.data(sid, b"abc") + codec.data(sid, b"de", fin=True)


def test_table_keys_hash_by_identity() -> None:
    # The tables are looked up on every frame: the members' hash is the C-level identity
    # hash, not Enum's Python-level hash of the name. Equality stays identity.
    for enum_type in (StreamState, StreamInput, SessionState, SessionInput):
        for member in enum_type:
            assert hash(member) == object.__hash__(member)
            assert member == enum_type(member.value) and member != member.value
