"""Server side: the port-forward connection a parsed upgrade request asks for.

``kstream serve`` parses every request head once; for ``.../pods/{name}/portforward`` it
calls :func:`server_for_request`, which picks the transport (:func:`request_transport`)
and hands the parsed request over to that transport's server connection.
"""

from __future__ import annotations

from .._events import Event
from .._tunnel.connection import TunnelServer
from .._upgrade import ServerUpgrade
from .handshake import request_transport
from .session import PAIR_TIMEOUT, PortForwardServerConnection
from .spdy import SpdyPortForwardServer
from .websocket import WebSocketPortForwardServer

__all__ = ["server_for_request"]


def server_for_request(upgrade: ServerUpgrade, *, pair_timeout: float = PAIR_TIMEOUT,
                       ) -> tuple[PortForwardServerConnection, list[Event]] | None:
    """Build the server connection for a request the caller parsed with ``upgrade``.

    Args:
        upgrade: the engine holding the parsed request head (and what followed).
        pair_timeout: SPDY / tunnel pair deadline, seconds.

    Returns:
        ``(connection, events)`` where ``events`` is what
        ``connection.receive_request(upgrade)`` reported (``[UpgradeRequested]`` once the
        request is complete); then call ``connection.accept(now)`` or ``reject(...)``.
        None when the request is no upgrade (answer 400 ``Upgrade request required``).

    Raises:
        RemoteProtocolError: as the connection's ``receive_request`` (its answer queued).
    """
    assert upgrade.request is not None
    transport = request_transport(upgrade.request.headers)
    connection: PortForwardServerConnection
    if transport == "tunnel":
        connection = TunnelServer(pair_timeout=pair_timeout)
    elif transport == "websocket":
        connection = WebSocketPortForwardServer()
    elif transport == "spdy":
        connection = SpdyPortForwardServer(pair_timeout=pair_timeout)
    else:
        return None
    return connection, connection.receive_request(upgrade)
