"""The admin API's gate and audit on their own: the bearer header, the roles (operator implies
reader), the caller a token names, fail-closed when not configured, and what an audit record
carries (ids and roles in the log's attributes; never a token)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.composition import VIA_ADMIN_API, Caller
from shared.errors import AdminAuthUnavailableError, ForbiddenError, UnauthenticatedError
from shared.services.admin_access import (
    OPERATOR_ROLE,
    READER_ROLE,
    Access,
    AdminGate,
    bearer_token,
    caller_from_claims,
)
from shared.services.audit import REFUSED, Auditor, InMemoryAuditTrail

CLAIMS = {"oid": "0a0b", "tid": "7f7f", "preferred_username": "ada@contoso.example",
          "roles": [OPERATOR_ROLE, 7], "azp": "04b07795"}  # fmt: skip


class Verifier:
    def __init__(self, claims: Mapping[str, Any]) -> None:
        self.claims = claims
        self.tokens: list[str] = []

    async def verify(self, token: str) -> Mapping[str, Any]:
        self.tokens.append(token)
        return self.claims


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "MissingToken"),
        ("", "MissingToken"),
        ("Basic abc", "MalformedToken"),
        ("Bearer", "MalformedToken"),
        ("Bearer a b", "MalformedToken"),
        ("Bearer " + "x" * 20_000, "MalformedToken"),
    ],
)
def test_the_bearer_header_is_the_one_place_a_token_comes_from(header: str, code: str) -> None:
    with pytest.raises(UnauthenticatedError) as caught:
        bearer_token(header)
    assert caught.value.code == code


def test_the_caller_is_the_tokens_ids_name_and_string_roles() -> None:
    caller = caller_from_claims(CLAIMS)
    assert caller == Caller("0a0b", "7f7f", "ada@contoso.example", (OPERATOR_ROLE,), VIA_ADMIN_API)
    app = caller_from_claims({"oid": "1", "tid": "2", "azp": "client", "roles": "not-a-list"})
    assert (app.name, app.roles) == ("client", ())


async def test_the_operator_role_implies_the_readers_and_not_the_other_way() -> None:
    operator = AdminGate(Verifier({**CLAIMS, "roles": [OPERATOR_ROLE]}))
    reader = AdminGate(Verifier({**CLAIMS, "roles": [READER_ROLE]}))
    nobody = AdminGate(Verifier({**CLAIMS, "roles": ["Something.Else"]}))
    for access in Access:
        assert (await operator.authorize("Bearer t", access)).roles == (OPERATOR_ROLE,)
    assert (await reader.authorize("bearer t", Access.READ)).roles == (READER_ROLE,)
    with pytest.raises(ForbiddenError) as caught:
        await reader.authorize("Bearer t", Access.OPERATE)
    assert (caught.value.status, caught.value.code) == (403, "MissingRole")
    with pytest.raises(ForbiddenError):
        await nobody.authorize("Bearer t", Access.READ)
    # Authentication alone names the caller whatever its roles: the route then refuses it
    # (and audits a refused mutation with that caller).
    assert (await nobody.authenticate("Bearer t")).roles == ("Something.Else",)


async def test_not_configured_refuses_every_call_even_a_good_token() -> None:
    gate = AdminGate(None, missing="KEYWARD_ADMIN_TENANT_ID")
    assert not gate.configured
    with pytest.raises(AdminAuthUnavailableError) as caught:
        await gate.authorize("Bearer t", Access.READ)
    assert (caught.value.status, caught.value.code) == (500, "AdminAuthNotConfigured")
    with pytest.raises(AdminAuthUnavailableError):
        await gate.authenticate("Bearer t")
    assert "KEYWARD_ADMIN_TENANT_ID" in str(caught.value)


async def test_an_audit_record_is_a_row_and_one_log_record_with_the_callers_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    trail = InMemoryAuditTrail()
    auditor = Auditor(trail, now=lambda: datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
    caller = caller_from_claims(CLAIMS)
    with caplog.at_level(logging.INFO, logger="keyward.audit"):
        await auditor.record("retire", caller, "https://v/keys/k/1", REFUSED, detail="KeyNotFound")
    (record,) = [r for r in caplog.records if r.name == "keyward.audit"]
    attributes = vars(record)
    assert attributes["caller_object_id"] == "0a0b"
    assert attributes["caller_tenant_id"] == "7f7f"
    assert attributes["caller_via"] == VIA_ADMIN_API
    assert attributes["keyward_action"] == "retire"
    assert "ada@contoso.example" not in record.getMessage()  # ids in telemetry, not e-mails
    (row,) = await auditor.recent()
    assert row["caller"] == caller.to_dict()
    assert (row["outcome"], row["detail"]) == (REFUSED, "KeyNotFound")
    assert await trail.expire(datetime(2026, 12, 7, tzinfo=UTC).date(), 10) == 1
    assert await auditor.recent() == []
