"""The transport fallback ladder (kstream._exec.fallback): the plan and the fallback predicate."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstream import LocalProtocolError, RemoteProtocolError, UpgradeRejectedError
from kstream._exec.fallback import (
    SPDY_OFFER,
    Attempt,
    plan,
    should_fall_back,
)

V5, V4, V3, V2, V1 = (
    "v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
    "channel.k8s.io",
)


def test_with_stdin_websocket_offers_only_v5_then_spdy() -> None:
    # v4 over WebSocket could never close stdin: SPDY is the honest second choice.
    assert plan(stdin=True) == (Attempt("websocket", (V5,)), Attempt("spdy", (V4, V3, V2, V1)))


def test_without_stdin_websocket_offers_v5_and_v4_then_spdy() -> None:
    assert plan(stdin=False) == (Attempt("websocket", (V5, V4)), Attempt("spdy", SPDY_OFFER))


def test_spdy_never_offers_v5() -> None:
    # No SPDY server accepts v5 (protocol-notes §2.1).
    assert V5 not in plan(stdin=True, transport="spdy")[0].protocols


@pytest.mark.parametrize("stdin", [True, False])
def test_forced_websocket_keeps_v4(stdin: bool) -> None:
    # Nothing to fall back to: a v4 session is better than none; close_stdin then says why.
    assert plan(stdin=stdin, transport="websocket") == (Attempt("websocket", (V5, V4)),)


def test_forced_spdy() -> None:
    assert plan(stdin=True, transport="spdy") == (Attempt("spdy", SPDY_OFFER),)


def test_no_fallback_keeps_the_first_attempt_only() -> None:
    assert plan(stdin=True, fallback=False) == (Attempt("websocket", (V5,)),)


def test_custom_protocols_are_split_by_transport() -> None:
    attempts = plan(stdin=False, protocols=[V4, V5, V3, "v4.base64.channel.k8s.io"])
    assert attempts == (
        Attempt("websocket", (V4, V5, "v4.base64.channel.k8s.io")),
        Attempt("spdy", (V4, V3)),
    )


def test_custom_protocols_skip_a_transport_left_without_any() -> None:
    assert plan(stdin=True, protocols=[V3, V2]) == (Attempt("spdy", (V3, V2)),)
    assert plan(stdin=True, protocols=["v4.base64.channel.k8s.io"]) == (
        Attempt("websocket", ("v4.base64.channel.k8s.io",)),)


def test_custom_protocols_drop_duplicates_and_unknown_names() -> None:
    assert plan(stdin=False, transport="websocket", protocols=[V4, V4, "x", ""]) == (
        Attempt("websocket", (V4,)),)


@pytest.mark.parametrize("protocols", [[], ["nope"], ["portforward.k8s.io"]])
def test_nothing_usable_raises(protocols: list[str]) -> None:
    with pytest.raises(ValueError, match="no protocol"):
        plan(stdin=False, protocols=protocols)


def test_a_string_is_not_a_protocol_list() -> None:
    with pytest.raises(ValueError, match="sequence"):
        plan(stdin=False, protocols=V5)


def test_unknown_transport_raises() -> None:
    with pytest.raises(ValueError, match="transport"):
        plan(stdin=False, transport="http2")


def test_only_rejected_upgrades_fall_back() -> None:
    assert should_fall_back(UpgradeRejectedError(403))
    assert should_fall_back(UpgradeRejectedError(101, detail="unexpected subprotocol"))
    for error in (ConnectionRefusedError(), ssl.SSLError(), TimeoutError(), OSError(),
                  RemoteProtocolError("x"), LocalProtocolError("x"), ValueError()):
        assert not should_fall_back(error)


@settings(max_examples=100)
@given(stdin=st.booleans(), transport=st.sampled_from(["auto", "websocket", "spdy"]),
       fallback=st.booleans(),
       protocols=st.none() | st.lists(st.sampled_from([V5, V4, V3, V2, V1, "zz"]),
                                      min_size=1, max_size=6))
def test_plan_invariants(stdin: bool, transport: str, fallback: bool,
                         protocols: list[str] | None) -> None:
    try:
        attempts = plan(stdin=stdin, transport=transport, protocols=protocols,
                        fallback=fallback)
    except ValueError:
        assert protocols is not None
        return
    assert 1 <= len(attempts) <= (1 if not fallback else 2)
    transports = [attempt.transport for attempt in attempts]
    assert transports == sorted(set(transports), key=["websocket", "spdy"].index)
    for attempt in attempts:
        assert attempt.protocols
        assert len(set(attempt.protocols)) == len(attempt.protocols)
        if attempt.transport == "spdy":
            assert V5 not in attempt.protocols
        if transport != "auto":
            assert attempt.transport == transport
