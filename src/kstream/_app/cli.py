"""The ``kstream`` command line: ``exec``, ``attach`` and ``serve``.

Flags follow kubectl's names and meanings. ``exec`` and ``attach`` read the kubeconfig
as kubectl does (:mod:`._kubeconfig`); the process exit code is the remote exit code, and
any other failure prints the server's message on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import sys
import termios
import threading
import tty as tty_module
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from .._errors import KstreamError, UpgradeRejectedError
from .._version import __version__
from . import portforward
from .flags import connection_flags
from .kubeconfig import ConfigOverrides, KubeconfigError, load_config

if TYPE_CHECKING:
    from ..asyncio import RemoteProcess

__all__ = ["build_parser", "main", "parse_pod_option"]

#: Bytes read from our stdin at once.
_STDIN_CHUNK: Final = 64 * 1024
#: Chunks of stdin read ahead of the connection (the reader thread waits beyond that).
_STDIN_QUEUE: Final = 8


# --------------------------------------------------------------------------- parsing


def _stream_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--container", help="container name (default: the first)")
    parser.add_argument("-i", "--stdin", action="store_true",
                        help="pass stdin to the container, closing it at end of input")
    parser.add_argument("-t", "--tty", action="store_true",
                        help="stdin is a TTY: raw mode and window size forwarding")
    parser.add_argument("--transport", choices=("auto", "websocket", "spdy"), default="auto",
                        help="force WebSocket or SPDY (default: WebSocket, then SPDY)")
    parser.add_argument("--protocol", action="append", metavar="NAME",
                        help="offer this subprotocol (repeatable), e.g. "
                             "v4.base64.channel.k8s.io or v3.channel.k8s.io")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="print the negotiated transport and protocol on stderr")
    parser.add_argument("pod", help="the pod's name")


def parse_pod_option(text: str) -> tuple[str, str, tuple[str, ...]]:
    """Parse ``--pod [NAMESPACE/]NAME[=COMMAND]``.

    The command is split like a shell would split it (``shlex``), but never run by one.

    Args:
        text: the option's value.

    Returns:
        ``(namespace, name, argv)``; argv is empty when no command was given.

    Raises:
        argparse.ArgumentTypeError: the name is empty or the command does not split.
    """
    name, _, command = text.partition("=")
    namespace, _, pod = name.rpartition("/")
    if not pod:
        raise argparse.ArgumentTypeError(f"invalid pod {text!r}: a name is required")
    try:
        argv = tuple(shlex.split(command))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid pod command {command!r}: {exc}") from None
    return namespace or "default", pod, argv


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kstream``.

    Returns:
        A parser with the ``exec``, ``attach``, ``serve`` and ``bench`` subcommands.
    """
    parser = argparse.ArgumentParser(
        prog="kstream", description="Kubernetes exec/attach from Python, and a local node "
                                    "that kubectl can exec into.")
    parser.add_argument("--version", action="version", version=f"kstream {__version__}")
    commands = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")

    exec_parser = commands.add_parser(
        "exec", help="run a command in a pod", usage="kstream exec [flags] POD -- COMMAND [ARG...]")
    connection_flags(exec_parser)
    _stream_flags(exec_parser)

    attach_parser = commands.add_parser("attach", help="attach to a pod's main process")
    connection_flags(attach_parser)
    _stream_flags(attach_parser)

    # Listed for --help only: main() hands everything after "bench" to _app/bench.py,
    # which has its own subcommands (framing, exec, compare, suite).
    commands.add_parser("bench", help="measure kstream: framing, exec, compare (see "
                                      "'kstream bench -h')", add_help=False)

    portforward.add_parser(commands)

    serve = commands.add_parser("serve", help="run a local node that kubectl can exec into")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port to bind (0: a free one)")
    serve.add_argument("--token", help="bearer token clients must send (default: random)")
    serve.add_argument("--kubeconfig", metavar="PATH",
                       help="write a kubeconfig for this server to PATH")
    serve.add_argument("--tls-cert", metavar="FILE",
                       help="serve TLS with this certificate (default: a generated one, "
                            "pinned in the kubeconfig)")
    serve.add_argument("--tls-key", metavar="FILE",
                       help="the private key of --tls-cert (default: in the same file)")
    serve.add_argument("--plain-http", action="store_true",
                       help="serve plain HTTP instead of TLS (the kubeconfig then carries "
                            "the token in the server URL)")
    serve.add_argument("--pod", action="append", type=parse_pod_option, default=[],
                       metavar="[NS/]NAME[=COMMAND]",
                       help="declare a pod and its main process (default: demo=cat)")
    return parser


