"""Translate Azure SDK exceptions into keyward's error hierarchy at the store boundary.

Nothing above the Table and Blob stores ever sees an ``azure.*`` exception: callers catch
``shared.errors`` types and decide on ``ServiceError.transient`` alone. Messages name the
operation, status and service error code, never request bodies (which hold wrapped keys).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.errors import (
    AccessDeniedError,
    ConflictError,
    ServiceError,
    ThrottledError,
    TransientServiceError,
)

_THROTTLED = 429
#: Storage signals overload with 503 ServerBusy as well as 429.
_SERVER_BUSY_CODES = frozenset({"ServerBusy", "OperationTimedOut"})


def _retry_after(error: HttpResponseError) -> float | None:
    headers = getattr(error.response, "headers", None) or {}
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def error_code(error: HttpResponseError) -> str | None:
    code = getattr(error, "error_code", None)
    code = getattr(code, "value", code)  # azure-data-tables gives a TableErrorCode enum
    return str(code) if code else None


def translate(error: AzureError, operation: str) -> ServiceError:
    """The keyward error for an SDK error raised during ``operation``."""
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return TransientServiceError(f"{operation}: connection failed ({type(error).__name__})")
    if not isinstance(error, HttpResponseError):
        return TransientServiceError(f"{operation}: {type(error).__name__}")
    status = error.status_code
    code = error_code(error)
    message = f"{operation}: HTTP {status} {code or ''}".rstrip()
    if status == _THROTTLED or (status == 503 and code in _SERVER_BUSY_CODES):
        return ThrottledError(message, retry_after=_retry_after(error), status=status, code=code)
    if isinstance(error, ClientAuthenticationError) or status in (401, 403):
        return AccessDeniedError(message, status=status, code=code)
    if isinstance(error, ResourceModifiedError | ResourceExistsError) or status in (409, 412):
        return ConflictError(message, status=status, code=code)
    if status is not None and (status >= 500 or status == 408):
        return TransientServiceError(message, status=status, code=code)
    return ServiceError(message, status=status, code=code)


def item_fault(error: HttpResponseError, operation: str) -> ServiceError | None:
    """The translated error when it concerns only the item at hand (a 400 on one entity),
    so a batch reports that item FAILED and goes on; ``None`` when it must stop the batch
    (throttling, 5xx, access denied: retry or give up as a whole)."""
    translated_error = translate(error, operation)
    if translated_error.transient or isinstance(translated_error, AccessDeniedError):
        return None
    return translated_error


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Run a block of SDK calls; any SDK error leaves it as a ``ServiceError``."""
    try:
        yield
    except AzureError as error:
        raise translate(error, operation) from None
