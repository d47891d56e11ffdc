"""Proxies: client-go's choice of proxy, the CONNECT exchange, and exec through real proxies.

The choice (``proxy-url``, ``HTTPS_PROXY``/``HTTP_PROXY``, ``NO_PROXY``) and
:class:`ConnectExchange` are checked as functions. Then both runtimes exec through an
HTTP CONNECT proxy, the same proxy behind TLS, and a SOCKS5 proxy, all on 127.0.0.1 (a
small asyncio server in a thread, :class:`Proxies`), into a :class:`FakeNode` (the engine
of ``kstream serve``) named ``kube.test``: a name only the proxies resolve, so an exec
that succeeds went through one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import kstream.asyncio
import kstream.trio
from kstream._app import certs
from kstream._runtime.proxy import (
    ConnectExchange,
    ProxyError,
    ProxyURL,
    choose_proxy,
    parse_proxy_url,
    proxy_from_environment,
)
from kstream.kubeconfig import ConfigOverrides, KubeconfigError, load_config
from kstream.testing import FakeNode

# --------------------------------------------------------------------------- choosing


def test_parse_proxy_url() -> None:
    assert parse_proxy_url("http://p:3128") == ProxyURL("http", "p", 3128)
    assert parse_proxy_url("https://p") == ProxyURL("https", "p", 443)
    assert parse_proxy_url("socks5://u%40x:p%3Aw@[::1]") == ProxyURL(
        "socks5", "::1", 1080, "u@x", "p:w")
    for bad in ("ftp://p:21", "socks4://p", "p:3128", "http://", "http://p:99999"):
        with pytest.raises(ValueError, match="proxy URL"):
            parse_proxy_url(bad)


def test_redacted_and_authorization() -> None:
    proxy = parse_proxy_url("http://alice:s3cret@p:8080")
    assert proxy.redacted() == "http://alice:xxxxx@p:8080"
    assert "s3cret" not in proxy.redacted()
    assert proxy.authorization() == "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert parse_proxy_url("http://p").authorization() is None


def _env_proxy(server: str, **environ: str) -> str | None:
    proxy = choose_proxy(server, None, environ)
    return None if proxy is None else f"{proxy.scheme}://{proxy.host}:{proxy.port}"


def test_environment_proxy_follows_the_server_scheme() -> None:
    env = {"HTTPS_PROXY": "http://s:1", "HTTP_PROXY": "http://h:2"}
    assert _env_proxy("https://kube.example:6443", **env) == "http://s:1"
    assert _env_proxy("http://kube.example:8080", **env) == "http://h:2"
    assert _env_proxy("https://kube.example", http_proxy="http://h:2") is None
    # Lower-case forms; the upper-case one wins when both are set and non-empty.
    assert _env_proxy("https://k", https_proxy="http://low:1") == "http://low:1"
    assert _env_proxy("https://k", HTTPS_PROXY="http://up:1",
                      https_proxy="http://low:1") == "http://up:1"
    assert _env_proxy("https://k", HTTPS_PROXY="", https_proxy="http://low:1") == "http://low:1"
    # Without a known scheme, the value is read as http://value (Go's parseProxy).
    assert _env_proxy("https://k", HTTPS_PROXY="corp:3128") == "http://corp:3128"
    assert _env_proxy("https://k", HTTPS_PROXY="socks5://s") == "socks5://s:1080"
    assert _env_proxy("https://k") is None


def test_environment_proxy_is_never_used_for_loopback() -> None:
    for server in ("https://localhost:6443", "https://127.0.0.1:6443", "https://127.9.9.9",
                   "https://[::1]:6443", "https://LOCALHOST"):
        assert _env_proxy(server, HTTPS_PROXY="http://p:1") is None, server
    assert _env_proxy("https://localhost.example", HTTPS_PROXY="http://p:1") == "http://p:1"


@pytest.mark.parametrize(("server", "no_proxy", "bypass"), [
    ("https://kube.example.com", "*", True),
    ("https://kube.example.com", "example.com", True),
    ("https://example.com", "example.com", True),
    ("https://example.com", ".example.com", False),
    ("https://kube.example.com", ".example.com", True),
    ("https://kube.example.com", "*.example.com", True),
    ("https://example.com", "*.example.com", False),
    ("https://notexample.com", "example.com", False),
    ("https://Kube.Example.COM", " other.org , EXAMPLE.com ", True),
    ("https://kube.example.com:6443", "example.com:6443", True),
    ("https://kube.example.com:6443", "example.com:443", False),
    ("https://kube.example.com", "example.com:443", True),
    ("https://10.1.2.3:6443", "10.0.0.0/8", True),
    ("https://11.1.2.3:6443", "10.0.0.0/8", False),
    ("https://10.1.2.3:6443", "10.1.2.3", True),
    ("https://10.1.2.3:6443", "10.1.2.3:6443", True),
    ("https://10.1.2.3:6443", "10.1.2.3:443", False),
    ("https://[2001:db8::1]:6443", "2001:db8::/32", True),
    ("https://[2001:db8::1]:6443", "[2001:db8::1]:6443", True),
    ("https://[2001:db8::1]:6443", "2001:db8::1", True),
    ("https://kube.example.com", "10.0.0.0/8,, :80", False),
    ("https://kube.example.com", "10.0.0.0/99,[::1,kube.example.com:https", False),
    ("https://10.1.2.3", "10.0.0.0/99, 10.1.2.3", True),
    ("https://[::1]", "[::1]", True),  # loopback: never proxied anyway
])
def test_no_proxy(server: str, no_proxy: str, bypass: bool) -> None:
    proxy = _env_proxy(server, HTTPS_PROXY="http://p:1", NO_PROXY=no_proxy)
    assert (proxy is None) == bypass
    proxy = _env_proxy(server, HTTPS_PROXY="http://p:1", no_proxy=no_proxy)
    assert (proxy is None) == bypass


def test_environment_values_go_ignores() -> None:
    # Values that parse neither as given nor with http:// are ignored, as in Go.
    assert _env_proxy("https://k", HTTPS_PROXY="http://[bad") is None
    assert _env_proxy("https://k", HTTPS_PROXY="http://p:port") is None
    # A server URL without a host, or with a bad port, has no proxy.
    assert choose_proxy("https://", None, {"HTTPS_PROXY": "http://p:1"}) is None
    assert choose_proxy("https://k:port", None, {"HTTPS_PROXY": "http://p:1"}) is None
    assert choose_proxy("https://[k", None, {"HTTPS_PROXY": "http://p:1"}) is None


def test_kubeconfig_proxy_url_wins_over_the_environment() -> None:
    environ = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"}
    chosen = choose_proxy("https://127.0.0.1:6443", "socks5://cfg:9", environ)
    assert chosen == ProxyURL("socks5", "cfg", 9)
    with pytest.raises(ValueError, match="unsupported scheme"):
        choose_proxy("https://k", "ftp://cfg", {})


def test_http_proxy_is_refused_in_a_cgi_environment() -> None:
    with pytest.raises(ValueError, match="CGI"):
        proxy_from_environment("http", "k", 80, {"HTTP_PROXY": "http://p:1",
                                                 "REQUEST_METHOD": "GET"})
    # HTTPS_PROXY is still honoured there, as in Go.
    assert proxy_from_environment("https", "k", 443, {"HTTPS_PROXY": "http://p:1",
                                                      "REQUEST_METHOD": "GET"}) is not None


# --------------------------------------------------------------------------- CONNECT

_OK = b"HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n"


def _exchange(proxy: str = "http://p:3128", host: str = "kube.test",
              port: int = 6443) -> ConnectExchange:
    return ConnectExchange(parse_proxy_url(proxy), host, port)


def test_connect_request() -> None:
    assert _exchange().request() == (b"CONNECT kube.test:6443 HTTP/1.1\r\n"
                                     b"Host: kube.test:6443\r\n\r\n")
    with_user = _exchange("http://u:pw@p", host="::1", port=443).request()
    assert with_user.startswith(b"CONNECT [::1]:443 HTTP/1.1\r\n")
    auth = base64.b64encode(b"u:pw")
    assert b"Proxy-Authorization: Basic " + auth + b"\r\n" in with_user


@pytest.mark.parametrize("split", ["whole", "bytewise"])
def test_connect_answer(split: str) -> None:
    exchange = _exchange()
    chunks = [_OK] if split == "whole" else [_OK[i:i + 1] for i in range(len(_OK))]
    results = [exchange.receive_data(chunk) for chunk in chunks]
    assert results[-1] is True and not any(results[:-1])


@given(st.integers(min_value=1, max_value=len(_OK) - 1))
def test_connect_answer_any_split(cut: int) -> None:
    exchange = _exchange()
    assert exchange.receive_data(_OK[:cut]) is False
    assert exchange.receive_data(_OK[cut:]) is True


def test_connect_answer_after_an_informational_response() -> None:
    assert _exchange().receive_data(b"HTTP/1.1 100 Continue\r\n\r\n" + _OK) is True


@pytest.mark.parametrize(("answer", "message"), [
    (b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
     "CONNECT request to http://p:3128 returned response: 407 Proxy Authentication Required"),
    (b"HTTP/1.1 502 \r\n\r\n", "returned response: 502"),
    (_OK + b"early", "sent data before the server spoke"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "proxy http://p:3128"),
])
def test_connect_refusals(answer: bytes, message: str) -> None:
    with pytest.raises(ProxyError, match=message):
        _exchange().receive_data(answer)


def test_connect_proxy_closes() -> None:
    exchange = _exchange()
    assert exchange.receive_data(b"HTTP/1.1 200 OK\r\n") is False
    with pytest.raises(ProxyError, match="closed the connection"):
        exchange.receive_data(b"")


def test_connect_answer_head_is_bounded() -> None:
    exchange = _exchange()
    with pytest.raises(ProxyError):
        exchange.receive_data(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 10_000)


def test_proxy_error_messages_never_show_a_password() -> None:
    exchange = _exchange("http://u:hunter2@p:1")
    with pytest.raises(ProxyError) as caught:
        exchange.receive_data(b"HTTP/1.1 403 Forbidden\r\n\r\n")
    assert "hunter2" not in str(caught.value)
    assert isinstance(caught.value, ConnectionError)


# --------------------------------------------------------------------------- real proxies

#: The server's name as the client sees it; only the proxies resolve it (to 127.0.0.1).
KUBE_TEST = "kube.test"
_USER, _PASSWORD = "alice", "pw:secret"


class Proxies:
    """An HTTP CONNECT proxy, the same behind TLS, and a SOCKS5 proxy, in one thread.

    Each requires ``alice``/``pw:secret`` when ``auth`` is set, resolves ``kube.test``
    (and only it, besides IP addresses) to 127.0.0.1, and records each target asked for.
    """

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.targets: list[str] = []
        self.ports: dict[str, int] = {}
        self._tls = tls
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def url(self, scheme: str, *, auth: bool = True) -> str:
        """The URL of the proxy for ``scheme`` (``http``, ``https``, ``socks5``)."""
        user = f"{_USER}:{_PASSWORD.replace(':', '%3A')}@" if auth else ""
        return f"{scheme}://{user}127.0.0.1:{self.ports[scheme]}"

    def __enter__(self) -> Proxies:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        servers = {
            "http": await asyncio.start_server(self._http, "127.0.0.1", 0),
            "https": await asyncio.start_server(self._http, "127.0.0.1", 0, ssl=self._tls),
            "socks5": await asyncio.start_server(self._socks5, "127.0.0.1", 0),
        }
        for name, server in servers.items():
            self.ports[name] = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        for server in servers.values():
            server.close()
        # Relays still running end here, before the loop closes.
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    @staticmethod
    def _resolve(host: str) -> str:
        return "127.0.0.1" if host == KUBE_TEST else host

    #: A server name for which the proxies close the connection instead of answering.
    CLOSE = "close.test"

    async def _http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.closing(writer):
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ")
            headers = dict(line.split(": ", 1) for line in header_lines if line)
            wanted = "Basic " + base64.b64encode(f"{_USER}:{_PASSWORD}".encode()).decode()
            given_auth = {k.lower(): v for k, v in headers.items()}.get("proxy-authorization")
            if method != "CONNECT" or given_auth not in (None, wanted):
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            if host == self.CLOSE:
                return
            self.targets.append(f"{'https' if writer.get_extra_info('sslcontext') else 'http'}"
                                f" {target} auth={given_auth is not None}")
            upstream = await asyncio.open_connection(self._resolve(host.strip("[]")),
                                                     int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await self._relay(reader, writer, *upstream)

    async def _socks5(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.closing(writer):
            _version, count = await reader.readexactly(2)
            methods = await reader.readexactly(count)
            auth = 2 in methods
            writer.write(b"\x05\x02" if auth else b"\x05\x00")
            if auth:
                _, size = await reader.readexactly(2)
                user = await reader.readexactly(size)
                (size,) = await reader.readexactly(1)
                password = await reader.readexactly(size)
                ok = (user.decode(), password.decode()) == (_USER, _PASSWORD)
                writer.write(b"\x01\x00" if ok else b"\x01\x01")
                if not ok:
                    return
            _, _command, _, kind = await reader.readexactly(4)
            if kind == 3:
                (size,) = await reader.readexactly(1)
                host = (await reader.readexactly(size)).decode()
            else:
                import ipaddress
                raw = await reader.readexactly(4 if kind == 1 else 16)
                host = str(ipaddress.ip_address(raw))
            (port,) = struct.unpack("!H", await reader.readexactly(2))
            self.targets.append(f"socks5 {host}:{port} auth={auth}")
            upstream = await asyncio.open_connection(self._resolve(host), port)
            writer.write(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
            await self._relay(reader, writer, *upstream)

    @staticmethod
    async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter) -> None:
        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
                if sink.can_write_eof():
                    sink.write_eof()

        with contextlib.closing(up_writer):
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for client processes, without proxies or stray kube settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(chain, key)`` of a certificate for 127.0.0.1, localhost and ``kube.test``.

    Made by ``kstream serve``'s own CA maker; the node and the TLS proxy both present it.
    """
    generated = certs.generate(KUBE_TEST)
    assert {"127.0.0.1", "localhost", KUBE_TEST} <= set(generated.names)
    directory = tmp_path_factory.mktemp("certs")
    chain, key = directory / "chain.pem", directory / "key.pem"
    chain.write_bytes(generated.cert_pem)
    key.write_bytes(generated.key_pem)
    return chain, key


