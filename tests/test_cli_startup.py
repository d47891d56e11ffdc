"""What the ``kstream`` command loads to start: only what the command uses.

Start-up is part of the product (a command-line exec must start as fast as kubectl's):
these tests fail when a command that needs no connection imports the runtimes, and when
a plain-HTTP exec loads what only other commands need. They look at ``sys.modules`` of
a real ``kstream`` process, never at a clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: What no command that stays local may load: the runtimes, TLS, the kubeconfig loader.
ADAPTERS = frozenset({
    "asyncio", "trio", "ssl", "socket", "selectors", "threading", "subprocess",
    "kstream.asyncio", "kstream.trio", "kstream._runtime", "kstream._app.kubeconfig",
    "kstream._app.serve", "kstream._app.stdio", "websockets",
})
#: The sans-IO core: ``--version`` and ``--help`` need none of it (the error family and
#: the Status it carries, which the command's error handling names, are not in here).
CORE_PREFIXES = ("kstream._exec", "kstream._ws", "kstream._spdy", "kstream._upgrade",
                 "kstream._channels", "kstream._events", "kstream._http", "kstream._status.")

_REPORT = (
    "import runpy, sys\n"
    "sys.argv = ['kstream', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('kstream', run_name='__main__', alter_sys=True)\n"
    "except SystemExit:\n"
    "    pass\n"
    "sys.stdout.flush()\n"
    "print('LOADED', ' '.join(sorted(sys.modules)), file=sys.stderr)\n"
)


def _loaded(*args: str, stdin: int | None = subprocess.DEVNULL) -> set[str]:
    """The modules a ``kstream ARGS`` process had loaded when it ended."""
    # No coverage hooks in the child: coverage itself loads socket and threading.
    env = {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE")}
    result = subprocess.run([sys.executable, "-c", _REPORT, *args], capture_output=True,
                            text=True, env=env, stdin=stdin, timeout=60, check=False)
    lines = [line for line in result.stderr.splitlines() if line.startswith("LOADED ")]
    assert lines, result.stderr
    return set(lines[-1].split()[1:])


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["exec", "--help"]])
def test_local_commands_load_no_runtime(args: list[str]) -> None:
    loaded = _loaded(*args)
    assert sorted(loaded & ADAPTERS) == []
    core = [name for name in loaded
            if name.startswith(CORE_PREFIXES) or name == "kstream._status"]
    assert core == []


def test_argument_errors_load_no_runtime() -> None:
    loaded = _loaded("exec", "pod")  # no command after "--": refused before connecting
    assert sorted(loaded & ADAPTERS) == []


def test_plain_http_exec_loads_neither_trio_nor_the_server(tmp_path: Path) -> None:
    # A refused connection to a plain-HTTP server: everything up to the connect is loaded.
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "c",'
        ' "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],'
        ' "users": [{"name": "u", "user": {}}],'
        ' "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}')
    loaded = _loaded("exec", "--kubeconfig", str(kubeconfig), "--request-timeout", "5",
                     "pod", "--", "true")
    assert "kstream.asyncio" in loaded  # the exec did run
    unused = {"trio", "kstream.trio", "kstream._app.serve", "kstream._app.sandbox",
              "kstream._app.certs", "kstream._app.bench", "kstream.bench", "termios", "tty",
              "importlib.metadata", "websockets"}
    assert sorted(loaded & unused) == []
