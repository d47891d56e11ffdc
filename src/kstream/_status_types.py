"""The exit-status document of exec/attach: ``metav1.Status`` on the error channel.

Whatever the transport, the remote process's fate arrives on the error channel (channel 3,
SPDY streamtype ``error``), read to EOF and decoded once (protocol-notes §2.3, §2.4):

* remotecommand v1-v3 write nothing on success and the bare failure message otherwise;
* v4 and v5 write one ``json.Marshal(metav1.Status)`` document, success included.

:class:`Status` decodes that document exactly as client-go does
(``client-go/tools/remotecommand/v4.go`` ``errorDecoderV4``, ``encoding/json``) and writes
it byte for byte as the Go servers do (``kubelet/pkg/cri/streaming/remotecommand/
httpstream.go``, ``apimachinery/pkg/api/errors/errors.go``), so that kstream can stand on
either side of the wire: its classmethods build the statuses servers write
(:meth:`Status.success`, :meth:`Status.exit_code`, :meth:`Status.internal_error`) and read
the error channel (:meth:`Status.parse_error_channel`). The Go ``encoding/json`` details
shared with the other codecs (key folding, string escaping) are in ``_gojson``.

A leaf of the package: it imports only the standard library, ``_errors_base`` and
``_gojson``, so that ``_errors`` (whose ``UpgradeRejectedError`` carries a ``Status``) can
import it without a cycle.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final, TypeAlias

from ._errors_base import LocalProtocolError, RemoteProtocolError
from ._gojson import fold_key, go_json_string, quote_for_error

__all__ = [
    "CAUSE_EXIT_CODE",
    "MAX_STATUS_SIZE",
    "REASON_INTERNAL_ERROR",
    "REASON_NON_ZERO_EXIT_CODE",
    "STATUS_FAILURE",
    "STATUS_SUCCESS",
    "ExitResult",
    "Exited",
    "Failed",
    "Status",
    "StatusCause",
    "decode_status_and_kind",
]

#: Largest exit-status document callers should buffer before giving up (architecture.md).
MAX_STATUS_SIZE: Final = 64 * 1024

STATUS_SUCCESS: Final = "Success"
STATUS_FAILURE: Final = "Failure"
REASON_NON_ZERO_EXIT_CODE: Final = "NonZeroExitCode"
REASON_INTERNAL_ERROR: Final = "InternalError"
CAUSE_EXIT_CODE: Final = "ExitCode"

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


# --------------------------------------------------------------------------------------
# The data types


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusCause:
    """One ``metav1.StatusCause``.

    Attributes:
        reason: the cause *type* (``CauseType``), serialised under the JSON key ``"reason"``;
            ``"ExitCode"`` for an exit code.
        message: human-readable text; for an ``ExitCode`` cause, the decimal exit code.
        field: the field the cause refers to, if any.
    """

    reason: str = ""
    message: str = ""
    field: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """A decoded ``metav1.Status`` (``apimachinery/pkg/apis/meta/v1/types.go``).

    ``kind``, ``apiVersion`` and ``metadata`` are not kept: the encoder writes the fixed
    values servers use. A status that carries any details field (causes included) always
    has ``has_details`` set, since it cannot be written without a ``details`` object.

    Attributes:
        status: ``"Success"``, ``"Failure"``, or whatever the peer sent (``""`` if absent).
        message: human-readable description.
        reason: machine-readable reason (``"NonZeroExitCode"``, ``"InternalError"``, ...).
        code: the HTTP status code the status stands for, 0 when absent.
        causes: ``details.causes`` in order.
        has_details: ``details`` was present and not ``null`` (client-go requires it for
            ``NonZeroExitCode``).
        details_name: ``details.name``.
        details_group: ``details.group``.
        details_kind: ``details.kind``.
        details_uid: ``details.uid``.
        retry_after_seconds: ``details.retryAfterSeconds``.
    """

    status: str = ""
    message: str = ""
    reason: str = ""
    code: int = 0
    causes: tuple[StatusCause, ...] = ()
    has_details: bool = False
    details_name: str = ""
    details_group: str = ""
    details_kind: str = ""
    details_uid: str = ""
    retry_after_seconds: int = 0

    def __post_init__(self) -> None:
        # Normalise so that encode/decode round trips are exact: details fields imply a
        # details object on the wire, and a list of causes becomes a tuple.
        if not isinstance(self.causes, tuple):
            object.__setattr__(self, "causes", tuple(self.causes))
        if not self.has_details and (
            self.causes or self.details_name or self.details_group or self.details_kind
            or self.details_uid or self.retry_after_seconds
        ):
            object.__setattr__(self, "has_details", True)

    # ---------------------------------------------------------------- builders (server side)

    @classmethod
    def success(cls) -> Status:
        """The status a server writes when the command exited 0.

        Returns:
            ``Status(status="Success")``.
        """
        return cls(status=STATUS_SUCCESS)

    @classmethod
    def exit_code(cls, code: int, argv: Sequence[str]) -> Status:
        """The status a containerd-based runtime writes for a non-zero exit code.

        Args:
            code: the exit code, 1..255 (for 0 use :meth:`success`).
            argv: the command that ran, shown in the message.

        Returns:
            A ``NonZeroExitCode`` failure whose message reads ``"command terminated with
            non-zero exit code: error executing command [sh -c exit 3], exit code 3"`` and
            whose ``ExitCode`` cause carries the code.

        Raises:
            LocalProtocolError: ``code`` is not 1..255 or ``argv`` is a plain string.
        """
        if isinstance(code, bool) or not isinstance(code, int) or not 1 <= code <= 255:
            raise LocalProtocolError(f"exit code must be 1..255, not {code!r}")
        if isinstance(argv, str):
            raise LocalProtocolError("argv must be a sequence of strings, not a string")
        command = " ".join(argv)
        return cls(
            status=STATUS_FAILURE,
            message=("command terminated with non-zero exit code: "
                     f"error executing command [{command}], exit code {code}"),
            reason=REASON_NON_ZERO_EXIT_CODE,
            causes=(StatusCause(reason=CAUSE_EXIT_CODE, message=str(code)),),
            has_details=True,
        )

    @classmethod
    def internal_error(cls, detail: str) -> Status:
        """The status of ``apierrors.NewInternalError``: the command could not run.

        Args:
            detail: what went wrong (``"error executing command in container: ..."``).

        Returns:
            An ``InternalError`` failure with code 500 and ``detail`` as its one cause.
        """
        return cls(
            status=STATUS_FAILURE, message=f"Internal error occurred: {detail}",
            reason=REASON_INTERNAL_ERROR, code=500,
            causes=(StatusCause(message=detail),), has_details=True,
        )

    # ---------------------------------------------------------------- the JSON document

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Status:
        """Decode a ``metav1.Status`` JSON document as Go's ``json.Unmarshal`` would.

        Keys match case-insensitively (Go folding), unknown keys are ignored, ``null``
        leaves a field unset, duplicate keys overwrite (and ``details`` objects merge) in
        document order. ``metadata:{}`` may be present or absent. Two deliberate
        differences from Go, for input no Go server produces: invalid UTF-8 is refused,
        and a repeated ``causes`` array replaces the earlier one outright (Go may reuse
        its elements).

        Args:
            data: the whole JSON document.

        Returns:
            The decoded status.

        Raises:
            RemoteProtocolError: the bytes are not valid UTF-8, not valid JSON, not an
                object, or a field has the wrong type or range (e.g. ``"code":"x"`` or
                ``"code":1.5``). The message quotes the raw value.
        """
        return decode_status_and_kind(data)[0]

    def encode(self, *, metadata: bool = True, kind: bool = False) -> bytes:
        """Write the status byte for byte as Go's ``json.Marshal(metav1.Status)`` does.

        Field order ``kind, apiVersion, metadata, status, message, reason, details, code``;
        every field but ``metadata`` is ``omitempty``; ``details`` is written when the
        status has details (``{"name","group","kind","uid","causes":[{"reason","message",
        "field"}],"retryAfterSeconds"}``, each omitempty). Strings are escaped as Go
        escapes them (``kstream._gojson.go_json_string``).

        Args:
            metadata: write ``"metadata":{}`` (apimachinery servers do; v1.36+
                ``cri-streaming`` runtimes do not).
            kind: start with ``"kind":"Status","apiVersion":"v1"`` as the apiserver does
                in HTTP error bodies.

        Returns:
            The compact JSON document (no trailing newline).

        Raises:
            LocalProtocolError: ``code`` or ``retry_after_seconds`` does not fit an int32.
        """
        _check_int32(self.code, "code")
        _check_int32(self.retry_after_seconds, "retry_after_seconds")
        members = []
        if kind:
            members.append('"kind":"Status","apiVersion":"v1"')
        if metadata:
            members.append('"metadata":{}')
        if self.status:
            members.append('"status":' + go_json_string(self.status))
        if self.message:
            members.append('"message":' + go_json_string(self.message))
        if self.reason:
            members.append('"reason":' + go_json_string(self.reason))
        if self.has_details:
            members.append('"details":' + _encode_details(self))
        if self.code:
            members.append(f'"code":{self.code}')
        return ("{" + ",".join(members) + "}").encode("utf-8")

    # ---------------------------------------------------------------- the error channel

    def error_channel_bytes(self, version: int, *, metadata: bool = True) -> bytes:
        """What a server writes on the error channel for this status.

        Args:
            version: the negotiated remotecommand version, 1..5.
            metadata: v4/v5 only. ``True`` writes the apimachinery shape
                (``"metadata":{}``); ``False`` the v1.36+ ``cri-streaming`` shape, which
                has no ``metadata`` and no ``details`` on internal errors.

        Returns:
            v1-v3: ``b""`` for success, else the message as UTF-8. v4/v5: the JSON
            document.

        Raises:
            LocalProtocolError: ``version`` is not 1..5.
        """
        _check_version(version)
        if version < 4:
            if self.status == STATUS_SUCCESS:
                return b""
            return _clean(self.message).encode("utf-8")
        status = self
        if not metadata and status.reason == REASON_INTERNAL_ERROR:
            status = replace(status, has_details=False, causes=(), details_name="",
                             details_group="", details_kind="", details_uid="",
                             retry_after_seconds=0)
        return status.encode(metadata=metadata)

    @classmethod
    def parse_error_channel(cls, data: bytes | bytearray | memoryview,
                            version: int) -> ExitResult:
        """Decode the whole content of the error channel, as client-go does.

        Args:
            data: everything read from the error channel up to EOF (callers bound it,
                see :data:`MAX_STATUS_SIZE`).
            version: the negotiated remotecommand version, 1..5
                (:attr:`kstream.ChannelProtocol.version`).

        Returns:
            ``Exited(0)`` when ``data`` is empty (every version: an empty error channel
            is success); for v1-v3 ``Failed(text)`` otherwise; for v4/v5 see
            :meth:`exit_result`.

        Raises:
            RemoteProtocolError: v4/v5 bytes that are not a valid Status document, or a
                status client-go refuses (see :meth:`exit_result`).
            LocalProtocolError: ``version`` is not 1..5.
        """
        _check_version(version)
        if len(data) == 0:
            return Exited(0)
        if version < 4:
            return Failed(bytes(data).decode("utf-8", "replace"))
        return cls.decode(data).exit_result()

    def exit_result(self) -> ExitResult:
        """Interpret a decoded v4/v5 status exactly as client-go's ``errorDecoderV4``.

        Returns:
            ``Exited(0)`` for ``Success``; ``Exited(code, "command terminated with exit
            code N")`` for a ``NonZeroExitCode`` failure (even when N is 0, as client-go);
            ``Failed`` for any other ``Failure``.

        Raises:
            RemoteProtocolError: ``NonZeroExitCode`` without details, without an
                ``ExitCode`` cause, or with an exit code that is not 0..255; or a status
                value that is neither ``Success`` nor ``Failure`` (missing included).
        """
        if self.status == STATUS_SUCCESS:
            return Exited(0)
        if self.status != STATUS_FAILURE:
            raise RemoteProtocolError(
                "error stream protocol error: unknown error "
                f"(status {quote_for_error(self.status)})")
        if self.reason != REASON_NON_ZERO_EXIT_CODE:
            return Failed(self.message, self.reason, self.code, self.causes)
        if not self.has_details:
            raise RemoteProtocolError("error stream protocol error: details must be set")
        for cause in self.causes:
            if cause.reason == CAUSE_EXIT_CODE:
                code = _parse_exit_code(cause.message)
                return Exited(code, f"command terminated with exit code {code}")
        raise RemoteProtocolError("error stream protocol error: no ExitCode cause given")


@dataclass(frozen=True, slots=True)
class Exited:
    """The process ran and exited with ``code`` (0 is success).

    Attributes:
        code: the exit code, 0..255.
        message: client-go's error text for a non-zero code,
            ``"command terminated with exit code N"``; empty on plain success.
    """

    code: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class Failed:
    """The command produced no exit code: binary not found, container gone, ...

    Attributes:
        message: the server's message (client-go's error text), possibly empty.
        reason: the Status reason (``"InternalError"``, ...); empty for v1-v3.
        code: the Status code (500 for internal errors); 0 when absent.
        causes: the Status causes.
    """

    message: str
    reason: str = ""
    code: int = 0
    causes: tuple[StatusCause, ...] = ()


#: What the error channel says about the remote command.
ExitResult: TypeAlias = Exited | Failed


class _JSONObject(list[tuple[str, object]]):
    """A JSON object's members in document order, duplicate keys kept (as Go sees them)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class _NonInteger:
    """A JSON number with a fraction or exponent: Go refuses it for integer fields."""

    text: str


