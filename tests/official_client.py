"""The official ``kubernetes`` client as a test peer of the in-process servers.

``kubernetes.stream.stream`` is a real WebSocket v5/v4 client (websocket-client
underneath). It is synchronous: tests run these helpers in a thread while the server
(:mod:`kstream.asyncio` or :mod:`kstream.trio`) runs in the event loop.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any, Protocol

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.stream import stream as k8s_stream


class Served(Protocol):
    """A running server: either adapter's ``ExecServer``."""

    @property
    def url(self) -> str:
        """``http://host:port`` to connect to."""
        ...


@contextlib.contextmanager
def core_api(server: Served) -> Iterator[k8s_client.CoreV1Api]:
    """A CoreV1Api talking to ``server`` (no credentials)."""
    configuration = k8s_client.Configuration(host=server.url)
    with k8s_client.ApiClient(configuration) as api_client:
        yield k8s_client.CoreV1Api(api_client)


def kubeconfig_configuration(kubeconfig: str) -> k8s_client.Configuration:
    """A client configuration loaded from the ``kubeconfig`` file, as users load theirs."""
    configuration = k8s_client.Configuration()
    k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=kubeconfig, client_configuration=configuration)
    return configuration


@contextlib.contextmanager
def kubeconfig_api(kubeconfig: str) -> Iterator[k8s_client.CoreV1Api]:
    """A CoreV1Api configured from the ``kubeconfig`` file (a FakeNode's, serve's)."""
    api_client = k8s_client.ApiClient(kubeconfig_configuration(kubeconfig))
    yield k8s_client.CoreV1Api(api_client)
    api_client.close()  # type: ignore[no-untyped-call]


def close_official(response: Any) -> None:
    """Close an official-client exec response and its socket."""
    # websocket-client skips closing its socket when the server closed first (it is no
    # longer "connected"); shutdown() closes it.
    response.close()
    if response.sock is not None:
        response.sock.shutdown()


def exec_with_official_client(server: Served, command: list[str],
                              stdin: bytes | None = None) -> tuple[bytes, bytes, Any, str]:
    """Run ``command`` with kubernetes.stream; return stdout, stderr, the error channel
    document and the negotiated subprotocol."""
    with core_api(server) as api:
        response = k8s_stream(api.connect_get_namespaced_pod_exec, "p", "default",
                              command=command, stderr=True, stdin=stdin is not None,
                              stdout=True, tty=False, _preload_content=False, binary=True)
    protocol = response.subprotocol or ""
    try:
        if stdin is not None:
            response.write_stdin(stdin)
            response.close_channel(0)  # v5 CLOSE: the official client's stdin EOF
        stdout = b""
        stderr = b""
        while response.is_open():
            response.update(timeout=1)
            stdout += response.read_stdout() if response.peek_stdout() else b""
            stderr += response.read_stderr() if response.peek_stderr() else b""
        stdout += response.read_stdout() if response.peek_stdout() else b""
        stderr += response.read_stderr() if response.peek_stderr() else b""
        error = response.read_channel(3)
    finally:
        close_official(response)
    document = json.loads(error) if error else None
    return stdout, stderr, document, protocol
