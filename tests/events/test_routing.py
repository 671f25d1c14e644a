"""route: which planned actions each kind of event yields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.crypto import VaultAllowList
from shared.events import (
    AccessScope,
    FollowUpRotation,
    Ignore,
    PlanRewrap,
    ReevaluateAccess,
    RotateKey,
    WarnNearExpiry,
    parse_event,
    route,
)
from tests.events.conftest import KEY, V2, VAULT, key_event, resource_event, vault_arm_id

KEY_REF = f"https://{VAULT}.vault.azure.net/keys/{KEY}"
KEY_SCOPE = ReevaluateAccess(AccessScope(VAULT, KEY))


def test_new_version_plans_rewrap_and_face_follow_up(allow_list: VaultAllowList) -> None:
    event = parse_event(key_event(), allow_list)
    assert route(event) == [PlanRewrap(KEY_REF, V2), FollowUpRotation(KEY_REF, V2), KEY_SCOPE]


@pytest.mark.parametrize("auto_rotate", [False, True])
def test_near_expiry_warns_and_rotates_only_when_allowed(
    auto_rotate: bool, allow_list: VaultAllowList
) -> None:
    event = parse_event(key_event("Microsoft.KeyVault.KeyNearExpiry"), allow_list)
    actions = route(event, auto_rotate_near_expiry=auto_rotate)
    exp = datetime(2020, 5, 28, 22, 19, 40, tzinfo=UTC)
    expected = [WarnNearExpiry(KEY_REF, V2, exp), KEY_SCOPE]
    if auto_rotate:
        expected.append(RotateKey(KEY_REF, if_current_version=V2))
    assert actions == expected


def test_expired_reevaluates_access(allow_list: VaultAllowList) -> None:
    event = parse_event(key_event("Microsoft.KeyVault.KeyExpired"), allow_list)
    assert route(event, auto_rotate_near_expiry=True) == [KEY_SCOPE]


def test_access_change_reevaluates_its_scope(allow_list: VaultAllowList) -> None:
    event = parse_event(resource_event(vault_arm_id()), allow_list)
    assert route(event) == [ReevaluateAccess(AccessScope(VAULT))]


def test_ignored_event_routes_to_ignore(allow_list: VaultAllowList) -> None:
    event = parse_event(key_event("Microsoft.KeyVault.SecretExpired"), allow_list)
    (action,) = route(event)
    assert isinstance(action, Ignore)
    assert action.reason


def test_duplicate_delivery_routes_identically(allow_list: VaultAllowList) -> None:
    first = route(parse_event(key_event(), allow_list))
    second = route(parse_event(key_event(schema="cloudevents"), allow_list))
    assert first == second


def test_key_scope_needs_a_vault() -> None:
    with pytest.raises(ValueError):
        AccessScope(None, KEY)
