"""kstream.compat.kubernetes against the official client, both on ``kstream serve``.

The documented exec examples of kubernetes-client/python (``examples/pod_exec.py``,
``examples/exec.py``) run unchanged but for the import of ``stream``, once through the
original and once through the compat layer, and must give the same results. Then the
cases where the original crashes or loses data, which the compat layer reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import getpass
import json
import select
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream as original_stream
from official_client import kubeconfig_configuration
from websocket import WebSocketConnectionClosedException

import kstream
import kstream.asyncio
from kstream._app import certs
from kstream.compat import kubernetes as compat
from kstream.compat._common import parse_request, require
from kstream.testing import FakeNode

Stream = Callable[..., Any]


def original(*args: Any, **kwargs: Any) -> Any:
    """The original ``stream()``; a preloaded call leaves its socket to the collector."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        result = original_stream(*args, **kwargs)
        gc.collect()
    return result


BOTH = pytest.mark.parametrize("stream", [original, compat.stream],
                               ids=["original", "compat"])


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


def _configuration(server: FakeNode) -> k8s_client.Configuration:
    return kubeconfig_configuration(server.kubeconfig)


@pytest.fixture(scope="module")
def api(server: FakeNode) -> Iterator[k8s_client.CoreV1Api]:
    """A CoreV1Api configured from the kubeconfig ``kstream serve`` wrote."""
    api_client = k8s_client.ApiClient(_configuration(server))
    yield k8s_client.CoreV1Api(api_client)
    api_client.close()  # type: ignore[no-untyped-call]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every test ends with no kstream.compat thread left."""
    yield
    gc.collect()
    for thread in threading.enumerate():
        if thread.name.startswith("kstream-compat"):
            thread.join(5)
            assert not thread.is_alive(), f"leaked {thread.name}"


def _close(response: Any) -> None:
    response.close()
    sock = getattr(response, "sock", None)
    if sock is not None:  # the original's socket stays open once the server closed first
        sock.shutdown()


# --------------------------------------------------------------------------- the examples


@BOTH
def test_example_preloaded(api: k8s_client.CoreV1Api, stream: Stream) -> None:
    exec_command = [
        '/bin/sh',
        '-c',
        'echo This message goes to stderr >&2; echo This message goes to stdout']
    resp = stream(api.connect_get_namespaced_pod_exec, "demo", 'default',
                  command=exec_command,
                  stderr=True, stdin=False,
                  stdout=True, tty=False)
    assert isinstance(resp, str)
    assert sorted(resp.splitlines()) == ["This message goes to stderr",
                                         "This message goes to stdout"]


@BOTH
def test_example_interactive(api: k8s_client.CoreV1Api, stream: Stream) -> None:
    printed: list[str] = []
    exec_command = ['/bin/sh']
    resp = stream(api.connect_get_namespaced_pod_exec,
                  "demo",
                  'default',
                  command=exec_command,
                  stderr=True, stdin=True,
                  stdout=True, tty=False,
                  _preload_content=False)
    commands = [
        "echo This message goes to stdout",
        "echo \"This message goes to stderr\" >&2",
    ]

    while resp.is_open():
        resp.update(timeout=1)
        if resp.peek_stdout():
            printed.append("STDOUT: %s" % resp.read_stdout())  # noqa: UP031
        if resp.peek_stderr():
            printed.append("STDERR: %s" % resp.read_stderr())  # noqa: UP031
        if commands:
            c = commands.pop(0)
            resp.write_stdin(c + "\n")
        else:
            break

    resp.write_stdin("date\n")
    sdate = resp.readline_stdout(timeout=3)
    resp.write_stdin("whoami\n")
    user = resp.readline_stdout(timeout=3)
    resp.close()

    assert printed == ["STDOUT: This message goes to stdout\n",
                       "STDERR: This message goes to stderr\n"]
    assert len(sdate) > 10 and "\n" not in sdate
    assert user == getpass.getuser()


@BOTH
def test_run_forever_and_returncode(api: k8s_client.CoreV1Api, stream: Stream) -> None:
    resp = stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                  command=["sh", "-c", "echo out; echo err >&2; exit 3"],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    try:
        resp.run_forever(timeout=30)
        assert not resp.is_open()
        assert resp.read_stdout(timeout=0) == "out\n"
        assert resp.read_stderr(timeout=0) == "err\n"
        assert resp.returncode == 3
        assert resp.returncode == 3  # idempotent (python-base#271)
    finally:
        _close(resp)