def _split_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    # argparse drops *every* "--" from positionals, which would corrupt a remote command
    # such as `sh -c ... -- x`: split at the first one ourselves.
    args = list(argv)
    if "--" in args:
        index = args.index("--")
        return args[:index], args[index + 1:]
    return args, []


# --------------------------------------------------------------------------- exec/attach


def _print_error(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def _describe_rejection(exc: UpgradeRejectedError) -> str:
    # kubectl's wording for an API error: `Error from server (NotFound): pods "x" not found`.
    status = exc.status
    if status is not None and status.message:
        return f"Error from server ({status.reason or 'Failure'}): {status.message}"
    return f"error: {exc}"


def _start_stdin_reader(loop: asyncio.AbstractEventLoop,
                        queue: asyncio.Queue[bytes]) -> None:
    # A thread with blocking reads works for every kind of stdin (files, pipes, ttys)
    # without switching the shared file description to non-blocking mode.
    def read_loop() -> None:
        while True:
            try:
                data = os.read(0, _STDIN_CHUNK)
            except OSError:
                data = b""
            try:
                asyncio.run_coroutine_threadsafe(queue.put(data), loop).result()
            except (RuntimeError, Exception):
                return
            if not data:
                return

    threading.Thread(target=read_loop, name="kstream-stdin", daemon=True).start()


async def _forward_stdin(process: RemoteProcess, verbose: bool) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue(_STDIN_QUEUE)
    _start_stdin_reader(asyncio.get_running_loop(), queue)
    try:
        while data := await queue.get():
            process.stdin.write(data)
            await process.stdin.drain()
    except KstreamError:
        return  # the session ended first: the rest of stdin has no reader
    if process.stdin.can_close():
        process.stdin.close()
    elif verbose:
        # WebSocket v4 and older cannot signal end of input (protocol-notes §1.5).
        _print_error(f"kstream: {process.protocol or 'this protocol'} cannot close stdin; "
                     "the remote process does not see end of input")


async def _forward_output(stream: Any, fd: int) -> None:
    async for data in stream:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    saved = termios.tcgetattr(0)
    tty_module.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _terminal_size() -> tuple[int, int]:
    size = os.get_terminal_size(0)
    return size.columns, size.lines


async def _remote(args: argparse.Namespace, command: list[str], *, attach: bool) -> int:
    from ..asyncio import open_attach, open_exec

    connection = load_config(args.kubeconfig, overrides=ConfigOverrides(
        context=args.context, namespace=args.namespace, server=args.server,
        token=args.token, certificate_authority=args.certificate_authority,
        insecure_skip_tls_verify=args.insecure_skip_tls_verify,
        tls_server_name=args.tls_server_name))
    use_tty = args.tty and args.stdin and os.isatty(0)
    if args.tty and not use_tty:
        # kubectl exec.go SetupTTY: a TTY needs -i and a terminal on stdin.
        _print_error("Unable to use a TTY - input is not a terminal or the right kind of file")
    options: dict[str, Any] = dict(
        container=args.container, stdin=args.stdin, stdout=True, stderr=not use_tty,
        tty=use_tty, headers=connection.headers, ssl=connection.ssl_context,
        server_hostname=connection.server_hostname, transport=args.transport,
        protocols=tuple(args.protocol) if args.protocol else None,
        fallback=args.transport == "auto", connect_timeout=args.request_timeout,
    )
    if attach:
        process = await open_attach(connection.server, connection.namespace, args.pod,
                                    **options)
    else:
        process = await open_exec(connection.server, connection.namespace, args.pod,
                                  command, **options)
    if args.verbose:
        _print_error(f"kstream: transport {process.transport}, protocol {process.protocol}")
    return await _run_session(process, args.stdin, use_tty, args.verbose > 0)


async def _run_session(process: RemoteProcess, stdin: bool, use_tty: bool,
                       verbose: bool) -> int:
    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(_forward_output(process.stdout, 1))]
    if not use_tty:
        tasks.append(asyncio.create_task(_forward_output(process.stderr, 2)))
    stdin_task = asyncio.create_task(_forward_stdin(process, verbose)) if stdin else None
    with _raw_terminal(use_tty):
        if use_tty:
            await process.resize(*_terminal_size())
            loop.add_signal_handler(signal.SIGWINCH, lambda: loop.create_task(
                process.resize(*_terminal_size())))
        try:
            await asyncio.gather(*tasks)
            code: int = await process.wait()
        finally:
            if use_tty:
                loop.remove_signal_handler(signal.SIGWINCH)
            if stdin_task is not None:
                stdin_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await stdin_task
    return code


