"""``kubernetes.stream.stream`` on kstream: the same call, the same results, faster.

Migration is one import::

    # from kubernetes.stream import stream
    from kstream.compat.kubernetes import stream

    out = stream(core.connect_get_namespaced_pod_exec, "web-0", "default",
                 command=["ls", "/"], stderr=True, stdin=False, stdout=True, tty=False)

The generated API method builds the request exactly as with the original (path, query,
credentials from its ``ApiClient``: tokens refreshed by ``refresh_api_key_hook``, TLS,
proxy), on a private copy of the ``ApiClient`` (the caller's is never patched,
kubernetes-client/python#928). The session then runs on :mod:`kstream.asyncio` in a
private event-loop thread. ``_preload_content=False`` returns a :class:`WSClient` with the
methods of the original's. :func:`portforward` replaces ``kubernetes.stream.portforward``
the same way: one WebSocket for every port, a socket per port (:class:`PortForward`). See
``docs/compat.md`` for what is identical and what differs.

The ``kubernetes`` package itself is only needed for the ``ApiClient`` you pass (and its
``ApiException``, raised for failed calls as by the original).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import io
import json
import socket
import threading
import time
import weakref
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Final

import kstream
import kstream.asyncio

from ._common import (
    ERROR_CHANNEL,
    RESIZE_CHANNEL,
    STDERR_CHANNEL,
    STDIN_CHANNEL,
    STDOUT_CHANNEL,
    ExecRequest,
    bind_to_clone,
    capture_client,
    credential_headers,
    drain_both,
    open_process,
    parse_pod_url,
    parse_request,
    require,
    split_timeout,
    status_document,
    url_with_query,
)
from ._loop import LoopThread
from ._portforward import PortForward, PortSocket

__all__ = [
    "ERROR_CHANNEL",
    "RESIZE_CHANNEL",
    "STDERR_CHANNEL",
    "STDIN_CHANNEL",
    "STDOUT_CHANNEL",
    "PortForward",
    "PortSocket",
    "WSClient",
    "portforward",
    "stream",
]


_COMPAT: Final = "kstream.compat.kubernetes"
#: Bytes per read from a kstream output channel: the most a kubelet (or kstream serve)
#: sends in one message, so that a read returns one received chunk as it is (a larger
#: read would join several, one more copy of every byte).
_CHUNK: Final = 32 * 1024
#: Unread bytes per output channel while collecting a preloaded result.
_PRELOAD_BUFFER: Final = 4 << 20
#: Bytes received by the loop thread and not yet taken by update() before it stops
#: reading (the connection then stops too: memory stays bounded).
_HANDOVER_LIMIT: Final = 4 << 20
#: Seconds close() waits for the connection to close before stopping the loop anyway.
_CLOSE_TIMEOUT: Final = 10.0


class _Captured:
    """What the generated method returns instead of a response (never seen by callers)."""


_CAPTURED: Final = _Captured()


def _capture(api_method: Any, args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> tuple[ExecRequest, Any, Any]:
    """Run the generated method on a copy of its ApiClient and keep the request it makes."""
    url, headers, configuration, timeout = _capture_call(api_method, args, kwargs)
    return parse_request(url, headers), configuration, timeout


def _capture_call(api_method: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> tuple[str, Any, Any, Any]:
    """The URL, header parameters, configuration and ``_request_timeout`` of the request
    the generated method makes, run on a copy of its ApiClient."""
    owner = getattr(api_method, "__self__", None)
    api_client = getattr(owner, "api_client", None)
    if api_client is None:
        raise TypeError("stream() takes a method of a generated API object, e.g. "
                        "CoreV1Api(...).connect_get_namespaced_pod_exec")
    captured: dict[str, Any] = {}

    def call_api(method: str, url: str, header_params: Any = None, body: Any = None,
                 post_params: Any = None, _request_timeout: Any = None) -> Any:
        captured.update(url=url, headers=header_params, timeout=_request_timeout)
        return SimpleNamespace(response=_CAPTURED, status=200)

    def request(method: str, url: str, query_params: Any = None, headers: Any = None,
                post_params: Any = None, body: Any = None, _preload_content: bool = True,
                _request_timeout: Any = None) -> Any:
        captured.update(url=url_with_query(url, query_params), headers=headers,
                        timeout=_request_timeout)
        return _CAPTURED

    if hasattr(api_client, "param_serialize"):  # kubernetes >= 35: call_api(method, url...)
        clone = capture_client(api_client, call_api=call_api)
    else:  # older generated code: call_api -> request(method, url, query_params...)
        clone = capture_client(api_client, request=request)
    bind_to_clone(api_method, clone)(*args, **kwargs)
    if "url" not in captured:
        raise TypeError(f"{getattr(api_method, '__name__', api_method)!r} made no request")
    return captured["url"], captured["headers"], api_client.configuration, captured["timeout"]


def _api_exception(exc: BaseException) -> BaseException:
    """The original's error for a failed call: an ``ApiException`` (with the real status)."""
    try:
        rest = require("kubernetes.client.rest", _COMPAT)
    except ModuleNotFoundError:
        return exc
    if isinstance(exc, kstream.UpgradeRejectedError):
        error = rest.ApiException(status=exc.status_code, reason=str(exc))
        error.body = exc.body.decode("utf-8", "replace")
        return error  # type: ignore[no-any-return]
    return rest.ApiException(status=0, reason=str(exc))  # type: ignore[no-any-return]


