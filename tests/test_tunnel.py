"""The port-forward tunnel (SPDY in WebSocket binary messages): TunnelClient, TunnelServer.

A client and a server are wired back to back in memory; the WebSocket messages between
them are also re-cut at arbitrary boundaries (every frame write split, several frames in
one message, a few bytes per message), as the apiserver relay and kubectl produce them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

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
from kstream._portforward.dispatch import server_for_request
from kstream._portforward.events import (
    ForwardClosed,
    ForwardData,
    ForwardEnded,
    ForwardError,
    ForwardReady,
    ForwardRequested,
    ForwardReset,
)
from kstream._portforward.handshake import portforward_target, request_transport
from kstream._portforward.session import PortForwardClientConnection, PortForwardServerConnection
from kstream._portforward.spdy import SpdyPortForwardClient, SpdyPortForwardServer
from kstream._portforward.websocket import WebSocketPortForwardClient, WebSocketPortForwardServer
from kstream._tunnel import TunnelClient, TunnelServer
from kstream._tunnel.connection import SERVER_MESSAGE_SIZE
from kstream._upgrade import ServerUpgrade
from kstream._ws.binary import BinaryWebSocket
from kstream._ws.codec import OP_BINARY, OP_TEXT, FrameDecoder, FrameEncoder

TARGET = portforward_target("default", "web")
HOST = "127.0.0.1:6443"
TUNNEL = "SPDY/3.1+portforward.k8s.io"


def ws_payloads(data: bytes, *, client: bool) -> list[tuple[int, bytes]]:
    """The messages in ``data`` (frames sent by a server if not ``client``)."""
    decoder = FrameDecoder(client=not client)
    return [(op, bytes(p)) for op, p, _, _ in decoder.feed(data)]


class Pair(ForwardPair):
    client: TunnelClient
    server: TunnelServer

    def __init__(self) -> None:
        super().__init__(TunnelClient(host=HOST, target=TARGET, headers=[("User-Agent", "t")]),
                         TunnelServer())
        self.server_messages: list[tuple[int, bytes]] = []
        self._server_decoder = FrameDecoder(client=True)

    def upgrade(self) -> Pair:
        events = self.server.receive_data(self.client.data_to_send())
        assert isinstance(events[0], UpgradeRequested)
        assert events[0].protocols == (TUNNEL,)
        assert self.server.accept(self.now) == [UpgradeAccepted(transport="tunnel",
                                                                 protocol=TUNNEL)]
        events = self.from_server()
        assert isinstance(events[0], UpgradeAccepted)
        assert (events[0].transport, events[0].protocol) == ("tunnel", TUNNEL)
        assert self.client.protocol == self.server.protocol == TUNNEL
        return self

    def record(self, data: bytes) -> None:
        head, _, rest = data.partition(b"\r\n\r\n")
        frames = rest if head.startswith(b"HTTP/1.1 101") else data
        self.server_messages += [(op, bytes(p)) for op, p, _, _
                                 in self._server_decoder.feed(frames)]


def data_of(events: Sequence[Event], request_id: int) -> bytes:
    return b"".join(e.data for e in events
                    if isinstance(e, ForwardData) and e.request_id == request_id)


def test_both_roles_satisfy_the_protocols() -> None:
    client: PortForwardClientConnection = TunnelClient(host=HOST, target=TARGET)
    server: PortForwardServerConnection = TunnelServer()
    assert client.transport == server.transport == "tunnel"
    assert client.protocol == server.protocol == ""
    assert client.awaiting_pong_since is None and server.awaiting_pong_since is None
    assert server.expire(1.0) == [] and server.next_deadline() is None
    for call in (lambda: client.open(80), lambda: client.send(0, b"x"),
                 lambda: client.end(0), lambda: client.reset(0), lambda: client.ping(0.0),
                 lambda: server.send(0, b""), lambda: server.end(0),
                 lambda: server.fail(0, ""), lambda: server.reset(0),
                 lambda: server.accept(0.0), lambda: server.reject(400)):
        with pytest.raises(LocalProtocolError):
            call()
    client.close()
    server.close()


def test_the_request_is_kubectls() -> None:
    request = TunnelClient(host=HOST, target=TARGET).data_to_send()
    assert request.startswith(b"GET /api/v1/namespaces/default/pods/web/portforward HTTP/1.1")
    assert b"Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n" in request
    assert b"Upgrade: websocket" in request


def test_round_trip_and_message_sizes() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open()
    payload = bytes(range(256)) * 1000    # 256,000 bytes
    pair.client.send(rid, payload)
    pair.client.end(rid)
    _, server = pair.pump()
    assert data_of(server, sid) == payload and ForwardEnded(request_id=sid) in server
    pair.server.send(sid, payload)
    pair.server.fail(sid, "error forwarding port 8080 to pod web, uid : EOF")
    client, _ = pair.pump()
    assert data_of(client, rid) == payload
    assert client[-3:] == [ForwardError(request_id=rid, message="error forwarding port 8080 "
                                        "to pod web, uid : EOF"),
                           ForwardEnded(request_id=rid), ForwardClosed(request_id=rid)]
    sizes = [len(p) for op, p in pair.server_messages]
    assert all(op == OP_BINARY for op, _ in pair.server_messages)
    assert max(sizes) == SERVER_MESSAGE_SIZE


def test_pings_inside_and_outside() -> None:
    pair = Pair().upgrade()
    pair.client.ping(5.0)
    assert pair.client.awaiting_pong_since == 5.0
    _, server = pair.pump()
    assert isinstance(server[0], PingReceived)
    assert isinstance(pair.client_events[-1], PongReceived)
    assert pair.client_events[-1].sent_at == 5.0
    pair.server.ping(6.0)
    assert pair.server.awaiting_pong_since == 6.0
    pair.pump()
    # A WebSocket-level ping is answered by the WebSocket and reported.
    pair.server._ws.ping(7.0)
    client, server = pair.pump()
    assert isinstance(client[0], PingReceived) and isinstance(server[0], PongReceived)


def test_close_sends_goaway_then_close_1000_and_reports_one_end() -> None:
    pair = Pair().upgrade()
    rid, _ = pair.open()
    pair.server.close()
    pair.server.close()
    client, server = pair.pump()
    assert client == [ForwardReset(request_id=rid), ForwardClosed(request_id=rid),
                      ConnectionClosed(code=0, clean=True)]
    assert server == [ConnectionClosed(code=1000, clean=True)]
    kinds = [p[:4] for op, p in pair.server_messages[-2:]]
    assert kinds[0][:4] == b"\x80\x03\x00\x03"   # RST_STREAM before the GOAWAY
    with pytest.raises(LocalProtocolError):
        pair.client.open(80)
    pair.client.close()


def test_websocket_close_ends_the_spdy_stream() -> None:
    pair = Pair().upgrade()
    rid, _ = pair.open()
    pair.server._ws.close()
    client, _ = pair.pump()
    assert client == [ForwardReset(request_id=rid), ForwardClosed(request_id=rid),
                      ConnectionClosed(code=1000, clean=True)]


def test_eof_without_a_close() -> None:
    pair = Pair().upgrade()
    events = pair.client.receive_data(b"")
    assert events == [ConnectionClosed(code=1006, clean=False)]


def test_text_message_is_an_error() -> None:
    pair = Pair().upgrade()
    frame = FrameEncoder(client=False).frame(OP_TEXT, b"nope")
    with pytest.raises(RemoteProtocolError, match="text message"):
        pair.client.receive_data(frame)
    out = pair.client.data_to_send()
    assert ws_payloads(out, client=True)[0][1][:2] == (1003).to_bytes(2, "big")
    with pytest.raises(RemoteProtocolError):
        pair.client.receive_data(b"")


def test_broken_spdy_inside_sends_goaway_and_close_1002() -> None:
    pair = Pair().upgrade()
    frame = FrameEncoder(client=False).frame(OP_BINARY, b"\x80\x03\x00\x07\x00\x00\x00\x04"
                                                        b"\x00\x00\x00\x00")
    with pytest.raises(RemoteProtocolError):
        pair.client.receive_data(frame)
    messages = ws_payloads(pair.client.data_to_send(), client=True)
    assert messages[0][1][:4] == b"\x80\x03\x00\x07"     # GOAWAY
    assert messages[1][1][:2] == (1002).to_bytes(2, "big")


def test_broken_spdy_while_the_websocket_closes_raises_only() -> None:
    pair = Pair().upgrade()
    pair.client._ws.close()
    frame = FrameEncoder(client=False).frame(OP_BINARY, b"\x80\x03\x00\x07\x00\x00\x00\x04"
                                                        b"\x00\x00\x00\x00")
    with pytest.raises(RemoteProtocolError):
        pair.client.receive_data(frame)


def test_a_101_without_the_subprotocol_is_a_rejection() -> None:
    client = TunnelClient(host=HOST, target=TARGET)
    ws = BinaryWebSocket.server()
    ws.receive_data(client.data_to_send())
    ws.accept("")
    events = client.receive_data(ws.data_to_send())
    assert len(events) == 1 and isinstance(events[0], UpgradeRejected)
    assert "chose no subprotocol" in str(events[0].error)
    with pytest.raises(LocalProtocolError):
        client.open(80)


def test_a_403_is_a_rejection() -> None:
    client = TunnelClient(host=HOST, target=TARGET)
    events = client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno\n")
    assert isinstance(events[0], UpgradeRejected) and events[0].error.status_code == 403


@pytest.mark.parametrize(("protocols", "status", "text"), [
    (["v4.channel.k8s.io"], 400, b"unable to upgrade: no tunneling spdy protocols provided\n"),
    (["SPDY/3.1+portforward.example"], 400, b"no tunneling spdy protocols provided"),
    (["SPDY/3.1+v4.channel.k8s.io"], 403,
     b"unable to upgrade: unable to negotiate protocol: client supports "
     b"[v4.channel.k8s.io], server accepts [portforward.k8s.io]\n"),
])
def test_server_refusals(protocols: list[str], status: int, text: bytes) -> None:
    client = BinaryWebSocket.client(host=HOST, target=TARGET, protocols=protocols)
    server = TunnelServer()
    server.receive_data(client.data_to_send())
    with pytest.raises(UpgradeRejectedError) as info:
        server.accept(0.0)
    assert info.value.status_code == status
    answer = server.data_to_send()
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()) and text in answer
    assert b"Content-Type: text/plain" in answer
    events = client.receive_data(answer)
    assert isinstance(events[0], UpgradeRejected)


def test_server_takes_over_a_parsed_request_and_can_reject_it() -> None:
    client = TunnelClient(host=HOST, target=TARGET)
    upgrade = ServerUpgrade()
    upgrade.receive_data(client.data_to_send())
    server = TunnelServer()
    events = server.receive_request(upgrade)
    assert isinstance(events[0], UpgradeRequested) and server.request == events[0]
    server.reject(404, 'pods "web" not found')
    events = client.receive_data(server.data_to_send())
    assert isinstance(events[0], UpgradeRejected) and events[0].error.status_code == 404
    assert events[0].error.status is not None
    with pytest.raises(LocalProtocolError):
        server.reject(404)


def test_early_bytes_reach_the_inner_session() -> None:
    # A client that writes before the 101 (RFC 6455 forbids it; be lenient, bounded).
    spdy = SpdyPortForwardClient.upgraded()
    spdy.open(9000)
    frames = FrameEncoder(client=True).frame(OP_BINARY, spdy.data_to_send())
    ping = FrameEncoder(client=True).frame(0x9, b"")
    request = TunnelClient(host=HOST, target=TARGET).data_to_send()
    server = TunnelServer()
    server.receive_data(request + frames + ping)
    events = server.accept(0.0)
    assert events[1:] == [ForwardRequested(request_id=0, port=9000), PingReceived(payload=b"")]


def test_server_methods_delegate() -> None:
    pair = Pair().upgrade()
    rid, sid = pair.open()
    pair.server.send(sid, b"x")
    pair.server.end(sid)
    pair.client.reset(rid)
    client, server = pair.pump()
    assert server == [ForwardReset(request_id=sid), ForwardClosed(request_id=sid)]
    rid, sid = pair.open()
    pair.server.reset(sid)
    client, _ = pair.pump()
    assert client == [ForwardReset(request_id=rid), ForwardClosed(request_id=rid)]
    pair.client.send(rid, b"dropped")
    pair.client.end(rid)


def test_pair_deadline_through_the_tunnel() -> None:
    pair = Pair().upgrade()
    spdy = pair.client._client
    assert spdy is not None
    session = spdy._session
    assert session is not None
    session.open_stream([("streamtype", "error"), ("port", "80"), ("requestid", "9")])
    pair.pump()
    assert pair.server.next_deadline() == 30.0
    pair.now = 30.0
    pair.pump()
    assert pair.server.next_deadline() is None


# --------------------------------------------------------------------------- re-cut messages


def _script() -> tuple[bytes, bytes]:
    """A whole exchange: the client's and the server's bytes after the upgrade (SPDY)."""
    client = SpdyPortForwardClient.upgraded()
    server = SpdyPortForwardServer.upgraded()
    c_bytes, s_bytes = bytearray(), bytearray()

    def c2s() -> None:
        data = client.data_to_send()
        c_bytes.extend(data)
        server.receive_data(data)

    def s2c() -> None:
        data = server.data_to_send()
        s_bytes.extend(data)
        client.receive_data(data)

    rid = client.open(8080)
    client.send(rid, b"ping " * 3000)
    c2s()
    s2c()
    client.end(rid)
    c2s()
    server.send(0, bytes(range(256)) * 300)
    server.fail(0, "boom")
    s2c()
    server.close()
    s2c()
    return bytes(c_bytes), bytes(s_bytes)


C_SPDY, S_SPDY = _script()


def _messages(data: bytes, cuts: Sequence[int], *, client: bool) -> bytes:
    """``data`` as binary messages cut at ``cuts``, framed by a client or a server."""
    encoder = FrameEncoder(client=client)
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return b"".join(encoder.frame(OP_BINARY, data[a:b]) for a, b in itertools.pairwise(points)
                    if b > a)


def _normalise(events: Sequence[Event]) -> list[Event]:
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, UpgradeAccepted):
            event = UpgradeAccepted(transport=event.transport, protocol=event.protocol)
        if (isinstance(event, ForwardData) and isinstance(last, ForwardData)
                and last.request_id == event.request_id):
            out[-1] = ForwardData(request_id=event.request_id, data=last.data + event.data)
        else:
            out.append(event)
    return out


def _chunks(data: bytes, reads: Sequence[int]) -> list[bytes]:
    points = sorted({r % (len(data) + 1) for r in reads} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def _client_side(message_cuts: Sequence[int], reads: Sequence[int]) -> list[Event]:
    client = TunnelClient(host=HOST, target=TARGET)
    ws = BinaryWebSocket.server()
    ws.receive_data(client.data_to_send())
    ws.accept(TUNNEL)
    events = client.receive_data(ws.data_to_send())
    rid = client.open(8080)
    client.send(rid, b"x")
    client.end(rid)
    for chunk in _chunks(_messages(S_SPDY, message_cuts, client=False), reads):
        events += client.receive_data(chunk)
    return _normalise(events)


def _server_side(message_cuts: Sequence[int], reads: Sequence[int]) -> list[Event]:
    client = BinaryWebSocket.client(host=HOST, target=TARGET, protocols=[TUNNEL])
    server = TunnelServer()
    server.receive_data(client.data_to_send())
    events = server.accept(0.0)
    for chunk in _chunks(_messages(C_SPDY, message_cuts, client=True), reads):
        events += server.receive_data(chunk)
    return _normalise(events)


WHOLE_CLIENT = _client_side([], [])
WHOLE_SERVER = _server_side([], [])


def test_whole_exchange() -> None:
    expected_client = [
        UpgradeAccepted(transport="tunnel", protocol=TUNNEL), ForwardReady(request_id=0),
        ForwardData(request_id=0, data=bytes(range(256)) * 300),
        ForwardError(request_id=0, message="boom"), ForwardEnded(request_id=0),
        ForwardClosed(request_id=0), ConnectionClosed(code=0, clean=True)]
    expected_server = [
        UpgradeAccepted(transport="tunnel", protocol=TUNNEL),
        ForwardRequested(request_id=0, port=8080),
        ForwardData(request_id=0, data=b"ping " * 3000), ForwardEnded(request_id=0)]
    assert expected_client == WHOLE_CLIENT
    assert expected_server == WHOLE_SERVER


def test_every_frame_write_its_own_message_and_a_few_bytes_each() -> None:
    every_4 = list(range(0, len(S_SPDY), 4))
    assert _client_side(every_4, []) == WHOLE_CLIENT
    assert _server_side(list(range(0, len(C_SPDY), 3)), []) == WHOLE_SERVER
    assert _client_side(list(range(len(S_SPDY))), [1 << 30]) == WHOLE_CLIENT


def test_byte_at_a_time_reads() -> None:
    ones = list(range(200_000))
    assert _client_side([8, 16, 100], ones) == WHOLE_CLIENT
    assert _server_side([8, 16, 100], ones) == WHOLE_SERVER


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=100_000), max_size=30),
       st.lists(st.integers(min_value=0, max_value=200_000), max_size=30))
def test_any_message_cuts_and_reads(cuts: list[int], reads: list[int]) -> None:
    assert _client_side(cuts, reads) == WHOLE_CLIENT
    assert _server_side(cuts, reads) == WHOLE_SERVER


# --------------------------------------------------------------------------- dispatch


def _request(headers: bytes, method: bytes = b"GET") -> ServerUpgrade:
    upgrade = ServerUpgrade()
    upgrade.receive_data(method + b" " + TARGET.encode() + b"?ports=80 HTTP/1.1\r\nHost: h\r\n"
                         + headers + b"Content-Length: 0\r\n\r\n")
    return upgrade


WS_HEADERS = (b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


@pytest.mark.parametrize(("headers", "method", "kind"), [
    (WS_HEADERS + b"Sec-WebSocket-Protocol: v4.channel.k8s.io, SPDY/3.1+portforward.k8s.io\r\n",
     b"GET", TunnelServer),
    (WS_HEADERS + b"Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n", b"GET",
     WebSocketPortForwardServer),
    (WS_HEADERS, b"GET", WebSocketPortForwardServer),
    (b"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
     b"X-Stream-Protocol-Version: portforward.k8s.io\r\n", b"POST", SpdyPortForwardServer),
])
def test_server_for_request_picks_the_transport(headers: bytes, method: bytes,
                                                kind: type) -> None:
    found = server_for_request(_request(headers, method))
    assert found is not None
    connection, events = found
    assert isinstance(connection, kind)
    assert isinstance(events[0], UpgradeRequested)
    events = connection.accept(0.0)
    assert isinstance(events[0], UpgradeAccepted)


def test_server_for_a_plain_request_is_none() -> None:
    assert server_for_request(_request(b"")) is None


def test_request_transport() -> None:
    assert request_transport([("upgrade", "websocket"),
                              ("sec-websocket-protocol", "SPDY/3.1+portforward.k8s.io")]) \
        == "tunnel"
    assert request_transport([("upgrade", "WebSocket"),
                              ("sec-websocket-protocol", "SPDY/3.1+other")]) == "websocket"
    assert request_transport([("upgrade", "SPDY/3.1")]) == "spdy"
    assert request_transport([("connection", "close")]) is None


def test_websocket_client_against_tunnel_detection() -> None:
    # The official client's request goes to WebSocket v4, kubectl 1.31's to the tunnel.
    v4 = WebSocketPortForwardClient(host=HOST, target=TARGET, ports=[80]).data_to_send()
    upgrade = ServerUpgrade()
    upgrade.receive_data(v4)
    assert upgrade.request is not None
    assert request_transport(upgrade.request.headers) == "websocket"
