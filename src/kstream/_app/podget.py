"""Reading one pod before a session, as kubectl does.

``kubectl port-forward`` GETs the pod first (:func:`read_pod`): a pod that does not
exist gives the server's ``NotFound`` Status, named ports are looked up in the document
(:mod:`.namedports`), and a pod whose phase is not ``Running`` is refused before any
upgrade (:func:`pod_phase`).

``kubectl attach -t`` reads the pod too and, when the container's main process was
started without a terminal (``tty: false`` in its spec), prints ``Unable to use a TTY -
container NAME did not allocate one`` and attaches without one: raw mode on the local
terminal would otherwise swallow Ctrl-C with nothing at the other end to act on it
(:func:`container_tty`).

Both use one GET, which goes where the session goes: through the same proxy
(:mod:`kstream._asyncio_dial`), with the same credentials, TLS and deadline.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

import h11

from .._asyncio_dial import connect
from .._errors import KstreamError
from .._gojson import quote_for_error
from .._http import upgrade_rejection
from .._runtime.options import client_ssl_context
from .._status_types import STATUS_FAILURE, Status

if TYPE_CHECKING:
    from .._runtime.client import ExecRequest
    from .._runtime.portforward import PortForwardRequest

__all__ = ["container_tty", "generic_status", "pod_phase", "read_pod"]

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


#: client-go's words for an error answer that is not a Status (apimachinery
#: ``NewGenericServerResponse``): ``code: (reason, message)``.
_GENERIC: Final = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested "
                              "resource"),
    406: ("NotAcceptable", "the server was unable to respond with a content type that the "
                           "client supports"),
    415: ("UnsupportedMediaType", "the server was unable to handle the media type "
                                  "requested"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us "
                             "to try again later"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, but "
                     "may still be processing the request"),
}


def generic_status(code: int, body: bytes, pod: str) -> Status:
    """The Status client-go makes of an error answer whose body is not one.

    kubectl then prints ``Error from server (NotFound): the server could not find the
    requested resource (get pods NAME)``, whatever page a proxy sent.

    Args:
        code: the HTTP status code.
        body: the answer's body (a 403's or 5xx's text is kept, quoted, as client-go).
        pod: the pod's name (percent-encoded as in the path).
    """
    text = body.decode("utf-8", "replace").strip()
    reason, message = _GENERIC.get(code, ("", ""))
    if code == 403:
        reason, message = "Forbidden", text
    elif not reason and code >= 500:
        reason = "InternalError"
        message = (f"an error on the server ({quote_for_error(text)}) has prevented the "
                   f"request from succeeding")
    elif not reason:
        reason = "Unknown"
        message = (f"the server responded with the status code {code} but did not return "
                   f"more information")
    return Status(status=STATUS_FAILURE, message=f"{message} (get pods {unquote(pod)})",
                  reason=reason, code=code)


def _pod_path(target: str) -> str:
    # A session's target is .../pods/{name}/{subresource}[?query]: the pod is its parent.
    return target.split("?", 1)[0].rsplit("/", 1)[0]


async def _get_pod(request: ExecRequest | PortForwardRequest,
                   path: str) -> tuple[h11.Response, bytes]:
    """GET ``path`` on the server of ``request``: the answer's head and body.

    ``request.options.connect_timeout`` bounds the whole GET.
    """
    loop = asyncio.get_running_loop()
    address = request.address
    context = client_ssl_context(address, request.ssl)
    hostname = (request.server_hostname or address.host) if context is not None else None
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
    if get.response is None:
        raise ConnectionError("the server closed the connection before answering")
    return get.response, bytes(get.body)


async def read_pod(request: PortForwardRequest) -> dict[str, Any]:
    """GET the pod of ``request``: its ``v1.Pod`` document.

    Args:
        request: the validated port-forward request (server, pod, proxy, credentials,
            TLS, ``connect_timeout`` bounding the whole GET).

    Returns:
        The pod document (read its phase with :func:`pod_phase`).

    Raises:
        UpgradeRejectedError: the server answered with an error (the Status decoded,
            so the caller prints kubectl's ``Error from server (NotFound): ...``).
        OSError, TimeoutError: the server could not be reached.
    """
    path = _pod_path(request.target)
    response, body = await _get_pod(request, path)
    if response.status_code != 200:
        error = upgrade_rejection(response.status_code, response.reason.decode("latin-1"),
                                  [(k.decode("latin-1"), v.decode("latin-1"))
                                   for k, v in response.headers], body)
        if error.status is None or not error.status.message:
            error.status = generic_status(response.status_code, body,
                                          path.rsplit("/", 1)[1])
        raise error
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ConnectionError("the server's pod document is not JSON")
    return document


def pod_phase(pod: dict[str, Any]) -> str:
    """The pod's ``status.phase`` (``Running``, ``Pending``...; ``""`` if absent)."""
    status = pod.get("status")
    phase = status.get("phase", "") if isinstance(status, dict) else ""
    return str(phase)


async def container_tty(request: ExecRequest,
                        container: str | None) -> tuple[str, bool] | None:
    """Read the pod of an attach and say whether its container was started with a terminal.

    Args:
        request: the validated attach request (server, pod, proxy, credentials, TLS,
            ``connect_timeout`` bounding the whole GET).
        container: the container, or ``None`` for the first one (as kubectl).

    Returns:
        ``(container name, has a tty)``; ``None`` when the pod cannot be read (the
        attach itself then reports what is wrong).
    """
    try:
        response, body = await _get_pod(request, _pod_path(request.target))
        if response.status_code != 200:
            return None
        document = json.loads(body)
        containers = document["spec"]["containers"] if isinstance(document, dict) else []
    except (OSError, ValueError, KeyError, TypeError, KstreamError):
        return None
    for spec in containers if isinstance(containers, list) else []:
        if isinstance(spec, dict) and (container is None or spec.get("name") == container):
            return str(spec.get("name", "")), bool(spec.get("tty", False))
    return None
