"""SPDY tunnelled in WebSocket (``SPDY/3.1+portforward.k8s.io``): sans-IO, no I/O imports.

``connection`` holds :class:`TunnelClient` and :class:`TunnelServer`: a port-forward SPDY
session (``_portforward/spdy.py``) whose bytes travel in WebSocket binary messages
(``_ws/binary.py``), split and packed at any boundary, as kubectl 1.31+ and the apiserver
speak it.
"""

from .connection import TunnelClient, TunnelServer

__all__ = ["TunnelClient", "TunnelServer"]
