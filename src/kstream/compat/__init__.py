"""Drop-in replacements for the streaming calls of the official Kubernetes clients.

* :mod:`kstream.compat.kubernetes`: ``stream(api_method, *args, **kwargs)`` with the
  arguments and results of ``kubernetes.stream.stream``, and ``portforward(...)`` with
  those of ``kubernetes.stream.portforward`` (sync).
* :mod:`kstream.compat.kubernetes_asyncio`: ``WsApiClient`` and ``stream`` for
  ``kubernetes_asyncio`` (asyncio).

Neither client is a dependency of kstream: each module imports the client it wraps only
when it is used, and says which package is missing when it is not installed. See
``docs/compat.md``.
"""

from __future__ import annotations

__all__: list[str] = []
