"""ARM's REST shapes (Microsoft.Authorization 2022-04-01, Microsoft.KeyVault vaults) -> facts.

The dicts follow the published examples of azure-rest-api-specs
(``RoleAssignments_ListForScope.json``, ``GetDenyAssignmentByScope.json``,
``GetRoleDefinitionById.json``); values are keyward's own.
"""

from __future__ import annotations

from shared.dependents import (
    PrincipalRef,
    assignment_from_arm,
    definition_from_arm,
    deny_from_arm,
    network_from_arm,
)

SUB = "/subscriptions/a925f2f7-5c63-4b7b-8799-25a5f97bc3b2"


def test_assignment_at_management_group_with_condition() -> None:
    facts = assignment_from_arm({
        "properties": {
            "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/"
            "E147488A-F6F5-4113-8E2D-B22465E65BF6",
            "principalId": "ce2ce14e-85d7-4629-bdbc-454d0519d987",
            "principalType": "Group",
            "scope": "/providers/Microsoft.Management/managementGroups/contoso",
            "condition": "@Resource[x] StringEquals 'y'",
            "conditionVersion": "2.0",
        },
        "name": "b0f43c54-e787-4862-89b1-a653fa9cf747",
    })  # fmt: skip
    assert facts.role == "e147488a-f6f5-4113-8e2d-b22465e65bf6"
    assert facts.principal_type == "Group"
    assert facts.condition == "@Resource[x] StringEquals 'y'"
    bare = assignment_from_arm({"properties": {"roleDefinitionId": "x", "principalId": "p"}})
    assert bare.condition is None
    assert bare.principal_type == "ServicePrincipal"


def test_definition_with_not_data_actions() -> None:
    facts = definition_from_arm({
        "id": f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
        "5b3a8f1e-1234-4abc-9def-00000000c0de",
        "name": "5b3a8f1e-1234-4abc-9def-00000000c0de",
        "properties": {
            "roleName": "Contoso CMK",
            "type": "CustomRole",
            "permissions": [
                {
                    "actions": [],
                    "notActions": [],
                    "dataActions": ["Microsoft.KeyVault/vaults/keys/*"],
                    "notDataActions": ["Microsoft.KeyVault/vaults/keys/unwrap/action"],
                }
            ],
        },
    })  # fmt: skip
    assert facts.id == "5b3a8f1e-1234-4abc-9def-00000000c0de"
    assert facts.allows("Microsoft.KeyVault/vaults/keys/wrap/action")
    assert not facts.allows("Microsoft.KeyVault/vaults/keys/unwrap/action")


def test_deny_assignment_shape() -> None:
    facts = deny_from_arm({
        "properties": {
            "denyAssignmentName": "Managed application deny",
            "permissions": [{"actions": [], "dataActions": ["*"], "notDataActions": []}],
            "scope": SUB,
            "doNotApplyToChildScopes": True,
            "principals": [{"id": "00000000-0000-0000-0000-000000000000", "type": "SystemDefined"}],
            "excludePrincipals": [{"id": "9a1b2c3d-0000-4000-8000-0000000000aa", "type": "Group"}],
            "isSystemProtected": True,
        },
        "name": "denyAssignmentId",
    })  # fmt: skip
    assert facts.name == "Managed application deny"
    assert facts.blocks("Microsoft.KeyVault/vaults/keys/wrap/action")
    assert facts.exclude_principals == (
        PrincipalRef("9a1b2c3d-0000-4000-8000-0000000000aa", "Group"),
    )
    assert facts.applies_to_children is False
    conditioned = deny_from_arm({"properties": {"permissions": [{"condition": "x"}]}})
    assert conditioned.condition == "x"


def test_vault_network_properties() -> None:
    facts = network_from_arm({
        "publicNetworkAccess": "Disabled",
        "networkAcls": {
            "bypass": "AzureServices",
            "defaultAction": "Deny",
            "ipRules": [{"value": "203.0.113.0/24"}],
            "virtualNetworkRules": [],
        },
        "privateEndpointConnections": [
            {"properties": {"privateLinkServiceConnectionState": {"status": "Approved"}}},
            {"properties": {"privateLinkServiceConnectionState": {"status": "Pending"}}},
        ],
    })  # fmt: skip
    assert (facts.public_disabled, facts.default_deny, facts.trusted_bypass) == (True, True, True)
    assert (facts.ip_rules, facts.virtual_network_rules) == (1, 0)
    assert facts.approved_private_endpoints == 1
    empty = network_from_arm({})
    assert (empty.public_disabled, empty.default_deny, empty.trusted_bypass) == (False,) * 3
