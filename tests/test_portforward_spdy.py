"""Port-forward over SPDY: SpdyPortForwardClient and SpdyPortForwardServer, sans-IO.

Client and server are wired back to back in memory; what the server writes is also
decoded with an independent FrameDecoder, so frame sizes, FIN and RST_STREAM are checked
on the wire. Kubelet semantics are driven by a raw SpdySession client that sends what
client-go never does (bad headers, missing requestID, duplicate streams, a lone stream).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pfpair import ForwardPair

from kstream._errors import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from kstream._events import (
    ConnectionClosed,
    Event,
    PingReceived,
    PongReceived,
    UpgradeAccepted,
    UpgradeRejected,
    UpgradeRequested,
)
from kstream._portforward.events import (
    ForwardClosed,
    ForwardData,
    ForwardEnded,
    ForwardError,
    ForwardReady,
    ForwardRequested,
    ForwardReset,
)
from kstream._portforward.handshake import forward_error_text, portforward_target
from kstream._portforward.session import (
    CHUNK_SIZE,
    PortForwardClientConnection,
    PortForwardServerConnection,
)
from kstream._portforward.spdy import (
    MAX_EARLY_DATA,
    SpdyPortForwardClient,
    SpdyPortForwardServer,
)
from kstream._spdy.frames import (
    DataFrame,
    Frame,
    FrameDecoder,
    GoAwayStatus,
    RstStatus,
    RstStreamFrame,
    SynReplyFrame,
    SynStreamFrame,
)
from kstream._spdy.session import SpdySession
from kstream._upgrade import ServerUpgrade

TARGET = portforward_target("default", "web")
HOST = "127.0.0.1:6443"
SWITCH = (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
          b"X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n")


@dataclass
class Wire:
    """One direction of the connection after the upgrade, decoded frame by frame."""

    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    frames: list[Frame] = field(default_factory=list)

    def record(self, data: bytes) -> None:
        self.frames.extend(self.decoder.feed(data))


class Pair(ForwardPair):
    """A SPDY port-forward client and server joined in memory."""

    client: SpdyPortForwardClient
    server: SpdyPortForwardServer

    def __init__(self) -> None:
        super().__init__(SpdyPortForwardClient(host=HOST, target=TARGET,
                                               headers=[("User-Agent", "test")]),
                         SpdyPortForwardServer())
        self.to_client = Wire()
        self.upgraded = False

    def upgrade(self) -> Pair:
        events = self.server.receive_data(self.client.data_to_send())
        assert isinstance(events[0], UpgradeRequested)
        assert events[0].method == "POST" and events[0].protocols == ("portforward.k8s.io",)
        accepted = self.server.accept(self.now)
        assert accepted == [UpgradeAccepted(transport="spdy", protocol="portforward.k8s.io")]
        head, _, rest = self.server.data_to_send().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        events = self.client.receive_data(head + b"\r\n\r\n" + rest)
        assert isinstance(events[0], UpgradeAccepted)
        assert events[0].protocol == "portforward.k8s.io"
        assert self.client.protocol == self.server.protocol == "portforward.k8s.io"
        self.upgraded = True
        return self

    def record(self, data: bytes) -> None:
        if self.upgraded:
            self.to_client.record(data)


def frames_of(frames: Sequence[Frame], kind: type) -> list:  # type: ignore[type-arg]
    return [f for f in frames if isinstance(f, kind)]


def data_of(events: Sequence[Event], request_id: int) -> bytes:
    return b"".join(e.data for e in events
                    if isinstance(e, ForwardData) and e.request_id == request_id)


# --------------------------------------------------------------------------- the Protocols


def test_both_roles_satisfy_the_protocols() -> None:
    client: PortForwardClientConnection = SpdyPortForwardClient(host=HOST, target=TARGET)
    server: PortForwardServerConnection = SpdyPortForwardServer()
    assert client.transport == server.transport == "spdy"
    assert client.protocol == server.protocol == ""
    assert client.awaiting_pong_since is None and server.awaiting_pong_since is None


# --------------------------------------------------------------------------- the upgrade


def test_the_upgrade_request_is_client_gos() -> None:
    client = SpdyPortForwardClient(host=HOST, target=TARGET)
    request = client.data_to_send()
    assert request.startswith(b"POST /api/v1/namespaces/default/pods/web/portforward HTTP/1.1\r\n")
    assert b"Upgrade: SPDY/3.1\r\n" in request
    assert b"X-Stream-Protocol-Version: portforward.k8s.io\r\n" in request
    assert client.data_to_send() == b""


def test_frames_in_the_same_read_as_the_101_are_decoded() -> None:
    client = SpdyPortForwardClient(host=HOST, target=TARGET)
    client.data_to_send()
    server_session = SpdySession(client=False)
    server_session.ping(0.0)
    events = client.receive_data(SWITCH + server_session.data_to_send())
    assert [type(e) for e in events] == [UpgradeAccepted, PingReceived]


def test_the_101_must_name_portforward() -> None:
    client = SpdyPortForwardClient(host=HOST, target=TARGET)
    events = client.receive_data(SWITCH.replace(b"portforward.k8s.io", b"v4.channel.k8s.io"))
    assert len(events) == 1 and isinstance(events[0], UpgradeRejected)
    assert ('unable to negotiate protocol: client supports "portforward.k8s.io", server '
            'returned "v4.channel.k8s.io"') in str(events[0].error)
    assert client.receive_data(b"more") == []
    with pytest.raises(LocalProtocolError, match="not open"):
        client.open(80)


def test_a_refused_upgrade_is_rejected() -> None:
    client = SpdyPortForwardClient(host=HOST, target=TARGET)
    events = client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno")
    assert isinstance(events[0], UpgradeRejected) and events[0].error.status_code == 403


def test_server_refuses_like_the_kubelet() -> None:
    server = SpdyPortForwardServer()
    server.receive_data(b"POST /x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
                        b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                        b"Content-Length: 0\r\n\r\n")
    with pytest.raises(UpgradeRejectedError) as info:
        server.accept(0.0)
    assert info.value.status_code == 403
    answer = server.data_to_send()
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"X-Accepted-Stream-Protocol-Versions: portforward.k8s.io" in answer
    for headers, status in [(b"", 400), (b"X-Stream-Protocol-Version: portforward.k8s.io\r\n",
                                            400)]:
        server = SpdyPortForwardServer()
        upgrade = b"" if b"Version" in headers else b"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        server.receive_data(b"POST /x HTTP/1.1\r\nHost: h\r\n" + upgrade + headers
                            + b"Content-Length: 0\r\n\r\n")
        with pytest.raises(UpgradeRejectedError) as info:
            server.accept(0.0)
        assert info.value.status_code == status
        assert server.data_to_send().startswith(b"HTTP/1.1 400 ")


def test_server_reject_and_misuse() -> None:
    server = SpdyPortForwardServer()
    with pytest.raises(LocalProtocolError):
        server.accept(0.0)
    with pytest.raises(LocalProtocolError):
        server.reject(404, "pods \"web\" not found")
    assert server.receive_data(SpdyPortForwardClient(host=HOST, target=TARGET).data_to_send())
    server.reject(404, 'pods "web" not found')
    answer = server.data_to_send()
    assert answer.startswith(b"HTTP/1.1 404 ") and b'pods \\"web\\" not found' in answer
    assert server.receive_data(b"ignored") == []
    with pytest.raises(LocalProtocolError):
        server.reject(500)
    with pytest.raises(LocalProtocolError, match="not open"):
        server.ping(0.0)


def test_server_takes_over_a_parsed_request_with_early_bytes_and_eof() -> None:
    client = SpdyPortForwardClient(host=HOST, target=TARGET)
    upgrade = ServerUpgrade()
    upgrade.receive_data(client.data_to_send())
    server = SpdyPortForwardServer()
    events = server.receive_request(upgrade)
    assert isinstance(events[0], UpgradeRequested) and server.request == events[0]
    with pytest.raises(LocalProtocolError):
        server.receive_request(upgrade)
    raw = SpdySession(client=True)
    raw.ping(1.0)
    assert server.receive_data(raw.data_to_send()) == []   # held until accept()
    assert server.receive_data(b"") == []
    events = server.accept(0.0)
    assert [type(e) for e in events] == [UpgradeAccepted, PingReceived, ConnectionClosed]


def test_client_that_leaves_before_a_request() -> None:
    server = SpdyPortForwardServer()
    assert server.receive_data(b"") == [ConnectionClosed(clean=True)]
    assert server.receive_data(b"") == []


def test_broken_request_raises_and_stays_broken() -> None:
    server = SpdyPortForwardServer()
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"\x00\x01 not http\r\n\r\n")
    with pytest.raises(RemoteProtocolError):
        server.receive_data(b"more")


# --------------------------------------------------------------------------- forwarding


def test_round_trip_with_half_close_both_ways() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open(8080)
    assert (rid, sid) == (0, 0)
    pair.client.send(rid, b"GET / HTTP/1.0\r\n\r\n")
    pair.client.end(rid)
    _, server = pair.pump()
    assert data_of(server, sid) == b"GET / HTTP/1.0\r\n\r\n"
    assert ForwardEnded(request_id=sid) in server
    pair.server.send(sid, bytearray(b"HTTP/1.0 200 OK\r\n\r\nhi"))
    pair.server.end(sid)
    client, server = pair.pump()
    assert data_of(client, rid) == b"HTTP/1.0 200 OK\r\n\r\nhi"
    assert client[-2:] == [ForwardEnded(request_id=rid), ForwardClosed(request_id=rid)]
    # The server's end() completed the request: forgotten without an event.
    assert server == []
    # Calls on finished requests are dropped; unknown ids are misuse.
    pair.client.send(rid, b"late")
    pair.client.end(rid)
    pair.client.reset(rid)
    pair.server.send(sid, b"late")
    pair.server.end(sid)
    pair.server.fail(sid, "late")
    pair.server.reset(sid)
    assert pair.pump() == ([], [])
    with pytest.raises(LocalProtocolError, match="no request"):
        pair.client.send(5, b"x")
    with pytest.raises(LocalProtocolError, match="no request"):
        pair.server.end(7)
    with pytest.raises(LocalProtocolError, match="no request"):
        pair.client.reset(-1)


def test_the_pod_closing_first_fins_both_streams_and_the_client_resets_last() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open(80)
    pair.server.send(sid, b"banner")
    pair.server.end(sid)
    client, _ = pair.pump()
    fins = [f for f in pair.to_client.frames if isinstance(f, DataFrame) and f.fin]
    assert len(fins) == 2   # data and error stream
    assert client == [ForwardData(request_id=rid, data=b"banner"), ForwardEnded(request_id=rid)]
    # client-go resets the data stream once the remote copy is done.
    pair.client.reset(rid)
    _, server = pair.pump()
    assert server == [ForwardReset(request_id=sid), ForwardClosed(request_id=sid)]


def test_a_failed_pod_port_sends_the_text_then_fins() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open(81)
    pair.client.end(rid)
    pair.pump()
    text = forward_error_text(81, "web", "1234", "dial tcp4 127.0.0.1:81: connect: "
                              "connection refused")
    assert text.startswith("error forwarding port 81 to pod web, uid 1234: dial tcp4")
    pair.server.fail(sid, text)
    client, _ = pair.pump()
    assert client == [ForwardError(request_id=rid, message=text), ForwardEnded(request_id=rid),
                      ForwardClosed(request_id=rid)]
    pair.server.send(sid, b"x")   # the request is over: dropped
    assert pair.server.data_to_send() == b""


def test_fail_after_end_is_misuse() -> None:
    pair = Pair().upgrade()
    _, sid = pair.open()
    pair.server.end(sid)
    with pytest.raises(LocalProtocolError, match="was ended"):
        pair.server.fail(sid, "x")
    with pytest.raises(LocalProtocolError, match="was ended"):
        pair.server.send(sid, b"x")


def test_server_reset_is_epipe() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open()
    pair.server.reset(sid)
    client, _ = pair.pump()
    assert client == [ForwardReset(request_id=rid), ForwardClosed(request_id=rid)]
    rsts = frames_of(pair.to_client.frames, RstStreamFrame)
    assert {f.status for f in rsts} == {RstStatus.CANCEL} and len(rsts) == 2
    pair.client.send(rid, b"dropped")   # forgotten
    assert pair.client.data_to_send() == b""


def test_client_reset_then_server_end_forgets() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open()
    pair.client.reset(rid)
    _, server = pair.pump()
    assert server == [ForwardReset(request_id=sid)]
    pair.server.send(sid, b"dropped: the client reset the stream")
    pair.server.end(sid)
    assert pair.pump() == ([], [])


def test_big_sends_go_out_in_32_kib_frames() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open()
    payload = bytes(range(256)) * 513   # 131,328 bytes
    pair.server.send(sid, payload)
    pair.server.send(sid, memoryview(payload)[:100])
    client, _ = pair.pump()
    sizes = [len(f.data) for f in pair.to_client.frames if isinstance(f, DataFrame) and f.data]
    assert max(sizes) == CHUNK_SIZE and sum(sizes) == len(payload) + 100
    assert data_of(client, rid) == payload + payload[:100]
    pair.client.send(rid, payload)
    _, server = pair.pump()
    assert data_of(server, sid) == payload


def test_many_requests_share_the_session() -> None:
    pair = Pair().upgrade()
    ids = [pair.client.open(1000 + n) for n in range(20)]
    client, server = pair.pump()
    requested = {e.request_id: e.port for e in server if isinstance(e, ForwardRequested)}
    assert sorted(requested.values()) == list(range(1000, 1020))
    assert [e.request_id for e in client if isinstance(e, ForwardReady)] == ids
    for rid in ids:
        pair.client.send(rid, f"req {rid}".encode())
    _, server = pair.pump()
    for sid, port in requested.items():
        assert data_of(server, sid) == f"req {port - 1000}".encode()


def test_client_holds_data_until_the_reply_and_bounds_it() -> None:
    pair = Pair().upgrade()
    pair.client = SpdyPortForwardClient(host=HOST, target=TARGET, max_pending_bytes=10)
    pair.server = SpdyPortForwardServer()
    pair.upgrade()
    rid = pair.client.open(80)
    pair.client.send(rid, b"0123456789")
    with pytest.raises(LocalProtocolError, match="wait for ForwardReady"):
        pair.client.send(rid, b"x")
    pair.client.end(rid)
    with pytest.raises(LocalProtocolError, match=r"end\(\)"):
        pair.client.send(rid, b"x")
    _, server = pair.pump()
    sid = server[0].request_id  # type: ignore[attr-defined]
    assert data_of(server, sid) == b"0123456789" and ForwardEnded(request_id=sid) in server
    # reset() of a request with held bytes gives the room back.
    rid = pair.client.open(80)
    pair.client.send(rid, b"0123456789")
    pair.client.reset(rid)
    rid = pair.client.open(80)
    pair.client.send(rid, b"0123456789")


def test_session_end_ends_every_request_and_open_fails_after() -> None:
    pair = Pair().upgrade()
    rid, _ = pair.open()
    other = pair.client.open(90)
    pair.server.close()
    client, _ = pair.pump()
    assert client == [ForwardReset(request_id=rid), ForwardClosed(request_id=rid),
                      ForwardReset(request_id=other), ForwardClosed(request_id=other),
                      ConnectionClosed(code=GoAwayStatus.OK, clean=True)]
    with pytest.raises(LocalProtocolError, match="not open"):
        pair.client.open(80)
    pair.client.close()
    assert pair.client.data_to_send() == b""


def test_client_close_resets_streams_and_sends_goaway() -> None:
    pair = Pair().upgrade()
    _, sid = pair.open()
    pair.client.close()
    pair.client.close()
    _, server = pair.pump()
    assert server == [ForwardReset(request_id=sid), ForwardClosed(request_id=sid),
                      ConnectionClosed(code=0, clean=True)]
    assert pair.server.next_deadline() is None and pair.server.expire(99.0) == []


def test_eof_mid_session() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open()
    pair.server.end(sid)
    pair.pump()
    events = pair.client.receive_data(b"")
    assert events == [ForwardClosed(request_id=rid), ConnectionClosed(code=None, clean=False)]
    assert pair.client.receive_data(b"") == []


def test_pings_both_ways() -> None:
    pair = Pair().upgrade()
    pair.client.ping(1.0)
    assert pair.client.awaiting_pong_since == 1.0
    _, server = pair.pump()
    assert isinstance(server[0], PingReceived)
    assert isinstance(pair.client_events[-1], PongReceived)
    assert pair.client_events[-1].sent_at == 1.0 and pair.client.awaiting_pong_since is None
    pair.server.ping(2.0)
    client, _ = pair.pump()
    assert isinstance(client[0], PingReceived)
    assert pair.server.awaiting_pong_since is None


def test_a_broken_peer_fails_the_session_for_good() -> None:
    pair = Pair().upgrade()
    with pytest.raises(RemoteProtocolError):
        pair.client.receive_data(b"\x80\x03\x00\x07\x00\x00\x00\x04\x00\x00\x00\x00")  # GOAWAY
    with pytest.raises(RemoteProtocolError):
        pair.client.receive_data(b"")
    assert pair.client.data_to_send().startswith(b"\x80\x03\x00\x07")  # GOAWAY
    pair.client.close()
    assert pair.client.data_to_send() == b""


def test_client_refuses_streams_the_server_opens() -> None:
    pair = Pair().upgrade()
    session = pair.server._session
    assert session is not None
    stream_id = session.open_stream([("streamtype", "data")])
    session.reset_stream(stream_id)
    stream_id = session.open_stream([("streamtype", "data")])
    assert pair.from_server() == []
    out = Wire()
    out.record(pair.client.data_to_send())
    assert out.frames == [RstStreamFrame(stream_id=stream_id, status=RstStatus.REFUSED_STREAM)]


# --------------------------------------------------------------------------- kubelet rules


class RawClient:
    """A SPDY client that opens whatever streams a test wants, against the server."""

    def __init__(self) -> None:
        self.server = SpdyPortForwardServer()
        client = SpdyPortForwardClient(host=HOST, target=TARGET)
        self.server.receive_data(client.data_to_send())
        self.server.accept(0.0)
        self.server.data_to_send()
        self.session = SpdySession(client=True)
        self.events: list[Event] = []
        self.wire = Wire()
        self.now = 0.0

    def stream(self, stream_type: str | None, port: str | None = "80",
               request_id: str | None = "0", *, fin: bool = False) -> int:
        headers = [(k, v) for k, v in (("streamtype", stream_type), ("port", port),
                                        ("requestid", request_id)) if v is not None]
        return self.session.open_stream(headers, fin=fin)

    def flush(self) -> list[Event]:
        data = self.session.data_to_send()
        events = self.server.receive_data(data) if data else []
        events += self.server.expire(self.now)
        self.events += events
        answer = self.server.data_to_send()
        self.wire.record(answer)
        if answer:
            self.session.receive_data(answer)
        return events


@pytest.mark.parametrize(("stream_type", "port"), [
    ("data", None), ("data", ""), ("data", "0"), ("data", "65536"), ("data", "abc"),
    ("data", "+1"), ("data", "-1"), ("data", " 80"), ("data", "８０"), (None, "80"),
    ("stdin", "80"), ("", "80"), ("Data", "80"),
])
def test_bad_port_or_stream_type_is_reset_without_reply(stream_type: str | None,
                                                        port: str | None) -> None:
    raw = RawClient()
    stream_id = raw.stream(stream_type, port)
    assert raw.flush() == []
    assert frames_of(raw.wire.frames, SynReplyFrame) == []
    assert [(f.stream_id, f.status) for f in frames_of(raw.wire.frames, RstStreamFrame)] == [
        (stream_id, RstStatus.CANCEL)]


def test_valid_streams_are_replied_at_once_in_any_order() -> None:
    raw = RawClient()
    data_id = raw.stream("data", "65535", "7")
    assert raw.flush() == []
    assert [f.stream_id for f in frames_of(raw.wire.frames, SynReplyFrame)] == [data_id]
    error_id = raw.stream("error", "65535", "7")
    assert raw.flush() == [ForwardRequested(request_id=0, port=65535)]
    assert [f.stream_id for f in frames_of(raw.wire.frames, SynReplyFrame)] == [data_id,
                                                                                error_id]


def test_missing_request_id_pairs_by_stream_id() -> None:
    raw = RawClient()
    raw.stream("error", "80", None)   # id 1 -> key "1"
    raw.stream("data", "80", None)    # id 3 -> key "1"
    raw.stream("data", "81", None)    # id 5 -> key "3": waits
    assert raw.flush() == [ForwardRequested(request_id=0, port=80)]
    assert raw.server.next_deadline() == 30.0


def test_the_data_streams_port_wins() -> None:
    raw = RawClient()
    raw.stream("error", "1")
    raw.stream("data", "2")
    assert raw.flush() == [ForwardRequested(request_id=0, port=2)]


def test_duplicate_stream_type_prints_an_error() -> None:
    raw = RawClient()
    error_id = raw.stream("error", request_id="4")
    raw.stream("error", request_id="4")
    dup_data = raw.stream("data", request_id="9")
    raw.stream("data", request_id="9")
    assert raw.flush() == []
    texts = {f.stream_id: bytes(f.data) for f in frames_of(raw.wire.frames, DataFrame)
             if f.data}
    assert texts == {error_id: b"error processing stream for request 4: error stream "
                               b"already assigned"}
    rsts = [f.stream_id for f in frames_of(raw.wire.frames, RstStreamFrame)]
    assert rsts == [error_id + 2, dup_data + 2]
    # The pair still completes.
    raw.stream("data", request_id="4")
    assert raw.flush() == [ForwardRequested(request_id=0, port=80)]


def test_pair_deadline_text_and_end() -> None:
    raw = RawClient()
    error_id = raw.stream("error", request_id="3")
    lone_data = raw.stream("data", request_id="5")
    raw.now = 100.0
    assert raw.flush() == []
    assert raw.server.next_deadline() == 130.0
    raw.now = 129.9
    assert raw.flush() == [] and raw.server.expire(129.9) == []
    assert raw.server.expire(130.0) == []
    texts = {f.stream_id: bytes(f.data).decode() for f in frames_of(raw.wire.frames, DataFrame)
             if f.data}
    raw.wire.record(raw.server.data_to_send())
    texts = {f.stream_id: bytes(f.data).decode() for f in frames_of(raw.wire.frames, DataFrame)
             if f.data}
    assert re.fullmatch(r"\(conn=0x[0-9a-f]+, request=3\) timed out waiting for streams",
                        texts[error_id])
    assert [f.stream_id for f in frames_of(raw.wire.frames, DataFrame) if f.fin] == [error_id]
    assert [f.stream_id for f in frames_of(raw.wire.frames, RstStreamFrame)] == [lone_data]
    assert raw.server.next_deadline() is None
    # A late second stream starts a new pair (as upstream, which forgot the first).
    raw.stream("data", request_id="3")
    assert raw.flush() == []
    assert raw.server.next_deadline() == 129.9 + 30.0


def test_early_data_waits_for_the_pair() -> None:
    raw = RawClient()
    data_id = raw.stream("data", fin=False)
    raw.session.send_data(data_id, b"early", fin=True)
    assert raw.flush() == []
    raw.stream("error")
    assert raw.flush() == [ForwardRequested(request_id=0, port=80),
                           ForwardData(request_id=0, data=b"early"),
                           ForwardEnded(request_id=0)]


def test_early_reset_waits_for_the_pair() -> None:
    raw = RawClient()
    data_id = raw.stream("data")
    raw.flush()
    raw.session.reset_stream(data_id)
    raw.stream("error")
    assert raw.flush() == [ForwardRequested(request_id=0, port=80), ForwardReset(request_id=0)]
    raw.server.end(0)
    assert raw.flush() == []


def test_early_data_is_bounded() -> None:
    raw = RawClient()
    data_id = raw.stream("data")
    raw.session.send_data(data_id, b"x" * MAX_EARLY_DATA)
    assert raw.flush() == []
    raw.session.send_data(data_id, b"y")
    assert raw.flush() == []
    assert [f.stream_id for f in frames_of(raw.wire.frames, RstStreamFrame)] == [data_id]
    raw.session.send_data(data_id, b"dropped") if raw.session.can_send(data_id) else None
    raw.stream("error")
    assert raw.flush() == []   # a new pair for key "0", still waiting


def test_client_writes_on_the_error_stream_are_ignored_and_its_reset_noted() -> None:
    raw = RawClient()
    error_id = raw.stream("error")
    raw.stream("data")
    raw.flush()
    raw.session.send_data(error_id, b"ignored")
    raw.session.reset_stream(error_id)
    assert raw.flush() == []
    raw.server.fail(0, "nowhere to print")
    raw.flush()
    assert not [f for f in frames_of(raw.wire.frames, DataFrame) if f.data]


def test_stream_opened_and_reset_in_one_read_is_not_replied() -> None:
    raw = RawClient()
    stream_id = raw.stream("data")
    raw.session.reset_stream(stream_id)
    assert raw.flush() == []
    assert frames_of(raw.wire.frames, SynReplyFrame) == []


def test_upgraded_roles_skip_http() -> None:
    client = SpdyPortForwardClient.upgraded()
    server = SpdyPortForwardServer.upgraded()
    assert client.protocol == server.protocol == "portforward.k8s.io"
    rid = client.open(22)
    events = server.receive_data(client.data_to_send())
    assert events == [ForwardRequested(request_id=0, port=22)]
    assert client.receive_data(server.data_to_send()) == [ForwardReady(request_id=rid)]


def test_stray_session_events_are_ignored() -> None:
    pair = Pair().upgrade()
    pair.open()
    session = pair.server._session
    assert session is not None
    # SETTINGS and WINDOW_UPDATE carry nothing a port-forward needs.
    session._outgoing.append(session._encoder.settings([(0, 7, 65536)]))
    session._outgoing.append(session._encoder.window_update(0, 1000))
    assert pair.pump() == ([], [])


# --------------------------------------------------------------------------- decoders


def _client_script(pair: Pair) -> tuple[bytes, bytes]:
    """Run a whole exchange; return what the client and the server wrote."""
    client_bytes = bytearray()
    server_bytes = bytearray()

    def c2s() -> None:
        data = pair.client.data_to_send()
        client_bytes.extend(data)
        if data:
            pair.server.receive_data(data)

    def s2c() -> None:
        data = pair.server.data_to_send()
        server_bytes.extend(data)
        if data:
            pair.client.receive_data(data)

    c2s()
    pair.server.accept(0.0)
    s2c()
    rid = pair.client.open(8080)
    pair.client.send(rid, b"hello " * 100)
    pair.client.ping(1.0)
    c2s()
    s2c()
    pair.client.end(rid)
    c2s()
    pair.server.send(0, bytes(range(256)) * 200)
    pair.server.fail(0, "error forwarding port 8080 to pod web, uid : boom")
    pair.server.ping(2.0)
    s2c()
    c2s()
    pair.server.close()
    s2c()
    return bytes(client_bytes), bytes(server_bytes)


def _normalise(events: Sequence[Event]) -> list[Event]:
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if (isinstance(event, ForwardData) and isinstance(last, ForwardData)
                and last.request_id == event.request_id):
            out[-1] = ForwardData(request_id=event.request_id, data=last.data + event.data)
        else:
            out.append(event)
    return out


CLIENT_BYTES, SERVER_BYTES = _client_script(Pair())


HEAD_END = SERVER_BYTES.index(b"\r\n\r\n") + 4


def _replay_client(chunks: Sequence[bytes], head: Sequence[bytes] = ()) -> list[Event]:
    """Feed the 101 (in ``head`` pieces), open the request as the script did, then the
    SPDY bytes in ``chunks``."""
    client = SpdyPortForwardClient(host=HOST, target=TARGET)
    client.data_to_send()
    events: list[Event] = []
    for piece in head or [SERVER_BYTES[:HEAD_END]]:
        events += client.receive_data(piece)
    rid = client.open(8080)
    client.send(rid, b"x")
    client.end(rid)
    for chunk in chunks:
        events += client.receive_data(chunk)
    return _normalise(events)


def _replay_server(chunks: Sequence[bytes]) -> list[Event]:
    server = SpdyPortForwardServer()
    events: list[Event] = []
    for chunk in chunks:
        events += server.receive_data(chunk)
        if server.request is not None and server.protocol == "":
            events += server.accept(0.0)
    return _normalise(events)


def _splits(data: bytes, points: Sequence[int]) -> list[bytes]:
    cuts = sorted({p % (len(data) + 1) for p in points})
    pieces, last = [], 0
    for cut in cuts:
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    return [p for p in pieces if p]


WHOLE_CLIENT = _replay_client([SERVER_BYTES[HEAD_END:]])
WHOLE_SERVER = _replay_server([CLIENT_BYTES])


def test_whole_streams_give_the_expected_events() -> None:
    # (The replaying peers sent no pings of their own: the echoes are not pongs.)
    assert [type(e) for e in WHOLE_CLIENT] == [
        UpgradeAccepted, ForwardReady, ForwardData, ForwardError, ForwardEnded,
        ForwardClosed, PingReceived, ConnectionClosed]
    assert WHOLE_CLIENT[2] == ForwardData(request_id=0, data=bytes(range(256)) * 200)
    assert [type(e) for e in WHOLE_SERVER] == [
        UpgradeRequested, UpgradeAccepted, ForwardRequested, PingReceived, ForwardData,
        ForwardEnded]
    assert WHOLE_SERVER[4] == ForwardData(request_id=0, data=b"hello " * 100)


def test_byte_at_a_time() -> None:
    assert _replay_client([bytes([b]) for b in SERVER_BYTES[HEAD_END:]],
                          [bytes([b]) for b in SERVER_BYTES[:HEAD_END]]) == WHOLE_CLIENT
    assert _replay_server([bytes([b]) for b in CLIENT_BYTES]) == WHOLE_SERVER


def test_trailing_data_after_the_session_is_ignored() -> None:
    # Bytes after GOAWAY are not read (Go stops reading at GOAWAY).
    trailing = b"\x00\x00\x00\x01\x00\x00\x00\x01x"
    assert _replay_client([SERVER_BYTES[HEAD_END:] + trailing]) == WHOLE_CLIENT


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=40))
def test_any_split_points(points: list[int]) -> None:
    assert _replay_client(_splits(SERVER_BYTES[HEAD_END:], points),
                          _splits(SERVER_BYTES[:HEAD_END], points)) == WHOLE_CLIENT
    assert _replay_server(_splits(CLIENT_BYTES, points)) == WHOLE_SERVER


def test_raw_session_sees_what_client_go_expects() -> None:
    # The client's streams carry exactly client-go's three headers.
    pair = Pair().upgrade()
    rid = pair.client.open(5432)
    wire = Wire()
    data = pair.client.data_to_send()
    wire.record(data)
    syns = frames_of(wire.frames, SynStreamFrame)
    assert [dict(s.headers) for s in syns] == [
        {"streamtype": "error", "port": "5432", "requestid": str(rid)},
        {"streamtype": "data", "port": "5432", "requestid": str(rid)}]
    assert [s.stream_id for s in syns] == [1, 3] and not any(s.fin for s in syns)
    pair.server.receive_data(data)
    pair.client.receive_data(pair.server.data_to_send())
    wire = Wire()
    wire.record(pair.client.data_to_send())
    # The error stream is half-closed once replied to.
    assert [(f.stream_id, f.fin, bytes(f.data)) for f in frames_of(wire.frames, DataFrame)] == [
        (1, True, b"")]



# --------------------------------------------------------------------------- races


def test_close_after_a_rejected_upgrade_keeps_it_rejected() -> None:
    client = SpdyPortForwardClient(host=HOST, target=TARGET)
    client.receive_data(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
    client.close()
    assert client.receive_data(b"x") == []
    with pytest.raises(LocalProtocolError, match="rejected"):
        client.open(80)


def test_replies_and_data_in_flight_for_a_reset_request_are_dropped() -> None:
    pair = Pair().upgrade()
    rid = pair.client.open(80)
    pair.to_server()
    pair.client.reset(rid)      # the server has not seen the reset yet
    pair.server.send(0, b"in flight")
    assert pair.from_server() == []
    assert pair.to_server() == [ForwardReset(request_id=0)]


def test_client_send_after_the_server_reset_only_the_data_stream() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open()
    request = pair.server._requests[sid]
    pair.server._abort(request.data_id)
    assert pair.from_server() == [ForwardReset(request_id=rid)]
    pair.client.send(rid, b"dropped")
    pair.client.end(rid)
    assert pair.client.data_to_send() == b""
    pair.server.end(sid)    # FIN on the error stream: the request is over
    assert pair.from_server() == [ForwardClosed(request_id=rid)]


def test_client_end_after_the_server_ended_both_streams_forgets() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open()
    pair.server.end(sid)
    assert pair.from_server() == [ForwardEnded(request_id=rid)]
    pair.client.end(rid)
    assert pair.client._requests == {}
    _, server = pair.pump()
    assert server == [ForwardEnded(request_id=sid), ForwardClosed(request_id=sid)]


def test_an_error_stream_half_closed_on_its_syn_stream_still_carries_the_text() -> None:
    # Clients may FIN the error stream on its SYN_STREAM instead of after the reply.
    raw = RawClient()
    error_id = raw.stream("error", fin=True)
    raw.stream("data")
    assert raw.flush() == [ForwardRequested(request_id=0, port=80)]
    raw.server.fail(0, "error forwarding port 80 to pod web, uid : refused")
    raw.flush()
    texts = [bytes(f.data) for f in frames_of(raw.wire.frames, DataFrame)
             if f.stream_id == error_id and f.data]
    assert texts == [b"error forwarding port 80 to pod web, uid : refused"]


def test_pending_pairs_are_bounded() -> None:
    from kstream._portforward.spdy import MAX_PENDING_PAIRS

    raw = RawClient()
    for n in range(MAX_PENDING_PAIRS):
        stream_id = raw.stream("data", request_id=str(n))
        raw.flush()
        raw.session.reset_stream(stream_id)   # no longer counts against the session
    refused = raw.stream("data", request_id="last")
    assert raw.flush() == []
    rsts = frames_of(raw.wire.frames, RstStreamFrame)
    assert rsts[-1] == RstStreamFrame(stream_id=refused, status=RstStatus.REFUSED_STREAM)
    # A stream for a pair that already waits is still taken.
    raw.stream("error", request_id="0")
    assert raw.flush() == [ForwardRequested(request_id=0, port=80), ForwardReset(request_id=0)]
