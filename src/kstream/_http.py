"""HTTP pieces shared by the WebSocket and SPDY upgrades: targets, queries, Status bodies.

Pure functions, no I/O. Queries are read like Go's ``url.ParseQuery`` and written like
``url.Values.Encode`` (what ``VersionedParams`` produces, protocol-notes §5.4); booleans
follow apimachinery's ``Convert_Slice_string_To_bool``; error responses and rejected
upgrades carry a ``metav1.Status`` body as the apiserver writes it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from ._errors import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from ._gojson import fold_key, quote_for_error
from ._status_types import STATUS_FAILURE, Status, decode_status_and_kind

__all__ = [
    "MAX_REJECTION_BODY",
    "attach_target",
    "build_target",
    "exec_target",
    "query_bool",
    "split_target",
    "status_response",
    "upgrade_rejection",
]

#: Bytes of a non-101 response body kept for the error (client-go reads 64 KiB).
MAX_REJECTION_BODY: Final = 64 * 1024

# net/url refuses ASCII control characters anywhere in a URL.
_CONTROL_RE: Final = re.compile("[\x00-\x1f\x7f]")
# A "%" not followed by two hex digits: url.QueryUnescape/PathUnescape fail on it.
_BAD_ESCAPE_RE: Final = re.compile("%(?![0-9A-Fa-f]{2})")
_ABSOLUTE_FORM_RE: Final = re.compile("[A-Za-z][A-Za-z0-9+.-]*://[^/?]*")
# Characters build_target accepts in a path: printable ASCII but "?" and "#".
_PATH_RE: Final = re.compile("/[\x21-\x22\x24-\x3e\x40-\x7e]*")


def _unescape(text: str, *, plus_is_space: bool) -> str:
    if _BAD_ESCAPE_RE.search(text):
        raise RemoteProtocolError(f"invalid URL escape in {quote_for_error(text)}")
    # Go strings are bytes: keep undecodable octets as surrogate escapes (os.fsencode
    # turns them back into the same bytes for a command line).
    if plus_is_space:
        return unquote_plus(text, errors="surrogateescape")
    return unquote(text, errors="surrogateescape")


def split_target(target: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Split an HTTP request target into its path and decoded query parameters.

    The path is returned as sent (percent escapes checked, not decoded). The query is
    decoded as Go's ``url.ParseQuery`` does: pairs split on ``&``, empty pairs skipped, a
    pair without ``=`` has the value ``""``, ``+`` is a space, ``%XX`` an octet (octets that
    are not UTF-8 become surrogate escapes). An absolute-form target
    (``http://host/path?q``) is accepted as Go does.

    Args:
        target: the request target, e.g. ``/api/v1/namespaces/default/pods/p/exec?command=sh``.

    Returns:
        ``(path, ((key, value), ...))``, pairs in their order in the target.

    Raises:
        RemoteProtocolError: a control character, a malformed ``%`` escape, or a ``;`` in a
            query pair (Go rejects ``;`` separators since 1.17), or a target that is neither
            origin-form nor absolute-form.
    """
    if _CONTROL_RE.search(target):
        raise RemoteProtocolError(
            f"invalid control character in request target {quote_for_error(target)}")
    absolute = _ABSOLUTE_FORM_RE.match(target)
    if absolute is not None:
        target = target[absolute.end():]  # Go leaves the path empty when there is none
    elif not target.startswith("/"):
        raise RemoteProtocolError(f"invalid request target {quote_for_error(target)}")
    path, _, query = target.partition("?")
    _unescape(path, plus_is_space=False)  # validation only: the path stays raw
    return path, _parse_query(query)


