"""Applications on top of the library: the CLI, ``kstream serve``, kubeconfig, bench.

These may spawn processes and use terminals; nothing below the adapters imports them.
"""
