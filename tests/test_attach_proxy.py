"""``kstream attach -t`` reads the pod through the proxy the attach goes through.

kubectl reads the pod before ``attach -t``: a container started without a terminal gets
none (``Unable to use a TTY - container main did not allocate one``). The local proxies
of ``proxies.py`` resolve ``kube.test``, the name the kubeconfig gives a
:class:`FakeNode`; nothing else resolves it, so that line is printed only if the pod was
read through the proxy.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxies import (
    KUBE_TEST,
    Proxies,
    clean_env,
    kube_test_kubeconfig,
    proxy_tls,
    write_certificate,
)

from kstream.kubeconfig import load_config
from kstream.testing import FakeNode

_TIMEOUT = 30
_NO_TTY = b"error: Unable to use a TTY - container main did not allocate one\r\n"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_certificate(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def node(certificate: tuple[Path, Path]) -> Iterator[FakeNode]:
    """A TLS node whose certificate also names ``kube.test``; ``demo`` runs ``cat``."""
    cert, key = certificate
    server = FakeNode(tls_cert=cert, tls_key=key)
    server.add_pod("demo")
    with server.in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def proxies(certificate: tuple[Path, Path]) -> Iterator[Proxies]:
    with Proxies(proxy_tls(certificate)) as running:
        yield running


def _controlling_terminal() -> None:
    # The child's stdin (the pty) is its terminal: attach -t needs one to try a TTY.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _read_until(master: int, marker: bytes, seen: bytearray) -> bool:
    deadline = time.monotonic() + _TIMEOUT
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([master], [], [], remaining)[0]:
            return False
        try:
            chunk = os.read(master, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        seen += chunk
    return True


@pytest.mark.parametrize("scheme", ["http", "https", "socks5"])
def test_attach_tty_reads_the_pod_through_the_proxy(scheme: str, node: FakeNode,
                                                    proxies: Proxies,
                                                    tmp_path: Path) -> None:
    kubeconfig = kube_test_kubeconfig(node, tmp_path, **{"proxy-url": proxies.url(scheme)})
    before, first = len(proxies.targets), len(node.sessions)
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "kstream", "attach", "--kubeconfig", kubeconfig, "-i", "-t",
         "demo"], stdin=slave, stdout=slave, stderr=slave, env=clean_env(),
        preexec_fn=_controlling_terminal)
    os.close(slave)
    seen = bytearray()
    try:
        assert _read_until(master, _NO_TTY, seen), seen
        record = node.wait_for_session(first, _TIMEOUT)  # then attached without a TTY
        assert (record.subresource, record.tty) == ("attach", False)
        port = load_config(kubeconfig, environ={}).server.rsplit(":", 1)[1]
        # Two tunnels, both to kube.test: the pod's GET, then the attach.
        assert proxies.targets[before:] == [f"{scheme} {KUBE_TEST}:{port} auth=True"] * 2
        assert b"Traceback" not in seen
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(master)



@pytest.mark.parametrize("pod,proxy", [("missing", "http"), ("demo", "unreachable"),
                                       ("demo", "http"), ("demo", None)])
def test_container_tty_is_none_when_the_pod_cannot_be_read(
        pod: str, proxy: str | None, node: FakeNode, proxies: Proxies,
        tmp_path: Path) -> None:
    from kstream._app.podget import container_tty
    from kstream._runtime.client import ExecArguments, exec_request

    # No proxy: kube.test resolves nowhere. "unreachable": a closed port on 127.0.0.1.
    url = {"http": proxies.url("http"), "unreachable": "http://127.0.0.1:9",
           None: None}[proxy]
    connection = load_config(kube_test_kubeconfig(node, tmp_path), environ={})
    arguments: ExecArguments = {
        "stdin": True, "tty": True, "stderr": False, "headers": connection.headers,
        "ssl": connection.ssl_context, "proxy": url, "connect_timeout": 10.0}
    request = exec_request(connection.server, connection.namespace, pod, None, arguments)
    found = asyncio.run(container_tty(request, None))
    if (pod, proxy) == ("demo", "http"):
        assert found == ("main", False)  # the control: read, and no terminal
        assert asyncio.run(container_tty(request, "other")) is None  # no such container
    else:
        assert found is None