@BOTH
def test_error_channel_document(api: k8s_client.CoreV1Api, stream: Stream) -> None:
    resp = stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                  command=["sh", "-c", "exit 5"],
                  stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    try:
        resp.run_forever(timeout=30)
        status = json.loads(resp.read_channel(3))
    finally:
        _close(resp)
    assert status["status"] == "Failure"
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"][0] == {"reason": "ExitCode", "message": "5"}


@BOTH
def test_stdin_eof_over_v5(api: k8s_client.CoreV1Api, stream: Stream) -> None:
    resp = stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                  command=["tr", "a-z", "A-Z"],
                  stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    try:
        assert resp.subprotocol == "v5.channel.k8s.io"
        resp.write_stdin("shout\n")
        resp.close_channel(0)
        resp.run_forever(timeout=30)
        assert resp.read_stdout() == "SHOUT\n"
        assert resp.returncode == 0
    finally:
        _close(resp)


@BOTH
def test_tty(api: k8s_client.CoreV1Api, stream: Stream) -> None:
    command = ["sh", "-c", "test -t 0 && test -t 1 && echo terminal"]
    out = stream(api.connect_get_namespaced_pod_exec, "demo", "default", command=command,
                 stderr=False, stdin=True, stdout=True, tty=True)
    assert out == "terminal\r\n"
    command = ["sh", "-c", "read x; stty size"]
    resp = stream(api.connect_post_namespaced_pod_exec, "demo", "default", command=command,
                  stderr=False, stdin=True, stdout=True, tty=True, _preload_content=False)
    try:
        resp.write_channel(4, json.dumps({"Height": 33, "Width": 111}))
        resp.write_stdin("go\n")
        resp.run_forever(timeout=30)
        assert resp.returncode == 0
        assert resp.read_stdout().split("\r\n")[-2] == "33 111"
    finally:
        _close(resp)


_BINARY = bytes(range(256)) * 4096  # 1 MiB, every byte value, many frames
_WRITE_BINARY = ["python3", "-c",
                 "import sys; sys.stdout.buffer.write(bytes(range(256)) * 4096)"]


@BOTH
def test_binary_output(api: k8s_client.CoreV1Api, stream: Stream) -> None:
    out = stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                 command=_WRITE_BINARY, stderr=True, stdin=False, stdout=True, tty=False,
                 binary=True)
    assert out == _BINARY
    resp = stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                  command=_WRITE_BINARY, stderr=True, stdin=False, stdout=True, tty=False,
                  binary=True, _preload_content=False)
    try:
        resp.run_forever(timeout=30)
        assert resp.read_stdout() == _BINARY
        assert resp.returncode == 0
    finally:
        _close(resp)


@BOTH
def test_timeouts(api: k8s_client.CoreV1Api, stream: Stream) -> None:
    # As the original: a preloaded call returns what arrived when _request_timeout expires.
    out = stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                 command=["sh", "-c", "echo early; sleep 30"], stderr=True, stdin=False,
                 stdout=True, tty=False, _request_timeout=1)
    assert out == "early\n"
    resp = stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                  command=["sleep", "30"], stderr=True, stdin=False, stdout=True, tty=False,
                  _preload_content=False)
    try:
        assert resp.read_stdout(timeout=0.2) == ""
        assert resp.readline_stdout(timeout=0.2) == ""
        resp.run_forever(timeout=0.2)
        assert resp.is_open()
        assert resp.returncode is None
    finally:
        _close(resp)


# --------------------------------------------------------------- better than the original


def test_text_split_across_frames(api: k8s_client.CoreV1Api) -> None:
    # The original decodes each frame on its own ("replace"): a character split between
    # two frames becomes U+FFFD (python-base#88). The compat layer decodes incrementally.
    command = ["python3", "-c", "import sys; sys.stdout.write('a' + 'é' * 100000)"]
    expected = "a" + "é" * 100000
    out = compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                        command=command, stderr=True, stdin=False, stdout=True, tty=False)
    assert out == expected
    text = original(api.connect_get_namespaced_pod_exec, "demo", "default",
                    command=command, stderr=True, stdin=False, stdout=True, tty=False)
    assert len(text) >= len(expected)


