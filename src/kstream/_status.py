"""The exit-status codec under its module-level names (transitional).

Everything lives in ``_status_types`` (``Status`` and its classmethods). The names below
keep the package's existing call sites (adapters, ``serve``, sessions, tests) working while
they move to the classmethods; each is the classmethod itself, not a copy:

=========================  ==========================================
``success_status()``       ``Status.success()``
``exit_code_status()``     ``Status.exit_code(code, argv)``
``internal_error_status``  ``Status.internal_error(detail)``
``decode_status``          ``Status.decode(data)``
``encode_status``          ``status.encode(metadata=..., kind=...)``
``exit_status_bytes``      ``status.error_channel_bytes(version)``
``parse_exit_status``      ``Status.parse_error_channel(data, version)``
``exit_result``            ``status.exit_result()``
=========================  ==========================================

Delete this module once no caller imports it.
"""

from __future__ import annotations

from ._status_types import CAUSE_EXIT_CODE as CAUSE_EXIT_CODE
from ._status_types import MAX_STATUS_SIZE as MAX_STATUS_SIZE
from ._status_types import REASON_INTERNAL_ERROR as REASON_INTERNAL_ERROR
from ._status_types import REASON_NON_ZERO_EXIT_CODE as REASON_NON_ZERO_EXIT_CODE
from ._status_types import STATUS_FAILURE as STATUS_FAILURE
from ._status_types import STATUS_SUCCESS as STATUS_SUCCESS
from ._status_types import Exited as Exited
from ._status_types import ExitResult as ExitResult
from ._status_types import Failed as Failed
from ._status_types import Status as Status
from ._status_types import StatusCause as StatusCause
from ._status_types import decode_status_and_kind as decode_status_and_kind

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
    "decode_status",
    "decode_status_and_kind",
    "encode_status",
    "exit_code_status",
    "exit_result",
    "exit_status_bytes",
    "internal_error_status",
    "parse_exit_status",
    "success_status",
]

success_status = Status.success
exit_code_status = Status.exit_code
internal_error_status = Status.internal_error
decode_status = Status.decode
encode_status = Status.encode
exit_status_bytes = Status.error_channel_bytes
parse_exit_status = Status.parse_error_channel
exit_result = Status.exit_result
