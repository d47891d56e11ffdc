"""The embedded server behind ``kstream serve``, for use from Python.

A local stand-in for apiserver + kubelet on 127.0.0.1 that kubectl, the official client and
kstream can exec and attach into (see ``docs/serve.md`` for what it serves and its security
model). It runs on asyncio::

    handle = await start(token="secret", pods=[PodSpec("demo")])
    try:
        ...  # handle.url, handle.token, handle.write_kubeconfig(path)
    finally:
        await handle.close()
"""

from __future__ import annotations

from ._app.serve import PodSpec as PodSpec
from ._app.serve import ServerHandle as ServerHandle
from ._app.serve import kubeconfig_document as kubeconfig_document
from ._app.serve import start as start

__all__ = ["PodSpec", "ServerHandle", "kubeconfig_document", "start"]
