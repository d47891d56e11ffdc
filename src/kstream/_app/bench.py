"""``kstream bench``: measure kstream from any installation.

* ``kstream bench framing``: the sans-IO framing cost in memory (:mod:`kstream.bench`);
* ``kstream bench exec POD``: download, upload and latency against a cluster;
* ``kstream bench compare OLD.json NEW.json``: ratios, non-zero exit on a regression;
* ``kstream bench suite``: the repository's own suite (``benchmarks/``), which needs a
  kstream checkout (the Go test peer, kubectl); ``kstream bench --quick`` and the other
  suite options without a subcommand still run it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .. import KstreamError

if TYPE_CHECKING:
    from kstream.bench import Row

__all__ = ["build_parser", "find_checkout", "main", "parse_size"]

_SUBCOMMANDS = ("framing", "exec", "compare", "suite")
_SUFFIXES = {"": 1, "B": 1, "K": 1 << 10, "KI": 1 << 10, "KIB": 1 << 10, "M": 1 << 20,
             "MI": 1 << 20, "MIB": 1 << 20, "G": 1 << 30, "GI": 1 << 30, "GIB": 1 << 30}
#: The largest transfer ``--bytes`` accepts.
_MAX_TRANSFER = 4 << 30


# --------------------------------------------------------------------------- the suite


def _is_checkout(directory: Path) -> bool:
    return ((directory / "benchmarks" / "cli.py").is_file()
            and (directory / "tests" / "peers").is_dir())


def find_checkout(start: Path | None = None) -> Path | None:
    """Return the kstream checkout holding ``benchmarks/``, or ``None``.

    Args:
        start: where to start looking upwards (default: the current directory, then this
            module's own directory).
    """
    starts = [start] if start is not None else [Path.cwd(), Path(__file__).resolve().parent]
    for origin in starts:
        for directory in (origin, *origin.parents):
            if _is_checkout(directory):
                return directory
    return None


def _suite(argv: Sequence[str]) -> int:
    checkout = find_checkout()
    if checkout is None:
        print("kstream bench suite: the repository's suite needs a kstream checkout "
              "(benchmarks/, tests/peers/): run it from inside one. Without a checkout, "
              "use 'kstream bench framing' or 'kstream bench exec'", file=sys.stderr)
        return 2
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    cli = importlib.import_module("benchmarks.cli")
    status: int = cli.main(list(argv), prog="kstream bench suite")
    return status


# --------------------------------------------------------------------------- parsing


def parse_size(text: str) -> int:
    """Parse a byte count: ``65536``, ``64K``, ``16MiB``, ``1G`` (powers of 1024).

    Raises:
        argparse.ArgumentTypeError: not a positive size.
    """
    cleaned = text.strip().upper()
    number = cleaned.rstrip("BKMGI")
    suffix = cleaned[len(number):]
    try:
        value = int(float(number) * _SUFFIXES[suffix])
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (e.g. 4096, 64K, 16M)"
                                          ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be positive")
    return value


def _transfer_size(text: str) -> int:
    value = parse_size(text)
    if value > _MAX_TRANSFER:
        raise argparse.ArgumentTypeError(f"--bytes is bounded by 4 GiB, not {text}")
    return value


def _threshold(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid threshold {text!r} (e.g. 0.2 or 20%)"
                                         ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid threshold {text!r}: must be >= 0")
    return value


def _output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="FILE", type=Path,
                        help="also write every row as JSON (for 'kstream bench compare')")
    parser.add_argument("--plot", metavar="FILE.png", type=Path,
                        help="also write a PNG plot (needs matplotlib: kstream[bench])")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``kstream bench`` and its subcommands."""
    from kstream.bench import PROTOCOLS

    from .flags import connection_flags

    parser = argparse.ArgumentParser(
        prog="kstream bench", description="Measure kstream: framing cost in memory, exec "
        "throughput and latency on a cluster, and compare two runs.")
    commands = parser.add_subparsers(dest="bench", required=True, metavar="COMMAND")

    framing = commands.add_parser(
        "framing", help="sans-IO framing cost in memory, every protocol, both roles",
        description="Encode and decode cost of the five WebSocket channel subprotocols and "
        "SPDY/3.1, client and server, payloads of 64 B to 1 MiB, against one bytes copy "
        "of the same payload. Port-forward framing is not measured (not implemented).")
    framing.add_argument("--quick", action="store_true",
                         help="4 sizes, 3 runs, fewer bytes (a few seconds)")
    framing.add_argument("--size", action="append", type=parse_size, metavar="SIZE",
                         help="payload size (repeatable; default 64 B..1 MiB)")
    framing.add_argument("--protocol", action="append", choices=PROTOCOLS, metavar="NAME",
                         help="only this protocol (repeatable): " + ", ".join(PROTOCOLS))
    framing.add_argument("--runs", type=int, help="timed runs per figure (default 5, quick 3)")
    _output_flags(framing)

    execs = commands.add_parser(
        "exec", help="download, upload and latency against a pod, every transport",
        usage="kstream bench exec [flags] POD [-c CONTAINER]",
        description="Download ('head -c SIZE /dev/zero'), upload ('wc -c', or 'head -c "
        "SIZE' where stdin cannot be closed) and exec latency ('cat /dev/null') over every "
        "transport and subprotocol the server accepts, kubectl's figures beside them when "
        "kubectl is on PATH. Nothing is written in the pod. Port-forward transports are "
        "not measured (not implemented).")
    connection_flags(execs)
    execs.add_argument("-c", "--container", help="container name (default: the first)")
    execs.add_argument("pod", help="the pod's name")
    execs.add_argument("--quick", action="store_true",
                       help="4 MiB transfers, 3 runs each, 3 latency runs")
    execs.add_argument("--bytes", type=_transfer_size, metavar="SIZE", dest="size",
                       help="bytes per download and per upload (default 16M, quick 4M; "
                            "at most 4G)")
    execs.add_argument("--runs", type=int, help="transfers per figure (default 3)")
    execs.add_argument("--latency-runs", type=int,
                       help="execs per latency figure (default 10, quick 3)")
    execs.add_argument("--protocol", action="append", choices=PROTOCOLS, metavar="NAME",
                       help="only this protocol (repeatable): " + ", ".join(PROTOCOLS))
    kubectl = execs.add_mutually_exclusive_group()
    kubectl.add_argument("--kubectl", metavar="PATH",
                         help="kubectl binary to compare with (default: kubectl on PATH)")
    kubectl.add_argument("--no-kubectl", action="store_true", help="no kubectl figures")
    execs.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                       help="seconds allowed for one exec (default 120)")
    _output_flags(execs)

    compare = commands.add_parser(
        "compare", help="compare two --json files; exit 1 when a row regressed",
        description="Print the speed ratio new/old of every row found in both files. "
        "Exit status 1 when a kstream row takes more than 1 + THRESHOLD times its old "
        "time (baseline rows, the bytes copy and kubectl, never fail), 2 on bad input.")
    compare.add_argument("old", type=Path, metavar="OLD.json")
    compare.add_argument("new", type=Path, metavar="NEW.json")
    compare.add_argument("--threshold", type=_threshold, default=0.2, metavar="FRACTION",
                         help="allowed slowdown: 0.2 or 20%% (default 0.2)")

    commands.add_parser("suite", add_help=False,
                        help="the repository's suite (checkout only): "
                             "[--quick | --smoke] [--only NAME]... [--out DIR]")
    return parser


