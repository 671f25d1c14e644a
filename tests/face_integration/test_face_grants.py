"""Grants and network rules keyward must not misread (issue 15), end to end.

Each shape is made through the real azure-mgmt SDK clients where ARM lets callers make it
(custom roles, assignments with conditions, to groups, at a management group, vault network
rules) and through the emulator's control API where Azure does not (deny assignments,
management-group membership, private endpoint connections). A grant keyward cannot evaluate
gives UNKNOWN, never ACCESS_LOST; positive evidence gives ACCESS_LOST with its reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import (
    Permission,
    RoleAssignmentCreateParameters,
    RoleDefinition,
)
from azure.mgmt.keyvault.models import (
    NetworkRuleSet,
    VaultPatchParameters,
    VaultPatchProperties,
)

from devtools.emulator.arm_client import management_client_kwargs
from devtools.emulator.credential import EmulatorCredential
from devtools.emulator.state import DEFAULT_RESOURCE_GROUP
from tests.face_integration.conftest import SUBSCRIPTION, FaceLab, LabVault

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

CSE_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"


def authorization(lab: FaceLab) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(
        EmulatorCredential(lab.operator),
        SUBSCRIPTION,
        **management_client_kwargs(lab.emulator.url, lab.emulator.ca_path),
    )


def assign(
    lab: FaceLab,
    scope: str,
    principal: str,
    role: str = CSE_USER,
    *,
    principal_type: str = "ServicePrincipal",
    condition: str | None = None,
) -> None:
    with authorization(lab) as client:
        client.role_assignments.create(
            scope,
            str(uuid.uuid4()),
            RoleAssignmentCreateParameters(
                role_definition_id=(
                    f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/"
                    f"roleDefinitions/{role}"
                ),
                principal_id=principal,
                principal_type=principal_type,
                condition=condition,
                condition_version="2.0" if condition else None,
            ),
        )


def custom_role(lab: FaceLab, data: list[str], not_data: list[str] | None = None) -> str:
    guid = str(uuid.uuid4())
    scope = f"/subscriptions/{SUBSCRIPTION}"
    with authorization(lab) as client:
        client.role_definitions.create_or_update(
            scope,
            guid,
            RoleDefinition(
                role_name=f"kw-cmk-{guid[:8]}",
                description="CMK use, wildcard",
                permissions=[Permission(data_actions=data, not_data_actions=not_data or [])],
                assignable_scopes=[scope],
            ),
        )
    return guid


def rbac_account(lab: FaceLab) -> tuple[LabVault, dict[str, Any], str]:
    vault = lab.vault(rbac=True)
    lab.key(vault)
    account = lab.account(vault, grant=None)
    return vault, account, str(account["identity"]["principalId"])


async def verdict(lab: FaceLab) -> tuple[str, list[str]]:
    """Sweep once; the one account's status and reason codes (unknown ones when UNKNOWN)."""
    service = lab.services[-1] if lab.services else lab.service()
    summary = await service.sweep()
    (status,) = summary.statuses
    (record,) = (await service.status(50)).flags
    if status == "UNKNOWN":
        return status, [r[0] for r in record["unknown_reasons"]]
    return status, [r[0] for r in record["reasons"]]


@contextmanager
def management_group(lab: FaceLab) -> Iterator[str]:
    """The emulator's subscription inside a fresh management group, for this test only."""
    name = "kw-mg-" + uuid.uuid4().hex[:8]
    lab.arm.session.call(
        "PUT", f"/control/arm/management-groups/{name}", {"subscriptions": [SUBSCRIPTION]}
    )
    try:
        yield f"/providers/Microsoft.Management/managementGroups/{name}"
    finally:
        lab.arm.session.call("DELETE", f"/control/arm/management-groups/{name}")


async def test_direct_assignment_at_management_group_scope_is_ok(lab: FaceLab) -> None:
    _, _, principal = rbac_account(lab)
    with management_group(lab) as scope:
        assign(lab, scope, principal)
        assert await verdict(lab) == ("OK", [])


async def test_group_assignment_is_unknown_not_lost(lab: FaceLab) -> None:
    vault, _, _ = rbac_account(lab)
    assign(lab, vault.arm_id, str(uuid.uuid4()), principal_type="Group")
    assert await verdict(lab) == ("UNKNOWN", ["GROUP_MEMBERSHIP_UNCHECKED"])


