"""Every (state, input) pair of every port-forward connection, both roles, all transports.

Each connection is driven into each state of its life (fresh, upgrade requested, open
with a request, rejected, closed by us, closed by the peer, failed) and then given each
input its Protocol has. The contract: a call either works or raises one of kstream's
protocol errors (LocalProtocolError for misuse, RemoteProtocolError for the peer's bytes,
UpgradeRejectedError from accept); nothing else escapes, and ``data_to_send()`` still
answers afterwards. Some pairs have a definite answer, checked too: ``open`` works only
when open; nothing is sent after the connection ended.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kstream import (
    LocalProtocolError,
    PortForwardClientConnection,
    PortForwardServerConnection,
    RemoteProtocolError,
    SpdyPortForwardClient,
    SpdyPortForwardServer,
    TunnelClient,
    TunnelServer,
    UpgradeRejectedError,
    WebSocketPortForwardClient,
    WebSocketPortForwardServer,
    portforward_target,
)
from kstream._upgrade import ServerUpgrade

TARGET = portforward_target("default", "web")
ALLOWED = (LocalProtocolError, RemoteProtocolError, UpgradeRejectedError)
TRANSPORTS = ("spdy", "websocket", "tunnel")
CLIENT_STATES = ("fresh", "open", "rejected", "closed-local", "closed-remote", "failed")
SERVER_STATES = ("fresh", "requested", "open", "rejected", "closed-local", "closed-remote",
                 "failed")
JUNK = b"\x80\x03\x00\x07\x00\x00\x00\x04\x00\x00\x00\x00" * 2 + b"\x00" * 200


def new_client(transport: str) -> PortForwardClientConnection:
    if transport == "spdy":
        return SpdyPortForwardClient(host="h", target=TARGET)
    if transport == "websocket":
        return WebSocketPortForwardClient(host="h", target=TARGET, ports=[80])
    return TunnelClient(host="h", target=TARGET)


def new_server(transport: str) -> PortForwardServerConnection:
    if transport == "spdy":
        return SpdyPortForwardServer()
    if transport == "websocket":
        return WebSocketPortForwardServer()
    return TunnelServer()


def feed(receiver: PortForwardClientConnection | PortForwardServerConnection,
         data: bytes) -> None:
    if data:
        receiver.receive_data(data)


def connected(transport: str) -> tuple[PortForwardClientConnection,
                                       PortForwardServerConnection]:
    client, server = new_client(transport), new_server(transport)
    feed(server, client.data_to_send())
    server.accept(0.0)
    feed(client, server.data_to_send())
    client.open(80)
    feed(server, client.data_to_send())
    feed(client, server.data_to_send())
    return client, server


def client_in(transport: str, state: str) -> PortForwardClientConnection:
    if state == "fresh":
        client = new_client(transport)
        client.data_to_send()
        return client
    if state == "rejected":
        client = new_client(transport)
        client.data_to_send()
        client.receive_data(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        return client
    client, server = connected(transport)
    if state == "closed-local":
        client.close()
    elif state == "closed-remote":
        server.close()
        feed(client, server.data_to_send())
    elif state == "failed":
        with pytest.raises(RemoteProtocolError):
            client.receive_data(_broken_for_client(transport))
    client.data_to_send()
    return client


def _broken_for_client(transport: str) -> bytes:
    if transport == "spdy":
        return JUNK
    # An unmasked frame with reserved bits set: a WebSocket protocol error.
    return b"\xf2\x01x"


def server_in(transport: str, state: str) -> PortForwardServerConnection:
    if state == "fresh":
        return new_server(transport)
    if state in ("requested", "rejected"):
        server = new_server(transport)
        feed(server, new_client(transport).data_to_send())
        if state == "rejected":
            server.reject(404, "no such pod")
            server.data_to_send()
        return server
    client, server = connected(transport)
    if state == "closed-local":
        server.close()
    elif state == "closed-remote":
        client.close()
        feed(server, client.data_to_send())
    elif state == "failed":
        with pytest.raises(RemoteProtocolError):
            server.receive_data(b"\x82\x01x" if transport != "spdy" else JUNK)
    server.data_to_send()
    return server


def _parsed_request(transport: str) -> ServerUpgrade:
    upgrade = ServerUpgrade()
    upgrade.receive_data(new_client(transport).data_to_send())
    return upgrade


def _call(action: Callable[[], object]) -> BaseException | None:
    try:
        action()
    except ALLOWED as exc:
        return exc
    return None


CLIENT_INPUTS: dict[str, Callable[[PortForwardClientConnection], object]] = {
    "receive junk": lambda c: c.receive_data(JUNK),
    "receive eof": lambda c: c.receive_data(b""),
    "open": lambda c: c.open(80),
    "send": lambda c: c.send(0, b"x"),
    "end": lambda c: c.end(0),
    "reset": lambda c: c.reset(0),
    "ping": lambda c: c.ping(1.0),
    "close": lambda c: c.close(),
    "properties": lambda c: (c.protocol, c.awaiting_pong_since, c.transport),
}

SERVER_INPUTS: dict[str, Callable[[PortForwardServerConnection, str], object]] = {
    "receive junk": lambda s, t: s.receive_data(JUNK),
    "receive eof": lambda s, t: s.receive_data(b""),
    "receive request": lambda s, t: s.receive_request(_parsed_request(t)),
    "accept": lambda s, t: s.accept(0.0),
    "reject": lambda s, t: s.reject(404, "gone"),
    "send": lambda s, t: s.send(0, b"x"),
    "end": lambda s, t: s.end(0),
    "fail": lambda s, t: s.fail(0, "boom"),
    "reset": lambda s, t: s.reset(0),
    "expire": lambda s, t: (s.expire(99.0), s.next_deadline()),
    "ping": lambda s, t: s.ping(1.0),
    "close": lambda s, t: s.close(),
    "properties": lambda s, t: (s.protocol, s.request, s.awaiting_pong_since, s.transport),
}


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("state", CLIENT_STATES)
@pytest.mark.parametrize("name", sorted(CLIENT_INPUTS))
def test_client_state_input(transport: str, state: str, name: str) -> None:
    client = client_in(transport, state)
    error = _call(lambda: CLIENT_INPUTS[name](client))
    assert isinstance(client.data_to_send(), bytes)
    if name == "open":
        # A connection is opened only while the session runs (WebSocket v4: once per port).
        assert (error is None) == (state == "open" and transport != "websocket"), error
    if name in ("properties", "close"):
        assert error is None
    if state in ("closed-remote", "failed") and name in ("send", "end", "reset", "close"):
        assert client.data_to_send() == b""     # nothing goes to a peer that left


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("state", SERVER_STATES)
@pytest.mark.parametrize("name", sorted(SERVER_INPUTS))
def test_server_state_input(transport: str, state: str, name: str) -> None:
    server = server_in(transport, state)
    error = _call(lambda: SERVER_INPUTS[name](server, transport))
    assert isinstance(server.data_to_send(), bytes)
    if name in ("accept", "reject"):
        # Only a request waiting for its answer can be answered.
        assert (error is None) == (state == "requested"), error
    if name == "receive request":
        assert (error is None) == (state == "fresh"), error
    if name in ("properties", "close", "expire"):
        assert error is None
    if state in ("fresh", "requested", "rejected") and name in ("send", "end", "fail",
                                                                 "reset"):
        assert isinstance(error, LocalProtocolError)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_websocket_open_is_once_per_port(transport: str) -> None:
    client, _ = connected(transport)
    if transport == "websocket":
        with pytest.raises(LocalProtocolError, match="no unused connection"):
            client.open(80)
    else:
        assert client.open(80) == 1