# Bigger than every integer type Go decodes into, so range checks reject it. Keeps Python
# from converting (and, past 4300 digits, refusing to convert) absurdly long literals.
_HUGE: Final = 1 << 80


def _parse_int(text: str) -> int:
    if len(text) > 24:
        return -_HUGE if text.startswith("-") else _HUGE
    return int(text)


def _reject_constant(text: str) -> object:
    # Python's json accepts NaN and Infinity; JSON (and Go) do not.
    raise ValueError(f"invalid literal {text}")


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_JSONObject, parse_int=_parse_int, parse_float=_NonInteger,
    parse_constant=_reject_constant,
)


def _load_json(data: bytes | bytearray | memoryview) -> object:
    # Objects come back as _JSONObject (ordered members, duplicates kept), integers as int
    # (absurdly long ones as _HUGE), other numbers as _NonInteger. Raises ValueError for
    # invalid UTF-8 or JSON, RecursionError for absurd nesting. Go would accept invalid
    # UTF-8 inside strings (as U+FFFD); kstream refuses it: no Go server writes it.
    return _DECODER.decode(bytes(data).decode("utf-8"))


_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")


def _clean(text: str) -> str:
    # A lone \ud800 escape decodes to a lone surrogate in Python; Go turns it into U+FFFD.
    return _SURROGATE_RE.sub("\ufffd", text) if _SURROGATE_RE.search(text) else text


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | _NonInteger):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _JSONObject):
        return "object"
    return "array"


