"""Kubeconfig loading: merging, every field, exec plugins, in-cluster."""

from __future__ import annotations

import base64
import json
import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kstream._app.kubeconfig import (
    ConfigOverrides,
    KubeconfigError,
    in_cluster_config,
    load_config,
    load_kubeconfig_files,
)


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key, made with the openssl command line."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=kstream-test",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


def _config(*, server: str = "https://127.0.0.1:6443", cluster: dict[str, Any] | None = None,
            user: dict[str, Any] | None = None, namespace: str | None = None,
            name: str = "c1", current: str | None = "c1") -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace is not None:
        context["namespace"] = namespace
    document: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": name, "user": user or {}}],
        "contexts": [{"name": name, "context": context}],
    }
    if current is not None:
        document["current-context"] = current
    return document


def _write(path: Path, document: dict[str, Any]) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "PATH": os.environ.get("PATH", ""), **extra}


def _bearer(headers: tuple[tuple[str, str], ...]) -> str | None:
    for name, value in headers:
        if name == "Authorization" and value.startswith("Bearer "):
            return value[len("Bearer "):]
    return None


# --------------------------------------------------------------------------- files


def test_json_file_with_token_and_namespace(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _config(user={"token": "t0k"}, namespace="team",
                                                cluster={"insecure-skip-tls-verify": True}))
    connection = load_config(path, environ=_environ(tmp_path))
    assert connection.server == "https://127.0.0.1:6443"
    assert connection.namespace == "team"
    assert connection.headers == (("Authorization", "Bearer t0k"),)
    assert connection.context_name == "c1"
    assert connection.ssl_context is not None
    assert connection.ssl_context.verify_mode == ssl.CERT_NONE
    assert connection.ssl_context.check_hostname is False


def test_yaml_file(tmp_path: Path) -> None:
    (tmp_path / "config").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: y\n"
        "clusters:\n- name: y\n  cluster:\n    server: https://127.0.0.1:8080\n"
        "users:\n- name: y\n  user:\n    token: abc\n"
        "contexts:\n- name: y\n  context: {cluster: y, user: y}\n"
    )
    connection = load_config(str(tmp_path / "config"), environ=_environ(tmp_path))
    assert connection.server == "https://127.0.0.1:8080"
    assert connection.namespace == "default"
    assert _bearer(connection.headers) == "abc"


def test_json_works_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    path = _write(tmp_path / "config", _config(server="https://127.0.0.1:1",
                                                user={"token": "j"}))
    assert _bearer(load_config(path, environ=_environ(tmp_path)).headers) == "j"
    (tmp_path / "yaml").write_text("clusters: []\ncurrent-context: x\n")
    with pytest.raises(KubeconfigError, match="PyYAML"):
        load_config(str(tmp_path / "yaml"), environ=_environ(tmp_path))


def test_home_default_location(tmp_path: Path) -> None:
    (tmp_path / "home" / ".kube").mkdir(parents=True)
    _write(tmp_path / "home" / ".kube" / "config", _config(user={"token": "home"}))
    assert _bearer(load_config(environ=_environ(tmp_path)).headers) == "home"


def test_kubeconfig_merge_first_file_wins(tmp_path: Path) -> None:
    first = _config(server="https://first:1", user={"token": "one"}, current=None)
    second = _config(server="https://second:2", user={"token": "two"}, current="c1")
    second["clusters"].append({"name": "other", "cluster": {"server": "https://other:3"}})
    second["contexts"].append({"name": "c2", "context": {"cluster": "other", "user": "c1",
                                                          "namespace": "ns2"}})
    listed = os.pathsep.join([_write(tmp_path / "a", first), str(tmp_path / "missing"),
                              _write(tmp_path / "b", second)])
    environ = _environ(tmp_path, KUBECONFIG=listed)
    merged = load_kubeconfig_files(listed.split(os.pathsep))
    assert merged["current-context"] == "c1"  # from the second file: the first sets none
    assert set(merged["clusters"]) == {"c1", "other"}
    connection = load_config(environ=environ)
    assert connection.server == "https://first:1"  # c1 comes from the first file
    assert _bearer(connection.headers) == "one"
    other = load_config(environ=environ, overrides=ConfigOverrides(context="c2"))
    assert other.server == "https://other:3"
    assert other.namespace == "ns2"


