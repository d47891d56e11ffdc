"""The port-forward names of ``kstream.asyncio`` and ``kstream.trio``, loaded on first use.

Port-forward's runtime pieces live in their own modules (``kstream._asyncio_portforward``,
``kstream._trio_portforward``), which build on the exec adapters' pumps and so import
``kstream.asyncio`` / ``kstream.trio``. Those modules cannot import them back; instead
each takes one of the module ``__getattr__`` functions below, which import the
port-forward module by name the first time one of its names is asked for (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final

__all__ = ["PORT_FORWARD_NAMES", "asyncio_names", "trio_names"]

#: What each runtime module lends from its port-forward module.
PORT_FORWARD_NAMES: Final = frozenset({
    "PortForwardSession", "PortForwardReader", "PortForwardWriter", "ForwardedStream",
    "open_port_forward",
})


def _lender(runtime: str, module: str) -> Callable[[str], Any]:
    def __getattr__(name: str) -> Any:
        if name in PORT_FORWARD_NAMES:
            value = getattr(importlib.import_module(module), name, None)
            if value is not None:
                return value
        raise AttributeError(f"module {runtime!r} has no attribute {name!r}")

    return __getattr__


#: ``kstream.asyncio.__getattr__``.
asyncio_names: Final = _lender("kstream.asyncio", "kstream._asyncio_portforward")
#: ``kstream.trio.__getattr__``.
trio_names: Final = _lender("kstream.trio", "kstream._trio_portforward")
