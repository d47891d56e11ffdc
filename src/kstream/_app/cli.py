"""The ``kstream`` command line: ``exec``, ``attach`` and ``serve``.

Flags follow kubectl's names and meanings. ``exec`` and ``attach`` read the kubeconfig
as kubectl does (:mod:`._kubeconfig`); the process exit code is the remote exit code, and
any other failure prints the server's message on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .._version import __version__
from . import portforward
from .args import check_positionals, normalize_verbosity, port_number
from .exits import exit_by_signal
from .flags import connect_deadline, connection_flags, load_connection

# Start-up is part of the product: what only some commands use is imported where they
# use it (asyncio, the adapter, the kubeconfig loader, ssl, termios), so that
# `kstream --version` or `--help` loads none of it. tests/test_cli_startup.py checks.
if TYPE_CHECKING:
    import asyncio

    from .._runtime.client import ExecArguments, ExecRequest
    from .._runtime.options import ServerAddress
    from ..asyncio import RemoteProcess

__all__ = ["build_parser", "main", "parse_pod_option"]


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
                        help="print the negotiated transport and protocol on stderr "
                             "(kubectl's -v=N is accepted too)")
    # kubectl's -v=N, rewritten by args.normalize_verbosity; it sets the same counter.
    parser.add_argument("--verbosity", dest="verbose", type=int, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    # Read by args.check_positionals: kubectl's hint for a command without "--".
    parser.add_argument("positionals", nargs="*", metavar="POD",
                        help="the pod: NAME, pod/NAME, pods/NAME or po/NAME")


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

    attach_parser = commands.add_parser("attach", help="attach to a pod's main process",
                                        usage="kstream attach [flags] POD")
    connection_flags(attach_parser)
    _stream_flags(attach_parser)

    # Listed for --help only: main() hands everything after "bench" to _app/bench.py,
    # which has its own subcommands (framing, exec, compare, suite).
    commands.add_parser("bench", help="measure kstream: framing, exec, compare (see "
                                      "'kstream bench -h')", add_help=False)

    portforward.add_parser(commands)

    serve = commands.add_parser("serve", help="run a local node that kubectl can exec into")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve.add_argument("--port", type=port_number, default=0,
                       help="port to bind (0: a free one)")
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
    serve.add_argument("--pod-port", action="append", default=[],
                       metavar="[NS/]POD=NAME:PORT",
                       help="declare a named container port of a pod (repeatable), for "
                            "port-forward POD NAME")
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


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    import termios
    import tty as tty_module

    saved = termios.tcgetattr(0)
    tty_module.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _terminal_size() -> tuple[int, int]:
    size = os.get_terminal_size(0)
    return size.columns, size.lines


@dataclass(slots=True)
class _Run:
    """What describes an ``exec``/``attach`` failure, filled in as the run goes."""

    address: ServerAddress | None = None
    timeout: float | None = None
    #: The upgrade was accepted: what fails now fails in the session.
    connected: bool = False
    #: A signal that ended the run (the process then ends by it).
    signal: int | None = None


async def _attach_tty(args: argparse.Namespace, request: ExecRequest) -> bool:
    # kubectl attach -t reads the pod first: a main process started without a terminal
    # gets none, else raw mode would leave Ctrl-C with nothing to act on it.
    from .errors_text import printable
    from .podget import container_tty

    found = await container_tty(request, args.container)
    if found is not None and not found[1]:
        _print_error(f"error: Unable to use a TTY - container {printable(found[0])} "
                     f"did not allocate one")
        return False
    return True


async def _remote(args: argparse.Namespace, command: list[str], *, attach: bool,
                  run: _Run) -> int:
    from .._runtime.client import exec_request
    from .._runtime.options import parse_server
    from ..asyncio import open_attach, open_exec

    connection = load_connection(args)
    run.address = parse_server(connection.server)
    run.timeout = connect_deadline(args)
    use_tty = args.tty and args.stdin and os.isatty(0)
    if args.tty and not use_tty:
        # kubectl exec.go SetupTTY: a TTY needs -i and a terminal on stdin.
        _print_error("Unable to use a TTY - input is not a terminal or the right kind of file")
    options: ExecArguments = {
        "container": args.container, "stdin": args.stdin, "stdout": True,
        "stderr": not use_tty, "tty": use_tty, "headers": connection.headers,
        "ssl": connection.ssl_context, "server_hostname": connection.server_hostname,
        "proxy": connection.proxy, "transport": args.transport,
        "protocols": tuple(args.protocol) if args.protocol else None,
        "fallback": args.transport == "auto", "connect_timeout": run.timeout,
    }
    if attach and use_tty:
        # The pod is read as the attach goes: same proxy, credentials, TLS, deadline.
        use_tty = await _attach_tty(args, exec_request(
            connection.server, connection.namespace, args.pod, None, options))
        options["tty"], options["stderr"] = use_tty, not use_tty
    if attach:
        process = await open_attach(connection.server, connection.namespace, args.pod,
                                    **options)
    else:
        process = await open_exec(connection.server, connection.namespace, args.pod,
                                  command, **options)
    run.connected = True
    # Leaving this block closes the connection, whatever ends the run (Ctrl-C, a closed
    # pipe): the server then ends the remote process, as with kubectl.
    async with process:
        if args.verbose:
            _print_error(f"kstream: transport {process.transport}, protocol "
                         f"{process.protocol}")
        return await _run_session(process, args.stdin, use_tty, args.verbose > 0, run)


#: Signals that end a session with a terminal in raw mode: the terminal is restored
#: first (kubectl's interrupt handler does the same).
_TTY_SIGNALS: Final = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _stop_on(signum: int, run: _Run, task: asyncio.Task[Any]) -> None:
    run.signal = signum
    task.cancel()


async def _run_session(process: RemoteProcess, stdin: bool, use_tty: bool,
                       verbose: bool, run: _Run) -> int:
    import asyncio

    from .stdio import forward_output, forward_stdin

    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(forward_output(process.stdout, 1))]
    if not use_tty:
        tasks.append(asyncio.create_task(forward_output(process.stderr, 2)))
    stdin_task = asyncio.create_task(forward_stdin(process, verbose)) if stdin else None
    main_task = asyncio.current_task()
    assert main_task is not None
    with _raw_terminal(use_tty):
        if use_tty:
            await process.resize(*_terminal_size())
            loop.add_signal_handler(signal.SIGWINCH, lambda: loop.create_task(
                process.resize(*_terminal_size())))
            for signum in _TTY_SIGNALS:
                loop.add_signal_handler(signum, _stop_on, signum, run, main_task)
        try:
            await asyncio.gather(*tasks)
            code: int = await process.wait()
        finally:
            if use_tty:
                for signum in (signal.SIGWINCH, *_TTY_SIGNALS):
                    loop.remove_signal_handler(signum)
            for task in tasks:
                task.cancel()
            if stdin_task is not None:
                stdin_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await stdin_task
    return code


def _run_remote(args: argparse.Namespace, command: list[str], *, attach: bool) -> int:
    if not attach and not command:
        _print_error("error: you must specify at least one command for the container")
        return 1
    import asyncio

    from .errors_text import describe_failure
    from .kubeconfig import KubeconfigError

    run = _Run()
    try:
        code = asyncio.run(_remote(args, command, attach=attach, run=run))
    except KeyboardInterrupt:
        exit_by_signal(signal.SIGINT)  # Ctrl-C: silent, as kubectl (the shell shows 130)
    except asyncio.CancelledError:
        if run.signal is None:
            raise
        exit_by_signal(run.signal)
    except BrokenPipeError:
        exit_by_signal(signal.SIGPIPE)  # `kstream exec ... | head`: quiet, like kubectl
    except KubeconfigError as exc:
        _print_error(describe_failure(exc, None))
        return 1
    except Exception as exc:  # one line, never a traceback
        _print_error(describe_failure(exc, run.address, run.timeout,
                                      connecting=not run.connected))
        return 1
    if code:
        # kubectl prints it whenever the remote exit code is not 0.
        _print_error(f"command terminated with exit code {code}")
    return code


# --------------------------------------------------------------------------- serve


async def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from .serve import AcceptErrorLog, PodSpec, start

    loop = asyncio.get_running_loop()
    loop.set_exception_handler(AcceptErrorLog(_print_error, loop.time))
    pods = [PodSpec(name=name, namespace=namespace, argv=argv or ("cat",),
                    ports=args.ports.get((namespace, name), ()))
            for namespace, name, argv in _declared_pods(args)]
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
            try:
                handle.write_kubeconfig(args.kubeconfig)
            except OSError as exc:
                _print_error(f"kstream serve: error: --kubeconfig {args.kubeconfig}: "
                             f"{exc.strerror or exc}")
                return 1
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


def _declared_pods(args: argparse.Namespace) -> list[tuple[str, str, tuple[str, ...]]]:
    """``--pod`` as ``(namespace, name, argv)``; serve's ``demo`` when none is given."""
    from .serve import DEFAULT_POD

    return args.pod or [("default", DEFAULT_POD, ())]


