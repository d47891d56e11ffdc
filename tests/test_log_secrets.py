"""No log line carries a token, an Authorization value or an argv.

Before, a failing exec handler was logged with the whole request target, which over
plain HTTP starts with ``/kstream/<token>`` (kstream serve's scheme) and whose query
holds the argv.
"""

from __future__ import annotations

import asyncio
import logging

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
