"""Exec throughput and latency against a real cluster (or ``kstream serve``).

Three figures per transport and subprotocol, with commands every image has:

* ``download``: ``head -c SIZE /dev/zero``, stdout read to the end;
* ``upload``: SIZE bytes of zeros sent on stdin to ``wc -c`` (v5 and SPDY, which can
  close stdin; the count it prints is checked), or to ``head -c SIZE`` on protocols that
  cannot close stdin (v4, v4.base64, channel.k8s.io, base64.channel.k8s.io; stdout not
  requested, so nothing comes back);
* ``latency``: ``cat /dev/null``, from connecting to the exit status.

Every figure times a whole exec: connect, TLS, upgrade, transfer, exit status. Nothing is
written in the pod; every command ends by itself (and a closed connection ends its stdin);
connections and kubectl children are closed or killed when a run ends, fails or times out,
and the temporary file kubectl uploads is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .. import KstreamError, UpgradeRejectedError
from ._framing import SPDY, WEBSOCKET_PROTOCOLS
from ._rows import Row

if TYPE_CHECKING:
    import ssl as _ssl

    from ..asyncio import RemoteProcess

__all__ = [
    "EXEC_PROTOCOLS",
    "ExecTarget",
    "commands",
    "kubectl_version",
    "measure_exec",
]

#: Every transport and subprotocol :func:`measure_exec` tries, in this order.
EXEC_PROTOCOLS: Final = (*WEBSOCKET_PROTOCOLS, SPDY)
#: Protocols that can tell the remote process that stdin ended.
_CAN_CLOSE_STDIN: Final = frozenset({"v5.channel.k8s.io", SPDY})
#: Upload chunk (written, then drained).
_CHUNK: Final = 256 * 1024
_LATENCY_COMMAND: Final = ("cat", "/dev/null")


@dataclass(frozen=True)
class ExecTarget:
    """The pod to exec into, and how to reach it (kstream directly, kubectl by flags).

    Attributes:
        server: the API server URL.
        namespace: the pod's namespace.
        pod: the pod's name.
        container: the container (``None``: the server picks, as kubectl does).
        headers: request headers (``Authorization``...): never printed.
        ssl: the TLS context for ``https`` servers.
        server_hostname: the TLS server name, when not the URL's host.
        proxy: the proxy URL (kubeconfig ``proxy-url`` or ``HTTPS_PROXY``), if any.
        kubectl_args: the global flags that point kubectl at the same cluster
            (``--kubeconfig``, ``--context``...).
    """

    server: str
    namespace: str
    pod: str
    container: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    ssl: _ssl.SSLContext | None = field(default=None, repr=False)
    server_hostname: str | None = None
    proxy: str | None = field(default=None, repr=False)
    kubectl_args: tuple[str, ...] = ()

    @classmethod
    def from_kubeconfig(cls, pod: str, *, kubeconfig: str | None = None,
                        context: str | None = None, namespace: str | None = None,
                        container: str | None = None) -> ExecTarget:
        """Read the cluster of a kubeconfig the way kubectl does.

        Raises:
            kstream.kubeconfig.KubeconfigError: the kubeconfig cannot be used.
        """
        from ..kubeconfig import ConfigOverrides, load_config

        connection = load_config(kubeconfig, overrides=ConfigOverrides(
            context=context, namespace=namespace))
        flags: list[str] = []
        if kubeconfig:
            flags += ["--kubeconfig", kubeconfig]
        if context:
            flags += ["--context", context]
        return cls(server=connection.server, namespace=connection.namespace, pod=pod,
                   container=container, headers=tuple(connection.headers),
                   ssl=connection.ssl_context, server_hostname=connection.server_hostname,
                   proxy=connection.proxy, kubectl_args=tuple(flags))


def commands(size: int) -> dict[str, tuple[str, ...]]:
    """The commands run in the pod, by figure, for transfers of ``size`` bytes."""
    return {
        "download": ("head", "-c", str(size), "/dev/zero"),
        "upload (v5, SPDY)": ("wc", "-c"),
        "upload (v4 and older: no end of stdin)": ("head", "-c", str(size)),
        "latency": _LATENCY_COMMAND,
    }


class _Skip(Exception):
    """The server does not offer this transport or subprotocol."""


# -------------------------------------------------------------------------- kstream


async def _open(target: ExecTarget, protocol: str, command: Sequence[str], *, stdin: bool,
                stdout: bool, timeout: float) -> RemoteProcess:
    from ..asyncio import open_exec

    transport = "spdy" if protocol == SPDY else "websocket"
    try:
        process = await open_exec(
            target.server, target.namespace, target.pod, command, container=target.container,
            stdin=stdin, stdout=stdout, stderr=True, headers=target.headers, ssl=target.ssl,
            server_hostname=target.server_hostname, proxy=target.proxy, transport=transport,
            protocols=None if protocol == SPDY else [protocol], fallback=False,
            connect_timeout=timeout)
    except UpgradeRejectedError as exc:
        status = exc.status
        reason = status.message if status is not None and status.message else str(exc)
        raise _Skip(f"the server refused it: {reason}") from None
    if protocol != SPDY and process.protocol != protocol:
        await process.aclose()
        raise _Skip(f"the server answered with {process.protocol!r}")
    return process


async def _finish(process: RemoteProcess, what: str) -> None:
    code = await process.wait()
    if code:
        stderr = (await process.stderr.read()).decode(errors="replace").strip()
        raise RuntimeError(f"{what} exited with {code}: {stderr[:200]}")


async def _latency(target: ExecTarget, protocol: str, timeout: float) -> float:
    start = time.perf_counter()
    process = await _open(target, protocol, _LATENCY_COMMAND, stdin=False, stdout=True,
                          timeout=timeout)
    async with process:
        await process.communicate()
        await _finish(process, "cat /dev/null")
    return time.perf_counter() - start


async def _download(target: ExecTarget, protocol: str, size: int, timeout: float) -> float:
    command = commands(size)["download"]
    start = time.perf_counter()
    process = await _open(target, protocol, command, stdin=False, stdout=True,
                          timeout=timeout)
    async with process:
        received = 0
        async for chunk in process.stdout:
            received += len(chunk)
        await _finish(process, " ".join(command))
    elapsed = time.perf_counter() - start
    if received != size:
        raise RuntimeError(f"download received {received} bytes, not {size}")
    return elapsed


async def _upload(target: ExecTarget, protocol: str, size: int, timeout: float) -> float:
    closes = protocol in _CAN_CLOSE_STDIN
    key = "upload (v5, SPDY)" if closes else "upload (v4 and older: no end of stdin)"
    command = commands(size)[key]
    payload = memoryview(bytes(min(size, _CHUNK)))
    start = time.perf_counter()
    process = await _open(target, protocol, command, stdin=True, stdout=closes,
                          timeout=timeout)
    output = b""
    async with process:
        if closes and not process.stdin.can_close():
            raise _Skip(f"{process.protocol or 'v1'} cannot close stdin")
        left = size
        while left > 0:
            piece = payload[:left]
            process.stdin.write(piece)
            await process.stdin.drain()
            left -= len(piece)
        if closes:
            process.stdin.close()
            output = await process.stdout.read()
        await _finish(process, " ".join(command))
    elapsed = time.perf_counter() - start
    if closes and output.strip() != str(size).encode():
        raise RuntimeError(f"wc -c counted {output.strip()!r}, not {size}")
    return elapsed


# -------------------------------------------------------------------------- kubectl


def kubectl_version(kubectl: str) -> str | None:
    """``"1.33"`` for a kubectl binary, or ``None`` when it cannot be run."""
    try:
        completed = subprocess.run([kubectl, "version", "--client", "-o", "json"],
                                   capture_output=True, text=True, timeout=30, check=False)
        version = json.loads(completed.stdout)["clientVersion"]
        return f"{version['major']}.{version['minor'].rstrip('+')}"
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None


async def _kubectl(kubectl: str, target: ExecTarget, command: Sequence[str], *,
                   stdin_path: str | None, timeout: float) -> tuple[float, bytes, int]:
    """Run ``kubectl exec``; return (seconds, the first 64 bytes of stdout, stdout size)."""
    argv = [kubectl, *target.kubectl_args, "--namespace", target.namespace, "exec"]
    if stdin_path is not None:
        argv.append("-i")
    argv.append(target.pod)
    if target.container:
        argv += ["-c", target.container]
    argv += ["--", *command]
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stdin = (stack.enter_context(open(stdin_path, "rb")) if stdin_path is not None
                 else subprocess.DEVNULL)
        child = await asyncio.create_subprocess_exec(
            *argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            async def drain() -> tuple[bytes, int, bytes]:
                assert child.stdout is not None and child.stderr is not None
                head, count = b"", 0
                while chunk := await child.stdout.read(_CHUNK):
                    if len(head) < 64:
                        head += chunk[:64]
                    count += len(chunk)
                errors = await child.stderr.read()
                await child.wait()
                return head, count, errors

            try:
                head, count, errors = await asyncio.wait_for(drain(), timeout)
            except TimeoutError:
                raise RuntimeError(f"kubectl took more than {timeout:g} s (--timeout)"
                                   ) from None
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
    elapsed = time.perf_counter() - start
    if child.returncode:
        raise RuntimeError(f"kubectl exited with {child.returncode}: "
                           f"{errors.decode(errors='replace').strip()[:200]}")
    return elapsed, head, count


# -------------------------------------------------------------------------- entry point


async def measure_exec(target: ExecTarget, *, size: int = 16 << 20, runs: int = 3,
                       latency_runs: int = 5, protocols: Sequence[str] = EXEC_PROTOCOLS,
                       kubectl: str | None = "auto", timeout: float = 120.0,
                       progress: Callable[[int, int, str], None] | None = None,
                       log: Callable[[str], None] | None = None) -> list[Row]:
    """Measure download, upload and exec latency over every transport the server accepts.

    Rows: ``bench="exec"``, ``group`` ``"download"`` / ``"upload"`` (``size`` bytes per
    run; :attr:`Row.mb_per_s`) or ``"latency"`` (:attr:`Row.median` seconds per exec),
    ``impl="kstream"`` per protocol, and ``impl="kubectl X.Y"`` (``protocol=""``: kubectl
    picks its transport) when kubectl runs. A protocol the server refuses is left out and
    reported through ``log``. Port-forward is not measured: kstream does not implement it
    yet.

    Args:
        target: the pod (see :meth:`ExecTarget.from_kubeconfig`).
        size: bytes per download and per upload (the bound on what one run moves).
        runs: transfers per figure (the median is reported).
        latency_runs: execs per latency figure.
        protocols: names from :data:`EXEC_PROTOCOLS`.
        kubectl: the kubectl binary, ``"auto"`` (``kubectl`` on ``PATH`` if there is one)
            or ``None`` (no kubectl rows).
        timeout: seconds allowed for one exec (connect and transfer).
        progress: called before each step with ``(done, total, label)``.
        log: remarks (skipped protocols, the kubectl version) go here.

    Returns:
        The rows, protocol by protocol, kubectl last.

    Raises:
        ValueError: bad arguments.
        RuntimeError: an exec failed, moved the wrong number of bytes, took more than
            ``timeout``, or the server could not be reached (the message names the
            protocol). A kubectl failure is only reported through ``log``.
    """
    unknown = [name for name in protocols if name not in EXEC_PROTOCOLS]
    if unknown:
        raise ValueError(f"unknown protocol(s) {unknown}; choose from {list(EXEC_PROTOCOLS)}")
    if size < 1 or runs < 1 or latency_runs < 1:
        raise ValueError("size, runs and latency_runs must be positive")
    say = log or (lambda _line: None)
    binary = shutil.which("kubectl") if kubectl == "auto" else kubectl
    version = kubectl_version(binary) if binary else None
    if binary and version is None:
        say(f"kubectl: {binary} does not run: no kubectl figures")
        binary = None
    elif kubectl == "auto" and binary is None:
        say("kubectl: not on PATH: no kubectl figures")
    steps = (len(protocols) + (1 if binary else 0)) * 3
    done = 0

    def step(label: str) -> None:
        nonlocal done
        if progress is not None:
            progress(done, steps, label)
        done += 1

    rows: list[Row] = []
    for protocol in protocols:
        try:
            step(f"latency {protocol}")
            latency = [await _bounded(_latency(target, protocol, timeout), timeout)
                       for _ in range(latency_runs)]
            rows.append(Row("exec", "latency", protocol, "", 0, "kstream", tuple(latency),
                            note=" ".join(_LATENCY_COMMAND)))
            step(f"download {protocol}")
            down = [await _bounded(_download(target, protocol, size, timeout), timeout)
                    for _ in range(runs)]
            rows.append(Row("exec", "download", protocol, "", size, "kstream", tuple(down),
                            payload_bytes=size, note=" ".join(commands(size)["download"])))
            step(f"upload {protocol}")
            up = [await _bounded(_upload(target, protocol, size, timeout), timeout)
                  for _ in range(runs)]
            key = ("upload (v5, SPDY)" if protocol in _CAN_CLOSE_STDIN
                   else "upload (v4 and older: no end of stdin)")
            rows.append(Row("exec", "upload", protocol, "", size, "kstream", tuple(up),
                            payload_bytes=size, note=" ".join(commands(size)[key])))
        except _Skip as skip:
            say(f"{protocol}: not measured, {skip}")
            done = max(done, (list(protocols).index(protocol) + 1) * 3)
        except (KstreamError, OSError, RuntimeError) as exc:
            raise RuntimeError(f"{protocol}: {exc or type(exc).__name__}") from exc
    if binary:
        try:
            rows += await _measure_kubectl(binary, f"kubectl {version}", target, size=size,
                                           runs=runs, latency_runs=latency_runs,
                                           timeout=timeout, step=step)
        except (OSError, RuntimeError) as exc:
            # A baseline: the kstream rows stand without it.
            say(f"kubectl: failed, no kubectl figures: {exc or type(exc).__name__}")
    if progress is not None:
        progress(steps, steps, "done")
    return rows


async def _bounded(work: Coroutine[Any, Any, float], timeout: float) -> float:
    try:
        return await asyncio.wait_for(work, timeout)
    except TimeoutError:
        raise TimeoutError(f"an exec took more than {timeout:g} s (--timeout)") from None


async def _measure_kubectl(binary: str, impl: str, target: ExecTarget, *, size: int,
                           runs: int, latency_runs: int, timeout: float,
                           step: Callable[[str], None]) -> list[Row]:
    def note(command: Sequence[str], stdin: bool = False) -> str:
        return (f"kubectl exec{' -i' if stdin else ''} POD -- {' '.join(command)} "
                "(kubectl picks its transport; the time includes starting kubectl)")

    step(f"latency {impl}")
    latency = [(await _kubectl(binary, target, _LATENCY_COMMAND, stdin_path=None,
                               timeout=timeout))[0] for _ in range(latency_runs)]
    rows = [Row("exec", "latency", "", "", 0, impl, tuple(latency),
                note=note(_LATENCY_COMMAND))]
    step(f"download {impl}")
    down = []
    for _ in range(runs):
        seconds, _, count = await _kubectl(binary, target, commands(size)["download"],
                                           stdin_path=None, timeout=timeout)
        if count != size:
            raise RuntimeError(f"kubectl download received {count} bytes, not {size}")
        down.append(seconds)
    rows.append(Row("exec", "download", "", "", size, impl, tuple(down), payload_bytes=size,
                    note=note(commands(size)["download"])))
    step(f"upload {impl}")
    handle, path = tempfile.mkstemp(prefix="kstream-bench-", suffix=".bin")
    try:
        with os.fdopen(handle, "wb") as file:
            chunk = bytes(min(size, _CHUNK))
            left = size
            while left > 0:
                left -= file.write(chunk[:left])
        up = []
        for _ in range(runs):
            seconds, head, _ = await _kubectl(binary, target, ("wc", "-c"), stdin_path=path,
                                              timeout=timeout)
            if head.strip() != str(size).encode():
                raise RuntimeError(f"kubectl upload: wc -c counted {head.strip()!r}")
            up.append(seconds)
    finally:
        os.unlink(path)
    rows.append(Row("exec", "upload", "", "", size, impl, tuple(up), payload_bytes=size,
                    note=note(("wc", "-c"), stdin=True) + " < a temporary file"))
    return rows
