"""kstream: the Kubernetes streaming protocols (exec, attach, port-forward), sans-IO.

Only the names in ``__all__`` are public API; the underscore modules are implementation.
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
from ._exec.spdy import SpdyExecClient as SpdyExecClient
from ._exec.spdy import SpdyExecServer as SpdyExecServer
from ._http import attach_target as attach_target
from ._http import exec_target as exec_target
from ._resize import ResizeDecoder as ResizeDecoder
from ._resize import TerminalSize as TerminalSize
from ._resize import encode_resize as encode_resize
from ._runtime.errors import CalledRemoteProcessError as CalledRemoteProcessError
from ._runtime.errors import CompletedExec as CompletedExec
from ._runtime.errors import ConnectionLostError as ConnectionLostError
from ._runtime.errors import IncompleteReadError as IncompleteReadError
from ._runtime.errors import PingTimeoutError as PingTimeoutError
from ._runtime.errors import RemoteCommandError as RemoteCommandError
from ._status import Exited as Exited
from ._status import ExitResult as ExitResult
from ._status import Failed as Failed
from ._status import Status as Status
from ._status import StatusCause as StatusCause
from ._status import decode_status as decode_status
from ._status import encode_status as encode_status
from ._status import exit_code_status as exit_code_status
from ._status import exit_status_bytes as exit_status_bytes
from ._status import internal_error_status as internal_error_status
from ._status import parse_exit_status as parse_exit_status
from ._status import success_status as success_status
from ._version import __version__ as __version__
from ._ws.connection import WebSocketChannelConnection as WebSocketChannelConnection
from ._ws.connection import WebSocketState as WebSocketState
from ._ws.connection import hello_channel as hello_channel
from ._ws.connection import negotiate as negotiate

__all__ = [
    "CLOSE",
    "ERROR",
    "RESIZE",
    "STDERR",
    "STDIN",
    "STDOUT",
    "CalledRemoteProcessError",
    "ChannelData",
    "ChannelEnded",
    "ChannelProtocol",
    "ClientExecSession",
    "CompletedExec",
    "ConnectionClosed",
    "ConnectionLostError",
    "DroppedMessage",
    "Event",
    "ExecReady",
    "ExitResult",
    "ExitStatusReceived",
    "Exited",
    "Failed",
    "IncompleteReadError",
    "KstreamError",
    "LocalProtocolError",
    "OutputEnded",
    "PingReceived",
    "PingTimeoutError",
    "PongReceived",
    "ProtocolError",
    "RemoteCommandError",
    "RemoteProtocolError",
    "RequestReceived",
    "ResizeDecoder",
    "ServerExecSession",
    "SessionReady",
    "SpdyExecClient",
    "SpdyExecServer",
    "Status",
    "StatusCause",
    "TerminalResized",
    "TerminalSize",
    "UpgradeAccepted",
    "UpgradeRejected",
    "UpgradeRejectedError",
    "UpgradeRequested",
    "WebSocketChannelConnection",
    "WebSocketState",
    "__version__",
    "attach_target",
    "decode_status",
    "encode_resize",
    "encode_status",
    "exec_target",
    "exit_code_status",
    "exit_status_bytes",
    "hello_channel",
    "internal_error_status",
    "negotiate",
    "parse_exit_status",
    "success_status",
]
