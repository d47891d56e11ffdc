"""Reading one pod, as kubectl attach does before it attaches.

``kubectl attach -t`` first reads the pod and, when the container's main process was
started without a terminal (``tty: false`` in its spec), prints ``Unable to use a TTY -
container NAME did not allocate one`` and attaches without one: raw mode on the local
terminal would otherwise swallow Ctrl-C with nothing at the other end to act on it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Final
from urllib.parse import quote

import h11

from .._runtime.options import ServerAddress

__all__ = ["container_tty"]

#: The most bytes of a pod document read (real ones are a few KiB).
_MAX_BODY: Final = 4 << 20


async def _get(address: ServerAddress, path: str, headers: tuple[tuple[str, str], ...],
               context: ssl.SSLContext | None, server_hostname: str | None) -> bytes | None:
    if address.tls and context is None:
        context = ssl.create_default_context()
    reader, writer = await asyncio.open_connection(
        address.host, address.port, ssl=context if address.tls else None,
        server_hostname=(server_hostname or address.host) if address.tls else None)
    try:
        connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        writer.write(connection.send(h11.Request(
            method="GET", target=path,
            headers=[("Host", address.authority), ("Accept", "application/json"),
                     ("Connection", "close"), *headers])) or b"")
        writer.write(connection.send(h11.EndOfMessage()) or b"")
        body = bytearray()
        status = 0
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(await reader.read(64 * 1024))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > _MAX_BODY:
                    return None
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return bytes(body) if status == 200 else None
    finally:
        writer.close()


async def container_tty(address: ServerAddress, namespace: str, pod: str,
                        container: str | None, *, headers: tuple[tuple[str, str], ...],
                        context: ssl.SSLContext | None, server_hostname: str | None,
                        timeout: float | None) -> tuple[str, bool] | None:
    """Read the pod and say whether its container was started with a terminal.

    Args:
        address: the API server.
        namespace: the pod's namespace.
        pod: its name.
        container: the container, or ``None`` for the first one (as kubectl).
        headers: the credentials.
        context: the TLS context.
        server_hostname: the TLS server name, if not the URL's host.
        timeout: bound on the whole request.

    Returns:
        ``(container name, has a tty)``; ``None`` when the pod cannot be read (the
        attach itself then reports what is wrong).
    """
    path = (f"{address.prefix}/api/v1/namespaces/{quote(namespace, safe='')}"
            f"/pods/{quote(pod, safe='')}")
    try:
        async with asyncio.timeout(timeout):
            body = await _get(address, path, headers, context, server_hostname)
        document = json.loads(body) if body else None
        containers = document["spec"]["containers"] if isinstance(document, dict) else []
    except (OSError, ValueError, KeyError, TypeError, h11.ProtocolError):
        return None
    for spec in containers if isinstance(containers, list) else []:
        if isinstance(spec, dict) and (container is None or spec.get("name") == container):
            return str(spec.get("name", "")), bool(spec.get("tty", False))
    return None
