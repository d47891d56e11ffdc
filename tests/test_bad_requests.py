"""Requests a server must refuse with an answer, and credentials an error must not show.

Each case failed before: a malformed request target got no HTTP answer at all, an empty
or malformed ``Sec-WebSocket-Key`` was accepted, and a header value that cannot be sent
(a credential with a line break) was printed in the error message.
"""

from __future__ import annotations

import json

import pytest

import kstream
from kstream import LocalProtocolError, RemoteProtocolError, ServerExecSession

EXEC = "/api/v1/namespaces/d/pods/p/exec?command=x&stdout=true"


def _answer(data: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    document: dict[str, object] = json.loads(body)
    return status, document


@pytest.mark.parametrize("target", [b"/api%zz", b"*", b"/api/v1/x?command=%g0"])
def test_a_malformed_target_is_answered_400(target: bytes) -> None:
    session = ServerExecSession()
    with pytest.raises(RemoteProtocolError):
        session.receive_data(b"OPTIONS " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, document = _answer(session.data_to_send())
    assert status == 400
    assert document["code"] == 400 and document["status"] == "Failure"


def _websocket_request(key: bytes | None) -> bytes:
    lines = [b"GET " + EXEC.encode() + b" HTTP/1.1", b"Host: x", b"Upgrade: websocket",
             b"Connection: Upgrade", b"Sec-WebSocket-Version: 13"]
    if key is not None:
        lines.append(b"Sec-WebSocket-Key: " + key)
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize("key", [b"", b"bad", b"c2hvcnQ=", b"dGhlIHNhbXBsZSBub25jZQ==x",
                                 b"dGhlIHNhbXBsZSBub25jZSEh"])
@pytest.mark.parametrize("via_session", [False, True])
def test_an_empty_or_malformed_websocket_key_is_answered_400(key: bytes,
                                                           via_session: bool) -> None:
    if via_session:
        session = ServerExecSession()
        session.receive_data(_websocket_request(key))
        with pytest.raises(RemoteProtocolError, match="Sec-WebSocket-Key"):
            session.accept(stdin=False, stdout=True, stderr=False, tty=False, now=0.0)
        data = session.data_to_send()
    else:
        server = kstream.WebSocketChannelConnection.server()
        with pytest.raises(RemoteProtocolError, match="Sec-WebSocket-Key"):
            server.receive_data(_websocket_request(key))
        data = server.data_to_send()
    status, document = _answer(data)
    assert status == 400
    assert "Sec-WebSocket-Key" in str(document["message"])


def test_a_valid_key_is_accepted_with_the_rfc_accept_token() -> None:
    server = kstream.WebSocketChannelConnection.server()
    (event,) = server.receive_data(_websocket_request(b"dGhlIHNhbXBsZSBub25jZQ=="))
    assert isinstance(event, kstream.UpgradeRequested)
    server.accept("")
    head = server.data_to_send().split(b"\r\n\r\n")[0]
    assert head == (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")


@pytest.mark.parametrize("value", ["Bearer sec\nret", "Bearer sec\rret", "Bearer sec\x00ret",
                                   "Bearer sec\u2028ret"])
@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_a_header_that_cannot_be_sent_is_named_not_shown(value: str, transport: str) -> None:
    headers = [("Authorization", value)]
    with pytest.raises(LocalProtocolError) as failure:
        if transport == "spdy":
            kstream.SpdyExecClient(host="h", target=EXEC, stdin=False, stdout=True,
                                   stderr=False, tty=False, headers=headers)
        else:
            kstream.WebSocketChannelConnection.client(host="h", target=EXEC, headers=headers)
    assert "'Authorization'" in str(failure.value)
    assert "sec" not in str(failure.value).replace("second", "")
