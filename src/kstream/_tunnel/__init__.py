"""SPDY tunnelled in WebSocket (``SPDY/3.1+portforward.k8s.io``): room, not built yet.

Planned: a SPDY session whose bytes travel in WebSocket binary messages, split and packed
at any boundary. See ``docs/architecture.md``.
"""