def _parse_query(query: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for pair in query.split("&"):
        if not pair:
            continue
        if ";" in pair:
            raise RemoteProtocolError(
                f"invalid semicolon separator in query {quote_for_error(query)}")
        key, _, value = pair.partition("=")
        pairs.append((_unescape(key, plus_is_space=True),
                      _unescape(value, plus_is_space=True)))
    return tuple(pairs)


def _query_escape(text: str) -> str:
    # url.QueryEscape: A-Z a-z 0-9 - _ . ~ kept, space as "+", all else %XX (upper case).
    return quote_plus(text, safe="", errors="surrogateescape")


def _sort_key(pair: tuple[str, str]) -> bytes:
    # Go sorts the keys as byte strings.
    return pair[0].encode("utf-8", "surrogateescape")


def build_target(path: str, query: Sequence[tuple[str, str]]) -> str:
    """Build a request target as client-go does (``url.Values.Encode``).

    Keys are sorted (byte order; the order of repeated keys is kept), keys and values are
    escaped with Go's ``url.QueryEscape`` (spaces as ``+``). Without parameters there is
    no ``?``.

    Args:
        path: the path, already escaped (``/api/v1/namespaces/default/pods/p/exec``).
        query: the parameters in order, e.g. ``[("command", "sh"), ("stdout", "true")]``.

    Returns:
        ``path?key=value&...``.

    Raises:
        LocalProtocolError: ``path`` does not start with ``/`` or contains a space, a
            control character, ``?``, ``#`` or a non-ASCII character.
    """
    if _PATH_RE.fullmatch(path) is None:
        raise LocalProtocolError(f"invalid request path {path!r}")
    if not query:
        return path
    encoded = "&".join(
        _query_escape(key) + "=" + _query_escape(value)
        for key, value in sorted(query, key=_sort_key)
    )
    return f"{path}?{encoded}"


def query_bool(query: Sequence[tuple[str, str]], *names: str) -> bool:
    """Read a boolean parameter as apimachinery's ``Convert_Slice_string_To_bool`` does.

    The first of ``names`` present in ``query`` decides, by its first value: ``"0"`` and
    ``"false"`` (any case) are false, anything else (``""`` included) is true. Absent is
    false. Pass the apiserver and the kubelet spelling together, e.g.
    ``query_bool(q, "stdin", "input")``.

    Args:
        query: decoded parameters, as :func:`split_target` returns them.
        *names: the parameter names to look for, in order of preference.

    Returns:
        The boolean value.
    """
    for name in names:
        for key, value in query:
            if key == name:
                # strings.EqualFold(value, "false") folds exactly as encoding/json keys
                # do (LONG S matches "s").
                return not (value == "0" or fold_key(value) == "false")
    return False


def upgrade_rejection(status_code: int, reason: str, headers: Sequence[tuple[str, str]],
                      body: bytes, *, detail: str = "") -> UpgradeRejectedError:
    """Build the error for an upgrade answered with something other than a valid 101.

    Like client-go's WebSocket round tripper, the body (at most
    :data:`MAX_REJECTION_BODY` bytes) is decoded as a ``metav1.Status`` when it is one:
    a JSON object whose ``kind`` is ``Status`` or absent. Anything else leaves
    ``status`` as ``None``; this function never raises.

    Args:
        status_code: the HTTP status code of the response.
        reason: the HTTP reason phrase.
        headers: the response headers.
        body: the response body (or its first bytes).
        detail: what was wrong with the response when the status code alone does not say
            (``"missing Upgrade header"``, ...).

    Returns:
        The error, for the caller to raise or to wrap in an ``UpgradeRejected`` event.
    """
    body = bytes(body[:MAX_REJECTION_BODY])
    status: Status | None = None
    try:
        decoded, kind = decode_status_and_kind(body)
    except RemoteProtocolError:
        pass
    else:
        if kind in ("", "Status"):
            status = decoded
    return UpgradeRejectedError(status_code, reason=reason, body=body, status=status,
                                headers=tuple(headers), detail=detail)


# apimachinery/pkg/api/errors/errors.go NewGenericServerResponse and StatusReason* names.
_REASONS: Final = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_response(status_code: int, message: str,
                    reason: str = "") -> tuple[list[tuple[str, str]], bytes]:
    """An HTTP error response with a ``metav1.Status`` body, as the apiserver writes it.

    The body is ``{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
    "message":...,"reason":...,"code":N}`` followed by a newline (apimachinery's JSON
    serializer uses ``json.Encoder.Encode``).

    Args:
        status_code: the HTTP status, 400..599; also the Status ``code``.
        message: the Status ``message``.
        reason: the Status ``reason``; by default derived from the status code
            (``404`` gives ``NotFound``, unknown codes none).

    Returns:
        ``(headers, body)``: ``Content-Type: application/json`` and ``Content-Length``.

    Raises:
        LocalProtocolError: ``status_code`` is not 400..599.
    """
    if isinstance(status_code, bool) or not isinstance(status_code, int) \
            or not 400 <= status_code <= 599:
        raise LocalProtocolError(f"an error status code must be 400..599, not {status_code!r}")
    status = Status(status=STATUS_FAILURE, message=message,
                    reason=reason or _REASONS.get(status_code, ""), code=status_code)
    body = status.encode(kind=True) + b"\n"
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return headers, body


def exec_target(namespace: str, pod: str, command: Sequence[str], *,
                container: str | None = None, stdin: bool = False, stdout: bool = True,
                stderr: bool = True, tty: bool = False, prefix: str = "") -> str:
    """Build the request target of a pod ``exec`` upgrade, with the query kubectl sends.

    The path is ``{prefix}/api/v1/namespaces/{namespace}/pods/{pod}/exec`` (names
    percent-escaped). The query follows ``VersionedParams(&PodExecOptions{...})``
    (protocol-notes §5.4): ``command`` repeated in order, then ``container``, ``stderr``,
    ``stdin``, ``stdout``, ``tty`` (sorted by key as Go's ``url.Values.Encode``), booleans
    as ``true`` and only when set, an empty container left out.

    Args:
        namespace: the pod's namespace.
        pod: the pod's name.
        command: the argv to run, one ``command=`` parameter each, order kept.
        container: the container, or ``None`` (or ``""``) for the server's default.
        stdin: request standard input.
        stdout: request standard output.
        stderr: request standard error (kubectl drops it with a TTY).
        tty: request a terminal.
        prefix: a path prefix in front of ``/api`` (a proxy's, e.g. ``/k8s/clusters/c1``).

    Returns:
        The target (path and query), for either transport, e.g.
        ``/api/v1/namespaces/default/pods/web/exec?command=ls&stderr=true&stdout=true``.

    Raises:
        ValueError: ``command`` is empty or a string; ``namespace`` or ``pod`` is empty.
        LocalProtocolError: the path (with ``prefix``) is not a valid request path.
    """
    if isinstance(command, str | bytes):
        raise ValueError("command must be a sequence of arguments, not a string")
    if not command:
        raise ValueError("command must not be empty")
    return _exec_target_for_path(_pod_path("exec", namespace, pod, prefix), command=command,
                                 container=container or "", stdin=stdin, stdout=stdout,
                                 stderr=stderr, tty=tty)


def attach_target(namespace: str, pod: str, *, container: str | None = None,
                  stdin: bool = False, stdout: bool = True, stderr: bool = True,
                  tty: bool = False, prefix: str = "") -> str:
    """Build the request target of a pod ``attach`` upgrade (``PodAttachOptions``).

    Args:
        namespace: the pod's namespace.
        pod: the pod's name.
        container: the container, or ``None`` (or ``""``) for the server's default.
        stdin: request standard input.
        stdout: request standard output.
        stderr: request standard error (kubectl sets it false with a TTY).
        tty: request a terminal (kubectl matches the container's ``tty`` setting).
        prefix: a path prefix in front of ``/api``.

    Returns:
        ``{prefix}/api/v1/namespaces/{namespace}/pods/{pod}/attach?...``

    Raises:
        ValueError: ``namespace`` or ``pod`` is empty.
        LocalProtocolError: the path (with ``prefix``) is not a valid request path.
    """
    return _attach_target_for_path(_pod_path("attach", namespace, pod, prefix),
                                   container=container or "", stdin=stdin, stdout=stdout,
                                   stderr=stderr, tty=tty)


def _pod_path(subresource: str, namespace: str, pod: str, prefix: str) -> str:
    if not namespace or not pod:
        raise ValueError("namespace and pod must not be empty")
    return (f"{prefix}/api/v1/namespaces/{quote(namespace, safe='')}"
            f"/pods/{quote(pod, safe='')}/{subresource}")


def _exec_target_for_path(path: str, *, command: Sequence[str], container: str = "",
                          stdin: bool = False, stdout: bool = True, stderr: bool = True,
                          tty: bool = False) -> str:
    """Build the request target of an exec on any path (:func:`exec_target` for a pod).

    The query follows ``VersionedParams(&PodExecOptions{...})`` (protocol-notes §5.4):
    ``command`` repeated in order, then ``container``, ``stderr``, ``stdin``, ``stdout``,
    ``tty`` (sorted by key as Go's ``url.Values.Encode``), booleans as ``true`` and only
    when set, an empty container left out.

    Args:
        path: the subresource path, e.g. ``/api/v1/namespaces/default/pods/p/exec``.
        command: the argv to run.
        container: the container name ("" lets the server pick).
        stdin: request standard input.
        stdout: request standard output.
        stderr: request standard error (kubectl drops it with a TTY).
        tty: request a terminal.

    Returns:
        The target (path and query), for either transport.

    Raises:
        LocalProtocolError: ``path`` is not a valid request path.
    """
    query = [("command", argument) for argument in command]
    return build_target(path, query + _stream_params(container, stdin, stdout, stderr, tty))


def _attach_target_for_path(path: str, *, container: str = "", stdin: bool = False,
                            stdout: bool = True, stderr: bool = True,
                            tty: bool = False) -> str:
    """Build the request target of an attach on any path (:func:`attach_target` for a pod).

    Args:
        path: the subresource path, e.g. ``/api/v1/namespaces/default/pods/p/attach``.
        container: the container name ("" lets the server pick).
        stdin: request standard input.
        stdout: request standard output.
        stderr: request standard error (kubectl sets it false with a TTY).
        tty: request a terminal (kubectl matches the container's ``tty`` setting).

    Returns:
        The target (path and query), for either transport.

    Raises:
        LocalProtocolError: ``path`` is not a valid request path.
    """
    return build_target(path, _stream_params(container, stdin, stdout, stderr, tty))


def _stream_params(container: str, stdin: bool, stdout: bool, stderr: bool,
                   tty: bool) -> list[tuple[str, str]]:
    params = [("container", container)] if container else []
    for name, wanted in (("stderr", stderr), ("stdin", stdin), ("stdout", stdout), ("tty", tty)):
        if wanted:
            params.append((name, "true"))
    return params