def stream(api_method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a generated exec/attach method over kstream, like ``kubernetes.stream.stream``.

    Args:
        api_method: e.g. ``CoreV1Api(api_client).connect_get_namespaced_pod_exec``.
        *args: its positional arguments (name, namespace).
        **kwargs: its keyword arguments (``command``, ``stdin``, ``stdout``, ``stderr``,
            ``tty``, ``container``, ``_request_timeout``, ``_headers``...), plus
            ``_preload_content`` (default ``True``) and ``binary`` (default ``False``).

    Returns:
        With ``_preload_content=True``: stdout and stderr as they arrived, ``str``
        (``bytes`` with ``binary=True``). Otherwise a running :class:`WSClient`.

    Raises:
        NotImplementedError: a ``pods/portforward`` method (:func:`portforward` takes
            it, as with the original).
        kubernetes.client.rest.ApiException: the session could not be opened (``status``
            is the HTTP status of a rejected upgrade, 0 for connection errors), the
            command could not run (no exit code: binary not found...), or the
            connection broke before the exit status; ``__cause__`` is kstream's error.
    """
    preload = kwargs.pop("_preload_content", True)
    binary = bool(kwargs.pop("binary", False))
    kwargs["_preload_content"] = False
    request, configuration, timeout = _capture(api_method, args, kwargs)
    connect_timeout, deadline = split_timeout(timeout)
    if preload:
        return _preloaded(request, configuration, connect_timeout, deadline, binary)
    return WSClient._open(request, configuration, connect_timeout, binary)


def portforward(api_method: Callable[..., Any], *args: Any, **kwargs: Any) -> PortForward:
    """Forward ports of a pod over one WebSocket, like ``kubernetes.stream.portforward``.

    Args:
        api_method: ``CoreV1Api(api_client).connect_get_namespaced_pod_portforward``
            (or its POST twin).
        *args: its positional arguments (name, namespace).
        **kwargs: its keyword arguments: ``ports`` (``"8080,9090"``, an int, or given
            several times), ``_request_timeout`` (bounds the connection), ``_headers``...

    Returns:
        A :class:`PortForward`: ``socket(port)``, ``error(port)``, ``connected``,
        ``close()``.

    Raises:
        kubernetes.client.exceptions.ApiValueError: ``ports`` is missing, or a port is
            not a number, out of range or repeated (the original's errors and texts).
        kubernetes.client.rest.ApiException: the WebSocket could not be opened
            (``status`` is the HTTP status of a rejected upgrade, 0 for connection
            errors); ``__cause__`` is kstream's error.
    """
    kwargs["_preload_content"] = False
    url, headers, configuration, timeout = _capture_call(api_method, args, kwargs)
    target = parse_pod_url(url)
    if target.subresource != "portforward":
        raise ValueError(f"portforward() takes a pods/portforward method, not "
                         f"pods/{target.subresource}")
    ports = _requested_ports(target.query)
    connect_timeout, _ = split_timeout(timeout)
    try:
        return PortForward._open(target, ports, credential_headers(headers), configuration,
                                 connect_timeout)
    except (kstream.KstreamError, OSError, TimeoutError) as exc:
        raise _api_exception(exc) from exc


def _requested_ports(query: tuple[tuple[str, str], ...]) -> list[int]:
    """The ``ports`` of the query, checked as the original's ``portforward_call`` does."""
    exceptions = require("kubernetes.client.exceptions", _COMPAT)
    ports: list[int] = []
    for key, value in query:
        if key != "ports":
            continue
        for port in value.split(","):
            try:
                number = int(port)
            except ValueError:
                raise exceptions.ApiValueError(f"Invalid port number: {port}") from None
            if not 0 < number < 65536:
                raise exceptions.ApiValueError(
                    f"Port number must be between 0 and 65536: {port}")
            if number in ports:
                raise exceptions.ApiValueError(f"Duplicate port numbers: {port}")
            ports.append(number)
    if not ports:
        raise exceptions.ApiValueError("Missing required parameter `ports`")
    return ports


# --------------------------------------------------------------------------- preloaded


def _decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")("replace")


class _Output:
    """What a preloaded call returns, collected as it arrives (both channels, in order).

    Bytes go into one :class:`io.BytesIO`, whose ``getvalue()`` hands its buffer over
    without a copy: the peak is about the output's size. Text is decoded per channel as
    it arrives (a character split between two messages arrives whole) and joined once.
    """

    def __init__(self, binary: bool) -> None:
        self.binary = binary
        self._bytes = io.BytesIO()
        self._text: list[str] = []

    async def drain(self, output: kstream.asyncio.RemoteOutput) -> None:
        if self.binary:
            write = self._bytes.write
            while chunk := await output.read(_CHUNK):
                write(chunk)
            return
        decoder = _decoder()
        while chunk := await output.read(_CHUNK):
            self._text.append(decoder.decode(chunk))
        if tail := decoder.decode(b"", True):
            self._text.append(tail)

    def value(self) -> str | bytes:
        if self.binary:
            return self._bytes.getvalue()
        return "".join(self._text)


async def _collect(request: ExecRequest, configuration: Any, connect_timeout: float | None,
                   deadline: float | None, binary: bool) -> str | bytes:
    process = await open_process(request, configuration, connect_timeout=connect_timeout,
                                 buffer_limit=_PRELOAD_BUFFER)
    output = _Output(binary)
    async with process:
        try:
            async with asyncio.timeout(deadline):
                await drain_both(process, output.drain)
                await process.wait()  # a failure with no exit code raises
        except TimeoutError:
            if deadline is None:
                raise
            # As the original: when _request_timeout expires, what arrived is the result.
    return output.value()


def _run_sync(coroutine: Any) -> Any:
    runner = LoopThread("kstream-compat")
    try:
        future = runner.submit(coroutine)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise
    finally:
        runner.stop()


def _preloaded(request: ExecRequest, configuration: Any, connect_timeout: float | None,
               deadline: float | None, binary: bool) -> str | bytes:
    try:
        result: str | bytes = _run_sync(
            _collect(request, configuration, connect_timeout, deadline, binary))
    except (kstream.KstreamError, OSError, TimeoutError) as exc:
        raise _api_exception(exc) from exc
    return result


# --------------------------------------------------------------------------- WSClient


class _Session:
    """The loop-thread side of a :class:`WSClient`: pumps output to the caller's thread.

    Holds no reference to the WSClient, so dropping the WSClient stops the thread.
    """

    def __init__(self, runner: LoopThread, process: kstream.asyncio.RemoteProcess) -> None:
        self.runner = runner
        self.process = process
        # Readable while output waits for update() or the session ended: what callers
        # select() on (the original's ``sock.sock``).
        self.wakeup, self._signal = socket.socketpair()
        self.wakeup.setblocking(False)
        self._signal.setblocking(False)
        self.cond = threading.Condition()
        self.incoming: list[tuple[int, bytes]] = []
        self.pending = 0
        self.finished = False
        self.error: BaseException | None = None
        self._room = asyncio.Event()
        self.task = asyncio.ensure_future(self._pump())

    def signal(self) -> None:
        """Make :attr:`wakeup` readable (called with :attr:`cond` held)."""
        with contextlib.suppress(OSError):  # full (already readable) or closed
            self._signal.send(b"\0")

    def unsignal(self) -> None:
        """Drain :attr:`wakeup` (called with :attr:`cond` held)."""
        with contextlib.suppress(OSError):
            while self.wakeup.recv(4096):
                pass

    def close_sockets(self) -> None:
        """Close the wake-up pair (once the loop thread is stopped)."""
        self.wakeup.close()
        self._signal.close()

    def room(self) -> None:
        """Called (on the loop) when the caller took what was handed over."""
        self._room.set()

    async def _channel(self, channel: int, output: kstream.asyncio.RemoteOutput) -> None:
        try:
            while chunk := await output.read(_CHUNK):
                with self.cond:
                    if not self.incoming:
                        self.signal()
                    self.incoming.append((channel, chunk))
                    self.pending += len(chunk)
                    self.cond.notify_all()
                while self.pending > _HANDOVER_LIMIT:
                    self._room.clear()
                    await self._room.wait()
        except kstream.KstreamError as exc:
            if self.error is None:
                self.error = exc

    async def _pump(self) -> None:
        process = self.process
        try:
            await asyncio.gather(self._channel(STDOUT_CHANNEL, process.stdout),
                                 self._channel(STDERR_CHANNEL, process.stderr))
            if self.error is None:
                try:
                    await process.wait()
                except kstream.KstreamError as exc:
                    self.error = exc
        finally:
            with self.cond:
                self.finished = True
                self.signal()
                self.cond.notify_all()
            await process.aclose()
            self.runner.stop()  # the thread ends with the session

    async def shutdown(self) -> None:
        """Stop pumping and close the connection (the pump's clean-up runs whole)."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    async def write(self, data: bytes) -> None:
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def close_stdin(self) -> None:
        self.process.stdin.close()
        await self.process.stdin.drain()

    async def resize(self, width: int, height: int) -> None:
        await self.process.resize(width, height)


def _stop(session: _Session) -> None:
    session.runner.stop()
    session.close_sockets()


class _Selectable:
    """What code that ``select()``s on the original's ``resp.sock.sock`` needs.

    ``sock`` is readable while output waits for :meth:`WSClient.update` or once the
    session ended; ``connected``, ``close()`` and ``shutdown()`` act on the WSClient.
    """

    def __init__(self, client: WSClient, wakeup: socket.socket) -> None:
        self._client = weakref.ref(client)
        self.sock = wakeup

    @property
    def connected(self) -> bool:
        client = self._client()
        return client is not None and client.is_open()

    def close(self, **kwargs: Any) -> None:
        client = self._client()
        if client is not None:
            client.close()

    shutdown = close


class WSClient:
    """A running exec/attach session with the interface of the official ``WSClient``.

    Made by :func:`stream` with ``_preload_content=False``. Like the original, output
    reaches the channel buffers only in :meth:`update` (or a method that calls it);
    unlike the original, the socket is served by a kstream session in a private
    event-loop thread (heartbeat, incremental UTF-8 decoding), which reads at most
    4 MiB ahead of :meth:`update` and ends with the session or :meth:`close`.

    Attributes:
        binary: channels hold ``bytes`` (``binary=True``) or ``str``.
        subprotocol: the negotiated protocol (``"v5.channel.k8s.io"``...).
        sock: ``sock.sock`` is a socket that is readable while output waits for
            :meth:`update` (or once the session ended), for code that ``select()``s
            on the original's ``resp.sock.sock``.
        transport: ``"websocket"`` or ``"spdy"`` (kstream falls back to SPDY).
    """

    def __init__(self, session: _Session, binary: bool, command: tuple[str, ...]) -> None:
        self._session = session
        self._runner = session.runner
        self._command = command
        self.binary = binary
        self.newline: str | bytes = b"\n" if binary else "\n"
        self.subprotocol = session.process.protocol
        self.transport = session.process.transport
        self._channels: dict[int, list[Any]] = {}
        self._closed_channels: set[int] = set()
        self._decoders: dict[int, codecs.IncrementalDecoder] = {}
        self._connected = True
        self._closed = False
        self._returncode: int | None = None
        self.sock = _Selectable(self, session.wakeup)
        self._finalizer = weakref.finalize(self, _stop, session)

    @classmethod
    def _open(cls, request: ExecRequest, configuration: Any, connect_timeout: float | None,
              binary: bool) -> WSClient:
        runner = LoopThread("kstream-compat-wsclient")

        async def start() -> _Session:
            process = await open_process(request, configuration,
                                         connect_timeout=connect_timeout)
            return _Session(runner, process)

        try:
            session = runner.submit(start()).result()
        except BaseException as exc:
            runner.stop()
            if isinstance(exc, kstream.KstreamError | OSError | TimeoutError):
                raise _api_exception(exc) from exc
            raise
        return cls(session, binary, request.command)

    def __repr__(self) -> str:
        state = "open" if self._connected else "closed"
        return f"<kstream.compat WSClient {self.transport}/{self.subprotocol} {state}>"

    # -- buffers

    def _empty(self) -> str | bytes:
        return b"" if self.binary else ""

    def _buffered(self, channel: int) -> Any:
        pieces = self._channels.get(channel)
        if pieces is None:
            return None
        if len(pieces) > 1:
            joined = (b"" if self.binary else "").join(pieces)
            pieces[:] = [joined]
        return pieces[0]

    def _append(self, channel: int, data: str | bytes) -> None:
        if data:
            self._channels.setdefault(channel, []).append(data)

    def _deliver(self, channel: int, chunk: bytes) -> None:
        if self.binary:
            self._append(channel, chunk)
            return
        decoder = self._decoders.get(channel)
        if decoder is None:
            decoder = self._decoders[channel] = _decoder()
        self._append(channel, decoder.decode(chunk))

    def _finish(self) -> None:
        for channel, decoder in self._decoders.items():
            self._append(channel, decoder.decode(b"", True))
        document = status_document(self._session.process.result, self._command)
        self._append(ERROR_CHANNEL, document if self.binary else document.decode())
        self._connected = False  # the loop thread ends by itself once the socket closed

    # -- the official WSClient API

    def is_open(self) -> bool:
        """True while the session runs or output remains to be taken by :meth:`update`."""
        return self._connected

    def update(self, timeout: float | None = 0) -> None:
        """Take the output that arrived, waiting at most ``timeout`` seconds for some.

        ``None`` (or ``inf``) waits until output arrives or the session ends.
        """
        if not self._connected:
            return
        session = self._session
        wait: float | None = None
        if timeout is not None and timeout != float("inf"):
            wait = max(0.0, float(timeout))
        with session.cond:
            if not session.incoming and not session.finished:
                session.cond.wait_for(lambda: session.incoming or session.finished, wait)
            items = session.incoming
            session.incoming = []
            if not session.finished:
                session.unsignal()
            session.pending = 0
            finished = session.finished
        for channel, chunk in items:
            self._deliver(channel, chunk)
        if items:
            self._runner.call(session.room)
        if finished:
            self._finish()

    def run_forever(self, timeout: float | None = None) -> None:
        """Wait until the session ends or ``timeout`` seconds pass, buffering output."""
        if timeout:
            start = time.monotonic()
            while self.is_open() and time.monotonic() - start < timeout:
                self.update(timeout=timeout - time.monotonic() + start)
        else:
            while self.is_open():
                self.update(timeout=None)

    def peek_channel(self, channel: int, timeout: float | None = 0) -> Any:
        """Update (waiting at most ``timeout``) and return the channel's data, kept."""
        if channel in self._closed_channels and channel not in self._channels:
            return self._empty()
        self.update(timeout=timeout)
        data = self._buffered(channel)
        return self._empty() if data is None else data

    def read_channel(self, channel: int, timeout: float | None = 0) -> Any:
        """Return and remove the channel's data; update first only if there is none."""
        if channel in self._closed_channels and channel not in self._channels:
            return self._empty()
        if channel not in self._channels:
            data = self.peek_channel(channel, timeout)
        else:
            data = self._buffered(channel)
        self._channels.pop(channel, None)
        return data

    def readline_channel(self, channel: int, timeout: float | None = None) -> Any:
        """Return the next line (without its newline), waiting at most ``timeout``.

        Once the session ended, the rest of the channel is returned (the last line may
        have no newline); the original returns an empty string then and leaves it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        newline: Any = self.newline
        while True:
            data = self._buffered(channel)
            if data:
                index = data.find(newline)
                if index >= 0:
                    rest = data[index + 1:]
                    if rest:
                        self._channels[channel] = [rest]
                    else:
                        del self._channels[channel]
                    return data[:index]
            if not self.is_open():
                if data:
                    del self._channels[channel]
                    return data
                return self._empty()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return self._empty()
            self.update(timeout=remaining)

    def peek_stdout(self, timeout: float | None = 0) -> Any:
        """``peek_channel(1, timeout)``."""
        return self.peek_channel(STDOUT_CHANNEL, timeout=timeout)

    def read_stdout(self, timeout: float | None = None) -> Any:
        """``read_channel(1, timeout)``."""
        return self.read_channel(STDOUT_CHANNEL, timeout=timeout)

    def readline_stdout(self, timeout: float | None = None) -> Any:
        """``readline_channel(1, timeout)``."""
        return self.readline_channel(STDOUT_CHANNEL, timeout=timeout)

    def peek_stderr(self, timeout: float | None = 0) -> Any:
        """``peek_channel(2, timeout)``."""
        return self.peek_channel(STDERR_CHANNEL, timeout=timeout)

    def read_stderr(self, timeout: float | None = None) -> Any:
        """``read_channel(2, timeout)``."""
        return self.read_channel(STDERR_CHANNEL, timeout=timeout)

    def readline_stderr(self, timeout: float | None = None) -> Any:
        """``readline_channel(2, timeout)``."""
        return self.readline_channel(STDERR_CHANNEL, timeout=timeout)

    def read_all(self) -> Any:
        """Return (and remove) the unread stdout and stderr output, stdout first.

        The original also repeats what was already read with ``read_stdout``..., which
        means keeping every byte of the session in memory (kubernetes-client/python#2302);
        this one returns what is still unread.
        """
        out: Any = self._empty()
        for channel in (STDOUT_CHANNEL, STDERR_CHANNEL):
            if channel in self._channels:
                out += self.read_channel(channel)
        return out

    def _call(self, coroutine: Any) -> None:
        if self._closed:
            coroutine.close()
            raise BrokenPipeError("the WSClient is closed")
        try:
            future = self._runner.submit(coroutine)
        except RuntimeError:
            return  # the session ended: like kstream, bytes after the end are dropped
        try:
            future.result()
        except asyncio.CancelledError:
            return  # the session ended meanwhile

    def write_channel(self, channel: int, data: str | bytes) -> None:
        """Write to a channel: 0 is stdin, 4 a resize document ``{"Width":..,"Height":..}``.

        Raises:
            kstream.LocalProtocolError: stdin was not requested or is closed, or resize
                without a terminal.
            BrokenPipeError: the WSClient was closed.
            ValueError: another channel, or a bad resize document.
        """
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if channel == STDIN_CHANNEL:
            self._call(self._session.write(raw))
        elif channel == RESIZE_CHANNEL:
            size = json.loads(raw)
            self._call(self._session.resize(int(size["Width"]), int(size["Height"])))
        else:
            raise ValueError(f"kstream.compat cannot write to channel {channel}")

    def write_stdin(self, data: str | bytes) -> None:
        """``write_channel(0, data)``: ``str`` is sent as UTF-8."""
        self.write_channel(STDIN_CHANNEL, data)

    def close_channel(self, channel: int) -> None:
        """Close stdin (channel 0): the remote process reads end-of-file.

        Raises:
            kstream.LocalProtocolError: the negotiated protocol cannot half-close stdin
                (WebSocket v4: the original silently does nothing there).
            ValueError: another channel.
        """
        if channel != STDIN_CHANNEL:
            raise ValueError("only stdin (channel 0) can be closed")
        if channel in self._closed_channels:
            return
        self._call(self._session.close_stdin())
        self._closed_channels.add(channel)

    @property
    def returncode(self) -> int | None:
        """The exit code; ``None`` while the session is open.

        Raises:
            kstream.RemoteCommandError: the command produced no exit code (binary not
                found...: the original raises ``ValueError``, python#1840).
            kstream.ConnectionLostError: the session ended without an exit status
                (closed early, connection lost: the original raises ``TypeError``,
                python#2156), or kstream's error for a broken session.
        """
        if self.is_open():
            return None
        if self._returncode is None:
            result = self._session.process.result
            if isinstance(result, kstream.Exited):
                self._returncode = result.code
            elif isinstance(result, kstream.Failed):
                raise kstream.RemoteCommandError(result)
            elif self._session.error is not None:
                raise self._session.error
            else:
                raise kstream.ConnectionLostError(
                    "the session ended without an exit status"
                    + (" (closed by the caller)" if self._closed else ""))
        return self._returncode

    def close(self, **kwargs: Any) -> None:
        """Close the session and stop its thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._connected = False
        self._runner.run_bounded(self._session.shutdown(), _CLOSE_TIMEOUT)
        self._finalizer.detach()
        _stop(self._session)

    def __enter__(self) -> WSClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
