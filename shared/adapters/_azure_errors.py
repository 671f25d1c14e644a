"""The one translator from Azure SDK errors to keyward's error hierarchy, for every adapter.

Nothing above ``shared.adapters`` ever sees an ``azure.*`` exception: callers catch
``shared.errors`` types and decide on ``ServiceError.transient`` alone. One status mapping
serves every service; Key Vault refines it, because its status alone does not say enough (a
403 is either the identity lacking a permission or the *key* refusing the operation, told
apart by the ``{"error": {"code", "message", "innererror": {"code"}}}`` body):

=================================================  ==========================
401, 403                                           AccessDeniedError
409, 412                                           ConflictError
429; 503 ServerBusy / OperationTimedOut (Storage)  ThrottledError (retry_after)
408, 5xx, timeouts, connection failures            TransientServiceError
3xx (no client follows a redirect: ``_pipeline``)  ServiceError (not transient)
other statuses                                     ServiceError
Key Vault refinements (``key_id`` given):
401/403 KeyDisabled / KeyExpired / KeyNotYetValid  KeyDisabledError
/ KeyOperationForbidden / KeyNotActive
404                                                KeyNotFoundError
400 on unwrapKey                                   IntegrityError (not this key's ciphertext)
400 "... is not base64url." (any operation)        InvalidInputError (keyward's request)
other 4xx                                          InvalidInputError
no status (no response)                            TransientServiceError
=================================================  ==========================

Messages name the operation (and key id), the status and the service's codes; never request
bodies (they hold wrapped keys, and a remote wrapKey body the plaintext DEK), so SDK
exceptions are never chained.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, overload

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
    IntegrityError,
    InvalidInputError,
    KeyDisabledError,
    KeyNotFoundError,
    KeywardError,
    ServiceError,
    ThrottledError,
    TransientServiceError,
    cap_retry_after,
)

#: Storage signals overload with 503 ServerBusy as well as 429.
_SERVER_BUSY_CODES = frozenset({"ServerBusy", "OperationTimedOut"})
#: innererror (or error) codes with which Key Vault says the *key* refuses the operation.
KEY_STATE_CODES = frozenset(
    {"KeyDisabled", "KeyExpired", "KeyNotYetValid", "KeyOperationForbidden", "KeyNotActive"}
)
_MAX_SERVICE_MESSAGE = 300


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` (delta-seconds or HTTP date) or ``retry-after-ms`` /
    ``x-ms-retry-after-ms`` header; ``None`` when no header says anything usable.

    The answer is capped by :func:`shared.errors.cap_retry_after`: finite, never negative,
    at most ``MAX_RETRY_AFTER_SECONDS`` (``inf``, ``1e9`` or a date next year wait 60 s).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if name in lowered:
            try:
                return cap_retry_after(float(lowered[name]) / 1000.0)
            except ValueError:
                pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return cap_retry_after(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return cap_retry_after(when.timestamp() - (time.time() if now is None else now))


def error_code(error: HttpResponseError) -> str | None:
    """The service's error code the SDK read (Storage's ``x-ms-error-code``)."""
    code = getattr(error, "error_code", None)
    code = getattr(code, "value", code)  # azure-data-tables gives a TableErrorCode enum
    return str(code) if code else None


def parse_error_body(body: bytes | str | None) -> tuple[str | None, str | None, str | None]:
    """(code, innererror code, message) from a Key Vault error body; Nones when absent."""
    if not body:
        return None, None, None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None, None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None, None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else None
    inner = error.get("innererror") or error.get("innerError")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    return code, inner_code if isinstance(inner_code, str) else None, message


def from_status(
    operation: str,
    status: int | None,
    code: str | None = None,
    retry_after: float | None = None,
    *,
    message: str | None = None,
) -> ServiceError:
    """The keyward error for an HTTP refusal (also for answers read without the SDK)."""
    message = message or f"{operation}: HTTP {status} {code or ''}".rstrip()
    if status == 429 or (status == 503 and code in _SERVER_BUSY_CODES):
        return ThrottledError(message, retry_after=retry_after, status=status, code=code)
    if status in (401, 403):
        return AccessDeniedError(message, status=status, code=code)
    if status in (409, 412):
        return ConflictError(message, status=status, code=code)
    if status is not None and (status >= 500 or status == 408):
        return TransientServiceError(message, status=status, code=code)
    return ServiceError(message, status=status, code=code)


def keyvault_error(
    status: int | None,
    *,
    operation: str,
    key_id: str,
    code: str | None = None,
    inner_code: str | None = None,
    service_message: str | None = None,
    retry_after: float | None = None,
) -> KeywardError:
    """The keyward error for a Key Vault answer: :func:`from_status` refined (module table)."""
    detail = f"Key Vault {operation} on {key_id} failed"
    if status is not None:
        detail += f": HTTP {status}"
    codes = [c for c in (code, inner_code) if c]
    if codes:
        detail += f" ({'/'.join(codes)})"
    if service_message:
        detail += f": {service_message[:_MAX_SERVICE_MESSAGE]}"
    reported = inner_code or code
    if status is None:
        return TransientServiceError(detail, status=status, code=reported)
    if status in (401, 403) and (inner_code in KEY_STATE_CODES or code in KEY_STATE_CODES):
        return KeyDisabledError(detail, status=status, code=reported)
    if status == 404:
        return KeyNotFoundError(detail, status=status, code=reported)
    if status == 400 and operation == "unwrapKey" and not _is_encoding_refusal(service_message):
        # keyward builds the request; a 400 on unwrap means the vault could not decrypt
        # these bytes with this key and algorithm.
        return IntegrityError(detail)
    if 400 <= status < 500 and status not in (401, 403, 408, 409, 412, 429):
        return InvalidInputError(detail)
    # Redirects and other non-error statuses (not followed) fall through to ServiceError.
    return from_status(operation, status, reported, retry_after, message=detail)


def _is_encoding_refusal(service_message: str | None) -> bool:
    """Key Vault's 400 for a body field that is not base64url ("Content of 'value' is not
    base64url."): the request was malformed, which says nothing about the wrapped bytes."""
    return "is not base64url" in (service_message or "")