def _pod_ports(args: argparse.Namespace) -> str | None:
    """Check every ``--pod-port`` and set ``args.ports``; return the first problem."""
    from .podports import parse_pod_port_option

    pods = {(namespace, name) for namespace, name, _ in _declared_pods(args)}
    ports: dict[tuple[str, str], tuple[tuple[str, int], ...]] = {}
    for text in args.pod_port:
        try:
            option = parse_pod_port_option(text)
        except ValueError as exc:
            return f"--pod-port {text}: {exc}"
        key = (option.namespace, option.pod)
        if key not in pods:
            return (f"--pod-port {text}: no pod {option.pod} in namespace {option.namespace}"
                    f" (declare it with --pod)")
        if any(name == option.name for name, _ in ports.get(key, ())):
            return f"--pod-port {text}: pod {option.pod} declares port {option.name} twice"
        ports[key] = (*ports.get(key, ()), (option.name, option.port))
    args.ports = ports
    return None


def _run_serve(parser: argparse.ArgumentParser, args: argparse.Namespace,
               command: list[str]) -> int:
    if command:
        parser.error("serve takes no command")
    if args.tls_key is not None and args.tls_cert is None:
        parser.error("--tls-key needs --tls-cert")
    if args.plain_http and args.tls_cert is not None:
        parser.error("--plain-http and --tls-cert exclude each other")
    import asyncio

    from .serve_errors import check_files, describe_start_error

    problem = check_files(tls_cert=args.tls_cert, tls_key=args.tls_key,
                          kubeconfig=args.kubeconfig) or _pod_ports(args)
    if problem is None:
        try:
            return asyncio.run(_serve(args))
        except KeyboardInterrupt:
            exit_by_signal(signal.SIGINT)  # before the server was up
        except Exception as exc:
            problem = describe_start_error(exc, host=args.host, port=args.port,
                                           tls_cert=args.tls_cert, tls_key=args.tls_key)
            if problem is None:
                raise
    _print_error(f"kstream serve: error: {problem}")
    return 1


