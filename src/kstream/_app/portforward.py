"""``kstream port-forward``: kubectl's command, on :func:`kstream.asyncio.open_port_forward`.

``kstream port-forward [flags] (pod/NAME | NAME) [LOCAL:]REMOTE...`` takes kubectl's port
forms (``8080``, ``8080:80``, ``:80`` for a free local port; REMOTE may be the name of a
container port, :mod:`.namedports`) and prints kubectl's lines ``Forwarding from
127.0.0.1:L -> R``, which scripts parse, and ``Handling connection for L`` as each local
connection is accepted. As kubectl, it first reads the pod (a missing pod is the
server's ``NotFound``), then looks up named ports in it, refuses a pod not ``Running``,
and only then checks the port numbers: kubectl's order, so the first error is kubectl's.
It runs until Ctrl-C and exits 0 (SIGTERM ends it by SIGTERM, as it ends kubectl). Every
failure is one line in kubectl's words (:func:`~.errors_text.describe_failure`), never a
traceback. Unlike kubectl, an error on one forwarded connection prints one line and
forwarding goes on, and a port-forward connection that died is made again for the next
local connection instead of ending the command.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .flags import connect_deadline, connection_flags, load_connection

if TYPE_CHECKING:
    import asyncio

    from .._asyncio_portforward import PortForwardSession
    from .._runtime.options import ServerAddress
    from .._runtime.portforward import PortForwardArguments

__all__ = ["PodNotRunningError", "PortError", "PortSpec", "add_parser", "parse_port", "run"]


@dataclass(frozen=True, slots=True)
class PortSpec:
    """One ``[LOCAL:]REMOTE`` argument: ``local`` 0 means a free port."""

    local: int
    remote: int


def _port(text: str, which: str, *, zero: bool) -> int:
    # client-go's parsePorts: strconv.ParseUint(port, 10, 16); the remote port must be
    # > 0. Its words as kubectl 1.27-1.33 print them (lower case, no argument quoted).
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        why = "value out of range" if text.isascii() and text.isdigit() else "invalid syntax"
        raise ValueError(f"error parsing {which} port '{text}': strconv.ParseUint: parsing "
                         f"\"{text}\": {why}")
    value = int(text)
    if value == 0 and not zero:
        raise ValueError("remote port must be > 0")
    return value


def parse_port(spec: str) -> PortSpec:
    """Parse kubectl's ``8080``, ``8080:80`` or ``:80``.

    Raises:
        ValueError: with kubectl's wording.
    """
    local, colon, remote = spec.partition(":")
    if not colon:
        port = _port(spec, "local", zero=False)
        return PortSpec(port, port)
    if ":" in remote:
        raise ValueError(f"invalid port format '{spec}'")
    return PortSpec(_port(local, "local", zero=True) if local else 0,
                    _port(remote, "remote", zero=False))


def add_parser(commands: Any) -> None:
    """Register ``port-forward`` on the CLI's subcommands (``argparse`` subparsers)."""
    parser = commands.add_parser(
        "port-forward", help="forward local ports to a pod",
        usage="kstream port-forward [flags] (pod/NAME | NAME) [LOCAL:]REMOTE [...]")
    connection_flags(parser)
    parser.add_argument("--address", default="localhost", metavar="ADDR[,ADDR]",
                        help="addresses to listen on, comma-separated (default: localhost, "
                             "i.e. 127.0.0.1 and ::1)")
    parser.add_argument("--transport", choices=("auto", "tunnel", "spdy", "websocket"),
                        default="auto", help="default: the tunnel, then SPDY (kubectl 1.31+)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="print the negotiated transport and protocol on stderr "
                             "(kubectl's -v=N is accepted too)")
    # kubectl's -v=N, rewritten by args.normalize_verbosity; it sets the same counter.
    parser.add_argument("--verbosity", dest="verbose", type=int, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    parser.add_argument("pod", help="the pod: NAME, pod/NAME, pods/NAME or po/NAME")
    parser.add_argument("ports", nargs="+", metavar="[LOCAL:]REMOTE",
                        help="ports to forward; REMOTE may name a container port")




def _error(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def _addresses(value: str) -> list[tuple[str, bool]]:
    """``--address`` as ``(host, required)`` pairs, in kubectl's order.

    kubectl's ``localhost`` is 127.0.0.1 and ::1, either of which may fail as long as one
    listens; an address given by itself must listen, or its port fails.
    """
    hosts: dict[str, bool] = {}
    for item in (part.strip() for part in value.split(",")):
        if item == "localhost":
            for host in ("127.0.0.1", "::1"):
                hosts.setdefault(host, False)
        elif item:
            hosts[item] = True
    return list(hosts.items())


def _listener_error(host: str, port: int, exc: OSError) -> str:
    """``exc`` as kubectl words a listener that failed (Go's ``net.OpError`` text)."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    network = "tcp6" if ":" in host else "tcp4"
    return (f"unable to create listener: Error listen {network} {_shown(host)}:{port}: "
            f"bind: {reason[:1].lower()}{reason[1:]}")


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class PortError(Exception):
    """A port argument kubectl refuses: a name the pod lacks, a malformed number."""


class PodNotRunningError(Exception):
    """The pod's phase is not ``Running``: kubectl refuses to forward to it."""

    def __init__(self, phase: str) -> None:
        super().__init__(f"unable to forward port because pod is not running. "
                         f"Current status={phase}")


@dataclass(slots=True)
class _Run:
    """What describes a ``port-forward`` failure, and how it ends, filled in as it goes."""

    address: ServerAddress | None = None
    timeout: float | None = None
    #: The first port-forward upgrade was accepted.
    connected: bool = False
    #: Ctrl-C after the pod was checked: kubectl then stops forwarding and exits 0.
    interrupted: bool = False
    #: SIGTERM: the process ends by it once the session is closed, as kubectl dies by it.
    terminated: bool = False


def _on_signal(signum: int, run: _Run, stop: asyncio.Event, task: asyncio.Task[Any]) -> None:
    if signum == signal.SIGTERM:
        run.terminated = True
    else:
        run.interrupted = True
    stop.set()
    if not run.connected:
        task.cancel()  # still connecting: give up now (kubectl would wait for its dial)


async def _forward(args: argparse.Namespace, ports: Sequence[str], run: _Run) -> int:
    import asyncio

    from .._runtime.options import parse_server
    from .._runtime.portforward import port_forward_request
    from ..asyncio import open_port_forward
    from .errors_text import printable
    from .namedports import resolve_named_ports
    from .podget import pod_phase, read_pod

    connection = load_connection(args)
    run.address = parse_server(connection.server)
    run.timeout = connect_deadline(args)
    options: PortForwardArguments = {
        "headers": connection.headers, "ssl": connection.ssl_context,
        "server_hostname": connection.server_hostname, "proxy": connection.proxy,
        "transport": args.transport, "connect_timeout": run.timeout}
    pod = args.pod
    # kubectl GETs the pod first, turns named ports into numbers, forwards only to a
    # running pod, and parses the numbers last: each error in kubectl's order.
    document = await read_pod(port_forward_request(connection.server, connection.namespace,
                                                   pod, options))
    try:
        numbered = resolve_named_ports(ports, document)
    except ValueError as exc:
        raise PortError(printable(str(exc))) from None
    phase = pod_phase(document)
    if phase != "Running":
        raise PodNotRunningError(printable(phase))
    try:
        specs = [parse_port(spec) for spec in numbered]
    except ValueError as exc:
        raise PortError(printable(str(exc))) from None

    # From here kubectl traps Ctrl-C: forwarding stops and it exits 0. SIGTERM it does
    # not trap (it dies by it); kstream closes the session first, then does the same.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, _on_signal, signum, run, stop, task)
    try:
        session = await open_port_forward(connection.server, connection.namespace, pod,
                                          **options)
        run.connected = True
        async with session:
            if args.verbose:
                _error(f"kstream: transport {session.transport}, protocol "
                       f"{session.protocol or 'negotiated per connection'}")
            if not await _listen(session, args, specs):
                return 1
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 0


def _handling(port: int) -> None:
    # kubectl prints this on stdout as it accepts each connection (scripts may read it).
    print(f"Handling connection for {port}", flush=True)


async def _listen(session: PortForwardSession, args: argparse.Namespace,
                  specs: Sequence[PortSpec]) -> bool:
    from .errors_text import printable

    hosts = _addresses(args.address)
    listening = False
    for spec in specs:
        local = [spec.local]  # the bound port, once known (kubectl reuses it)

        def report(port: int, exc: BaseException, local: list[int] = local) -> None:
            detail = printable(str(exc) or type(exc).__name__)
            _error(f"error: an error occurred forwarding {local[0]} -> {port}: {detail}")

        failures: list[str] = []
        bound_optional = failed_optional = failed_required = False
        for host, required in hosts:
            try:
                local[0] = await session.listen(spec.remote, host=host, port=local[0],
                                                on_error=report, on_accept=_handling)
            except OSError as exc:
                failures.append(_listener_error(host, local[0], exc))
                failed_required |= required
                failed_optional |= not required
                continue
            bound_optional |= not required
            print(f"Forwarding from {_shown(host)}:{local[0]} -> {spec.remote}", flush=True)
        # kubectl's rule: the port fails when a required address failed, or when every
        # optional one did; its listeners that did open stay open, as kubectl's do.
        if failed_required or (failed_optional and not bound_optional):
            _error(f"Unable to listen on port {local[0]}: Listeners failed to create with "
                   f"the following errors: [{' '.join(failures)}]")
        else:
            listening = True
    if not listening:
        ports = " ".join(f"{{{spec.local} {spec.remote}}}" for spec in specs)
        _error(f"error: unable to listen on any of the requested ports: [{ports}]")
    return listening


def _describe(exc: BaseException, run: _Run) -> str:
    from .._errors import UpgradeRejectedError
    from .errors_text import describe_failure, printable

    if isinstance(exc, (PodNotRunningError, PortError)):
        return f"error: {exc}"
    if isinstance(exc, UpgradeRejectedError) and exc.status_code == 401:
        # kubectl's words for a credential the server does not take.
        message = exc.status.message if exc.status is not None else ""
        return f"error: You must be logged in to the server " \
               f"({printable(message or 'Unauthorized')})"
    return describe_failure(exc, run.address, run.timeout, connecting=not run.connected)


def run(args: argparse.Namespace, extra: Sequence[str] = ()) -> int:
    """Run ``kstream port-forward`` with parsed arguments; return the exit code.

    Every failure is one line on stderr in kubectl's words, never a traceback. Ctrl-C
    before the pod was read kills the process by SIGINT, after it exits 0, as kubectl
    port-forward; SIGTERM ends it by SIGTERM once the session is closed.
    """
    # Imported here, not at the top: `kstream --version` and `--help` load neither.
    import asyncio

    from .args import pod_name
    from .errors_text import describe_failure
    from .exits import exit_by_signal
    from .kubeconfig import KubeconfigError

    try:
        args.pod = pod_name(args.pod)
    except ValueError as exc:
        _error(f"error: {exc}")
        return 1
    state = _Run()
    try:
        code = asyncio.run(_forward(args, [*args.ports, *extra], state))
    except KeyboardInterrupt:
        exit_by_signal(signal.SIGINT)  # before the pod was read: kubectl dies by it too
    except asyncio.CancelledError:
        if not (state.interrupted or state.terminated):
            _error("error: cancelled")
            return 1
        code = 0
    except KubeconfigError as exc:
        _error(describe_failure(exc, None))
        return 1
    except Exception as exc:  # one line, never a traceback
        _error(_describe(exc, state))
        return 1
    if state.terminated:
        exit_by_signal(signal.SIGTERM)
    return code