@overload
def translate(error: BaseException, operation: str) -> ServiceError: ...
@overload
def translate(error: BaseException, operation: str, *, key_id: str) -> KeywardError: ...
def translate(error: BaseException, operation: str, *, key_id: str | None = None) -> KeywardError:
    """The keyward error for an exception the Azure SDK (or its transport) raised.

    With ``key_id`` the call was a Key Vault one: the error body's codes refine the mapping
    (:func:`keyvault_error`). An error with a response maps by status; one without maps to
    AccessDeniedError (the credential could not get a token) or TransientServiceError
    (network, timeout); anything else becomes a plain ServiceError naming only its type.
    """
    subject = operation if key_id is None else f"Key Vault {operation} on {key_id}"
    if isinstance(error, KeywardError):
        return error
    if isinstance(error, HttpResponseError) and error.response is not None:
        response: Any = error.response
        retry_after = parse_retry_after(dict(getattr(response, "headers", None) or {}))
        if key_id is None:
            return from_status(operation, error.status_code, error_code(error), retry_after)
        body: bytes | str | None
        try:
            body = response.text()
        except Exception:  # an unreadable body still maps by status
            body = None
        code, inner, message = parse_error_body(body)
        return keyvault_error(
            error.status_code,
            operation=operation,
            key_id=key_id,
            code=code,
            inner_code=inner,
            service_message=message,
            retry_after=retry_after,
        )
    if isinstance(error, ClientAuthenticationError):
        return AccessDeniedError(f"{subject}: the credential could not get a token")
    if isinstance(error, ServiceRequestError | ServiceResponseError | OSError):
        return TransientServiceError(f"{subject}: {type(error).__name__} (network or timeout)")
    if isinstance(error, AzureError):
        return TransientServiceError(f"{subject}: no response ({type(error).__name__})")
    return ServiceError(f"{subject} failed: {type(error).__name__}")


def is_item_fault(error: ServiceError) -> bool:
    """Whether a refusal concerns only the item at hand (a 400 on one entity): a batch then
    reports that item FAILED and goes on. Throttling, 5xx and access denied stop the batch."""
    return not error.transient and not isinstance(error, AccessDeniedError)


def item_fault(error: HttpResponseError, operation: str) -> ServiceError | None:
    """The translated error if it is an item fault (see :func:`is_item_fault`), else ``None``."""
    translated_error = translate(error, operation)
    return translated_error if is_item_fault(translated_error) else None


@contextmanager
def translated(operation: str, *, key_id: str | None = None) -> Iterator[None]:
    """Run a block of SDK calls; any SDK error leaves it as a keyward error."""
    try:
        yield
    except AzureError as error:
        if key_id is None:
            raise translate(error, operation) from None
        raise translate(error, operation, key_id=key_id) from None
