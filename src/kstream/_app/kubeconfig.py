"""Kubeconfig loading, as kubectl reads it.

Follows client-go's ``tools/clientcmd`` (``loader.go``, ``client_config.go``,
``merged_client_builder.go``) and ``plugin/pkg/client/auth/exec/exec.go``:

* files: ``--kubeconfig`` alone when given; else every file of ``KUBECONFIG`` (joined with
  ``os.pathsep``; missing files skipped) merged so that the first file to set a named
  cluster, user or context -- or ``current-context`` -- wins; else ``~/.kube/config``;
* when none of them names a server, the in-cluster service-account configuration;
* relative file references (``certificate-authority``, ``client-certificate``,
  ``client-key``, ``tokenFile``, an exec plugin's ``command`` containing a slash) are
  resolved against the directory of the file that held them;
* credentials: ``token`` / ``tokenFile`` (the file wins, as in client-go's rest config),
  basic auth, client certificates (files or ``-data``), and exec credential plugins
  (``client.authentication.k8s.io/v1`` and ``v1beta1`` ``ExecCredential``) -- for
  ``https`` servers only: like client-go (``client_config.go``, "only try to read the
  auth information if we are secure"), nothing of the user is read, run or sent for an
  ``http`` server (a token in the server URL's path, as ``kstream serve --plain-http`` writes
  it, still reaches it);
* the proxy: the cluster's ``proxy-url``, else ``HTTPS_PROXY`` / ``HTTP_PROXY`` /
  ``NO_PROXY`` (:mod:`kstream._runtime.proxy`).

Kubeconfigs are YAML (JSON is read without it, and faster): PyYAML is a dependency of
kstream, imported only for a file that is not JSON.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from .._errors import KstreamError

__all__ = [
    "ClusterConnection",
    "ConfigOverrides",
    "KubeconfigError",
    "build_ssl_context",
    "in_cluster_config",
    "load_config",
    "load_kubeconfig_files",
    "merge_kubeconfigs",
]

#: Where client-go reads the in-cluster service account (``rest.InClusterConfig``).
SERVICE_ACCOUNT_DIR: Final = "var/run/secrets/kubernetes.io/serviceaccount"

_EXEC_API_VERSIONS: Final = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)
# Key under a cluster's ``extensions`` whose value is handed to exec plugins as
# ``spec.cluster.config`` (client-go ``exec.go``, ``clusterExtensionKey``).
_EXEC_CLUSTER_EXTENSION: Final = "client.authentication.k8s.io/exec"
_EXEC_PLUGIN_TIMEOUT: Final = 120.0


class KubeconfigError(KstreamError):
    """The kubeconfig could not be read, or does not say how to reach a cluster."""


@dataclass(frozen=True, slots=True)
class ConfigOverrides:
    """Command-line overrides, applied on top of the kubeconfig as kubectl applies them.

    Attributes:
        context: use this context instead of ``current-context``.
        namespace: ``-n``.
        server: ``--server``.
        token: ``--token`` (replaces every other credential of the user).
        certificate_authority: ``--certificate-authority`` (a file).
        insecure_skip_tls_verify: ``--insecure-skip-tls-verify`` (drops the CA).
        tls_server_name: ``--tls-server-name``.
    """

    context: str | None = None
    namespace: str | None = None
    server: str | None = None
    token: str | None = None
    certificate_authority: str | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterConnection:
    """Everything needed to open an exec/attach connection to a cluster.

    Attributes:
        server: the API server URL (``https://host:port`` with an optional path prefix).
        namespace: the namespace of the selected context (``"default"`` when unset).
        headers: request headers carrying the credentials (``Authorization``).
        ssl_context: the TLS context for ``https`` servers, ``None`` for ``http``.
        server_hostname: the name to send in SNI and verify the certificate against,
            when it differs from the URL's host (``tls-server-name``).
        context_name: the kubeconfig context used, ``None`` in-cluster or without one.
        proxy: the proxy URL to connect through (the cluster's ``proxy-url``, or the one
            ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` choose), ``None`` for a
            direct connection; pass it as the ``proxy`` argument of ``open_exec``.
    """

    server: str
    namespace: str = "default"
    headers: tuple[tuple[str, str], ...] = ()
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    context_name: str | None = None
    proxy: str | None = field(default=None, repr=False)  # may hold a password


@dataclass(slots=True)
class _Credentials:
    token: str | None = None
    basic: tuple[str, str] | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    extra_headers: list[tuple[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# Reading and merging files


def _parse_document(text: str, origin: str) -> dict[str, Any]:
    """Parse a kubeconfig document: JSON with the standard library, else YAML."""
    try:
        data: object = json.loads(text)
    except ValueError:
        try:
            # Imported by name so that the type checker needs no PyYAML stubs.
            yaml: Any = importlib.import_module("yaml")
        except ImportError:  # a dependency of kstream: only a broken install lacks it
            raise KubeconfigError(
                f"{origin}: not JSON, and reading YAML needs PyYAML (pip install PyYAML)"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise KubeconfigError(f"{origin}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise KubeconfigError(f"{origin}: a kubeconfig must be a mapping")
    return data


def _named_entries(config: Mapping[str, Any], section: str, item: str,
                   origin: str) -> list[tuple[str, dict[str, Any]]]:
    entries = config.get(section) or []
    if not isinstance(entries, list):
        raise KubeconfigError(f"{origin}: {section} must be a list")
    result = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigError(f"{origin}: every entry of {section} needs a name")
        body = entry.get(item) or {}
        if not isinstance(body, dict):
            raise KubeconfigError(
                f"{origin}: {section} {entry['name']!r}: {item} must be a mapping"
            )
        result.append((entry["name"], body))
    return result


# Fields holding file names, resolved against the kubeconfig's directory
# (clientcmd ``GetClusterFileReferences`` / ``GetAuthInfoFileReferences``).
_CLUSTER_FILE_FIELDS: Final = ("certificate-authority",)
_USER_FILE_FIELDS: Final = ("client-certificate", "client-key", "tokenFile")


def _resolve(path: str, base: Path) -> str:
    return path if not path or os.path.isabs(path) else str(base / path)


def _resolve_paths(section: str, body: dict[str, Any], base: Path) -> dict[str, Any]:
    body = dict(body)
    names = _CLUSTER_FILE_FIELDS if section == "clusters" else _USER_FILE_FIELDS
    for name in names:
        if isinstance(body.get(name), str):
            body[name] = _resolve(body[name], base)
    plugin = body.get("exec")
    if section == "users" and isinstance(plugin, dict):
        command = plugin.get("command")
        # client-go resolves the command only when it names a path, not a bare program
        # looked up in $PATH (clientcmd loader.go, ResolveLocalPaths).
        if isinstance(command, str) and os.sep in command:
            body["exec"] = {**plugin, "command": _resolve(command, base)}
    return body


def load_kubeconfig_files(paths: Sequence[str | os.PathLike[str]]) -> dict[str, Any]:
    """Read kubeconfig files and merge them the way kubectl merges ``KUBECONFIG``.

    Args:
        paths: the files, highest priority first. Missing files are skipped.

    Returns:
        One merged kubeconfig (``clusters``, ``users``, ``contexts`` as name-keyed dicts
        of the entries' bodies, ``current-context``), with relative file references made
        absolute.

    Raises:
        KubeconfigError: a file exists but cannot be read or parsed.
    """
    documents = []
    for raw_path in paths:
        path = Path(raw_path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise KubeconfigError(f"cannot read kubeconfig {path}: {exc}") from None
        documents.append((_parse_document(text, str(path)), path.resolve().parent, str(path)))
    return merge_kubeconfigs(documents)


def merge_kubeconfigs(
    documents: Sequence[tuple[Mapping[str, Any], Path, str]],
) -> dict[str, Any]:
    """Merge parsed kubeconfigs; the first to set a name or ``current-context`` wins.

    Args:
        documents: ``(document, directory, origin)`` triples, highest priority first;
            ``directory`` resolves relative paths, ``origin`` names the file in errors.

    Returns:
        The merged kubeconfig (see :func:`load_kubeconfig_files`).

    Raises:
        KubeconfigError: a document is malformed.
    """
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {},
                              "current-context": ""}
    for document, base, origin in documents:
        for section, item in (("clusters", "cluster"), ("users", "user"),
                              ("contexts", "context")):
            for name, body in _named_entries(document, section, item, origin):
                merged[section].setdefault(name, _resolve_paths(section, body, base))
        current = document.get("current-context")
        if current and not merged["current-context"]:
            merged["current-context"] = str(current)
    return merged


def _default_paths(kubeconfig: str | None, environ: Mapping[str, str]) -> list[str]:
    if kubeconfig:
        if not os.path.exists(kubeconfig):
            raise KubeconfigError(f"kubeconfig {kubeconfig} does not exist")
        return [kubeconfig]
    listed = environ.get("KUBECONFIG", "")
    if listed:
        unique: list[str] = []
        for item in listed.split(os.pathsep):
            if item and item not in unique:
                unique.append(item)
        return unique
    home = environ.get("HOME") or os.path.expanduser("~")
    return [os.path.join(home, ".kube", "config")]


# --------------------------------------------------------------------------------------
# Credentials


def _decode_data(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise KubeconfigError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise KubeconfigError(f"{what} is not valid base64") from None


def _read_file(path: object, what: str) -> bytes:
    if not isinstance(path, str):
        raise KubeconfigError(f"{what} must be a file name")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise KubeconfigError(f"cannot read {what} {path}: {exc}") from None


def _data_or_file(body: Mapping[str, Any], name: str) -> bytes | None:
    if body.get(f"{name}-data"):
        return _decode_data(body[f"{name}-data"], f"{name}-data")
    if body.get(name):
        return _read_file(body[name], name)
    return None


def _exec_cluster_info(cluster: Mapping[str, Any], server: str) -> dict[str, Any]:
    """``spec.cluster`` of the ExecCredential (client-go ``exec.go`` ``ConfigToExecCluster``)."""
    info: dict[str, Any] = {"server": server}
    if cluster.get("tls-server-name"):
        info["tls-server-name"] = cluster["tls-server-name"]
    if cluster.get("insecure-skip-tls-verify"):
        info["insecure-skip-tls-verify"] = True
    ca = _data_or_file(cluster, "certificate-authority")
    if ca is not None:
        info["certificate-authority-data"] = base64.b64encode(ca).decode("ascii")
    if cluster.get("proxy-url"):
        info["proxy-url"] = cluster["proxy-url"]
    extensions = cluster.get("extensions") or []
    if isinstance(extensions, list):
        for extension in extensions:
            if isinstance(extension, dict) and extension.get("name") == _EXEC_CLUSTER_EXTENSION:
                info["config"] = extension.get("extension")
    return info


def _run_exec_plugin(plugin: Mapping[str, Any], cluster: Mapping[str, Any], server: str,
                     environ: Mapping[str, str]) -> _Credentials:
    """Run an exec credential plugin and read its ``ExecCredential``."""
    api_version = plugin.get("apiVersion")
    if api_version not in _EXEC_API_VERSIONS:
        raise KubeconfigError(
            f"exec plugin: unsupported apiVersion {api_version!r} "
            f"(supported: {', '.join(_EXEC_API_VERSIONS)})"
        )
    command = plugin.get("command")
    if not isinstance(command, str) or not command:
        raise KubeconfigError("exec plugin: command is required")
    args = plugin.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise KubeconfigError("exec plugin: args must be a list of strings")
    env = dict(environ)
    for entry in plugin.get("env") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise KubeconfigError("exec plugin: env entries need a name and a value")
        env[entry["name"]] = str(entry.get("value", ""))
    # Interactive only when the plugin allows it and we have a terminal to lend it
    # (client-go exec.go: interactiveMode Never / IfAvailable / Always).
    mode = plugin.get("interactiveMode") or "IfAvailable"
    interactive = mode != "Never" and sys.stdin is not None and sys.stdin.isatty()
    if mode == "Always" and not interactive:
        raise KubeconfigError("exec plugin: interactiveMode Always needs a terminal on stdin")
    spec: dict[str, Any] = {"interactive": interactive}
    if plugin.get("provideClusterInfo"):
        spec["cluster"] = _exec_cluster_info(cluster, server)
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {"kind": "ExecCredential", "apiVersion": api_version, "spec": spec},
        separators=(",", ":"),
    )
    try:
        completed = subprocess.run(
            [command, *args], env=env, stdout=subprocess.PIPE,
            stdin=None if interactive else subprocess.DEVNULL,
            timeout=_EXEC_PLUGIN_TIMEOUT, check=False,
        )
    except FileNotFoundError:
        hint = plugin.get("installHint") or ""
        raise KubeconfigError(
            f"exec plugin: executable {command} not found" + (f"\n\n{hint}" if hint else "")
        ) from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KubeconfigError(f"exec plugin {command}: {exc}") from None
    if completed.returncode != 0:
        raise KubeconfigError(
            f"exec plugin {command}: exited with status {completed.returncode}"
        )
    return _parse_exec_credential(completed.stdout, api_version)


def _parse_exec_credential(output: bytes, api_version: str) -> _Credentials:
    """Decode an ``ExecCredential`` the way client-go's ``exec.go`` ``refreshCredsLocked`` does."""
    try:
        credential = json.loads(output)
    except (ValueError, UnicodeDecodeError):
        raise KubeconfigError("exec plugin: output is not an ExecCredential JSON") from None
    if not isinstance(credential, dict):
        raise KubeconfigError("exec plugin: output is not an ExecCredential JSON")
    if credential.get("apiVersion") != api_version or credential.get("kind") != "ExecCredential":
        raise KubeconfigError(
            f"exec plugin is configured to use API version {api_version}, "
            f"plugin returned version {credential.get('apiVersion')}"
        )
    status = credential.get("status")
    if not isinstance(status, dict):
        raise KubeconfigError("exec plugin didn't return a status field")
    token = status.get("token")
    cert = status.get("clientCertificateData")
    key = status.get("clientKeyData")
    if not token and not (cert and key):
        raise KubeconfigError("exec plugin didn't return a token or cert/key pair")
    if (cert and not key) or (key and not cert):
        raise KubeconfigError(
            "exec plugin returned only certificate or key, not both"
        )
    credentials = _Credentials()
    if token:
        credentials.token = str(token)
    if cert and key:
        credentials.cert_pem = str(cert).encode("utf-8")
        credentials.key_pem = str(key).encode("utf-8")
    return credentials


def _user_credentials(user: Mapping[str, Any], cluster: Mapping[str, Any], server: str,
                      environ: Mapping[str, str]) -> _Credentials:
    credentials = _Credentials()
    if user.get("tokenFile"):
        credentials.token = _read_file(user["tokenFile"], "tokenFile").decode().strip()
    elif user.get("token"):
        credentials.token = str(user["token"])
    if user.get("username") or user.get("password"):
        credentials.basic = (str(user.get("username", "")), str(user.get("password", "")))
    credentials.cert_pem = _data_or_file(user, "client-certificate")
    credentials.key_pem = _data_or_file(user, "client-key")
    if (credentials.cert_pem is None) != (credentials.key_pem is None):
        raise KubeconfigError("client-certificate and client-key must be given together")
    if user.get("auth-provider"):
        raise KubeconfigError(
            "auth-provider plugins are not supported; use an exec credential plugin"
        )
    if isinstance(user.get("exec"), dict):
        from_plugin = _run_exec_plugin(user["exec"], cluster, server, environ)
        credentials.token = from_plugin.token or credentials.token
        if from_plugin.cert_pem is not None:
            credentials.cert_pem, credentials.key_pem = from_plugin.cert_pem, from_plugin.key_pem
    if user.get("as"):
        credentials.extra_headers.append(("Impersonate-User", str(user["as"])))
    for group in user.get("as-groups") or []:
        credentials.extra_headers.append(("Impersonate-Group", str(group)))
    return credentials


def _auth_headers(credentials: _Credentials) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    if credentials.token:
        headers.append(("Authorization", f"Bearer {credentials.token}"))
    elif credentials.basic is not None:
        pair = ":".join(credentials.basic).encode("utf-8")
        headers.append(("Authorization", "Basic " + base64.b64encode(pair).decode("ascii")))
    headers.extend(credentials.extra_headers)
    return tuple(headers)


# --------------------------------------------------------------------------------------
# TLS


def build_ssl_context(*, ca_pem: bytes | None, insecure: bool,
                      cert_pem: bytes | None = None,
                      key_pem: bytes | None = None) -> ssl.SSLContext:
    """Build the client TLS context for an API server.

    Args:
        ca_pem: the certificate authorities to trust (PEM), or ``None`` for the system's.
        insecure: skip certificate and host name verification.
        cert_pem: a client certificate chain (PEM), with ``key_pem``.
        key_pem: the client certificate's private key (PEM).

    Returns:
        A context offering ALPN ``http/1.1`` (an upgrade cannot ride HTTP/2).

    Raises:
        KubeconfigError: the certificates or the key do not load.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif ca_pem is not None:
            context.load_verify_locations(cadata=ca_pem.decode("ascii", "replace"))
        if cert_pem is not None and key_pem is not None:
            _load_client_certificate(context, cert_pem, key_pem)
    except ssl.SSLError as exc:
        raise KubeconfigError(f"invalid TLS material: {exc}") from None
    context.set_alpn_protocols(["http/1.1"])
    return context


def _load_client_certificate(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    # ssl only loads certificates from files: write both to a private temporary
    # directory for the time of the call. (tempfile is imported here: few kubeconfigs
    # need it, and every command's start-up would pay for it.)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kstream-") as directory:
        cert_path = os.path.join(directory, "client.crt")
        key_path = os.path.join(directory, "client.key")
        for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        context.load_cert_chain(cert_path, key_path)


# --------------------------------------------------------------------------------------
# In-cluster


def in_cluster_config(environ: Mapping[str, str], root: str = "/") -> ClusterConnection | None:
    """The in-cluster configuration (client-go ``rest.InClusterConfig``), if available.

    Args:
        environ: where ``KUBERNETES_SERVICE_HOST`` / ``_PORT`` are looked up.
        root: file system root under which the service-account files are read
            (``/`` in a pod; a temporary directory in tests).

    Returns:
        The connection, or ``None`` when not running in a pod.

    Raises:
        KubeconfigError: the service-account files are unreadable.
    """
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT")
    account = Path(root) / SERVICE_ACCOUNT_DIR
    if not host or not port or not (account / "token").exists():
        return None
    token = _read_file(str(account / "token"), "service account token").decode().strip()
    ca_path = account / "ca.crt"
    ca_pem = _read_file(str(ca_path), "service account CA") if ca_path.exists() else None
    namespace = "default"
    if (account / "namespace").exists():
        namespace = (account / "namespace").read_text().strip() or "default"
    if ":" in host:
        host = f"[{host}]"
    server = f"https://{host}:{port}"
    return ClusterConnection(
        server=server,
        namespace=namespace,
        headers=(("Authorization", f"Bearer {token}"),),
        ssl_context=build_ssl_context(ca_pem=ca_pem, insecure=False),
        proxy=_proxy(server, None, environ),
    )


# --------------------------------------------------------------------------------------
# The entry point


def load_config(
    kubeconfig: str | None = None,
    *,
    overrides: ConfigOverrides | None = None,
    environ: Mapping[str, str] | None = None,
    in_cluster_root: str = "/",
) -> ClusterConnection:
    """Resolve how to reach the cluster, as kubectl does.

    Args:
        kubeconfig: ``--kubeconfig``: read only this file.
        overrides: command-line flags applied on top of the file.
        environ: environment (``KUBECONFIG``, ``HOME``, in-cluster variables, and the
            environment of exec plugins); ``os.environ`` by default.
        in_cluster_root: root of the service-account files for the in-cluster fallback.

    Returns:
        The server, namespace, credentials and TLS context to use.

    Raises:
        KubeconfigError: nothing says where the cluster is, a named context, cluster or
            user is missing, a referenced file cannot be read, or an exec plugin failed.
    """
    overrides = overrides or ConfigOverrides()
    environ = os.environ if environ is None else environ
    merged = load_kubeconfig_files(_default_paths(kubeconfig, environ))
    context_name = overrides.context or merged["current-context"] or None
    if context_name is None and overrides.server is None:
        fallback = in_cluster_config(environ, in_cluster_root)
        if fallback is not None:
            return _apply_to_in_cluster(fallback, overrides)
        raise KubeconfigError(
            "no configuration has been provided: set KUBECONFIG, pass --kubeconfig, "
            "or --server"
        )
    context: Mapping[str, Any] = {}
    if context_name is not None:
        if context_name not in merged["contexts"]:
            raise KubeconfigError(f'context "{context_name}" does not exist')
        context = merged["contexts"][context_name]
    cluster = _lookup(merged, "clusters", context.get("cluster"), "cluster")
    user = _lookup(merged, "users", context.get("user"), "user")
    return _connection(context_name, context, cluster, user, overrides, environ)


def _lookup(merged: Mapping[str, Any], section: str, name: object,
            what: str) -> Mapping[str, Any]:
    if not name:
        return {}
    if name not in merged[section]:
        raise KubeconfigError(f'{what} "{name}" does not exist')
    entry: Mapping[str, Any] = merged[section][name]
    return entry


def _connection(context_name: str | None, context: Mapping[str, Any],
                cluster: Mapping[str, Any], user: Mapping[str, Any],
                overrides: ConfigOverrides, environ: Mapping[str, str]) -> ClusterConnection:
    server = overrides.server or cluster.get("server")
    if not isinstance(server, str) or not server:
        raise KubeconfigError("the cluster has no server: set it in the kubeconfig or --server")
    if "://" not in server:
        # client-go defaults a scheme-less host to https (rest.DefaultServerURL).
        server = "https://" + server
    if not server.startswith("https://"):
        # client-go reads no credential for a server it cannot reach securely: they
        # would cross the network in clear text.
        credentials = _Credentials()
    elif overrides.token is not None:
        credentials = _Credentials(token=overrides.token)
    else:
        credentials = _user_credentials(user, cluster, server, environ)
    insecure = overrides.insecure_skip_tls_verify or bool(cluster.get("insecure-skip-tls-verify"))
    if overrides.certificate_authority is not None:
        ca_pem: bytes | None = _read_file(overrides.certificate_authority,
                                          "certificate-authority")
    elif overrides.insecure_skip_tls_verify:
        ca_pem = None  # kubectl drops the CA when the flag asks for an insecure connection
    else:
        ca_pem = _data_or_file(cluster, "certificate-authority")
    if insecure and ca_pem is not None:
        raise KubeconfigError(
            "specifying a root certificates file with the insecure flag is not allowed"
        )
    ssl_context = None
    if server.startswith("https://"):
        ssl_context = build_ssl_context(ca_pem=ca_pem, insecure=insecure,
                                        cert_pem=credentials.cert_pem,
                                        key_pem=credentials.key_pem)
    server_name = overrides.tls_server_name or cluster.get("tls-server-name") or None
    return ClusterConnection(
        server=server.rstrip("/"),
        namespace=overrides.namespace or str(context.get("namespace") or "default"),
        headers=_auth_headers(credentials),
        ssl_context=ssl_context,
        server_hostname=str(server_name) if server_name else None,
        context_name=context_name,
        proxy=_proxy(server, cluster.get("proxy-url"), environ),
    )


_PROXY_VARIABLES: Final = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


def _proxy(server: str, proxy_url: object, environ: Mapping[str, str]) -> str | None:
    """The proxy to reach ``server`` through, as a URL (``choose_proxy`` decides)."""
    if proxy_url is not None and not isinstance(proxy_url, str):
        raise KubeconfigError("proxy-url must be a string")
    if not proxy_url and not any(environ.get(name) for name in _PROXY_VARIABLES):
        return None  # the common case loads no proxy code
    from .._runtime.proxy import choose_proxy

    try:
        proxy = choose_proxy(server, proxy_url or None, environ)
    except ValueError as exc:
        raise KubeconfigError(f"{'proxy-url' if proxy_url else 'proxy'}: {exc}") from None
    if proxy is None:
        return None
    return proxy_url or proxy.url()


def _apply_to_in_cluster(connection: ClusterConnection,
                         overrides: ConfigOverrides) -> ClusterConnection:
    headers = connection.headers
    if overrides.token is not None:
        headers = (("Authorization", f"Bearer {overrides.token}"),)
    return ClusterConnection(
        server=connection.server,
        namespace=overrides.namespace or connection.namespace,
        headers=headers,
        ssl_context=connection.ssl_context,
        server_hostname=overrides.tls_server_name,
        context_name=None,
        proxy=connection.proxy,
    )
