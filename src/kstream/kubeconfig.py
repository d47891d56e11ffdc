"""Cluster addresses and credentials, read as kubectl reads them.

``load_config()`` merges the files of ``KUBECONFIG`` (or the one given), applies the
current context (or the one asked for), runs exec credential plugins, builds the TLS
context, and falls back to the in-cluster service account; the result carries what the
``kstream.asyncio`` and ``kstream.trio`` calls take (``server``, ``namespace``,
``headers``, ``ssl``, ``server_hostname``). See ``docs/cli.md`` for the fields supported.
"""

from __future__ import annotations

from ._app.kubeconfig import ClusterConnection as ClusterConnection
from ._app.kubeconfig import ConfigOverrides as ConfigOverrides
from ._app.kubeconfig import KubeconfigError as KubeconfigError
from ._app.kubeconfig import in_cluster_config as in_cluster_config
from ._app.kubeconfig import load_config as load_config

__all__ = ["ClusterConnection", "ConfigOverrides", "KubeconfigError", "in_cluster_config",
           "load_config"]
