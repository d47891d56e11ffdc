"""Shared pytest fixtures.

Keep this file small: only fixtures several test modules need live here, each group
under a heading naming its owner module. Others may add their own groups below.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from peers.gopeer import GoPeerServer, build_kpeer

# --- Go interop peer (tests/peers/gopeer.py) -------------------------------------------


@pytest.fixture(scope="session")
def kpeer() -> Path:
    """The ``kpeer`` binary, built once per session if stale (fails without ``go``)."""
    return build_kpeer()


@pytest.fixture
def go_server(kpeer: Path) -> Iterator[GoPeerServer]:
    """A running ``kpeer serve`` with default options."""
    with GoPeerServer(kpeer) as server:
        yield server


# --- TLS files for tests' own servers (kstream._app.certs, as kstream serve makes them) --


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """``(chain, key)`` for 127.0.0.1: a serving certificate and its CA, and its key.

    Clients trust the chain file (``cafile=``): it holds the CA that signed the server.
    """
    from kstream._app import certs

    generated = certs.generate("127.0.0.1")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(generated.cert_pem)
    key.write_bytes(generated.key_pem)
    return chain, key


@pytest.fixture
def no_loop_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if an event loop logged an error while it ran (any thread's loop).

    asyncio logs what goes wrong inside its callbacks instead of raising it; a user sees
    those lines on stderr, so a test that uses this one says none was printed.
    """
    yield
    errors = [f"{record.name}: {record.getMessage()}" for record in caplog.get_records("call")
              if record.name in ("asyncio", "trio") and record.levelno >= logging.ERROR]
    assert errors == []
