"""Microsoft.KeyVault/vaults on the emulator's ARM surface (azure-mgmt-keyvault 14.1).

The vault objects are the shared ``state.Vault``: a policy removed or an RBAC switch made here
is what the data plane checks on its next request. Shapes follow
``../shared/specs/arm/keyvault/`` (``vaultUri`` is the vault's emulated data-plane origin).

Writes emit what Azure emits: ``Microsoft.KeyVault.VaultAccessPolicyChanged`` on the vault's
topic when its access policies change or it switches to or from RBAC, and
``Microsoft.Resources.ResourceWriteSuccess`` / ``ResourceDeleteSuccess`` on the subscription
(and resource group) topics.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from devtools.emulator.arm_common import (
    ArmError,
    Call,
    Dispatcher,
    iso,
    not_found,
    publish_resource_event,
)
from devtools.emulator.state import AccessPolicy, EmulatorState, Vault

RESOURCE_TYPE = "Microsoft.KeyVault/vaults"
#: azure-mgmt-keyvault 14.1.0 sends 2026-05-15; the stable versions before it are accepted too.
API_VERSIONS = frozenset(
    {"2026-05-15", "2025-05-01", "2024-11-01", "2023-07-01", "2023-02-01", "2022-07-01"}
)
#: ``vaults.list()`` goes through the generic resources API.
RESOURCES_API_VERSIONS = frozenset({"2015-11-01", "2021-04-01"})
ACCESS_POLICY_EVENT = "Microsoft.KeyVault.VaultAccessPolicyChanged"

#: Canonical spelling of permissions (the SDK's enums); the state keeps them lower-case.
_PERMISSION_NAMES = (
    "all encrypt decrypt wrapKey unwrapKey sign verify get list create update import delete "
    "backup restore recover purge release rotate getrotationpolicy setrotationpolicy set "
    "managecontacts getissuers listissuers setissuers deleteissuers manageissuers"
)
_CANONICAL = {p.lower(): p for p in _PERMISSION_NAMES.split(" ")}


def _permissions_json(permissions: list[str]) -> list[str]:
    return [_CANONICAL.get(p.lower(), p) for p in permissions]


def _policy_json(policy: AccessPolicy) -> dict[str, Any]:
    return {
        "tenantId": policy.tenant_id,
        "objectId": policy.object_id,
        "permissions": {
            "keys": _permissions_json(policy.keys),
            "secrets": _permissions_json(policy.secrets),
            "certificates": _permissions_json(policy.certificates),
        },
    }


def _policy_from(raw: Any, tenant_id: str) -> AccessPolicy:
    if not isinstance(raw, dict) or not raw.get("objectId"):
        raise ArmError(400, "BadRequest", "Each access policy needs an objectId and permissions.")
    permissions = raw.get("permissions") or {}
    if not isinstance(permissions, dict):
        raise ArmError(400, "BadRequest", "Access policy permissions must be an object.")

    def _names(kind: str) -> list[str]:
        return [str(p).lower() for p in permissions.get(kind) or []]

    return AccessPolicy(
        object_id=str(raw["objectId"]),
        tenant_id=str(raw.get("tenantId") or tenant_id),
        keys=_names("keys"),
        secrets=_names("secrets"),
        certificates=_names("certificates"),
    )


def _policies_key(
    vault: Vault,
) -> list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    return sorted(
        (
            p.object_id,
            tuple(sorted(p.keys)),
            tuple(sorted(p.secrets)),
            tuple(sorted(p.certificates)),
        )
        for p in vault.access_policies
    )


def _network_acls(raw: dict[str, Any]) -> dict[str, Any]:
    """``networkAcls`` as ARM returns it: every field present, defaults filled in."""
    return {
        "bypass": str(raw.get("bypass") or "AzureServices"),
        "defaultAction": str(raw.get("defaultAction") or "Allow"),
        "ipRules": [{"value": str(r.get("value"))} for r in raw.get("ipRules") or []],
        "virtualNetworkRules": [
            {"id": str(r.get("id")), "ignoreMissingVnetServiceEndpoint": False}
            for r in raw.get("virtualNetworkRules") or []
        ],
    }


class VaultsProvider:
    """Routes and handlers for vaults; ``extras`` keeps what ``state.Vault`` has no field for."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        #: ARM id (lower-case) -> extra ARM properties and systemData.
        self.extras: dict[str, dict[str, Any]] = {}

    def register(self, dispatcher: Dispatcher) -> None:
        base = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults"
        add = dispatcher.add
        add("GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults", self.list_sub,
            API_VERSIONS, RESOURCE_TYPE)  # fmt: skip
        add("GET", "/subscriptions/{sub}/resources", self.list_resources,
            RESOURCES_API_VERSIONS, "Microsoft.Resources/resources")  # fmt: skip
        add("GET", base, self.list_group, API_VERSIONS, RESOURCE_TYPE)
        add("GET PUT PATCH DELETE", base + "/{name}", self.vault, API_VERSIONS, RESOURCE_TYPE)
        add("PUT", base + "/{name}/accessPolicies/{kind}", self.access_policies,
            API_VERSIONS, RESOURCE_TYPE)  # fmt: skip

    # --- rendering ------------------------------------------------------------------------

    def to_json(self, vault: Vault) -> dict[str, Any]:
        extra = self.extras.get(vault.arm_id.lower(), {})
        created = float(extra.get("created", 0.0))
        modified = float(extra.get("modified", created))
        properties: dict[str, Any] = {
            "sku": {"family": "A", "name": vault.sku},
            "tenantId": vault.tenant_id,
            "accessPolicies": [_policy_json(p) for p in vault.access_policies],
            "enabledForDeployment": bool(extra.get("enabledForDeployment", False)),
            "enabledForDiskEncryption": bool(extra.get("enabledForDiskEncryption", False)),
            "enabledForTemplateDeployment": bool(extra.get("enabledForTemplateDeployment", False)),
            "enableSoftDelete": vault.enable_soft_delete,
            "softDeleteRetentionInDays": vault.soft_delete_retention_days,
            "enableRbacAuthorization": vault.enable_rbac_authorization,
            "vaultUri": vault.url + "/",
            "provisioningState": "Succeeded",
            "publicNetworkAccess": str(extra.get("publicNetworkAccess", "Enabled")),
        }
        # Azure leaves enablePurgeProtection out (null) until it is switched on.
        if vault.enable_purge_protection:
            properties["enablePurgeProtection"] = True
        # Network rules (Microsoft.KeyVault 2023-07-01 ``NetworkRuleSet``), when set, and the
        # private endpoint connections the control API made (``arm_access``).
        if isinstance(extra.get("networkAcls"), dict):
            properties["networkAcls"] = _network_acls(extra["networkAcls"])
        if extra.get("privateEndpointConnections"):
            properties["privateEndpointConnections"] = list(extra["privateEndpointConnections"])
        return {
            "id": vault.arm_id,
            "name": vault.name,
            "type": RESOURCE_TYPE,
            "location": vault.location,
            "tags": dict(vault.tags),
            "systemData": {
                "createdBy": extra.get("createdBy", ""),
                "createdByType": "Application",
                "createdAt": iso(created) if created else None,
                "lastModifiedBy": extra.get("modifiedBy", ""),
                "lastModifiedByType": "Application",
                "lastModifiedAt": iso(modified) if modified else None,
            },
            "properties": properties,
        }

    def _find(self, call: Call) -> Vault:
        name = call.params["name"]
        vault = self.state.vaults.get(name)
        if (
            vault is None
            or vault.managed_hsm
            or vault.subscription_id.lower() != call.subscription_id.lower()
            or vault.resource_group.lower() != call.params["rg"].lower()
        ):
            raise not_found(RESOURCE_TYPE, name, call.params["rg"])
        return vault

    def _in_subscription(self, call: Call) -> list[Vault]:
        return [
            v
            for v in self.state.vaults.values()
            if not v.managed_hsm and v.subscription_id.lower() == call.subscription_id.lower()
        ]

    # --- reads ----------------------------------------------------------------------------

    async def list_sub(self, call: Call) -> web.Response:
        return web.json_response({"value": [self.to_json(v) for v in self._in_subscription(call)]})

    async def list_resources(self, call: Call) -> web.Response:
        """``GET /subscriptions/{id}/resources``: only the Key Vault filter is supported."""
        wanted = call.request.query.get("$filter", "").replace(" ", "").lower()
        if wanted and wanted != "resourcetypeeq'microsoft.keyvault/vaults'":
            raise ArmError(
                400, "InvalidFilter", "Only resourceType eq 'Microsoft.KeyVault/vaults'."
            )
        value = [
            {
                "id": v.arm_id,
                "name": v.name,
                "type": RESOURCE_TYPE,
                "location": v.location,
                "tags": dict(v.tags),
            }
            for v in self._in_subscription(call)
        ]
        return web.json_response({"value": value})

    async def list_group(self, call: Call) -> web.Response:
        group = call.params["rg"].lower()
        vaults = [v for v in self._in_subscription(call) if v.resource_group.lower() == group]
        return web.json_response({"value": [self.to_json(v) for v in vaults]})

    # --- writes ---------------------------------------------------------------------------

    async def vault(self, call: Call) -> web.Response:
        method = call.request.method
        if method == "GET":
            return web.json_response(self.to_json(self._find(call)))
        if method == "DELETE":
            return await self._delete(call)
        body = await call.body()
        if method == "PUT":
            return await self._put(call, body)
        return await self._patch(call, body)

    def _touch(self, call: Call, vault: Vault, *, created: bool) -> None:
        extra = self.extras.setdefault(vault.arm_id.lower(), {})
        now = self.state.clock.now()
        if created or "created" not in extra:
            extra["created"] = now
            extra["createdBy"] = call.caller.app_id
        extra["modified"] = now
        extra["modifiedBy"] = call.caller.app_id

    def _apply_properties(self, vault: Vault, properties: dict[str, Any], *, full: bool) -> None:
        """Set vault properties from an ARM body; ``full`` (PUT) resets what is absent."""
        extra = self.extras.setdefault(vault.arm_id.lower(), {})
        if "accessPolicies" in properties or full:
            vault.access_policies = [
                _policy_from(p, vault.tenant_id) for p in properties.get("accessPolicies") or []
            ]
        if "enableRbacAuthorization" in properties or full:
            vault.enable_rbac_authorization = bool(properties.get("enableRbacAuthorization"))
        if "enableSoftDelete" in properties and properties["enableSoftDelete"] is not None:
            wanted = bool(properties["enableSoftDelete"])
            if vault.enable_soft_delete and not wanted:
                raise ArmError(
                    400,
                    "BadRequest",
                    'The property "enableSoftDelete" has been set to true for this vault. It '
                    "cannot be reverted to false.",
                )
            vault.enable_soft_delete = wanted
        if (
            "enablePurgeProtection" in properties
            and properties["enablePurgeProtection"] is not None
        ):
            wanted = bool(properties["enablePurgeProtection"])
            if vault.enable_purge_protection and not wanted:
                raise ArmError(
                    400,
                    "BadRequest",
                    'The property "enablePurgeProtection" cannot be set to false. Enabling the '
                    "purge protection for a vault is an irreversible action.",
                )
            if wanted and not vault.enable_soft_delete:
                raise ArmError(
                    400,
                    "BadRequest",
                    "Purge protection can only be enabled on a vault with soft delete enabled.",
                )
            vault.enable_purge_protection = wanted
        if properties.get("softDeleteRetentionInDays") is not None:
            days = int(properties["softDeleteRetentionInDays"])
            if not 7 <= days <= 90:
                raise ArmError(
                    400, "BadRequest", "softDeleteRetentionInDays must be between 7 and 90."
                )
            vault.soft_delete_retention_days = days
        sku = properties.get("sku")
        if isinstance(sku, dict) and sku.get("name"):
            vault.sku = str(sku["name"]).lower()
        if properties.get("tenantId"):
            vault.tenant_id = str(properties["tenantId"])
        for flag in (
            "enabledForDeployment",
            "enabledForDiskEncryption",
            "enabledForTemplateDeployment",
            "publicNetworkAccess",
            "networkAcls",
        ):
            if flag in properties:
                extra[flag] = properties[flag]
        if str(extra.get("publicNetworkAccess", "enabled")).lower() not in ("enabled", "disabled"):
            raise ArmError(
                400,
                "BadRequest",
                "publicNetworkAccess must be 'Enabled' or 'Disabled'.",
            )

    def _policy_changed(self, vault: Vault) -> None:
        """``VaultAccessPolicyChanged``: the Key Vault payload shape, naming the vault."""
        self.state.events.publish(
            vault.arm_id,
            ACCESS_POLICY_EVENT,
            vault.name,
            {
                "Id": vault.url + "/",
                "VaultName": vault.name,
                "ObjectType": "Vault",
                "ObjectName": vault.name,
                "Version": None,
                "NBF": None,
                "EXP": None,
            },
        )

    def _announce(self, call: Call, vault: Vault, before: tuple[bool, Any] | None) -> None:
        after = (vault.enable_rbac_authorization, _policies_key(vault))
        if before is not None and before != after:
            self._policy_changed(vault)
        publish_resource_event(
            self.state,
            call,
            deleted=False,
            resource_uri=vault.arm_id,
            operation_name="Microsoft.KeyVault/vaults/write",
        )

    async def _put(self, call: Call, body: dict[str, Any]) -> web.Response:
        name = call.params["name"]
        properties = body.get("properties")
        if not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required.")
        if (
            not isinstance(properties, dict)
            or not properties.get("tenantId")
            or not isinstance(properties.get("sku"), dict)
        ):
            raise ArmError(
                400, "BadRequest", "properties.tenantId and properties.sku are required."
            )
        existing = self.state.vaults.get(name)
        if existing is not None:
            if (
                existing.subscription_id.lower() != call.subscription_id.lower()
                or existing.resource_group.lower() != call.params["rg"].lower()
            ):
                raise ArmError(
                    409, "VaultAlreadyExists", f"The vault name '{name}' is already in use."
                )
            vault = self._find(call)
            before: tuple[bool, Any] | None = (
                vault.enable_rbac_authorization,
                _policies_key(vault),
            )
            self._apply_properties(vault, properties, full=True)
            vault.tags = {str(k): str(v) for k, v in (body.get("tags") or {}).items()}
            status = 200
        else:
            vault = Vault(
                name=name,
                subscription_id=call.subscription_id,
                resource_group=call.params["rg"],
                location=str(body["location"]).replace(" ", "").lower(),
                tenant_id=str(properties["tenantId"]),
                enable_purge_protection=False,
            )
            self._apply_properties(vault, properties, full=True)
            vault.tags = {str(k): str(v) for k, v in (body.get("tags") or {}).items()}
            self.state.add_vault(vault)
            before = (False, [])
            status = 201
        self._touch(call, vault, created=status == 201)
        self.state.changed()
        self._announce(call, vault, before)
        return web.json_response(self.to_json(vault), status=status)

    async def _patch(self, call: Call, body: dict[str, Any]) -> web.Response:
        vault = self._find(call)
        before = (vault.enable_rbac_authorization, _policies_key(vault))
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise ArmError(400, "BadRequest", "properties must be an object.")
        self._apply_properties(vault, properties, full=False)
        if "tags" in body and body["tags"] is not None:
            vault.tags = {str(k): str(v) for k, v in body["tags"].items()}
        self._touch(call, vault, created=False)
        self.state.changed()
        self._announce(call, vault, before)
        return web.json_response(self.to_json(vault))

    async def _delete(self, call: Call) -> web.Response:
        name = call.params["name"]
        vault = self.state.vaults.get(name)
        if vault is None:
            return web.Response(status=204)
        vault = self._find(call)
        # Removing it from the state is enough: the server stops its port (``_reconcile``).
        del self.state.vaults[name]
        self.state.changed()
        self.extras.pop(vault.arm_id.lower(), None)
        publish_resource_event(
            self.state,
            call,
            deleted=True,
            resource_uri=vault.arm_id,
            operation_name="Microsoft.KeyVault/vaults/delete",
        )
        return web.Response(status=200)

    async def access_policies(self, call: Call) -> web.Response:
        """``PUT .../accessPolicies/{add|replace|remove}``: merge, overwrite or subtract."""
        vault = self._find(call)
        kind = call.params["kind"].lower()
        if kind not in ("add", "replace", "remove"):
            raise ArmError(
                400,
                "BadRequest",
                f"The access policy update kind '{call.params['kind']}' is not valid; use add, "
                "replace or remove.",
            )
        body = await call.body()
        raw = (body.get("properties") or {}).get("accessPolicies")
        if not isinstance(raw, list):
            raise ArmError(400, "BadRequest", "properties.accessPolicies is required.")
        before = (vault.enable_rbac_authorization, _policies_key(vault))
        submitted = [_policy_from(p, vault.tenant_id) for p in raw]
        for policy in submitted:
            _apply_policy(vault, policy, kind)
        self._touch(call, vault, created=False)
        self.state.changed()
        after = (vault.enable_rbac_authorization, _policies_key(vault))
        if before != after:
            self._policy_changed(vault)
        publish_resource_event(
            self.state,
            call,
            deleted=False,
            resource_uri=f"{vault.arm_id}/accessPolicies/{kind}",
            operation_name="Microsoft.KeyVault/vaults/accessPolicies/write",
        )
        return web.json_response(
            {
                "id": f"{vault.arm_id}/accessPolicies/{kind}",
                "name": kind,
                "type": "Microsoft.KeyVault/vaults/accessPolicies",
                "location": vault.location,
                "properties": {"accessPolicies": [_policy_json(p) for p in submitted]},
            }
        )


def _apply_policy(vault: Vault, policy: AccessPolicy, kind: str) -> None:
    """Azure's semantics per principal: add = union, replace = overwrite, remove = subtract
    (an entry left with no permission at all is removed)."""
    current = next((p for p in vault.access_policies if p.object_id == policy.object_id), None)
    if kind == "replace" or (kind == "add" and current is None):
        if current is not None:
            vault.access_policies.remove(current)
        if kind == "replace" or policy.keys or policy.secrets or policy.certificates:
            vault.access_policies.append(policy)
        return
    if current is None:
        return
    for attr in ("keys", "secrets", "certificates"):
        have: list[str] = getattr(current, attr)
        given: list[str] = getattr(policy, attr)
        if kind == "add":
            setattr(current, attr, have + [p for p in given if p not in have])
        else:
            setattr(current, attr, [p for p in have if p not in given])
    if kind == "remove" and not (current.keys or current.secrets or current.certificates):
        vault.access_policies.remove(current)
