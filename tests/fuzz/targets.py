"""Fuzz targets: every decoder and every connection class, both roles, every transport.

A target takes the bytes a peer sends and feeds them to one parser or connection, before
and after the HTTP upgrade. The invariant is the library's error contract: bytes from a
peer either parse or raise :class:`kstream.RemoteProtocolError`; nothing else escapes,
and after the error the object still answers ``data_to_send()``.

The same targets serve three drivers:

- ``tests/test_fuzz.py`` (in ``make test``): hypothesis, a bounded number of examples of
  raw bytes, generated frames and mutations of the recorded sessions in ``corpus/``;
- ``python -m tests.fuzz`` (``make fuzz``): a coverage-guided campaign with atheris under
  a time budget, which saves any failing input to ``regressions/``;
- ``tests/test_fuzz.py`` again, which replays every saved regression, whole and one byte
  at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import kstream
from kstream import RemoteProtocolError

CORPUS = Path(__file__).parent / "corpus"
REGRESSIONS = Path(__file__).parent / "regressions"

#: WebSocket channel subprotocols, each with a recorded session (client and server bytes).
WEBSOCKET_SESSIONS = {
    "v5.channel.k8s.io": "kubectl-1.33-websocket-v5",
    "v4.channel.k8s.io": "kstream-websocket-v4",
    "v4.base64.channel.k8s.io": "kstream-websocket-v4.base64",
    "channel.k8s.io": "kstream-websocket-unversioned",
    "base64.channel.k8s.io": "kstream-websocket-base64",
}
SPDY_SESSION = "kubectl-1.27-spdy-v4"
TARGET_QUERY = "/api/v1/namespaces/default/pods/demo/exec?command=cat&stdin=true&stdout=true"
HEAD_END = b"\r\n\r\n"


class _Receiver(Protocol):
    def receive_data(self, data: bytes | bytearray | memoryview) -> object: ...

    def data_to_send(self) -> bytes: ...


def transcript(name: str, side: str) -> bytes:
    """The recorded bytes that ``side`` (``client`` or ``server``) sent in session ``name``."""
    return (CORPUS / f"{name}.{side}.bin").read_bytes()


def after_head(data: bytes) -> bytes:
    """What follows the HTTP head of a recorded transcript (the upgraded protocol)."""
    return data.split(HEAD_END, 1)[1]


def feed_all(receiver: _Receiver, chunks: Iterable[bytes]) -> None:
    """Feed chunks until the receiver raises the remote error; only that may escape."""
    try:
        for chunk in chunks:
            if chunk:
                receiver.receive_data(chunk)
    except RemoteProtocolError:
        pass
    receiver.data_to_send()  # still answerable after a failure (the reply is queued)


# --------------------------------------------------------------------------- decoders


def _status(version: int) -> Callable[[Sequence[bytes]], None]:
    def run(chunks: Sequence[bytes]) -> None:
        with contextlib.suppress(RemoteProtocolError):
            kstream.Status.parse_error_channel(b"".join(chunks), version=version)
    return run


def _resize(chunks: Sequence[bytes]) -> None:
    decoder = kstream.ResizeDecoder()
    try:
        for chunk in chunks:
            decoder.feed(chunk)
    except RemoteProtocolError:
        pass


def _ws_frames(client: bool) -> Callable[[Sequence[bytes]], None]:
    from kstream._ws.codec import FrameDecoder

    def run(chunks: Sequence[bytes]) -> None:
        decoder = FrameDecoder(client=client)
        try:
            for chunk in chunks:
                decoder.feed(chunk)
        except RemoteProtocolError:
            pass
    return run


def _ws_channel_message(chunks: Sequence[bytes]) -> None:
    from kstream._ws import framing

    message = b"".join(chunks)
    for decode in (framing.decode_binary, framing.decode_base64, framing.decode_close):
        with contextlib.suppress(RemoteProtocolError):
            decode(message)
    decoder = framing.Base64PayloadDecoder()
    try:
        for chunk in chunks:
            decoder.feed(chunk)
    except RemoteProtocolError:
        pass


def _spdy_frames(chunks: Sequence[bytes]) -> None:
    from kstream._spdy.frames import FrameDecoder

    decoder = FrameDecoder()
    try:
        for chunk in chunks:
            decoder.feed(chunk)
    except RemoteProtocolError:
        pass


def _spdy_header_block(chunks: Sequence[bytes]) -> None:
    from kstream._spdy import headers

    with contextlib.suppress(RemoteProtocolError):
        headers.decode_header_block(b"".join(chunks))


# --------------------------------------------------------------------------- WebSocket


def _ws_client(protocol: str, *, upgraded: bool) -> Callable[[Sequence[bytes]], None]:
    def run(chunks: Sequence[bytes]) -> None:
        client = kstream.WebSocketChannelConnection.client(
            host="127.0.0.1", target=TARGET_QUERY, protocols=[protocol])
        request = client.data_to_send()
        if upgraded:
            # A real 101 for this client's key, from our server, then the peer's bytes.
            server = kstream.WebSocketChannelConnection.server()
            server.receive_data(request)
            server.accept(protocol)
            client.receive_data(server.data_to_send())
        feed_all(client, chunks)
    return run


def _ws_server(protocol: str, *, upgraded: bool) -> Callable[[Sequence[bytes]], None]:
    head = transcript(WEBSOCKET_SESSIONS[protocol], "client").split(HEAD_END, 1)[0] + HEAD_END

    def run(chunks: Sequence[bytes]) -> None:
        server = kstream.WebSocketChannelConnection.server()
        if upgraded:
            server.receive_data(head)
            server.accept(protocol)
            server.data_to_send()
        feed_all(server, chunks)
    return run


# --------------------------------------------------------------------------- SPDY


def _spdy_session(client: bool) -> Callable[[Sequence[bytes]], None]:
    from kstream._spdy.session import SpdySession

    def run(chunks: Sequence[bytes]) -> None:
        session = SpdySession(client=client)
        if client:
            # The streams kubectl opens (error, stdin, stdout, stderr: ids 1, 3, 5, 7), so
            # the recorded SYN_REPLYs and data reach open streams.
            for kind in ("error", "stdin", "stdout", "stderr"):
                session.open_stream([("streamtype", kind)])
            session.data_to_send()
        feed_all(session, chunks)
    return run


def _spdy_exec_client(*, upgraded: bool) -> Callable[[Sequence[bytes]], None]:
    head = transcript(SPDY_SESSION, "server").split(HEAD_END, 1)[0] + HEAD_END

    def run(chunks: Sequence[bytes]) -> None:
        client = kstream.SpdyExecClient(host="127.0.0.1", target=TARGET_QUERY, stdin=True,
                                        stdout=True, stderr=True, tty=False)
        client.data_to_send()
        if upgraded:
            client.receive_data(head)  # a recorded 101: SPDY has no per-request key
        feed_all(client, chunks)
    return run


def _spdy_exec_server(*, upgraded: bool) -> Callable[[Sequence[bytes]], None]:
    head = transcript(SPDY_SESSION, "client").split(HEAD_END, 1)[0] + HEAD_END

    def run(chunks: Sequence[bytes]) -> None:
        server = kstream.SpdyExecServer()
        if upgraded:
            server.receive_data(head)
            server.accept(stdin=True, stdout=True, stderr=True, tty=False, now=0.0)
            server.data_to_send()
        feed_all(server, chunks)
    return run


# --------------------------------------------------------------------------- exec sessions


def _exec_client(transport: str) -> Callable[[Sequence[bytes]], None]:
    def run(chunks: Sequence[bytes]) -> None:
        connection: kstream.WebSocketChannelConnection | kstream.SpdyExecClient
        if transport == "websocket":
            connection = kstream.WebSocketChannelConnection.client(
                host="127.0.0.1", target=TARGET_QUERY)
        else:
            connection = kstream.SpdyExecClient(host="127.0.0.1", target=TARGET_QUERY,
                                                stdin=True, stdout=True, stderr=True,
                                                tty=False)
        session = kstream.ClientExecSession(connection)
        session.data_to_send()
        feed_all(session, chunks)
    return run


def _exec_server(kind: str, *, upgraded: bool) -> Callable[[Sequence[bytes]], None]:
    name = SPDY_SESSION if kind == "spdy" else WEBSOCKET_SESSIONS[kind]
    head = transcript(name, "client").split(HEAD_END, 1)[0] + HEAD_END

    def run(chunks: Sequence[bytes]) -> None:
        session = kstream.ServerExecSession()
        if upgraded:
            session.receive_data(head)
            session.accept(stdin=True, stdout=True, stderr=True, tty=False, now=0.0)
            session.data_to_send()
        feed_all(session, chunks)
    return run


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Target:
    """A fuzz target: what it feeds, and the recorded inputs its campaign starts from.

    Attributes:
        name: the target's name (``make fuzz TARGET=name``).
        run: feeds a peer's bytes, cut in the given chunks.
        seeds: recorded peer bytes to mutate (full transcripts, or what follows the head).
        frames: which generated frames suit it (``"websocket"``, ``"spdy"`` or ``""``).
    """

    name: str
    run: Callable[[Sequence[bytes]], None]
    seeds: tuple[bytes, ...]
    frames: str = ""


def _targets() -> dict[str, Target]:
    ws_names = list(WEBSOCKET_SESSIONS.values())
    server_bytes = [transcript(name, "server") for name in ws_names]
    client_bytes = [transcript(name, "client") for name in ws_names]
    spdy_server = transcript(SPDY_SESSION, "server")
    spdy_client = transcript(SPDY_SESSION, "client")
    statuses = (
        b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero '
        b'exit code: error executing command [sh -c exit 3], exit code 3","reason":'
        b'"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
        b'{"metadata":{},"status":"Success"}', b"")
    targets = [
        *(Target(f"status-v{v}", _status(v), statuses) for v in range(1, 6)),
        Target("resize", _resize, (b'{"Width":80,"Height":24}\n{"width":1,"height":2}',)),
        Target("websocket-frames-client", _ws_frames(True),
               tuple(after_head(data) for data in server_bytes), "websocket"),
        Target("websocket-frames-server", _ws_frames(False),
               tuple(after_head(data) for data in client_bytes), "websocket"),
        Target("websocket-channel-message", _ws_channel_message,
               (b"\x01hello", b"1aGVsbG8=", b"\xff\x00")),
        Target("spdy-frames", _spdy_frames, (after_head(spdy_server), after_head(spdy_client)),
               "spdy"),
        Target("spdy-header-block", _spdy_header_block, (b"\x00\x00\x00\x00",)),
        Target("spdy-session-client", _spdy_session(True), (after_head(spdy_server),), "spdy"),
        Target("spdy-session-server", _spdy_session(False), (after_head(spdy_client),), "spdy"),
        Target("spdy-exec-client-upgrade", _spdy_exec_client(upgraded=False), (spdy_server,)),
        Target("spdy-exec-client-upgraded", _spdy_exec_client(upgraded=True),
               (after_head(spdy_server),), "spdy"),
        Target("spdy-exec-server-upgrade", _spdy_exec_server(upgraded=False), (spdy_client,)),
        Target("spdy-exec-server-upgraded", _spdy_exec_server(upgraded=True),
               (after_head(spdy_client),), "spdy"),
        Target("exec-session-client-websocket", _exec_client("websocket"),
               tuple(server_bytes)),
        Target("exec-session-client-spdy", _exec_client("spdy"), (spdy_server,)),
        Target("exec-session-server-upgrade", _exec_server("spdy", upgraded=False),
               (*client_bytes, spdy_client)),
        Target("exec-session-server-spdy-upgraded", _exec_server("spdy", upgraded=True),
               (after_head(spdy_client),), "spdy"),
    ]
    for protocol, name in WEBSOCKET_SESSIONS.items():
        short = protocol.removesuffix(".k8s.io")
        server = transcript(name, "server")
        client = transcript(name, "client")
        targets += [
            Target(f"websocket-client-upgrade-{short}", _ws_client(protocol, upgraded=False),
                   (server,)),
            Target(f"websocket-client-upgraded-{short}", _ws_client(protocol, upgraded=True),
                   (after_head(server),), "websocket"),
            Target(f"websocket-server-upgraded-{short}", _ws_server(protocol, upgraded=True),
                   (after_head(client),), "websocket"),
            Target(f"exec-session-server-{short}-upgraded",
                   _exec_server(protocol, upgraded=True), (after_head(client),), "websocket"),
        ]
    targets.append(Target("websocket-server-upgrade", _ws_server("v5.channel.k8s.io",
                                                                 upgraded=False),
                          tuple(client_bytes)))
    return {target.name: target for target in targets}


TARGETS: dict[str, Target] = _targets()


# --------------------------------------------------------------------------- port-forward
#
# Port-forward's seeds are exchanges between kstream's own client and server of each
# transport, made in memory at import (kstream serve answers port-forward only with the
# runtime layer; tests/fuzz/record.py can add kubectl's once it does). Client targets get
# the server's bytes after a 101 made for them, and open the one request (port 8080) the
# recorded server answers; server targets get the client's bytes whole.

PF_TARGET = "/api/v1/namespaces/default/pods/demo/portforward"
PF_TUNNEL = "SPDY/3.1+portforward.k8s.io"


def _pf_exchange(client: kstream.PortForwardClientConnection,
                 server: kstream.PortForwardServerConnection) -> tuple[bytes, bytes]:
    """Run one forwarded connection through a client and a server; return the bytes each
    sent (client: whole, upgrade request included; server: whole, 101 included)."""
    sent_by_client, sent_by_server = bytearray(), bytearray()

    def client_to_server() -> None:
        data = client.data_to_send()
        sent_by_client.extend(data)
        if data:
            server.receive_data(data)

    def server_to_client() -> None:
        data = server.data_to_send()
        sent_by_server.extend(data)
        if data:
            client.receive_data(data)

    client_to_server()
    server.accept(0.0)
    server_to_client()
    request = client.open(8080)
    client.send(request, b"GET / HTTP/1.0\r\n\r\n" * 100)
    client.ping(1.0)
    client_to_server()
    server_to_client()
    client.end(request)
    client_to_server()
    server.send(0, b"HTTP/1.0 200 OK\r\n\r\n" + bytes(range(256)) * 200)
    server.fail(0, "error forwarding port 8080 to pod demo, uid : EOF")
    server.ping(2.0)
    server_to_client()
    client_to_server()
    server.close()
    server_to_client()
    client.close()
    sent_by_client.extend(client.data_to_send())
    return bytes(sent_by_client), bytes(sent_by_server)


def _pf_sessions() -> dict[str, tuple[bytes, bytes]]:
    return {
        "spdy": _pf_exchange(kstream.SpdyPortForwardClient(host="127.0.0.1", target=PF_TARGET),
                             kstream.SpdyPortForwardServer()),
        "websocket": _pf_exchange(kstream.WebSocketPortForwardClient(
            host="127.0.0.1", target=PF_TARGET, ports=[8080, 9090]),
            kstream.WebSocketPortForwardServer()),
        "tunnel": _pf_exchange(kstream.TunnelClient(host="127.0.0.1", target=PF_TARGET),
                               kstream.TunnelServer()),
    }


def _pf_new_client(transport: str) -> kstream.PortForwardClientConnection:
    if transport == "spdy":
        return kstream.SpdyPortForwardClient(host="127.0.0.1", target=PF_TARGET)
    if transport == "websocket":
        return kstream.WebSocketPortForwardClient(host="127.0.0.1", target=PF_TARGET,
                                                  ports=[8080, 9090])
    return kstream.TunnelClient(host="127.0.0.1", target=PF_TARGET)


def _pf_new_server(transport: str) -> kstream.PortForwardServerConnection:
    if transport == "spdy":
        return kstream.SpdyPortForwardServer()
    if transport == "websocket":
        return kstream.WebSocketPortForwardServer()
    return kstream.TunnelServer()


def _pf_client(transport: str) -> Callable[[Sequence[bytes]], None]:
    """A client upgraded by a 101 made for its own key, with its request open."""
    def run(chunks: Sequence[bytes]) -> None:
        client = _pf_new_client(transport)
        server = _pf_new_server(transport)
        server.receive_data(client.data_to_send())
        server.accept(0.0)
        head, _, _ = server.data_to_send().partition(HEAD_END)
        client.receive_data(head + HEAD_END)
        client.open(8080)
        client.data_to_send()
        feed_all(client, chunks)
    return run


def _pf_client_upgrade(chunks: Sequence[bytes]) -> None:
    client = kstream.SpdyPortForwardClient(host="127.0.0.1", target=PF_TARGET)
    client.data_to_send()
    feed_all(client, chunks)


def _pf_server(transport: str) -> Callable[[Sequence[bytes]], None]:
    """A server fed the client's bytes from the first; it accepts once asked."""
    def run(chunks: Sequence[bytes]) -> None:
        server = _pf_new_server(transport)
        now = -1.0
        try:
            for chunk in chunks:
                if not chunk:
                    continue
                server.receive_data(chunk)
                if now >= 0:
                    now += 31.0   # every pair still incomplete times out
                    server.expire(now)
                elif server.request is not None:
                    now = 0.0
                    server.accept(now)
        except (RemoteProtocolError, kstream.UpgradeRejectedError):
            pass  # (a request accept() cannot take is answered, as upstream)
        server.data_to_send()
    return run


def _pf_targets() -> dict[str, Target]:
    sessions = _pf_sessions()
    spdy_client, spdy_server = sessions["spdy"]
    targets = [Target("portforward-spdy-client-upgrade", _pf_client_upgrade,
                      (spdy_server.split(HEAD_END, 1)[0] + HEAD_END,))]
    for transport, (client_bytes, server_bytes) in sessions.items():
        frames = "spdy" if transport == "spdy" else "websocket"
        targets += [
            Target(f"portforward-{transport}-client", _pf_client(transport),
                   (after_head(server_bytes),), frames),
            Target(f"portforward-{transport}-server", _pf_server(transport), (client_bytes,)),
        ]
    del spdy_client
    return {target.name: target for target in targets}


TARGETS.update(_pf_targets())
