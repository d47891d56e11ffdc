"""Shared pytest fixtures.

Keep this file small: only fixtures several test modules need live here, each group
under a heading naming its owner module. Others may add their own groups below.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
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


class _LoopErrors(logging.Handler):
    """Collects what the event loops log at error level, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


def _loop_error_guard() -> Callable[[pytest.Item], Iterator[None]]:
    """A runtest hook wrapper that fails its phase when an event loop logged an error."""
    @pytest.hookimpl(wrapper=True)
    def guard(item: pytest.Item) -> Iterator[None]:
        handler = _LoopErrors()
        loggers = [logging.getLogger(name) for name in ("asyncio", "trio")]
        for logger in loggers:
            logger.addHandler(handler)
        try:
            result = yield
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
        if handler.lines:
            pytest.fail("an event loop logged errors:\n" + "\n".join(handler.lines))
        return result
    return guard


# asyncio logs what goes wrong inside its callbacks instead of raising it, and a user sees
# those lines on stderr; so no test may leave one, whatever it asserts itself. Set-up and
# tear-down too: a fixture's garbage collection is where a leaked future speaks.
pytest_runtest_setup = _loop_error_guard()
pytest_runtest_call = _loop_error_guard()
pytest_runtest_teardown = _loop_error_guard()
