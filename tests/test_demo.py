"""``make demo`` (``python -m kstream.demo``): it runs, quotes its commands as a shell
would, and ends with the commands to try by hand."""

from __future__ import annotations

import os
import subprocess
import sys


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for client processes, without proxies or stray kube settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
    env.update(extra)
    return env


def test_demo_runs_and_ends_with_a_hint() -> None:
    completed = subprocess.run([sys.executable, "-m", "kstream.demo"], capture_output=True,
                               text=True, env=clean_env(), timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "  $ sh -c 'echo about to fail >&2; exit 3'" in out  # shell-quoted
    assert out.count("exit code: 3") == 3 and "Traceback" not in completed.stderr
    hint = out[out.index("Try it yourself"):].splitlines()
    assert any("kstream exec --kubeconfig /tmp/kc -i demo -- tr a-z A-Z" in line
               for line in hint)
    assert "bin/activate" in hint[0]