@pytest.fixture(scope="module")
def node(certificate: tuple[Path, Path]) -> Iterator[FakeNode]:
    """A TLS node whose certificate also names ``kube.test``."""
    cert, key = certificate
    with FakeNode(tls_cert=cert, tls_key=key).in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def proxies(certificate: tuple[Path, Path]) -> Iterator[Proxies]:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(*certificate)
    with Proxies(tls) as running:
        yield running


def _kubeconfig(node: FakeNode, tmp_path: Path, **cluster: str) -> str:
    """The node's kubeconfig, naming the server ``kube.test`` and with ``cluster`` added."""
    config = json.loads(Path(node.kubeconfig).read_text())
    entry = config["clusters"][0]["cluster"]
    entry["server"] = entry["server"].replace("127.0.0.1", KUBE_TEST)
    entry.update(cluster)
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    return str(path)


def _exec(runtime: str, connection: Any, transport: str = "auto") -> Any:
    arguments: dict[str, Any] = dict(
        input=b"through the proxy\n", headers=connection.headers, ssl=connection.ssl_context,
        proxy=connection.proxy, transport=transport, timeout=30, check=True)
    if runtime == "asyncio":
        return asyncio.run(kstream.asyncio.run(connection.server, connection.namespace, "demo",
                                               ["tr", "a-z", "A-Z"], **arguments))

    async def main() -> Any:
        return await kstream.trio.run(connection.server, connection.namespace, "demo",
                                      ["tr", "a-z", "A-Z"], **arguments)

    return trio.run(main)


