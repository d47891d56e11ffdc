"""The runtime-neutral adapter core that ``kstream.asyncio`` and ``kstream.trio`` share.

Nothing here imports a runtime: the runtimes implement a few hooks and keep their own
native I/O.

* :mod:`.core`: the connections' decision logic (``ClientCore``, ``ServerCore``) and the
  hook protocol the runtimes implement;
* :mod:`.process`, :mod:`.server`: the user-facing objects (``RemoteProcess``,
  ``ServerRequest``, ``ServerExec``, ...), written once;
* :mod:`.client`: the arguments, validation and documentation of ``open_exec``,
  ``open_attach`` and ``run``;
* :mod:`.options` (address, options, TLS default), :mod:`.buffers` (read buffer,
  channel buffers, heartbeat), :mod:`.fallback` (the fallback run), :mod:`.common`
  (request targets) and :mod:`.errors` (the adapters' errors; importable without any
  runtime, as ``import kstream`` does).
"""
