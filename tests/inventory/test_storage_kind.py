"""The storage kind against the emulator: re-point a pinned account, leave one that follows
the latest version alone, write only keyward's tags; and the retirement report lists every
watched resource pinned to a version, by kind, so a storage pin blocks "safe to disable"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from azure.mgmt.storage import StorageManagementClient

from devtools.emulator.arm_client import management_client_kwargs
from devtools.emulator.credential import EmulatorCredential
from shared.rewrap import verdict_from_counts
from shared.services._render import retirement_json

# The late-writer wait off: the session's emulator clock may run ahead of this process's
# (other tests move it), so even a zero wait could put a rotation "too recent".
from tests.campaign._world import NO_LATE_WRITERS
from tests.inventory.conftest import InventoryLab

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


def _arm_storage(lab: InventoryLab, account: dict[str, object]) -> dict[str, object]:
    """The account as azure-mgmt-storage reads it (ARM's REST names)."""
    subscription = str(account["id"]).split("/")[2]
    client = StorageManagementClient(
        EmulatorCredential(lab.operator),
        subscription,
        **management_client_kwargs(lab.emulator.url, lab.emulator.ca_path),
    )
    with client:
        got = client.storage_accounts.get_properties(lab.group, str(account["name"]))
        return dict(got.as_dict())


def _sets(pinned: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    return {version: set(ids) for version, ids in pinned.items()}


def _keyversion(lab: InventoryLab, account: dict[str, object]) -> str:
    return str(
        _arm_storage(lab, account)["properties"]["encryption"]["keyvaultproperties"]["keyversion"]
    )  # type: ignore[index]


async def test_a_pinned_storage_account_is_repointed_and_one_following_latest_is_left(
    lab: InventoryLab,
) -> None:
    old = lab.key()
    pinned = lab.storage(old)
    latest = lab.storage("")
    new = lab.key()  # the rotation
    dependents, _, _ = lab.build(
        KEYWARD_DEPENDENT_KINDS="storage", KEYWARD_FACE_SUBSCRIPTIONS="",
        KEYWARD_COGNITIVE_SUBSCRIPTIONS="", KEYWARD_STORAGE_ACCOUNTS_REPOINT="true",
    )  # fmt: skip
    (storage,) = dependents.services
    # The one that follows the latest still uses the old version: Azure Storage moves
    # within a day, and ARM says so in currentVersionedKeyIdentifier.
    assert _sets(await storage.pinned_versions(lab.key_ref)) == {old: {pinned["id"], latest["id"]}}
    summary = (await dependents.sweep())["storage"]
    assert (summary.accounts, summary.repointed, summary.failures) == (2, 1, 0)
    assert summary.statuses["OK"] == 2
    assert _keyversion(lab, pinned) == new
    assert _keyversion(lab, latest) == "", "following the latest needs no re-point"
    assert _sets(await storage.pinned_versions(lab.key_ref)) == {
        new: {pinned["id"]},
        old: {latest["id"]},
    }
    lab.control.move_storage(str(latest["name"]))  # Azure Storage moves it
    assert _sets(await storage.pinned_versions(lab.key_ref)) == {new: {pinned["id"], latest["id"]}}
    # The owner's tags stay; only keyward's own are written.
    await storage.kind.writer.set_tags(
        str(pinned["id"]), {"keyward-cmk-status": "STALE", "owner": "someone-else"}
    )
    assert _arm_storage(lab, pinned)["tags"] == {"owner": "team", "keyward-cmk-status": "STALE"}


async def test_the_report_lists_pinned_resources_of_every_kind_and_a_storage_pin_blocks(
    lab: InventoryLab,
) -> None:
    old = lab.key()
    face = lab.cognitive("Face", old)
    speech = lab.cognitive("SpeechServices", old, subscription=lab.subscriptions[1])
    store = lab.storage(old, subscription=lab.subscriptions[2])
    follows = lab.storage("")  # follows the latest: counted where it is, moved below
    new = lab.key()
    lab.control.move_storage(str(follows["name"]))  # Azure Storage moved it to the new one
    dependents, _, _ = lab.build()
    await dependents.sweep()  # re-pointing is off: all stay pinned (flagged stale)
    pinned = await dependents.pinned_versions(lab.key_ref)
    report = await verdict_from_counts(
        {}, lab.key_ref, pinned=pinned, superseded_wait=NO_LATE_WRITERS
    )
    entry = report.entry(old)
    assert not entry.safe_to_disable
    listed = retirement_json(report)["versions"]
    (old_json,) = [v for v in listed if v["version"] == old]
    assert sorted(
        (p["kind"], p["resource_kind"], p["name"], p["id"]) for p in old_json["pinned_resources"]
    ) == sorted([
        ("face", "Face", face["name"], face["id"]),
        ("cognitive", "SpeechServices", speech["name"], speech["id"]),
        ("storage", "StorageV2", store["name"], store["id"]),
    ])  # fmt: skip
    assert old_json["blocker_kinds"][0]["kind"] == "pinned_resources"
    assert old_json["blocker_kinds"][0]["count"] == 3
    assert [p.name for p in pinned[new]] == [follows["name"]]  # type: ignore[attr-defined]

    # Re-point the storage account only: still blocked by the two Cognitive accounts.
    storage_service = next(s for s in dependents.services if s.kind.name == "storage")
    (resource,) = [a for a in (await storage_service.refresh()).accounts if a.key_version]
    await storage_service.kind.writer.set_key_version(resource, new)
    for service in dependents.services:  # the next inventory sees it
        await service.refresh()
    report = await verdict_from_counts(
        {}, lab.key_ref, pinned=await dependents.pinned_versions(lab.key_ref),
        superseded_wait=NO_LATE_WRITERS,
    )  # fmt: skip
    assert set(report.entry(old).pinned) == {face["id"], speech["id"]}
    assert not report.entry(old).safe_to_disable
    assert [p.kind for p in report.entry(new).pinned_resources] == ["storage", "storage"]
