"""Verdict changes driven by real changes in the emulator: one event, one tag write, each.

Every test starts from a sweep that sees the account for the first time (a healthy account
gets its status tag and no event), makes one change in the emulator, sweeps again and asserts
the verdict, exactly one outgoing CloudEvent in the sink and exactly one ARM write of the
account; a further sweep changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.keyvault.keys import KeyClient

from devtools.emulator.credential import EmulatorCredential
from shared.dependents import STATUS_TAG, FlagEventType, PublishEvent
from shared.events import AccessScope
from shared.services._dependent_effects import DependentSummary, event_id
from tests.face_integration.conftest import FaceLab, LabVault

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


def key_client(lab: FaceLab, vault: LabVault) -> KeyClient:
    return KeyClient(vault.url, EmulatorCredential(lab.operator), **lab.emulator.sdk_kwargs)


def flag(records: Any, account: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in records if r["account_id"].lower() == account["id"].lower())


async def test_first_sweep_tags_healthy_account_and_repeats_are_silent(lab: FaceLab) -> None:
    vault = lab.vault()
    version = lab.key(vault)
    account = lab.account(vault, version=version)
    service = lab.service()

    summary = await service.sweep()
    assert summary.statuses == {"OK": 1}, (await service.status(50)).flags
    await service.sweep()
    await service.sweep()

    assert lab.events(account) == []
    assert lab.arm_writes(account) == 1
    tags = lab.arm_account(account).tags
    assert tags == {"owner": "team-vision", "cost-center": "42", STATUS_TAG: "OK"}
    record = flag((await service.status(50)).flags, account)
    assert record["status"] == "OK"
    assert record["key_id"].endswith(f"/keys/cmk/{version}")
    assert await service.pinned_versions(f"{vault.url}/keys/cmk") == {version: (account["id"],)}


async def test_key_disabled_then_enabled_again(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault)  # follows the latest version
    service = lab.service()
    await service.sweep()

    with key_client(lab, vault) as keys:
        keys.update_key_properties("cmk", enabled=False)
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert lab.events(account)[0]["data"]["reasons"] == ["KEY_DISABLED"]
    assert lab.arm_writes(account) == 2
    assert lab.tag(account) == "ACCESS_LOST"

    with key_client(lab, vault) as keys:
        keys.update_key_properties("cmk", enabled=True)
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost", "KeyAccessRestored"]
    assert lab.arm_writes(account) == 3
    assert lab.tag(account) == "OK"
    assert lab.arm_account(account).tags["owner"] == "team-vision"


async def test_access_change_reevaluates_only_its_scope(lab: FaceLab) -> None:
    first, second = lab.vault(), lab.vault()
    lab.key(first)
    lab.key(second)
    on_first, on_second = lab.account(first), lab.account(second)
    service = lab.service()
    await service.sweep()
    lab.client.delete_access_policy(first.name, on_first["identity"]["principalId"])
    lab.client.delete_access_policy(second.name, on_second["identity"]["principalId"])

    summary = await service.reevaluate(AccessScope(first.name, "cmk"))
    assert summary.accounts == 1
    assert await service.reevaluate(AccessScope(first.name, "other-key")) == DependentSummary()
    assert lab.event_types(on_first) == ["KeyAccessLost"]
    assert lab.event_types(on_second) == []

    await service.reevaluate(AccessScope.everything())
    assert lab.event_types(on_second) == ["KeyAccessLost"]


async def test_vault_off_the_allow_list_is_unknown_without_a_data_plane_call(
    lab: FaceLab,
) -> None:
    vault, listed = lab.vault(), lab.vault()
    lab.key(vault)
    account = lab.account(vault)
    lab.client.reset_counters(vault.name)
    service = lab.service(allowed=[listed])

    summary = await service.sweep()
    assert summary.statuses == {"UNKNOWN": 1}
    assert lab.client.counters(vault.name)["vault"]["ops"] == {}
    assert lab.events(account) == []
    assert lab.arm_writes(account) == 0


async def test_events_published_with_a_token_are_cloud_events_with_stable_ids(
    lab: FaceLab,
) -> None:
    vault = lab.vault(purge=False)
    lab.key(vault)
    account = lab.account(vault)
    service = lab.service(topic_key=False)
    await service.sweep()

    (record,) = lab.sunk()
    assert record["auth"] == "bearer"
    assert record["contentType"].startswith("application/cloudevents")
    event = record["event"]
    assert event["specversion"] == "1.0"
    assert event["type"] == "Keyward.FaceAccount.KeyAtRisk"
    assert event["source"] == "/keyward/face-accounts"
    assert event["subject"] == account["id"]
    assert event["data"]["accountName"] == account["name"]
    assert event["data"]["status"] == "AT_RISK"
    assert event["id"] == event_id(
        PublishEvent(FlagEventType.KEY_AT_RISK, account["id"], event["data"]), service.kind.labels
    )
