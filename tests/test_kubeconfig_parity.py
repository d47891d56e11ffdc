"""kubeconfig parity with kubectl: YAML on a plain install, nothing secret to ``http://``.

client-go reads the user's credentials only for a server it reaches over TLS
(``clientcmd`` ``ClientConfig``: "only try to read the auth information if we are
secure"): no token, password, client certificate, impersonation header or exec plugin
for ``http://``. ``kstream serve --plain-http`` therefore puts its token in the URL path,
which keeps working.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from importlib.metadata import requires
from pathlib import Path
from typing import Any

import pytest

import kstream.asyncio
from kstream.kubeconfig import ConfigOverrides, KubeconfigError, load_config
from kstream.testing import FakeNode


def _config(server: str, user: dict[str, Any], **cluster: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    }


def _write(path: Path, document: dict[str, Any]) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_pyyaml_is_a_plain_dependency() -> None:
    # Every real kubeconfig is YAML: a plain `pip install kstream` must read it.
    dependencies = requires("kstream") or []
    plain = [d for d in dependencies if "extra ==" not in d]
    assert any(d.lower().startswith("pyyaml") for d in plain), dependencies
    assert any(d.lower().startswith("python-socks") for d in plain), dependencies


def test_a_kubeconfig_as_kubectl_writes_it(tmp_path: Path) -> None:
    # The shape `kubectl config view --raw` prints, anchors and all.
    (tmp_path / "config").write_text(
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        "    insecure-skip-tls-verify: true\n"
        "    proxy-url: socks5://127.0.0.1:1080\n"
        "    server: https://kube.example:6443\n"
        "  name: prod\n"
        "contexts:\n"
        "- context:\n"
        "    cluster: prod\n"
        "    namespace: web\n"
        "    user: &who admin\n"
        "  name: prod\n"
        "current-context: prod\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        "- name: *who\n"
        "  user:\n"
        "    token: 'yaml-token'\n"
    )
    connection = load_config(str(tmp_path / "config"), environ={})
    assert connection.server == "https://kube.example:6443"
    assert connection.namespace == "web"
    assert connection.headers == (("Authorization", "Bearer yaml-token"),)
    assert connection.proxy == "socks5://127.0.0.1:1080"


FAILING_PLUGIN = {"apiVersion": "client.authentication.k8s.io/v1", "command": "false"}


@pytest.mark.parametrize(("user", "over_https"), [
    ({"token": "secret"}, "Bearer secret"),
    ({"username": "admin", "password": "secret"}, "Basic "),
    ({"token": "secret", "as": "someone", "as-groups": ["admins"]}, "Impersonate-Group"),
    ({"exec": FAILING_PLUGIN}, "exec plugin"),  # over http it does not even run
    ({"client-certificate": "/nonexistent/c", "client-key": "/nonexistent/k"}, "cannot read"),
])
def test_no_credential_goes_to_an_http_server(tmp_path: Path, user: dict[str, Any],
                                              over_https: str) -> None:
    path = _write(tmp_path / "config", _config("http://kube.example:8080", user))
    connection = load_config(path, environ={})
    assert connection.headers == ()
    assert connection.ssl_context is None
    # The same user over https: its credentials are read (the plugin runs and fails, the
    # missing certificate is looked for).
    secure = _write(tmp_path / "secure", _config("https://kube.example:6443", user,
                                                  **{"insecure-skip-tls-verify": True}))
    try:
        shown = repr(load_config(secure, environ={"PATH": os.environ["PATH"]}).headers)
    except KubeconfigError as exc:
        shown = str(exc)
    assert over_https in shown


def test_no_token_flag_goes_to_an_http_server(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _config("https://kube.example", {"token": "file"}))
    connection = load_config(path, environ={}, overrides=ConfigOverrides(
        server="http://kube.example:8080", token="flag"))
    assert connection.headers == ()
    assert connection.server == "http://kube.example:8080"


def test_in_cluster_configuration_honours_https_proxy(tmp_path: Path) -> None:
    account = tmp_path / "var/run/secrets/kubernetes.io/serviceaccount"
    account.mkdir(parents=True)
    (account / "token").write_text("pod-token\n")
    environ = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
               "HTTPS_PROXY": "http://u:p%40ss@proxy.corp:3128"}
    connection = load_config(environ=environ, in_cluster_root=str(tmp_path))
    assert connection.proxy == "http://u:p%40ss@proxy.corp:3128"
    environ["NO_PROXY"] = "10.0.0.0/8"
    assert load_config(environ=environ, in_cluster_root=str(tmp_path)).proxy is None


@pytest.fixture(scope="module")
def plain_node() -> Iterator[FakeNode]:
    """``kstream serve --plain-http``'s engine: its kubeconfig is the one serve writes."""
    with FakeNode(tls=False).in_thread() as node:
        yield node


def test_serve_plain_http_token_in_the_path_still_works(plain_node: FakeNode) -> None:
    connection = load_config(plain_node.kubeconfig, environ={})
    assert connection.headers == ()
    assert "/kstream/" in connection.server  # the token travels in the path

    async def main() -> Any:
        return await kstream.asyncio.run(connection.server, connection.namespace, "demo",
                                         ["echo", "plain"], timeout=30, check=True)

    assert asyncio.run(main()).stdout == b"plain\n"
    assert plain_node.sessions[-1].argv == ("echo", "plain")
