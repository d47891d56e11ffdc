"""``kstream serve`` that cannot start: one line naming the address or the file, no
traceback, exit code 1 (2 with the usage for a port out of range)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_TIMEOUT = 60


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for client processes, without proxies or stray kube settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().endswith("_PROXY") and not key.startswith("KUBE")}
    env.update(extra)
    return env


def other_tls_files(directory: Path) -> tuple[Path, Path]:
    """A second ``(chain, key)`` for 127.0.0.1, as the ``tls_files`` fixture makes them:
    its key matches none of the fixture's certificates."""
    from kstream._app import certs

    generated = certs.generate("127.0.0.1")
    chain, key = directory / "other-chain.pem", directory / "other-key.pem"
    chain.write_bytes(generated.cert_pem)
    key.write_bytes(generated.key_pem)
    return chain, key


def serve_all(*invocations: Sequence[str]) -> list[subprocess.CompletedProcess[bytes]]:
    """Run several ``kstream serve`` that must fail at once; results in order."""
    def run(args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "kstream", "serve", *args],
                              capture_output=True, timeout=_TIMEOUT, check=False,
                              env=clean_env(), stdin=subprocess.DEVNULL)

    with ThreadPoolExecutor(len(invocations)) as pool:
        return list(pool.map(run, invocations))


def failure(result: subprocess.CompletedProcess[bytes]) -> str:
    """The one line of a serve that did not start (exit code 1, nothing on stdout)."""
    text = result.stderr.decode()
    assert "Traceback" not in text
    assert (result.returncode, result.stdout) == (1, b""), text
    lines = text.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("kstream serve: error: "), lines
    return lines[0].removeprefix("kstream serve: error: ")


def test_addresses() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        in_use, range_, not_local, unknown = serve_all(
            ["--plain-http", "--port", str(port)],
            ["--plain-http", "--port", "70000"],
            ["--plain-http", "--host", "192.0.2.1"],
            ["--plain-http", "--host", "kstream-no-such-host.invalid"])
    assert failure(in_use) == f"cannot listen on 127.0.0.1:{port}: the address is already in use"
    text = range_.stderr.decode()
    assert range_.returncode == 2 and "Traceback" not in text
    assert text.splitlines()[0].startswith("usage: kstream serve ")
    assert text.splitlines()[-1] == ("kstream serve: error: argument --port: '70000' is not a "
                                     "port number (0 to 65535)")
    assert failure(not_local) == ("cannot listen on 192.0.2.1: 192.0.2.1 is not an address "
                                  "of this machine")
    assert failure(unknown).startswith(
        "cannot listen on kstream-no-such-host.invalid: unknown host (")


def test_tls_files(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    other_cert, other_key = other_tls_files(tmp_path)
    missing = tmp_path / "missing.pem"
    missing_cert, missing_key, mismatched, no_key, not_a_cert, not_a_key, a_directory = \
        serve_all(
            ["--tls-cert", str(missing)],
            ["--tls-cert", str(cert), "--tls-key", str(missing)],
            ["--tls-cert", str(cert), "--tls-key", str(other_key)],
            ["--tls-cert", str(other_cert)],
            ["--tls-cert", str(key), "--tls-key", str(key)],
            ["--tls-cert", str(cert), "--tls-key", str(cert)],
            ["--tls-cert", str(tmp_path)])
    assert failure(missing_cert) == f"--tls-cert {missing}: No such file or directory"
    assert failure(missing_key) == f"--tls-key {missing}: No such file or directory"
    assert failure(mismatched) == f"--tls-key {other_key} does not match --tls-cert {cert}"
    assert failure(no_key) == (f"--tls-cert {other_cert}: no private key in this file "
                               f"(give it with --tls-key)")
    assert failure(not_a_cert) == f"--tls-cert {key}: no PEM certificate in this file"
    assert failure(not_a_key) == f"--tls-key {cert}: no PEM private key in this file"
    assert failure(a_directory) == f"--tls-cert {tmp_path}: is a directory, not a file"


def test_kubeconfig_paths(tmp_path: Path) -> None:
    nowhere = tmp_path / "no" / "such" / "kubeconfig"
    in_missing, directory = serve_all(
        ["--plain-http", "--kubeconfig", str(nowhere)],
        ["--plain-http", "--kubeconfig", str(tmp_path)])
    assert failure(in_missing) == (f"--kubeconfig {nowhere}: directory {nowhere.parent} "
                                   f"does not exist")
    assert failure(directory) == (f"--kubeconfig {tmp_path}: is a directory; give the path "
                                  f"of a file to write")


def test_pod_ports() -> None:
    range_, name, syntax, unknown, twice, default = serve_all(
        ["--plain-http", "--pod", "web", "--pod-port", "web=http:70000"],
        ["--plain-http", "--pod", "web", "--pod-port", "web=HTTP:80"],
        ["--plain-http", "--pod-port", "demo=8080"],
        ["--plain-http", "--pod", "web", "--pod-port", "other=http:80"],
        ["--plain-http", "--pod-port", "demo=http:80", "--pod-port", "demo=http:81"],
        # Without --pod the only pod is demo, in the namespace default.
        ["--plain-http", "--pod-port", "team/demo=http:80"])
    assert failure(range_) == ("--pod-port web=http:70000: port http = 70000 must be "
                               "between 1 and 65535, inclusive")
    assert failure(name) == ("--pod-port web=HTTP:80: port name 'HTTP' must contain only "
                             "alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    assert failure(syntax) == ("--pod-port demo=8080: expected [NAMESPACE/]POD=NAME:PORT, "
                               "such as demo=http:8080")
    assert failure(unknown) == ("--pod-port other=http:80: no pod other in namespace "
                                "default (declare it with --pod)")
    assert failure(twice) == "--pod-port demo=http:81: pod demo declares port http twice"
    assert failure(default) == ("--pod-port team/demo=http:80: no pod demo in namespace "
                                "team (declare it with --pod)")
