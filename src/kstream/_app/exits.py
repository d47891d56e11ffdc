"""Ending the process the way kubectl ends: by the signal that stopped it.

kubectl (a Go program) dies of SIGINT on Ctrl-C and of SIGPIPE when the reader of its
output goes away (``kubectl exec ... | head -1``): the shell then reports 130 or 141 and
prints nothing, and a script's ``trap`` or a ``while`` loop sees the signal. kstream
closes its session first (so the remote process ends), then does the same.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import NoReturn

__all__ = ["exit_by_signal"]


def exit_by_signal(signum: int) -> NoReturn:
    """End the process with ``signum``'s default action (exit status 128 + ``signum``).

    Args:
        signum: ``signal.SIGINT``, ``signal.SIGPIPE``...
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # the signal is delivered before this line on POSIX
