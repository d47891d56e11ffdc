"""kstream: the Kubernetes streaming protocols (exec, attach, port-forward), sans-IO.

Only the names in ``__all__`` are public API; the underscore modules are implementation.

Most programs want an adapter: :mod:`kstream.asyncio` or :mod:`kstream.trio` (``run``,
``open_exec``, ``start_server``). This package is the sans-IO tier under them, for
adapters of other runtimes, servers, proxies and tests. ``__all__`` lists it by tier,
from the one most users of the sans-IO core want (sessions) down to the wire
(connections, events); each group says who needs it.

``import kstream`` loads no runtime and no I/O module (no ``asyncio``, ``trio``,
``socket``, ``ssl``, ``threading``, ``logging``, ...).
"""

from __future__ import annotations

from ._channels import CLOSE as CLOSE
from ._channels import ERROR as ERROR
from ._channels import RESIZE as RESIZE
from ._channels import STDERR as STDERR
from ._channels import STDIN as STDIN
from ._channels import STDOUT as STDOUT
from ._channels import ChannelProtocol as ChannelProtocol
from ._errors import KstreamError as KstreamError
from ._errors import LocalProtocolError as LocalProtocolError
from ._errors import ProtocolError as ProtocolError
from ._errors import RemoteProtocolError as RemoteProtocolError
from ._errors import UpgradeRejectedError as UpgradeRejectedError
from ._events import ChannelData as ChannelData
from ._events import ChannelEnded as ChannelEnded
from ._events import ConnectionClosed as ConnectionClosed
from ._events import DroppedMessage as DroppedMessage
from ._events import Event as Event
from ._events import PingReceived as PingReceived
from ._events import PongReceived as PongReceived
from ._events import UpgradeAccepted as UpgradeAccepted
from ._events import UpgradeRejected as UpgradeRejected
from ._events import UpgradeRequested as UpgradeRequested
from ._exec.session import ClientExecSession as ClientExecSession
from ._exec.session import ExitStatusReceived as ExitStatusReceived
from ._exec.session import OutputEnded as OutputEnded
from ._exec.session import RequestReceived as RequestReceived
from ._exec.session import ServerExecSession as ServerExecSession
from ._exec.session import SessionReady as SessionReady
from ._exec.session import TerminalResized as TerminalResized
from ._exec.spdy import ExecReady as ExecReady
from ._exec.spdy_client import SpdyExecClient as SpdyExecClient
from ._exec.spdy_server import SpdyExecServer as SpdyExecServer
from ._http import attach_target as attach_target
from ._http import exec_target as exec_target
from ._portforward.events import ForwardClosed as ForwardClosed
from ._portforward.events import ForwardData as ForwardData
from ._portforward.events import ForwardEnded as ForwardEnded
from ._portforward.events import ForwardError as ForwardError
from ._portforward.events import ForwardReady as ForwardReady
from ._portforward.events import ForwardRequested as ForwardRequested
from ._portforward.events import ForwardReset as ForwardReset
from ._portforward.handshake import forward_error_text as forward_error_text
from ._portforward.handshake import portforward_target as portforward_target
from ._portforward.session import PortForwardClientConnection as PortForwardClientConnection
from ._portforward.session import PortForwardServerConnection as PortForwardServerConnection
from ._portforward.spdy import SpdyPortForwardClient as SpdyPortForwardClient
from ._portforward.spdy import SpdyPortForwardServer as SpdyPortForwardServer
from ._portforward.websocket import WebSocketPortForwardClient as WebSocketPortForwardClient
from ._portforward.websocket import WebSocketPortForwardServer as WebSocketPortForwardServer
from ._resize import ResizeDecoder as ResizeDecoder
from ._resize import TerminalSize as TerminalSize
from ._resize import encode_resize as encode_resize
from ._runtime.errors import CalledRemoteProcessError as CalledRemoteProcessError
from ._runtime.errors import CompletedExec as CompletedExec
from ._runtime.errors import ConnectionLostError as ConnectionLostError
from ._runtime.errors import IncompleteReadError as IncompleteReadError
from ._runtime.errors import PingTimeoutError as PingTimeoutError
from ._runtime.errors import PortForwardError as PortForwardError
from ._runtime.errors import RemoteCommandError as RemoteCommandError
from ._status_types import Exited as Exited
from ._status_types import ExitResult as ExitResult
from ._status_types import Failed as Failed
from ._status_types import Status as Status
from ._status_types import StatusCause as StatusCause
from ._tunnel import TunnelClient as TunnelClient
from ._tunnel import TunnelServer as TunnelServer
from ._version import __version__ as __version__
from ._ws.connection import WebSocketChannelConnection as WebSocketChannelConnection
from ._ws.connection import WebSocketState as WebSocketState
from ._ws.connection import hello_channel as websocket_hello_channel
from ._ws.connection import negotiate as negotiate_websocket_protocol

