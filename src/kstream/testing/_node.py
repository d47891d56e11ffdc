"""``FakeNode``: the engine of ``kstream serve`` in the test's own process.

The engine is asyncio code (its pods are asyncio subprocesses, pseudo-terminals watched
with ``loop.add_reader``). On asyncio the node runs in the caller's loop. On trio, and
for synchronous clients (:meth:`FakeNode.in_thread`), it runs its own asyncio loop on a
thread of its own: porting the sandbox to trio would duplicate it for no test's benefit,
and a client talks to the node over real TCP either way, so which loop serves it is
invisible to the client under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from .._app.podports import check_ports
from .._app.serve import DEFAULT_MAIN_COMMAND, PodSpec, ServerHandle, start
from ._faults import Faults
from ._hooks import NodeHooks
from ._pods import Handler, PodDeclaration
from ._records import SessionRecord

__all__ = ["FakeNode"]

#: Seconds the node's thread has to start or to stop.
_THREAD_TIMEOUT = 30.0
_NO_FAULTS = Faults()


class FakeNode:
    """An in-process Kubernetes node: apiserver discovery, pods, exec and attach.

    Use it as ``async with FakeNode() as node:`` on asyncio or trio, or
    ``with FakeNode().in_thread() as node:`` from synchronous code. Declare pods with
    :meth:`add_pod` (a node without pods serves ``demo``, whose execs run local
    processes); point a client at :attr:`kubeconfig`, or at :attr:`server` with
    :attr:`headers` and :attr:`ssl`.

    Args:
        faults: faults for every pod without its own (see :class:`Faults`).
        tls: serve HTTPS with a fresh local CA (the default) rather than plain HTTP.
        token: the bearer token; a random one by default.
        tls_cert: serve HTTPS with this PEM certificate (chain) instead of a fresh CA,
            with ``tls_key``; :attr:`certificate` is then this chain.
        tls_key: the PEM private key of ``tls_cert`` (may be the same file).
        log: called with the engine's line per session (``kstream serve``'s log).

    Attributes:
        faults: the node-wide faults, read at each upgrade: assign to change them.
        sessions: a :class:`SessionRecord` per accepted session, in order.
    """

    def __init__(self, *, faults: Faults | None = None, tls: bool = True,
                 token: str | None = None, tls_cert: str | os.PathLike[str] | None = None,
                 tls_key: str | os.PathLike[str] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.faults = faults or _NO_FAULTS
        self.sessions: list[SessionRecord] = []
        self._tls = tls or tls_cert is not None
        self._token = token
        self._tls_cert = None if tls_cert is None else os.fspath(tls_cert)
        self._tls_key = None if tls_key is None else os.fspath(tls_key)
        self._log = log
        self._pods: dict[tuple[str, str], PodDeclaration] = {}
        self._handle: ServerHandle | None = None
        self._directory: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    # ----------------------------------------------------------------- pods

    def add_pod(self, name: str, *, command: Sequence[str] | None = None,
                handler: Handler | None = None, namespace: str = "default",
                faults: Faults | None = None,
                ports: Mapping[str, int] | None = None) -> None:
        """Declare a pod (before or while the node runs).

        Args:
            name: the pod's name.
            command: its main process, the one ``attach`` joins, as ``kstream serve
                --pod`` takes it (``cat`` by default). Execs in a pod without a handler
                run their argv as local processes (no shell).
            handler: an async function run for each exec in the pod instead of a process
                (see :class:`PodExec`); it returns the exit code or raises.
            namespace: the pod's namespace.
            faults: this pod's faults, instead of the node's.
            ports: its named container ports, name to number (``{"http": 8080}``), in
                ``spec.containers[0].ports`` of the pod's document: ``kubectl
                port-forward POD http`` then forwards to ``127.0.0.1:8080``.

        Raises:
            ValueError: a port name or number the apiserver would refuse (a name is at
                most 15 of a-z, 0-9 and ``-``, with a letter; a number is 1..65535).
        """
        declaration = PodDeclaration(name, namespace,
                                     tuple(command) if command is not None else None,
                                     handler, faults, check_ports(ports or {}))
        self._pods[(namespace, name)] = declaration
        handle = self._handle
        if handle is not None:
            spec = _spec(declaration)
            self._call_in_loop(lambda: handle.app.add_pod(spec))

    def set_faults(self, pod: str, faults: Faults | None, *,
                   namespace: str = "default") -> None:
        """Give a declared pod its own faults (``None``: the node's again)."""
        declaration = self._pods[(namespace, pod)]
        self._pods[(namespace, pod)] = PodDeclaration(
            declaration.name, declaration.namespace, declaration.command,
            declaration.handler, faults, declaration.ports)

    def _faults_for(self, namespace: str, name: str) -> Faults:
        declaration = self._pods.get((namespace, name))
        if declaration is not None and declaration.faults is not None:
            return declaration.faults
        return self.faults

    def _handler_for(self, namespace: str, name: str) -> Handler | None:
        declaration = self._pods.get((namespace, name))
        return declaration.handler if declaration is not None else None

    def _call_in_loop(self, call: Any) -> None:
        loop = self._loop
        if self._thread is None or loop is None:
            call()
            return
        done = threading.Event()

        def run() -> None:
            try:
                call()
            finally:
                done.set()

        loop.call_soon_threadsafe(run)
        done.wait(_THREAD_TIMEOUT)

    def wait_for_session(self, index: int, timeout: float) -> SessionRecord:
        """Wait for session number ``index`` (0-based) from synchronous code.

        For a node ``in_thread`` (the ``kstream_node`` fixture) whose client runs in
        another process, such as kubectl.

        Raises:
            TimeoutError: it did not come within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while len(self.sessions) <= index:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"session #{index} did not come within {timeout} s")
            time.sleep(0.01)
        return self.sessions[index]

    # ----------------------------------------------------------------- addresses

    def _running(self) -> ServerHandle:
        if self._handle is None:
            raise RuntimeError("the node is not running (use it with async with, or "
                               "in_thread())")
        return self._handle

    @property
    def server(self) -> str:
        """The base URL of the node's API (over plain HTTP it carries the token)."""
        return self._running().client_url

    @property
    def token(self) -> str:
        """The bearer token every request needs."""
        return self._running().token

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """The auth headers for kstream's API (``headers=`` of ``open_exec`` and co)."""
        return (("Authorization", f"Bearer {self.token}"),)

    @property
    def certificate(self) -> bytes | None:
        """The PEM certificate of the node's CA (``None`` over plain HTTP)."""
        return self._running().certificate

    @property
    def ca_file(self) -> str | None:
        """The path of :attr:`certificate` as a file (``None`` over plain HTTP)."""
        if self.certificate is None:
            return None
        return os.path.join(self._scratch(), "ca.crt")

    @property
    def ssl(self) -> ssl.SSLContext | None:
        """A client TLS context trusting the node (``ssl=`` of kstream's calls)."""
        certificate = self.certificate
        if certificate is None:
            return None
        context = ssl.create_default_context(cadata=certificate.decode("ascii"))
        context.set_alpn_protocols(["http/1.1"])
        return context

    @property
    def kubeconfig(self) -> str:
        """The path of a kubeconfig for the node (context, cluster and user ``kstream``,
        namespace ``default``): kubectl, the ``kubernetes`` clients and kstream read it
        as it is."""
        self._running()
        return os.path.join(self._scratch(), "kubeconfig")

    def _scratch(self) -> str:
        assert self._directory is not None
        return self._directory

    # ----------------------------------------------------------------- running

    async def _start(self) -> None:
        specs = [_spec(declaration) for declaration in self._pods.values()]
        hooks = NodeHooks(self._faults_for, self._handler_for, self.sessions, self._log)
        self._directory = tempfile.mkdtemp(prefix="kstream-fakenode-")
        try:
            handle = await start(token=self._token, plain_http=not self._tls, pods=specs,
                                 tls_cert=self._tls_cert, tls_key=self._tls_key,
                                 log=self._log, hooks=hooks)
        except BaseException:
            shutil.rmtree(self._directory, ignore_errors=True)
            raise
        self._handle = handle
        self._loop = asyncio.get_running_loop()
        handle.write_kubeconfig(os.path.join(self._directory, "kubeconfig"))
        if handle.certificate is not None:
            with open(os.path.join(self._directory, "ca.crt"), "wb") as file:
                file.write(handle.certificate)

    async def _close(self) -> None:
        handle, self._handle = self._handle, None
        try:
            if handle is not None:
                await handle.close()
        finally:
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)

    async def __aenter__(self) -> Self:
        if _in_asyncio():
            await self._start()
            return self
        import trio

        await trio.to_thread.run_sync(self._start_thread)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._thread is None:
            await self._close()
            return
        import trio

        await trio.to_thread.run_sync(self._stop_thread)

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[FakeNode]:
        """Run the node on a thread of its own, for synchronous clients.

        Yields:
            The running node.
        """
        self._start_thread()
        try:
            yield self
        finally:
            self._stop_thread()

    def _start_thread(self) -> None:
        if self._thread is not None or self._handle is not None:
            raise RuntimeError("the node is already running")
        started = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._stop = asyncio.Event()
            try:
                await self._start()
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            try:
                await self._stop.wait()
            finally:
                await self._close()

        thread = threading.Thread(target=asyncio.run, args=(main(),),
                                  name="kstream-fakenode", daemon=True)
        self._thread = thread
        thread.start()
        if not started.wait(_THREAD_TIMEOUT):
            raise RuntimeError("the fake node did not start")
        if failure:
            thread.join(_THREAD_TIMEOUT)
            self._thread = None
            raise failure[0]

    def _stop_thread(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop ended already
                loop.call_soon_threadsafe(stop.set)
        thread.join(_THREAD_TIMEOUT)
        self._thread = None
        self._loop = None
        if thread.is_alive():
            raise RuntimeError("the fake node's thread did not stop")


def _spec(declaration: PodDeclaration) -> PodSpec:
    return PodSpec(declaration.name, declaration.command or DEFAULT_MAIN_COMMAND,
                   declaration.namespace, declaration.ports)


def _in_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
