"""Port-forward through proxies, on both runtimes, as exec goes through them.

The local proxies of ``proxies.py`` (HTTP CONNECT, the same behind TLS, SOCKS5) resolve
``kube.test``, the name the kubeconfig gives a :class:`FakeNode`; nothing else resolves
it, so a forwarded connection that echoes went through a proxy. The pod port is an echo
server on 127.0.0.1 (``pfpods.py``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from pfpods import PodServer
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
from kstream._runtime.portforward import PortForwardArguments
from kstream._runtime.proxy import ProxyError
from kstream.kubeconfig import ClusterConnection, load_config
from kstream.testing import FakeNode

RUNTIMES = ("asyncio", "trio")
_PAYLOAD = b"forwarded through the proxy\n"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_certificate(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def node(certificate: tuple[Path, Path]) -> Iterator[FakeNode]:
    cert, key = certificate
    with FakeNode(tls_cert=cert, tls_key=key).in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def proxies(certificate: tuple[Path, Path]) -> Iterator[Proxies]:
    with Proxies(proxy_tls(certificate)) as running:
        yield running


@pytest.fixture(scope="module")
def echo() -> Iterator[PodServer]:
    with PodServer("echo") as pod:
        yield pod


def _round_trip(runtime: str, connection: ClusterConnection, port: int,
                transport: str) -> tuple[bytes, str]:
    """Forward one connection to ``port``: what came back, and the transport used."""
    options: PortForwardArguments = {
        "headers": connection.headers, "ssl": connection.ssl_context,
        "proxy": connection.proxy, "transport": transport, "connect_timeout": 30.0}
    server, namespace = connection.server, connection.namespace
    if runtime == "asyncio":
        async def on_asyncio() -> tuple[bytes, str]:
            async with asyncio.timeout(60):
                session = await kstream.asyncio.open_port_forward(server, namespace, "demo",
                                                                  **options)
                async with session:
                    reader, writer = await session.open_connection(port)
                    writer.write(_PAYLOAD)
                    echoed = await reader.readexactly(len(_PAYLOAD))
                    writer.close()
                    await writer.wait_closed()
                    return echoed, session.transport

        return asyncio.run(on_asyncio())

    async def on_trio() -> tuple[bytes, str]:
        with trio.fail_after(60):
            session = await kstream.trio.open_port_forward(server, namespace, "demo",
                                                           **options)
            async with session:
                stream = await session.open_connection(port)
                await stream.send_all(_PAYLOAD)
                echoed = b""
                while len(echoed) < len(_PAYLOAD):
                    chunk = await stream.receive_some(65536)
                    assert chunk, echoed
                    echoed += chunk
                await stream.aclose()
                return echoed, session.transport

    return trio.run(on_trio)


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("scheme", ["http", "https", "socks5"])
@pytest.mark.parametrize("transport", ["auto", "spdy", "websocket"])
def test_port_forward_through_the_kubeconfig_proxy_url(
        runtime: str, scheme: str, transport: str, node: FakeNode, proxies: Proxies,
        echo: PodServer, tmp_path: Path) -> None:
    path = kube_test_kubeconfig(node, tmp_path, **{"proxy-url": proxies.url(scheme)})
    connection = load_config(path, environ={})
    before = len(proxies.targets)
    echoed, used = _round_trip(runtime, connection, echo.port, transport)
    assert echoed == _PAYLOAD
    assert used == ("tunnel" if transport == "auto" else transport)
    port = connection.server.rsplit(":", 1)[1]
    assert set(proxies.targets[before:]) == {f"{scheme} {KUBE_TEST}:{port} auth=True"}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_port_forward_honours_https_proxy_from_the_environment(
        runtime: str, node: FakeNode, proxies: Proxies, echo: PodServer,
        tmp_path: Path) -> None:
    connection = load_config(kube_test_kubeconfig(node, tmp_path), environ={
        "HTTPS_PROXY": proxies.url("https"), "NO_PROXY": "example.com"})
    assert connection.proxy == proxies.url("https")
    assert _round_trip(runtime, connection, echo.port, "auto")[0] == _PAYLOAD


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_port_forward_refused_by_the_proxy(runtime: str, node: FakeNode, proxies: Proxies,
                                           echo: PodServer, tmp_path: Path) -> None:
    wrong = proxies.url("http").replace("alice", "mallory")
    connection = load_config(kube_test_kubeconfig(node, tmp_path, **{"proxy-url": wrong}),
                             environ={})
    with pytest.raises(ProxyError) as caught:
        _round_trip(runtime, connection, echo.port, "auto")
    assert "407" in str(caught.value) and "secret" not in str(caught.value)


def test_the_cli_forwards_through_a_socks5_https_proxy(node: FakeNode, proxies: Proxies,
                                              echo: PodServer, tmp_path: Path) -> None:
    import socket

    env = clean_env(HTTPS_PROXY=proxies.url("socks5"))
    process = subprocess.Popen(
        [sys.executable, "-m", "kstream", "port-forward", "--kubeconfig",
         kube_test_kubeconfig(node, tmp_path), "--address", "127.0.0.1", "demo",
         f":{echo.port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert line.startswith("Forwarding from 127.0.0.1:"), line
        local = int(line.split(":")[1].split()[0])
        with socket.create_connection(("127.0.0.1", local), timeout=30) as sock:
            sock.sendall(_PAYLOAD)
            echoed = b""
            while len(echoed) < len(_PAYLOAD) and (chunk := sock.recv(65536)):
                echoed += chunk
        assert echoed == _PAYLOAD
        assert proxies.targets[-1].startswith(f"socks5 {KUBE_TEST}:")
    finally:
        process.send_signal(2)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert b"Traceback" not in stderr