RUNTIMES = ("asyncio", "trio")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("scheme", ["http", "https", "socks5"])
def test_exec_through_the_kubeconfig_proxy_url(runtime: str, scheme: str, node: FakeNode,
                                               proxies: Proxies, tmp_path: Path) -> None:
    path = _kubeconfig(node, tmp_path, **{"proxy-url": proxies.url(scheme)})
    connection = load_config(path, environ={})
    assert connection.proxy == proxies.url(scheme)
    before = len(proxies.targets)
    done = _exec(runtime, connection)
    assert done.stdout == b"THROUGH THE PROXY\n"
    port = connection.server.rsplit(":", 1)[1]
    assert proxies.targets[before:] == [f"{scheme} {KUBE_TEST}:{port} auth=True"]
    assert node.sessions[-1].argv == ("tr", "a-z", "A-Z")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_spdy_through_a_proxy_without_credentials(runtime: str, node: FakeNode,
                                                  proxies: Proxies, tmp_path: Path) -> None:
    path = _kubeconfig(node, tmp_path, **{"proxy-url": proxies.url("http", auth=False)})
    done = _exec(runtime, load_config(path, environ={}), transport="spdy")
    assert done.stdout == b"THROUGH THE PROXY\n"
    assert proxies.targets[-1].endswith("auth=False")
    assert node.sessions[-1].transport == "spdy"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_https_proxy_from_the_environment(runtime: str, node: FakeNode,
                                          proxies: Proxies, tmp_path: Path) -> None:
    # An https proxy is verified with the cluster's CA, as client-go does.
    connection = load_config(_kubeconfig(node, tmp_path), environ={
        "HTTPS_PROXY": proxies.url("https"), "NO_PROXY": "example.com,10.0.0.0/8"})
    assert connection.proxy == proxies.url("https")
    assert _exec(runtime, connection).returncode == 0


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_no_proxy_connects_directly(runtime: str, node: FakeNode, proxies: Proxies,
                                    tmp_path: Path) -> None:
    # kube.test resolves nowhere but in the proxies: the direct attempt fails to resolve.
    connection = load_config(_kubeconfig(node, tmp_path), environ={
        "HTTPS_PROXY": proxies.url("http"), "NO_PROXY": ".test"})
    assert connection.proxy is None
    with pytest.raises(OSError) as caught:
        _exec(runtime, connection)
    assert not isinstance(caught.value, ProxyError)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("scheme", ["http", "socks5"])
