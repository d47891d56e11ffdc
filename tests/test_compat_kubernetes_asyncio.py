"""kstream.compat.kubernetes_asyncio against kubernetes_asyncio, both on ``kstream serve``.

kubernetes_asyncio's documented exec example (``examples/pod_exec.py``) runs with the
original ``WsApiClient`` and with the compat one (only the import differs), then the
``_preload_content=False`` WebSocket use, exit codes, binary output and the helpers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio import config as ka_config
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.stream import WsApiClient as OriginalWsApiClient

import kstream
from kstream._app import certs
from kstream.compat import kubernetes_asyncio as compat
from kstream.testing import FakeNode

T = TypeVar("T")
BOTH = pytest.mark.parametrize("ws_api_client", ["original", "compat"])


@pytest.fixture(scope="module")
def server() -> Iterator[FakeNode]:
    """One fake node over TLS for the module (its CA pinned in the kubeconfig)."""
    with FakeNode().in_thread() as running:
        yield running


def _another_ca(directory: Path) -> str:
    """The file of a CA that did not sign the node's certificate."""
    path = directory / "another-ca.crt"
    path.write_bytes(certs.generate("127.0.0.1").ca_pem)
    return str(path)


def _run(server: FakeNode, body: Callable[[client.Configuration], Awaitable[T]]) -> T:
    async def main() -> T:
        configuration = client.Configuration()
        await ka_config.load_kube_config(config_file=server.kubeconfig,
                                         client_configuration=configuration)
        try:
            return await body(configuration)
        finally:
            # The original's aiohttp session closes its TLS transports a moment after
            # close() returns (aiohttp's "graceful shutdown" advice): let them, or the
            # collector reports them as unclosed in a later test.
            await asyncio.sleep(0.25)

    return asyncio.run(asyncio.wait_for(main(), 60))


def _ws_class(name: str) -> Any:
    return OriginalWsApiClient if name == "original" else compat.WsApiClient


@BOTH
def test_example_pod_exec(server: FakeNode, ws_api_client: str) -> None:
    WsApiClient = _ws_class(ws_api_client)  # the example's name

    async def main(configuration: client.Configuration) -> Any:
        pod, namespace = "demo", "default"
        async with WsApiClient(configuration=configuration) as ws_api:
            v1_ws: Any = client.CoreV1Api(api_client=ws_api)

            exec_command = [
                "/bin/sh",
                "-c",
                "echo This message goes to stderr >&2; echo This message goes to stdout",
            ]

            resp = v1_ws.connect_get_namespaced_pod_exec(
                pod,
                namespace,
                command=exec_command,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
            )

            ret = await resp
            return ret

    ret = _run(server, main)
    assert isinstance(ret, str)
    assert sorted(ret.splitlines()) == ["This message goes to stderr",
                                        "This message goes to stdout"]


@BOTH
def test_websocket_use_and_exit_code(server: FakeNode, ws_api_client: str) -> None:
    WsApiClient = _ws_class(ws_api_client)

    async def main(configuration: client.Configuration) -> tuple[bytes, bytes, int]:
        async with WsApiClient(configuration=configuration) as ws_api:
            v1_ws: Any = client.CoreV1Api(api_client=ws_api)
            resp = await v1_ws.connect_get_namespaced_pod_exec(
                "demo", "default", command=["/bin/sh"], stderr=True, stdin=True,
                stdout=True, tty=False, _preload_content=False)
            stdout, stderr, error = b"", b"", b""
            async with resp as ws:
                await ws.send_bytes(b"\x00" + b"echo out; echo err >&2\n")
                await ws.send_bytes(b"\x00" + b"exit 3\n")
                async for message in ws:
                    channel, data = message.data[0], message.data[1:]
                    if channel == 1:
                        stdout += data
                    elif channel == 2:
                        stderr += data
                    elif channel == 3:
                        error += data
            return stdout, stderr, WsApiClient.parse_error_data(error)

    assert _run(server, main) == (b"out\n", b"err\n", 3)


