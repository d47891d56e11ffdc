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
from ._version import __version__ as __version__

__all__ = [
    "CLOSE",
    "ERROR",
    "RESIZE",
    "STDERR",
    "STDIN",
    "STDOUT",
    "ChannelData",
    "ChannelEnded",
    "ChannelProtocol",
    "ConnectionClosed",
    "DroppedMessage",
    "Event",
    "KstreamError",
    "LocalProtocolError",
    "PingReceived",
    "PongReceived",
    "ProtocolError",
    "RemoteProtocolError",
    "UpgradeAccepted",
    "UpgradeRejected",
    "UpgradeRejectedError",
    "UpgradeRequested",
    "__version__",
]
