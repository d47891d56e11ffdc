"""Opening a client connection on each runtime: direct, or through a proxy.

The decisions and the CONNECT exchange are the runtime-neutral
:mod:`kstream._runtime.proxy`; these modules only move its bytes, one per runtime, so
that ``kstream.asyncio`` and ``kstream.trio`` each call one function to connect.
"""