def test_current_context_first_setter_wins(tmp_path: Path) -> None:
    first = _config(name="x", current="x", user={"token": "x"})
    second = _config(name="y", current="y", user={"token": "y"})
    listed = os.pathsep.join([_write(tmp_path / "a", first), _write(tmp_path / "b", second)])
    assert _bearer(load_config(environ=_environ(tmp_path, KUBECONFIG=listed)).headers) == "x"


def test_explicit_kubeconfig_ignores_environment(tmp_path: Path) -> None:
    env_file = _write(tmp_path / "env", _config(user={"token": "env"}))
    flag_file = _write(tmp_path / "flag", _config(user={"token": "flag"}))
    environ = _environ(tmp_path, KUBECONFIG=env_file)
    assert _bearer(load_config(flag_file, environ=environ).headers) == "flag"
    with pytest.raises(KubeconfigError, match="does not exist"):
        load_config(str(tmp_path / "nope"), environ=environ)


def test_missing_context_cluster_and_user(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _config(current="ghost"))
    with pytest.raises(KubeconfigError, match='context "ghost" does not exist'):
        load_config(path, environ=_environ(tmp_path))
    document = _config()
    document["contexts"][0]["context"]["cluster"] = "nowhere"
    with pytest.raises(KubeconfigError, match='cluster "nowhere" does not exist'):
        load_config(_write(tmp_path / "c2", document), environ=_environ(tmp_path))


def test_malformed_documents(tmp_path: Path) -> None:
    (tmp_path / "list").write_text("[1, 2]")
    with pytest.raises(KubeconfigError, match="mapping"):
        load_config(str(tmp_path / "list"), environ=_environ(tmp_path))
    (tmp_path / "noname").write_text(json.dumps({"clusters": [{"cluster": {}}]}))
    with pytest.raises(KubeconfigError, match="needs a name"):
        load_config(str(tmp_path / "noname"), environ=_environ(tmp_path))
    (tmp_path / "bad").write_text("clusters: [unclosed")
    with pytest.raises(KubeconfigError, match="invalid YAML"):
        load_config(str(tmp_path / "bad"), environ=_environ(tmp_path))


def test_no_configuration_at_all(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="no configuration"):
        load_config(environ=_environ(tmp_path), in_cluster_root=str(tmp_path))


# --------------------------------------------------------------------------- credentials


def test_token_file_relative_to_kubeconfig_and_preferred(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "token.txt").write_text("from-file\n")
    path = _write(tmp_path / "sub" / "config",
                  _config(user={"token": "inline", "tokenFile": "token.txt"}))
    assert _bearer(load_config(path, environ=_environ(tmp_path)).headers) == "from-file"


def test_basic_auth_and_impersonation(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _config(
        user={"username": "ann", "password": "pw", "as": "bob", "as-groups": ["g1", "g2"]}))
    headers = load_config(path, environ=_environ(tmp_path)).headers
    assert headers[0] == ("Authorization", "Basic " + base64.b64encode(b"ann:pw").decode())
    assert headers[1:] == (("Impersonate-User", "bob"), ("Impersonate-Group", "g1"),
                           ("Impersonate-Group", "g2"))


def test_certificate_authority_data_and_file(tmp_path: Path,
                                             tls_pair: tuple[Path, Path]) -> None:
    cert, _ = tls_pair
    data = base64.b64encode(cert.read_bytes()).decode()
    for cluster in ({"certificate-authority-data": data},
                    {"certificate-authority": str(cert)}):
        path = _write(tmp_path / "config", _config(cluster=cluster))
        context = load_config(path, environ=_environ(tmp_path)).ssl_context
        assert context is not None
        assert context.verify_mode == ssl.CERT_REQUIRED
        subjects = [str(ca["subject"]) for ca in context.get_ca_certs()]
        assert any("kstream-test" in subject for subject in subjects)


def test_insecure_with_ca_is_refused_and_flag_drops_ca(tmp_path: Path,
                                                        tls_pair: tuple[Path, Path]) -> None:
    cert, _ = tls_pair
    path = _write(tmp_path / "config", _config(cluster={
        "certificate-authority": str(cert), "insecure-skip-tls-verify": True}))
    with pytest.raises(KubeconfigError, match="insecure"):
        load_config(path, environ=_environ(tmp_path))
    path = _write(tmp_path / "config2", _config(cluster={"certificate-authority": str(cert)}))
    context = load_config(path, environ=_environ(tmp_path), overrides=ConfigOverrides(
        insecure_skip_tls_verify=True)).ssl_context
    assert context is not None and context.verify_mode == ssl.CERT_NONE


