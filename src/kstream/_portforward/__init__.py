"""Port-forward (``portforward.k8s.io``) on every transport, both roles: sans-IO.

``events`` holds what the connections report, ``session`` the two Protocols every
transport implements (and the shared limits), ``handshake`` targets, port lists,
transport detection and the kubelet's error texts; ``spdy`` is the SPDY transport's face
(streams paired by ``requestID``: ``spdy_streams`` what both roles share, ``spdy_client``
and ``spdy_server`` the roles), ``websocket`` WebSocket v4 (channel pairs, the 2-byte
port prefix), ``dispatch`` the server's choice of transport for a parsed request. The
tunnel (SPDY in WebSocket) is ``kstream._tunnel``. See ``docs/portforward-core.md``.
"""
