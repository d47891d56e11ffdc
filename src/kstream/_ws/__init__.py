"""WebSocket channel protocols (``*.channel.k8s.io``): sans-IO, no I/O imports.

``framing`` is the channel byte and the base64 variants, ``codec`` the zero-copy RFC 6455
frame codec, ``mask`` client masking, ``frames`` the codec seam with the wsproto reference
codec, ``connection`` the channel connection for both roles, and ``messages`` its
assembly of incoming messages.
"""
