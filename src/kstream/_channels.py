"""Channel numbers and protocol names of the Kubernetes streaming protocols.

Sources: ``k8s.io/apimachinery/pkg/util/remotecommand/constants.go`` and
``.../httpstream/wsstream/conn.go`` (see protocol-notes §1.1, §1.2, §2.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "CLOSE",
    "ERROR",
    "RESIZE",
    "SPDY_PROTOCOLS",
    "STDERR",
    "STDIN",
    "STDOUT",
    "WEBSOCKET_PROTOCOLS",
    "ChannelProtocol",
    "remotecommand_version",
]

#: Channel of the remote process's standard input (client to server).
STDIN: Final = 0
#: Channel of the remote process's standard output (server to client).
STDOUT: Final = 1
#: Channel of the remote process's standard error (server to client).
STDERR: Final = 2
#: Channel of the exit status / error document (server to client).
ERROR: Final = 3
#: Channel of terminal resize events (client to server).
RESIZE: Final = 4
#: First byte of a v5 CLOSE signal (``FF <channel>``); not a channel of its own.
CLOSE: Final = 255

#: Number of channels every exec/attach WebSocket connection has (0..4).
EXEC_CHANNELS: Final = 5

V1_NAME: Final = "channel.k8s.io"
V1_BASE64_NAME: Final = "base64.channel.k8s.io"
V2_NAME: Final = "v2.channel.k8s.io"
V3_NAME: Final = "v3.channel.k8s.io"
V4_NAME: Final = "v4.channel.k8s.io"
V4_BASE64_NAME: Final = "v4.base64.channel.k8s.io"
V5_NAME: Final = "v5.channel.k8s.io"
PORT_FORWARD_NAME: Final = "portforward.k8s.io"
#: WebSocket subprotocol of kubectl's SPDY-in-WebSocket port-forward tunnel.
TUNNEL_PORT_FORWARD_NAME: Final = "SPDY/3.1+portforward.k8s.io"


@dataclass(frozen=True, slots=True)
class ChannelProtocol:
    """What one WebSocket channel subprotocol means on the wire.

    Attributes:
        name: the ``Sec-WebSocket-Protocol`` value (``""`` when the client sent none).
        base64: payloads travel as text messages, ``'0'+channel`` then padded base64.
        version: the remotecommand version whose exit-status format applies
            (1 = plain text, 4 and 5 = ``metav1.Status`` JSON).
        supports_close: the v5 CLOSE signal (stdin half-close) exists.
    """

    name: str
    base64: bool
    version: int
    supports_close: bool


#: Every WebSocket channel subprotocol kstream speaks, by wire name. ``""`` (no header)
#: behaves as ``channel.k8s.io``.
WEBSOCKET_PROTOCOLS: Final[dict[str, ChannelProtocol]] = {
    V5_NAME: ChannelProtocol(V5_NAME, base64=False, version=5, supports_close=True),
    V4_NAME: ChannelProtocol(V4_NAME, base64=False, version=4, supports_close=False),
    V4_BASE64_NAME: ChannelProtocol(V4_BASE64_NAME, base64=True, version=4, supports_close=False),
    V1_NAME: ChannelProtocol(V1_NAME, base64=False, version=1, supports_close=False),
    V1_BASE64_NAME: ChannelProtocol(V1_BASE64_NAME, base64=True, version=1, supports_close=False),
    "": ChannelProtocol("", base64=False, version=1, supports_close=False),
}

#: remotecommand versions over SPDY, by ``X-Stream-Protocol-Version`` value.
SPDY_PROTOCOLS: Final[dict[str, int]] = {
    V4_NAME: 4,
    V3_NAME: 3,
    V2_NAME: 2,
    V1_NAME: 1,
}


def remotecommand_version(name: str) -> int:
    """Return the remotecommand version (1..5) that a protocol name stands for.

    Raises:
        KeyError: the name is not an exec/attach protocol name.
    """
    if name in WEBSOCKET_PROTOCOLS:
        return WEBSOCKET_PROTOCOLS[name].version
    return SPDY_PROTOCOLS[name]
