"""Tests of the shared upgrade helpers (kstream._http): protocol-notes §5.2, §5.4, §7."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from kstream._http import (
    MAX_REJECTION_BODY,
    _attach_target_for_path,
    _exec_target_for_path,
    attach_target,
    build_target,
    exec_target,
    query_bool,
    split_target,
    status_response,
    upgrade_rejection,
)
from kstream._status_types import Status

EXEC_PATH = "/api/v1/namespaces/default/pods/mypod/exec"
# protocol-notes §5.4 with the §7 command: what kubectl sends.
KUBECTL_TARGET = (EXEC_PATH + "?command=sh&command=-c&command=echo+hi%3B+exit+3"
                  "&container=app&stderr=true&stdout=true")
KUBECTL_QUERY = (("command", "sh"), ("command", "-c"), ("command", "echo hi; exit 3"),
                 ("container", "app"), ("stderr", "true"), ("stdout", "true"))


# ---------------------------------------------------------------------------------------
# Targets


def test_build_target_matches_kubectl() -> None:
    # VersionedParams field order (stdin, stdout, stderr, tty, container, command) is
    # re-sorted by key; the commands keep their order.
    query = [("stdout", "true"), ("stderr", "true"), ("container", "app"),
             ("command", "sh"), ("command", "-c"), ("command", "echo hi; exit 3")]
    assert build_target(EXEC_PATH, query) == KUBECTL_TARGET


def test_split_target_matches_kubectl() -> None:
    assert split_target(KUBECTL_TARGET) == (EXEC_PATH, KUBECTL_QUERY)


def test_build_target_escapes_like_go() -> None:
    # url.Values{"x": {"!*'()~-_. /?#&=+é"}}.Encode() in Go 1.19.
    assert build_target("/p", [("x", "!*'()~-_. /?#&=+é")]) == (
        "/p?x=%21%2A%27%28%29~-_.+%2F%3F%23%26%3D%2B%C3%A9")
    assert build_target("/p", [("a b", ""), ("", "v")]) == "/p?=v&a+b="
    assert build_target("/p", []) == "/p"


def test_build_target_sorts_bytewise_and_stably() -> None:
    query = [("b", "1"), ("a", "2"), ("b", "0"), ("B", "x"), ("é", "e"), ("\udcff", "raw")]
    assert build_target("/p", query) == "/p?B=x&a=2&b=1&b=0&%C3%A9=e&%FF=raw"


@pytest.mark.parametrize("path", ["", "p", "/a b", "/a?b", "/a#b", "/é", "/a\nb"])
def test_build_target_rejects_bad_paths(path: str) -> None:
    with pytest.raises(LocalProtocolError):
        build_target(path, [])


@pytest.mark.parametrize(("target", "expected"), [
    ("/p", ("/p", ())),
    ("/p?", ("/p", ())),
    ("/p?a", ("/p", (("a", ""),))),
    ("/p?a=", ("/p", (("a", ""),))),
    ("/p?=v", ("/p", (("", "v"),))),
    ("/p?a=1&&b=2&", ("/p", (("a", "1"), ("b", "2")))),
    ("/p?a=1=2", ("/p", (("a", "1=2"),))),
    ("/p?d=%41+%2B%2b", ("/p", (("d", "A ++"),))),
    ("/p?k%20ey=v%C3%A9", ("/p", (("k ey", "vé"),))),
    ("/p?raw=%FF", ("/p", (("raw", "\udcff"),))),
    ("/p?a=x#frag", ("/p", (("a", "x#frag"),))),
    ("/a%2Fb+c?x=1", ("/a%2Fb+c", (("x", "1"),))),
    ("http://host:6443/p?x=1", ("/p", (("x", "1"),))),
    ("https://host?x=1", ("", (("x", "1"),))),
])
def test_split_target(target: str, expected: tuple[str, tuple[tuple[str, str], ...]]) -> None:
    assert split_target(target) == expected


@pytest.mark.parametrize("target", [
    "/p?c=%zz", "/p?c=%4", "/p?c=%", "/p?%g0=1", "/p%zz", "/p?a=1;b=2", "/p?a;=1",
    "/p?a=\x00", "/p\x7f", "p?x=1", "*", "",
])
def test_split_target_rejects(target: str) -> None:
    # Go's url.ParseQuery reports each of these (malformed escape, ";" separator); net/url
    # refuses control characters.
    with pytest.raises(RemoteProtocolError):
        split_target(target)


# ---------------------------------------------------------------------------------------
# Booleans


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("1", True), ("", True), ("yes", True), ("no", True), ("off", True),
    ("00", True), (" false", True), ("0", False), ("false", False), ("FALSE", False),
    ("FaLsE", False), ("fal\u017fe", False), ("f\u0430lse", True),
])
def test_query_bool_values(value: str, expected: bool) -> None:
    # apimachinery Convert_Slice_string_To_bool: "0" or EqualFold "false" are false.
    assert query_bool([("stdin", value)], "stdin") is expected


def test_query_bool_absent_first_name_first_value() -> None:
    assert query_bool([], "stdin") is False
    assert query_bool([("stdout", "true")], "stdin") is False
    assert query_bool([("stdin", "0"), ("stdin", "1")], "stdin") is False
    assert query_bool([("stdin", "1"), ("stdin", "0")], "stdin") is True
    # Kubelet spelling as a fallback; the first name present decides.
    assert query_bool([("input", "1")], "stdin", "input") is True
    assert query_bool([("input", "1"), ("stdin", "false")], "stdin", "input") is False
    assert query_bool([("Stdin", "true")], "stdin") is False  # keys are case-sensitive


# ---------------------------------------------------------------------------------------
# Rejected upgrades

FORBIDDEN_BODY = (
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
    b'"pods \\"p\\" is forbidden: User \\"u\\" cannot create resource \\"pods/exec\\"",'
    b'"reason":"Forbidden","details":{"name":"p","kind":"pods"},"code":403}\n'
)


def test_rejection_with_status_body() -> None:
    headers = [("Content-Type", "application/json")]
    error = upgrade_rejection(403, "Forbidden", headers, FORBIDDEN_BODY)
    assert isinstance(error, UpgradeRejectedError)
    assert error.status_code == 403
    assert error.reason == "Forbidden"
    assert error.headers == (("Content-Type", "application/json"),)
    assert error.body == FORBIDDEN_BODY
    assert error.status is not None
    assert error.status.reason == "Forbidden"
    assert error.status.code == 403
    assert 'cannot create resource "pods/exec"' in str(error)


def test_rejection_with_plain_body() -> None:
    # kube-rs/kube#1405: the body is what explains the failure.
    error = upgrade_rejection(400, "Bad Request", [], b"tty and stderr cannot both be true",
                              detail="x")
    assert error.status is None
    assert error.detail == "x"
    assert "tty and stderr cannot both be true" in str(error)


@pytest.mark.parametrize("body", [
    b"", b"{", b"null", b"[]", b'{"code":"x"}', b'{"kind":"Pod","status":"Failure"}', b"\xff",
])
def test_rejection_without_status(body: bytes) -> None:
    assert upgrade_rejection(500, "", [], body).status is None


def test_rejection_status_without_kind_is_decoded() -> None:
    # client-go decodes with the Status type as default: kind may be absent.
    error = upgrade_rejection(404, "Not Found", [], b'{"status":"Failure","message":"gone"}')
    assert error.status == Status(status="Failure", message="gone")


def test_rejection_body_is_bounded() -> None:
    body = FORBIDDEN_BODY + b" " * MAX_REJECTION_BODY
    error = upgrade_rejection(403, "Forbidden", [], body)
    assert len(error.body) == MAX_REJECTION_BODY == 64 * 1024
    assert error.status is not None  # trailing whitespace cut, the document is intact


@settings(max_examples=200)
@given(st.integers(100, 599), st.text(max_size=10), st.binary(max_size=300))
def test_rejection_never_raises(code: int, reason: str, body: bytes) -> None:
    error = upgrade_rejection(code, reason, [("a", "b")], body)
    assert error.status_code == code
    assert error.body == body


# ---------------------------------------------------------------------------------------
# Error responses

NOT_FOUND_BODY = (
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
    b'"pods \\"x\\" not found","reason":"NotFound","code":404}\n'
)


def test_status_response_golden() -> None:
    headers, body = status_response(404, 'pods "x" not found')
    assert body == NOT_FOUND_BODY
    assert headers == [("Content-Type", "application/json"),
                       ("Content-Length", str(len(NOT_FOUND_BODY)))]


@pytest.mark.parametrize(("code", "reason"), [
    (400, "BadRequest"), (401, "Unauthorized"), (403, "Forbidden"), (404, "NotFound"),
    (405, "MethodNotAllowed"), (500, "InternalError"), (418, ""),
])
def test_status_response_default_reasons(code: int, reason: str) -> None:
    _, body = status_response(code, "m")
    document = json.loads(body)
    assert document.get("reason", "") == reason
    assert document["code"] == code
    assert Status.decode(body) == Status(status="Failure", message="m", reason=reason, code=code)


def test_status_response_explicit_reason_and_escaping() -> None:
    _, body = status_response(400, "<tty> & stderr", "Invalid")
    assert b'"message":"\\u003ctty\\u003e \\u0026 stderr","reason":"Invalid"' in body


@pytest.mark.parametrize("code", [200, 101, 399, 600, True])
def test_status_response_rejects_non_error_codes(code: int) -> None:
    with pytest.raises(LocalProtocolError):
        status_response(code, "m")


def test_status_response_round_trips_through_rejection() -> None:
    headers, body = status_response(403, "nope")
    error = upgrade_rejection(403, "Forbidden", headers, body)
    assert error.status == Status(status="Failure", message="nope", reason="Forbidden", code=403)


# ---------------------------------------------------------------------------------------
# Properties

PAIRS = st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=8)


@settings(max_examples=200)
@given(PAIRS)
def test_build_then_split_round_trip(query: list[tuple[str, str]]) -> None:
    target = build_target(EXEC_PATH, query)
    assert target.isascii()
    path, decoded = split_target(target)
    assert path == EXEC_PATH
    by_key = sorted(query, key=lambda pair: pair[0].encode("utf-8", "surrogateescape"))
    assert decoded == tuple(by_key)
    assert build_target(path, decoded) == target


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_split_target_only_raises_remote_protocol_error(text: str) -> None:
    try:
        path, query = split_target("/" + text)
    except RemoteProtocolError:
        return
    assert path.startswith("/")
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in query)


# ---------------------------------------------------------------------------------------
# Request targets of a pod's exec and attach


def test_exec_target_of_a_pod_matches_kubectl() -> None:
    target = exec_target("default", "mypod", ["sh", "-c", "echo hi; exit 3"],
                         container="app")
    assert target == KUBECTL_TARGET
    assert exec_target("default", "mypod", ["ls"], stdin=True, stderr=False, tty=True) == (
        EXEC_PATH + "?command=ls&stdin=true&stdout=true&tty=true")
    assert exec_target("default", "mypod", ["ls"], container=None, stdout=False,
                       stderr=False) == EXEC_PATH + "?command=ls"
    assert exec_target("default", "mypod", ["ls"], container="") == (
        EXEC_PATH + "?command=ls&stderr=true&stdout=true")


def test_attach_target_of_a_pod() -> None:
    attach = "/api/v1/namespaces/default/pods/mypod/attach"
    assert attach_target("default", "mypod", container="app", stdin=True, stderr=False,
                         tty=True) == attach + "?container=app&stdin=true&stdout=true&tty=true"
    assert attach_target("default", "mypod") == attach + "?stderr=true&stdout=true"


def test_pod_targets_escape_names_and_take_a_prefix() -> None:
    assert exec_target("a b", "p/q", ["ls"], prefix="/k8s/clusters/c1") == (
        "/k8s/clusters/c1/api/v1/namespaces/a%20b/pods/p%2Fq/exec"
        "?command=ls&stderr=true&stdout=true")
    assert attach_target("ns", "p", prefix="/proxy", stderr=False) == (
        "/proxy/api/v1/namespaces/ns/pods/p/attach?stdout=true")


def test_pod_targets_match_the_path_builders() -> None:
    # The pod form is the path form on the pod's subresource path.
    for stdin, stdout, stderr, tty in itertools.product((False, True), repeat=4):
        assert exec_target("ns", "p", ["a", "b c"], container="c", stdin=stdin, stdout=stdout,
                           stderr=stderr, tty=tty) == _exec_target_for_path(
            "/api/v1/namespaces/ns/pods/p/exec", command=["a", "b c"], container="c",
            stdin=stdin, stdout=stdout, stderr=stderr, tty=tty)
        assert attach_target("ns", "p", container="c", stdin=stdin, stdout=stdout,
                             stderr=stderr, tty=tty) == _attach_target_for_path(
            "/api/v1/namespaces/ns/pods/p/attach", container="c", stdin=stdin, stdout=stdout,
            stderr=stderr, tty=tty)


@pytest.mark.parametrize("command", [[], (), "ls -l", b"ls"])
def test_exec_target_refuses_an_empty_or_string_command(command: object) -> None:
    with pytest.raises(ValueError, match="command"):
        exec_target("ns", "p", command)  # type: ignore[arg-type]


@pytest.mark.parametrize(("namespace", "pod"), [("", "p"), ("ns", "")])
def test_pod_targets_refuse_empty_names(namespace: str, pod: str) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        exec_target(namespace, pod, ["ls"])
    with pytest.raises(ValueError, match="must not be empty"):
        attach_target(namespace, pod)


def test_pod_targets_refuse_an_invalid_prefix() -> None:
    with pytest.raises(LocalProtocolError):
        exec_target("ns", "p", ["ls"], prefix="no-slash")
    with pytest.raises(LocalProtocolError):
        attach_target("ns", "p", prefix="/with space")
