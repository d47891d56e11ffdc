"""Client and server WebSocketChannelConnections wired back to back, in memory.

Whole exec exchanges for every channel subprotocol, the golden bytes of protocol-notes §7,
and round trips of arbitrary messages over arbitrarily split byte streams.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kstream._channels import WEBSOCKET_PROTOCOLS
from kstream._events import (
    ChannelData,
    ChannelEnded,
    ConnectionClosed,
    DroppedMessage,
    Event,
    PingReceived,
    PongReceived,
    UpgradeAccepted,
    UpgradeRejected,
    UpgradeRequested,
)
from kstream._status import (
    CAUSE_EXIT_CODE,
    REASON_NON_ZERO_EXIT_CODE,
    STATUS_FAILURE,
    Exited,
    Failed,
    Status,
    StatusCause,
    encode_status,
    exit_code_status,
    exit_status_bytes,
    parse_exit_status,
)
from kstream._ws.connection import WebSocketChannelConnection, WebSocketState, hello_channel
from kstream.testing import pairs

V5 = "v5.channel.k8s.io"
FIVE_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                  "channel.k8s.io", "base64.channel.k8s.io")
TARGET = ("/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c"
          "&command=echo+hi%3B+exit+3&container=c&stderr=true&stdout=true")

# protocol-notes §7: the status the apiserver translator writes for exit code 3.
SECTION_7_STATUS = (
    b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit '
    b'code: command terminated with exit code 3","reason":"NonZeroExitCode","details":'
    b'{"causes":[{"reason":"ExitCode","message":"3"}]}}'
)


def transfer(source: WebSocketChannelConnection, sink: WebSocketChannelConnection,
             cuts: Sequence[int] = ()) -> list[Event]:
    """Move everything ``source`` queued into ``sink``, cut at ``cuts``."""

    def at_cuts(data: bytes) -> list[bytes]:
        edges = [0, *sorted(c for c in set(cuts) if 0 < c < len(data)), len(data)]
        return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]

    return pairs.transfer(source, sink, at_cuts)


def merged(events: Sequence[Event]) -> list[Event]:
    """Join consecutive ChannelData of one channel: how pieces fall is not part of the API."""
    out: list[Event] = []
    for event in events:
        if (isinstance(event, ChannelData) and out and isinstance(out[-1], ChannelData)
                and out[-1].channel == event.channel):
            out[-1] = ChannelData(channel=event.channel, data=out[-1].data + event.data)
        else:
            out.append(event)
    return out


def connect(protocol: str) -> tuple[WebSocketChannelConnection, WebSocketChannelConnection]:
    pair = pairs.websocket_pair(protocol, target=TARGET,
                                headers=[("Authorization", "Bearer t")])
    (request,) = pair.server_events
    assert isinstance(request, UpgradeRequested)
    assert request.protocols == (protocol,)
    (accepted,) = pair.client_events
    assert accepted == UpgradeAccepted(transport="websocket", protocol=protocol,
                                       headers=accepted.headers)  # type: ignore[attr-defined]
    return pair.client, pair.server


# --------------------------------------------------------------------------------------
# A whole exec, every subprotocol


@pytest.mark.parametrize("protocol", FIVE_PROTOCOLS)
def test_whole_exec_exchange(protocol: str) -> None:
    info = WEBSOCKET_PROTOCOLS[protocol]
    client = WebSocketChannelConnection.client(host="127.0.0.1:6443", target=TARGET,
                                               protocols=(protocol,))
    server = WebSocketChannelConnection.server()

    # Upgrade.
    (request,) = transfer(client, server)
    assert isinstance(request, UpgradeRequested)
    assert ("stdout", "true") in request.query and ("stderr", "true") in request.query
    server.accept(hello=hello_channel(stdout=True, stderr=True))
    events = transfer(server, client)
    assert isinstance(events[0], UpgradeAccepted) and events[0].protocol == protocol
    assert events[1:] == [ChannelData(channel=1, data=b"")]  # the hello
    assert client.protocol is info and server.protocol is info

    # stdin, then (v5) its half-close, and a resize.
    client.send_data(0, b"echo hi\n")
    client.send_data(4, b'{"Width":80,"Height":24}\n')
    if info.supports_close:
        client.close_channel(0)
    expected: list[Event] = [ChannelData(channel=0, data=b"echo hi\n"),
                             ChannelData(channel=4, data=b'{"Width":80,"Height":24}\n')]
    if info.supports_close:
        expected.append(ChannelEnded(channel=0))
    assert transfer(client, server) == expected

    # Pings both ways.
    client.ping(5.0)
    assert transfer(client, server) == [PingReceived(payload=b"")]
    assert transfer(server, client) == [PongReceived(payload=b"", sent_at=5.0)]

    # Output, the exit status, close 1000.
    status = exit_status_bytes(exit_code_status(3, ["sh", "-c", "echo hi; exit 3"]),
                               info.version)
    server.send_data(1, b"hi\n")
    server.send_data(2, b"oops\n")
    server.send_data(3, status)
    server.close()
    events = transfer(server, client)
    assert events == [ChannelData(channel=1, data=b"hi\n"), ChannelData(channel=2, data=b"oops\n"),
                      ChannelData(channel=3, data=status),
                      ConnectionClosed(code=1000, reason="", clean=True)]
    result = parse_exit_status(status, info.version)
    if info.version >= 4:
        assert result == Exited(3, "command terminated with exit code 3")
    else:
        assert isinstance(result, Failed) and "exit code 3" in result.message
    assert client.state is WebSocketState.CLOSED

    # The client echoed the close; the server is done too.
    assert transfer(client, server) == [ConnectionClosed(code=1000, reason="", clean=True)]
    assert server.state is WebSocketState.CLOSED
    assert client.data_to_send() == b"" and server.data_to_send() == b""
    assert client.receive_data(b"") == [] and server.receive_data(b"") == []


@pytest.mark.parametrize("protocol", FIVE_PROTOCOLS)
def test_exchange_byte_by_byte(protocol: str) -> None:
    client, server = connect(protocol)
    server.send_data(1, b"x" * 200)
    server.send_data(3, b"{}")
    server.close()
    stream = server.data_to_send()
    events: list[Event] = []
    for byte in stream:
        events += client.receive_data(bytes((byte,)))
    assert merged(events) == [ChannelData(channel=1, data=b"x" * 200),
                              ChannelData(channel=3, data=b"{}"),
                              ConnectionClosed(code=1000, reason="", clean=True)]


def test_upgrade_rejection_with_status_body_back_to_back() -> None:
    client = WebSocketChannelConnection.client(host="h", target=TARGET)
    server = WebSocketChannelConnection.server()
    transfer(client, server)
    server.reject(403, message='pods "p" is forbidden: User "u" cannot create resource '
                               '"pods/exec"')
    (event,) = transfer(server, client)
    assert isinstance(event, UpgradeRejected)
    assert event.error.status_code == 403
    assert event.error.status is not None
    assert event.error.status.reason == "Forbidden"
    assert event.error.status.message.startswith('pods "p" is forbidden')
    assert client.state is WebSocketState.REJECTED and server.state is WebSocketState.REJECTED


def test_no_common_protocol_back_to_back() -> None:
    client = WebSocketChannelConnection.client(host="h", target=TARGET, protocols=[V5])
    server = WebSocketChannelConnection.server(supported=["v4.channel.k8s.io"])
    transfer(client, server)
    server.reject(403)
    (event,) = transfer(server, client)
    assert isinstance(event, UpgradeRejected) and event.error.body == b""


def test_server_choosing_an_unoffered_protocol_is_rejected_by_our_client() -> None:
    client = WebSocketChannelConnection.client(host="h", target=TARGET, protocols=[V5])
    server = WebSocketChannelConnection.server()
    transfer(client, server)
    server.accept(V5)
    # Tamper with the 101 as a misbehaving proxy would.
    data = server.data_to_send().replace(b"v5.channel", b"v4.channel")
    (event,) = client.receive_data(data)
    assert isinstance(event, UpgradeRejected)
    assert "did not offer" in event.error.detail


# --------------------------------------------------------------------------------------
# Golden bytes: protocol-notes §1.3-§1.5 and the §7 trace


def test_section_7_trace_server_bytes() -> None:
    status = Status(status=STATUS_FAILURE,
                    message="command terminated with non-zero exit code: command terminated "
                            "with exit code 3",
                    reason=REASON_NON_ZERO_EXIT_CODE,
                    causes=(StatusCause(reason=CAUSE_EXIT_CODE, message="3"),))
    assert encode_status(status) == SECTION_7_STATUS

    client, server = connect(V5)
    assert server.protocol is not None
    server.send_data(hello_channel(stdout=True, stderr=True), b"")
    server.send_data(1, b"hi\n")
    server.send_data(3, SECTION_7_STATUS)
    server.close()
    wire = server.data_to_send()
    assert wire == (bytes.fromhex("8201 01")                 # initial empty stdout message
                    + bytes.fromhex("8204 0168690a")         # "hi\n" on stdout
                    + bytes([0x82, 126]) + len(SECTION_7_STATUS + b"x").to_bytes(2, "big")
                    + b"\x03" + SECTION_7_STATUS             # the status on channel 3
                    + bytes.fromhex("8802 03e8"))            # close 1000
    events = client.receive_data(wire)
    assert events[-1] == ConnectionClosed(code=1000, reason="", clean=True)
    status_bytes = b"".join(e.data for e in events if isinstance(e, ChannelData)
                            and e.channel == 3)
    assert parse_exit_status(status_bytes, 5) == Exited(3, "command terminated with exit code 3")
    # The client's echo is masked; unmasked it is 03 e8.
    echo = client.data_to_send()
    assert echo[:2] == b"\x88\x82"
    assert bytes(b ^ echo[2 + i % 4] for i, b in enumerate(echo[6:])) == b"\x03\xe8"


def test_base64_golden_server_bytes() -> None:
    client, server = connect("v4.base64.channel.k8s.io")
    server.send_data(1, b"")
    server.send_data(1, b"hi\n")
    wire = server.data_to_send()
    assert wire == b"\x81\x011" + b"\x81\x05" + b"1aGkK"  # text "1", text "1aGkK"
    assert client.receive_data(wire) == [ChannelData(channel=1, data=b""),
                                         ChannelData(channel=1, data=b"hi\n")]


def test_v5_close_signal_golden_client_bytes() -> None:
    client, server = connect(V5)
    client.close_channel(0)
    wire = client.data_to_send()
    assert wire[:2] == b"\x82\x82"  # binary, FIN, masked, 2 bytes
    assert bytes(b ^ wire[2 + i % 4] for i, b in enumerate(wire[6:])) == b"\xff\x00"
    assert server.receive_data(wire) == [ChannelEnded(channel=0)]


# --------------------------------------------------------------------------------------
# Round trips: every subprotocol, channel and payload, any split of the byte stream


def _expected_events(protocol: str, messages: Sequence[tuple[int, bytes]], *,
                     to_client: bool) -> list[Event]:
    base64_text = WEBSOCKET_PROTOCOLS[protocol].base64
    expected: list[Event] = []
    for channel, payload in messages:
        if not payload and not to_client:
            continue  # a client never sends an empty message
        if channel >= 5:
            size = 1 + (len(payload) + 2) // 3 * 4 if base64_text else 1 + len(payload)
            expected.append(DroppedMessage(channel=channel, size=size))
        else:
            expected.append(ChannelData(channel=channel, data=payload))
    return merged(expected)


def _messages(max_channel: st.SearchStrategy[int]) -> st.SearchStrategy[
        list[tuple[int, bytes]]]:
    payload = st.one_of(st.binary(max_size=40), st.binary(min_size=120, max_size=300))
    return st.lists(st.tuples(max_channel, payload), max_size=6)


@st.composite
def _round_trip_case(draw: st.DrawFn) -> tuple[str, list[tuple[int, bytes]], list[int]]:
    protocol = draw(st.sampled_from(FIVE_PROTOCOLS))
    highest = 79 if WEBSOCKET_PROTOCOLS[protocol].base64 else 254
    channels = st.one_of(st.integers(0, 4), st.integers(0, highest))
    messages = draw(_messages(channels))
    cuts = draw(st.lists(st.integers(0, 2000), max_size=10))
    return protocol, messages, cuts


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=_round_trip_case())
def test_round_trip_client_to_server(case: tuple[str, list[tuple[int, bytes]], list[int]],
                                     ) -> None:
    protocol, messages, cuts = case
    client, server = connect(protocol)
    for channel, payload in messages:
        client.send_data(channel, payload)
    events = transfer(client, server, cuts)
    assert merged(events) == _expected_events(protocol, messages, to_client=False)
    assert server.dropped_messages == sum(1 for ch, data in messages if ch >= 5 and data)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=_round_trip_case())
def test_round_trip_server_to_client(case: tuple[str, list[tuple[int, bytes]], list[int]],
                                     ) -> None:
    protocol, messages, cuts = case
    client, server = connect(protocol)
    for channel, payload in messages:
        server.send_data(channel, payload)
    server.close()
    events = transfer(server, client, cuts)
    expected = _expected_events(protocol, messages, to_client=True)
    # Ending before any status is an error unless the close is 1000, which it is here.
    assert merged(events) == [*expected, ConnectionClosed(code=1000, reason="", clean=True)]
    assert client.dropped_messages == sum(1 for ch, _ in messages if ch >= 5)


@pytest.mark.parametrize("protocol", FIVE_PROTOCOLS)
def test_large_messages_both_ways(protocol: str) -> None:
    client, server = connect(protocol)
    big = bytes(range(256)) * 300  # 76800 bytes: the 8-byte length form
    client.send_data(0, big)
    assert merged(transfer(client, server, range(0, 200000, 9999))) == [
        ChannelData(channel=0, data=big)]
    server.send_data(1, big)
    assert merged(transfer(server, client, range(0, 200000, 7777))) == [
        ChannelData(channel=1, data=big)]