def test_proxy_refusing_the_credentials(runtime: str, scheme: str, node: FakeNode,
                                        proxies: Proxies, tmp_path: Path) -> None:
    wrong = proxies.url(scheme).replace("alice", "mallory")
    connection = load_config(_kubeconfig(node, tmp_path, **{"proxy-url": wrong}),
                             environ={})
    with pytest.raises(ProxyError) as caught:
        _exec(runtime, connection)
    assert "secret" not in str(caught.value)


@pytest.fixture(scope="module")
def plain_node() -> Iterator[FakeNode]:
    """A plain-HTTP node (as ``kstream serve --plain-http``): the token is in its URL."""
    with FakeNode(tls=False).in_thread() as running:
        yield running


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_http_server_through_http_proxy(runtime: str, plain_node: FakeNode,
                                        proxies: Proxies, tmp_path: Path) -> None:
    # HTTP_PROXY (not HTTPS_PROXY) for an http:// server; the token rides in the path.
    environ = {"HTTP_PROXY": proxies.url("http"), "HTTPS_PROXY": "http://127.0.0.1:9"}
    connection = load_config(_kubeconfig(plain_node, tmp_path), environ=environ)
    assert connection.server.startswith(f"http://{KUBE_TEST}:")
    assert connection.proxy == proxies.url("http") and connection.headers == ()
    assert _exec(runtime, connection).stdout == b"THROUGH THE PROXY\n"
    assert proxies.targets[-1].startswith(f"http {KUBE_TEST}:")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_https_proxy_is_verified(runtime: str, plain_node: FakeNode, proxies: Proxies,
                                 tmp_path: Path) -> None:
    # An http:// server has no CA of its own: the proxy's certificate (from a local CA) is
    # checked against the system's trust store, and refused, as client-go refuses it.
    environ = {"HTTP_PROXY": proxies.url("https")}
    connection = load_config(_kubeconfig(plain_node, tmp_path), environ=environ)
    with pytest.raises(ProxyError, match=r"TLS: .*certificate verify failed") as caught:
        _exec(runtime, connection)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_proxy_closing_during_connect(runtime: str, scheme: str, node: FakeNode,
                                      proxies: Proxies, tmp_path: Path) -> None:
    path = _kubeconfig(node, tmp_path, **{"proxy-url": proxies.url(scheme)})
    connection = load_config(path, environ={}, overrides=ConfigOverrides(
        server=f"https://{Proxies.CLOSE}:6443"))
    with pytest.raises(ProxyError, match="closed the connection"):
        _exec(runtime, connection)


