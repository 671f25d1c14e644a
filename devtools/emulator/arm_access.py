"""Deny assignments on the emulator's ARM surface, and the control routes for what callers
cannot create through ARM: management groups holding subscriptions, deny assignments (Azure
makes them for managed applications and blueprints only) and a vault's private endpoint
connections (made by Microsoft.Network in Azure).

ARM (``Microsoft.Authorization/denyAssignments``, azure-rest-api-specs ``authorization``
2022-04-01, ``DenyAssignments_ListForScope`` / ``_Get``)::

    GET {scope}/providers/Microsoft.Authorization/denyAssignments[?$filter=atScope()]
    GET {scope}/providers/Microsoft.Authorization/denyAssignments/{id}

A listing returns the deny assignments at, above (management groups included) and, without
``atScope()``, below the scope. Control (tests, the demo)::

    PUT|DELETE /control/arm/management-groups/{name}  {"parent": null, "subscriptions": [...]}
    PUT|DELETE /control/arm/deny-assignments/{name}   {"scope", "properties": {REST shape}}
    PUT|DELETE /control/arm/vaults/{vault}/private-endpoint-connections/{name}
                                                      {"status": "Approved" | "Pending" ...}
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from devtools.emulator.access_state import DenyAssignment, ManagementGroup
from devtools.emulator.arm_common import ArmError, Call, Dispatcher
from devtools.emulator.arm_keyvault import VaultsProvider
from devtools.emulator.state import EmulatorState

RESOURCE_TYPE = "Microsoft.Authorization/denyAssignments"
API_VERSIONS = frozenset({"2022-04-01", "2018-07-01-preview"})


def deny_json(deny: DenyAssignment) -> dict[str, Any]:
    """ARM's ``DenyAssignment`` shape."""
    return {
        "id": f"{deny.scope}/providers/Microsoft.Authorization/denyAssignments/{deny.name}",
        "name": deny.name,
        "type": RESOURCE_TYPE,
        "properties": {
            "denyAssignmentName": deny.deny_assignment_name or deny.name,
            "description": "",
            "permissions": [
                {
                    "actions": list(deny.actions),
                    "notActions": [],
                    "dataActions": list(deny.data_actions),
                    "notDataActions": list(deny.not_data_actions),
                    "condition": None,
                    "conditionVersion": None,
                }
            ],
            "scope": deny.scope,
            "doNotApplyToChildScopes": deny.do_not_apply_to_child_scopes,
            "principals": [dict(p) for p in deny.principals],
            "excludePrincipals": [dict(p) for p in deny.exclude_principals],
            "isSystemProtected": True,
            "condition": deny.condition,
            "conditionVersion": "2.0" if deny.condition else None,
        },
    }


class DenyAssignmentsProvider:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def register(self, dispatcher: Dispatcher) -> None:
        base = "{scope}/providers/Microsoft.Authorization/denyAssignments"
        dispatcher.add("GET", base, self.list, API_VERSIONS, RESOURCE_TYPE)
        dispatcher.add("GET", base + "/{name}", self.get, API_VERSIONS, RESOURCE_TYPE)

    async def list(self, call: Call) -> web.Response:
        scope = call.params["scope"]
        at_scope = "atscope()" in call.request.query.get("$filter", "").replace(" ", "").lower()
        covers = self.state.access.covers
        value = [
            deny_json(d)
            for d in self.state.access.deny_assignments.values()
            if covers(d.scope, scope) or (not at_scope and covers(scope, d.scope))
        ]
        return web.json_response({"value": value})

    async def get(self, call: Call) -> web.Response:
        deny = self.state.access.deny_assignments.get(call.params["name"])
        if deny is None or deny.scope.lower() != call.params["scope"].rstrip("/").lower():
            raise ArmError(
                404,
                "DenyAssignmentNotFound",
                f"The deny assignment '{call.params['name']}' is not found.",
            )
        return web.json_response(deny_json(deny))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"code": "BadRequest", "message": message}}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        raw = await request.json() if request.can_read_body else {}
    except json.JSONDecodeError:
        raw = None
    return raw if isinstance(raw, dict) else {}


