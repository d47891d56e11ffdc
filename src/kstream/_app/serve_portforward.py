"""``kstream serve``: the ``portforward`` subresource, with the kubelet's semantics.

Every transport kubectl and the official clients speak: SPDY ``portforward.k8s.io``
(kubectl <= 1.30), the tunnel ``SPDY/3.1+portforward.k8s.io`` (kubectl 1.31+) and
WebSocket ``v4.channel.k8s.io`` (the official Python client). The pods share this
machine's network, so a pod port is ``127.0.0.1:PORT``; nothing else is ever dialled.

A pod port that cannot be reached gets the kubelet's text on that connection's error
stream (``error forwarding port P to pod NAME, uid UID: dial tcp4 ...``) and ends only
that connection. When the pod's side ends, both streams are closed (FIN), as the kubelet
does.

``KSTREAM_SERVE_REFUSE_TRANSPORTS`` (a comma-separated list of ``tunnel``, ``spdy``,
``websocket``) makes the server refuse those transports with a 403, as an apiserver
without the tunnel does: kubectl 1.31+ then falls back to SPDY.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .._errors import KstreamError
from .._portforward.handshake import forward_error_text, request_transport
from .._runtime.buffers import READ_SIZE

if TYPE_CHECKING:
    from .._runtime.portforward_server import ServerForwardedConnection, ServerPortForward
    from ..asyncio import ServerRequest

__all__ = ["REFUSE_ENV", "refused_transports", "serve_port_forward"]

#: The environment variable naming transports to refuse (see the module docstring).
REFUSE_ENV: Final = "KSTREAM_SERVE_REFUSE_TRANSPORTS"
#: Where every pod port is.
POD_HOST: Final = "127.0.0.1"


def refused_transports() -> frozenset[str]:
    """The transports :data:`REFUSE_ENV` names."""
    value = os.environ.get(REFUSE_ENV, "")
    return frozenset(item.strip().lower() for item in value.split(",") if item.strip())


async def serve_port_forward(request: ServerRequest, namespace: str, name: str, uid: str,
                             log: Callable[[str], None] | None,
                             accepted: Callable[[ServerPortForward], None] | None = None
                             ) -> None:
    """Answer one ``portforward`` request of a pod that exists, until the client leaves.

    Args:
        request: the request (``GET`` or ``POST``).
        namespace: the pod's namespace.
        name: the pod's name.
        uid: the pod's uid (in the error texts, as the kubelet writes them).
        log: where the session line goes (its transport and protocol), if anywhere.
        accepted: called with the session once the upgrade is accepted.
    """
    transport = request_transport(request.headers)
    if request.method not in ("GET", "POST"):
        await request.reject(405, "the server does not allow this method on the "
                                  "requested resource")
        return
    if transport is None:
        await request.reject(400, "Upgrade request required")
        return
    if transport in refused_transports():
        if log is not None:
            log(f"port-forward to {namespace}/{name}: refused {transport} ({REFUSE_ENV})")
        await request.reject(403, f"port-forward over {transport} is refused by this server")
        return
    try:
        session = await request.accept_port_forward()
    except KstreamError:
        return  # refused (answered) or the client left: closed
    if log is not None:
        log(f"port-forward to {namespace}/{name} over {session.transport}/{session.protocol}")
    if accepted is not None:
        accepted(session)
    await _serve_session(session, name, uid)


async def _serve_session(session: ServerPortForward, name: str, uid: str) -> None:
    try:
        async with asyncio.TaskGroup() as group:
            expiry = group.create_task(_expire_pairs(session))
            while (connection := await session.next_connection()) is not None:
                group.create_task(_forward(connection, name, uid))
            expiry.cancel()
    finally:
        await session.close()


async def _expire_pairs(session: ServerPortForward) -> None:
    # The SPDY pair deadline: a request whose second stream never comes is answered with
    # the kubelet's timeout text after 30 s.
    loop = asyncio.get_running_loop()
    while not session.closed:
        deadline = session.next_deadline()
        await asyncio.sleep(1.0 if deadline is None else max(0.0, deadline - loop.time()))
        session.expire()


def _dial_error(port: int, exc: OSError) -> str:
    # Go's wording for a failed dial, which is what kubectl users know.
    reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    if exc.errno == errno.ECONNREFUSED:
        reason = "connection refused"
    return f"dial tcp4 {POD_HOST}:{port}: connect: {reason}"


async def _forward(connection: ServerForwardedConnection, name: str, uid: str) -> None:
    """Copy one forwarded connection to and from ``127.0.0.1:port``."""
    port = connection.port
    try:
        reader, writer = await asyncio.open_connection(POD_HOST, port, limit=READ_SIZE)
    except OSError as exc:
        connection.fail(forward_error_text(port, name, uid, _dial_error(port, exc)))
        connection.close()
        return
    upload = asyncio.create_task(_to_pod(connection, writer))
    try:
        with contextlib.suppress(OSError):
            while data := await reader.read(READ_SIZE):
                connection.write(data)
                await connection.drain()
        connection.end()  # the pod closed its side: FIN both streams
        with contextlib.suppress(Exception):
            await upload
    except Exception:
        connection.reset()
    finally:
        upload.cancel()
        with contextlib.suppress(BaseException):
            await upload
        connection.close()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _to_pod(connection: ServerForwardedConnection, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await connection.read(READ_SIZE):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, KstreamError):
        writer.transport.abort()  # the client reset it: so does the pod side
        return
    if writer.can_write_eof():
        with contextlib.suppress(OSError):
            writer.write_eof()
