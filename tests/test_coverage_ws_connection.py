"""Branch-coverage tests of WebSocketChannelConnection (kstream._ws.connection).

Each test pins down one behaviour the older test files left unexercised; the branch it
covers is named in its docstring.
"""

from __future__ import annotations

import pytest
from test_ws_connection import (
    BINARY,
    CLOSE_OP,
    V5,
    client_frame,
    frame,
    new_client,
    open_client,
    open_server,
    parse_frames,
    requested_server,
    split_head,
    upgrade_request,
)

from kstream._errors import LocalProtocolError, RemoteProtocolError
from kstream._events import ConnectionClosed, UpgradeRejected, UpgradeRequested
from kstream._upgrade import MAX_HEAD_SIZE, ServerUpgrade
from kstream._ws.connection import WebSocketChannelConnection, WebSocketState


def test_repr_names_role_state_and_protocol() -> None:
    """``__repr__``: before the upgrade no protocol, after it the negotiated one."""
    server = WebSocketChannelConnection.server()
    assert repr(server) == "<WebSocketChannelConnection server CONNECTING protocol=None>"
    client = open_client(V5)
    assert repr(client) == f"<WebSocketChannelConnection client OPEN protocol={V5!r}>"


def test_accept_with_an_unsendable_header_raises_and_can_still_reject() -> None:
    """``accept``: the engine's refusal of the 101's headers becomes a LocalProtocolError."""
    server = requested_server()
    with pytest.raises(LocalProtocolError, match="cannot accept the upgrade"):
        server.accept(headers=[("Bad Name", "x")])
    assert server.state is WebSocketState.CONNECTING
    assert server.data_to_send() == b""
    server.reject(403, message="no")
    head, _ = split_head(server.data_to_send())
    assert head.startswith(b"HTTP/1.1 403 ")
    assert server.state.name == "REJECTED"


def test_rejection_with_an_unreadable_body_is_still_a_rejection() -> None:
    """``_receive_response``: an HttpError after the status line is an UpgradeRejected."""
    client, _ = new_client()
    events = client.receive_data(b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n"
                                 b"\r\nzz\r\n")
    assert len(events) == 1 and isinstance(events[0], UpgradeRejected)
    error = events[0].error
    assert error.status_code == 403
    assert error.detail.startswith("invalid body: ")
    assert client.state is WebSocketState.REJECTED


def test_receive_request_needs_a_fresh_server() -> None:
    """``receive_request``: a client, or a server that already has a request, refuses."""
    engine = ServerUpgrade(max_head_size=MAX_HEAD_SIZE)
    engine.receive_data(upgrade_request())
    client, _ = new_client()
    with pytest.raises(LocalProtocolError, match="only a fresh server"):
        client.receive_request(engine)
    server = requested_server()
    with pytest.raises(LocalProtocolError, match="only a fresh server"):
        server.receive_request(engine)
    fresh = WebSocketChannelConnection.server()
    events = fresh.receive_request(engine)
    assert len(events) == 1 and isinstance(events[0], UpgradeRequested)


def test_early_close_frame_ends_the_connection_before_later_bytes() -> None:
    """``_receive_frames``: early data that closes the connection; what follows is ignored."""
    server = WebSocketChannelConnection.server()
    early = client_frame(CLOSE_OP, (1000).to_bytes(2, "big"))
    events = server.receive_data(upgrade_request() + early)
    assert len(events) == 1 and isinstance(events[0], UpgradeRequested)
    server.accept()
    split_head(server.data_to_send())
    events = server.receive_data(client_frame(BINARY, b"\x00stdin"))
    assert events == [ConnectionClosed(code=1000, reason="", clean=True)]
    assert server.state is WebSocketState.CLOSED
    # The close was echoed; the later message was not read.
    assert parse_frames(server.data_to_send()) == [(CLOSE_OP, True, b"\x03\xe8")]


def test_whole_message_over_the_limit_fails_with_1009() -> None:
    """``_receive_frames`` fast path: a one-frame message larger than max_message_size."""
    client = open_client(V5, max_message_size=4)
    with pytest.raises(RemoteProtocolError) as info:
        client.receive_data(frame(BINARY, b"\x01" + b"x" * 9))
    assert info.value.close_code == 1009
    assert client.state is WebSocketState.FAILED
    [(opcode, fin, payload)] = parse_frames(client.data_to_send())
    assert (opcode, fin, payload[:2]) == (CLOSE_OP, True, (1009).to_bytes(2, "big"))


def test_whole_message_at_the_limit_is_delivered() -> None:
    """The fast path's size check is ``>``: a message of exactly the limit passes."""
    server = open_server(V5, max_message_size=4)
    events = server.receive_data(client_frame(BINARY, b"\x00abc"))
    assert [(e.channel, e.data) for e in events] == [(0, b"abc")]  # type: ignore[attr-defined]
