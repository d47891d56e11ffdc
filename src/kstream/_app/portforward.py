"""``kstream port-forward``: kubectl's command, on :func:`kstream.asyncio.open_port_forward`.

``kstream port-forward [flags] (pod/NAME | NAME) [LOCAL:]REMOTE...`` takes kubectl's port
forms (``8080``, ``8080:80``, ``:80`` for a free local port) and prints kubectl's lines
``Forwarding from 127.0.0.1:L -> R``, which scripts parse. It runs until Ctrl-C (or
SIGTERM) and then exits 0, as kubectl. Unlike kubectl, an error on one forwarded
connection prints one line and forwarding goes on, and a port-forward connection that
died is made again for the next local connection instead of ending the command.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import KstreamError, UpgradeRejectedError
from .flags import connection_flags
from .kubeconfig import ConfigOverrides, KubeconfigError, load_config

__all__ = ["PortSpec", "add_parser", "parse_port", "run"]


@dataclass(frozen=True, slots=True)
class PortSpec:
    """One ``[LOCAL:]REMOTE`` argument: ``local`` 0 means a free port."""

    local: int
    remote: int


def _port(text: str, which: str, spec: str, *, zero: bool) -> int:
    # kubectl's parsePorts: strconv.ParseUint(port, 10, 16); the remote port must be > 0.
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        why = "value out of range" if text.isascii() and text.isdigit() else "invalid syntax"
        raise ValueError(f"Error parsing {which} port '{text}': strconv.ParseUint: parsing "
                         f"\"{text}\": {why}")
    value = int(text)
    if value == 0 and not zero:
        raise ValueError(f"Remote port must be > 0 in '{spec}'")
    return value


def parse_port(spec: str) -> PortSpec:
    """Parse kubectl's ``8080``, ``8080:80`` or ``:80``.

    Raises:
        ValueError: with kubectl's wording.
    """
    local, colon, remote = spec.partition(":")
    if not colon:
        port = _port(spec, "local", spec, zero=False)
        return PortSpec(port, port)
    if ":" in remote:
        raise ValueError(f"invalid port format '{spec}'")
    return PortSpec(_port(local, "local", spec, zero=True) if local else 0,
                    _port(remote, "remote", spec, zero=False))


def _pod_name(text: str) -> str:
    kind, slash, name = text.rpartition("/")
    if slash and kind.lower() not in ("pod", "pods", "po"):
        raise ValueError(f"only pods can be forwarded to by kstream, not {kind!r}")
    if not name:
        raise ValueError(f"invalid pod {text!r}")
    return name


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
                        help="print the negotiated transport and protocol on stderr")
    parser.add_argument("pod", help="the pod: NAME or pod/NAME")
    parser.add_argument("ports", nargs="+", metavar="[LOCAL:]REMOTE", help="ports to forward")


def _error(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _addresses(value: str) -> list[str]:
    hosts: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if item == "localhost":
            hosts += ["127.0.0.1", "::1"]
        elif item:
            hosts.append(item)
    return list(dict.fromkeys(hosts))


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _forward(args: argparse.Namespace, specs: Sequence[PortSpec]) -> int:
    from ..asyncio import open_port_forward

    connection = load_config(args.kubeconfig, overrides=ConfigOverrides(
        context=args.context, namespace=args.namespace, server=args.server,
        token=args.token, certificate_authority=args.certificate_authority,
        insecure_skip_tls_verify=args.insecure_skip_tls_verify,
        tls_server_name=args.tls_server_name))
    pod = _pod_name(args.pod)
    hosts = _addresses(args.address)
    session = await open_port_forward(
        connection.server, connection.namespace, pod, headers=connection.headers,
        ssl=connection.ssl_context, server_hostname=connection.server_hostname,
        transport=args.transport, connect_timeout=args.request_timeout)
    async with session:
        if args.verbose:
            _error(f"kstream: transport {session.transport}, protocol "
                   f"{session.protocol or 'negotiated per connection'}")

        for spec in specs:
            local = [spec.local]  # the bound port, once known (kubectl reuses it)

            def report(port: int, exc: BaseException, local: list[int] = local) -> None:
                detail = str(exc) or type(exc).__name__
                _error(f"error: an error occurred forwarding {local[0]} -> {port}: {detail}")

            bound_any = False
            for host in hosts:
                try:
                    local[0] = await session.listen(spec.remote, host=host, port=local[0],
                                                    on_error=report)
                except OSError as exc:
                    # kubectl: a failing address is reported; only all failing is fatal.
                    if args.verbose or host != "::1" or args.address != "localhost":
                        _error(f"Unable to listen on port {spec.local}: {exc}")
                    continue
                bound_any = True
                print(f"Forwarding from {_shown(host)}:{local[0]} -> {spec.remote}", flush=True)
            if not bound_any:
                _error(f"error: unable to listen on any of the requested ports: "
                       f"[{spec.local}:{spec.remote}]")
                return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    return 0


def run(args: argparse.Namespace, extra: Sequence[str] = ()) -> int:
    """Run ``kstream port-forward`` with parsed arguments; return the exit code."""
    try:
        specs = [parse_port(spec) for spec in [*args.ports, *extra]]
        _pod_name(args.pod)
    except ValueError as exc:
        _error(f"error: {exc}")
        return 1
    try:
        return asyncio.run(_forward(args, specs))
    except UpgradeRejectedError as exc:
        status = exc.status
        if status is not None and status.message:
            _error(f"Error from server ({status.reason or 'Failure'}): {status.message}")
        else:
            _error(f"error: {exc}")
        return 1
    except KubeconfigError as exc:
        _error(f"error: {exc}")
        return 1
    except (KstreamError, OSError, TimeoutError, ValueError) as exc:
        _error(f"error: {exc or type(exc).__name__}")
        return 1
    except KeyboardInterrupt:
        return 0
