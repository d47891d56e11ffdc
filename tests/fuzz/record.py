"""Record the fuzz corpus: real sessions between real clients and ``kstream serve``.

``python -m tests.fuzz.record`` (from the checkout, with kubectl 1.27 and 1.33 installed)
starts ``kstream serve --plain-http`` behind a recording TCP proxy on 127.0.0.1, runs
each client below through it, and writes, for every upgraded connection, what the client
sent (``NAME.client.bin``) and what the server sent (``NAME.server.bin``) to
``tests/fuzz/corpus/``. The fuzz targets mutate these transcripts. The token is a fixed
throwaway (``fuzz-corpus-token``): it is in the recorded request lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
TOKEN = "fuzz-corpus-token"
KUBECTL_DIR = Path(os.path.realpath(subprocess.run(
    ["sh", "-c", "command -v kubectl"], capture_output=True, text=True, check=False
).stdout.strip() or "/usr/bin/kubectl")).parent


class Recorder:
    """A TCP proxy to ``upstream`` that keeps both directions of upgraded connections."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.sessions: list[tuple[bytes, bytes]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        sent, received = bytearray(), bytearray()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                       log: bytearray) -> None:
            try:
                while data := await src.read(65536):
                    log += data
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                if dst.can_write_eof():
                    with contextlib.suppress(OSError):
                        dst.write_eof()

        await asyncio.gather(pipe(reader, up_writer, sent), pipe(up_reader, writer, received))
        for w in (writer, up_writer):
            w.close()
        if b"\r\nupgrade:" in bytes(sent[:4096]).lower():
            self.sessions.append((bytes(sent), bytes(received)))


async def _kstream_client(url: str, protocol: str) -> None:
    import kstream.asyncio

    auth = [("Authorization", f"Bearer {TOKEN}")]
    async with await kstream.asyncio.open_exec(
            url, "default", "demo", ["sh", "-c", "cat; echo err >&2; exit 3"], stdin=True,
            headers=auth, protocols=[protocol], transport="websocket") as proc:
        proc.stdin.write(b"hello from kstream\n")
        if protocol == "v5.channel.k8s.io":
            proc.stdin.close()
        else:
            await proc.stdin.drain()
        await proc.stdout.readexactly(len(b"hello from kstream\n"))
        if protocol != "v5.channel.k8s.io":
            await proc.aclose()
            return
        await proc.wait()


def _kubectl(version: str, kubeconfig: str, env: dict[str, str], *args: str) -> None:
    binary = next(KUBECTL_DIR.glob(f"kubectl.{version}*"))
    subprocess.run([str(binary), "--kubeconfig", kubeconfig, *args], input=b"hello\nworld\n",
                   env=env, capture_output=True, timeout=60, check=False)


async def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        kubeconfig = os.path.join(directory, "kc")
        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kstream", "serve", "--plain-http", "--token", TOKEN,
            "--kubeconfig", kubeconfig, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        assert serve.stdout is not None
        line = (await serve.stdout.readline()).decode()
        port = int(line.strip().rsplit(":", 1)[1])
        await serve.stdout.readline()
        recorder = Recorder(port)
        proxy = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
        proxy_port = proxy.sockets[0].getsockname()[1]
        proxied = os.path.join(directory, "proxied")
        text = Path(kubeconfig).read_text().replace(f"127.0.0.1:{port}",
                                                    f"127.0.0.1:{proxy_port}")
        Path(proxied).write_text(text)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": directory}
        cases: list[tuple[str, tuple[str, dict[str, str], list[str]]]] = [
            ("kubectl-1.33-websocket-v5", ("1.33", {}, ["exec", "-i", "demo", "--", "sh",
                                                     "-c", "cat; echo err >&2; exit 3"])),
            ("kubectl-1.27-spdy-v4", ("1.27", {}, ["exec", "-i", "demo", "--", "sh", "-c",
                                                "cat; echo err >&2; exit 3"])),
            ("kubectl-1.33-attach-websocket-v5", ("1.33", {}, ["attach", "-i", "demo"])),
        ]
        names: list[str] = []
        for name, (version, extra, args) in cases:
            await asyncio.to_thread(_kubectl, version, proxied, {**env, **extra}, *args)
            names.append(name)
            await asyncio.sleep(0.2)
        url = f"http://127.0.0.1:{proxy_port}"
        for protocol in ("v4.channel.k8s.io", "v4.base64.channel.k8s.io", "channel.k8s.io",
                         "base64.channel.k8s.io", "v5.channel.k8s.io"):
            await _kstream_client(url, protocol)
            names.append("kstream-websocket-" + protocol.replace(".channel.k8s.io", "")
                         .replace("channel.k8s.io", "unversioned"))
            await asyncio.sleep(0.2)
        proxy.close()
        serve.terminate()
        await serve.wait()
    CORPUS.mkdir(exist_ok=True)
    if len(recorder.sessions) != len(names):
        print(f"expected {len(names)} upgraded sessions, recorded {len(recorder.sessions)}")
        return 1
    for name, (sent, received) in zip(names, recorder.sessions, strict=True):
        (CORPUS / f"{name}.client.bin").write_bytes(sent)
        (CORPUS / f"{name}.server.bin").write_bytes(received)
        print(f"{name}: {len(sent)} bytes from the client, {len(received)} from the server")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