async def test_custom_role_with_wildcard_then_not_data_actions(lab: FaceLab) -> None:
    vault, _, principal = rbac_account(lab)
    role = custom_role(lab, ["Microsoft.KeyVault/vaults/keys/*"])
    assign(lab, vault.arm_id, principal, role)
    assert await verdict(lab) == ("OK", [])

    narrowed = custom_role(
        lab, ["Microsoft.KeyVault/vaults/keys/*"], ["Microsoft.KeyVault/vaults/keys/unwrap/action"]
    )
    with authorization(lab) as client:
        for assignment in client.role_assignments.list_for_scope(vault.arm_id):
            if assignment.principal_id == principal and assignment.id:
                client.role_assignments.delete_by_id(assignment.id)
    assign(lab, vault.arm_id, principal, narrowed)
    assert await verdict(lab) == ("ACCESS_LOST", ["IDENTITY_LACKS_ROLE"])


async def test_condition_is_unknown(lab: FaceLab) -> None:
    vault, _, principal = rbac_account(lab)
    condition = (
        "((!(ActionMatches{'Microsoft.KeyVault/vaults/keys/unwrap/action'})) OR "
        "(@Resource[Microsoft.KeyVault/vaults/keys:name] StringEquals 'cmk'))"
    )
    assign(lab, vault.arm_id, principal, condition=condition)
    assert await verdict(lab) == ("UNKNOWN", ["CONDITION_UNEVALUATED"])


async def test_deny_assignments(lab: FaceLab) -> None:
    vault, _, principal = rbac_account(lab)
    assign(lab, vault.arm_id, principal)
    name = str(uuid.uuid4())
    body = {
        "scope": vault.arm_id,
        "properties": {
            "permissions": [{"dataActions": ["Microsoft.KeyVault/vaults/keys/*"]}],
            "principals": [{"id": str(uuid.uuid4()), "type": "Group"}],
        },
    }
    lab.arm.session.call("PUT", f"/control/arm/deny-assignments/{name}", body)
    try:
        assert await verdict(lab) == ("UNKNOWN", ["DENY_ASSIGNMENT_UNEVALUATED"])
        body["properties"]["principals"] = [{"id": principal, "type": "ServicePrincipal"}]
        lab.arm.session.call("PUT", f"/control/arm/deny-assignments/{name}", body)
        assert await verdict(lab) == ("ACCESS_LOST", ["DENY_ASSIGNMENT_BLOCKS"])
    finally:
        lab.arm.session.call("DELETE", f"/control/arm/deny-assignments/{name}")


def set_network(lab: FaceLab, vault: LabVault, **acls: Any) -> None:
    public = acls.pop("public", None)
    with lab.keyvault_mgmt() as client:
        client.vaults.update(
            DEFAULT_RESOURCE_GROUP,
            vault.name,
            VaultPatchParameters(
                properties=VaultPatchProperties(
                    network_acls=NetworkRuleSet(**acls), public_network_access=public
                )
            ),
        )


async def test_network_rules(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    lab.account(vault)
    assert await verdict(lab) == ("OK", [])

    set_network(lab, vault, default_action="Deny", bypass="AzureServices")
    assert await verdict(lab) == ("AT_RISK", ["VAULT_ACCESS_VIA_TRUSTED_SERVICE"])

    set_network(lab, vault, default_action="Deny", bypass="None", public="Disabled")
    assert await verdict(lab) == ("ACCESS_LOST", ["VAULT_FIREWALL_BLOCKS_SERVICE"])

    pec = f"/control/arm/vaults/{vault.name}/private-endpoint-connections/pe1"
    lab.arm.session.call("PUT", pec, {"status": "Pending"})
    assert await verdict(lab) == ("ACCESS_LOST", ["VAULT_FIREWALL_BLOCKS_SERVICE"])
    lab.arm.session.call("PUT", pec, {"status": "Approved"})
    status, reasons = await verdict(lab)
    # UNKNOWN never flips a known flag: the record keeps ACCESS_LOST, the sweep says UNKNOWN.
    assert (status, reasons) == ("UNKNOWN", ["PRIVATE_ENDPOINT_UNEVALUATED"])