def test_invalid_proxy_url_in_the_kubeconfig(node: FakeNode, tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match=r"proxy-url: .*unsupported scheme 'ftp'"):
        load_config(_kubeconfig(node, tmp_path, **{"proxy-url": "ftp://p:21"}), environ={})


def test_the_cli_honours_https_proxy(node: FakeNode, proxies: Proxies,
                                     tmp_path: Path) -> None:
    env = clean_env(HTTPS_PROXY=proxies.url("http"))
    completed = subprocess.run(
        [sys.executable, "-m", "kstream", "exec", "--kubeconfig", _kubeconfig(node, tmp_path),
         "-i", "demo", "--", "tr", "a-z", "A-Z"],
        input=b"cli\n", capture_output=True, env=env, timeout=60, check=False)
    assert (completed.returncode, completed.stdout) == (0, b"CLI\n"), completed.stderr
    assert proxies.targets[-1].startswith(f"http {KUBE_TEST}:")


def test_the_cli_reports_a_refused_proxy_in_one_line(node: FakeNode, proxies: Proxies,
                                                     tmp_path: Path) -> None:
    wrong = proxies.url("http").replace("alice", "mallory")
    completed = subprocess.run(
        [sys.executable, "-m", "kstream", "exec", "--kubeconfig",
         _kubeconfig(node, tmp_path, **{"proxy-url": wrong}), "demo", "--", "true"],
        capture_output=True, env=clean_env(), timeout=60, check=False)
    assert completed.returncode != 0
    assert b"Traceback" not in completed.stderr
    assert b"407" in completed.stderr and b"secret" not in completed.stderr


def test_overrides_keep_the_proxy(node: FakeNode, proxies: Proxies,
                                  tmp_path: Path) -> None:
    path = _kubeconfig(node, tmp_path, **{"proxy-url": proxies.url("socks5")})
    connection = load_config(path, environ={}, overrides=ConfigOverrides(namespace="x"))
    assert connection.proxy == proxies.url("socks5")


@given(st.sampled_from(["http", "https", "socks5"]),
       st.sampled_from(["p", "10.0.0.1", "::1", "proxy.corp"]),
       st.integers(min_value=1, max_value=65535),
       st.none() | st.text(min_size=1, max_size=8),
       st.none() | st.text(max_size=8))
def test_proxy_url_round_trip(scheme: str, host: str, port: int, user: str | None,
                              password: str | None) -> None:
    proxy = ProxyURL(scheme, host, port, user, None if user is None else password)
    assert parse_proxy_url(proxy.url()) == proxy
    if proxy.password:
        hidden = ":" + quote(proxy.password, safe="") + "@"
        assert proxy.redacted() == proxy.url().replace(hidden, ":xxxxx@", 1)
