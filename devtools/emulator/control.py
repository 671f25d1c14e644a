"""The control API (``/control/...`` on the main port): how tests and the demo set the world up.

JSON in, JSON out, no authentication (loopback dev tooling). It seeds vaults, principals,
access policies, role assignments and keys; moves the clock; configures each vault's throttle,
latency and faults; and reads or resets per vault / key / version counters. Private key
material is never returned, not even by the state dump. ARM and Event Grid add their own
``/control/arm/...`` and ``/control/eventgrid/...`` routes in their modules.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from devtools.emulator import keys
from devtools.emulator.auth import ROLE_DATA_ACTIONS, ROLE_NAMES
from devtools.emulator.state import AccessPolicy, Principal, RoleAssignment, Vault

if TYPE_CHECKING:
    from devtools.emulator.server import EmulatorServer

_VAULT_OPTIONS = {
    "managed_hsm": "managed_hsm",
    "rbac": "enable_rbac_authorization",
    "enable_rbac_authorization": "enable_rbac_authorization",
    "soft_delete": "enable_soft_delete",
    "enable_soft_delete": "enable_soft_delete",
    "purge_protection": "enable_purge_protection",
    "enable_purge_protection": "enable_purge_protection",
    "soft_delete_retention_days": "soft_delete_retention_days",
    "sku": "sku",
    "tenant_id": "tenant_id",
    "location": "location",
    "resource_group": "resource_group",
    "subscription_id": "subscription_id",
    "tags": "tags",
    "deletion_lag_seconds": "deletion_lag_seconds",
}


def _http(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 404: web.HTTPNotFound, 409: web.HTTPConflict}[status]
    return cls(text=json.dumps({"error": {"message": message}}), content_type="application/json")


def vault_json(vault: Vault) -> dict[str, Any]:
    return {
        "name": vault.name,
        "url": vault.url,
        "port": vault.port,
        "arm_id": vault.arm_id,
        "managed_hsm": vault.managed_hsm,
        "rbac": vault.enable_rbac_authorization,
        "soft_delete": vault.enable_soft_delete,
        "purge_protection": vault.enable_purge_protection,
        "soft_delete_retention_days": vault.soft_delete_retention_days,
        "tenant_id": vault.tenant_id,
        "sku": vault.sku,
        "location": vault.location,
        "access_policies": [
            {"object_id": p.object_id, "tenant_id": p.tenant_id, "keys": list(p.keys)}
            for p in vault.access_policies
        ],
        "keys": sorted(vault.keys),
        "deleted_keys": sorted(vault.deleted_keys),
        "deletion_lag_seconds": vault.deletion_lag_seconds,
    }


class Control:
    """Handlers bound to one :class:`EmulatorServer`."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.state = server.state

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except ValueError:
            raise _http(400, "body is not JSON") from None
        if not isinstance(body, dict):
            raise _http(400, "body must be a JSON object")
        return body

    def _vault(self, request: web.Request) -> Vault:
        vault = self.state.vaults.get(request.match_info["vault"])
        if vault is None:
            raise _http(404, f"no vault {request.match_info['vault']!r}")
        return vault

    # --- vaults, principals, access -----------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", **self.server.ready_info()})

    async def create_vault(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        name = str(body.get("name") or "")
        if not 3 <= len(name) <= 24 or not name[0].isalpha():
            raise _http(400, "vault names are 3-24 characters and start with a letter")
        if name in self.state.vaults:
            raise _http(409, f"vault {name!r} exists")
        options = {_VAULT_OPTIONS[k]: v for k, v in body.items() if k in _VAULT_OPTIONS}
        vault = Vault(name=name, **options)
        self.state.add_vault(vault)
        return web.json_response(vault_json(vault), status=201)

    async def list_vaults(self, request: web.Request) -> web.Response:
        return web.json_response([vault_json(v) for v in self.state.vaults.values()])

    async def get_vault(self, request: web.Request) -> web.Response:
        return web.json_response(vault_json(self._vault(request)))

    async def delete_vault(self, request: web.Request) -> web.Response:
        self._vault(request)
        await self.server.drop_vault(request.match_info["vault"])
        return web.Response(status=204)

    async def create_principal(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        principal = Principal(
            object_id=str(body.get("object_id") or uuid.uuid4()),
            display_name=str(body.get("display_name") or ""),
        )
        if body.get("client_id"):
            principal.client_id = str(body["client_id"])
        if body.get("tenant_id"):
            principal.tenant_id = str(body["tenant_id"])
        self.state.principals[principal.object_id] = principal
        self.state.changed()
        return web.json_response(principal.__dict__, status=201)

    async def set_access_policy(self, request: web.Request) -> web.Response:
        vault = self._vault(request)
        object_id = request.match_info["object_id"]
        body = await self._body(request)
        policy = AccessPolicy(
            object_id=object_id,
            tenant_id=str(body.get("tenant_id") or vault.tenant_id),
            keys=[str(p) for p in body.get("keys") or []],
            secrets=[str(p) for p in body.get("secrets") or []],
            certificates=[str(p) for p in body.get("certificates") or []],
        )
        vault.access_policies = [p for p in vault.access_policies if p.object_id != object_id]
        vault.access_policies.append(policy)
        self.state.changed()
        return web.json_response(vault_json(vault))

    async def delete_access_policy(self, request: web.Request) -> web.Response:
        vault = self._vault(request)
        object_id = request.match_info["object_id"]
        vault.access_policies = [p for p in vault.access_policies if p.object_id != object_id]
        self.state.changed()
        return web.json_response(vault_json(vault))

    async def create_role_assignment(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        role = str(body.get("role") or body.get("role_definition_id") or "")
        role_id = ROLE_NAMES.get(role, role.rsplit("/", 1)[-1].lower())
        if role_id not in ROLE_DATA_ACTIONS:
            raise _http(400, f"unknown role {role!r}; known: {sorted(ROLE_NAMES)}")
        scope = body.get("scope")
        if not scope:
            vault_name = str(body.get("vault") or "")
            vault = self.state.vaults.get(vault_name)
            if vault is None:
                raise _http(404, f"no vault {vault_name!r}")
            scope = vault.arm_id + (f"/keys/{body['key']}" if body.get("key") else "")
        if not body.get("principal_id"):
            raise _http(400, "principal_id is required")
        assignment = RoleAssignment(
            name=str(body.get("name") or uuid.uuid4()),
            scope=str(scope),
            role_definition_id=role_id,
            principal_id=str(body["principal_id"]),
            principal_type=str(body.get("principal_type") or "ServicePrincipal"),
        )
        self.state.role_assignments[assignment.name] = assignment
        self.state.changed()
        return web.json_response(_assignment_json(assignment), status=201)

    async def list_role_assignments(self, request: web.Request) -> web.Response:
        return web.json_response(
            [_assignment_json(a) for a in self.state.role_assignments.values()]
        )

    async def delete_role_assignment(self, request: web.Request) -> web.Response:
        if self.state.role_assignments.pop(request.match_info["name"], None) is None:
            raise _http(404, "no such role assignment")
        self.state.changed()
        return web.Response(status=204)

    # --- keys -------------------------------------------------------------------------------

    async def create_key(self, request: web.Request) -> web.Response:
        """Seed a key version directly (no token, no throttle): fast test setup."""
        vault = self._vault(request)
        body = await self._body(request)
        name = str(body.get("name") or "")
        if not name:
            raise _http(400, "name is required")
        if name in vault.deleted_keys:
            raise _http(409, f"key {name!r} is deleted; recover or purge it first")
        kty = str(body.get("kty") or ("RSA-HSM" if vault.managed_hsm else "RSA"))
        if kty in keys.RSA_KEY_TYPES:
            size = int(body.get("size") or body.get("key_size") or 2048)
            if size not in keys.RSA_SIZES:
                raise _http(400, "RSA sizes are 2048, 3072, 4096")
            loop = asyncio.get_running_loop()
            private = await loop.run_in_executor(None, keys.generate_rsa_pem, size, 65537)
            default_ops = keys.RSA_DEFAULT_OPS
        elif kty in keys.OCT_KEY_TYPES and vault.managed_hsm:
            size = int(body.get("size") or body.get("key_size") or 256)
            if size not in keys.OCT_SIZES:
                raise _http(400, "AES sizes are 128, 192, 256")
            private = keys.generate_oct_hex(size)
            default_ops = keys.OCT_DEFAULT_OPS
        else:
            raise _http(400, f"key type {kty!r} not available on this vault")
        plane = self.server.data_plane
        attrs = {
            "enabled": body.get("enabled", True),
            "nbf": body.get("nbf"),
            "exp": body.get("exp"),
        }
        version = plane.add_version(
            vault,
            name,
            kty=kty,
            size=size,
            private=private,
            key_ops=list(body.get("key_ops") or default_ops),
            attrs=attrs,
            tags=body.get("tags") or {},
        )
        return web.json_response(plane.bundle(vault, vault.keys[name], version), status=201)

    async def rotate_key(self, request: web.Request) -> web.Response:
        vault = self._vault(request)
        name = request.match_info["key"]
        if name not in vault.keys:
            raise _http(404, f"no key {name!r}")
        plane = self.server.data_plane
        version = await plane.rotate_key(vault, name)
        return web.json_response(plane.bundle(vault, vault.keys[name], version), status=201)

    # --- clock ------------------------------------------------------------------------------

    def _clock_json(self) -> dict[str, Any]:
        clock = self.state.clock
        return {"now": clock.now(), "offset_seconds": clock.offset_seconds}

    async def get_clock(self, request: web.Request) -> web.Response:
        return web.json_response(self._clock_json())

    async def set_clock(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        clock = self.state.clock
        if body.get("advance") is not None:
            seconds = float(body["advance"])
            if seconds < 0:
                raise _http(400, "the clock only moves forward")
            clock.advance(seconds)
        elif body.get("set") is not None:
            target = float(body["set"])
            if target < clock.now() - 1e-3:
                raise _http(400, "the clock only moves forward")
            clock.advance(target - clock.now())
        else:
            raise _http(400, "give 'advance' (seconds) or 'set' (epoch seconds)")
        self.state.changed()
        await self.server.tick()
        return web.json_response(self._clock_json())

    async def tick(self, request: web.Request) -> web.Response:
        await self.server.tick()
        return web.json_response(self._clock_json())

    # --- throttle, latency, faults ---------------------------------------------------------

    async def throttle(self, request: web.Request) -> web.Response:
        vault = self._vault(request)
        throttle = self.server.data_plane.runtime(vault.name).throttle
        if request.method == "PUT":
            body = await self._body(request)
            try:
                throttle.configure(
                    budget=body.get("budget"),
                    window_seconds=body.get("window_seconds"),
                    enabled=body.get("enabled"),
                )
            except ValueError as err:
                raise _http(400, str(err)) from None
        return web.json_response(
            {
                "budget": throttle.budget,
                "window_seconds": throttle.window_seconds,
                "enabled": throttle.enabled,
                "used": throttle.used,
            }
        )

    async def deletion(self, request: web.Request) -> web.Response:
        """``{"lag_seconds"}``: how long a soft delete takes to complete (0: at once)."""
        vault = self._vault(request)
        body = await self._body(request)
        try:
            lag = float(body["lag_seconds"])
        except (KeyError, TypeError, ValueError):
            raise _http(400, "give 'lag_seconds' (a number of seconds)") from None
        if lag < 0:
            raise _http(400, "lag_seconds must not be negative")
        vault.deletion_lag_seconds = lag
        self.state.changed()
        return web.json_response(vault_json(vault))

    async def faults(self, request: web.Request) -> web.Response:
        vault = self._vault(request)
        plan = self.server.data_plane.runtime(vault.name).faults
        if request.method == "PUT":
            body = await self._body(request)
            try:
                plan.configure(**body)
            except (ValueError, TypeError) as err:
                raise _http(400, str(err)) from None
        return web.json_response(plan.as_dict())

    # --- counters and state ----------------------------------------------------------------

    async def counters(self, request: web.Request) -> web.Response:
        vault = self._vault(request)
        prefix = f"kv|{vault.name}|"
        if request.method == "DELETE":
            requests = self.state.counters.requests
            for label in [k for k in requests if k.startswith(prefix)]:
                del requests[label]
            return web.Response(status=204)
        return web.json_response(_counters_view(self.state.counters.requests, prefix))

    async def reset_counters(self, request: web.Request) -> web.Response:
        self.state.counters.requests.clear()
        return web.Response(status=204)

    async def dump(self, request: web.Request) -> web.Response:
        image = self.state.to_json()
        for vault in image["vaults"]:
            for key in [*vault["keys"], *vault["deleted_keys"]]:
                for version in key["versions"]:
                    version["private"] = "<redacted>"
        return web.json_response(image)


def _assignment_json(assignment: RoleAssignment) -> dict[str, Any]:
    return {
        "name": assignment.name,
        "id": assignment.arm_id,
        "scope": assignment.scope,
        "role_definition_id": assignment.role_definition_id,
        "principal_id": assignment.principal_id,
        "principal_type": assignment.principal_type,
    }


def _empty() -> dict[str, Any]:
    return {"ops": {}, "status": {}, "throttled": 0, "dropped": 0, "unauthenticated": 0}


def _add(node: dict[str, Any], field: str, count: int) -> None:
    kind, _, name = field.partition(":")
    if kind == "op":
        node["ops"][name] = node["ops"].get(name, 0) + count
    elif kind == "status":
        node["status"][name] = node["status"].get(name, 0) + count
    else:
        node[kind] = node.get(kind, 0) + count


def _counters_view(requests: dict[str, int], prefix: str) -> dict[str, Any]:
    """Labels ``kv|vault|[key|[version|]]field`` -> nested vault / keys / versions counts."""
    view: dict[str, Any] = {"vault": _empty(), "keys": {}}
    for label, count in requests.items():
        if not label.startswith(prefix):
            continue
        parts = label[len(prefix) :].split("|")
        if len(parts) == 1:
            _add(view["vault"], parts[0], count)
            continue
        key = view["keys"].setdefault(parts[0], {**_empty(), "versions": {}})
        if len(parts) == 2:
            _add(key, parts[1], count)
        else:
            _add(key["versions"].setdefault(parts[1], _empty()), parts[2], count)
    return view


def register_routes(app: web.Application, server: EmulatorServer) -> None:
    """Add the control routes to the main application."""
    c = Control(server)
    r = app.router
    r.add_get("/control/health", c.health)
    r.add_post("/control/vaults", c.create_vault)
    r.add_get("/control/vaults", c.list_vaults)
    r.add_get("/control/vaults/{vault}", c.get_vault)
    r.add_delete("/control/vaults/{vault}", c.delete_vault)
    r.add_put("/control/vaults/{vault}/access-policies/{object_id}", c.set_access_policy)
    r.add_delete("/control/vaults/{vault}/access-policies/{object_id}", c.delete_access_policy)
    r.add_post("/control/vaults/{vault}/keys", c.create_key)
    r.add_post("/control/vaults/{vault}/keys/{key}/rotate", c.rotate_key)
    r.add_route("GET", "/control/vaults/{vault}/throttle", c.throttle)
    r.add_route("PUT", "/control/vaults/{vault}/throttle", c.throttle)
    r.add_put("/control/vaults/{vault}/deletion", c.deletion)
    r.add_route("GET", "/control/vaults/{vault}/faults", c.faults)
    r.add_route("PUT", "/control/vaults/{vault}/faults", c.faults)
    r.add_route("GET", "/control/vaults/{vault}/counters", c.counters)
    r.add_route("DELETE", "/control/vaults/{vault}/counters", c.counters)
    r.add_post("/control/counters/reset", c.reset_counters)
    r.add_post("/control/principals", c.create_principal)
    r.add_post("/control/role-assignments", c.create_role_assignment)
    r.add_get("/control/role-assignments", c.list_role_assignments)
    r.add_delete("/control/role-assignments/{name}", c.delete_role_assignment)
    r.add_get("/control/clock", c.get_clock)
    r.add_post("/control/clock", c.set_clock)
    r.add_post("/control/tick", c.tick)
    r.add_get("/control/state", c.dump)