def test_missing_binary_1840(api: k8s_client.CoreV1Api) -> None:
    kwargs: dict[str, Any] = {"command": ["kstream-no-such-binary"], "stderr": True,
                              "stdin": False, "stdout": True, "tty": False}
    resp = original_stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                           _preload_content=False, **kwargs)
    try:
        resp.run_forever(timeout=30)
        with pytest.raises(ValueError):  # the original: int("<the message>")
            _ = resp.returncode
    finally:
        _close(resp)
    resp = compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                         _preload_content=False, **kwargs)
    try:
        resp.run_forever(timeout=30)
        with pytest.raises(kstream.RemoteCommandError, match="executable file not found"):
            _ = resp.returncode
        status = json.loads(resp.read_channel(3))
        assert (status["status"], status["reason"]) == ("Failure", "InternalError")
    finally:
        resp.close()
    # Preloaded, the original returns "" as if the command had run; compat says why not.
    assert original(api.connect_get_namespaced_pod_exec, "demo", "default", **kwargs) == ""
    with pytest.raises(ApiException) as caught:
        compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default", **kwargs)
    assert isinstance(caught.value.__cause__, kstream.RemoteCommandError)


@contextlib.contextmanager
def _crashing_server() -> Iterator[str]:
    """A server that accepts an exec and drops the connection with no status."""

    async def handler(request: kstream.asyncio.ServerRequest) -> None:
        session = await request.accept()
        session.write_stdout(b"partial\n")
        await session.drain()
        await asyncio.sleep(0.2)
        await session.abort()

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        server = await kstream.asyncio.start_server(handler)
        holder["server"] = server
        holder["stop"] = asyncio.Event()
        ready.set()
        await holder["stop"].wait()
        server.close()
        await server.wait_closed()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),))
    thread.start()
    try:
        assert ready.wait(10)
        yield holder["server"].url
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
        loop.close()


def test_no_status_2156() -> None:
    with _crashing_server() as url:
        configuration = k8s_client.Configuration(host=url)
        with k8s_client.ApiClient(configuration) as api_client:
            api = k8s_client.CoreV1Api(api_client)
            kwargs: dict[str, Any] = {"command": ["true"], "stderr": True, "stdin": False,
                                      "stdout": True, "tty": False,
                                      "_preload_content": False}
            resp = original_stream(api.connect_get_namespaced_pod_exec, "p", "default",
                                   **kwargs)
            try:
                # The original fails on the lost connection, or on the empty error
                # channel (yaml.safe_load("") is None) if it saw a close first.
                with pytest.raises((TypeError, WebSocketConnectionClosedException)):
                    resp.run_forever(timeout=30)
                    _ = resp.returncode
            finally:
                _close(resp)
            resp = compat.stream(api.connect_get_namespaced_pod_exec, "p", "default",
                                 **kwargs)
            try:
                resp.run_forever(timeout=30)
                assert resp.read_stdout() == "partial\n"
                with pytest.raises(kstream.ConnectionLostError):
                    _ = resp.returncode
            finally:
                resp.close()


def test_rejected_upgrade_has_its_status(api: k8s_client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        compat.stream(api.connect_get_namespaced_pod_exec, "nopod", "default",
                      command=["true"], stderr=True, stdin=False, stdout=True, tty=False)
    assert caught.value.status == 404  # the original: status 0, the text in the reason
    assert 'not found' in str(caught.value.body)
    assert isinstance(caught.value.__cause__, kstream.UpgradeRejectedError)


def test_close_channel_on_v4_says_so(api: k8s_client.CoreV1Api) -> None:
    resp = compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                         command=["cat"], stderr=True, stdin=True, stdout=True, tty=False,
                         _preload_content=False,
                         _headers={"sec-websocket-protocol": "v4.channel.k8s.io"})
    try:
        assert resp.subprotocol == "v4.channel.k8s.io"
        with pytest.raises(kstream.LocalProtocolError, match="half-close"):
            resp.close_channel(0)  # the original silently does nothing
        resp.write_stdin("echoed\n")
        assert resp.readline_stdout(timeout=10) == "echoed"
    finally:
        resp.close()
        resp.close()  # idempotent
    with pytest.raises(BrokenPipeError):
        resp.write_stdin("late")