@BOTH
def test_missing_binary(server: FakeNode, ws_api_client: str) -> None:
    WsApiClient = _ws_class(ws_api_client)

    async def main(configuration: client.Configuration) -> bytes:
        async with WsApiClient(configuration=configuration) as ws_api:
            v1_ws: Any = client.CoreV1Api(api_client=ws_api)
            resp = await v1_ws.connect_get_namespaced_pod_exec(
                "demo", "default", command=["kstream-no-such-binary"], stderr=True,
                stdin=False, stdout=True, tty=False, _preload_content=False)
            error = b""
            async with resp as ws:
                async for message in ws:
                    if message.data[0] == 3:
                        error += message.data[1:]
            return error

    error = _run(server, main)
    assert json.loads(error)["reason"] == "InternalError"
    if ws_api_client == "original":
        with pytest.raises(ValueError):  # int("<the message>"), as python#1840
            OriginalWsApiClient.parse_error_data(error)
    else:
        with pytest.raises(kstream.RemoteCommandError, match="executable file not found"):
            compat.WsApiClient.parse_error_data(error)


def test_stream_helper(server: FakeNode) -> None:
    async def main(configuration: client.Configuration) -> None:
        async with client.ApiClient(configuration) as api_client:  # a plain ApiClient
            api: Any = client.CoreV1Api(api_client)
            out = await compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                                      command=["echo", "plain"], stdout=True, stderr=True)
            assert out == "plain\n"
            payload = bytes(range(256)) * 1024
            binary = await compat.stream(
                api.connect_get_namespaced_pod_exec, "demo", "default",
                command=["python3", "-c",
                         "import sys; sys.stdout.buffer.write(bytes(range(256)) * 1024)"],
                stdout=True, binary=True)
            assert binary == payload
            ws = await compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                                     command=["tr", "a-z", "A-Z"], stdin=True, stdout=True,
                                     _preload_content=False)
            async with ws:
                assert ws.protocol == "v5.channel.k8s.io"
                await ws.send_bytes(b"\x00loud\n")
                await ws.send_bytes(b"\xff\x00")  # v5 CLOSE of stdin
                assert await ws.receive_bytes(timeout=10) == b"\x01LOUD\n"
                assert (await ws.receive_bytes(timeout=10))[:1] == b"\x03"
                assert (await ws.receive(timeout=10)).type.name == "CLOSE"
                assert ws.closed
                assert ws.returncode == 0
            with pytest.raises(NotImplementedError, match="port-forward"):
                await compat.stream(api.connect_get_namespaced_pod_portforward, "demo",
                                    "default", ports="80")
            with pytest.raises(ApiException) as caught:
                await compat.stream(api.connect_get_namespaced_pod_exec, "nopod", "default",
                                    command=["true"], stdout=True)
            assert caught.value.status == 404

    _run(server, main)


def test_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "_classes", {})
    for name in [m for m in sys.modules if m.split(".")[0] == "kubernetes_asyncio"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "kubernetes_asyncio", None)
    with pytest.raises(ModuleNotFoundError, match="pip install kubernetes_asyncio"):
        _ = compat.WsApiClient


def test_wrong_ca(server: FakeNode, tmp_path: Path) -> None:
    async def main(configuration: client.Configuration) -> None:
        configuration.ssl_ca_cert = _another_ca(tmp_path)
        async with compat.WsApiClient(configuration=configuration) as ws_api:
            v1_ws: Any = client.CoreV1Api(api_client=ws_api)
            with pytest.raises(ApiException, match="CERTIFICATE_VERIFY_FAILED"):
                await v1_ws.connect_get_namespaced_pod_exec("demo", "default",
                                                            command=["true"], stdout=True)

    _run(server, main)


@BOTH
def test_tty(server: FakeNode, ws_api_client: str) -> None:
    WsApiClient = _ws_class(ws_api_client)

    async def main(configuration: client.Configuration) -> Any:
        async with WsApiClient(configuration=configuration) as ws_api:
            v1_ws: Any = client.CoreV1Api(api_client=ws_api)
            return await v1_ws.connect_get_namespaced_pod_exec(
                "demo", "default", command=["sh", "-c", "test -t 1 && echo terminal"],
                stderr=False, stdin=True, stdout=True, tty=True)

    assert _run(server, main) == "terminal\r\n"
