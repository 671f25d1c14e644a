"""Key Vault answers -> keyward errors: the mapping table, Retry-After, challenge parsing."""

from __future__ import annotations

import json

import pytest

from shared.adapters._keyvault_errors import (
    error_for_status,
    parse_error_body,
    parse_retry_after,
    translate,
)
from shared.adapters._keyvault_rest import check_challenge_resource, parse_challenge
from shared.errors import (
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
    error = error_for_status(
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
    error = error_for_status(
        400, operation="unwrapKey", key_id=KID, code="BadParameter", service_message=message
    )
    assert type(error) is expected


def test_service_message_is_bounded() -> None:
    error = error_for_status(500, operation="get", key_id=KID, service_message="x" * 10_000)
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


def test_parse_challenge() -> None:
    challenge = parse_challenge(
        'Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-'
        '2d7cd011db47", resource="https://vault.azure.net"'
    )
    assert challenge.scope == "https://vault.azure.net/.default"
    assert challenge.tenant_id == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    scoped = parse_challenge(
        'Bearer authorization_uri="https://login.x/t1/", scope="https://managedhsm.azure.net/.default"'
    )
    assert scoped.scope == "https://managedhsm.azure.net/.default"
    assert scoped.tenant_id == "t1"
    for bad in ("Basic realm=x", "Bearer resource=x", "Bearer authorization=https://a"):
        with pytest.raises(AccessDeniedError):
            parse_challenge(bad)


def test_challenge_resource_must_match_the_vault_domain() -> None:
    check_challenge_resource("https://vault.azure.net/.default", "https://kv1.vault.azure.net")
    check_challenge_resource(
        "https://managedhsm.azure.net/.default", "https://hsm1.managedhsm.azure.net"
    )
    for scope, url in (
        ("https://evil.com/.default", "https://kv1.vault.azure.net"),
        ("https://vault.azure.net/.default", "https://kv1.vault.azure.net.evil.com"),
        ("https://vault.azure.net/.default", "https://evilvault.azure.net"),
    ):
        with pytest.raises(AccessDeniedError):
            check_challenge_resource(scope, url)
