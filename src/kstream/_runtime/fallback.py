"""The fallback run: one fresh client session per attempt, until an upgrade is accepted.

Runtime-neutral: :func:`open_first_accepted` awaits only the ``connect`` coroutine
function the adapter hands it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .._exec.fallback import Attempt, plan, should_fall_back
from .._exec.session import ClientExecSession
from .._exec.spdy_client import SpdyExecClient
from .._ws.connection import WebSocketChannelConnection
from .errors import record_earlier_attempts
from .options import ExecOptions, ServerAddress

__all__ = ["new_client_session", "open_first_accepted"]

_log = logging.getLogger("kstream")
_T = TypeVar("_T")


def new_client_session(address: ServerAddress, target: str, attempt: Attempt,
                       options: ExecOptions) -> ClientExecSession:
    """Return a fresh client session for one attempt of the fallback ladder.

    Args:
        address: the server (its ``authority`` is the ``Host`` header).
        target: the request target (see :func:`exec_target`).
        attempt: the transport and protocols to offer.
        options: the session's options (stdio switches, headers).

    Returns:
        The :class:`~kstream._exec.session.ClientExecSession`, its upgrade request queued.
    """
    if attempt.transport == "websocket":
        connection: WebSocketChannelConnection | SpdyExecClient = \
            WebSocketChannelConnection.client(host=address.authority, target=target,
                                              protocols=attempt.protocols,
                                              headers=options.headers)
    else:
        connection = SpdyExecClient(host=address.authority, target=target,
                                    stdin=options.stdin, stdout=options.stdout,
                                    stderr=options.stderr, tty=options.tty,
                                    protocols=attempt.protocols, headers=options.headers)
    return ClientExecSession(connection, tty=options.tty)


async def open_first_accepted(options: ExecOptions,
                              connect: Callable[[Attempt], Awaitable[_T]], *,
                              fallback: bool = True) -> _T:
    """Run the fallback ladder: ``connect`` each planned attempt until one is accepted.

    Args:
        options: the session's options (transport, protocols, fallback).
        connect: the adapter's coroutine function that connects and upgrades for one
            attempt.
        fallback: ``False`` allows one attempt only (a caller's socket or stream is
            spent after a rejection).

    Returns:
        What ``connect`` returned for the first accepted attempt.

    Raises:
        Exception: what the last attempt raised, or the first error that is not a
            reason to fall back (see :func:`kstream._exec.fallback.should_fall_back`).
    """
    attempts = plan(stdin=options.stdin, transport=options.transport,
                    protocols=options.protocols, fallback=options.fallback and fallback)
    earlier: list[tuple[str, BaseException]] = []
    for index, attempt in enumerate(attempts):
        try:
            return await connect(attempt)
        except TimeoutError as exc:
            # The runtimes' deadlines (asyncio.timeout) raise a TimeoutError without a
            # message: say which deadline passed.
            if str(exc):
                record_earlier_attempts(exc, earlier)
                raise
            timed_out = TimeoutError(f"connecting and upgrading over {attempt.transport} "
                                     f"took longer than {options.connect_timeout:g} s"
                                     if options.connect_timeout else
                                     f"connecting over {attempt.transport} timed out")
            record_earlier_attempts(timed_out, earlier)
            raise timed_out from exc
        except Exception as exc:
            if index + 1 < len(attempts) and should_fall_back(exc):
                _log.debug("upgrade over %s rejected (%s); trying %s", attempt.transport,
                           exc, attempts[index + 1].transport)
                earlier.append((attempt.transport, exc))
                continue
            record_earlier_attempts(exc, earlier)
            raise
    raise AssertionError("plan() returns at least one attempt")
