"""kubernetes_asyncio's ``WsApiClient`` on kstream: the same calls, the same results.

Migration is one import::

    # from kubernetes_asyncio.stream import WsApiClient
    from kstream.compat.kubernetes_asyncio import WsApiClient

    v1_ws = client.CoreV1Api(api_client=WsApiClient())
    out = await v1_ws.connect_get_namespaced_pod_exec(
        "web-0", "default", command=["ls", "/"], stderr=True, stdin=False, stdout=True,
        tty=False)

:class:`WsApiClient` is a subclass of ``kubernetes_asyncio.client.ApiClient`` (built
when first used) whose ``request()`` runs the session on :mod:`kstream.asyncio` in the
running event loop: the generated method builds the request as before (path, query,
credentials, refreshed tokens) and deserializes the preloaded output as before. With
``_preload_content=False`` the result is a :class:`WsConnection`, which behaves like the
aiohttp WebSocket the original returns (``async with``, ``receive()``, ``async for``,
``send_bytes()``, ``close()``), messages carrying the channel byte first.

:func:`stream` is the asyncio twin of :func:`kstream.compat.kubernetes.stream`: it takes
any generated method (its ``ApiClient`` need not be a ``WsApiClient``, and is never
modified), ``_preload_content`` and ``binary``.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Generator
from typing import Any, Final

import kstream
import kstream.asyncio

from ._common import (
    CLOSE_CHANNEL,
    ERROR_CHANNEL,
    RESIZE_CHANNEL,
    STDERR_CHANNEL,
    STDIN_CHANNEL,
    STDOUT_CHANNEL,
    ExecRequest,
    bind_to_clone,
    capture_client,
    drain_both,
    open_process,
    parse_request,
    require,
    split_timeout,
    status_document,
    url_with_query,
)

__all__ = ["WsApiClient", "WsConnection", "stream"]  # noqa: F822 (WsApiClient: __getattr__)

_COMPAT: Final = "kstream.compat.kubernetes_asyncio"
#: Bytes per read from a kstream output channel: the most a kubelet (or kstream serve)
#: sends in one message, so that a read returns one received chunk as it is (a larger
#: read would join several, one more copy of every byte).
_CHUNK: Final = 32 * 1024
_PRELOAD_BUFFER: Final = 4 << 20
#: Messages received and not yet taken by receive() before reading stops.
_QUEUE_MESSAGES: Final = 16


def _api_exception(exc: BaseException) -> BaseException:
    try:
        exceptions = require("kubernetes_asyncio.client.exceptions", _COMPAT)
    except ModuleNotFoundError:
        return exc
    # The body is bytes: the generated code's error path decodes it.
    if isinstance(exc, kstream.UpgradeRejectedError):
        error = exceptions.ApiException(status=exc.status_code, reason=str(exc))
        error.body = exc.body
    else:
        error = exceptions.ApiException(status=0, reason=str(exc))
        error.body = b""
    return error  # type: ignore[no-any-return]


def _decoded_body(exc: BaseException) -> None:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        exc.body = body.decode("utf-8", "replace")  # type: ignore[attr-defined]


async def _collect(request: ExecRequest, configuration: Any, timeout: Any) -> bytes:
    """stdout and stderr as they arrived, raw; what a preloaded call returns."""
    connect_timeout, deadline = split_timeout(timeout)
    try:
        process = await open_process(request, configuration, connect_timeout=connect_timeout,
                                     buffer_limit=_PRELOAD_BUFFER)
        collected = io.BytesIO()  # getvalue() hands the buffer over without a copy

        async def drain(output: kstream.asyncio.RemoteOutput) -> None:
            while chunk := await output.read(_CHUNK):
                collected.write(chunk)

        async with process:
            try:
                async with asyncio.timeout(deadline):
                    await drain_both(process, drain)
                    await process.wait()
            except TimeoutError:
                if deadline is None:
                    raise
    except (kstream.KstreamError, OSError, TimeoutError) as exc:
        raise _api_exception(exc) from exc
    return collected.getvalue()


# --------------------------------------------------------------------------- the WebSocket


class WsConnection:
    """An exec/attach session shaped like the aiohttp WebSocket of the original.

    ``await`` it or use it with ``async with`` (both connect, once); then
    ``receive()`` / ``async for`` give messages whose ``data`` is the channel byte
    followed by the payload (1 stdout, 2 stderr, 3 the exit status document), ending
    with a ``CLOSE`` message; ``send_bytes(b"\\x00" + data)`` writes stdin,
    ``b"\\x04" + json`` resizes, ``b"\\xff\\x00"`` closes stdin. The exit code is also
    available directly as :attr:`returncode` (``kubernetes_asyncio#322``).
    """

    def __init__(self, request: ExecRequest, configuration: Any, timeout: Any) -> None:
        self._request = request
        self._configuration = configuration
        self._timeout = timeout
        self._process: kstream.asyncio.RemoteProcess | None = None
        self._queue: asyncio.Queue[Any] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._closed = False
        self._finished = False
        self._error: BaseException | None = None
        self._aiohttp = require("aiohttp", _COMPAT)

    # -- connecting

    async def _connect(self) -> WsConnection:
        if self._process is None:
            connect_timeout, _ = split_timeout(self._timeout)
            try:
                self._process = await open_process(self._request, self._configuration,
                                                   connect_timeout=connect_timeout)
            except (kstream.KstreamError, OSError, TimeoutError) as exc:
                raise _api_exception(exc) from exc
            self._queue = asyncio.Queue(_QUEUE_MESSAGES)
            self._pump = asyncio.ensure_future(self._run())
        return self

    def __await__(self) -> Generator[Any, None, WsConnection]:
        return self._connect().__await__()

    async def __aenter__(self) -> WsConnection:
        return await self._connect()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the pump

    def _message(self, kind: str, data: Any = None) -> Any:
        return self._aiohttp.WSMessage(getattr(self._aiohttp.WSMsgType, kind), data, None)

    async def _run(self) -> None:
        process = self._process
        queue = self._queue
        assert process is not None and queue is not None

        async def channel(number: int, output: kstream.asyncio.RemoteOutput) -> None:
            prefix = bytes([number])
            try:
                while chunk := await output.read(_CHUNK):
                    await queue.put(self._message("BINARY", prefix + chunk))
            except kstream.KstreamError as exc:
                if self._error is None:
                    self._error = exc

        try:
            await asyncio.gather(channel(STDOUT_CHANNEL, process.stdout),
                                 channel(STDERR_CHANNEL, process.stderr))
            if self._error is None:
                try:
                    await process.wait()
                except kstream.KstreamError as exc:
                    self._error = exc
            if process.result is not None:
                document = status_document(process.result, self._request.command)
                await queue.put(self._message("BINARY", bytes([ERROR_CHANNEL]) + document))
        finally:
            self._finished = True
            await process.aclose()
            await queue.put(self._message("CLOSE", 1000))

    # -- aiohttp's ClientWebSocketResponse API

    @property
    def closed(self) -> bool:
        """Whether the session ended and every message was received, or close() ran."""
        return self._closed

    @property
    def protocol(self) -> str | None:
        """The negotiated subprotocol."""
        return self._process.protocol if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code once the session ended, else ``None``.

        Raises:
            kstream.RemoteCommandError: the command produced no exit code.
            kstream.ConnectionLostError: the session ended without an exit status.
        """
        if self._process is None or not self._finished:
            return None
        result = self._process.result
        if isinstance(result, kstream.Exited):
            return result.code
        if isinstance(result, kstream.Failed):
            raise kstream.RemoteCommandError(result)
        raise self._error or kstream.ConnectionLostError(
            "the session ended without an exit status")

    def exception(self) -> BaseException | None:
        """The error that ended the session early, if any."""
        return self._error

    async def receive(self, timeout: float | None = None) -> Any:
        """The next message (``BINARY``, then ``CLOSE``, then ``CLOSED`` for ever)."""
        if self._queue is None:
            await self._connect()
        assert self._queue is not None
        if self._closed:
            return self._message("CLOSED")
        async with asyncio.timeout(timeout):
            message = await self._queue.get()
        if message.type == self._aiohttp.WSMsgType.CLOSE:
            self._closed = True
        return message

    async def receive_bytes(self, *, timeout: float | None = None) -> bytes:
        """The next message's data; ``TypeError`` if it is not a binary message."""
        message = await self.receive(timeout)
        if message.type != self._aiohttp.WSMsgType.BINARY:
            raise TypeError(f"received message {message.type}:{message.data!r} is not bytes")
        data: bytes = message.data
        return data

    def __aiter__(self) -> WsConnection:
        return self

    async def __anext__(self) -> Any:
        message = await self.receive()
        if message.type in (self._aiohttp.WSMsgType.CLOSE, self._aiohttp.WSMsgType.CLOSING,
                            self._aiohttp.WSMsgType.CLOSED):
            raise StopAsyncIteration
        return message

    async def send_bytes(self, data: bytes | bytearray | memoryview,
                         compress: int | None = None) -> None:
        """Send a channel message: ``0`` stdin, ``4`` resize, ``255`` + ``0`` close stdin.

        Raises:
            kstream.LocalProtocolError: stdin not requested or closed, closing stdin on
                WebSocket v4, or resize without a terminal.
            ValueError: an empty message or another channel.
        """
        await self._connect()
        process = self._process
        assert process is not None
        raw = bytes(data)
        if not raw:
            raise ValueError("a channel message needs at least its channel byte")
        channel, payload = raw[0], raw[1:]
        if channel == STDIN_CHANNEL:
            if payload:
                process.stdin.write(payload)
                await process.stdin.drain()
        elif channel == RESIZE_CHANNEL:
            size = json.loads(payload)
            await process.resize(int(size["Width"]), int(size["Height"]))
        elif channel == CLOSE_CHANNEL and payload == bytes([STDIN_CHANNEL]):
            process.stdin.close()
            await process.stdin.drain()
        else:
            raise ValueError(f"kstream.compat cannot send on channel {channel}")

    async def send_str(self, data: str, compress: int | None = None) -> None:
        """``send_bytes(data.encode())`` (text frames carry the channel as a character)."""
        await self.send_bytes(data.encode("utf-8"))

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        """Close the session (idempotent); ``True`` the first time."""
        first = not self._closed or self._pump is not None
        self._closed = True
        pump, self._pump = self._pump, None
        if pump is not None:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        elif self._process is not None and not self._finished:
            await self._process.aclose()
        return first and pump is not None


# --------------------------------------------------------------------------- entry points


async def _ws_request(self: Any, method: str, url: str, query_params: Any = None,
                      headers: Any = None, post_params: Any = None, body: Any = None,
                      _preload_content: bool = True, _request_timeout: Any = None) -> Any:
    """``WsApiClient.request``: the session instead of aiohttp's ``ws_connect``."""
    request = parse_request(url_with_query(url, query_params), headers)
    if not _preload_content:
        return WsConnection(request, self.configuration, _request_timeout)
    data = await _collect(request, self.configuration, _request_timeout)
    ws_client = require("kubernetes_asyncio.stream.ws_client", _COMPAT)
    return ws_client.WsResponse(200, data)


_classes: dict[str, type] = {}


def _ws_api_client_class() -> type:
    cls = _classes.get("WsApiClient")
    if cls is None:
        client = require("kubernetes_asyncio.client", _COMPAT)

        def __init__(self: Any, configuration: Any = None, header_name: Any = None,
                     header_value: Any = None, cookie: Any = None, pool_threads: int = 1,
                     heartbeat: float | None = None) -> None:
            client.ApiClient.__init__(self, configuration, header_name, header_value, cookie,
                                      pool_threads)
            # kstream pings every 5 s with a pong deadline in any case.
            self.heartbeat = heartbeat

        def parse_error_data(error_data: str | bytes) -> int:
            """The exit code in an error-channel document (as the original's, but a
            failure with no exit code raises :class:`kstream.RemoteCommandError`)."""
            raw = error_data.encode() if isinstance(error_data, str) else error_data
            result = kstream.Status.parse_error_channel(raw, 4)
            if isinstance(result, kstream.Failed):
                raise kstream.RemoteCommandError(result)
            return result.code

        cls = type("WsApiClient", (client.ApiClient,), {
            "__init__": __init__,
            "__module__": __name__,
            "__doc__": "kubernetes_asyncio's WsApiClient, streaming with kstream.",
            "request": _ws_request,
            "parse_error_data": staticmethod(parse_error_data),
        })
        _classes["WsApiClient"] = cls
    return cls


def __getattr__(name: str) -> Any:
    if name == "WsApiClient":
        return _ws_api_client_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def stream(api_method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a generated kubernetes_asyncio exec/attach method over kstream.

    Args:
        api_method: e.g. ``CoreV1Api(api_client).connect_get_namespaced_pod_exec``; its
            ``ApiClient`` can be any (it is copied, never modified).
        *args: its positional arguments.
        **kwargs: its keyword arguments, plus ``_preload_content`` (default ``True``)
            and ``binary`` (default ``False``).

    Returns:
        Preloaded: stdout and stderr as they arrived, ``str`` (``bytes`` with
        ``binary=True``). Otherwise a connected :class:`WsConnection`.

    Raises:
        NotImplementedError: a port-forward method.
        kubernetes_asyncio.client.exceptions.ApiException: the session failed
            (``__cause__`` is kstream's error).
    """
    preload = kwargs.pop("_preload_content", True)
    binary = bool(kwargs.pop("binary", False))
    kwargs["_preload_content"] = False
    owner = getattr(api_method, "__self__", None)
    api_client = getattr(owner, "api_client", None)
    if api_client is None:
        raise TypeError("stream() takes a method of a generated API object")
    captured: dict[str, Any] = {}

    async def request(method: str, url: str, query_params: Any = None, headers: Any = None,
                      post_params: Any = None, body: Any = None,
                      _preload_content: bool = True, _request_timeout: Any = None) -> Any:
        captured.update(url=url_with_query(url, query_params), headers=headers,
                        timeout=_request_timeout)
        return None

    clone = capture_client(api_client, request=request)
    await bind_to_clone(api_method, clone)(*args, **kwargs)
    if "url" not in captured:
        raise TypeError(f"{getattr(api_method, '__name__', api_method)!r} made no request")
    parsed = parse_request(captured["url"], captured["headers"])
    try:
        if not preload:
            return await WsConnection(parsed, api_client.configuration, captured["timeout"])
        data = await _collect(parsed, api_client.configuration, captured["timeout"])
    except Exception as exc:
        _decoded_body(exc)  # as the generated code's error path does
        raise
    if binary:
        return data
    return data.decode("utf-8", "replace")


#: The error of :func:`portforward`: kubernetes_asyncio has no port-forward call to copy.
ASYNCIO_PORTFORWARD_MESSAGE: Final = (
    "kubernetes_asyncio has no portforward() for kstream.compat to replace: use "
    "kstream.asyncio.open_port_forward (see docs/portforward.md); the sync kubernetes "
    "client's is kstream.compat.kubernetes.portforward")


async def portforward(api_method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A placeholder: kubernetes_asyncio has no port-forward call to be a drop-in for.

    Raises:
        NotImplementedError: always, naming :func:`kstream.asyncio.open_port_forward`.
    """
    raise NotImplementedError(ASYNCIO_PORTFORWARD_MESSAGE)
