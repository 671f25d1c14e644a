"""The emulator's RBAC-beyond-direct-grants and vault network shapes, through the real SDKs.

azure-mgmt-authorization: custom role definitions (PUT / GET by id / list / delete),
assignments at a management group listed at a vault under it, conditions kept, deny
assignments listed for a scope (at, above, below; ``atScope()``). azure-mgmt-keyvault:
``networkAcls`` and ``publicNetworkAccess`` round trips, private endpoint connections from
the control API. Shapes per azure-rest-api-specs (docs/emulator.md, "RBAC beyond direct
grants, and vault network rules").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.keys.crypto import KeyWrapAlgorithm
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import (
    Permission,
    RoleAssignmentCreateParameters,
    RoleDefinition,
)
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.keyvault.models import NetworkRuleSet, VaultPatchParameters, VaultPatchProperties

from devtools.emulator.arm_client import ArmControl, management_client_kwargs
from devtools.emulator.credential import EmulatorCredential
from devtools.emulator.pytest_plugin import EmulatorVault, RunningEmulator, VaultFactory
from devtools.emulator.state import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION_ID

SUB = DEFAULT_SUBSCRIPTION_ID
pytestmark = pytest.mark.emulator


@pytest.fixture
def operator(emulator: RunningEmulator) -> str:
    return str(emulator.client.create_principal(display_name="arm-operator")["object_id"])


def _kwargs(emulator: RunningEmulator) -> dict[str, Any]:
    return management_client_kwargs(emulator.url, emulator.ca_path)


@pytest.fixture
def auth_mgmt(emulator: RunningEmulator, operator: str) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(EmulatorCredential(operator), SUB, **_kwargs(emulator))


@pytest.fixture
def kv_mgmt(emulator: RunningEmulator, operator: str) -> KeyVaultManagementClient:
    return KeyVaultManagementClient(EmulatorCredential(operator), SUB, **_kwargs(emulator))


@pytest.fixture
def control(emulator: RunningEmulator) -> ArmControl:
    return ArmControl(emulator.url, emulator.ca_path)


@pytest.fixture
def management_group(control: ArmControl) -> Iterator[str]:
    name = "mg-" + uuid.uuid4().hex[:8]
    parent = "root-" + uuid.uuid4().hex[:8]
    control.session.call("PUT", f"/control/arm/management-groups/{parent}", {})
    control.session.call(
        "PUT", f"/control/arm/management-groups/{name}", {"parent": parent, "subscriptions": [SUB]}
    )
    yield parent  # the outer group: inheritance through the chain
    control.session.call("DELETE", f"/control/arm/management-groups/{name}")
    control.session.call("DELETE", f"/control/arm/management-groups/{parent}")


def _role_id(guid: str) -> str:
    return f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def test_custom_role_round_trip(auth_mgmt: AuthorizationManagementClient) -> None:
    guid = str(uuid.uuid4())
    scope = f"/subscriptions/{SUB}"
    name = "cmk-" + guid[:8]
    auth_mgmt.role_definitions.create_or_update(
        scope,
        guid,
        RoleDefinition(
            role_name=name,
            permissions=[
                Permission(
                    data_actions=["Microsoft.KeyVault/vaults/keys/*"],
                    not_data_actions=["Microsoft.KeyVault/vaults/keys/delete"],
                )
            ],
            assignable_scopes=[scope],
        ),
    )
    try:
        role = auth_mgmt.role_definitions.get_by_id(_role_id(guid))
        assert role.role_type == "CustomRole"
        (permission,) = role.permissions
        assert permission.not_data_actions == ["Microsoft.KeyVault/vaults/keys/delete"]
        (listed,) = auth_mgmt.role_definitions.list(scope, filter=f"roleName eq '{name}'")
        assert listed.name == guid
        with pytest.raises(HttpResponseError) as refused:
            auth_mgmt.role_definitions.create_or_update(
                scope, str(uuid.uuid4()), RoleDefinition(role_name=name, assignable_scopes=[scope])
            )
        assert refused.value.error is not None
        assert refused.value.error.code == "RoleDefinitionWithSameNameExists"
    finally:
        auth_mgmt.role_definitions.delete(scope, guid)


def test_management_group_assignment_is_inherited_with_its_condition(
    auth_mgmt: AuthorizationManagementClient,
    emulator_vault: EmulatorVault,
    management_group: str,
) -> None:
    scope = f"/providers/Microsoft.Management/managementGroups/{management_group}"
    group = str(uuid.uuid4())
    created = auth_mgmt.role_assignments.create(
        scope,
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(
            role_definition_id=_role_id("e147488a-f6f5-4113-8e2d-b22465e65bf6"),
            principal_id=group,
            principal_type="Group",
            condition="@Resource[Microsoft.KeyVault/vaults/keys:name] StringEquals 'cmk'",
            condition_version="2.0",
        ),
    )
    try:
        listed = [
            a
            for a in auth_mgmt.role_assignments.list_for_scope(emulator_vault.arm_id)
            if a.principal_id == group
        ]
        (inherited,) = listed
        assert inherited.scope == scope
        assert inherited.principal_type == "Group"
        assert inherited.condition is not None
        assert inherited.condition_version == "2.0"
        at_scope = auth_mgmt.role_assignments.list_for_scope(
            emulator_vault.arm_id, filter="atScope()"
        )
        assert group in {a.principal_id for a in at_scope}
    finally:
        assert created.id is not None
        auth_mgmt.role_assignments.delete_by_id(created.id)
    assert group not in {
        a.principal_id for a in auth_mgmt.role_assignments.list_for_scope(emulator_vault.arm_id)
    }


def test_deny_assignments_listed_for_scope(
    auth_mgmt: AuthorizationManagementClient, emulator_vault: EmulatorVault, control: ArmControl
) -> None:
    name = str(uuid.uuid4())
    key_scope = f"{emulator_vault.arm_id}/keys/cmk"
    body = {
        "scope": key_scope,
        "properties": {
            "denyAssignmentName": "managed app",
            "permissions": [{"dataActions": ["Microsoft.KeyVault/vaults/keys/*"]}],
            "principals": [{"id": "00000000-0000-0000-0000-000000000000", "type": "SystemDefined"}],
            "excludePrincipals": [{"id": str(uuid.uuid4()), "type": "Group"}],
        },
    }
    control.session.call("PUT", f"/control/arm/deny-assignments/{name}", body)
    try:
        below = list(auth_mgmt.deny_assignments.list_for_scope(emulator_vault.arm_id))
        (deny,) = [d for d in below if d.name == name]
        assert deny.deny_assignment_name == "managed app"
        assert deny.is_system_protected is True
        assert deny.exclude_principals is not None
        assert deny.exclude_principals[0].type == "Group"
        at_scope = auth_mgmt.deny_assignments.list_for_scope(
            emulator_vault.arm_id, filter="atScope()"
        )
        assert name not in {d.name for d in at_scope}  # below the vault: not "at or above"
        at_key = auth_mgmt.deny_assignments.list_for_scope(key_scope, filter="atScope()")
        assert name in {d.name for d in at_key}
    finally:
        control.session.call("DELETE", f"/control/arm/deny-assignments/{name}")


def test_vault_network_rules_and_private_endpoints(
    kv_mgmt: KeyVaultManagementClient, emulator_vault: EmulatorVault, control: ArmControl
) -> None:
    name = emulator_vault.name
    kv_mgmt.vaults.update(
        DEFAULT_RESOURCE_GROUP,
        name,
        VaultPatchParameters(
            properties=VaultPatchProperties(
                network_acls=NetworkRuleSet(bypass="None", default_action="Deny"),
                public_network_access="Disabled",
            )
        ),
    )
    pec = f"/control/arm/vaults/{name}/private-endpoint-connections/pe1"
    control.session.call("PUT", pec, {"status": "Pending"})
    try:
        props = kv_mgmt.vaults.get(DEFAULT_RESOURCE_GROUP, name).properties
        assert props.public_network_access == "Disabled"
        assert props.network_acls is not None
        assert (props.network_acls.bypass, props.network_acls.default_action) == ("None", "Deny")
        assert props.network_acls.ip_rules == []
        (connection,) = props.private_endpoint_connections or []
        assert connection.properties is not None
        state = connection.properties.private_link_service_connection_state
        assert state is not None
        assert state.status == "Pending"
    finally:
        control.session.call("DELETE", pec)
        kv_mgmt.vaults.update(
            DEFAULT_RESOURCE_GROUP,
            name,
            VaultPatchParameters(
                properties=VaultPatchProperties(
                    network_acls=NetworkRuleSet(bypass="AzureServices", default_action="Allow"),
                    public_network_access="Enabled",
                )
            ),
        )
    assert not kv_mgmt.vaults.get(
        DEFAULT_RESOURCE_GROUP, name
    ).properties.private_endpoint_connections


def test_data_plane_enforces_custom_roles_management_groups_and_denies(
    auth_mgmt: AuthorizationManagementClient,
    emulator: RunningEmulator,
    emulator_vault_factory: VaultFactory,
    control: ArmControl,
    management_group: str,
) -> None:
    """What ARM says is what the vault does: a custom role at a management group grants
    unwrapKey; its notDataActions and a deny assignment for Everyone refuse it (403)."""
    vault = emulator_vault_factory(rbac=True)
    vault.client.create_key(vault.name, "k1")
    face = str(emulator.client.create_principal(display_name="face")["object_id"])
    scope = f"/subscriptions/{SUB}"
    roles = []
    for not_data in ([], ["Microsoft.KeyVault/vaults/keys/unwrap/action"]):
        guid = str(uuid.uuid4())
        auth_mgmt.role_definitions.create_or_update(
            scope,
            guid,
            RoleDefinition(
                role_name="cmk-" + guid[:8],
                permissions=[
                    Permission(
                        data_actions=["Microsoft.KeyVault/vaults/keys/*"], not_data_actions=not_data
                    )
                ],
                assignable_scopes=[scope],
            ),
        )
        roles.append(guid)
    group_scope = f"/providers/Microsoft.Management/managementGroups/{management_group}"
    created = auth_mgmt.role_assignments.create(
        group_scope,
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(role_definition_id=_role_id(roles[0]), principal_id=face),
    )
    deny = str(uuid.uuid4())
    try:
        key = vault.key_client(face).get_key("k1")
        crypto = vault.crypto_client(key, face)
        wrapped = crypto.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"k" * 32).encrypted_key
        unwrapped = crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key
        assert unwrapped == b"k" * 32  # unwrapKey is always a vault call

        control.session.call(
            "PUT",
            f"/control/arm/deny-assignments/{deny}",
            {
                "scope": vault.arm_id,
                "properties": {
                    "permissions": [
                        {"dataActions": ["Microsoft.KeyVault/vaults/keys/unwrap/action"]}
                    ],
                    "principals": [
                        {"id": "00000000-0000-0000-0000-000000000000", "type": "SystemDefined"}
                    ],
                },
            },
        )
        with pytest.raises(HttpResponseError) as refused:
            crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped)
        assert refused.value.status_code == 403
        control.session.call("DELETE", f"/control/arm/deny-assignments/{deny}")

        assert created.id is not None
        auth_mgmt.role_assignments.delete_by_id(created.id)
        created = auth_mgmt.role_assignments.create(
            group_scope,
            str(uuid.uuid4()),
            RoleAssignmentCreateParameters(
                role_definition_id=_role_id(roles[1]), principal_id=face
            ),
        )
        assert vault.key_client(face).get_key("k1").name == "k1"  # keys/read still granted
        with pytest.raises(HttpResponseError) as narrowed:
            crypto.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped)
        assert narrowed.value.status_code == 403
    finally:
        control.session.call("DELETE", f"/control/arm/deny-assignments/{deny}")
        if created.id is not None:
            auth_mgmt.role_assignments.delete_by_id(created.id)
        for guid in roles:
            auth_mgmt.role_definitions.delete(scope, guid)