def test_invalid_ca_data(tmp_path: Path) -> None:
    bogus = base64.b64encode(b"not a certificate").decode()
    path = _write(tmp_path / "config", _config(cluster={"certificate-authority-data": bogus}))
    with pytest.raises(KubeconfigError, match="TLS"):
        load_config(path, environ=_environ(tmp_path))


def test_tls_server_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _config(cluster={"tls-server-name": "api.internal"}))
    assert load_config(path, environ=_environ(tmp_path)).server_hostname == "api.internal"
    override = load_config(path, environ=_environ(tmp_path),
                           overrides=ConfigOverrides(tls_server_name="x.example"))
    assert override.server_hostname == "x.example"


def test_client_certificate_files_and_data(tmp_path: Path,
                                          tls_pair: tuple[Path, Path]) -> None:
    cert, key = tls_pair
    as_files = {"client-certificate": str(cert), "client-key": str(key)}
    as_data = {"client-certificate-data": base64.b64encode(cert.read_bytes()).decode(),
               "client-key-data": base64.b64encode(key.read_bytes()).decode()}
    for user in (as_files, as_data):
        path = _write(tmp_path / "config", _config(user=user))
        assert load_config(path, environ=_environ(tmp_path)).ssl_context is not None
    mismatched = {"client-certificate": str(cert), "client-key-data": as_data[
        "client-certificate-data"]}
    with pytest.raises(KubeconfigError, match="TLS"):
        load_config(_write(tmp_path / "bad", _config(user=mismatched)),
                    environ=_environ(tmp_path))
    with pytest.raises(KubeconfigError, match="together"):
        load_config(_write(tmp_path / "half", _config(user={"client-certificate": str(cert)})),
                    environ=_environ(tmp_path))


def test_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _config(user={"token": "file"}, namespace="a"))
    connection = load_config(path, environ=_environ(tmp_path), overrides=ConfigOverrides(
        server="https://127.0.0.1:9/prefix/", token="flag", namespace="b"))
    assert connection.server == "https://127.0.0.1:9/prefix"
    assert connection.headers == (("Authorization", "Bearer flag"),)
    assert connection.namespace == "b"
    bare = load_config(environ=_environ(tmp_path), in_cluster_root=str(tmp_path),
                       overrides=ConfigOverrides(server="127.0.0.1:6443", token="t"))
    assert bare.server == "https://127.0.0.1:6443"


def test_auth_provider_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _config(user={"auth-provider": {"name": "gcp"}}))
    with pytest.raises(KubeconfigError, match="exec credential plugin"):
        load_config(path, environ=_environ(tmp_path))


# --------------------------------------------------------------------------- exec plugins

_PLUGIN = """\
#!{python}
import json, os, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
with open({record!r}, "w") as handle:
    json.dump({{"info": info, "args": sys.argv[1:], "env": os.environ.get("PLUGIN_VAR")}},
              handle)
status = json.loads({status!r})
print(json.dumps({{"apiVersion": {answer_version!r}, "kind": "ExecCredential",
                  "status": status}}))
sys.exit({code})
"""


def _plugin(tmp_path: Path, *, status: dict[str, Any], version: str, code: int = 0,
            answer_version: str | None = None) -> Path:
    script = tmp_path / "plugin.py"
    script.write_text(_PLUGIN.format(
        python=sys.executable, record=str(tmp_path / "record.json"),
        status=json.dumps(status), answer_version=answer_version or version, code=code))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize("version", ["client.authentication.k8s.io/v1",
                                     "client.authentication.k8s.io/v1beta1"])
def test_exec_plugin_token(tmp_path: Path, version: str) -> None:
    _plugin(tmp_path, status={"token": "from-plugin"}, version=version)
    path = _write(tmp_path / "config", _config(
        cluster={"insecure-skip-tls-verify": True, "extensions": [
            {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "a"}}]},
        user={"token": "static", "exec": {
            "apiVersion": version, "command": "./plugin.py", "args": ["--flag", "x"],
            "env": [{"name": "PLUGIN_VAR", "value": "v"}], "interactiveMode": "Never",
            "provideClusterInfo": True}}))
    connection = load_config(path, environ=_environ(tmp_path))
    assert _bearer(connection.headers) == "from-plugin"
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["args"] == ["--flag", "x"]
    assert record["env"] == "v"
    assert record["info"]["apiVersion"] == version
    assert record["info"]["kind"] == "ExecCredential"
    assert record["info"]["spec"]["interactive"] is False
    cluster = record["info"]["spec"]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert cluster["insecure-skip-tls-verify"] is True
    assert cluster["config"] == {"audience": "a"}


