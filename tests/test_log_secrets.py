"""No log line carries a token, an Authorization value or an argv.

Before, a failing exec handler was logged with the whole request target, which over
plain HTTP starts with ``/kstream/<token>`` (kstream serve's scheme) and whose query
holds the argv.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from pathlib import Path

import pytest

import kstream.asyncio
from kstream._app.serve import _RedactSecret
from kstream.asyncio import ServerRequest

TOKEN = "s3cret-token-value"
ARGV_SECRET = "password=hunter2"


def test_a_failing_handler_is_logged_without_target_prefix_or_query(
        caplog: pytest.LogCaptureFixture) -> None:
    async def handler(request: ServerRequest) -> None:
        raise RuntimeError("the handler broke")

    async def scenario() -> None:
        async with await kstream.asyncio.start_server(handler) as server:
            with pytest.raises(kstream.UpgradeRejectedError):
                await kstream.asyncio.run(
                    f"{server.url}/kstream/{TOKEN}", "apps", "web", ["sh", ARGV_SECRET],
                    headers=[("Authorization", f"Bearer {TOKEN}")], transport="websocket")

    with caplog.at_level(logging.DEBUG, logger="kstream"):
        asyncio.run(scenario())
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "exec handler failed for exec of apps/web" in text
    assert TOKEN not in text
    assert ARGV_SECRET not in text


def test_serve_redacts_its_token_from_every_kstream_record() -> None:
    redact = _RedactSecret(TOKEN)
    record = logging.LogRecord("kstream", logging.ERROR, __file__, 1,
                               "failed for %s", (f"/kstream/{TOKEN}/api",), None)
    assert redact.filter(record)
    assert record.getMessage() == "failed for /kstream/<token>/api"
    try:
        raise ValueError(f"bad target /kstream/{TOKEN}/x")
    except ValueError as exc:
        failed = logging.LogRecord("kstream", logging.ERROR, __file__, 1, "oops", None,
                                   (type(exc), exc, exc.__traceback__))
    redact.filter(failed)
    assert failed.exc_text is not None
    assert TOKEN not in failed.exc_text and "<token>" in failed.exc_text


def test_a_tls_client_that_resets_leaves_no_task_exception(
        tls_files: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    # Closing an SSL transport after the peer's reset raised AttributeError inside
    # asyncio's sslproto ("Task exception was never retrieved"); found by make soak.
    cert, key = tls_files
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    problems: list[dict[str, object]] = []
    reset = asyncio.Event()

    async def handler(request: ServerRequest) -> None:
        session = await request.accept(stdout=True, stdin=False, stderr=False)
        transport = session._conn._transport  # type: ignore[attr-defined]
        await reset.wait()
        await asyncio.sleep(0.2)  # the reset has reached the server
        # What asyncio's sslproto does when a reset races a close: a transport closed
        # twice drops its protocol, and then cannot say how much it buffers.
        transport.close()
        transport.close()
        session.write_stdout(b"late")
        await session.exit(kstream.Status.success())

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: problems.append(ctx))
        async with await kstream.asyncio.start_server(handler, ssl=server_context) as server:
            client = kstream.WebSocketChannelConnection.client(
                host="127.0.0.1", target=kstream.exec_target("d", "p", ["x"]))
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, ssl=client_context, server_hostname="127.0.0.1")
            writer.write(client.data_to_send())
            while not any(isinstance(e, kstream.UpgradeAccepted)
                          for e in client.receive_data(await reader.read(65536))):
                pass
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            reset.set()
            await asyncio.sleep(0.5)

    with caplog.at_level(logging.DEBUG, logger="kstream"):
        asyncio.run(scenario())
    assert problems == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
