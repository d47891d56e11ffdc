"""The named container ports a pod of ``kstream serve`` declares.

A pod lists them in ``spec.containers[0].ports`` as an apiserver writes them
(``{"name": "http", "containerPort": 8080, "protocol": "TCP"}``), so that ``kubectl
port-forward POD http`` finds them. They are checked as the apiserver checks a pod's
ports -- a name is an IANA service name (apimachinery ``IsValidPortName``), a port is
1..65535, a name is declared once per pod -- so that what serve serves could exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["PodPortOption", "check_ports", "parse_pod_port_option", "port_documents"]

#: apimachinery's limit for a port name (an IANA service name).
_MAX_NAME: Final = 15
_NAME_CHARSET: Final = re.compile(r"[-a-z0-9]+")


def _name_problem(name: str) -> str | None:
    # IsValidPortName's checks, in its order, in its words.
    if not name:
        return "a port name is required"
    if len(name) > _MAX_NAME:
        return f"port name {name!r} must be no more than {_MAX_NAME} characters"
    if not name.isascii() or not _NAME_CHARSET.fullmatch(name):
        return (f"port name {name!r} must contain only alpha-numeric characters (a-z, "
                f"0-9), and hyphens (-)")
    if not re.search(r"[a-z]", name):
        return f"port name {name!r} must contain at least one letter (a-z)"
    if "--" in name:
        return f"port name {name!r} must not contain consecutive hyphens"
    if name.startswith("-") or name.endswith("-"):
        return f"port name {name!r} must not begin or end with a hyphen"
    return None


def check_ports(ports: Mapping[str, int] | Iterable[tuple[str, int]]
                ) -> tuple[tuple[str, int], ...]:
    """Check a pod's named ports as the apiserver would.

    Args:
        ports: name to port number, as a mapping or as pairs.

    Returns:
        The ``(name, number)`` pairs, in order.

    Raises:
        ValueError: one sentence naming the bad port.
    """
    pairs = tuple(ports.items() if isinstance(ports, Mapping) else ports)
    seen: set[str] = set()
    for name, number in pairs:
        problem = _name_problem(name) if isinstance(name, str) else \
            f"port name {name!r} is not a string"
        if problem is not None:
            raise ValueError(problem)
        if isinstance(number, bool) or not isinstance(number, int) \
                or not 1 <= number <= 65535:
            raise ValueError(f"port {name} = {number!r} must be between 1 and 65535, "
                             f"inclusive")
        if name in seen:
            raise ValueError(f"port name {name!r} is declared twice")
        seen.add(name)
    return pairs


def port_documents(ports: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    """``spec.containers[].ports`` as an apiserver returns them (protocol defaulted)."""
    return [{"name": name, "containerPort": number, "protocol": "TCP"}
            for name, number in ports]


@dataclass(frozen=True, slots=True)
class PodPortOption:
    """One ``kstream serve --pod-port [NS/]POD=NAME:PORT``."""

    namespace: str
    pod: str
    name: str
    port: int


def parse_pod_port_option(text: str) -> PodPortOption:
    """Parse ``--pod-port [NAMESPACE/]POD=NAME:PORT`` and check the port.

    Raises:
        ValueError: what is wrong, in one sentence (the caller names the flag).
    """
    target, equals, port = text.partition("=")
    namespace, _, pod = target.rpartition("/")
    name, colon, number = port.partition(":")
    if not equals or not pod or not colon:
        raise ValueError("expected [NAMESPACE/]POD=NAME:PORT, such as demo=http:8080")
    if not (number.isascii() and number.isdigit()):
        raise ValueError(f"port {number!r} is not a number")
    ((name, value),) = check_ports([(name, int(number))])
    return PodPortOption(namespace or "default", pod, name, value)
