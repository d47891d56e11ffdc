"""The kubectl-style connection flags that every subcommand reaching a cluster shares
(``exec``, ``attach``, ``bench exec``)."""

from __future__ import annotations

import argparse

from .args import request_timeout

__all__ = ["connection_flags"]


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
