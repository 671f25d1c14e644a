"""Microsoft.Authorization/roleAssignments on the emulator's ARM surface
(azure-mgmt-authorization 4.0, api-version 2022-04-01).

Assignments are the shared ``state.RoleAssignment`` objects the data plane's RBAC check reads,
so deleting one here refuses the next wrapKey with 403. Scopes are any ARM id under the
subscription: the vault (``.../vaults/{name}``), a key (``.../vaults/{name}/keys/{key}``), a
resource group, the subscription, or a management group
(``/providers/Microsoft.Management/managementGroups/{id}``): a listing at any scope returns
the assignments of the management groups its subscription sits in, as ARM's does
(``state.access``). An assignment may carry an ABAC ``condition`` (``conditionVersion``
2.0), kept and returned as written. Refusals copy ARM's codes: ``InvalidRoleAssignmentId``
(name not a GUID), ``RoleDefinitionDoesNotExist`` (neither a built-in role of ``arm_roles``
nor a custom role PUT before),
``PrincipalNotFound`` (unknown principal and no ``principalType``, the documented
replication-delay escape), ``RoleAssignmentExists`` and ``RoleAssignmentUpdateNotPermitted``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web

from devtools.emulator.arm_common import ArmError, Call, Dispatcher, iso, publish_resource_event
from devtools.emulator.arm_roles import find_role
from devtools.emulator.state import EmulatorState, RoleAssignment

RESOURCE_TYPE = "Microsoft.Authorization/roleAssignments"
API_VERSIONS = frozenset({"2022-04-01", "2020-10-01-preview", "2020-04-01-preview", "2015-07-01"})

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_ROLE_DEFINITION = re.compile(
    r"^(/subscriptions/[^/]+)?/providers/Microsoft\.Authorization/roleDefinitions/([^/]+)$", re.I
)
_PRINCIPAL_FILTER = re.compile(r"(?:principalId\s+eq\s+|assignedTo\()'([^']+)'", re.I)


def _is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


class RoleAssignmentsProvider:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        #: assignment name -> createdOn/createdBy and the principalType as written.
        self.extras: dict[str, dict[str, Any]] = {}

    def register(self, dispatcher: Dispatcher) -> None:
        base = "{scope}/providers/Microsoft.Authorization/roleAssignments"
        dispatcher.add("GET", base, self.list, API_VERSIONS, RESOURCE_TYPE)
        dispatcher.add("GET PUT DELETE", base + "/{name}", self.one, API_VERSIONS, RESOURCE_TYPE)

    def to_json(self, assignment: RoleAssignment, subscription_id: str) -> dict[str, Any]:
        extra = self.extras.get(assignment.name, {})
        created = float(extra.get("created", 0.0))
        role = assignment.role_definition_id.rsplit("/", 1)[-1]
        # Under a subscription ARM names the definition there; at a management group, tenant-wide.
        prefix = f"/subscriptions/{subscription_id}" if _is_guid(subscription_id) else ""
        return {
            "properties": {
                "roleDefinitionId": (
                    f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{role}"
                ),
                "principalId": assignment.principal_id,
                "principalType": assignment.principal_type,
                "scope": assignment.scope,
                "condition": assignment.condition,
                "conditionVersion": assignment.condition_version,
                "createdOn": iso(created) if created else None,
                "updatedOn": iso(created) if created else None,
                "createdBy": extra.get("createdBy"),
                "updatedBy": extra.get("createdBy"),
                "delegatedManagedIdentityResourceId": None,
                "description": None,
            },
            "id": assignment.arm_id,
            "type": RESOURCE_TYPE,
            "name": assignment.name,
        }

    async def list(self, call: Call) -> web.Response:
        """At, above and below the scope; ``atScope()`` keeps at/above; a principal filter
        (``principalId eq '...'`` or ``assignedTo('...')``) keeps that principal's."""
        scope = call.params["scope"]
        wanted = call.request.query.get("$filter", "")
        at_scope = "atscope()" in wanted.replace(" ", "").lower()
        principal = _PRINCIPAL_FILTER.search(wanted)
        value = []
        covers = self.state.access.covers
        for assignment in self.state.role_assignments.values():
            above = covers(assignment.scope, scope)
            below = covers(scope, assignment.scope)
            if not (above or (below and not at_scope)):
                continue
            if principal and assignment.principal_id.lower() != principal.group(1).lower():
                continue
            value.append(self.to_json(assignment, call.subscription_id))
        return web.json_response({"value": value})

    async def one(self, call: Call) -> web.Response:
        scope = call.params["scope"].rstrip("/")
        name = call.params["name"]
        assignment = self.state.role_assignments.get(name)
        if assignment is not None and assignment.scope.lower() != scope.lower():
            assignment = None  # the same name at another scope is another resource
        method = call.request.method
        if method == "GET":
            if assignment is None:
                raise ArmError(
                    404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found."
                )
            return web.json_response(self.to_json(assignment, call.subscription_id))
        if method == "DELETE":
            if assignment is None:
                return web.Response(status=204)
            del self.state.role_assignments[name]
            self.state.changed()
            body = self.to_json(assignment, call.subscription_id)
            self.extras.pop(name, None)
            publish_resource_event(
                self.state,
                call,
                deleted=True,
                resource_uri=assignment.arm_id,
                operation_name="Microsoft.Authorization/roleAssignments/delete",
            )
            return web.json_response(body)
        return await self._create(call, scope, name, assignment)

    async def _create(
        self, call: Call, scope: str, name: str, existing: RoleAssignment | None
    ) -> web.Response:
        if not _GUID.match(name):
            raise ArmError(
                400,
                "InvalidRoleAssignmentId",
                f"The role assignment ID '{name}' is not valid. The role assignment ID must be a "
                "GUID.",
            )
        properties = (await call.body()).get("properties") or {}
        definition = _ROLE_DEFINITION.match(str(properties.get("roleDefinitionId", "")))
        role = definition.group(2).lower() if definition else ""
        if find_role(self.state, role) is None:
            shown = role or properties.get("roleDefinitionId")
            raise ArmError(
                400,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{shown}' does not exist.",
            )
        principal_id = str(properties.get("principalId") or "")
        principal_type = properties.get("principalType")
        if principal_id not in self.state.principals and not principal_type:
            raise ArmError(
                400,
                "PrincipalNotFound",
                f"Principal {principal_id.replace('-', '')} does not exist in the directory "
                f"{call.caller.tenant_id}. Check that you have the correct principal ID. If you "
                "are creating this principal and then immediately assigning a role, this error "
                "might be related to a replication delay. In this case, set the role assignment "
                "principalType property to a value, such as ServicePrincipal, User, or Group.  "
                "See https://aka.ms/docs-principaltype",
            )
        condition = properties.get("condition")
        wanted = RoleAssignment(
            name=name,
            scope=scope,
            role_definition_id=role,
            principal_id=principal_id,
            principal_type=str(principal_type or "ServicePrincipal"),
            condition=str(condition) if condition else None,
            condition_version=(
                str(properties.get("conditionVersion") or "2.0") if condition else None
            ),
        )
        if existing is not None:
            same = (existing.role_definition_id.rsplit("/", 1)[-1].lower(), existing.principal_id)
            if same != (role, principal_id):
                raise ArmError(
                    409,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                    "updated.",
                )
            return web.json_response(self.to_json(existing, call.subscription_id), status=201)
        for other in self.state.role_assignments.values():
            if (
                other.scope.lower() == scope.lower()
                and other.principal_id == principal_id
                and other.role_definition_id.rsplit("/", 1)[-1].lower() == role
            ):
                raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
        self.state.role_assignments[name] = wanted
        self.extras[name] = {"created": self.state.clock.now(), "createdBy": call.caller.object_id}
        self.state.changed()
        publish_resource_event(
            self.state,
            call,
            deleted=False,
            resource_uri=wanted.arm_id,
            operation_name="Microsoft.Authorization/roleAssignments/write",
        )
        return web.json_response(self.to_json(wanted, call.subscription_id), status=201)


def new_assignment_name() -> str:
    """Role assignment names are GUIDs chosen by the caller."""
    return str(uuid.uuid4())
