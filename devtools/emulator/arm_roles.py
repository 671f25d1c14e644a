"""Microsoft.Authorization/roleDefinitions: the built-in roles keyward meets, and custom roles.

keyward decides whether a Face account's identity can still use its key; under RBAC that
means knowing which data actions a role grants, which callers read from the role definition
(``role_definitions.get`` / ``list(filter="roleName eq '...'")``). The data actions are the
ones the data plane enforces (``auth.ROLE_DATA_ACTIONS``, Azure's published definitions), so
what ARM says a role allows is what the vault then allows.

Custom roles (``PUT {scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}``,
``RoleDefinitions_CreateOrUpdate`` of azure-rest-api-specs ``authorization`` 2022-04-01) are
kept in ``state.access.custom_roles`` with their ``dataActions`` / ``notDataActions``, can be
read back by id and assigned; refusals copy ARM's (``RoleDefinitionDoesNotExist``,
``RoleDefinitionWithSameNameExists``, ``InvalidRoleDefinitionId``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devtools.emulator.access_state import CustomRole
from devtools.emulator.arm_common import ArmError, Call, Dispatcher
from devtools.emulator.auth import ROLE_DATA_ACTIONS, ROLE_NAMES
from devtools.emulator.state import (
    ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    EmulatorState,
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
    not_data_actions: tuple[str, ...] = ()
    role_type: str = "BuiltInRole"
    assignable_scopes: tuple[str, ...] = ("/",)


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
            "type": role.role_type,
            "description": role.description,
            "assignableScopes": list(role.assignable_scopes),
            "permissions": [
                {
                    "actions": list(role.actions),
                    "notActions": list(role.not_actions),
                    "dataActions": list(role.data_actions),
                    "notDataActions": list(role.not_data_actions),
                }
            ],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2021-11-11T20:13:47.8628684Z",
            "createdBy": None,
            "updatedBy": None,
        },
    }


def custom_definition(role: CustomRole) -> RoleDefinition:
    return RoleDefinition(
        guid=role.guid,
        name=role.name,
        description=role.description,
        actions=tuple(role.actions),
        not_actions=tuple(role.not_actions),
        data_actions=tuple(role.data_actions),
        not_data_actions=tuple(role.not_data_actions),
        role_type="CustomRole",
        assignable_scopes=tuple(role.assignable_scopes),
    )


def find_role(state: EmulatorState | None, guid: str) -> RoleDefinition | None:
    """A built-in role, else a custom role of ``state``, by GUID (any case)."""
    wanted = guid.lower()
    role = BUILT_IN_ROLES.get(wanted)
    if role is None and state is not None:
        custom = state.access.custom_roles.get(wanted)
        role = custom_definition(custom) if custom is not None else None
    return role


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class RoleDefinitionsProvider:
    def __init__(self, state: EmulatorState | None = None) -> None:
        self.state = state

    def register(self, dispatcher: Dispatcher) -> None:
        base = "{scope}/providers/Microsoft.Authorization/roleDefinitions"
        tenant = "/providers/Microsoft.Authorization/roleDefinitions"
        for prefix in (base, tenant):
            dispatcher.add("GET", prefix, self.list, API_VERSIONS, RESOURCE_TYPE)
            dispatcher.add(
                "GET PUT DELETE", prefix + "/{name}", self.one, API_VERSIONS, RESOURCE_TYPE
            )

    async def one(self, call: Call) -> web.Response:
        if call.request.method == "PUT":
            return await self.put(call)
        if call.request.method == "DELETE":
            return await self.delete(call)
        return await self.get(call)

    async def get(self, call: Call) -> web.Response:
        role = find_role(self.state, call.params["name"])
        if role is None:
            raise ArmError(
                404,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{call.params['name']}' does not exist.",
            )
        return web.json_response(role_json(role, _scope_prefix(call)))

    async def put(self, call: Call) -> web.Response:
        """Create or update a custom role (``RoleDefinitions_CreateOrUpdate``)."""
        if self.state is None:
            raise ArmError(405, "MethodNotAllowed", "Custom roles need the emulator state.")
        guid = call.params["name"].lower()
        if not _GUID.match(guid):
            raise ArmError(
                400, "InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid."
            )
        if guid in BUILT_IN_ROLES:
            raise ArmError(403, "AuthorizationFailed", "Built-in roles cannot be changed.")
        properties = (await call.body()).get("properties") or {}
        name = str(properties.get("roleName") or "").strip()
        if not name:
            raise ArmError(400, "InvalidRoleDefinitionName", "The role name is required.")
        for other in [*BUILT_IN_ROLES.values(), *map(custom_definition, self._customs())]:
            if other.name.lower() == name.lower() and other.guid != guid:
                raise ArmError(
                    409,
                    "RoleDefinitionWithSameNameExists",
                    f"A custom role with the same name '{name}' already exists.",
                )
        permissions = (properties.get("permissions") or [{}])[0] or {}
        scope = call.params.get("scope", "")
        role = CustomRole(
            guid=guid,
            name=name,
            description=str(properties.get("description") or ""),
            actions=[str(a) for a in permissions.get("actions") or []],
            not_actions=[str(a) for a in permissions.get("notActions") or []],
            data_actions=[str(a) for a in permissions.get("dataActions") or []],
            not_data_actions=[str(a) for a in permissions.get("notDataActions") or []],
            assignable_scopes=[str(s) for s in properties.get("assignableScopes") or [scope]],
            scope=scope,
        )
        self.state.access.custom_roles[guid] = role
        self.state.changed()
        return web.json_response(
            role_json(custom_definition(role), _scope_prefix(call)), status=201
        )

    async def delete(self, call: Call) -> web.Response:
        guid = call.params["name"].lower()
        if self.state is None or guid not in self.state.access.custom_roles:
            return web.Response(status=204)
        role = self.state.access.custom_roles.pop(guid)
        self.state.changed()
        return web.json_response(role_json(custom_definition(role), _scope_prefix(call)))

    def _customs(self) -> list[CustomRole]:
        return list(self.state.access.custom_roles.values()) if self.state is not None else []

    async def list(self, call: Call) -> web.Response:
        wanted = call.request.query.get("$filter", "")
        by_name = _NAME_FILTER.search(wanted)
        by_type = _TYPE_FILTER.search(wanted)
        everything = [*BUILT_IN_ROLES.values(), *map(custom_definition, self._customs())]
        roles = [
            r
            for r in everything
            if (not by_name or r.name.lower() == by_name.group(1).lower())
            and (not by_type or by_type.group(1).lower() == r.role_type.lower())
        ]
        prefix = _scope_prefix(call)
        return web.json_response({"value": [role_json(r, prefix) for r in roles]})
