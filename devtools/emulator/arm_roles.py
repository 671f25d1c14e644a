"""Microsoft.Authorization/roleDefinitions (read only): the built-in roles keyward meets.

keyward decides whether a Face account's identity can still use its key; under RBAC that
means knowing which data actions a role grants, which callers read from the role definition
(``role_definitions.get`` / ``list(filter="roleName eq '...'")``). The data actions are the
ones the data plane enforces (``auth.ROLE_DATA_ACTIONS``, Azure's published definitions), so
what ARM says a role allows is what the vault then allows. Custom roles are not emulated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devtools.emulator.arm_common import ArmError, Call, Dispatcher
from devtools.emulator.auth import ROLE_DATA_ACTIONS, ROLE_NAMES
from devtools.emulator.state import (
    ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
)

RESOURCE_TYPE = "Microsoft.Authorization/roleDefinitions"
API_VERSIONS = frozenset({"2022-04-01", "2022-05-01-preview", "2018-01-01-preview", "2015-07-01"})

#: Management-plane actions the Key Vault data roles carry besides their data actions.
_KEY_VAULT_READ_ACTIONS = (
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
)


@dataclass(frozen=True)
class RoleDefinition:
    guid: str
    name: str
    description: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()


def _key_vault_roles() -> list[RoleDefinition]:
    roles = []
    for name, guid in ROLE_NAMES.items():
        actions = (
            (
                "Microsoft.EventGrid/eventSubscriptions/write",
                "Microsoft.EventGrid/eventSubscriptions/read",
                "Microsoft.EventGrid/eventSubscriptions/delete",
            )
            if guid == ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER
            else _KEY_VAULT_READ_ACTIONS
        )
        roles.append(
            RoleDefinition(
                guid=guid,
                name=name,
                description=f"{name} (Azure built-in role).",
                actions=actions,
                data_actions=ROLE_DATA_ACTIONS[guid],
            )
        )
    return roles


BUILT_IN_ROLES: dict[str, RoleDefinition] = {
    role.guid: role
    for role in [
        *_key_vault_roles(),
        RoleDefinition(
            "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner", "Grants full access.", ("*",)
        ),
        RoleDefinition(
            "b24988ac-6180-42a0-ab88-20f7382dd24c",
            "Contributor",
            "Grants full access except role assignments.",
            ("*",),
            (
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
            ),
        ),
        RoleDefinition(
            "acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", "View everything.", ("*/read",)
        ),
        RoleDefinition(
            "a97b65f3-24c7-4388-baec-2e87135dc908",
            "Cognitive Services User",
            "Read and list keys of Cognitive Services.",
            (
                "Microsoft.CognitiveServices/*/read",
                "Microsoft.CognitiveServices/accounts/listkeys/action",
            ),
            data_actions=("Microsoft.CognitiveServices/*",),
        ),
        RoleDefinition(
            "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68",
            "Cognitive Services Contributor",
            "Create, read, update, delete and manage keys of Cognitive Services.",
            ("Microsoft.CognitiveServices/*",),
        ),
        RoleDefinition(
            "4633458b-17de-408a-b874-0445c86b69e6",
            "Key Vault Secrets User",
            "Read secret contents.",
            data_actions=(
                "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            ),
        ),
        RoleDefinition(
            "08bbd89e-9f13-488c-ac41-acfcb10c90ab",
            "Key Vault Crypto Service Release User",
            "Release keys.",
            data_actions=("Microsoft.KeyVault/vaults/keys/release/action",),
        ),
        RoleDefinition(
            "d5a91429-5739-47e2-a06b-3470a27159e7",
            "EventGrid Data Sender",
            "Send events to Event Grid topics.",
            ("Microsoft.EventGrid/topics/read", "Microsoft.EventGrid/domains/read"),
            data_actions=("Microsoft.EventGrid/events/send/action",),
        ),
    ]
}

_NAME_FILTER = re.compile(r"roleName\s+eq\s+'([^']*)'", re.I)
_TYPE_FILTER = re.compile(r"type\s+eq\s+'([^']*)'", re.I)


def _scope_prefix(call: Call) -> str:
    scope = call.params.get("scope", "")
    return scope if scope.lower().startswith("/subscriptions/") else ""


def role_json(role: RoleDefinition, prefix: str) -> dict[str, Any]:
    """ARM's roleDefinition shape; the id lives under the subscription of the request."""
    subscription = "/".join(prefix.split("/")[:3]) if prefix else ""
    return {
        "id": f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role.guid}",
        "name": role.guid,
        "type": RESOURCE_TYPE,
        "properties": {
            "roleName": role.name,
            "type": "BuiltInRole",
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [
                {
                    "actions": list(role.actions),
                    "notActions": list(role.not_actions),
                    "dataActions": list(role.data_actions),
                    "notDataActions": [],
                }
            ],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2021-11-11T20:13:47.8628684Z",
            "createdBy": None,
            "updatedBy": None,
        },
    }


class RoleDefinitionsProvider:
    def register(self, dispatcher: Dispatcher) -> None:
        base = "{scope}/providers/Microsoft.Authorization/roleDefinitions"
        tenant = "/providers/Microsoft.Authorization/roleDefinitions"
        for prefix in (base, tenant):
            dispatcher.add("GET", prefix, self.list, API_VERSIONS, RESOURCE_TYPE)
            dispatcher.add("GET", prefix + "/{name}", self.get, API_VERSIONS, RESOURCE_TYPE)

    async def get(self, call: Call) -> web.Response:
        role = BUILT_IN_ROLES.get(call.params["name"].lower())
        if role is None:
            raise ArmError(
                404,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{call.params['name']}' does not exist.",
            )
        return web.json_response(role_json(role, _scope_prefix(call)))

    async def list(self, call: Call) -> web.Response:
        wanted = call.request.query.get("$filter", "")
        by_name = _NAME_FILTER.search(wanted)
        by_type = _TYPE_FILTER.search(wanted)
        roles = [
            r
            for r in BUILT_IN_ROLES.values()
            if (not by_name or r.name.lower() == by_name.group(1).lower())
            and (not by_type or by_type.group(1).lower() == "builtinrole")
        ]
        prefix = _scope_prefix(call)
        return web.json_response({"value": [role_json(r, prefix) for r in roles]})