# Grouped by tier (sorted within a group), hence the noqa.
__all__ = [  # noqa: RUF022
    # Sessions: one exec or attach over either transport, client or server role. The
    # tier most users of the sans-IO core want: adapters for other runtimes, servers.
    "ClientExecSession",
    "ExitStatusReceived",
    "OutputEnded",
    "RequestReceived",
    "ServerExecSession",
    "SessionReady",
    "TerminalResized",
    # Exit status, for every client and server: what the error channel says
    # (Status.parse_error_channel) and what a server writes on it (Status.success(),
    # Status.exit_code(code, argv), Status.internal_error(detail)).
    "ExitResult",
    "Exited",
    "Failed",
    "Status",
    "StatusCause",
    # Request targets of a pod's exec and attach, as kubectl builds them: for clients.
    "attach_target",
    "exec_target",
    # Channel numbers and the negotiated channel protocol: for session and connection
    # users alike.
    "CLOSE",
    "ERROR",
    "RESIZE",
    "STDERR",
    "STDIN",
    "STDOUT",
    "ChannelProtocol",
    # Terminal resize codec (the JSON stream on the resize channel): for connection
    # users; the sessions encode and decode it for you.
    "ResizeDecoder",
    "TerminalSize",
    "encode_resize",
    # Connections: one transport below the sessions (WebSocket channel.k8s.io, SPDY/3.1),
    # for proxies, fuzzers and tests that work on the wire itself.
    "ExecReady",
    "SpdyExecClient",
    "SpdyExecServer",
    "WebSocketChannelConnection",
    "WebSocketState",
    "negotiate_websocket_protocol",
    "websocket_hello_channel",
    # Events of the connections, for the same users.
    "ChannelData",
    "ChannelEnded",
    "ConnectionClosed",
    "DroppedMessage",
    "Event",
    "PingReceived",
    "PongReceived",
    "UpgradeAccepted",
    "UpgradeRejected",
    "UpgradeRequested",
    # Port-forward: one connection per transport and role (SPDY portforward.k8s.io, the
    # SPDY/3.1+portforward.k8s.io tunnel, WebSocket v4), the Protocols they share, their
    # events, the request target and the kubelet's error text; for adapters and servers.
    "ForwardClosed",
    "ForwardData",
    "ForwardEnded",
    "ForwardError",
    "ForwardReady",
    "ForwardRequested",
    "ForwardReset",
    "PortForwardClientConnection",
    "PortForwardServerConnection",
    "SpdyPortForwardClient",
    "SpdyPortForwardServer",
    "TunnelClient",
    "TunnelServer",
    "WebSocketPortForwardClient",
    "WebSocketPortForwardServer",
    "forward_error_text",
    "portforward_target",
    # Errors: the one family every tier raises, for everyone.
    "KstreamError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "UpgradeRejectedError",
    # What the adapters (kstream.asyncio, kstream.trio) add to the family and return,
    # for their users; importable here without loading a runtime.
    "CalledRemoteProcessError",
    "CompletedExec",
    "ConnectionLostError",
    "IncompleteReadError",
    "PingTimeoutError",
    "PortForwardError",
    "RemoteCommandError",
    # The package version.
    "__version__",
]
