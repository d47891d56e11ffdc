"""Local proxies for tests (test-only helper): HTTP CONNECT, the same behind TLS, SOCKS5.

:class:`Proxies` runs the three on 127.0.0.1 in a thread of its own. They resolve
``kube.test`` (:data:`KUBE_TEST`) to 127.0.0.1 and nothing else does, so a client that
reached a server named so went through one of them. Used by ``test_proxy.py`` (exec) and
``test_portforward_proxy.py`` (port-forward).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl
import struct
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from kstream._app import certs
from kstream.testing import FakeNode

__all__ = ["KUBE_TEST", "Proxies", "clean_env", "kube_test_kubeconfig", "proxy_tls",
           "write_certificate"]

KUBE_TEST = "kube.test"
_Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
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
        # asyncio holds a connection's handler task weakly; a relay whose two sockets are
        # both idle is then garbage, and its "Task was destroyed but it is pending" would be
        # logged by whichever test's thread the collector runs in. Held here until done,
        # with every socket a handler has open, which shutting down closes.
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
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
            "http": await asyncio.start_server(self._held(self._http), "127.0.0.1", 0),
            "https": await asyncio.start_server(self._held(self._http), "127.0.0.1", 0,
                                                ssl=self._tls),
            "socks5": await asyncio.start_server(self._held(self._socks5), "127.0.0.1", 0),
        }
        for name, server in servers.items():
            self.ports[name] = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        for server in servers.values():
            server.close()
        # Relays still running end here, before the loop closes: their sockets are closed,
        # so each reads EOF and returns. Not cancelled: on CPython 3.11 a cancelled
        # handler makes start_server's done-callback log an InvalidStateError.
        for writer in self._writers:
            writer.close()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=10)

    def _held(self, handler: _Handler) -> _Handler:
        """``handler``, its task kept in :attr:`_handlers` while it runs."""
        async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._handlers.add(task)
            self._writers.add(writer)
            try:
                with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                    await handler(reader, writer)
            finally:
                self._handlers.discard(task)
                self._writers.discard(writer)
        return held

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

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter) -> None:
        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
                if sink.can_write_eof():
                    sink.write_eof()

        self._writers.add(up_writer)
        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            up_writer.close()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for client processes, without proxies or stray kube settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
    env.update(extra)
    return env


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """``(chain, key)`` of a certificate for 127.0.0.1, localhost and ``kube.test``.

    Made by ``kstream serve``'s own CA maker; a node and the TLS proxy both present it.
    """
    generated = certs.generate(KUBE_TEST)
    assert {"127.0.0.1", "localhost", KUBE_TEST} <= set(generated.names)
    chain, key = directory / "chain.pem", directory / "key.pem"
    chain.write_bytes(generated.cert_pem)
    key.write_bytes(generated.key_pem)
    return chain, key


def proxy_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """The TLS proxy's server context, presenting ``certificate``."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(*certificate)
    return tls


def kube_test_kubeconfig(node: FakeNode, tmp_path: Path, **cluster: str) -> str:
    """The node's kubeconfig, naming the server ``kube.test`` and with ``cluster`` added."""
    config = json.loads(Path(node.kubeconfig).read_text())
    entry = config["clusters"][0]["cluster"]
    entry["server"] = entry["server"].replace("127.0.0.1", KUBE_TEST)
    entry.update(cluster)
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    return str(path)
