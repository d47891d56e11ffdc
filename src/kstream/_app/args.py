"""Reading a command line the way kubectl reads it.

argparse parses kstream's flags; this module covers where kubectl's conventions differ
from argparse's: durations (``--request-timeout=30s``), log levels (``-v=6``), resource
names (``pod/NAME``), and the positional arguments of ``exec`` and ``attach`` (the
command after ``--``, kubectl's hint when it is missing).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Final

__all__ = [
    "POD_TYPES",
    "check_positionals",
    "normalize_verbosity",
    "pod_name",
    "port_number",
    "request_timeout",
]

#: The resource types naming a pod, as ``TYPE/NAME`` or ``TYPE NAME``.
POD_TYPES: Final = frozenset({"pod", "pods", "po"})

#: kubectl's message for a --request-timeout it cannot read (cmd/util/helpers.go).
_BAD_TIMEOUT: Final = ("Invalid timeout value. Timeout must be a single integer in seconds, "
                       "or an integer followed by a corresponding time unit (e.g. 1s | 2m | "
                       "3h)")

#: Go's time.ParseDuration units, in seconds.
_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3,
                 "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART: Final = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_NUMBER: Final = re.compile(r"\d+\.?\d*|\.\d+")

#: A kubectl log level given with -v or --v: ``-v=6``, ``-v6``, ``--v=6``.
_LEVEL_JOINED: Final = re.compile(r"(?:-v=?|--v=)(\d+)")


def _go_duration(text: str) -> float | None:
    """Seconds in a Go duration (``1m30s``, ``500ms``, ``0``), or ``None`` if invalid."""
    if text == "0":
        return 0.0
    total, position = 0.0, 0
    while position < len(text):
        match = _DURATION_PART.match(text, position)
        if match is None:
            return None
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    return total if text else None


def request_timeout(text: str) -> float:
    """The argparse type of ``--request-timeout``, read as kubectl reads it.

    A plain number is seconds (``30``, and kstream also takes ``2.5``); otherwise a Go
    duration (``30s``, ``1m30s``, ``500ms``). Zero means no deadline, as in kubectl.

    Args:
        text: the flag's value.

    Returns:
        The deadline in seconds; 0 for no deadline.

    Raises:
        argparse.ArgumentTypeError: kubectl's message for an invalid value.
    """
    value = text.strip()
    seconds = float(value) if _NUMBER.fullmatch(value) else _go_duration(value)
    if seconds is None or seconds != seconds or seconds == float("inf"):
        raise argparse.ArgumentTypeError(_BAD_TIMEOUT)
    if seconds < 0:
        raise argparse.ArgumentTypeError(_BAD_TIMEOUT)
    return seconds


def normalize_verbosity(options: Sequence[str]) -> list[str]:
    """Rewrite kubectl's log levels (``-v=6``, ``-v6``, ``-v 6``, ``--v=6``) for argparse.

    kstream's ``-v`` counts (``-v``, ``-vv``); kubectl's takes a level. Both are
    accepted: a level becomes ``--verbosity=N``, which sets the same counter.

    Args:
        options: the arguments before ``--``.

    Returns:
        The arguments, levels rewritten.
    """
    result: list[str] = []
    tokens = list(options)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        joined = _LEVEL_JOINED.fullmatch(token)
        if joined is not None:
            result.append(f"--verbosity={joined.group(1)}")
        elif token in ("-v", "--v") and index + 1 < len(tokens) \
                and tokens[index + 1].isdigit():
            result.append(f"--verbosity={tokens[index + 1]}")
            index += 1
        else:
            result.append(token)
        index += 1
    return result


def pod_name(text: str) -> str:
    """Return the pod named by ``NAME``, ``pod/NAME``, ``pods/NAME`` or ``po/NAME``.

    Args:
        text: the POD argument.

    Returns:
        The name.

    Raises:
        ValueError: another resource type, or no name.
    """
    kind, slash, name = text.partition("/")
    if not slash:
        kind, name = "", text
    if slash and kind.lower() not in POD_TYPES:
        raise ValueError(f"kstream reaches pods only, not {kind!r}: give POD, pod/POD, "
                         f"pods/POD or po/POD")
    if not name or "/" in name:
        raise ValueError(f"invalid pod name {text!r}")
    return name


def check_positionals(subcommand: str, positionals: Sequence[str],
                      command: Sequence[str]) -> str:
    """Check the positional arguments of ``exec`` or ``attach``; return the pod.

    Args:
        subcommand: ``"exec"`` or ``"attach"``.
        positionals: the arguments before ``--`` that are not flags.
        command: what follows ``--``.

    Returns:
        The pod's name.

    Raises:
        ValueError: the message for the user (the caller prints the usage with it).
    """
    if subcommand == "attach" and len(positionals) == 2 \
            and positionals[0].lower() in POD_TYPES:
        positionals = [f"{positionals[0]}/{positionals[1]}"]  # kubectl's TYPE NAME
    if not positionals:
        raise ValueError("pod, type/name or --filename must be specified"
                         if subcommand == "exec" else "POD is required")
    if subcommand == "exec" and len(positionals) > 1:
        # kubectl 1.33's words (1.27 still ran the command, with a deprecation warning).
        raise ValueError("exec [POD] [COMMAND] is not supported anymore. "
                         "Use exec [POD] -- [COMMAND] instead")
    if subcommand == "attach" and (len(positionals) > 1 or command):
        extra = [*positionals[1:], *command]
        raise ValueError(f"attach takes no command (saw {' '.join(extra)!r}); "
                         f"to run one, use: kstream exec POD -- COMMAND")
    return pod_name(positionals[0])


def port_number(text: str) -> int:
    """The argparse type of ``serve --port``: 0 (any free port) to 65535.

    Raises:
        argparse.ArgumentTypeError: not a number in that range.
    """
    try:
        port = int(text, 10)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port
