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


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header in its delta-seconds form, else ``None``."""
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
    headers = getattr(error.response, "headers", None) or {}
    if isinstance(error, ClientAuthenticationError) and error.status_code is None:
        return AccessDeniedError(f"{operation}: authentication failed")
    return from_status(operation, error.status_code, error_code(error), headers.get("Retry-After"))


def from_status(
    operation: str, status: int | None, code: str | None = None, retry_after: str | None = None
) -> ServiceError:
    """The keyward error for an HTTP refusal (also for answers read without the SDK)."""
    message = f"{operation}: HTTP {status} {code or ''}".rstrip()
    if status == _THROTTLED or (status == 503 and code in _SERVER_BUSY_CODES):
        retry = parse_retry_after(retry_after)
        return ThrottledError(message, retry_after=retry, status=status, code=code)
    if status in (401, 403):
        return AccessDeniedError(message, status=status, code=code)
    if status in (409, 412):
        return ConflictError(message, status=status, code=code)
    if status is not None and (status >= 500 or status == 408):
        return TransientServiceError(message, status=status, code=code)
    return ServiceError(message, status=status, code=code)


def is_item_fault(error: ServiceError) -> bool:
    """Whether a refusal concerns only the item at hand (a 400 on one entity): a batch then
    reports that item FAILED and goes on. Throttling, 5xx and access denied stop the batch."""
    return not error.transient and not isinstance(error, AccessDeniedError)


def item_fault(error: HttpResponseError, operation: str) -> ServiceError | None:
    """The translated error if it is an item fault (see :func:`is_item_fault`), else ``None``."""
    translated_error = translate(error, operation)
    return translated_error if is_item_fault(translated_error) else None


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """Run a block of SDK calls; any SDK error leaves it as a ``ServiceError``."""
    try:
        yield
    except AzureError as error:
        raise translate(error, operation) from None