# --------------------------------------------------------------------------- progress


class _Progress:
    """One status line on a terminal (rewritten in place), a line per 10 % otherwise."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last_tenth = -1

    def __call__(self, done: int, total: int, label: str) -> None:
        share = done / total if total else 1.0
        text = f"[{done:>3}/{total}] {share:4.0%} {label}"
        if self._tty:
            self._stream.write("\r\x1b[K" + text[:120])
            if done >= total:
                self._stream.write("\r\x1b[K")
        else:
            tenth = int(share * 10)
            if tenth != self._last_tenth:
                self._last_tenth = tenth
                self._stream.write(text + "\n")
        self._stream.flush()


def _note(text: str) -> None:
    print(f"kstream bench: {text}", file=sys.stderr, flush=True)


def _command_line(argv: Sequence[str]) -> str:
    return " ".join(["kstream", "bench", *map(shlex.quote, argv)])


def _write_outputs(args: argparse.Namespace, rows: Sequence[Row], *, kind: str,
                   argv: Sequence[str], remarks: Sequence[str]) -> None:
    from kstream.bench import write_json, write_plot

    if args.json is not None:
        write_json(args.json, rows, kind=kind, command=_command_line(argv), remarks=remarks)
        _note(f"{len(rows)} rows written to {args.json}")
    if args.plot is not None:
        write_plot(args.plot, rows)
        _note(f"plot written to {args.plot}")


def _check_plot(args: argparse.Namespace) -> bool:
    from kstream.bench import PLOT_HINT, plot_available

    if args.plot is not None and not plot_available():
        _note(f"--plot: {PLOT_HINT}")
        return False
    return True


# --------------------------------------------------------------------------- commands


def _framing(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from kstream.bench import PROTOCOLS, format_table, measure_framing

    if not _check_plot(args):
        return 2
    if args.runs is not None and args.runs < 1:
        _note("--runs must be at least 1")
        return 2
    rows = measure_framing(quick=args.quick, sizes=args.size,
                           protocols=tuple(args.protocol or PROTOCOLS), runs=args.runs,
                           progress=_Progress())
    print(format_table(rows), flush=True)
    _write_outputs(args, rows, kind="framing", argv=argv, remarks=())
    return 0


def _exec(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from kstream.bench import PROTOCOLS, ExecTarget, commands, format_table, measure_exec
    from kstream.kubeconfig import KubeconfigError

    from .flags import load_connection

    if not _check_plot(args):
        return 2
    size = args.size or ((4 << 20) if args.quick else (16 << 20))
    runs = args.runs or 3
    latency_runs = args.latency_runs or (3 if args.quick else 10)
    if runs < 1 or latency_runs < 1:
        _note("--runs and --latency-runs must be at least 1")
        return 2
    try:
        connection = load_connection(args)
    except KubeconfigError as exc:
        _note(f"error: {exc}")
        return 1
    flags: list[str] = []
    for flag, value in (("--kubeconfig", args.kubeconfig), ("--context", args.context),
                        ("--server", args.server), ("--token", args.token),
                        ("--certificate-authority", args.certificate_authority),
                        ("--tls-server-name", args.tls_server_name)):
        if value:
            flags += [flag, value]
    if args.insecure_skip_tls_verify:
        flags.append("--insecure-skip-tls-verify")
    target = ExecTarget(server=connection.server, namespace=connection.namespace,
                        pod=args.pod, container=args.container,
                        headers=tuple(connection.headers), ssl=connection.ssl_context,
                        server_hostname=connection.server_hostname,
                        proxy=connection.proxy, kubectl_args=tuple(flags))
    protocols = tuple(args.protocol or PROTOCOLS)
    kubectl = None if args.no_kubectl else (args.kubectl or "auto")
    _note(f"pod {target.namespace}/{target.pod}: {runs} run(s) of {size} bytes each way per "
          f"protocol, {latency_runs} latency run(s); commands run in the pod:")
    for what, command in commands(size).items():
        _note(f"  {what}: {shlex.join(command)}")
    remarks: list[str] = []

    def log(line: str) -> None:
        remarks.append(line)
        _note(line)

    try:
        rows = asyncio.run(measure_exec(
            target, size=size, runs=runs, latency_runs=latency_runs, protocols=protocols,
            kubectl=kubectl, timeout=args.timeout, progress=_Progress(), log=log))
    except (KstreamError, OSError, RuntimeError, ValueError) as exc:
        _note(f"error: {exc or type(exc).__name__}")
        return 1
    print(format_table(rows), flush=True)
    if remarks:
        print("\nRemarks:\n" + "\n".join(f"  {line}" for line in remarks), flush=True)
    _write_outputs(args, rows, kind="exec", argv=argv, remarks=remarks)
    measured = {row.protocol for row in rows if not row.baseline}
    if not measured:
        _note("error: the server accepted none of the protocols")
        return 1
    return 0


def _compare(args: argparse.Namespace) -> int:
    from kstream.bench import compare, format_comparison, read_json

    try:
        old, new = read_json(args.old), read_json(args.new)
    except (OSError, ValueError) as exc:
        _note(f"error: {exc}")
        return 2
    comparison = compare(old, new, threshold=args.threshold)
    print(format_comparison(comparison), flush=True)
    if not comparison.changes:
        _note("error: the two files have no row in common")
        return 2
    return 1 if comparison.regressions else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kstream bench COMMAND ...``.

    Args:
        argv: the arguments after ``bench``.

    Returns:
        The exit status: 0; 1 for a failure or (``compare``) a regression; 2 for usage
        errors and, for ``suite``, when no checkout is found.
    """
    arguments = list(sys.argv[2:] if argv is None else argv)
    if arguments[:1] == ["suite"]:
        return _suite(arguments[1:])
    if arguments and arguments[0].startswith("-") and arguments[0] not in ("-h", "--help"):
        return _suite(arguments)  # the suite's options without "suite", as before
    parser = build_parser()
    args = parser.parse_args(arguments)
    if args.bench == "framing":
        return _framing(args, arguments)
    if args.bench == "exec":
        return _exec(args, arguments)
    return _compare(args)
