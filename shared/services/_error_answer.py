"""keyward's errors as the admin API answers them: one mapping for HTTP and for operations.

An HTTP request that fails at once and an operation that fails in the background say the
same thing the same way (the operation's ``error`` is the body's ``error`` plus what the
refusal lists), so this mapping has one home; the triggers reach it through
``shared.composition``. Messages never hold key material (the errors' own rule).
"""

from __future__ import annotations

from typing import Any

from shared.errors import (
    AccessDeniedError,
    ConfigurationError,
    InvalidInputError,
    KeyNotFoundError,
    KeywardError,
    RetirementBlockedError,
    RetirementRaceError,
    ServiceError,
    VaultNotAllowedError,
)
from shared.records import JobBusyError
from shared.rewrap import RewrapTargetError
from shared.services._store_job_errors import StoreJobBlockedError


def error_status(error: KeywardError) -> tuple[int, str]:
    """The HTTP status and error code for ``error`` (whose fault it is, and what)."""
    if isinstance(error, VaultNotAllowedError):
        return 403, "VaultNotAllowed"
    if isinstance(error, RetirementBlockedError):
        return 409, error.code_name
    if isinstance(error, RewrapTargetError):
        return 409, "RewrapTargetRefused"
    if isinstance(error, JobBusyError):
        return 409, "StoreJobBusy"
    if isinstance(error, StoreJobBlockedError):
        return 409, "StoreJobBlocked"
    if isinstance(error, InvalidInputError):
        return 400, "BadRequest"
    if isinstance(error, KeyNotFoundError):
        return 404, "KeyNotFound"
    if isinstance(error, AccessDeniedError):
        return 502, "VaultAccessDenied"
    if isinstance(error, ConfigurationError):
        return 500, "Misconfigured"
    if isinstance(error, ServiceError) and error.transient:
        return 503, "Unavailable"
    return 502, "UpstreamRefused"


def error_json(error: KeywardError) -> dict[str, Any]:
    """An operation's ``error``: ``code``, ``message`` and, for a retirement refusal, its
    ``blockers`` (and, for a race, ``previous_wraps_dropped``)."""
    _, code = error_status(error)
    body: dict[str, Any] = {"code": code, "message": str(error)}
    if isinstance(error, RetirementBlockedError):
        body["blockers"] = list(error.blockers)
    if isinstance(error, RetirementRaceError):
        body["previous_wraps_dropped"] = error.dropped
    if isinstance(error, StoreJobBlockedError):
        body["problem_refs"] = list(error.problem_refs)
    return body


def error_answer(error: KeywardError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body for ``error``: ``{"error": {"code", "message"}}``, plus
    ``"blockers"`` beside it for a retirement refusal (the shape the API always had)."""
    status, code = error_status(error)
    body: dict[str, Any] = {"error": {"code": code, "message": str(error)}}
    if isinstance(error, RetirementBlockedError):
        body["blockers"] = list(error.blockers)
    return status, body
