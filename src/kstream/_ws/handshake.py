"""The WebSocket side of the channel.k8s.io upgrade: subprotocols and the 101's checks.

The HTTP itself (parsing heads, writing answers, handing the bytes after the head on)
is the upgrade engine's (:mod:`kstream._upgrade`); this module holds what is
WebSocket-specific about the handshake, as Kubernetes and client-go do it
(protocol-notes §1).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from wsproto.utilities import generate_accept_token

from .._channels import ERROR, STDERR, STDOUT, V1_NAME

__all__ = ["check_request", "check_switch", "hello_channel", "negotiate", "offered_protocols",
           "switch_headers"]


def _comma_tokens(value: str) -> list[str]:
    # wsproto's split_comma_header: the value must be ASCII.
    value.encode("ascii")
    return [token.strip() for token in value.split(",") if token.strip()]


def check_request(headers: tuple[tuple[str, str], ...]) -> tuple[int, str, list[tuple[str, str]]]:
    """Check a WebSocket upgrade request's headers (RFC 6455 §4.2.1), as a server.

    The checks and their order are wsproto's (``H11Handshake``), whose texts kstream has
    always answered with, plus the key's form: it must be the base64 encoding of 16 bytes,
    as gorilla/websocket requires (``isValidChallengeKey``; x/net refuses an empty one).

    Returns:
        ``(0, "", [])`` for a valid request, else the HTTP status to answer, what is
        wrong, and headers to add (``Sec-WebSocket-Version: 13`` for a wrong version).
    """
    connection: list[str] | None = None
    host = key = version = None
    upgrade = ""
    try:
        for name, value in headers:
            if name == "connection":
                connection = _comma_tokens(value)
            elif name == "host":
                value.encode("latin-1").decode("idna")
                host = value
            elif name in ("sec-websocket-extensions", "sec-websocket-protocol"):
                _comma_tokens(value)
            elif name == "sec-websocket-key" and key is None:
                # The first line, as Go's Header.Get and as accept() answer it.
                key = value
            elif name == "sec-websocket-version":
                version = value
            elif name == "upgrade":
                upgrade = value
    except (UnicodeError, ValueError) as exc:
        return 400, f"invalid WebSocket upgrade request: {exc}", []
    if connection is None or not any(token.lower() == "upgrade" for token in connection):
        return 400, "invalid WebSocket upgrade request: Missing header, 'Connection: Upgrade'", []
    if version != "13":
        return (426 if version else 400,
                "invalid WebSocket upgrade request: Missing header, 'Sec-WebSocket-Version'",
                [("Sec-WebSocket-Version", "13")])
    if key is None:
        return 400, "invalid WebSocket upgrade request: Missing header, 'Sec-WebSocket-Key'", []
    if upgrade.lower() != "websocket":
        return 400, "invalid WebSocket upgrade request: Missing header, 'Upgrade: websocket'", []
    if host is None:
        return 400, "invalid WebSocket upgrade request: Missing header, 'Host'", []
    try:
        nonce = base64.b64decode(key.strip(), validate=True)
    except (ValueError, binascii.Error):
        nonce = b""
    if len(nonce) != 16:
        return 400, ("invalid WebSocket upgrade request: 'Sec-WebSocket-Key' must be the "
                     "base64 encoding of 16 bytes"), []
    return 0, "", []


def switch_headers(key: str, protocol: str) -> list[tuple[str, str]]:
    """The headers of a 101 answer (wsproto's, in its order): Upgrade, Connection, the
    accept token for ``key``, and the subprotocol unless ``protocol`` is ``""``."""
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Accept",
                generate_accept_token(key.encode("ascii")).decode("ascii"))]
    if protocol:
        headers.append(("Sec-WebSocket-Protocol", protocol))
    return headers


def negotiate(offered: Sequence[str], supported: Sequence[str]) -> str | None:
    """Pick the subprotocol as the Kubernetes server does.

    The *client's* list is walked in order and the first name the server supports wins
    (``wsstream/conn.go`` ``handshake``). Names compare exactly (case-sensitive). A
    client that sent no ``Sec-WebSocket-Protocol`` header offered ``""``, which behaves as
    ``channel.k8s.io`` (accepted when that one is supported).

    Args:
        offered: the client's protocols, in its order of preference.
        supported: the server's protocols.

    Returns:
        The chosen name (``""`` for "no header"), or ``None`` when nothing matches.
    """
    for name in offered or ("",):
        if name in supported or (name == "" and V1_NAME in supported):
            return name
    return None


def hello_channel(stdout: bool, stderr: bool) -> int:
    """Return the channel of the server's empty hello message (protocol-notes §1.4).

    The exec/attach servers write one empty message on the lowest writable stdio channel
    right after the handshake: stdout if requested, else stderr, else the error channel.

    Args:
        stdout: the client asked for stdout.
        stderr: the client asked for stderr.
    """
    if stdout:
        return STDOUT
    if stderr:
        return STDERR
    return ERROR


def check_switch(headers: tuple[tuple[str, str], ...], nonce: bytes,
                 offered: tuple[str, ...]) -> tuple[str, str]:
    """Check a 101 answer to our upgrade request.

    The checks of RFC 6455 §4.1 and gorilla's ``client.go``, plus client-go's "protocol we
    offered" check.

    Returns:
        (what is wrong, or ``""``; the chosen subprotocol).
    """
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name, []).append(value)
    connection = ",".join(values.get("connection", [])).lower()
    if "upgrade" not in (token.strip() for token in connection.split(",")):
        return "the 101 response lacks 'Connection: Upgrade'", ""
    if [value.strip().lower() for value in values.get("upgrade", [])] != ["websocket"]:
        return "the 101 response lacks 'Upgrade: websocket'", ""
    expected = generate_accept_token(nonce).decode("ascii")
    if values.get("sec-websocket-accept", []) != [expected]:
        return "the 101 response has a wrong Sec-WebSocket-Accept", ""
    if values.get("sec-websocket-extensions"):
        return "the server chose WebSocket extensions we did not offer", ""
    # gorilla reads the first header line, as http.Header.Get does.
    chosen = values.get("sec-websocket-protocol", [""])[0].strip()
    if chosen not in offered and (chosen or offered):
        if chosen:
            return (f"the server chose subprotocol {chosen!r}, which we did not offer "
                    f"(we offered {list(offered)})"), ""
        return f"the server chose no subprotocol (we offered {list(offered)})", ""
    return "", chosen


def offered_protocols(headers: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """Return the subprotocols a client offered, in its order.

    x/net/websocket reads only the first Sec-WebSocket-Protocol line, splits it on ","
    and trims spaces (hybi.go ReadHandshake). Blank items name no protocol: dropped.
    """
    for name, value in headers:
        if name == "sec-websocket-protocol":
            return tuple(item for item in (part.strip() for part in value.split(",")) if item)
    return ()
