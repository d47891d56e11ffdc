"""kstream.testing.pairs: sans-IO pairs on every transport and protocol, runtime pairs.

Every pair carries stdin, stdout and the exit status whatever the reads look like, and
the runtime pairs run kstream's client against a handler on both runtimes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kstream import ChannelData, ConnectionClosed, Event, Exited, Failed, Status
from kstream._exec.session import ExitStatusReceived
from kstream.asyncio import ServerRequest
from kstream.testing import strategies
from kstream.testing.pairs import (
    EXEC_PROTOCOLS,
    SPDY_PROTOCOLS,
    WEBSOCKET_PROTOCOLS,
    Pair,
    asyncio_exec_pair,
    exec_pair,
    spdy_pair,
    transfer,
    trio_exec_pair,
    websocket_pair,
)

SOME = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def data_on(events: Sequence[Event], channel: int) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, ChannelData) and e.channel == channel)


def outcome(events: Sequence[Event]) -> Exited | Failed:
    (result,) = [e.result for e in events if isinstance(e, ExitStatusReceived)]
    return result


def expected_outcome(protocol: str, code: int) -> Exited | Failed:
    if code == 0:
        return Exited(0)
    if protocol.startswith(("v4", "v5")):
        return Exited(code, f"command terminated with exit code {code}")
    # v1-v3 carry the message as plain text: no exit code.
    return Failed("command terminated with non-zero exit code: error executing command "
                  f"[cat], exit code {code}")


def exit_status(code: int) -> Status:
    return Status.success() if code == 0 else Status.exit_code(code, ["cat"])


@pytest.mark.parametrize(("transport", "protocol"), EXEC_PROTOCOLS)
def test_exec_pair_carries_an_exec(transport: str, protocol: str) -> None:
    pair = exec_pair(transport, protocol)
    assert pair.client.transport == transport and pair.client.protocol == protocol
    pair.client.write_stdin(b"hello")
    _, server_events = pair.pump()
    assert data_on(server_events, 0) == b"hello"
    pair.server.send_stdout(b"out" * 10_000)
    pair.server.send_stderr(b"err")
    pair.server.exit(exit_status(3))
    client_events, _ = pair.pump()
    assert data_on(client_events, 1) == b"out" * 10_000
    assert data_on(client_events, 2) == b"err"
    assert outcome(client_events) == expected_outcome(protocol, 3)


@pytest.mark.parametrize(("transport", "protocol"), EXEC_PROTOCOLS)
@SOME
@given(data=st.data(), payload=st.binary(max_size=3000), code=strategies.exit_codes())
def test_exec_pair_at_any_split(transport: str, protocol: str, data: st.DataObject,
                                payload: bytes, code: int) -> None:
    split = data.draw(strategies.chunkers())
    pair = exec_pair(transport, protocol, split=split)
    pair.client.write_stdin(payload)
    pair.server.send_stdout(payload)
    _, server_events = pair.pump()
    assert data_on(server_events, 0) == payload
    pair.server.exit(exit_status(code))
    client_events, _ = pair.pump()
    assert data_on(pair.client_events, 1) == payload
    assert outcome(client_events) == expected_outcome(protocol, code)


def test_exec_pair_refuses_an_unknown_protocol() -> None:
    with pytest.raises(ValueError, match="no exec protocol"):
        exec_pair("spdy", "v5.channel.k8s.io")


def test_exec_pair_with_a_terminal_has_no_stderr() -> None:
    pair = exec_pair("websocket", "v5.channel.k8s.io", tty=True)
    pair.client.resize(100, 30)
    _, server_events = pair.pump()
    assert any(type(e).__name__ == "TerminalResized" for e in server_events)


@pytest.mark.parametrize("protocol", WEBSOCKET_PROTOCOLS)
def test_websocket_pair(protocol: str) -> None:
    pair = websocket_pair(protocol, hello=1)
    assert pair.client_events[1:] == [ChannelData(channel=1, data=b"")]
    pair.server.send_data(1, b"x")
    pair.server.close()
    assert pair.to_client() == [ChannelData(channel=1, data=b"x"),
                                ConnectionClosed(code=1000, reason="", clean=True)]


@pytest.mark.parametrize("protocol", SPDY_PROTOCOLS)
def test_spdy_pair(protocol: str) -> None:
    pair = spdy_pair(protocol)
    assert pair.client.protocol == protocol and pair.server.protocol == protocol
    pair.client.send_data(0, b"in")
    assert data_on(pair.to_server(one_byte_reads), 0) == b"in"


def one_byte_reads(data: bytes) -> list[bytes]:
    """One byte per read."""
    return [data[i:i + 1] for i in range(len(data))]


def test_transfer_cuts_reads() -> None:
    pair = websocket_pair()
    pair.server.send_data(1, b"abc")
    events = transfer(pair.server, pair.client, one_byte_reads)
    assert data_on(events, 1) == b"abc"
    assert isinstance(pair, Pair)


# --------------------------------------------------------------------------- runtimes


async def shout(request: ServerRequest) -> None:
    """Upper-case stdin to stdout, exit 3."""
    session = await request.accept()
    received = b""
    while chunk := await session.read_stdin():
        received += chunk
    session.write_stdout(received.upper())
    await session.exit(Status.exit_code(3, ["shout"]))




@pytest.mark.parametrize("transport", ["websocket", "spdy"])
def test_asyncio_exec_pair(transport: str) -> None:
    async def main() -> tuple[bytes, int]:
        async with asyncio_exec_pair(shout, ["shout"], transport=transport,
                                     stdin=True) as process:
            stdout, _ = await process.communicate(b"hello " * 10_000)
            return stdout, await process.wait()

    stdout, code = asyncio.run(asyncio.wait_for(main(), 30))
    assert stdout == b"HELLO " * 10_000 and code == 3


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunker=strategies.chunkers())
def test_trio_exec_pair_at_any_split(transport: str, chunker: strategies.Chunker) -> None:
    async def main() -> tuple[bytes, int]:
        with trio.fail_after(30):
            async with trio_exec_pair(shout, ["shout"], transport=transport, stdin=True,
                                      split=chunker) as process:
                stdout, _ = await process.communicate(b"hello " * 1000)
                return stdout, await process.wait()

    stdout, code = trio.run(main)
    assert stdout == b"HELLO " * 1000 and code == 3
