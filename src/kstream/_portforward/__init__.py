"""Port-forward (``portforward.k8s.io``): room for the sans-IO cores, not built yet.

Planned: a transport-neutral port-forward session, WebSocket v4 port-forward (channel
pairs, the 2-byte port prefix) and SPDY port-forward (data/error stream pairs keyed by
``requestID``). See ``docs/architecture.md``.
"""
