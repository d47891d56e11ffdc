"""Reading one pod before forwarding to it, as ``kubectl port-forward`` does.

kubectl GETs the pod first: a pod that does not exist gives the server's ``NotFound``
Status, and a pod whose phase is not ``Running`` is refused before any upgrade
(:func:`pod_phase`). The GET goes where the port-forward goes: through the same proxy
(:mod:`kstream._dial`), with the same credentials, TLS and deadline.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Final

import h11

from .._dial.on_asyncio import connect
from .._http import upgrade_rejection
from .._runtime.options import client_ssl_context

if TYPE_CHECKING:
    from .._runtime.portforward import PortForwardRequest

__all__ = ["pod_phase"]

#: The most bytes of a pod document read (real ones are a few KiB).
_MAX_BODY: Final = 4 << 20


class _Get(asyncio.Protocol):
    """One HTTP/1.1 GET: the answer's status, reason, headers and (bounded) body."""

    def __init__(self, request: bytes, done: asyncio.Future[None]) -> None:
        self._request = request
        self._done = done
        self._http = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.transport: asyncio.Transport | None = None
        self.response: h11.Response | None = None
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._feed(data)

    def eof_received(self) -> bool | None:
        self._feed(b"")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._done.set_exception(exc or ConnectionResetError(
                "the server closed the connection before answering"))

    def _feed(self, data: bytes) -> None:
        if self._done.done():
            return
        try:
            self._http.receive_data(data)
            while True:
                event = self._http.next_event()
                if event is h11.NEED_DATA:
                    return
                if isinstance(event, h11.Response):
                    self.response = event
                elif isinstance(event, h11.Data):
                    self.body += event.data
                    if len(self.body) > _MAX_BODY:
                        raise ValueError("the pod document is too large")
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    self._done.set_result(None)
                    return
        except (h11.ProtocolError, ValueError) as exc:
            self._done.set_exception(ConnectionError(f"the server's answer to GET the pod "
                                                     f"is not HTTP/1.1: {exc}"))


async def pod_phase(request: PortForwardRequest) -> str:
    """GET the pod of ``request`` and return its ``status.phase`` (``""`` if absent).

    Args:
        request: the validated port-forward request (server, pod, proxy, credentials,
            TLS, ``connect_timeout`` bounding the whole GET).

    Returns:
        The phase: ``Running``, ``Pending``...

    Raises:
        UpgradeRejectedError: the server answered with an error (the Status decoded,
            so the caller prints kubectl's ``Error from server (NotFound): ...``).
        OSError, TimeoutError: the server could not be reached.
    """
    loop = asyncio.get_running_loop()
    address = request.address
    context = client_ssl_context(address, request.ssl)
    hostname = (request.server_hostname or address.host) if context is not None else None
    # The port-forward target is .../pods/{name}/portforward: the pod is its parent.
    path = request.target.rsplit("/", 1)[0]
    head = h11.Connection(h11.CLIENT)
    message = head.send(h11.Request(
        method="GET", target=path,
        headers=[("Host", address.authority), ("Accept", "application/json"),
                 ("User-Agent", "kstream"), ("Connection", "close"),
                 *request.options.headers])) or b""
    done: asyncio.Future[None] = loop.create_future()
    get = _Get(message, done)
    try:
        async with asyncio.timeout(request.options.connect_timeout):
            await connect(loop, get, request, context, hostname, None)
            await done
    finally:
        if get.transport is not None:
            get.transport.abort()
    response = get.response
    assert response is not None
    if response.status_code != 200:
        raise upgrade_rejection(response.status_code, response.reason.decode("latin-1"),
                                [(k.decode("latin-1"), v.decode("latin-1"))
                                 for k, v in response.headers], bytes(get.body))
    try:
        document = json.loads(get.body)
        phase = document.get("status", {}).get("phase", "")
    except (ValueError, AttributeError):
        raise ConnectionError("the server's pod document is not JSON") from None
    return str(phase)
