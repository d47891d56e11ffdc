"""The fake node's hooks into the serve engine: faults, records and handler pods."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .._app.serve import ServeHooks, SessionRunner
from .._http import query_bool
from .._portforward.handshake import request_transport
from ._faults import Faults, instrument
from ._pods import Handler, OutputStream, PodExec, StdinStream, run_handler
from ._reach import install_tap, lost_future
from ._records import SessionRecord

if TYPE_CHECKING:
    from .._app.sandbox import Pod
    from .._runtime.portforward_server import ServerPortForward
    from ..asyncio import ServerExec, ServerRequest

__all__ = ["NodeHooks"]


class NodeHooks(ServeHooks):
    """Applies a node's faults and pods to each session of the engine.

    Args:
        faults_for: the faults in force for a pod ``(namespace, name)``, read at each
            upgrade (a test may change them between sessions).
        handler_for: the handler of a pod, or ``None`` for a process pod.
        sessions: where the records go.
        log: where a refused upgrade is reported (the node's ``log=``), if anywhere.
    """

    def __init__(self, faults_for: Callable[[str, str], Faults],
                 handler_for: Callable[[str, str], Handler | None],
                 sessions: list[SessionRecord],
                 log: Callable[[str], None] | None = None) -> None:
        self._faults_for = faults_for
        self._handler_for = handler_for
        self._sessions = sessions
        self._log = log
        # From before_accept to run_session; a refused upgrade leaves its entry to the GC.
        self._pending: weakref.WeakKeyDictionary[ServerRequest, tuple[SessionRecord, Faults]] \
            = weakref.WeakKeyDictionary()

    async def before_accept(self, request: ServerRequest, pod: Pod, subresource: str) -> bool:
        """Refuse a transport, delay the upgrade, tap the connection."""
        faults = self._faults_for(pod.namespace, pod.name)
        # A port-forward upgrade's transport tells the tunnel from WebSocket v4.
        transport = request_transport(request.headers) if subresource == "portforward" \
            else request.upgrade
        if faults.refuse_transport is not None and transport == faults.refuse_transport:
            if self._log is not None:
                self._log(f"{subresource} in {pod.namespace}/{pod.name}: refused {transport} "
                          "(fault)")
            await request.reject(400, f"this node does not serve {transport} upgrades")
            return False
        if faults.upgrade_delay:
            await asyncio.sleep(faults.upgrade_delay)
        argv = tuple(value for key, value in request.query if key == "command") \
            if subresource == "exec" else ()
        record = SessionRecord(pod=pod.name, namespace=pod.namespace,
                               subresource=subresource, argv=argv,
                               offered=tuple(request.protocols))
        if faults.close_after_bytes_out == 0:
            tap = install_tap(request, close_after_out=None, close_after_in=None,
                              answer_pings=True, on_out=record.count_out,
                              on_in=record.count_in)
            if tap is not None:
                tap.cut()
            return False
        install_tap(request, close_after_out=faults.close_after_bytes_out,
                    close_after_in=faults.close_after_bytes_in,
                    answer_pings=faults.answer_pings, on_out=record.count_out,
                    on_in=record.count_in)
        self._pending[request] = (record, faults)
        return True

    async def run_session(self, request: ServerRequest, session: ServerExec, pod: Pod,
                          subresource: str, argv: Sequence[str], run: SessionRunner) -> None:
        """Record the session, apply its faults, run the handler or the process."""
        record, faults = self._pending.pop(request)
        record.transport, record.protocol, record.tty = \
            session.transport, session.protocol, session.tty
        self._sessions.append(record)
        lost = lost_future(session)
        instrument(session, record, faults, lost)
        handler = self._handler_for(pod.namespace, pod.name) if subresource == "exec" \
            else None
        try:
            if handler is None:
                await run(session)
                return
            exec_ = PodExec(
                argv=tuple(argv), pod=pod.name, namespace=pod.namespace, tty=session.tty,
                transport=session.transport, protocol=session.protocol,
                stdin=StdinStream(session),
                stdout=OutputStream(session, stderr=False,
                                    wanted=_wants(request, "stdout", "output")),
                stderr=_stderr(session, request), _session=session)
            await run_handler(handler, session, exec_, lost)
        finally:
            record.finished = True

    def port_forward_accepted(self, request: ServerRequest,
                              session: ServerPortForward) -> None:
        """Record the port-forward session (its transport and protocol)."""
        pending = self._pending.get(request)
        if pending is None:
            return
        record = pending[0]
        record.transport, record.protocol = session.transport, session.protocol
        self._sessions.append(record)

    def port_forward_ended(self, request: ServerRequest) -> None:
        """Mark the port-forward session's record finished."""
        pending = self._pending.pop(request, None)
        if pending is not None:
            pending[0].finished = True


def _wants(request: ServerRequest, *names: str) -> bool:
    return query_bool(request.query, *names)


def _stderr(session: ServerExec, request: ServerRequest) -> OutputStream:
    # A terminal has one output stream: stderr writes go to stdout.
    if session.tty:
        return OutputStream(session, stderr=False, wanted=_wants(request, "stdout", "output"))
    return OutputStream(session, stderr=True, wanted=_wants(request, "stderr", "error"))
