"""Key Vault failures translated into keyward's error hierarchy, at the adapter boundary.

Key Vault answers a refusal with ``{"error": {"code", "message", "innererror": {"code"}}}``.
The status alone does not say enough: a 403 is either the caller's identity lacking a
permission (innererror ``AccessDenied`` in access-policy vaults, ``ForbiddenByRbac`` in RBAC
vaults) or the key refusing the operation (``KeyDisabled``, ``KeyExpired``,
``KeyNotYetValid``, ``KeyOperationForbidden``). The mapping:

=================================================  ==========================
401; 403 AccessDenied / ForbiddenByRbac / other    AccessDeniedError
403 KeyDisabled / KeyExpired / KeyNotYetValid /    KeyDisabledError
KeyOperationForbidden (or 401/403 naming them)
404                                                KeyNotFoundError
409, 412                                           ConflictError
429                                                ThrottledError (retry_after)
408, 5xx, timeouts, connection failures            TransientServiceError
400 on unwrap                                      IntegrityError (not this key's ciphertext)
400 "... is not base64url." (any operation)        InvalidInputError (keyward's request)
other 4xx                                          InvalidInputError
1xx-3xx where a result was expected                ServiceError (redirects are not followed)
=================================================  ==========================

Messages name the operation, the key id, the status and the service's codes; never request
bodies (a remote wrapKey body holds the plaintext DEK), so SDK exceptions are never chained.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

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
)

#: innererror (or error) codes with which Key Vault says the *key* refuses the operation.
KEY_STATE_CODES = frozenset(
    {"KeyDisabled", "KeyExpired", "KeyNotYetValid", "KeyOperationForbidden", "KeyNotActive"}
)
_MAX_SERVICE_MESSAGE = 300


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


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms`` / ``x-ms-retry-after-ms``) header.

    Returns ``None`` when no header says anything usable.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if name in lowered:
            try:
                return max(0.0, float(lowered[name]) / 1000.0)
            except ValueError:
                pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_for_status(
    status: int | None,
    *,
    operation: str,
    key_id: str,
    code: str | None = None,
    inner_code: str | None = None,
    service_message: str | None = None,
    retry_after: float | None = None,
) -> KeywardError:
    """The keyward error for a Key Vault answer (see the module table)."""
    detail = f"Key Vault {operation} on {key_id} failed"
    if status is not None:
        detail += f": HTTP {status}"
    codes = [c for c in (code, inner_code) if c]
    if codes:
        detail += f" ({'/'.join(codes)})"
    if service_message:
        detail += f": {service_message[:_MAX_SERVICE_MESSAGE]}"
    reported = inner_code or code
    if status is not None and status < 400:
        # A redirect or other non-error status where a result was expected: not followed.
        return ServiceError(detail, status=status, code=reported)
    if status in (401, 403):
        if (inner_code in KEY_STATE_CODES) or (code in KEY_STATE_CODES):
            return KeyDisabledError(detail, status=status, code=reported)
        return AccessDeniedError(detail, status=status, code=reported)
    if status == 404:
        return KeyNotFoundError(detail, status=status, code=reported)
    if status in (409, 412):
        return ConflictError(detail, status=status, code=reported)
    if status == 429:
        return ThrottledError(detail, retry_after=retry_after, status=status, code=reported)
    if status is None or status == 408 or status >= 500:
        return TransientServiceError(detail, status=status, code=reported)
    if status == 400 and operation == "unwrapKey" and not _is_encoding_refusal(service_message):
        # keyward builds the request; a 400 on unwrap means the vault could not decrypt
        # these bytes with this key and algorithm.
        return IntegrityError(detail)
    return InvalidInputError(detail)


def _is_encoding_refusal(service_message: str | None) -> bool:
    """Key Vault's 400 for a body field that is not base64url ("Content of 'value' is not
    base64url."): the request was malformed, which says nothing about the wrapped bytes."""
    return "is not base64url" in (service_message or "")


def translate(exc: BaseException, *, operation: str, key_id: str) -> KeywardError:
    """The keyward error for an exception raised by the Azure SDK (or its transport).

    ``exc`` is an ``azure.core.exceptions`` error (or a network-level OSError). An error with
    a response maps by status and Key Vault's codes; one without maps to AccessDeniedError
    (the credential failed) or TransientServiceError (network, timeout); anything else
    becomes a plain ServiceError naming only the exception type.
    """
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, KeywardError):
        return exc
    if isinstance(exc, HttpResponseError) and exc.response is not None:
        response: Any = exc.response
        body: bytes | str | None
        try:
            body = response.text()
        except Exception:  # an unreadable body still maps by status
            body = None
        code, inner, message = parse_error_body(body)
        retry_after = parse_retry_after(dict(response.headers))
        return error_for_status(
            exc.status_code,
            operation=operation,
            key_id=key_id,
            code=code,
            inner_code=inner,
            service_message=message,
            retry_after=retry_after,
        )
    if isinstance(exc, ClientAuthenticationError):
        # No response: the credential itself failed to produce a token.
        return AccessDeniedError(
            f"Key Vault {operation} on {key_id}: the credential could not get a token "
            f"({type(exc).__name__})"
        )
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TransientServiceError(
            f"Key Vault {operation} on {key_id}: {type(exc).__name__} (network or timeout)"
        )
    if isinstance(exc, HttpResponseError):
        return TransientServiceError(f"Key Vault {operation} on {key_id}: no response")
    if isinstance(exc, TimeoutError | ConnectionError | OSError):
        return TransientServiceError(
            f"Key Vault {operation} on {key_id}: {type(exc).__name__} (network or timeout)"
        )
    return ServiceError(f"Key Vault {operation} on {key_id} failed: {type(exc).__name__}")
