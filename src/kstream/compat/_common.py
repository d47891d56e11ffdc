"""What both compat modules share: the request the client built, TLS, proxy, statuses.

The generated API methods of both official clients build the request (path, query,
headers with the credentials) and hand it to their ``ApiClient``; the compat modules let
them, capture that request on a private copy of the ``ApiClient`` (the caller's is never
touched: kubernetes-client/python#928), and open the session with
:mod:`kstream.asyncio` from it. Only public kstream names are used here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import ipaddress
import os
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

import kstream
import kstream.asyncio

__all__ = [
    "CLOSE_CHANNEL",
    "ERROR_CHANNEL",
    "PORTFORWARD_MESSAGE",
    "RESIZE_CHANNEL",
    "STDERR_CHANNEL",
    "STDIN_CHANNEL",
    "STDOUT_CHANNEL",
    "ExecRequest",
    "PodURL",
    "capture_client",
    "credential_headers",
    "drain_both",
    "open_process",
    "parse_pod_url",
    "parse_request",
    "require",
    "status_document",
    "tls_settings",
    "url_with_query",
]

#: The channel numbers both official clients name (``STDIN_CHANNEL`` ...).
STDIN_CHANNEL: Final = 0
STDOUT_CHANNEL: Final = 1
STDERR_CHANNEL: Final = 2
ERROR_CHANNEL: Final = 3
RESIZE_CHANNEL: Final = 4
CLOSE_CHANNEL: Final = 255


def url_with_query(url: str, query_params: Any) -> str:
    """The URL a client without the query in it builds: as the originals'
    ``get_websocket_url`` / ``WsApiClient.request`` do (``command`` lists repeated, then
    urlencode)."""
    from urllib.parse import urlencode

    if not query_params:
        return url
    query: list[tuple[str, Any]] = []
    for key, value in query_params:
        if key == "command" and isinstance(value, list):
            query.extend((key, argument) for argument in value)
        else:
            query.append((key, value))
    return f"{url}?{urlencode(query)}" if query else url


async def drain_both(process: kstream.asyncio.RemoteProcess,
                     drain: Callable[[kstream.asyncio.RemoteOutput], Awaitable[None]]) -> None:
    """Run ``drain`` on stdout and stderr at once, until both end (or one fails)."""
    tasks = [asyncio.ensure_future(drain(process.stdout)),
             asyncio.ensure_future(drain(process.stderr))]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


#: The error of ``stream()`` (both compat modules) on a ``pods/portforward`` method: as
#: with the original clients, port-forward is not a ``stream()`` call.
PORTFORWARD_MESSAGE: Final = (
    "stream() does not port-forward: with the kubernetes client, call "
    "kstream.compat.kubernetes.portforward(api.connect_get_namespaced_pod_portforward, "
    "...) as the original's portforward(); from asyncio, use "
    "kstream.asyncio.open_port_forward")

_POD_PATH: Final = re.compile(
    r"(?P<prefix>.*)/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<pod>[^/]+)"
    r"/(?P<subresource>exec|attach|portforward)")
_STREAM_KEYS: Final = frozenset({"container", "stdin", "stdout", "stderr", "tty"})


def require(module: str, compat: str) -> Any:
    """Import ``module`` (the client a compat module wraps), or say clearly what is missing.

    Args:
        module: the top-level package, ``"kubernetes"`` or ``"kubernetes_asyncio"``.
        compat: the compat module asking, for the message.

    Returns:
        The imported module.

    Raises:
        ModuleNotFoundError: the package is not installed (``pip install <module>``).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in (module, None):
            raise
        raise ModuleNotFoundError(
            f"{compat} wraps the {module!r} package, which is not installed: "
            f"pip install {module}", name=module) from exc


# --------------------------------------------------------------------------- the request


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """An exec or attach request, as the official client built it.

    Attributes:
        url: the full URL the client built (``https://host/prefix/api/v1/...?...``).
        server: scheme, host, port and path prefix (what kstream calls ``server``).
        namespace: the pod's namespace.
        pod: the pod's name.
        subresource: ``"exec"`` or ``"attach"``.
        command: the argv (exec).
        container: the container, ``None`` for the server's choice.
        stdin: stdin requested.
        stdout: stdout requested.
        stderr: stderr requested.
        tty: terminal requested.
        headers: request headers to send (the credentials).
        protocols: the WebSocket subprotocols the caller asked for, ``None`` for
            kstream's default (v5, v4, ... and SPDY as a fallback).
    """

    url: str
    server: str
    namespace: str
    pod: str
    subresource: str
    command: tuple[str, ...]
    container: str | None
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool
    headers: tuple[tuple[str, str], ...]
    protocols: tuple[str, ...] | None


