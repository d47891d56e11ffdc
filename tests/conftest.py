"""Shared pytest fixtures.

Keep this file small: only fixtures several test modules need live here, each group
under a heading naming its owner module. Others may add their own groups below.
"""

from __future__ import annotations

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
