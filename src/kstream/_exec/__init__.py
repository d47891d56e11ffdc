"""Exec and attach (remotecommand) over any transport: sans-IO, no I/O imports.

``session`` is the transport-neutral exec session for both roles, ``spdy`` maps
remotecommand's SPDY streams to channels, ``fallback`` is the transport plan and the rule
for falling back from one transport to the next.
"""
