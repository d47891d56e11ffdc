"""A pod's named container ports in ``kstream port-forward``'s ``[LOCAL:]REMOTE``.

kubectl (``pkg/cmd/portforward``: ``checkUDPPortInPod``, then
``convertPodNamedPortToNumber``, both on the pod it read) rewrites every argument whose
remote part is not a number into the ``containerPort`` of the first port of that name in
``spec.containers[*].ports``, before the ports are parsed. Its quirks are kept, because
scripts meet them: the remote part is what follows the one colon of ``LOCAL:REMOTE``
and otherwise the whole argument's first field (so ``8080:80:90`` becomes ``8080``);
"a number" is Go's ``strconv.Atoi`` (``+80`` is one, an int64 overflow is not and is
looked up as a name); an omitted local port becomes the container port's number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = ["container_port", "resolve_named_ports", "split_port"]

#: Go's ``strconv.Atoi``: an optional sign and decimal digits, within int64.
_GO_INT: Final = re.compile(r"[+-]?[0-9]+")
_INT64_MAX: Final = (1 << 63) - 1


def split_port(spec: str) -> tuple[str, str]:
    """kubectl's ``splitPort``: ``LOCAL:REMOTE`` split, else the first field twice."""
    parts = spec.split(":")
    if len(parts) == 2:
        return parts[0], parts[1]
    return parts[0], parts[0]


def _is_number(text: str) -> bool:
    if not text.isascii() or not _GO_INT.fullmatch(text):
        return False
    value = int(text)
    return -_INT64_MAX - 1 <= value <= _INT64_MAX


def _ports(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # Every port of every container, in order; what is not a mapping is skipped.
    spec = pod.get("spec")
    containers = spec.get("containers") if isinstance(spec, Mapping) else None
    found: list[Mapping[str, Any]] = []
    for container in containers if isinstance(containers, list) else []:
        ports = container.get("ports") if isinstance(container, Mapping) else None
        found += [port for port in (ports if isinstance(ports, list) else [])
                  if isinstance(port, Mapping)]
    return found


def _pod_name(pod: Mapping[str, Any]) -> str:
    metadata = pod.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else ""


def _number(port: Mapping[str, Any]) -> int:
    value = port.get("containerPort")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def container_port(pod: Mapping[str, Any], name: str) -> int:
    """The ``containerPort`` of the first port called ``name`` in any container of ``pod``.

    As Go compares, a port without a name is named ``""``.

    Raises:
        ValueError: kubectl's ``Pod 'NAME' does not have a named port 'PORTNAME'``.
    """
    for port in _ports(pod):
        if port.get("name", "") == name:
            return _number(port)
    raise ValueError(f"Pod '{_pod_name(pod)}' does not have a named port '{name}'")


def _check_udp(specs: Sequence[str], pod: Mapping[str, Any]) -> None:
    # kubectl's checkUDPPortInPod: a port the pod declares for UDP only is refused.
    udp = {_number(port) for port in _ports(pod) if port.get("protocol") == "UDP"}
    udp -= {_number(port) for port in _ports(pod) if port.get("protocol") == "TCP"}
    for spec in specs:
        _, remote = split_port(spec)
        number = int(remote) if _is_number(remote) else container_port(pod, remote)
        if number in udp:
            raise ValueError(f"UDP protocol is not supported for {remote}")


def resolve_named_ports(specs: Sequence[str], pod: Mapping[str, Any]) -> list[str]:
    """Rewrite ``[LOCAL:]REMOTE`` arguments as kubectl does with the pod it read.

    Args:
        specs: the port arguments, as given.
        pod: the pod document (``v1.Pod`` JSON).

    Returns:
        The arguments with each named remote port replaced by its number (``http``
        becomes ``8080``, ``:http`` ``:8080``, ``9000:http`` ``9000:8080``); numbers are
        left for :func:`~.portforward.parse_port` to check.

    Raises:
        ValueError: in kubectl's words, a name the pod does not declare or a port it
            declares for UDP only.
    """
    _check_udp(specs, pod)
    converted = []
    for spec in specs:
        local, remote = split_port(spec)
        number = remote if _is_number(remote) else str(container_port(pod, remote))
        converted.append(f"{local}:{number}" if local != remote else number)
    return converted
