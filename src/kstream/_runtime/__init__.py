"""The runtime-neutral adapter core that ``kstream.asyncio`` and ``kstream.trio`` share.

Nothing here imports a runtime: the runtimes implement a few hooks and keep their own
native I/O.
"""
