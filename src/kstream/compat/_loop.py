"""A private asyncio event loop in a thread, for the synchronous compat API."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")

#: Seconds stop() waits for the loop thread to finish its clean-up.
STOP_TIMEOUT: Final = 10.0


class LoopThread:
    """An event loop running in its own daemon thread until :meth:`stop`.

    The loop is never the current loop of any other thread, so the caller's own loop (a
    running one, or one set with ``set_event_loop``) is left alone. :meth:`stop` cancels
    what still runs on the loop, waits for it, closes the loop and joins the thread.

    Args:
        name: the thread's name.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    @property
    def alive(self) -> bool:
        """Whether the loop still accepts work."""
        return not self._stopping and self._thread.is_alive()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coroutine`` on the loop; its future can be waited for from any thread.

        Raises:
            RuntimeError: the loop was stopped.
        """
        if self._stopping:
            coroutine.close()
            raise RuntimeError("the kstream.compat event loop is stopped")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run_bounded(self, coroutine: Coroutine[Any, Any, object], timeout: float) -> None:
        """Run ``coroutine`` on the loop and wait up to ``timeout`` seconds for it.

        For closing: its outcome is not reported, and a stopped loop (the session already
        ended) runs nothing.
        """
        try:
            future = self.submit(coroutine)
        except RuntimeError:
            return  # the session already ended and its thread is stopping
        with contextlib.suppress(Exception):
            future.result(timeout)

    def call(self, callback: Callable[..., object], *args: Any) -> bool:
        """Schedule ``callback(*args)`` on the loop; ``False`` if the loop is gone."""
        if self._stopping:
            return False
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # closed meanwhile
            return False
        return True

    def in_loop_thread(self) -> bool:
        """Whether the calling thread is the loop's thread."""
        return threading.current_thread() is self._thread

    def stop(self) -> None:
        """Cancel what runs, close the loop and join the thread (idempotent).

        Called from the loop's own thread (a finalizer during garbage collection), it
        only asks the loop to stop.
        """
        if not self._stopping:
            self._stopping = True
            with contextlib.suppress(RuntimeError):  # already closed
                self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_loop_thread():
            self._thread.join(STOP_TIMEOUT)