def _query_bool(value: str) -> bool:
    # apimachinery's Convert_Slice_string_To_bool: "0" and "false" (any case) are false.
    return not (value == "0" or value.lower() == "false")


@dataclass(frozen=True, slots=True)
class PodURL:
    """The URL of a pod's streaming subresource, taken apart.

    Attributes:
        server: scheme (``ws``/``wss`` read as ``http``/``https``), host, port and path
            prefix (what kstream calls ``server``).
        namespace: the pod's namespace.
        pod: the pod's name.
        subresource: ``"exec"``, ``"attach"`` or ``"portforward"``.
        query: the query parameters, in order, repeated ones included.
    """

    server: str
    namespace: str
    pod: str
    subresource: str
    query: tuple[tuple[str, str], ...]


def parse_pod_url(url: str) -> PodURL:
    """Take apart the URL an official client built for a streaming call.

    Raises:
        ValueError: not the URL of a pod's exec, attach or portforward subresource.
    """
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    match = _POD_PATH.fullmatch(parts.path)
    if match is None:
        raise ValueError("kstream.compat takes pods/exec and pods/attach (stream()) and "
                         f"pods/portforward (portforward()) only, not {parts.path!r}")
    return PodURL(server=f"{scheme}://{parts.netloc}{match['prefix']}",
                  namespace=unquote(match["namespace"]), pod=unquote(match["pod"]),
                  subresource=match["subresource"],
                  query=tuple(parse_qsl(parts.query, keep_blank_values=True)))


