"""Port-forward over WebSocket v4: WebSocketPortForwardClient and ...Server, sans-IO.

Client and server are wired back to back in memory. The server side follows the kubelet's
``websocket.go``: ports from ``?ports=``, channel 2i data and 2i+1 errors, the 2-byte
little-endian port first on both, the WebSocket closed with 1000 once every port is done.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pfpair import ForwardPair

from kstream._channels import V4_BASE64_NAME, V4_NAME
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
from kstream._portforward.handshake import parse_ports, portforward_target
from kstream._portforward.session import (
    CHUNK_SIZE,
    MAX_ERROR_TEXT,
    PortForwardClientConnection,
    PortForwardServerConnection,
)
from kstream._portforward.websocket import (
    MAX_BASE64_PORTS,
    WebSocketPortForwardClient,
    WebSocketPortForwardServer,
)
from kstream._upgrade import ServerUpgrade
from kstream._ws.codec import FrameDecoder
from kstream._ws.connection import WebSocketChannelConnection

TARGET = portforward_target("default", "web")
HOST = "127.0.0.1:6443"


class Pair(ForwardPair):
    client: WebSocketPortForwardClient
    server: WebSocketPortForwardServer

    def __init__(self, ports: Sequence[int] = (8080,), *,
                 protocols: Sequence[str] = (V4_NAME, V4_BASE64_NAME)) -> None:
        super().__init__(WebSocketPortForwardClient(host=HOST, target=TARGET, ports=ports,
                                                    protocols=protocols),
                         WebSocketPortForwardServer())
        self.server_wire = FrameDecoder(client=True)
        self.server_frames: list[tuple[int, bytes]] = []

    def upgrade(self) -> tuple[list[Event], list[Event]]:
        events = self.server.receive_data(self.client.data_to_send())
        assert isinstance(events[0], UpgradeRequested)
        server = self.server.accept(0.0)
        client = self.from_server()
        return client, server

    def record(self, data: bytes) -> None:
        head, _, rest = data.partition(b"\r\n\r\n")
        frames = rest if head.startswith(b"HTTP/1.1 101") else data
        self.server_frames += [(op, bytes(p)) for op, p, _, _ in self.server_wire.feed(frames)]


def data_of(events: Sequence[Event], request_id: int) -> bytes:
    return b"".join(e.data for e in events
                    if isinstance(e, ForwardData) and e.request_id == request_id)


def test_both_roles_satisfy_the_protocols() -> None:
    client: PortForwardClientConnection = WebSocketPortForwardClient(
        host=HOST, target=TARGET, ports=[80])
    server: PortForwardServerConnection = WebSocketPortForwardServer()
    assert client.transport == server.transport == "websocket"
    assert client.protocol == server.protocol == ""
    assert client.awaiting_pong_since is None
    assert server.expire(1.0) == [] and server.next_deadline() is None


def test_the_request_names_every_port() -> None:
    client = WebSocketPortForwardClient(host=HOST, target=TARGET, ports=[8080, 9090, 8080])
    request = client.data_to_send()
    assert request.startswith(b"GET " + TARGET.encode()
                              + b"?ports=8080&ports=9090&ports=8080 HTTP/1.1\r\n")
    assert b"Sec-WebSocket-Protocol: v4.channel.k8s.io, v4.base64.channel.k8s.io" in request
    assert client.ports == (8080, 9090, 8080)
    other = WebSocketPortForwardClient(host=HOST, target="/x?a=b", ports=[1])
    assert other.data_to_send().startswith(b"GET /x?a=b&ports=1 HTTP/1.1")
    for bad in ([], [0], [65536], list(range(1, MAX_BASE64_PORTS + 2))):
        with pytest.raises(LocalProtocolError):
            WebSocketPortForwardClient(host=HOST, target=TARGET, ports=bad)


def test_portforward_target_and_parse_ports() -> None:
    assert portforward_target("ns", "p") == "/api/v1/namespaces/ns/pods/p/portforward"
    assert portforward_target("ns", "p", ports=[1, 2]).endswith("/portforward?ports=1&ports=2")
    with pytest.raises(LocalProtocolError):
        portforward_target("ns", "p", ports=[0])
    assert parse_ports([("ports", "80,443"), ("x", "1"), ("ports", "8080"),
                        ("port", "1")]) == (80, 443, 8080, 1)
    cases = {
        (): 'query parameter "port" is required',
        (("ports", ""),): 'query parameter "port" cannot be empty',
        (("ports", "80,x"),): 'unable to parse "80,x" as a port: strconv.ParseUint: parsing '
                              '"x": invalid syntax',
        (("ports", "70000"),): 'unable to parse "70000" as a port: strconv.ParseUint: parsing '
                               '"70000": value out of range',
        (("ports", "0"),): 'port "0" must be > 0',
        (("ports", "80,"),): 'unable to parse "80," as a port: strconv.ParseUint: parsing "": '
                             'invalid syntax',
    }
    for query, text in cases.items():
        with pytest.raises(RemoteProtocolError) as info:
            parse_ports(query)
        assert str(info.value) == text


@pytest.mark.parametrize("protocols", [(V4_NAME,), (V4_BASE64_NAME,), ()])
def test_round_trip_on_every_subprotocol(protocols: tuple[str, ...]) -> None:
    pair = Pair([8080, 9090], protocols=protocols)
    client, server = pair.upgrade()
    protocol = protocols[0] if protocols else ""
    assert server == [UpgradeAccepted(transport="websocket", protocol=protocol),
                      ForwardRequested(request_id=0, port=8080),
                      ForwardRequested(request_id=1, port=9090)]
    assert isinstance(client[0], UpgradeAccepted)
    assert client[1:] == [ForwardReady(request_id=0), ForwardReady(request_id=1)]
    assert pair.client.protocol == pair.server.protocol == protocol
    assert pair.client.open(9090) == 1 and pair.client.open(8080) == 0
    pair.client.send(0, b"to 8080")
    pair.client.send(1, bytearray(b"to 9090"))
    _, server = pair.pump()
    assert data_of(server, 0) == b"to 8080" and data_of(server, 1) == b"to 9090"
    pair.server.send(1, b"from 9090")
    pair.server.fail(0, "error forwarding port 8080 to pod web, uid : refused")
    client, _ = pair.pump()
    assert client == [ForwardData(request_id=1, data=b"from 9090"),
                      ForwardError(request_id=0,
                                   message="error forwarding port 8080 to pod web, uid : "
                                           "refused")]
    pair.server.end(1)   # the last port: the WebSocket closes with 1000
    client, server = pair.pump()
    assert client == [ForwardEnded(request_id=0), ForwardClosed(request_id=0),
                      ForwardEnded(request_id=1), ForwardClosed(request_id=1),
                      ConnectionClosed(code=1000, clean=True)]
    assert server[-1] == ConnectionClosed(code=1000, clean=True)
    # After the end: sends are dropped.
    pair.client.send(0, b"x")
    pair.server.end(0)
    pair.client.close()
    assert pair.client.data_to_send() == b""


def test_prefixes_are_the_first_message_on_both_channels() -> None:
    pair = Pair([258])
    pair.upgrade()
    assert pair.server_frames == [(2, b"\x00\x02\x01"), (2, b"\x01\x02\x01")]


def test_big_writes_are_32_kib_messages_both_ways() -> None:
    pair = Pair()
    pair.upgrade()
    payload = bytes(range(256)) * 300
    pair.server.send(0, payload)
    pair.server.send(0, memoryview(payload)[:10])
    client, _ = pair.pump()
    sizes = [len(p) - 1 for op, p in pair.server_frames[2:]]
    assert max(sizes) == CHUNK_SIZE and sum(sizes) == len(payload) + 10
    assert data_of(client, 0) == payload + payload[:10]
    pair.client.send(0, payload)
    _, server = pair.pump()
    assert data_of(server, 0) == payload


def test_prefix_split_across_messages_and_glued_to_data() -> None:
    client = WebSocketPortForwardClient(host=HOST, target=TARGET, ports=[80])
    server = WebSocketChannelConnection.server(channels=range(2))
    server.receive_data(client.data_to_send())
    server.accept(V4_NAME)
    server.send_data(0, b"\x50")
    server.send_data(0, b"\x00hello")
    server.send_data(1, b"\x50\x00oops")
    events = client.receive_data(server.data_to_send())
    assert events[1:] == [ForwardReady(request_id=0), ForwardData(request_id=0, data=b"hello"),
                          ForwardError(request_id=0, message="oops")]


def test_messages_on_channels_of_no_port_are_dropped() -> None:
    client = WebSocketPortForwardClient(host=HOST, target=TARGET, ports=[80])
    server = WebSocketChannelConnection.server(channels=range(2))
    server.receive_data(client.data_to_send())
    server.accept(V4_NAME)
    server.send_data(7, b"nobody")
    server.send_data(0, b"\x50\x00")
    events = client.receive_data(server.data_to_send())
    assert events[1:] == [ForwardReady(request_id=0)]


def test_a_wrong_port_prefix_fails_the_client() -> None:
    client = WebSocketPortForwardClient(host=HOST, target=TARGET, ports=[80])
    server = WebSocketChannelConnection.server(channels=range(2))
    server.receive_data(client.data_to_send())
    server.accept(V4_NAME)
    server.send_data(1, b"\x51\x00")
    with pytest.raises(RemoteProtocolError, match="starts with port 81, not 80"):
        client.receive_data(server.data_to_send())
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"")
    assert client.data_to_send()[:1] == b"\x88"   # close 1002, queued before raising


def test_error_text_is_bounded() -> None:
    pair = Pair()
    pair.upgrade()
    pair.server.fail(0, "e" * (MAX_ERROR_TEXT + 10))
    client, _ = pair.pump()
    texts = "".join(e.message for e in client if isinstance(e, ForwardError))
    assert len(texts) == MAX_ERROR_TEXT


def test_open_send_end_reset_rules() -> None:
    pair = Pair([80, 80])
    with pytest.raises(LocalProtocolError, match="did not succeed"):
        pair.client.open(80)
    pair.upgrade()
    assert [pair.client.open(80), pair.client.open(80)] == [0, 1]
    with pytest.raises(LocalProtocolError, match="no unused connection"):
        pair.client.open(80)
    with pytest.raises(LocalProtocolError, match="no unused connection"):
        pair.client.open(81)
    pair.client.end(0)
    assert pair.client.data_to_send() == b""
    with pytest.raises(LocalProtocolError, match="end"):
        pair.client.send(0, b"x")
    pair.client.send(1, b"")
    with pytest.raises(LocalProtocolError, match="no request"):
        pair.client.send(2, b"x")
    pair.client.reset(1)     # closes the WebSocket: both ports end
    client, server = pair.pump()
    assert server == [ForwardEnded(request_id=0), ForwardClosed(request_id=0),
                      ForwardEnded(request_id=1), ForwardClosed(request_id=1),
                      ConnectionClosed(code=1000, clean=True)]
    assert client[-1] == ConnectionClosed(code=1000, clean=True)


def test_server_rules() -> None:
    pair = Pair([80, 81])
    pair.upgrade()
    with pytest.raises(LocalProtocolError):
        pair.server.accept(0.0)
    with pytest.raises(LocalProtocolError):
        pair.server.reject(500)
    pair.server.end(0)
    pair.server.end(0)
    with pytest.raises(LocalProtocolError, match="was ended"):
        pair.server.send(0, b"x")
    with pytest.raises(LocalProtocolError, match="was ended"):
        pair.server.fail(0, "x")
    with pytest.raises(LocalProtocolError, match="no request"):
        pair.server.send(2, b"x")
    pair.server.send(1, b"")
    pair.server.fail(1, "")
    # Data for a port the pod side ended, on an error channel or an unknown one: dropped.
    conn = pair.client._conn
    conn.send_data(0, b"late")
    conn.send_data(1, b"on the error channel")
    conn.send_data(3, b"x")
    assert pair.to_server() == []


def test_server_reset_is_end() -> None:
    pair = Pair([80])
    pair.upgrade()
    pair.server.reset(0)
    client, _ = pair.pump()
    assert client[-1] == ConnectionClosed(code=1000, clean=True)


def test_an_unclean_end_resets_every_port() -> None:
    pair = Pair([80])
    pair.upgrade()
    assert pair.client.receive_data(b"") == [
        ForwardReset(request_id=0), ForwardClosed(request_id=0),
        ConnectionClosed(code=1006, clean=False)]


@pytest.mark.parametrize(("target", "protocols", "status", "text"), [
    (TARGET, [V4_NAME], 400, 'query parameter \\"port\\" is required'),
    (TARGET + "?ports=abc", [V4_NAME], 400, "unable to parse"),
    (TARGET + "?ports=1", ["v5.channel.k8s.io"], 403, "no WebSocket subprotocol in common"),
    (TARGET + "?ports=" + ",".join(["1"] * 41), [V4_BASE64_NAME], 400, "too many ports: 41"),
    (TARGET + "?ports=" + ",".join(["1"] * 128), [V4_NAME], 400, "too many ports: 128"),
])
def test_server_refusals(target: str, protocols: list[str], status: int, text: str) -> None:
    conn = WebSocketChannelConnection.client(host=HOST, target=target, protocols=protocols)
    server = WebSocketPortForwardServer()
    server.receive_data(conn.data_to_send())
    with pytest.raises(UpgradeRejectedError) as info:
        server.accept(0.0)
    assert info.value.status_code == status and text.replace("\\", "") in str(info.value)
    answer = server.data_to_send()
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()) and text.encode() in answer


def test_no_subprotocol_is_refused_when_not_supported() -> None:
    conn = WebSocketChannelConnection.client(host=HOST, target=TARGET + "?ports=1", protocols=())
    server = WebSocketPortForwardServer(supported=[V4_NAME])
    server.receive_data(conn.data_to_send())
    with pytest.raises(UpgradeRejectedError):
        server.accept(0.0)
    events = conn.receive_data(server.data_to_send())
    assert isinstance(events[0], UpgradeRejected)


def test_server_takes_over_a_parsed_request_and_rejects() -> None:
    client = WebSocketPortForwardClient(host=HOST, target=TARGET, ports=[80])
    upgrade = ServerUpgrade()
    upgrade.receive_data(client.data_to_send())
    server = WebSocketPortForwardServer()
    events = server.receive_request(upgrade)
    assert isinstance(events[0], UpgradeRequested) and server.request == events[0]
    server.reject(404, 'pods "web" not found')
    events = client.receive_data(server.data_to_send())
    assert isinstance(events[0], UpgradeRejected)
    assert events[0].error.status_code == 404
    with pytest.raises(LocalProtocolError):
        server.reject(404)


def test_pings() -> None:
    pair = Pair()
    pair.upgrade()
    pair.client.ping(3.0)
    assert pair.client.awaiting_pong_since == 3.0
    client, server = pair.pump()
    assert isinstance(server[0], PingReceived) and isinstance(client[0], PongReceived)
    pair.server.ping(4.0)
    client, _ = pair.pump()
    assert isinstance(client[0], PingReceived)
    pair.server.close()
    pair.server.close()


# --------------------------------------------------------------------------- decoders


def _script() -> tuple[bytes, bytes]:
    pair = Pair([8080, 9090])
    client_bytes = bytearray()
    server_bytes = bytearray()

    def c2s() -> None:
        data = pair.client.data_to_send()
        client_bytes.extend(data)
        pair.server.receive_data(data)

    def s2c() -> None:
        data = pair.server.data_to_send()
        server_bytes.extend(data)
        pair.client.receive_data(data)

    c2s()
    pair.server.accept(0.0)
    s2c()
    pair.client.open(8080)
    pair.client.send(0, b"hello " * 2000)
    pair.client.ping(1.0)
    c2s()
    pair.server.send(1, bytes(range(256)) * 200)
    pair.server.fail(0, "boom")
    s2c()
    pair.server.end(1)
    s2c()
    c2s()
    return bytes(client_bytes), bytes(server_bytes)


CLIENT_BYTES, SERVER_BYTES = _script()


def _normalise(events: Sequence[Event]) -> list[Event]:
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, UpgradeAccepted):
            event = UpgradeAccepted(transport=event.transport, protocol=event.protocol)
        if (isinstance(event, ForwardData) and isinstance(last, ForwardData)
                and last.request_id == event.request_id):
            out[-1] = ForwardData(request_id=event.request_id, data=last.data + event.data)
        elif (isinstance(event, ForwardError) and isinstance(last, ForwardError)
                and last.request_id == event.request_id):
            out[-1] = ForwardError(request_id=event.request_id,
                                   message=last.message + event.message)
        else:
            out.append(event)
    return out


def _replay_client(chunks: Sequence[bytes]) -> list[Event]:
    # The nonce differs per client: answer with a 101 computed for this one.
    client = WebSocketPortForwardClient(host=HOST, target=TARGET, ports=[8080, 9090])
    server = WebSocketPortForwardServer()
    server.receive_data(client.data_to_send())
    server.accept(0.0)
    head = server.data_to_send().partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
    body = SERVER_BYTES.partition(b"\r\n\r\n")[2]
    events: list[Event] = []
    data = head + body
    for chunk in _cut(data, chunks):
        events += client.receive_data(chunk)
    return _normalise(events)


def _replay_server(chunks: Sequence[bytes]) -> list[Event]:
    server = WebSocketPortForwardServer()
    events: list[Event] = []
    for chunk in _cut(CLIENT_BYTES, chunks):
        events += server.receive_data(chunk)
        if server.request is not None and not server._answered:
            events += server.accept(0.0)
    return _normalise(events)


def _cut(data: bytes, sizes: Sequence[bytes]) -> list[bytes]:
    """Cut ``data`` like ``sizes`` (the lengths of those pieces), the rest in one piece."""
    pieces, pos = [], 0
    for piece in sizes:
        pieces.append(data[pos:pos + len(piece)])
        pos += len(piece)
    pieces.append(data[pos:])
    return [p for p in pieces if p]


WHOLE_CLIENT = _replay_client([])
WHOLE_SERVER = _replay_server([])


def test_whole_streams() -> None:
    assert [type(e) for e in WHOLE_CLIENT] == [
        UpgradeAccepted, ForwardReady, ForwardReady, PongReceived, ForwardData, ForwardError,
        ForwardEnded, ForwardClosed, ForwardEnded, ForwardClosed, ConnectionClosed]
    assert WHOLE_CLIENT[4] == ForwardData(request_id=1, data=bytes(range(256)) * 200)
    assert WHOLE_CLIENT[5] == ForwardError(request_id=0, message="boom")
    assert [type(e) for e in WHOLE_SERVER] == [
        UpgradeRequested, UpgradeAccepted, ForwardRequested, ForwardRequested, ForwardData,
        PingReceived, ForwardEnded, ForwardClosed, ForwardEnded, ForwardClosed,
        ConnectionClosed]
    assert WHOLE_SERVER[4] == ForwardData(request_id=0, data=b"hello " * 2000)


def test_byte_at_a_time() -> None:
    ones = [b"x"] * (len(SERVER_BYTES) + 500)
    assert _replay_client(ones) == WHOLE_CLIENT
    assert _replay_server([b"x"] * len(CLIENT_BYTES)) == WHOLE_SERVER


def test_trailing_bytes_after_the_close_are_ignored() -> None:
    server = WebSocketPortForwardServer()
    events: list[Event] = []
    for chunk in (CLIENT_BYTES[:CLIENT_BYTES.index(b"\r\n\r\n") + 4],
                  CLIENT_BYTES[CLIENT_BYTES.index(b"\r\n\r\n") + 4:] + b"\x82\x00trailing"):
        events += server.receive_data(chunk)
        if server.request is not None and not server._answered:
            events += server.accept(0.0)
    assert _normalise(events) == WHOLE_SERVER


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5000), max_size=40))
def test_any_split_points(sizes: list[int]) -> None:
    pieces = [b"x" * size for size in sizes]
    assert _replay_client(pieces) == WHOLE_CLIENT
    assert _replay_server(pieces) == WHOLE_SERVER


def test_bytes_sent_before_the_101_are_read_at_accept() -> None:
    from kstream._ws.codec import OP_BINARY, FrameEncoder

    client = WebSocketChannelConnection.client(host=HOST, target=TARGET + "?ports=80",
                                               protocols=[V4_NAME])
    early = FrameEncoder(client=True).frame(OP_BINARY, b"\x00hello")
    server = WebSocketPortForwardServer()
    server.receive_data(client.data_to_send() + early)
    assert server._conn.receive_early_data() == []   # not before the answer
    events = server.accept(0.0)
    assert events[-1] == ForwardData(request_id=0, data=b"hello")
    assert server._conn.receive_early_data() == []


def test_open_works_in_the_batch_that_holds_the_end() -> None:
    # A server whose only port fails writes the error and closes with the 101.
    client = WebSocketPortForwardClient(host=HOST, target=TARGET, ports=[81])
    server = WebSocketPortForwardServer()
    server.receive_data(client.data_to_send())
    server.accept(0.0)
    server.fail(0, "error forwarding port 81 to pod web, uid : refused")
    events = client.receive_data(server.data_to_send())
    assert events[1:] == [ForwardReady(request_id=0),
                          ForwardError(request_id=0,
                                       message="error forwarding port 81 to pod web, uid : "
                                               "refused"),
                          ForwardEnded(request_id=0), ForwardClosed(request_id=0),
                          ConnectionClosed(code=1000, clean=True)]
    assert client.data_to_send()[:1] == b"\x88"   # the close, echoed
    assert client.open(81) == 0
    client.send(0, b"dropped")
    client.end(0)
    assert client.data_to_send() == b""