class AccessControl:
    """The control routes of the module docstring."""

    def __init__(self, state: EmulatorState, vaults: VaultsProvider) -> None:
        self.state = state
        self.vaults = vaults

    def register(self, app: web.Application) -> None:
        r = app.router
        r.add_put("/control/arm/management-groups/{name}", self.put_group)
        r.add_delete("/control/arm/management-groups/{name}", self.delete_group)
        r.add_put("/control/arm/deny-assignments/{name}", self.put_deny)
        r.add_delete("/control/arm/deny-assignments/{name}", self.delete_deny)
        pec = "/control/arm/vaults/{vault}/private-endpoint-connections/{name}"
        r.add_put(pec, self.put_connection)
        r.add_delete(pec, self.delete_connection)

    async def put_group(self, request: web.Request) -> web.Response:
        body = await _body(request)
        name = request.match_info["name"]
        group = ManagementGroup(
            name=name,
            parent=str(body["parent"]) if body.get("parent") else None,
            subscriptions=[str(s) for s in body.get("subscriptions") or []],
            display_name=str(body.get("displayName") or name),
        )
        self.state.access.management_groups[name.lower()] = group
        self.state.changed()
        return web.json_response({"id": group.arm_id, "name": name}, status=201)

    async def delete_group(self, request: web.Request) -> web.Response:
        removed = self.state.access.management_groups.pop(request.match_info["name"].lower(), None)
        self.state.changed()
        return web.Response(status=200 if removed else 204)

    async def put_deny(self, request: web.Request) -> web.Response:
        body = await _body(request)
        props = body.get("properties") or {}
        scope = str(body.get("scope") or props.get("scope") or "").rstrip("/")
        if not scope.startswith("/"):
            return _error(400, "scope is required (an ARM id)")
        permission = (props.get("permissions") or [{}])[0] or {}
        name = request.match_info["name"]
        deny = DenyAssignment(
            name=name,
            scope=scope,
            deny_assignment_name=str(props.get("denyAssignmentName") or name),
            actions=[str(a) for a in permission.get("actions") or []],
            data_actions=[str(a) for a in permission.get("dataActions") or []],
            not_data_actions=[str(a) for a in permission.get("notDataActions") or []],
            principals=[_principal(p) for p in props.get("principals") or []],
            exclude_principals=[_principal(p) for p in props.get("excludePrincipals") or []],
            do_not_apply_to_child_scopes=bool(props.get("doNotApplyToChildScopes")),
            condition=str(props["condition"]) if props.get("condition") else None,
        )
        self.state.access.deny_assignments[name] = deny
        self.state.changed()
        return web.json_response(deny_json(deny), status=201)

    async def delete_deny(self, request: web.Request) -> web.Response:
        removed = self.state.access.deny_assignments.pop(request.match_info["name"], None)
        self.state.changed()
        return web.Response(status=200 if removed else 204)

    async def put_connection(self, request: web.Request) -> web.Response:
        vault = self.state.vaults.get(request.match_info["vault"])
        if vault is None:
            return _error(404, "no such vault")
        body = await _body(request)
        name = request.match_info["name"]
        connection = {
            "id": f"{vault.arm_id}/privateEndpointConnections/{name}",
            "etag": "",
            "properties": {
                "provisioningState": "Succeeded",
                "privateEndpoint": {
                    "id": f"/subscriptions/{vault.subscription_id}/resourceGroups/"
                    f"{vault.resource_group}/providers/Microsoft.Network/privateEndpoints/{name}"
                },
                "privateLinkServiceConnectionState": {
                    "status": str(body.get("status") or "Approved"),
                    "description": str(body.get("description") or ""),
                    "actionsRequired": "None",
                },
            },
        }
        extra = self.vaults.extras.setdefault(vault.arm_id.lower(), {})
        connections = [
            c for c in extra.get("privateEndpointConnections", []) if c["id"] != connection["id"]
        ]
        extra["privateEndpointConnections"] = [*connections, connection]
        return web.json_response(connection, status=201)

    async def delete_connection(self, request: web.Request) -> web.Response:
        vault = self.state.vaults.get(request.match_info["vault"])
        if vault is None:
            return web.Response(status=204)
        extra = self.vaults.extras.setdefault(vault.arm_id.lower(), {})
        suffix = f"/privateendpointconnections/{request.match_info['name']}".lower()
        extra["privateEndpointConnections"] = [
            c
            for c in extra.get("privateEndpointConnections", [])
            if not c["id"].lower().endswith(suffix)
        ]
        return web.Response(status=200)


def _principal(raw: Any) -> dict[str, str]:
    entry = raw if isinstance(raw, dict) else {}
    return {"id": str(entry.get("id") or ""), "type": str(entry.get("type") or "ServicePrincipal")}
