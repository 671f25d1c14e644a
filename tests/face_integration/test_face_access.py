"""Access reasons: access policy, role assignment, RBAC switch, vault settings, vault gone.

Each change is made where an operator would make it (the vault's access policies, a role
assignment, the vault's ARM properties) and must give the right verdict, exactly one
outgoing event and exactly one ARM write (the status tag) on the account.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.mgmt.keyvault.models import VaultPatchParameters, VaultPatchProperties

from devtools.emulator.arm_client import cmk_encryption
from devtools.emulator.state import DEFAULT_RESOURCE_GROUP
from tests.face_integration.conftest import CMK_PERMISSIONS, SUBSCRIPTION, FaceLab, LabVault

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


def patch_vault(lab: FaceLab, vault: LabVault, **properties: Any) -> None:
    with lab.keyvault_mgmt() as client:
        client.vaults.update(
            DEFAULT_RESOURCE_GROUP,
            vault.name,
            VaultPatchParameters(properties=VaultPatchProperties(**properties)),
        )


def last_event(lab: FaceLab, account: dict[str, Any]) -> dict[str, Any]:
    return lab.events(account)[-1]


async def test_access_policy_removed_then_granted_again(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault)
    service = lab.service()
    await service.sweep()

    lab.client.delete_access_policy(vault.name, account["identity"]["principalId"])
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert last_event(lab, account)["data"]["reasons"] == ["IDENTITY_LACKS_PERMISSION"]
    assert lab.arm_writes(account) == 2
    assert lab.tag(account) == "ACCESS_LOST"

    lab.client.set_access_policy(vault.name, account["identity"]["principalId"], CMK_PERMISSIONS)
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost", "KeyAccessRestored"]
    assert lab.tag(account) == "OK"


async def test_role_assignment_deleted_on_rbac_vault(lab: FaceLab) -> None:
    vault = lab.vault(rbac=True)
    lab.key(vault)
    account = lab.account(vault, grant="role")
    service = lab.service()
    await service.sweep()
    assert lab.tag(account) == "OK"

    principal = account["identity"]["principalId"]
    (assignment,) = [
        a for a in lab.client.list_role_assignments() if a["principal_id"] == principal
    ]
    lab.client.delete_role_assignment(assignment["name"])
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert last_event(lab, account)["data"]["reasons"] == ["IDENTITY_LACKS_ROLE"]
    assert lab.arm_writes(account) == 2
    assert lab.tag(account) == "ACCESS_LOST"


async def test_vault_switched_to_rbac_leaves_policy_only_identity_without_role(
    lab: FaceLab,
) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault)  # an access policy, no role
    service = lab.service()
    await service.sweep()

    patch_vault(lab, vault, enable_rbac_authorization=True)
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert last_event(lab, account)["data"]["reasons"] == ["IDENTITY_LACKS_ROLE"]
    assert lab.arm_writes(account) == 2


async def test_soft_delete_and_purge_protection_off_then_turned_on(lab: FaceLab) -> None:
    vault = lab.vault(soft_delete=False, purge=False)
    lab.key(vault)
    account = lab.account(vault)
    service = lab.service()
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAtRisk"]
    reasons = last_event(lab, account)["data"]["reasons"]
    assert reasons == ["SOFT_DELETE_OFF", "PURGE_PROTECTION_OFF"]
    assert lab.arm_writes(account) == 1
    assert lab.tag(account) == "AT_RISK"

    patch_vault(lab, vault, enable_soft_delete=True, enable_purge_protection=True)
    await service.sweep()
    assert lab.event_types(account) == ["KeyAtRisk", "KeyAccessRestored"]
    assert lab.arm_writes(account) == 2
    assert lab.tag(account) == "OK"


async def test_vault_deleted_is_vault_gone(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault)
    service = lab.service()
    await service.sweep()

    with lab.keyvault_mgmt() as client:
        client.vaults.delete(DEFAULT_RESOURCE_GROUP, vault.name)
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert last_event(lab, account)["data"]["reasons"] == ["VAULT_GONE"]
    assert lab.arm_writes(account) == 2
    assert lab.tag(account) == "ACCESS_LOST"


async def test_user_assigned_identity_named_by_identity_client_id(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    name = "faceua" + vault.name[-8:]
    uai = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{lab.group}"
        f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
    identity = {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {uai: {}}}
    seeded = lab.arm.seed_account(name, kind="Face", resource_group=lab.group, identity=identity)
    user = seeded["identity"]["userAssignedIdentities"][uai]
    encryption = cmk_encryption(vault.url + "/", "cmk", "", identity_client_id=user["clientId"])
    encryption["keyVaultProperties"].pop("keyVersion")
    account = lab.arm.seed_account(
        name, kind="Face", resource_group=lab.group, identity=identity, encryption=encryption
    )
    # Only the user-assigned identity may use the key; the system-assigned one may not.
    lab.client.set_access_policy(vault.name, user["principalId"], CMK_PERMISSIONS)
    service = lab.service()
    await service.sweep()
    assert lab.tag(account) == "OK"

    lab.client.delete_access_policy(vault.name, user["principalId"])
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert last_event(lab, account)["data"]["reasons"] == ["IDENTITY_LACKS_PERMISSION"]