# --------------------------------------------------------------------------- main


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[name]
            return found
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kstream`` command line.

    Args:
        argv: the arguments after the program name (``sys.argv[1:]`` by default).

    Returns:
        The process exit code: the remote exit code for ``exec``, 1 for errors, 2 for
        a command line that does not parse (with the subcommand's usage).
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:
        from . import bench as _bench

        return _bench.main(arguments[1:])
    options, command = _split_command(arguments)
    parser = build_parser()
    if options[:1] in (["exec"], ["attach"], ["port-forward"]):
        options = normalize_verbosity(options)
    args, extras = parser.parse_known_args(options)
    subparser = _subparser(parser, args.subcommand)
    if args.subcommand == "serve":
        if extras:
            subparser.error(f"unrecognized arguments: {' '.join(extras)}")
        return _run_serve(subparser, args, command)
    if args.subcommand == "port-forward":
        if extras:
            subparser.error(f"unrecognized arguments: {' '.join(extras)}")
        return portforward.run(args, command)
    flags = [extra for extra in extras if extra.startswith("-") and extra != "-"]
    positionals = [*args.positionals, *(extra for extra in extras if extra not in flags)]
    try:
        # Before unknown flags: in `exec POD ls -l`, what is missing is the "--".
        args.pod = check_positionals(args.subcommand, positionals, command)
    except ValueError as exc:
        subparser.error(str(exc))
    if flags:
        subparser.error(f"unrecognized arguments: {' '.join(flags)}")
    return _run_remote(args, command, attach=args.subcommand == "attach")
