"""Port-forward over SPDY/3.1 (``portforward.k8s.io``), both roles, sans-IO.

One SPDY session carries any number of forwarded TCP connections (*requests*). Each is a
pair of streams with the headers ``streamtype`` (``error`` or ``data``), ``port`` and
``requestid`` (protocol-notes §4.1):

* client (client-go ``tools/portforward/portforward.go`` ``handleConnection``): opens the
  error stream, then the data stream; half-closes the error stream once the server
  replied to it and reads it to its end; raw TCP bytes travel on the data stream;
* server (kubelet ``cri/streaming/portforward/httpstream.go``): checks each stream as it
  arrives, replies to the valid ones at once and resets the others, pairs them by
  ``requestid``, and forwards a complete pair. When the pod side ends it closes (FIN) both
  streams; when it fails it writes the plain-text error on the error stream first; on
  EPIPE/ECONNRESET from the pod it resets both.

The module layout: ``spdy_streams.py`` holds what both roles share, ``spdy_client.py``
and ``spdy_server.py`` the roles; this module is their one public face. The SPDY session
itself is :class:`~kstream._spdy.session.SpdySession`; the HTTP/1.1
upgrade is :mod:`kstream._spdy.upgrade`'s. :class:`SpdyPortForwardClient.upgraded` and
:class:`SpdyPortForwardServer.upgraded` skip the upgrade: the tunnel (``_tunnel``) runs
them inside a WebSocket.

Every outgoing DATA frame carries at most 32 KiB (:data:`~kstream._portforward.session.CHUNK_SIZE`),
as the Go peers' copy buffers do.
"""

from __future__ import annotations

from .spdy_client import SpdyPortForwardClient
from .spdy_server import SpdyPortForwardServer
from .spdy_streams import DEFAULT_MAX_PENDING_BYTES, MAX_EARLY_DATA, MAX_PENDING_PAIRS

__all__ = [
    "DEFAULT_MAX_PENDING_BYTES",
    "MAX_EARLY_DATA",
    "MAX_PENDING_PAIRS",
    "SpdyPortForwardClient",
    "SpdyPortForwardServer",
]
