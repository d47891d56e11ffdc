"""SPDY/3.1 as Kubernetes speaks it: sans-IO, no I/O imports.

``frames`` is the frame codec, ``headers`` and ``dictionary`` the zlib header blocks,
``flow`` the windows, ``state`` the state tables, ``events`` what a session reports,
``session`` the multiplexing session (``handlers``: what each frame it receives does),
``upgrade`` the HTTP/1.1 upgrade to ``SPDY/3.1``.
"""
