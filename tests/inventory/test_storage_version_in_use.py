"""A storage account that follows the latest version still uses the old one until Azure
Storage moves it (within a day): the retirement report counts it where ARM's
``currentVersionedKeyIdentifier`` says it is, and, when ARM does not say, blocks every older
version ("version in use unknown") instead of calling one safe. Against the emulator with
azure-mgmt-storage, azure-keyvault-keys (the report's key versions) and Azurite."""

from __future__ import annotations

import pytest
from azure.mgmt.storage import StorageManagementClient

from devtools.emulator.arm_client import management_client_kwargs
from devtools.emulator.credential import EmulatorCredential
from shared.rewrap import (
    NOTE_VERSION_IN_USE,
    NOTE_VERSION_UNKNOWN,
    RetirementReport,
    verdict_from_counts,
)
from shared.services._render import retirement_json

# The late-writer wait off: the session's emulator clock may run ahead of this process's
# (other tests move it), so even a zero wait could put a rotation "too recent".
from tests.campaign._world import NO_LATE_WRITERS
from tests.inventory.conftest import InventoryLab

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]
STORAGE_ONLY = {
    "KEYWARD_DEPENDENT_KINDS": "storage",
    "KEYWARD_FACE_SUBSCRIPTIONS": "",
    "KEYWARD_COGNITIVE_SUBSCRIPTIONS": "",
}


def _key_vault_properties(lab: InventoryLab, name: str) -> object:
    """The account's ``keyvaultproperties`` as azure-mgmt-storage reads them."""
    client = StorageManagementClient(
        EmulatorCredential(lab.operator),
        lab.subscriptions[0],
        **management_client_kwargs(lab.emulator.url, lab.emulator.ca_path),
    )
    with client:
        account = client.storage_accounts.get_properties(lab.group, name)
    assert account.encryption is not None
    return account.encryption.key_vault_properties


async def test_an_account_following_the_latest_blocks_the_version_it_still_uses(
    lab: InventoryLab,
) -> None:
    old = lab.key()
    follows = lab.storage("")
    new = lab.key()  # the rotation: the account has not moved yet
    dependents, _, keys = lab.build(**STORAGE_ONLY)

    async def report() -> RetirementReport:
        pinned = await dependents.pinned_versions(lab.key_ref)
        return await verdict_from_counts(
            {}, lab.key_ref, keys=keys, pinned=pinned, superseded_wait=NO_LATE_WRITERS
        )

    kv = _key_vault_properties(lab, str(follows["name"]))
    assert kv.key_version == ""  # type: ignore[attr-defined]
    assert str(kv.current_versioned_key_identifier).endswith(f"/keys/cmk/{old}")  # type: ignore[attr-defined]
    assert kv.last_key_rotation_timestamp is not None  # type: ignore[attr-defined]

    before = await report()
    entry = before.entry(old)
    assert not entry.safe_to_disable
    assert [(p.name, p.note) for p in entry.pinned_resources] == [
        (follows["name"], NOTE_VERSION_IN_USE)
    ]
    (row,) = next(v for v in retirement_json(before)["versions"] if v["version"] == old)[
        "pinned_resources"
    ]
    assert row["note"] == NOTE_VERSION_IN_USE

    lab.control.move_storage(str(follows["name"]))  # Azure Storage picks the new one up
    assert str(
        _key_vault_properties(lab, str(follows["name"])).current_versioned_key_identifier  # type: ignore[attr-defined]
    ).endswith(f"/keys/cmk/{new}")
    after = await report()
    assert after.entry(old).safe_to_disable, after.entry(old).blockers
    assert after.entry(new).newest
    assert not after.entry(new).safe_to_disable


async def test_an_unknown_version_in_use_blocks_every_older_version(lab: InventoryLab) -> None:
    first = lab.key()
    follows = lab.storage("")
    second = lab.key()
    newest = lab.key()
    lab.control.move_storage(str(follows["name"]), "")  # ARM no longer says which one
    assert _key_vault_properties(lab, str(follows["name"])).current_versioned_key_identifier is None  # type: ignore[attr-defined]
    dependents, _, keys = lab.build(**STORAGE_ONLY)
    pinned = await dependents.pinned_versions(lab.key_ref)
    report = await verdict_from_counts(
        {}, lab.key_ref, keys=keys, pinned=pinned, superseded_wait=NO_LATE_WRITERS
    )
    for version in (first, second):
        entry = report.entry(version)
        assert not entry.safe_to_disable, version
        (blocker,) = entry.blocker_list
        assert blocker.describe() == f"1 resources pinned to it (1 {NOTE_VERSION_UNKNOWN})"
        assert [p.note for p in entry.pinned_resources] == [NOTE_VERSION_UNKNOWN]
    assert report.entry(newest).pinned == (), "the newest is blocked as the newest anyway"
    assert report.entry(newest).newest