def credential_headers(headers: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """The headers of a generated request that go on the upgrade: ``Authorization``.

    (The originals send that one too, and the subprotocols, which kstream negotiates.)
    """
    for key, value in (headers or {}).items():
        if str(key).lower() == "authorization" and value is not None:
            return (("Authorization", str(value)),)
    return ()


def parse_request(url: str, headers: Mapping[str, Any] | None) -> ExecRequest:
    """Read the request an official client built for an exec or attach call.

    Args:
        url: the URL with its query, as the generated method built it.
        headers: the header parameters it built (credentials included).

    Returns:
        The request.

    Raises:
        NotImplementedError: a ``pods/portforward`` request (``portforward()`` takes it).
        ValueError: not a pod exec/attach URL, or query parameters kstream cannot send.
    """
    target = parse_pod_url(url)
    if target.subresource == "portforward":
        raise NotImplementedError(PORTFORWARD_MESSAGE)
    query = target.query
    command = tuple(value for key, value in query if key == "command")
    flags: dict[str, str] = {}
    for key, value in query:
        if key == "command":
            continue
        if key not in _STREAM_KEYS:
            raise ValueError(f"kstream.compat cannot send the query parameter {key!r}")
        flags.setdefault(key, value)  # the first value counts, as in apimachinery
    if target.subresource == "attach" and command:
        raise ValueError("an attach request takes no command")
    if target.subresource == "exec" and not command:
        raise ValueError("an exec request needs a command")
    lowered = {str(k).lower(): v for k, v in (headers or {}).items() if v is not None}
    protocols: tuple[str, ...] | None = None
    if "sec-websocket-protocol" in lowered:
        protocols = tuple(p.strip() for p in str(lowered["sec-websocket-protocol"]).split(",")
                          if p.strip())
    return ExecRequest(
        url=url,
        server=target.server,
        namespace=target.namespace,
        pod=target.pod,
        subresource=target.subresource,
        command=command,
        container=flags.get("container") or None,
        stdin=_query_bool(flags["stdin"]) if "stdin" in flags else False,
        stdout=_query_bool(flags["stdout"]) if "stdout" in flags else False,
        stderr=_query_bool(flags["stderr"]) if "stderr" in flags else False,
        tty=_query_bool(flags["tty"]) if "tty" in flags else False,
        headers=credential_headers(headers),
        protocols=protocols,
    )


def capture_client(api_client: Any, **overrides: Any) -> Any:
    """A shallow copy of ``api_client`` with some attributes replaced.

    The generated method runs on the copy, so the caller's client (shared between
    threads or tasks) is never modified while a streaming call builds its request.

    Args:
        api_client: the ``ApiClient`` behind the API method.
        **overrides: attributes to set on the copy (``call_api``, ``request``...).

    Returns:
        The copy; it shares the configuration, the REST client and the pools.
    """
    clone = copy.copy(api_client)
    for name, value in overrides.items():
        setattr(clone, name, value)
    return clone


def bind_to_clone(api_method: Any, clone_client: Any) -> Any:
    """Bind the function of ``api_method`` to a copy of its API object using ``clone_client``.

    Raises:
        TypeError: ``api_method`` is not a method of a generated API object.
    """
    owner = getattr(api_method, "__self__", None)
    function = getattr(api_method, "__func__", None)
    if owner is None or function is None or not hasattr(owner, "api_client"):
        raise TypeError("stream() takes a method of a generated API object, e.g. "
                        "CoreV1Api(...).connect_get_namespaced_pod_exec")
    api = copy.copy(owner)
    api.api_client = clone_client
    return function.__get__(api, type(api))


# --------------------------------------------------------------------------- TLS and proxy

_ssl_cache: dict[tuple[Any, ...], ssl.SSLContext] = {}


def _file_key(path: Any) -> tuple[Any, ...]:
    if not path:
        return (None,)
    try:
        stat = os.stat(path)
    except OSError:
        return (path,)
    return (path, stat.st_mtime_ns, stat.st_size)


def tls_settings(configuration: Any, server: str) -> tuple[ssl.SSLContext | None, str | None]:
    """The TLS context and server name an official client's configuration asks for.

    ``verify_ssl``, ``ssl_ca_cert`` (certifi's bundle when unset, as the official
    client), ``ca_cert_data``, ``cert_file``/``key_file``, ``assert_hostname`` (``False``
    turns off the host name check) and ``tls_server_name``. Contexts are cached per
    settings (and per file modification time), never modified once made.

    Args:
        configuration: the client's ``Configuration``.
        server: the server URL (``http`` needs no context).

    Returns:
        ``(context, server_hostname)``; ``(None, None)`` for ``http``.
    """
    if not server.startswith("https:"):
        return None, None
    verify = bool(getattr(configuration, "verify_ssl", True))
    ca_file = getattr(configuration, "ssl_ca_cert", None)
    ca_data = getattr(configuration, "ca_cert_data", None)
    cert_file = getattr(configuration, "cert_file", None)
    key_file = getattr(configuration, "key_file", None)
    assert_hostname = getattr(configuration, "assert_hostname", None)
    server_name = getattr(configuration, "tls_server_name", None) or None
    key = (verify, _file_key(ca_file), ca_data, _file_key(cert_file), _file_key(key_file),
           assert_hostname)
    context = _ssl_cache.get(key)
    if context is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.set_alpn_protocols(["http/1.1"])
        if verify:
            if ca_file or ca_data:
                if ca_file:
                    context.load_verify_locations(cafile=ca_file)
                if ca_data:
                    data = ca_data.decode() if isinstance(ca_data, bytes) else str(ca_data)
                    context.load_verify_locations(cadata=data)
            else:
                try:
                    import certifi
                except ModuleNotFoundError:  # the official client depends on it
                    context.load_default_certs()
                else:
                    context.load_verify_locations(cafile=certifi.where())
            if assert_hostname is False:
                context.check_hostname = False
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cert_file:
            context.load_cert_chain(cert_file, key_file or None)
        if len(_ssl_cache) > 32:
            _ssl_cache.clear()
        _ssl_cache[key] = context
    return context, server_name


def _bypass_proxy(host: str, no_proxy: Any) -> bool:
    if not no_proxy:
        return False
    entries = no_proxy if isinstance(no_proxy, list | tuple) else str(no_proxy).split(",")
    host = host.strip("[]").lower()
    for raw in entries:
        entry = str(raw).strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
            continue
        entry = entry.lstrip(".")
        if host == entry or host.endswith("." + entry):
            return True
    return False


def proxy_socket(configuration: Any, server: str, timeout: float | None) -> socket.socket | None:
    """Connect through the configuration's HTTP proxy (``CONNECT``), if it has one.

    Honours ``proxy``, ``proxy_headers`` (``Proxy-Authorization``...) and ``no_proxy``.

    Args:
        configuration: the client's ``Configuration``.
        server: the server URL.
        timeout: connect timeout in seconds.

    Returns:
        A connected, non-blocking socket tunnelled to the server, or ``None`` when no
        proxy applies.

    Raises:
        OSError: the proxy could not be reached or refused the tunnel.
    """
    proxy = getattr(configuration, "proxy", None)
    parts = urlsplit(server)
    host = parts.hostname or ""
    if not proxy or _bypass_proxy(host, getattr(configuration, "no_proxy", None)):
        return None
    proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if proxy_parts.scheme not in ("http", ""):
        raise ValueError(f"kstream.compat supports http:// proxies only, not {proxy!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    proxy_headers = dict(getattr(configuration, "proxy_headers", None) or {})
    if proxy_parts.username and not any(k.lower() == "proxy-authorization"
                                        for k in proxy_headers):
        credentials = f"{unquote(proxy_parts.username)}:{unquote(proxy_parts.password or '')}"
        proxy_headers["Proxy-Authorization"] = \
            "Basic " + base64.b64encode(credentials.encode()).decode()
    lines += [f"{key}: {value}" for key, value in proxy_headers.items()]
    sock = socket.create_connection((proxy_parts.hostname or "", proxy_parts.port or 80),
                                    timeout=timeout)
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the proxy closed the connection during CONNECT")
            response += chunk
            if len(response) > 65536:
                raise ConnectionError("the proxy's CONNECT response is too long")
        head, _, rest = response.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or fields[1] != "200":
            raise ConnectionError(f"the proxy refused the tunnel: {status_line!r}")
        if rest:
            raise ConnectionError("the proxy sent bytes after its CONNECT response")
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


# --------------------------------------------------------------------------- sessions


async def open_process(request: ExecRequest, configuration: Any, *,
                       connect_timeout: float | None = None,
                       buffer_limit: int | None = None) -> kstream.asyncio.RemoteProcess:
    """Open the exec or attach session of ``request`` with :mod:`kstream.asyncio`.

    Args:
        request: what the official client built.
        configuration: its ``Configuration`` (TLS, proxy).
        connect_timeout: bound on connect + TLS + upgrade.
        buffer_limit: unread bytes per output channel before reading stops.

    Returns:
        The running process.
    """
    import asyncio

    context, server_hostname = tls_settings(configuration, request.server)
    sock = None
    if getattr(configuration, "proxy", None):
        sock = await asyncio.to_thread(proxy_socket, configuration, request.server,
                                       connect_timeout)
    options: dict[str, Any] = {
        "container": request.container, "stdin": request.stdin, "stdout": request.stdout,
        "stderr": request.stderr, "tty": request.tty, "headers": request.headers,
        "ssl": context, "server_hostname": server_hostname,
        "connect_timeout": connect_timeout, "sock": sock,
    }
    if buffer_limit is not None:
        options["buffer_limit"] = buffer_limit
    if request.protocols is not None:
        options["transport"] = "websocket"
        options["protocols"] = list(request.protocols)
    try:
        if request.subresource == "exec":
            return await kstream.asyncio.open_exec(
                request.server, request.namespace, request.pod, list(request.command),
                **options)
        return await kstream.asyncio.open_attach(
            request.server, request.namespace, request.pod, **options)
    except BaseException:
        if sock is not None:
            sock.close()
        raise


def status_document(result: kstream.Exited | kstream.Failed | None,
                    command: Sequence[str] = ()) -> bytes:
    """The error-channel document (``metav1.Status`` JSON) for a parsed exit result.

    Args:
        result: the session's result.
        command: the argv (named in the message of a non-zero exit code).

    Returns:
        The JSON the server sends on channel 3; ``b""`` when there was none.
    """
    if result is None:
        return b""
    if isinstance(result, kstream.Exited):
        status = (kstream.Status.success() if result.code == 0
                  else kstream.Status.exit_code(result.code, command))
    else:
        status = kstream.Status(status="Failure", message=result.message,
                                reason=result.reason, code=result.code,
                                causes=result.causes, has_details=bool(result.causes))
    return status.encode()


def split_timeout(timeout: Any) -> tuple[float | None, float | None]:
    """Read an official ``_request_timeout``: a number, or ``(connect, read)``.

    Returns:
        ``(connect timeout, total deadline)``; ``None`` for no limit.
    """
    if timeout is None:
        return None, None
    if isinstance(timeout, Sequence) and not isinstance(timeout, str | bytes):
        connect, read = [*timeout, None, None][:2]
        return (float(connect) if connect else None), (float(read) if read else None)
    value = float(timeout)
    return (value or None), (value or None)
