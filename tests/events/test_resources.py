"""Subscription-topic events: role assignments and vaults become access changes."""

from __future__ import annotations

import pytest

from shared.crypto import VaultAllowList
from shared.errors import EventRejectedError
from shared.events import (
    AccessChangeEvent,
    AccessChangeKind,
    AccessScope,
    IgnoredEvent,
    RejectionReason,
    parse_event,
)
from tests.events.conftest import RG, SUB, VAULT, resource_event, vault_arm_id

RA = "/providers/Microsoft.Authorization/roleAssignments/6b1e4d1f-0000-4000-8000-000000000001"
K = AccessChangeKind


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
@pytest.mark.parametrize(
    ("resource_uri", "deleted", "kind", "scope"),
    [
        (
            vault_arm_id() + "/keys/face-cmk" + RA,
            False,
            K.ROLE_ASSIGNMENT_WRITTEN,
            AccessScope(VAULT, "face-cmk"),
        ),
        (vault_arm_id() + RA, True, K.ROLE_ASSIGNMENT_DELETED, AccessScope(VAULT)),
        (
            f"/subscriptions/{SUB}/resourceGroups/{RG}" + RA,
            True,
            K.ROLE_ASSIGNMENT_DELETED,
            AccessScope.everything(),
        ),
        (f"/subscriptions/{SUB}" + RA, False, K.ROLE_ASSIGNMENT_WRITTEN, AccessScope.everything()),
        (vault_arm_id(), False, K.VAULT_WRITTEN, AccessScope(VAULT)),
        (vault_arm_id().lower(), True, K.VAULT_DELETED, AccessScope(VAULT)),
        (
            vault_arm_id() + "/accessPolicies/add",
            False,
            K.ACCESS_POLICY_CHANGED,
            AccessScope(VAULT),
        ),
        (
            vault_arm_id() + "/keys/face-cmk",
            True,
            K.KEY_RESOURCE_DELETED,
            AccessScope(VAULT, "face-cmk"),
        ),
    ],
)
def test_access_changes(
    schema: str,
    resource_uri: str,
    deleted: bool,
    kind: AccessChangeKind,
    scope: AccessScope,
    allow_list: VaultAllowList,
) -> None:
    parsed = parse_event(resource_event(resource_uri, deleted=deleted, schema=schema), allow_list)
    assert isinstance(parsed, AccessChangeEvent)
    assert parsed.kind is kind
    assert parsed.scope == scope
    assert parsed.resource_uri == resource_uri


@pytest.mark.parametrize(
    "resource_uri",
    [
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/s1",
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Storage/storageAccounts/s1"
        + RA,
        vault_arm_id("unlisted-kv"),
        vault_arm_id("unlisted-kv") + RA,
        vault_arm_id() + "/secrets/s1" + RA,
        vault_arm_id() + "/secrets/s1",
        vault_arm_id() + "/privateEndpointConnections/pe1",
    ],
)
def test_unrelated_resources_are_ignored(resource_uri: str, allow_list: VaultAllowList) -> None:
    parsed = parse_event(resource_event(resource_uri), allow_list)
    assert isinstance(parsed, IgnoredEvent)
    assert parsed.reason


def test_resource_group_topic_must_contain_the_resource(allow_list: VaultAllowList) -> None:
    rg_topic = f"/subscriptions/{SUB}/resourceGroups/{RG.upper()}"
    ok = parse_event(resource_event(vault_arm_id(), topic=rg_topic), allow_list)
    assert isinstance(ok, AccessChangeEvent)
    with pytest.raises(EventRejectedError) as info:
        parse_event(resource_event(vault_arm_id(rg="elsewhere"), topic=rg_topic), allow_list)
    assert info.value.reason == RejectionReason.SCOPE_MISMATCH


@pytest.mark.parametrize(
    ("topic", "resource_uri", "reason"),
    [
        (
            f"/subscriptions/{'1' * 8}-1111-1111-1111-{'1' * 12}",
            vault_arm_id(),
            RejectionReason.SCOPE_MISMATCH,
        ),
        ("/subscriptions/{subscription-id}", vault_arm_id(), RejectionReason.BAD_TOPIC),
        (vault_arm_id(), vault_arm_id(), RejectionReason.BAD_TOPIC),
        (f"/subscriptions/{SUB}", "not-an-arm-id", RejectionReason.BAD_RESOURCE_URI),
    ],
)
def test_relevant_resource_on_a_wrong_topic_is_rejected(
    topic: str, resource_uri: str, reason: RejectionReason, allow_list: VaultAllowList
) -> None:
    with pytest.raises(EventRejectedError) as info:
        parse_event(resource_event(resource_uri, topic=topic), allow_list)
    assert info.value.reason == reason


def test_missing_resource_uri_is_rejected(allow_list: VaultAllowList) -> None:
    event = resource_event(vault_arm_id())
    del event["data"]["resourceUri"]
    with pytest.raises(EventRejectedError) as info:
        parse_event(event, allow_list)
    assert info.value.reason == RejectionReason.MISSING_FIELD


def test_vault_name_prefix_does_not_match(allow_list: VaultAllowList) -> None:
    parsed = parse_event(resource_event(vault_arm_id(VAULT + "x") + RA), allow_list)
    assert isinstance(parsed, IgnoredEvent)
