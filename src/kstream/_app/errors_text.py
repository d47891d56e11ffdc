"""What the command line prints when something fails: one line, in kubectl's words.

Every failure of ``exec``/``attach`` ends as one line on stderr, never a traceback. The
wording follows kubectl (1.27-1.33, checked against the real binaries) where kubectl has
one -- ``The connection to the server HOST:PORT was refused - did you specify the right
host or port?``, ``Unable to connect to the server: ...``, ``Error from server (REASON):
...`` -- and names the server where kubectl leaves it out.

Text that comes from the server (a Status message, an error body) is printed with its
control characters escaped (:func:`printable`): a server must not be able to move the
cursor, change colours or rewrite earlier lines of the user's terminal.
"""

from __future__ import annotations

import re
import socket
import ssl
from typing import Final

from .._errors import KstreamError, UpgradeRejectedError
from .._runtime.errors import ConnectionLostError, earlier_attempts
from .._runtime.options import ServerAddress

__all__ = ["describe_failure", "describe_rejection", "first_line", "printable"]

#: Characters of server text shown at most on one line (an HTML error page is long).
_MAX_SHOWN: Final = 300

#: C0 and C1 controls, DEL, and the Unicode bidirectional overrides and isolates (which
#: reorder what the terminal shows).
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

_TRANSPORT_NAMES: Final = {"websocket": "WebSocket", "spdy": "SPDY"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Return ``text`` with every control character escaped (``\\x1b``, ``\\n``...).

    Args:
        text: text received from the server.

    Returns:
        Text that cannot act on a terminal, on one line.
    """
    return _CONTROL.sub(_escape, text)


def first_line(text: str, *, limit: int = _MAX_SHOWN) -> str:
    """Return the first non-blank line of ``text``, cut to ``limit`` characters, escaped.

    For bodies that are not a ``metav1.Status`` (a proxy's HTML page, a plain-text
    error): their first line says what went wrong; the rest would flood the terminal.

    Args:
        text: the body, decoded.
        limit: the most characters kept.

    Returns:
        One printable line (``""`` for a blank body).
    """
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if len(line) > limit:
        line = line[:limit] + "..."
    return printable(line)


def describe_rejection(exc: UpgradeRejectedError) -> str:
    """kubectl's line for a refused request: ``Error from server (NotFound): ...``.

    Args:
        exc: the rejected upgrade.

    Returns:
        The line, the server's text escaped; a body that is not a Status is cut to its
        first line.
    """
    status = exc.status
    if status is not None and status.message:
        return f"Error from server ({printable(status.reason or 'Failure')}): " \
               f"{printable(status.message)}"
    text = f"error: upgrade rejected: HTTP {exc.status_code}"
    if exc.reason:
        text += f" {printable(exc.reason)}"
    if exc.detail:
        text += f": {printable(exc.detail)}"
    body = first_line(exc.body.decode("utf-8", "replace"))
    if body:
        text += f": {body}"
    return text


def _unable(address: ServerAddress, why: str) -> str:
    # kubectl: "Unable to connect to the server: <why>"; the server named, as kubectl
    # does only in its "refused" line.
    return f"Unable to connect to the server {address.authority}: {why}"


def _describe_os_error(exc: OSError, address: ServerAddress, timeout: float | None) -> str:
    if isinstance(exc, ConnectionRefusedError):
        # kubectl's exact words (k8s.io/kubectl/pkg/cmd/util/helpers.go).
        host = f"[{address.host}]" if ":" in address.host else address.host
        return (f"The connection to the server {host}:{address.port} was refused "
                f"- did you specify the right host or port?")
    if isinstance(exc, socket.gaierror):
        return _unable(address, f"lookup {address.host}: "
                                f"{exc.strerror or 'no such host'}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or "certificate verify failed"
        return _unable(address, f"tls: failed to verify certificate: {printable(str(why))}")
    if isinstance(exc, ssl.SSLError):
        if exc.reason == "WRONG_VERSION_NUMBER":
            # kubectl: "http: server gave HTTP response to HTTPS client".
            return _unable(address, "tls: the server does not speak TLS (is it http://?)")
        return _unable(address, f"tls: {printable(exc.reason or str(exc))}")
    if isinstance(exc, TimeoutError):
        return _describe_timeout(exc, address, timeout)
    if isinstance(exc, ConnectionResetError) and not str(exc):
        return _unable(address, "the server reset the connection")
    why = exc.strerror or str(exc) or type(exc).__name__
    return _unable(address, printable(why))


def _describe_timeout(exc: TimeoutError, address: ServerAddress,
                      timeout: float | None) -> str:
    # asyncio's deadline raises a TimeoutError without a message; say what timed out.
    limit = f" within {timeout:g} s" if timeout else ""
    return _unable(address, f"no answer{limit} while connecting and upgrading "
                            f"(--request-timeout sets this deadline)")


def _describe_one(exc: BaseException, address: ServerAddress, timeout: float | None,
                  connecting: bool) -> str:
    if isinstance(exc, UpgradeRejectedError):
        return describe_rejection(exc)
    if isinstance(exc, OSError) and not isinstance(exc, KstreamError):
        return _describe_os_error(exc, address, timeout)
    if connecting and isinstance(exc, ConnectionLostError):
        cause = exc.__cause__
        why = f" ({cause.strerror.lower()})" if isinstance(cause, OSError) \
            and cause.strerror else ""
        return _unable(address, f"the server closed the connection before answering{why}")
    if connecting and isinstance(exc, KstreamError):
        return _unable(address, printable(str(exc) or type(exc).__name__))
    text = str(exc) or type(exc).__name__
    return f"error: {printable(text)}"


def describe_failure(exc: BaseException, address: ServerAddress | None,
                     timeout: float | None = None, *, connecting: bool = False) -> str:
    """The one line printed for an ``exec``/``attach`` that failed.

    Args:
        exc: what opening or running the session raised.
        address: the server, once known (``None`` when the kubeconfig failed).
        timeout: the connect deadline in force, to say what timed out.
        connecting: the failure came before the upgrade was accepted (a broken or
            garbled answer is then said to be the server's).

    Returns:
        The line: kubectl's wording, the server named; with ``--transport auto``, when
        the first transport was refused before the last attempt failed, both failures.
    """
    if address is None:
        return f"error: {printable(str(exc) or type(exc).__name__)}"
    line = _describe_one(exc, address, timeout, connecting)
    earlier = [f"{_TRANSPORT_NAMES.get(transport, transport)} first: "
               f"{_describe_one(failure, address, timeout, True)}"
               for transport, failure in earlier_attempts(exc)]
    earlier = [text for text in earlier if not text.endswith(": " + line)]
    if earlier:
        line += f" (after {'; '.join(earlier)})"
    return line
