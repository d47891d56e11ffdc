"""Branch-coverage tests of the HTTP/1.1 upgrade to SPDY/3.1, server role
(kstream._spdy.upgrade.SpdyUpgradeServer): its guards, and answers that cannot be sent.
"""

from __future__ import annotations

import pytest

from kstream._errors import LocalProtocolError
from kstream._events import UpgradeRequested
from kstream._spdy.upgrade import SpdyUpgradeClient, SpdyUpgradeServer
from kstream._upgrade import ServerUpgrade

TARGET = "/api/v1/namespaces/default/pods/p/exec?command=ls&stdout=true"
BAD_HEADER = ("X-Bad", "a\r\nInjected: yes")


def _request(target: str = TARGET) -> bytes:
    return SpdyUpgradeClient(host="h:1", target=target).data_to_send()


def _server_with_request(target: str = TARGET) -> SpdyUpgradeServer:
    server = SpdyUpgradeServer()
    events = server.receive_data(_request(target))
    assert [type(e) for e in events] == [UpgradeRequested]
    return server


def test_receive_request_needs_a_fresh_server() -> None:
    server = _server_with_request()
    request = _request()
    engine = ServerUpgrade()
    engine.receive_data(request)
    with pytest.raises(LocalProtocolError, match="only a fresh upgrade"):
        server.receive_request(engine)


def test_receive_request_after_part_of_a_request_is_refused() -> None:
    # Regression: the bytes already fed were silently dropped with the engine they were in.
    server = SpdyUpgradeServer()
    request = _request()
    assert server.receive_data(request[:10]) == []
    engine = ServerUpgrade()
    engine.receive_data(request)
    with pytest.raises(LocalProtocolError, match="only a fresh upgrade"):
        server.receive_request(engine)
    assert [type(e) for e in server.receive_data(request[10:])] == [UpgradeRequested]


def test_receive_request_takes_over_a_parsed_request() -> None:
    engine = ServerUpgrade()
    engine.receive_data(_request())
    server = SpdyUpgradeServer()
    [event] = server.receive_request(engine)
    assert isinstance(event, UpgradeRequested) and event.target == TARGET


def test_a_target_that_cannot_be_split_is_reported_whole() -> None:
    server = _server_with_request("/api%zz")
    assert server.request is not None
    assert server.request.target == "/api%zz"
    assert server.request.path == "/api%zz" and server.request.query == ()
    server.reject(400, message="bad target")
    assert server.data_to_send().startswith(b"HTTP/1.1 400 ")


def test_negotiated_protocol_is_none_before_the_request() -> None:
    server = SpdyUpgradeServer()
    assert server.negotiated_protocol is None
    server.receive_data(_request())
    assert server.negotiated_protocol == "v4.channel.k8s.io"


def test_accept_with_an_unsendable_header_is_a_local_error() -> None:
    server = _server_with_request()
    with pytest.raises(LocalProtocolError, match="cannot send the upgrade answer"):
        server.accept(headers=[BAD_HEADER])
    assert b"Injected" not in server.data_to_send()


def test_answering_twice_is_refused() -> None:
    server = _server_with_request()
    assert server.accept() == "v4.channel.k8s.io"
    with pytest.raises(LocalProtocolError, match="already answered"):
        server.accept()
    with pytest.raises(LocalProtocolError, match="already answered"):
        server.refuse()


def test_reject_with_a_body_keeps_the_callers_content_type() -> None:
    server = _server_with_request()
    server.reject(500, body=b"{}", headers=[("Content-Type", "application/json")])
    head, body = server.data_to_send().split(b"\r\n\r\n", 1)
    assert body == b"{}"
    assert head.lower().count(b"content-type:") == 1
    assert b"content-type: application/json" in head.lower()


def test_reject_with_a_body_defaults_to_plain_text() -> None:
    server = _server_with_request()
    server.reject(500, body=b"oops")
    head, body = server.data_to_send().split(b"\r\n\r\n", 1)
    assert body == b"oops"
    assert b"content-type: text/plain; charset=utf-8" in head.lower()


def test_reject_with_an_informational_status_is_refused() -> None:
    server = _server_with_request()
    with pytest.raises(LocalProtocolError, match="cannot reject with status 101"):
        server.reject(101, body=b"")
    server.reject(403, message="no")  # still answerable
    assert server.data_to_send().startswith(b"HTTP/1.1 403 ")


def test_reject_with_an_unsendable_header_is_a_local_error() -> None:
    server = _server_with_request()
    with pytest.raises(LocalProtocolError, match="cannot send the upgrade answer"):
        server.reject(400, message="x", headers=[BAD_HEADER])
    assert b"Injected" not in server.data_to_send()
