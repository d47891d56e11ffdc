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
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from proxies import (
    KUBE_TEST,
    Proxies,
    clean_env,
    kube_test_kubeconfig,
    proxy_tls,
    write_certificate,
)

import kstream.asyncio
import kstream.trio
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

# Proxies, KUBE_TEST and clean_env are in tests/proxies.py (shared with port-forward).


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(chain, key)`` of a certificate for 127.0.0.1, localhost and ``kube.test``."""
    return write_certificate(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def node(certificate: tuple[Path, Path]) -> Iterator[FakeNode]:
    """A TLS node whose certificate also names ``kube.test``."""
    cert, key = certificate
    with FakeNode(tls_cert=cert, tls_key=key).in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def proxies(certificate: tuple[Path, Path]) -> Iterator[Proxies]:
    with Proxies(proxy_tls(certificate)) as running:
        yield running


_kubeconfig = kube_test_kubeconfig


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
