"""The one Azure error translator: the status mapping every adapter shares, Key Vault's
refinement of it (body codes, innererror), Retry-After, and SDK exceptions without answers."""

from __future__ import annotations

import json

import pytest
from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError

from shared.adapters._azure_errors import (
    from_status,
    is_item_fault,
    keyvault_error,
    parse_error_body,
    parse_retry_after,
    translate,
    translated,
)
from shared.errors import (
    MAX_RETRY_AFTER_SECONDS,
    AccessDeniedError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeyDisabledError,
    KeyNotFoundError,
    ServiceError,
    ThrottledError,
    TransientServiceError,
)

KID = "https://kv1.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("status", "code", "inner", "operation", "expected"),
    [
        (401, "Unauthorized", None, "unwrapKey", AccessDeniedError),
        (403, "Forbidden", "AccessDenied", "unwrapKey", AccessDeniedError),
        (403, "Forbidden", "ForbiddenByRbac", "unwrapKey", AccessDeniedError),
        (403, "Forbidden", None, "wrapKey", AccessDeniedError),
        (403, "Forbidden", "KeyDisabled", "unwrapKey", KeyDisabledError),
        (403, "Forbidden", "KeyExpired", "wrapKey", KeyDisabledError),
        (403, "Forbidden", "KeyNotYetValid", "wrapKey", KeyDisabledError),
        (403, "Forbidden", "KeyOperationForbidden", "unwrapKey", KeyDisabledError),
        (404, "KeyNotFound", None, "unwrapKey", KeyNotFoundError),
        (409, "Conflict", None, "get", ConflictError),
        (412, "PreconditionFailed", None, "get", ConflictError),
        (429, "Throttled", None, "unwrapKey", ThrottledError),
        (408, None, None, "unwrapKey", TransientServiceError),
        (500, "InternalServerError", None, "unwrapKey", TransientServiceError),
        (503, "ServiceUnavailable", None, "get", TransientServiceError),
        (400, "BadParameter", None, "unwrapKey", IntegrityError),
        (400, "BadParameter", None, "wrapKey", InvalidInputError),
        (405, None, None, "get", InvalidInputError),
        (302, None, None, "unwrapKey", ServiceError),
    ],
)
def test_status_mapping(
    status: int, code: str | None, inner: str | None, operation: str, expected: type
) -> None:
    error = keyvault_error(
        status,
        operation=operation,
        key_id=KID,
        code=code,
        inner_code=inner,
        service_message="msg",
        retry_after=3.0,
    )
    assert type(error) is expected
    assert KID in str(error)
    if isinstance(error, ServiceError):
        assert error.status == status
    if isinstance(error, ThrottledError):
        assert error.retry_after == 3.0
        assert error.transient


def test_service_message_is_bounded() -> None:
    error = keyvault_error(500, operation="get", key_id=KID, service_message="x" * 10_000)
    assert len(str(error)) < 600


def test_parse_error_body() -> None:
    body = json.dumps(
        {"error": {"code": "Forbidden", "message": "m", "innererror": {"code": "KeyDisabled"}}}
    )
    assert parse_error_body(body) == ("Forbidden", "KeyDisabled", "m")
    assert parse_error_body(body.encode()) == ("Forbidden", "KeyDisabled", "m")
    for junk in (None, "", "not json", "[]", '{"error": 1}', "[" * 50_000):
        assert parse_error_body(junk) == (None, None, None)