def _run_remote(args: argparse.Namespace, command: list[str], *, attach: bool) -> int:
    if not attach and not command:
        _print_error("error: you must specify at least one command for the container")
        return 1
    try:
        code = asyncio.run(_remote(args, command, attach=attach))
    except UpgradeRejectedError as exc:
        _print_error(_describe_rejection(exc))
        return 1
    except KubeconfigError as exc:
        _print_error(f"error: {exc}")
        return 1
    except (KstreamError, OSError, TimeoutError, ValueError) as exc:
        _print_error(f"error: {exc or type(exc).__name__}")
        return 1
    if code and args.verbose:
        _print_error(f"command terminated with exit code {code}")
    return code


# --------------------------------------------------------------------------- serve


async def _serve(args: argparse.Namespace) -> int:
    from .serve import AcceptErrorLog, PodSpec, start

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(AcceptErrorLog(_print_error, loop.time))
    pods = [PodSpec(name=name, namespace=namespace, argv=argv or ("cat",))
            for namespace, name, argv in args.pod]
    handle = await start(host=args.host, port=args.port, token=args.token,
                         tls_cert=args.tls_cert, tls_key=args.tls_key,
                         plain_http=args.plain_http, pods=pods,
                         log=lambda line: _print_error(f"kstream serve: {line}"))
    for warning in handle.warnings:
        _print_error(f"kstream serve: warning: {warning}")
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        if args.kubeconfig:
            handle.write_kubeconfig(args.kubeconfig)
        print(f"kstream serve: listening on {handle.url}", flush=True)
        if args.kubeconfig:
            print(f"kstream serve: kubeconfig written to {args.kubeconfig}", flush=True)
        elif not args.token:
            print(f"kstream serve: bearer token {handle.token}", flush=True)
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await handle.close()
    return 0


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kstream`` command line.

    Args:
        argv: the arguments after the program name (``sys.argv[1:]`` by default).

    Returns:
        The process exit code: the remote exit code for ``exec``, 1 for errors.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        from . import bench as _bench

        return _bench.main(arguments[1:])
    options, command = _split_command(arguments)
    parser = build_parser()
    args = parser.parse_args(options)
    if args.subcommand == "serve":
        if command:
            parser.error("serve takes no command")
        if args.tls_key is not None and args.tls_cert is None:
            parser.error("--tls-key needs --tls-cert")
        if args.plain_http and args.tls_cert is not None:
            parser.error("--plain-http and --tls-cert exclude each other")
        return asyncio.run(_serve(args))
    if args.subcommand == "port-forward":
        return portforward.run(args, command)
    return _run_remote(args, command, attach=args.subcommand == "attach")
