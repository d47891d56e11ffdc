"""Port-forward's request targets, port lists, transports and error texts.

Client side: :func:`portforward_target` builds the ``.../pods/{pod}/portforward``
target (kubectl sends no query on SPDY and the tunnel; WebSocket v4 needs ``?ports=``).
Server side: :func:`request_transport` tells which of the three transports a request
asks for, :func:`parse_ports` reads WebSocket v4's port list as the kubelet does, and
:func:`forward_error_text` / :func:`pair_timeout_text` write the kubelet's error texts
(``kubelet/pkg/cri/streaming/portforward/httpstream.go`` and ``websocket.go``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .._channels import PORT_FORWARD_NAME, TUNNEL_PORT_FORWARD_NAME
from .._errors import LocalProtocolError, RemoteProtocolError
from .._http import _pod_path, build_target

__all__ = [
    "SPDY_PORT_FORWARD_PROTOCOL",
    "TUNNEL_PREFIX",
    "TUNNEL_PROTOCOL",
    "check_port",
    "forward_error_text",
    "pair_timeout_text",
    "parse_ports",
    "portforward_target",
    "request_transport",
]

#: The SPDY stream protocol of port-forward (``X-Stream-Protocol-Version``).
SPDY_PORT_FORWARD_PROTOCOL: Final = PORT_FORWARD_NAME
#: The WebSocket subprotocol of the tunnel (``Sec-WebSocket-Protocol``).
TUNNEL_PROTOCOL: Final = TUNNEL_PORT_FORWARD_NAME
#: What the apiserver strips from an offered subprotocol to find the SPDY one
#: (``apimachinery/pkg/util/portforward/constants.go``).
TUNNEL_PREFIX: Final = "SPDY/3.1+"


def check_port(port: object) -> int:
    """Return ``port`` if it is an int in 1..65535.

    Raises:
        LocalProtocolError: it is not.
    """
    if type(port) is not int or not 1 <= port <= 65535:
        raise LocalProtocolError(f"port {port!r} is not in 1..65535")
    return port


def portforward_target(namespace: str, pod: str, *, ports: Sequence[int] = (),
                       prefix: str = "") -> str:
    """Build the target of a pod ``portforward`` upgrade.

    ``{prefix}/api/v1/namespaces/{namespace}/pods/{pod}/portforward``, plus one
    ``ports=N`` per port (repeated, in order) when ``ports`` is given, which only
    WebSocket v4 needs (kubectl sends no query).

    Raises:
        ValueError: ``namespace`` or ``pod`` is empty.
        LocalProtocolError: a port is not in 1..65535, or the path is invalid.
    """
    path = _pod_path("portforward", namespace, pod, prefix)
    return build_target(path, [("ports", str(check_port(port))) for port in ports])


def parse_ports(query: Sequence[tuple[str, str]]) -> tuple[int, ...]:
    """Read the ports of a WebSocket v4 request, as the kubelet's ``NewV4Options``.

    Every ``ports`` value (the apiserver's name) and ``port`` value (the kubelet's) is
    split on ``,``; each piece must be a decimal uint16 above 0.

    Returns:
        The ports in order (repeats allowed: one connection each).

    Raises:
        RemoteProtocolError: with the kubelet's text (``query parameter "port" is
            required``, ``... cannot be empty``, ``unable to parse "x" as a port: ...``,
            ``port "0" must be > 0``); answer 400 with it.
    """
    values = [value for key, value in query if key in ("ports", "port")]
    if not values:
        raise RemoteProtocolError('query parameter "port" is required')
    ports: list[int] = []
    for value in values:
        if not value:
            raise RemoteProtocolError('query parameter "port" cannot be empty')
        for piece in value.split(","):
            # strconv.ParseUint(p, 10, 16): ASCII digits only, no sign, no spaces.
            if not piece.isascii() or not piece.isdigit():
                raise RemoteProtocolError(
                    f'unable to parse "{value}" as a port: strconv.ParseUint: parsing '
                    f'"{piece}": invalid syntax')
            port = int(piece)
            if port > 65535:
                raise RemoteProtocolError(
                    f'unable to parse "{value}" as a port: strconv.ParseUint: parsing '
                    f'"{piece}": value out of range')
            if port < 1:
                raise RemoteProtocolError(f'port "{value}" must be > 0')
            ports.append(port)
    return tuple(ports)


def request_transport(headers: Sequence[tuple[str, str]]) -> str | None:
    """Which port-forward transport an upgrade request asks for.

    Args:
        headers: the request headers, names lower-case.

    Returns:
        ``"tunnel"`` for a WebSocket request offering a ``SPDY/3.1+...k8s.io`` subprotocol
        (the apiserver's filter, ``streamtunnel.go``),
        ``"websocket"`` for any other WebSocket request, ``"spdy"`` for an
        ``Upgrade: SPDY/3.1`` request, None when it is no upgrade at all (the apiserver
        then answers 400 ``Upgrade request required``).
    """
    upgrade = ",".join(value for name, value in headers if name == "upgrade").lower()
    if "websocket" in upgrade:
        for name, value in headers:
            if name == "sec-websocket-protocol" and any(
                    item.strip().startswith(TUNNEL_PREFIX) and item.strip().endswith(".k8s.io")
                    for item in value.split(",")):
                return "tunnel"
        return "websocket"
    if "spdy/3.1" in upgrade:
        return "spdy"
    return None


def forward_error_text(port: int, pod: str, uid: str, error: str) -> str:
    """The kubelet's text for a pod port that failed (``portForward``).

    ``error forwarding port <port> to pod <pod>, uid <uid>: <error>``; the CRI servers
    pass the sandbox id as ``pod`` and an empty ``uid``.
    """
    return f"error forwarding port {port} to pod {pod}, uid {uid}: {error}"


def pair_timeout_text(connection_id: int, request: str) -> str:
    """The kubelet's text when a request's second stream does not come within 30 s.

    ``(conn=<connection>, request=<requestID>) timed out waiting for streams``; Go prints
    the connection with ``%v`` (a pointer): written here as ``0x`` and a hex number.
    """
    return f"(conn=0x{connection_id:x}, request={request}) timed out waiting for streams"