def test_exec_plugin_client_certificate(tmp_path: Path, tls_pair: tuple[Path, Path]) -> None:
    cert, key = tls_pair
    version = "client.authentication.k8s.io/v1"
    _plugin(tmp_path, version=version, status={
        "clientCertificateData": cert.read_text(), "clientKeyData": key.read_text()})
    path = _write(tmp_path / "config", _config(user={"exec": {
        "apiVersion": version, "command": str(tmp_path / "plugin.py"),
        "interactiveMode": "Never"}}))
    connection = load_config(path, environ=_environ(tmp_path))
    assert connection.ssl_context is not None
    assert connection.headers == ()
    record = json.loads((tmp_path / "record.json").read_text())
    assert "cluster" not in record["info"]["spec"]


@pytest.mark.parametrize(("status", "code", "answer", "message"), [
    ({"token": "x"}, 1, None, "exited with status 1"),
    ({"token": "x"}, 0, "client.authentication.k8s.io/v1alpha1", "plugin returned version"),
    ({}, 0, None, "didn't return a token"),
    ({"clientCertificateData": "c"}, 0, None, "didn't return a token"),
])
def test_exec_plugin_failures(tmp_path: Path, status: dict[str, Any], code: int,
                              answer: str | None, message: str) -> None:
    version = "client.authentication.k8s.io/v1beta1"
    _plugin(tmp_path, status=status, version=version, code=code, answer_version=answer)
    path = _write(tmp_path / "config", _config(user={"exec": {
        "apiVersion": version, "command": str(tmp_path / "plugin.py")}}))
    with pytest.raises(KubeconfigError, match=message):
        load_config(path, environ=_environ(tmp_path))


def test_exec_plugin_missing_binary_and_bad_version(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", _config(user={"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": "kstream-no-such-plugin",
        "installHint": "install it from example.com"}}))
    with pytest.raises(KubeconfigError, match=r"example\.com"):
        load_config(path, environ=_environ(tmp_path))
    path = _write(tmp_path / "config2", _config(user={"exec": {
        "apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "true"}}))
    with pytest.raises(KubeconfigError, match="unsupported apiVersion"):
        load_config(path, environ=_environ(tmp_path))


# --------------------------------------------------------------------------- in-cluster


def _service_account(root: Path, *, namespace: str | None = "apps") -> None:
    account = root / "var/run/secrets/kubernetes.io/serviceaccount"
    account.mkdir(parents=True)
    (account / "token").write_text("sa-token\n")
    if namespace is not None:
        (account / "namespace").write_text(namespace)


def test_in_cluster_fallback(tmp_path: Path, tls_pair: tuple[Path, Path]) -> None:
    _service_account(tmp_path)
    account = tmp_path / "var/run/secrets/kubernetes.io/serviceaccount"
    (account / "ca.crt").write_bytes(tls_pair[0].read_bytes())
    environ = _environ(tmp_path, KUBERNETES_SERVICE_HOST="10.0.0.1",
                       KUBERNETES_SERVICE_PORT="443")
    connection = load_config(environ=environ, in_cluster_root=str(tmp_path))
    assert connection.server == "https://10.0.0.1:443"
    assert connection.namespace == "apps"
    assert _bearer(connection.headers) == "sa-token"
    assert connection.ssl_context is not None
    assert connection.context_name is None
    overridden = load_config(environ=environ, in_cluster_root=str(tmp_path),
                             overrides=ConfigOverrides(namespace="x", token="y"))
    assert (overridden.namespace, _bearer(overridden.headers)) == ("x", "y")


def test_in_cluster_ipv6_and_absent(tmp_path: Path) -> None:
    _service_account(tmp_path, namespace=None)
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    connection = in_cluster_config(environ, str(tmp_path))
    assert connection is not None
    assert connection.server == "https://[fd00::1]:443"
    assert connection.namespace == "default"
    assert in_cluster_config({}, str(tmp_path)) is None
    assert in_cluster_config(environ, str(tmp_path / "elsewhere")) is None


def test_kubeconfig_wins_over_in_cluster(tmp_path: Path) -> None:
    _service_account(tmp_path)
    path = _write(tmp_path / "config", _config(user={"token": "file"}))
    environ = _environ(tmp_path, KUBERNETES_SERVICE_HOST="10.0.0.1",
                       KUBERNETES_SERVICE_PORT="443")
    connection = load_config(path, environ=environ, in_cluster_root=str(tmp_path))
    assert _bearer(connection.headers) == "file"