def test_parse_retry_after() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    assert parse_retry_after({"x-ms-retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    http_date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert parse_retry_after({"Retry-After": http_date}, now=1445412480.0) == 10.0
    assert parse_retry_after({"Retry-After": "-3"}) == 0.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "inf"}, 60.0),
        ({"Retry-After": "Infinity"}, 60.0),
        ({"Retry-After": "1e9"}, 60.0),
        ({"Retry-After": "86400"}, 60.0),
        ({"Retry-After": "-1e9"}, 0.0),
        ({"Retry-After": "-inf"}, 0.0),
        ({"Retry-After": "nan"}, None),
        ({"retry-after-ms": "1e12"}, 60.0),
        ({"x-ms-retry-after-ms": "inf"}, 60.0),
        ({"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}, 60.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, 0.0),  # in the past
    ],
)
def test_retry_after_is_capped_finite_and_never_negative(
    headers: dict[str, str], seconds: float | None
) -> None:
    """Issue 11 item 8: one cap (``MAX_RETRY_AFTER_SECONDS``, 60 s) for every Retry-After."""
    assert MAX_RETRY_AFTER_SECONDS == 60.0
    assert parse_retry_after(headers) == seconds
    error = from_status("unwrapKey", 429, None, parse_retry_after(headers))
    assert isinstance(error, ThrottledError)
    assert error.retry_after == seconds
    assert ThrottledError("x", retry_after=float("inf")).retry_after == 60.0


def test_translate_network_and_credential_errors() -> None:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        ServiceRequestError,
        ServiceResponseTimeoutError,
    )

    assert isinstance(
        translate(ServiceRequestError("boom"), operation="get", key_id=KID), TransientServiceError
    )
    assert isinstance(
        translate(ServiceResponseTimeoutError("slow"), operation="get", key_id=KID),
        TransientServiceError,
    )
    assert isinstance(
        translate(ClientAuthenticationError("no token"), operation="get", key_id=KID),
        AccessDeniedError,
    )
    assert isinstance(translate(ConnectionResetError(), operation="get", key_id=KID), ServiceError)
    assert type(translate(RuntimeError("x"), operation="get", key_id=KID)) is ServiceError


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, "TooManyRequests", ThrottledError),
        (503, "ServerBusy", ThrottledError),
        (503, "OperationTimedOut", ThrottledError),
        (503, "ServiceUnavailable", TransientServiceError),
        (500, "InternalError", TransientServiceError),
        (408, None, TransientServiceError),
        (401, None, AccessDeniedError),
        (403, "AuthorizationFailure", AccessDeniedError),
        (409, "EntityAlreadyExists", ConflictError),
        (412, "UpdateConditionNotSatisfied", ConflictError),
        (404, "ResourceNotFound", ServiceError),
        (400, "InvalidInput", ServiceError),
        (None, None, ServiceError),
    ],
)
def test_the_shared_status_mapping(status: int | None, code: str | None, expected: type) -> None:
    error = from_status("write entity", status, code, retry_after=2.0)
    assert type(error) is expected
    assert str(error).startswith("write entity: HTTP")
    if isinstance(error, ThrottledError):
        assert error.retry_after == 2.0
    assert is_item_fault(error) is (expected in (ServiceError, ConflictError))


def test_translated_leaves_no_sdk_error_and_no_chain() -> None:
    with pytest.raises(TransientServiceError) as caught, translated("send to queue q"):
        raise ServiceRequestError("connection refused")
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert "send to queue q" in str(caught.value)
    with pytest.raises(TransientServiceError, match="no response"), translated("x"):
        raise AzureError("odd")
    with pytest.raises(TransientServiceError, match="no response"):
        with translated("unwrapKey", key_id=KID):
            raise HttpResponseError("no answer")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Error occurred while decoding OAEP padding.", IntegrityError),
        (
            "Content of 'value' is not base64url.\r\nProperty 'value' is required.\r\n",
            InvalidInputError,
        ),
    ],
)
def test_unwrap_400_says_whose_fault(message: str, expected: type) -> None:
    """Both recorded 400 BadParameter answers to unwrapKey: bytes the key did not produce
    (Azure/azure-sdk-for-net#18947) are an integrity failure; a value that is not base64url
    (bruj0/vault-recovery-key#20) is a malformed request, not a verdict on the DEK."""
    error = keyvault_error(
        400, operation="unwrapKey", key_id=KID, code="BadParameter", service_message=message
    )
    assert type(error) is expected
