"""``python -m kstream.demo`` (``make demo``): kstream talking to ``kstream serve``.

Starts ``kstream serve`` on a free loopback port with a temporary kubeconfig, runs execs
through it over WebSocket v5, WebSocket v4 and SPDY -- a command fed on stdin, one that
exits with code 3 -- printing each command shell-quoted, the negotiated transport, the
output and the exit code; then forwards a connection to an echo server on the pod's
network (this machine's loopback) over the tunnel, SPDY and WebSocket v4; then stops the
server and shows how to try the same by hand. Nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import IO, Final

from ._app.kubeconfig import ClusterConnection, load_config

__all__ = ["main"]

_STARTUP_TIMEOUT: Final = 20.0
_EXEC_TIMEOUT: Final = 20.0

#: (label, transport, offered protocols) of each run.
_RUNS: Final = (
    ("WebSocket v5", "websocket", ("v5.channel.k8s.io",)),
    ("WebSocket v4", "websocket", ("v4.channel.k8s.io",)),
    ("SPDY/3.1", "spdy", None),
)


async def _exec(connection: ClusterConnection, command: Sequence[str], *, transport: str,
                protocols: tuple[str, ...] | None, stdin: bytes | None) -> None:
    from .asyncio import open_exec

    process = await open_exec(
        connection.server, connection.namespace, "demo", list(command),
        stdin=stdin is not None, headers=connection.headers, ssl=connection.ssl_context,
        transport=transport, protocols=protocols, fallback=False,
    )
    if stdin is not None:
        process.stdin.write(stdin)
        await process.stdin.drain()
        if process.stdin.can_close():  # not on WebSocket v4
            process.stdin.close()
    async with process:
        stdout, stderr = await asyncio.gather(process.stdout.read(), process.stderr.read())
        code = await process.wait()
    fed = f"    # stdin: {stdin!r}" if stdin is not None else ""
    print(f"  $ {shlex.join(command)}{fed}")
    print(f"    negotiated: {process.transport} {process.protocol}")
    for name, data in (("stdout", stdout), ("stderr", stderr)):
        if data:
            print(f"    {name}: {data!r}")
    print(f"    exit code: {code}")


#: (label, transport) of each port-forward run.
_FORWARDS: Final = (
    ("tunnel (SPDY in WebSocket, kubectl 1.31+)", "tunnel"),
    ("SPDY/3.1", "spdy"),
    ("WebSocket v4", "websocket"),
)


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Ends quietly when the demo ends first (asyncio.run cancels it at shutdown).
    with contextlib.closing(writer), contextlib.suppress(ConnectionError,
                                                         asyncio.CancelledError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


async def _forward(connection: ClusterConnection, port: int, transport: str) -> None:
    from .asyncio import open_port_forward

    session = await open_port_forward(
        connection.server, connection.namespace, "demo", headers=connection.headers,
        ssl=connection.ssl_context, transport=transport)
    async with session:
        reader, writer = await session.open_connection(port)
        message = f"hello through {transport}\n".encode()
        writer.write(message)
        echoed = await reader.readexactly(len(message))
        writer.close()
    print(f"  pod port {port}: sent {message!r}, echoed {echoed!r}")
    print(f"    negotiated: {session.transport} {session.protocol}")


async def _run_all(kubeconfig: str) -> None:
    connection = load_config(kubeconfig, environ={})
    for label, transport, protocols in _RUNS:
        print(f"{label}:")
        # v4 has no way to close stdin (protocol-notes §1.5): there, feed a command that
        # stops by itself after one line.
        v4 = protocols == ("v4.channel.k8s.io",)
        fed = ["head", "-n", "1"] if v4 else ["tr", "a-z", "A-Z"]
        await asyncio.wait_for(_exec(connection, fed, transport=transport,
                                     protocols=protocols, stdin=b"hello from kstream\n"),
                               _EXEC_TIMEOUT)
        await asyncio.wait_for(_exec(connection, ["sh", "-c", "echo about to fail >&2; exit 3"],
                                     transport=transport, protocols=protocols, stdin=None),
                               _EXEC_TIMEOUT)
    # Port-forward: the demo pod shares this machine's network, so its ports are
    # 127.0.0.1's; an echo server stands in for a service in the pod.
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    async with echo:
        port = echo.sockets[0].getsockname()[1]
        for label, transport in _FORWARDS:
            print(f"Port-forward, {label}:")
            await asyncio.wait_for(_forward(connection, port, transport), _EXEC_TIMEOUT)


def _start_server(kubeconfig: str, log: IO[str]) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, "-m", "kstream", "serve", "--port", "0", "--kubeconfig", kubeconfig],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline().strip()
    if "listening on" not in line:
        server.kill()
        raise SystemExit(f"kstream serve did not start: {line!r}")
    return server, line


def _stop_server(server: subprocess.Popen[str]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if server.stdout is not None:
        server.stdout.close()


def main() -> int:
    """Run the demo.

    Returns:
        0 when every exec behaved as expected.
    """
    with tempfile.TemporaryDirectory(prefix="kstream-demo-") as directory:
        kubeconfig = os.path.join(directory, "kubeconfig")
        # The server's session log goes to a file, shown at the end, so that it does not
        # interleave with the demo's own output.
        with open(os.path.join(directory, "serve.log"), "w+") as log:
            server, banner = _start_server(kubeconfig, log)
            try:
                print(banner)
                asyncio.run(_run_all(kubeconfig))
            finally:
                _stop_server(server)
                log.seek(0)
                print("kstream serve stopped. Its log:")
                print("".join(f"  {line}" for line in log))
    print(_try_it_yourself())
    return 0


def _try_it_yourself() -> str:
    """The commands to do the same by hand, with this interpreter's ``kstream``."""
    bin_dir = os.path.dirname(sys.executable)
    shown = os.path.relpath(bin_dir) if bin_dir.startswith(os.getcwd() + os.sep) else bin_dir
    kstream = shlex.quote(os.path.join(shown, "kstream"))
    activate = shlex.quote(os.path.join(shown, "activate"))
    lines = [
        (f"{kstream} serve --kubeconfig /tmp/kc & sleep 1", "a local node; writes /tmp/kc"),
        (f"echo hello | {kstream} exec --kubeconfig /tmp/kc -i demo -- tr a-z A-Z", "HELLO"),
        (f"{kstream} exec --kubeconfig /tmp/kc -it demo -- sh", "a shell, with a terminal"),
        ("KUBECONFIG=/tmp/kc kubectl exec -it demo -- sh", "real kubectl works too"),
        ("python3 -m http.server 8000 --bind 127.0.0.1 &", "a web server in the pod"),
        (f"{kstream} port-forward --kubeconfig /tmp/kc demo 8080:8000 &",
         "127.0.0.1:8080 -> the pod's port 8000"),
        ("curl -s localhost:8080 | head -3", "through the tunnel"),
        ("kill %1 %2 %3", "stop them all"),
    ]
    width = max(len(command) for command, _ in lines)
    return "\n".join([
        f"Try it yourself ({kstream} is there; `. {activate}` puts kstream on PATH):",
        *(f"  {command.ljust(width)}  # {note}" for command, note in lines),
        "More: docs/cli.md (the command line), docs/guide.md (the Python API), "
        "docs/portforward.md.",
    ])


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
