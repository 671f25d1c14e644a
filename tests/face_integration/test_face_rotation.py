"""Rotation follow-up: re-point in ARM when allowed and safe, otherwise flag STALE_KEY_VERSION."""

from __future__ import annotations

import pytest

from tests.face_integration.conftest import FaceLab

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


def arm_version(lab: FaceLab, account: dict[str, object]) -> str:
    encryption = lab.arm_account(account).properties.encryption
    return str(encryption.key_vault_properties.key_version)


async def test_new_version_repoints_pinned_account(lab: FaceLab) -> None:
    vault = lab.vault()
    old = lab.key(vault)
    account = lab.account(vault, version=old)
    service = lab.service(repoint=True)
    await service.sweep()

    new = str(lab.client.rotate_key(vault.name, "cmk")["key"]["kid"]).rsplit("/", 1)[-1]
    summary = await service.on_new_key_version(f"{vault.url}/keys/cmk", new)
    await service.on_new_key_version(f"{vault.url}/keys/cmk", new)  # a duplicate delivery
    await service.sweep()

    assert summary.repointed == 1
    assert arm_version(lab, account) == new
    assert lab.event_types(account) == ["KeyRepointed"]
    data = lab.events(account)[0]["data"]
    assert data["keyId"].endswith(f"/keys/cmk/{new}")
    assert data["previousKeyId"].endswith(f"/keys/cmk/{old}")
    assert lab.arm_writes(account) == 2  # the first status tag, then the re-point
    assert lab.tag(account) == "OK"
    assert await service.pinned_versions(f"{vault.url}/keys/cmk") == {new: (account["id"],)}


async def test_repointing_off_changes_nothing_in_arm_and_flags_stale(lab: FaceLab) -> None:
    vault = lab.vault()
    old = lab.key(vault)
    account = lab.account(vault, version=old)
    service = lab.service(repoint=False)
    await service.sweep()
    before = lab.arm_account(account).as_dict()

    new = str(lab.client.rotate_key(vault.name, "cmk")["key"]["kid"]).rsplit("/", 1)[-1]
    summary = await service.on_new_key_version(f"{vault.url}/keys/cmk", new)
    await service.sweep()

    assert summary.repointed == 0
    assert summary.stale == 1
    assert arm_version(lab, account) == old
    after = lab.arm_account(account).as_dict()
    assert after["properties"]["encryption"] == before["properties"]["encryption"]
    assert lab.event_types(account) == ["KeyAtRisk"]
    assert lab.events(account)[0]["data"]["reasons"] == ["STALE_KEY_VERSION"]
    assert lab.arm_writes(account) == 2  # OK tag, then the AT_RISK tag: no re-point
    assert await service.pinned_versions(f"{vault.url}/keys/cmk") == {old: (account["id"],)}


async def test_new_version_without_unwrap_is_not_a_repoint_target(lab: FaceLab) -> None:
    vault = lab.vault()
    old = lab.key(vault)
    account = lab.account(vault, version=old)
    service = lab.service(repoint=True)
    await service.sweep()

    new = lab.key(vault, key_ops=["wrapKey", "encrypt"])  # a new version of "cmk"
    summary = await service.on_new_key_version(f"{vault.url}/keys/cmk", new)

    assert summary.repointed == 0
    assert arm_version(lab, account) == old
    assert lab.event_types(account) == ["KeyAtRisk"]
    assert lab.events(account)[0]["data"]["reasons"] == ["STALE_KEY_VERSION"]
