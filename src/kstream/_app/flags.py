"""The kubectl-style connection flags that every subcommand reaching a cluster shares
(``exec``, ``attach``, ``bench exec``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .args import request_timeout

if TYPE_CHECKING:
    from .kubeconfig import ClusterConnection

__all__ = ["connect_deadline", "connection_flags", "load_connection"]


def connection_flags(parser: argparse.ArgumentParser) -> None:
    """Add the connection flags, as kubectl names them, to ``parser``."""
    group = parser.add_argument_group("connection (as kubectl)")
    group.add_argument("--kubeconfig", help="path to the kubeconfig file to use")
    group.add_argument("--context", help="the kubeconfig context to use")
    group.add_argument("-n", "--namespace", help="the namespace of the pod")
    group.add_argument("-s", "--server", help="the address of the API server")
    group.add_argument("--token", help="bearer token for authentication to the API server")
    group.add_argument("--certificate-authority", metavar="FILE",
                       help="path to a certificate file for the certificate authority")
    group.add_argument("--insecure-skip-tls-verify", action="store_true",
                       help="do not check the server's certificate (insecure)")
    group.add_argument("--tls-server-name",
                       help="server name to use for certificate validation")
    group.add_argument("--request-timeout", type=request_timeout, default=None,
                       metavar="DURATION",
                       help="give up connecting and upgrading after this long: seconds "
                            "(30) or a duration (30s, 1m); 0 for no deadline (default "
                            "30s)")


def load_connection(args: argparse.Namespace) -> ClusterConnection:
    """The cluster connection the kubeconfig and the connection flags in ``args`` name.

    Raises:
        KubeconfigError: the kubeconfig cannot be loaded or lacks what is needed.
    """
    from .kubeconfig import ConfigOverrides, load_config  # loaded only to connect

    return load_config(args.kubeconfig, overrides=ConfigOverrides(
        context=args.context, namespace=args.namespace, server=args.server,
        token=args.token, certificate_authority=args.certificate_authority,
        insecure_skip_tls_verify=args.insecure_skip_tls_verify,
        tls_server_name=args.tls_server_name))


def connect_deadline(args: argparse.Namespace) -> float | None:
    """The bound on connecting and upgrading that ``--request-timeout`` in ``args`` sets."""
    from .._runtime.options import DEFAULT_CONNECT_TIMEOUT

    # kubectl's --request-timeout: unset means the default deadline, 0 none at all.
    return (DEFAULT_CONNECT_TIMEOUT if args.request_timeout is None
            else args.request_timeout or None)
