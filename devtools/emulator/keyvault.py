"""The Key Vault keys data plane (api-version 2025-07-01), as azure-keyvault-keys calls it.

Every vault listens on its own loopback port; one aiohttp application serves all of those
ports and finds the vault from the port a request arrived on. A request goes: fault plan
(latency, injected 5xx, dropped connection) -> bearer token (401 challenge when missing) ->
permission (access policy or RBAC, 403) -> throttle (429, with Retry-After unless the fault
plan omits it) -> the operation. Refusals of the operation itself (disabled, expired, not yet
valid, operation not in ``key_ops``, unknown key or version, a ``value`` that is not
base64url) follow the service's codes (``refusals.py``; ``docs/emulator.md`` lists them with
their sources), and so do its less convenient answers: an unknown key's versions are an empty
page, a disabled version's GET is 200 with ``enabled: false``, and a soft delete completes a
few seconds after the DELETE (``Vault.deletion_lag_seconds``).

Handlers never await between reading and changing the state (key generation runs in a thread
*before* the change), so the single event loop needs no locks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devtools.emulator import auth, keys
from devtools.emulator.faults import FaultPlan
from devtools.emulator.lifecycle import (
    default_rotation_policy,
    expiry_from_policy,
    publish_new_version,
)
from devtools.emulator.refusals import (
    KvError,
    Throttled,
    bad,
    base64url_field,
    check_key_name,
    check_usable,
    duration,
    error_response,
    not_found,
    throttled_response,
    validate_policy_action,
)
from devtools.emulator.state import EmulatorState, Key, KeyVersion, Vault
from devtools.emulator.throttle import Throttle, operation_weight

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_VERSION = r"{version:[0-9A-Za-z]*}"


@dataclass
class _Ctx:
    """What the middleware and the handler learn about one request."""

    vault: Vault
    caller: auth.Caller | None = None
    op: str | None = None
    key: str | None = None
    version: str | None = None


CTX = web.RequestKey("keyward_kv_request", _Ctx)


class VaultRuntime:
    """Per-vault things that are not state: throttle window and fault plan."""

    def __init__(self) -> None:
        self.throttle = Throttle()
        self.faults = FaultPlan()


class DataPlane:
    """Request handling for every vault's data plane."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.cache = keys.MaterialCache()
        self.runtimes: dict[str, VaultRuntime] = {}
        self.port_to_vault: dict[int, str] = {}

    # --- plumbing ---------------------------------------------------------------------------

    def runtime(self, vault_name: str) -> VaultRuntime:
        runtime = self.runtimes.get(vault_name)
        if runtime is None:
            runtime = self.runtimes[vault_name] = VaultRuntime()
        return runtime

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        r = app.router
        r.add_get("/keys", self.list_keys)
        r.add_get("/keys/", self.list_keys)
        r.add_get("/deletedkeys", self.list_deleted)
        r.add_get("/deletedkeys/", self.list_deleted)
        r.add_get("/deletedkeys/{name}", self.get_deleted)
        r.add_delete("/deletedkeys/{name}", self.purge)
        r.add_post("/deletedkeys/{name}/recover", self.recover)
        r.add_get("/keys/{name}/versions", self.list_versions)
        r.add_get("/keys/{name}/rotationpolicy", self.get_rotation_policy)
        r.add_put("/keys/{name}/rotationpolicy", self.set_rotation_policy)
        r.add_post("/keys/{name}/create", self.create)
        r.add_post("/keys/{name}/rotate", self.rotate)
        r.add_put("/keys/{name}", self.import_key)
        r.add_delete("/keys/{name}", self.delete)
        r.add_get("/keys/{name}", self.get_key)
        r.add_get(f"/keys/{{name}}/{_VERSION}", self.get_key)
        r.add_patch("/keys/{name}", self.update)
        r.add_patch(f"/keys/{{name}}/{_VERSION}", self.update)
        r.add_post(f"/keys/{{name}}/{_VERSION}/{{op}}", self.crypto)
        return app

    def _vault_of(self, request: web.Request) -> Vault | None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if not sockname:
            return None
        name = self.port_to_vault.get(int(sockname[1]))
        return self.state.vaults.get(name) if name else None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        vault = self._vault_of(request)
        if vault is None:
            return error_response(404, "VaultNotFound", "No vault is served on this port.")
        ctx = _Ctx(vault)
        request[CTX] = ctx
        runtime = self.runtime(vault.name)
        plan = runtime.faults
        if plan.active and plan.applies_to(request.path):
            delay, fault = plan.draw()
            if delay:
                await asyncio.sleep(delay)
            if fault == "drop":
                if request.transport is not None:
                    request.transport.abort()
                self._count(vault, None, None, "dropped")
                raise asyncio.CancelledError
            if fault == "error":
                self._count(vault, None, None, f"status:{plan.error_status // 100}xx")
                return error_response(
                    plan.error_status,
                    "ServiceUnavailable" if plan.error_status == 503 else "InternalServerError",
                    "The service is temporarily unavailable (injected fault).",
                )
        caller = auth.authenticate(
            request.headers.get("Authorization"), self.state, (auth.vault_resource(vault),)
        )
        message = None
        if caller is None:
            message = "AKV10000: Request is missing a Bearer or PoP token."
        elif caller.tenant_id.lower() != vault.tenant_id.lower():
            # A token from another tenant: the service answers 401 with the challenge naming
            # the vault's tenant, which the SDK's challenge policy follows.
            message = (
                "AKV10032: Invalid issuer. Expected one of "
                f"https://sts.windows.net/{vault.tenant_id}/, found "
                f"https://sts.windows.net/{caller.tenant_id}/."
            )
        if message is not None:
            self._count(vault, None, None, "status:4xx")
            self._count(vault, None, None, "unauthenticated")
            return error_response(
                401,
                "Unauthorized",
                message or "",
                headers={"WWW-Authenticate": auth.challenge_header(vault)},
            )
        ctx.caller = caller
        if runtime.faults.redirect_to:
            # Injected (see faults.py): Key Vault itself never redirects.
            self._count(vault, None, None, "status:3xx", "redirected")
            return web.Response(
                status=307, headers={"Location": runtime.faults.redirect_to + request.path_qs}
            )
        try:
            response = await handler(request)
        except Throttled as err:
            return throttled_response(err, retry_after=not runtime.faults.omit_retry_after())
        except KvError as err:
            response = error_response(err.status, err.code, err.message, err.inner)
        except auth.Denied as err:
            response = error_response(err.status, err.code, err.message, err.inner)
        except web.HTTPException:
            raise
        if response.status == 429:
            return response
        op, key_name, version = ctx.op, ctx.key, ctx.version
        status = f"status:{response.status // 100}xx"
        self._count(vault, key_name, version, status, f"op:{op}" if op else None)
        return response

    def _count(
        self, vault: Vault, key: str | None, version: str | None, *fields: str | None
    ) -> None:
        labels = []
        for field in fields:
            if field is None:
                continue
            labels.append(f"kv|{vault.name}|{field}")
            if key:
                labels.append(f"kv|{vault.name}|{key}|{field}")
                if version:
                    labels.append(f"kv|{vault.name}|{key}|{version}|{field}")
        self.state.counters.bump(*labels)

    def _gate(
        self,
        request: web.Request,
        kind: str,
        key_name: str | None,
        version: KeyVersion | None = None,
    ) -> None:
        """Authorize, then charge the throttle. Raises Denied (403) or Throttled (429)."""
        ctx = request[CTX]
        vault = ctx.vault
        ctx.op = kind
        ctx.key = key_name
        ctx.version = version.version if version else None
        assert ctx.caller is not None
        auth.authorize(self.state, vault, ctx.caller, auth.OPERATIONS[kind], key_name)
        weight = operation_weight(version.kty, version.key_size) if version else 1.0
        wait = self.runtime(vault.name).throttle.admit(weight)
        if wait is not None:
            self._count(vault, key_name, ctx.version, "throttled")
            raise Throttled(wait)

    def _name(self, request: web.Request) -> str:
        """The key name of the route as stored: Key Vault object names are case-insensitive."""
        name = request.match_info["name"]
        vault = request[CTX].vault
        if name in vault.keys or name in vault.deleted_keys:
            return name
        wanted = name.lower()
        for existing in (*vault.keys, *vault.deleted_keys):
            if existing.lower() == wanted:
                return existing
        return name

    def _key_id(self, vault: Vault, name: str, version: str | None = None) -> str:
        return f"{vault.url}/keys/{name}/{version}" if version else f"{vault.url}/keys/{name}"

    def _recovery_level(self, vault: Vault) -> str:
        if not vault.enable_soft_delete:
            return "Purgeable"
        prefix = "Customized" if vault.soft_delete_retention_days < 90 else ""
        suffix = "" if vault.enable_purge_protection else "+Purgeable"
        return f"{prefix}Recoverable{suffix}"

    def _attributes(self, vault: Vault, v: KeyVersion) -> dict[str, Any]:
        attrs: dict[str, Any] = {"enabled": v.enabled}
        if v.not_before is not None:
            attrs["nbf"] = int(v.not_before)
        if v.expires is not None:
            attrs["exp"] = int(v.expires)
        attrs["created"] = int(v.created)
        attrs["updated"] = int(v.updated)
        attrs["recoveryLevel"] = self._recovery_level(vault)
        if vault.enable_soft_delete:
            attrs["recoverableDays"] = vault.soft_delete_retention_days
        attrs["exportable"] = v.exportable
        return attrs

    def bundle(self, vault: Vault, key: Key, v: KeyVersion) -> dict[str, Any]:
        body: dict[str, Any] = {
            "key": keys.public_jwk(v, self._key_id(vault, key.name, v.version), self.cache),
            "attributes": self._attributes(vault, v),
        }
        if v.tags:
            body["tags"] = dict(v.tags)
        return body

    def _deleted_bundle(self, vault: Vault, key: Key) -> dict[str, Any]:
        body = self.bundle(vault, key, key.current)
        body["recoveryId"] = f"{vault.url}/deletedkeys/{key.name}"
        if key.deleted_at is not None:
            body["deletedDate"] = int(key.deleted_at)
        if key.scheduled_purge is not None:
            body["scheduledPurgeDate"] = int(key.scheduled_purge)
        return body

    def _key(self, vault: Vault, name: str) -> Key:
        key = vault.keys.get(name)
        if key is None or not key.versions:
            raise not_found(name)
        return key

    def _version(self, key: Key, version: str | None) -> KeyVersion:
        if not version:
            return key.current
        found = key.version(version.lower())
        if found is None:
            raise not_found(key.name, version)
        return found

    async def _json(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            raise bad("The request body is missing.")
        try:
            body = await request.json(loads=json.loads)
        except ValueError:
            raise bad("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise bad("The request body must be a JSON object.")
        return body

    # --- key lifecycle ---------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "create", name)
        check_key_name(name)
        body = await self._json(request)
        kty = str(body.get("kty", ""))
        if kty in keys.RSA_KEY_TYPES:
            size = int(body.get("key_size") or 2048)
            if size not in keys.RSA_SIZES:
                raise bad(f"Invalid key size {size}; RSA keys are 2048, 3072 or 4096 bits.")
            exponent = int(body.get("public_exponent") or 65537)
            default_ops = keys.RSA_DEFAULT_OPS
        elif kty in keys.OCT_KEY_TYPES:
            if not vault.managed_hsm:
                raise bad(f"Key type {kty} is only supported by Managed HSM.")
            size = int(body.get("key_size") or 256)
            if size not in keys.OCT_SIZES:
                raise bad(f"Invalid key size {size}; AES keys are 128, 192 or 256 bits.")
            exponent = 0
            default_ops = keys.OCT_DEFAULT_OPS
        else:
            raise bad(f"Key type '{kty}' is not supported by the emulator.")
        if vault.managed_hsm and kty == "RSA":
            kty = "RSA-HSM"  # Managed HSM keys are always HSM-protected
        self._check_name_free(vault, name)
        if kty in keys.OCT_KEY_TYPES:
            private = keys.generate_oct_hex(size)
        else:
            loop = asyncio.get_running_loop()
            private = await loop.run_in_executor(None, keys.generate_rsa_pem, size, exponent)
        self._check_name_free(vault, name)  # re-check: generation awaited
        attrs = body.get("attributes") or {}
        version = self.add_version(
            vault,
            name,
            kty=kty,
            size=size,
            private=private,
            key_ops=list(body.get("key_ops") or default_ops),
            attrs=attrs,
            tags=body.get("tags") or {},
        )
        key = vault.keys[name]
        request[CTX].version = version.version
        return web.json_response(self.bundle(vault, key, version))

    def _check_name_free(self, vault: Vault, name: str) -> None:
        if name in vault.deleted_keys:
            raise KvError(
                409,
                "Conflict",
                f"Key {name} is currently in a deleted but recoverable state, and its name "
                "cannot be reused; in this state, the key can only be recovered or purged.",
            )

    def add_version(
        self,
        vault: Vault,
        name: str,
        *,
        kty: str,
        size: int,
        private: str,
        key_ops: list[str],
        attrs: dict[str, Any],
        tags: dict[str, str],
    ) -> KeyVersion:
        """Append a version (creating the key if needed), publish KeyNewVersionCreated."""
        now = self.state.clock.now()
        version = KeyVersion(
            version=keys.new_version(),
            kty=kty,
            key_size=size,
            key_ops=key_ops,
            private=private,
            enabled=bool(attrs.get("enabled", True)),
            not_before=_opt_time(attrs.get("nbf")),
            expires=_opt_time(attrs.get("exp")),
            created=now,
            updated=now,
            tags={str(k): str(v) for k, v in tags.items()},
            exportable=bool(attrs.get("exportable", False)),
        )
        key = vault.keys.get(name)
        if key is None:
            key = vault.keys[name] = Key(name=name)
        key.versions.append(version)
        publish_new_version(self.state, vault, key, version)
        self.state.changed()
        return version

    async def import_key(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "import", name)
        check_key_name(name)
        body = await self._json(request)
        jwk = body.get("key")
        if not isinstance(jwk, dict):
            raise bad("The 'key' parameter is required.")
        kty = str(jwk.get("kty", ""))
        hsm = bool(body.get("Hsm") or body.get("hsm"))
        try:
            if kty in ("RSA", "RSA-HSM"):
                private, size = keys.rsa_pem_from_jwk(jwk)
                kty = "RSA-HSM" if (hsm or kty == "RSA-HSM" or vault.managed_hsm) else "RSA"
                default_ops = keys.RSA_DEFAULT_OPS
            elif kty in ("oct", "oct-HSM") and vault.managed_hsm:
                raw = keys.b64_any(str(jwk.get("k", "")))
                if len(raw) * 8 not in keys.OCT_SIZES:
                    raise bad("AES keys are 128, 192 or 256 bits.")
                private, size, kty = raw.hex(), len(raw) * 8, "oct-HSM"
                default_ops = keys.OCT_DEFAULT_OPS
            else:
                raise bad(f"Key type '{kty}' cannot be imported here.")
        except keys.CryptoInputError as err:
            raise bad(str(err)) from None
        self._check_name_free(vault, name)
        version = self.add_version(
            vault,
            name,
            kty=kty,
            size=size,
            private=private,
            key_ops=list(jwk.get("key_ops") or default_ops),
            attrs=body.get("attributes") or {},
            tags=body.get("tags") or {},
        )
        request[CTX].version = version.version
        return web.json_response(self.bundle(vault, vault.keys[name], version))

    async def rotate(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "rotate", name)
        version = await self.rotate_key(vault, name)
        request[CTX].version = version.version
        return web.json_response(self.bundle(vault, vault.keys[name], version))

    async def rotate_key(self, vault: Vault, name: str) -> KeyVersion:
        """A new version like the current one (type, size, ops, tags); expiry per policy."""
        current = self._key(vault, name).current
        if current.kty in keys.OCT_KEY_TYPES:
            private = keys.generate_oct_hex(current.key_size)
        else:
            loop = asyncio.get_running_loop()
            private = await loop.run_in_executor(
                None, keys.generate_rsa_pem, current.key_size, 65537
            )
        key = self._key(vault, name)  # still there after the await?
        attrs: dict[str, Any] = {}
        expires = expiry_from_policy(key.rotation_policy, self.state.clock.now())
        if expires is not None:
            attrs["exp"] = expires
        return self.add_version(
            vault,
            name,
            kty=key.current.kty,
            size=key.current.key_size,
            private=private,
            key_ops=list(key.current.key_ops),
            attrs=attrs,
            tags=dict(key.current.tags),
        )

    async def get_key(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        key = vault.keys.get(name)
        requested = request.match_info.get("version") or None
        version = None
        if key is not None and key.versions:
            version = key.version(requested.lower()) if requested else key.current
        self._gate(request, "get", name, version)
        key = self._key(vault, name)
        version = self._version(key, requested)
        # A disabled version is still readable: 200 with ``attributes.enabled: false`` (keys,
        # unlike secrets, whose GET is refused with SecretDisabled).
        return web.json_response(self.bundle(vault, key, version))

    async def update(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "update", name)
        body = await self._json(request)
        key = self._key(vault, name)
        version = self._version(key, request.match_info.get("version") or None)
        request[CTX].version = version.version
        attrs = body.get("attributes") or {}
        if "enabled" in attrs and attrs["enabled"] is not None:
            version.enabled = bool(attrs["enabled"])
        if "nbf" in attrs:
            version.not_before = _opt_time(attrs["nbf"])
        if "exp" in attrs:
            version.expires = _opt_time(attrs["exp"])
            version.near_expiry_notified = False
            version.expired_notified = False
        if body.get("key_ops") is not None:
            version.key_ops = [str(op) for op in body["key_ops"]]
        if body.get("tags") is not None:
            version.tags = {str(k): str(v) for k, v in body["tags"].items()}
        version.updated = self.state.clock.now()
        self.state.changed()
        return web.json_response(self.bundle(vault, key, version))

    async def delete(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "delete", name)
        key = self._key(vault, name)
        del vault.keys[name]
        now = self.state.clock.now()
        if vault.enable_soft_delete:
            key.deleted_at = now
            key.scheduled_purge = now + vault.soft_delete_retention_days * 86400
            vault.deleted_keys[name] = key
            body = self._deleted_bundle(vault, key)
        else:
            body = self.bundle(vault, key, key.current)
            self._forget(key)
        self.state.changed()
        return web.json_response(body)

    def _forget(self, key: Key) -> None:
        for v in key.versions:
            self.cache.forget(v.version)

    def _deleted(self, vault: Vault, name: str) -> Key | None:
        """The soft-deleted key ``name`` once its deletion has completed (see
        ``Vault.deletion_lag_seconds``); until then it is in neither collection."""
        key = vault.deleted_keys.get(name)
        if key is None or not key.deletion_complete(
            self.state.clock.now(), vault.deletion_lag_seconds
        ):
            return None
        return key

    async def get_deleted(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "getdeleted", name)
        key = self._deleted(vault, name)
        if key is None:
            raise KvError(404, "KeyNotFound", f"Deleted Key not found: {name}")
        return web.json_response(self._deleted_bundle(vault, key))

    async def recover(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "recover", name)
        key = self._deleted(vault, name)
        if key is None:
            raise KvError(404, "KeyNotFound", f"Deleted Key not found: {name}")
        del vault.deleted_keys[name]
        key.deleted_at = None
        key.scheduled_purge = None
        vault.keys[name] = key
        self.state.changed()
        return web.json_response(self.bundle(vault, key, key.current))

    async def purge(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "purge", name)
        if self._deleted(vault, name) is None:
            raise KvError(404, "KeyNotFound", f"Deleted Key not found: {name}")
        if vault.enable_purge_protection:
            raise KvError(
                403,
                "Forbidden",
                'Operation "purge" is not allowed because purge protection is enabled for this '
                "vault. Key Vault service will automatically purge it after the retention period "
                "has passed.",
                "PurgeProtectionEnabled",
            )
        self._forget(vault.deleted_keys.pop(name))
        self.state.changed()
        return web.Response(status=204)

    # --- listing ---------------------------------------------------------------------------

    def _page(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        try:
            size = min(max(int(request.query.get("maxresults", "25")), 1), 25)
            start = max(int(request.query.get("$skiptoken", "0")), 0)
        except ValueError:
            raise bad("maxresults and $skiptoken must be integers.") from None
        page = items[start : start + size]
        next_link = None
        foreign = self.runtime(request[CTX].vault.name).faults.next_link_origin
        if start + size < len(items) or foreign:
            # ``foreign``: injected (see faults.py); Key Vault names its own host.
            base = f"{foreign or request[CTX].vault.url}{request.path}"
            api = request.query.get("api-version", "2025-07-01")
            next_link = f"{base}?api-version={api}&$skiptoken={start + size}&maxresults={size}"
        return web.json_response({"value": page, "nextLink": next_link})

    def _item(self, vault: Vault, key: Key, v: KeyVersion, versioned: bool) -> dict[str, Any]:
        item: dict[str, Any] = {
            "kid": self._key_id(vault, key.name, v.version if versioned else None),
            "attributes": self._attributes(vault, v),
        }
        if v.tags:
            item["tags"] = dict(v.tags)
        return item

    async def list_keys(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        self._gate(request, "list", None)
        items = [
            self._item(vault, k, k.current, versioned=False)
            for k in sorted(vault.keys.values(), key=lambda k: k.name.lower())
            if k.versions
        ]
        return self._page(request, items)

    async def list_versions(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "listversions", name)
        # An unknown (or deleted) key is not a 404 here: the service answers an empty page.
        key = vault.keys.get(name)
        items: list[dict[str, Any]] = []
        if key is not None:
            items = [self._item(vault, key, v, versioned=True) for v in key.versions]
        return self._page(request, items)

    async def list_deleted(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        self._gate(request, "listdeleted", None)
        items = []
        now = self.state.clock.now()
        for key in sorted(vault.deleted_keys.values(), key=lambda k: k.name.lower()):
            if not key.deletion_complete(now, vault.deletion_lag_seconds):
                continue
            item = self._item(vault, key, key.current, versioned=False)
            item["recoveryId"] = f"{vault.url}/deletedkeys/{key.name}"
            if key.deleted_at is not None:
                item["deletedDate"] = int(key.deleted_at)
            if key.scheduled_purge is not None:
                item["scheduledPurgeDate"] = int(key.scheduled_purge)
            items.append(item)
        return self._page(request, items)

    # --- rotation policy -------------------------------------------------------------------

    def _policy_body(self, vault: Vault, key: Key) -> dict[str, Any]:
        policy = key.rotation_policy or default_rotation_policy()
        body = {"id": f"{vault.url}/keys/{key.name}/rotationpolicy"}
        body.update(policy)
        return body

    async def get_rotation_policy(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "getrotationpolicy", name)
        return web.json_response(self._policy_body(vault, self._key(vault, name)))

    async def set_rotation_policy(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        self._gate(request, "setrotationpolicy", name)
        body = await self._json(request)
        key = self._key(vault, name)
        actions = body.get("lifetimeActions") or []
        if not isinstance(actions, list):
            raise bad("lifetimeActions must be a list.")
        for action in actions:
            validate_policy_action(action)
        attributes = dict(body.get("attributes") or {})
        if attributes.get("expiryTime") is not None:
            duration(attributes["expiryTime"], "expiryTime")
        now = int(self.state.clock.now())
        created = (key.rotation_policy or {}).get("attributes", {}).get("created", now)
        attributes.update({"created": created, "updated": now})
        key.rotation_policy = {"lifetimeActions": actions, "attributes": attributes}
        self.state.changed()
        return web.json_response(self._policy_body(vault, key))

    # --- cryptography ----------------------------------------------------------------------

    async def crypto(self, request: web.Request) -> web.StreamResponse:
        vault = request[CTX].vault
        name = self._name(request)
        op = {
            "wrapkey": "wrapKey",
            "unwrapkey": "unwrapKey",
            "encrypt": "encrypt",
            "decrypt": "decrypt",
            "sign": "sign",
            "verify": "verify",
        }.get(request.match_info["op"].lower())
        if op is None:
            raise KvError(404, "NotFound", "The requested operation does not exist.")
        key = vault.keys.get(name)
        requested = request.match_info.get("version") or None
        version = None
        if key is not None and key.versions:
            version = key.version(requested.lower()) if requested else key.current
        self._gate(request, op, name, version)
        key = self._key(vault, name)
        version = self._version(key, requested)
        request[CTX].version = version.version
        check_usable(version, op, self.state.clock.now())
        body = await self._json(request)
        alg = str(body.get("alg", ""))
        if "value" not in body:
            raise bad("The 'value' parameter is required.")
        value = base64url_field(body, "value")
        kid = self._key_id(vault, name, version.version)
        try:
            if op == "sign":
                return web.json_response(
                    {"kid": kid, "value": keys.b64url(keys.sign(version, self.cache, alg, value))}
                )
            if op == "verify":
                digest = base64url_field(body, "digest")
                valid = keys.verify(version, self.cache, alg, digest, value)
                return web.json_response({"value": valid})
            result = keys.apply(version, self.cache, op, alg, value)
        except keys.CryptoInputError as err:
            raise bad(str(err)) from None
        return web.json_response({"kid": kid, "value": keys.b64url(result)})


def _opt_time(value: Any) -> float | None:
    if value is None:
        return None
    return float(value)
