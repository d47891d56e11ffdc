"""The transport fallback ladder of exec and attach (pure: no I/O, no state).

client-go's ``FallbackExecutor`` (``tools/remotecommand/fallback.go``) tries a WebSocket
upgrade offering only ``v5.channel.k8s.io`` and re-issues the request over SPDY when the
upgrade fails (any non-101 answer, or a subprotocol it did not offer). kstream keeps that
rule and adds one honest refinement: a caller who does not send stdin never needs the v5
CLOSE signal, so without stdin the WebSocket attempt also offers ``v4.channel.k8s.io``,
which the kubelet and CRI servers (and older apiservers) accept. With stdin, v4 is left
out on purpose: a v4 session could never tell the remote process that stdin ended, while
SPDY can (protocol-notes §1.5, §5.2).

:func:`plan` returns the attempts in order; an adapter runs them one by one and moves to
the next only when :func:`should_fall_back` says so.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Final

from .._channels import (
    SPDY_PROTOCOLS,
    V1_NAME,
    V2_NAME,
    V3_NAME,
    V4_NAME,
    V5_NAME,
    WEBSOCKET_PROTOCOLS,
)
from .._errors import UpgradeRejectedError

__all__ = [
    "SPDY_OFFER",
    "TRANSPORTS",
    "WEBSOCKET_OFFER",
    "WEBSOCKET_STDIN_OFFER",
    "Attempt",
    "plan",
    "should_fall_back",
]

#: Transport names a caller may force; ``"auto"`` runs the whole ladder.
TRANSPORTS: Final = ("auto", "websocket", "spdy")

#: WebSocket offer when stdin is requested: only v5 can half-close stdin.
WEBSOCKET_STDIN_OFFER: Final = (V5_NAME,)
#: WebSocket offer without stdin: v5 (apiserver translator) then v4 (kubelet / CRI).
WEBSOCKET_OFFER: Final = (V5_NAME, V4_NAME)
#: SPDY offer, newest first, as the servers' ``SupportedStreamingProtocols``. client-go
#: also offers v5 over SPDY, but no SPDY server accepts it (protocol-notes §2.1).
SPDY_OFFER: Final = (V4_NAME, V3_NAME, V2_NAME, V1_NAME)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One rung of the ladder: an upgrade over one transport offering some protocols.

    Attributes:
        transport: ``"websocket"`` or ``"spdy"``.
        protocols: the subprotocols (WebSocket) or ``X-Stream-Protocol-Version`` values
            (SPDY) to offer, in order of preference.
    """

    transport: str
    protocols: tuple[str, ...]


def plan(*, stdin: bool, transport: str = "auto", protocols: Sequence[str] | None = None,
         fallback: bool = True) -> tuple[Attempt, ...]:
    """Return the upgrade attempts to make, in order.

    Args:
        stdin: the caller will send stdin (and may want to close it).
        transport: ``"auto"`` (WebSocket, then SPDY), ``"websocket"`` or ``"spdy"``.
        protocols: a custom protocol list, in order of preference. Each transport offers
            the names of the list that it can carry; a transport left with none is
            skipped. ``None`` uses the defaults described in the module docstring.
        fallback: ``False`` keeps only the first attempt.

    Returns:
        At least one :class:`Attempt`.

    Raises:
        ValueError: unknown ``transport``, or ``protocols`` names nothing the chosen
            transports can carry.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
    attempts: list[Attempt] = []
    if transport in ("auto", "websocket"):
        offer = _websocket_offer(stdin=stdin, forced=transport == "websocket",
                                 protocols=protocols)
        if offer:
            attempts.append(Attempt("websocket", offer))
    if transport in ("auto", "spdy"):
        offer = SPDY_OFFER if protocols is None else _known(protocols, SPDY_PROTOCOLS)
        if offer:
            attempts.append(Attempt("spdy", offer))
    if not attempts:
        raise ValueError(f"no protocol in {list(protocols or ())!r} can be used over "
                         f"transport {transport!r}")
    return tuple(attempts) if fallback else (attempts[0],)


def should_fall_back(exc: BaseException) -> bool:
    """Say whether a failed attempt should be followed by the next one.

    Only a rejected upgrade (:class:`~kstream.UpgradeRejectedError`: any non-101 answer
    or an unexpected subprotocol) moves down the ladder. Network and TLS errors,
    timeouts, cancellation and anything after a successful upgrade do not, as in
    client-go (kubectl's predicate ``httpstream.IsUpgradeFailure``).

    Args:
        exc: the exception the attempt ended with.

    Returns:
        ``True`` when the next attempt should be made.
    """
    return isinstance(exc, UpgradeRejectedError)


def _websocket_offer(*, stdin: bool, forced: bool,
                     protocols: Sequence[str] | None) -> tuple[str, ...]:
    if protocols is not None:
        return _known(protocols, WEBSOCKET_PROTOCOLS)
    # A caller who forced WebSocket has no SPDY to land on, so v4 stays in the offer even
    # with stdin; closing stdin on a v4 session then raises a clear LocalProtocolError.
    if stdin and not forced:
        return WEBSOCKET_STDIN_OFFER
    return WEBSOCKET_OFFER


def _known(protocols: Sequence[str], known: Container[str]) -> tuple[str, ...]:
    if isinstance(protocols, str):
        raise ValueError("protocols must be a sequence of names, not a string")
    # "" (no header) is a valid WebSocket choice for a server but never worth offering.
    return tuple(dict.fromkeys(name for name in protocols if name and name in known))