def test_readline_after_the_end(api: k8s_client.CoreV1Api) -> None:
    resp = compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                         command=["printf", "one\\ntwo\\nthree"], stderr=True, stdin=False,
                         stdout=True, tty=False, _preload_content=False)
    try:
        resp.run_forever(timeout=30)
        # The original returns "" for all three: its loop stops once the socket closed.
        assert [resp.readline_stdout(timeout=1) for _ in range(4)] == \
            ["one", "two", "three", ""]
    finally:
        resp.close()


def test_attach(api: k8s_client.CoreV1Api) -> None:
    resp = compat.stream(api.connect_get_namespaced_pod_attach, "demo", "default",
                         stdin=True, stdout=True, stderr=True, tty=False,
                         _preload_content=False)
    try:
        resp.write_stdin("attached\n")
        assert resp.readline_stdout(timeout=10) == "attached"
    finally:
        resp.close()


def test_stream_does_not_port_forward(api: k8s_client.CoreV1Api) -> None:
    # As with the original, port-forward is portforward() (tests/test_compat_portforward.py).
    with pytest.raises(NotImplementedError, match=r"port-forward.*compat\.kubernetes\.portforward"):
        compat.stream(api.connect_get_namespaced_pod_portforward, "demo", "default",
                      ports="8080")


# --------------------------------------------------------------------------- configuration


def test_refreshed_token_and_no_patching(server: FakeNode) -> None:
    configuration = _configuration(server)
    good = configuration.api_key["BearerToken"]
    configuration.api_key["BearerToken"] = "Bearer expired"
    api_client = k8s_client.ApiClient(configuration)
    seen: list[bool] = []

    def refresh(config: Any) -> None:
        # Called while the request is built: the shared ApiClient is not patched
        # (python#928: the original swaps api_client.call_api meanwhile).
        seen.append("call_api" in vars(api_client))
        config.api_key["BearerToken"] = good

    configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]
    api = k8s_client.CoreV1Api(api_client)
    try:
        out = compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                            command=["echo", "refreshed"], stderr=True, stdin=False,
                            stdout=True, tty=False)
        assert out == "refreshed\n"
        assert seen == [False]
        pod = api.read_namespaced_pod("demo", "default")
        assert pod.metadata is not None and pod.metadata.name == "demo"
    finally:
        api_client.close()  # type: ignore[no-untyped-call]


def test_tls_settings(server: FakeNode, tmp_path: Path) -> None:
    configuration = _configuration(server)
    configuration.ssl_ca_cert = _another_ca(tmp_path)  # another CA
    configuration.ca_cert_data = None
    configuration.refresh_api_key_hook = None  # the loader's hook would reload the file
    with k8s_client.ApiClient(configuration) as api_client:
        api = k8s_client.CoreV1Api(api_client)
        with pytest.raises(ApiException) as caught:
            compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                          command=["true"], stdout=True)
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
        configuration.verify_ssl = False
        assert compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                             command=["echo", "unverified"], stdout=True) == "unverified\n"