class _TypeMismatch(Exception):
    """A JSON value of the wrong type or range for its Go field (json.UnmarshalTypeError)."""


def _mismatch(value: object, where: str, go_type: str) -> _TypeMismatch:
    shown = f"number {value.text}" if isinstance(value, _NonInteger) else _json_type(value)
    if isinstance(value, int) and not isinstance(value, bool):
        shown = f"number {value}" if abs(value) < _HUGE else "number (too large)"
    return _TypeMismatch(f"cannot unmarshal {shown} into field {where} of type {go_type}")


def _string_field(value: object, where: str) -> str | None:
    """A Go ``string`` field: JSON string, or null (a no-op in Go)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _clean(value)
    raise _mismatch(value, where, "string")


def _int_field(value: object, where: str, low: int, high: int, go_type: str) -> int | None:
    # A Go integer field: an integer literal in range (strconv.ParseInt, no fraction or
    # exponent), or null (a no-op).
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    raise _mismatch(value, where, go_type)


def _array_field(value: object) -> list[object]:
    # A JSON array (objects are lists of members here: refuse them), or null (no items).
    if value is None:
        return []
    if isinstance(value, list) and not isinstance(value, _JSONObject):
        return value
    raise _mismatch(value, "details.causes", "[]StatusCause")


def _object_field(value: object, where: str) -> _JSONObject | None:
    if value is None or isinstance(value, _JSONObject):
        return value
    raise _mismatch(value, where, "struct")


# --------------------------------------------------------------------------------------
# Decoding


def _decode_cause(value: object) -> StatusCause:
    members = _object_field(value, "details.causes")
    fields: dict[str, str] = {}
    for key, item in members or ():
        name = fold_key(key)
        if name in ("reason", "message", "field"):
            text = _string_field(item, f"details.causes.{name}")
            if text is not None:
                fields[name] = text
    return StatusCause(**fields)


@dataclass(slots=True)
class _Details:
    """``metav1.StatusDetails`` while it is being decoded."""

    name: str = ""
    group: str = ""
    kind: str = ""
    uid: str = ""
    causes: list[StatusCause] = field(default_factory=list)
    retry_after_seconds: int = 0


def _decode_details(members: _JSONObject, details: _Details) -> None:
    # Go decodes into the existing *StatusDetails, so duplicate "details" keys merge.
    for key, value in members:
        name = fold_key(key)
        if name in ("name", "group", "kind", "uid"):
            text = _string_field(value, f"details.{name}")
            if text is not None:
                setattr(details, name, text)
        elif name == "causes":
            details.causes = [_decode_cause(item) for item in _array_field(value)]
        elif name == "retryafterseconds":
            seconds = _int_field(value, "details.retryAfterSeconds",
                                 _INT32_MIN, _INT32_MAX, "int32")
            if seconds is not None:
                details.retry_after_seconds = seconds


def _check_metadata(members: _JSONObject) -> None:
    # metav1.ListMeta is discarded, but Go still type-checks it.
    for key, value in members:
        name = fold_key(key)
        if name in ("selflink", "resourceversion", "continue"):
            _string_field(value, f"metadata.{name}")
        elif name == "remainingitemcount":
            _int_field(value, "metadata.remainingItemCount", _INT64_MIN, _INT64_MAX, "int64")


_TOP_STRINGS: Final = {"kind": "kind", "apiversion": "apiVersion", "status": "status",
                       "message": "message", "reason": "reason"}


def _decode_members(members: _JSONObject) -> tuple[Status, str]:
    fields: dict[str, str] = {}
    code = 0
    details: _Details | None = None
    for key, value in members:
        name = fold_key(key)
        if name in _TOP_STRINGS:
            text = _string_field(value, _TOP_STRINGS[name])
            if text is not None:
                fields[name] = text
        elif name == "metadata":
            metadata = _object_field(value, "metadata")
            if metadata is not None:
                _check_metadata(metadata)
        elif name == "details":
            detail_members = _object_field(value, "details")
            if detail_members is None:
                details = None
            else:
                details = _Details() if details is None else details
                _decode_details(detail_members, details)
        elif name == "code":
            number = _int_field(value, "code", _INT32_MIN, _INT32_MAX, "int32")
            if number is not None:
                code = number
    return _build_status(fields, code, details), fields.get("kind", "")


def _build_status(fields: dict[str, str], code: int, details: _Details | None) -> Status:
    if details is None:
        return Status(status=fields.get("status", ""), message=fields.get("message", ""),
                      reason=fields.get("reason", ""), code=code)
    return Status(
        status=fields.get("status", ""), message=fields.get("message", ""),
        reason=fields.get("reason", ""), code=code, causes=tuple(details.causes),
        has_details=True, details_name=details.name, details_group=details.group,
        details_kind=details.kind, details_uid=details.uid,
        retry_after_seconds=details.retry_after_seconds,
    )


def decode_status_and_kind(data: bytes | bytearray | memoryview) -> tuple[Status, str]:
    """Decode a ``metav1.Status`` document and also return its ``kind`` (``""`` if absent).

    Args:
        data: the whole JSON document.

    Returns:
        The status and the document's ``kind`` value.

    Raises:
        RemoteProtocolError: see :meth:`Status.decode`.
    """
    try:
        document = _load_json(data)
    except (ValueError, RecursionError) as exc:
        reason = "invalid UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise RemoteProtocolError(
            f"invalid Status document: {reason} in {quote_for_error(data)}") from None
    if not isinstance(document, _JSONObject):
        raise RemoteProtocolError(
            f"invalid Status document: a JSON {_json_type(document)} is not an object "
            f"in {quote_for_error(data)}")
    try:
        return _decode_members(document)
    except _TypeMismatch as exc:
        raise RemoteProtocolError(
            f"invalid Status document: {exc} in {quote_for_error(data)}") from None


# --------------------------------------------------------------------------------------
# Encoding


def _encode_cause(cause: StatusCause) -> str:
    members = []
    if cause.reason:
        members.append('"reason":' + go_json_string(cause.reason))
    if cause.message:
        members.append('"message":' + go_json_string(cause.message))
    if cause.field:
        members.append('"field":' + go_json_string(cause.field))
    return "{" + ",".join(members) + "}"


def _encode_details(status: Status) -> str:
    members = []
    for key, value in (("name", status.details_name), ("group", status.details_group),
                       ("kind", status.details_kind), ("uid", status.details_uid)):
        if value:
            members.append(f'"{key}":' + go_json_string(value))
    if status.causes:
        members.append('"causes":[' + ",".join(map(_encode_cause, status.causes)) + "]")
    if status.retry_after_seconds:
        members.append(f'"retryAfterSeconds":{status.retry_after_seconds}')
    return "{" + ",".join(members) + "}"


def _check_int32(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) \
            or not _INT32_MIN <= value <= _INT32_MAX:
        raise LocalProtocolError(f"{what} must be an int32, not {value!r}")


# --------------------------------------------------------------------------------------
# Exit status: client side


def _check_version(version: int) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 5:
        raise LocalProtocolError(f"remotecommand version must be 1..5, not {version!r}")


_EXIT_CODE_RE: Final = re.compile("[0-9]+")


def _parse_exit_code(text: str) -> int:
    # strconv.ParseUint(s, 10, 8): ASCII digits only (leading zeros fine), at most 255.
    if _EXIT_CODE_RE.fullmatch(text):
        significant = text.lstrip("0")
        if len(significant) <= 3 and int(significant or "0") <= 255:
            return int(significant or "0")
    raise RemoteProtocolError(
        f"error stream protocol error: invalid exit code value {quote_for_error(text)}")