@contextlib.contextmanager
def _connect_proxy() -> Iterator[tuple[str, list[bytes]]]:
    """A minimal HTTP CONNECT proxy on a thread; yields its URL and the requests seen."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []
    sockets: list[socket.socket] = []

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                sockets.append(client)
                head = b""
                while b"\r\n\r\n" not in head:
                    head += client.recv(4096)
                seen.append(head)
                host, port = head.split(b" ")[1].decode().rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                sockets.append(upstream)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
                threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", seen
    finally:
        listener.close()
        thread.join(5)
        for sock in sockets:
            sock.close()


def test_proxy(server: FakeNode) -> None:
    configuration = _configuration(server)
    with _connect_proxy() as (proxy, seen):
        configuration.proxy = proxy
        configuration.proxy_headers = {"proxy-authorization": "Basic dXNlcjpwYXNz"}
        with k8s_client.ApiClient(configuration) as api_client:
            api = k8s_client.CoreV1Api(api_client)
            out = compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                                command=["echo", "proxied"], stdout=True)
    assert out == "proxied\n"
    assert len(seen) == 1
    assert seen[0].startswith(b"CONNECT 127.0.0.1:")
    assert b"proxy-authorization: Basic dXNlcjpwYXNz" in seen[0]


def test_request_is_the_one_the_client_built(api: k8s_client.CoreV1Api) -> None:
    captured = compat._capture(
        api.connect_get_namespaced_pod_exec,
        ("demo", "default"),
        {"command": ["sh", "-c", "echo a b"], "container": "main", "stdin": False,
         "stdout": True, "stderr": True, "tty": False, "_preload_content": False})
    request, configuration, timeout = captured
    assert request.url == (
        configuration.host + "/api/v1/namespaces/default/pods/demo/exec?command=sh&"
        "command=-c&command=echo%20a%20b&container=main&stderr=true&stdin=false&"
        "stdout=true&tty=false")
    assert request.command == ("sh", "-c", "echo a b")
    assert (request.stdin, request.stdout, request.stderr, request.tty) == \
        (False, True, True, False)
    assert request.headers == (("Authorization", configuration.api_key["BearerToken"]),)
    assert timeout is None
    with pytest.raises(ValueError, match="pods/exec and pods/attach"):
        parse_request("https://h/api/v1/namespaces/n/pods/p/log", {})


def test_dropped_wsclient_stops_its_thread(api: k8s_client.CoreV1Api) -> None:
    resp = compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                         command=["sleep", "30"], stdout=True, _preload_content=False)
    assert resp.is_open()
    del resp  # the autouse fixture checks that the thread ended


def test_missing_client_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "kubernetes_asyncio", None)
    with pytest.raises(ModuleNotFoundError, match="pip install kubernetes_asyncio"):
        require("kubernetes_asyncio", "kstream.compat.kubernetes_asyncio")


def test_called_from_a_running_event_loop(api: k8s_client.CoreV1Api) -> None:
    # The session runs on a private loop: the caller's own loop is left alone.
    async def main() -> Any:
        return compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                             command=["echo", "inside"], stdout=True)

    assert asyncio.run(main()) == "inside\n"


def test_select_on_sock(api: k8s_client.CoreV1Api) -> None:
    # The original's exec_tty.py example select()s on resp.sock.sock, then peeks.
    resp = compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                         command=["sh", "-c", "sleep 0.3; echo ready; sleep 0.3"],
                         stdout=True, _preload_content=False)
    try:
        assert select.select([resp.sock.sock], [], [], 0)[0] == []
        assert select.select([resp.sock.sock], [], [], 10)[0] == [resp.sock.sock]
        assert resp.peek_stdout() == "ready\n"
        assert select.select([resp.sock.sock], [], [], 0)[0] == []
        assert select.select([resp.sock.sock], [], [], 10)[0] == [resp.sock.sock]
        assert resp.peek_channel(3) == '{"metadata":{},"status":"Success"}'
        assert not resp.sock.connected
    finally:
        resp.sock.shutdown()


def test_request_auth(server: FakeNode) -> None:
    configuration = _configuration(server)
    token = configuration.api_key.pop("BearerToken")
    configuration.refresh_api_key_hook = None  # the loader's hook would put it back
    with k8s_client.ApiClient(configuration) as api_client:
        api = k8s_client.CoreV1Api(api_client)
        with pytest.raises(ApiException) as caught:
            compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                          command=["true"], stdout=True)
        assert caught.value.status == 401
        auth = {"in": "header", "type": "api_key", "key": "authorization", "value": token}
        assert compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                             command=["echo", "authorized"], stdout=True,
                             _request_auth=auth) == "authorized\n"


def test_concurrent_rest_and_stream_calls_928(api: k8s_client.CoreV1Api) -> None:
    # One ApiClient shared by threads: streams and plain REST calls at the same time.
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for _ in range(3):
                out = compat.stream(api.connect_get_namespaced_pod_exec, "demo", "default",
                                    command=["echo", str(index)], stdout=True)
                assert out == f"{index}\n"
                pod = api.read_namespaced_pod("demo", "default")
                assert pod.metadata is not None and pod.metadata.name == "demo"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
