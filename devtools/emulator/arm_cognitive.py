"""Microsoft.CognitiveServices/accounts on the emulator's ARM surface
(azure-mgmt-cognitiveservices 14.1, api-version 2025-09-01).

Create (PUT) and update (PATCH) are long-running, as in Azure: PUT answers 201 (new) or 200
with a non-terminal ``provisioningState`` and an ``Azure-AsyncOperation`` header; PATCH
answers 202 with ``Azure-AsyncOperation`` and ``Location``. The operation finishes
``operationSeconds`` later (0 by default: the SDK poller's first poll sees ``Succeeded``),
and only then does a PATCH's change become visible and ``ResourceWriteSuccess`` go out.

``properties.encryption`` is stored as written. Azure also checks, when the key source is
Key Vault, that the account's identity can reach the key (get, wrapKey, unwrapKey) and that
the vault has soft delete and purge protection; the emulator does not (see
``docs/emulator-arm-eventgrid.md``) beyond requiring an identity and the key's name and vault.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from devtools.emulator.arm_common import (
    ArmError,
    Call,
    Dispatcher,
    iso,
    not_found,
    publish_resource_event,
)
from devtools.emulator.state import CognitiveAccount, EmulatorState, Principal

RESOURCE_TYPE = "Microsoft.CognitiveServices/accounts"
API_VERSIONS = frozenset(
    {"2025-09-01", "2025-06-01", "2025-04-01-preview", "2024-10-01", "2023-05-01", "2022-12-01"}
)
KEY_SOURCES = ("Microsoft.CognitiveServices", "Microsoft.KeyVault")
#: Properties the emulator derives itself; a body cannot set them.
_READ_ONLY = {"provisioningState", "endpoint", "dateCreated", "internalId", "encryption"}


class HasIdentity(Protocol):
    """A resource with a managed identity (a Cognitive Services or storage account)."""

    name: str
    identity: dict[str, Any]


@dataclass
class LroSettings:
    #: Seconds an operation stays in progress (real time).
    operation_seconds: float = 0.0
    #: ``Retry-After`` sent with operation responses; None sends none.
    retry_after: str | None = "1"
    #: Fault injection, not ARM behaviour: account listings name a ``nextLink`` on this
    #: origin (``https://host:port``), as a tampered answer might. None: ARM's own paging.
    next_link_origin: str | None = None


@dataclass
class Operation:
    id: str
    account: str
    subscription_id: str
    location: str
    started: float
    patch: dict[str, Any] | None = None
    status: str = "InProgress"
    ended: float | None = None
    call: Call | None = field(default=None, repr=False)


class AccountsProvider:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.settings = LroSettings()
        self.operations: dict[str, Operation] = {}
        #: account ARM id (lower-case) -> etag, created, extra properties.
        self.extras: dict[str, dict[str, Any]] = {}
        #: user-assigned identity ARM id (lower-case) -> its principal.
        self.user_identities: dict[str, Principal] = {}

    def register(self, dispatcher: Dispatcher) -> None:
        sub = "/subscriptions/{sub}"
        base = sub + "/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts"
        ops = sub + "/providers/Microsoft.CognitiveServices/locations/{location}"
        add = dispatcher.add
        add("GET", sub + "/providers/Microsoft.CognitiveServices/accounts", self.list_sub,
            API_VERSIONS, RESOURCE_TYPE)  # fmt: skip
        add("GET", base, self.list_group, API_VERSIONS, RESOURCE_TYPE)
        add("GET PUT PATCH DELETE", base + "/{name}", self.account, API_VERSIONS, RESOURCE_TYPE)
        add("GET", ops + "/operationStatuses/{op}", self.operation_status,
            API_VERSIONS, RESOURCE_TYPE)  # fmt: skip
        add("GET", ops + "/operationResults/{op}", self.operation_result,
            API_VERSIONS, RESOURCE_TYPE)  # fmt: skip

    # --- identities -----------------------------------------------------------------------

    def resolve_identity(
        self, account: HasIdentity, identity: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Fill in what ARM adds to ``identity``: principal and tenant ids, per-identity
        client ids. Each identity becomes a ``state.Principal`` so access policies and role
        assignments can name it and its tokens are recognised."""
        if not identity:
            return {}
        kind = str(identity.get("type") or "None")
        kinds = {k.strip().lower() for k in kind.split(",")}
        resolved: dict[str, Any] = {"type": kind}
        if "systemassigned" in kinds:
            principal_id = str(account.identity.get("principalId") or uuid.uuid4())
            principal = self.state.principals.get(principal_id) or Principal(
                object_id=principal_id, display_name=account.name
            )
            self.state.principals[principal_id] = principal
            resolved["principalId"] = principal_id
            resolved["tenantId"] = principal.tenant_id
        if "userassigned" in kinds:
            given = identity.get("userAssignedIdentities") or {}
            if not isinstance(given, dict) or not given:
                raise ArmError(
                    400,
                    "BadRequest",
                    "userAssignedIdentities is required when the identity type is UserAssigned.",
                )
            resolved["userAssignedIdentities"] = {}
            for identity_id in given:
                assigned = self.user_identities.get(identity_id.lower())
                if assigned is None:
                    assigned = Principal(
                        object_id=str(uuid.uuid4()), display_name=identity_id.rsplit("/", 1)[-1]
                    )
                    self.user_identities[identity_id.lower()] = assigned
                    self.state.principals[assigned.object_id] = assigned
                resolved["userAssignedIdentities"][identity_id] = {
                    "principalId": assigned.object_id,
                    "clientId": assigned.client_id,
                }
        return resolved if kinds - {"none"} else {"type": "None"}

    # --- rendering ------------------------------------------------------------------------

    def to_json(self, account: CognitiveAccount) -> dict[str, Any]:
        extra = self.extras.setdefault(account.arm_id.lower(), {})
        created = float(extra.setdefault("created", self.state.clock.now()))
        extra.setdefault("etag", f'"{uuid.uuid4()}"')
        extra.setdefault("internalId", uuid.uuid4().hex)
        subdomain = extra.get("properties", {}).get("customSubDomainName")
        endpoint = (
            f"https://{subdomain}.cognitiveservices.azure.com/"
            if subdomain
            else f"https://{account.location}.api.cognitive.microsoft.com/"
        )
        properties: dict[str, Any] = dict(extra.get("properties", {}))
        properties.update(
            {
                "endpoint": endpoint,
                "provisioningState": account.provisioning_state,
                "internalId": extra["internalId"],
                "dateCreated": iso(created),
                "publicNetworkAccess": properties.get("publicNetworkAccess", "Enabled"),
            }
        )
        if account.encryption is not None:
            properties["encryption"] = account.encryption
        body: dict[str, Any] = {
            "id": account.arm_id,
            "name": account.name,
            "type": RESOURCE_TYPE,
            "etag": extra["etag"],
            "location": account.location,
            "kind": account.kind,
            "sku": {"name": account.sku},
            "tags": dict(account.tags),
            "properties": properties,
            "systemData": {
                "createdBy": extra.get("createdBy", ""),
                "createdByType": "Application",
                "createdAt": iso(created),
                "lastModifiedBy": extra.get("modifiedBy", ""),
                "lastModifiedByType": "Application",
                "lastModifiedAt": iso(float(extra.get("modified", created))),
            },
        }
        if account.identity:
            body["identity"] = account.identity
        return body

    def _find(self, call: Call) -> CognitiveAccount:
        name = call.params["name"]
        account = self.state.accounts.get(name)
        if (
            account is None
            or account.subscription_id.lower() != call.subscription_id.lower()
            or account.resource_group.lower() != call.params["rg"].lower()
        ):
            raise not_found(RESOURCE_TYPE, name, call.params["rg"])
        return account

    # --- reads ----------------------------------------------------------------------------

    def _in_subscription(self, call: Call) -> list[CognitiveAccount]:
        sub = call.subscription_id.lower()
        return [a for a in self.state.accounts.values() if a.subscription_id.lower() == sub]

    async def list_sub(self, call: Call) -> web.Response:
        accounts = self._in_subscription(call)
        return self._page(call, {"value": [self.to_json(a) for a in accounts]})

    async def list_group(self, call: Call) -> web.Response:
        group = call.params["rg"].lower()
        accounts = [a for a in self._in_subscription(call) if a.resource_group.lower() == group]
        return self._page(call, {"value": [self.to_json(a) for a in accounts]})

    def _page(self, call: Call, page: dict[str, Any]) -> web.Response:
        foreign = self.settings.next_link_origin
        if foreign:  # injected (see LroSettings.next_link_origin)
            page["nextLink"] = f"{foreign.rstrip('/')}{call.request.path_qs}"
        return web.json_response(page)

    # --- writes ---------------------------------------------------------------------------

    def apply(
        self,
        account: CognitiveAccount,
        body: dict[str, Any],
        *,
        full: bool,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Write an ARM body onto ``account`` (``full``: PUT, else PATCH merge); ``extra``
        receives the properties kept beside the state object (default: the account's)."""
        if extra is None:
            extra = self.extras.setdefault(account.arm_id.lower(), {})
        if "kind" in body and body["kind"] and str(body["kind"]) != account.kind:
            raise ArmError(400, "CanNotUpdateKind", "The kind of an account cannot be changed.")
        sku = body.get("sku")
        if isinstance(sku, dict) and sku.get("name"):
            account.sku = str(sku["name"])
        if "tags" in body and body["tags"] is not None:
            account.tags = {str(k): str(v) for k, v in body["tags"].items()}
        elif full:
            account.tags = {}
        if "identity" in body and body["identity"] is not None:
            account.identity = self.resolve_identity(account, body["identity"])
        elif full:
            account.identity = {}
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise ArmError(400, "BadRequest", "properties must be an object.")
        if "encryption" in properties:
            account.encryption = _checked_encryption(properties["encryption"], account)
        elif full:
            account.encryption = None
        kept = {} if full else dict(extra.get("properties", {}))
        kept.update({k: v for k, v in properties.items() if k not in _READ_ONLY})
        extra["properties"] = kept
        extra["etag"] = f'"{uuid.uuid4()}"'

    def _touch(self, call: Call, account: CognitiveAccount, *, created: bool) -> None:
        extra = self.extras.setdefault(account.arm_id.lower(), {})
        now = self.state.clock.now()
        if created:
            extra["created"] = now
            extra["createdBy"] = call.caller.app_id
        extra["modified"] = now
        extra["modifiedBy"] = call.caller.app_id

    async def account(self, call: Call) -> web.StreamResponse:
        method = call.request.method
        if method == "GET":
            return web.json_response(self.to_json(self._find(call)))
        if method == "DELETE":
            return await self._delete(call)
        body = await call.body()
        if method == "PUT":
            return await self._put(call, body)
        return await self._patch(call, body)

    async def _put(self, call: Call, body: dict[str, Any]) -> web.Response:
        name = call.params["name"]
        existing = self.state.accounts.get(name)
        if existing is None:
            for needed in ("location", "kind", "sku"):
                if not body.get(needed):
                    raise ArmError(400, "BadRequest", f"The '{needed}' property is required.")
            account = CognitiveAccount(
                name=name,
                kind=str(body["kind"]),
                sku=str(body["sku"].get("name", "")) if isinstance(body["sku"], dict) else "",
                subscription_id=call.subscription_id,
                resource_group=call.params["rg"],
                location=str(body["location"]).replace(" ", "").lower(),
            )
            self.apply(account, body, full=True)
            account.provisioning_state = "Creating"
            self.state.accounts[name] = account
            self._touch(call, account, created=True)
            status = 201
        else:
            account = self._find(call)
            self._refuse_while_busy(account)
            self.apply(account, body, full=True)
            account.provisioning_state = "Accepted"
            self._touch(call, account, created=False)
            status = 200
        self.state.changed()
        operation = self._start(call, account, None)
        response = web.json_response(self.to_json(account), status=status)
        self._lro_headers(call, response, operation, location=False)
        return response

    async def _patch(self, call: Call, body: dict[str, Any]) -> web.Response:
        account = self._find(call)
        self._refuse_while_busy(account)
        # Validate now (ARM refuses a bad PATCH synchronously), apply when the operation ends.
        probe = CognitiveAccount(**{**account.__dict__, "identity": dict(account.identity)})
        scratch = dict(self.extras.get(account.arm_id.lower(), {}))
        self.apply(probe, body, full=False, extra=scratch)
        account.provisioning_state = "Accepted"
        operation = self._start(call, account, body)
        response = web.Response(status=202)
        self._lro_headers(call, response, operation, location=True)
        return response

    async def _delete(self, call: Call) -> web.Response:
        name = call.params["name"]
        if name not in self.state.accounts:
            return web.Response(status=204)
        account = self._find(call)
        del self.state.accounts[name]
        self.extras.pop(account.arm_id.lower(), None)
        self.state.changed()
        publish_resource_event(
            self.state,
            call,
            deleted=True,
            resource_uri=account.arm_id,
            operation_name="Microsoft.CognitiveServices/accounts/delete",
        )
        return web.Response(status=200)

    # --- long-running operations ----------------------------------------------------------

    def _refuse_while_busy(self, account: CognitiveAccount) -> None:
        """ARM refuses a write while the resource's provisioning state is not terminal."""
        if account.provisioning_state in ("Succeeded", "Failed", "Canceled"):
            return
        raise ArmError(
            409,
            "RequestConflict",
            f"Cannot modify resource with id '{account.arm_id}' because the resource entity "
            "provisioning state is not terminal. Please wait for the provisioning state to "
            "become terminal and then retry the request.",
        )

    def _start(
        self, call: Call, account: CognitiveAccount, patch: dict[str, Any] | None
    ) -> Operation:
        operation = Operation(
            id=str(uuid.uuid4()),
            account=account.name,
            subscription_id=account.subscription_id,
            location=account.location,
            started=self.state.clock.now(),
            patch=patch,
            call=call,
        )
        self.operations[operation.id] = operation
        asyncio.get_running_loop().call_later(
            max(0.0, self.settings.operation_seconds), self._finish, operation
        )
        return operation

    def _finish(self, operation: Operation) -> None:
        if operation.status != "InProgress":
            return
        account = self.state.accounts.get(operation.account)
        operation.ended = self.state.clock.now()
        if account is None:
            operation.status = "Canceled"
            return
        try:
            if operation.patch is not None:
                self.apply(account, operation.patch, full=False)
        except ArmError:
            account.provisioning_state = "Failed"
            operation.status = "Failed"
            self.state.changed()
            return
        account.provisioning_state = "Succeeded"
        operation.status = "Succeeded"
        if operation.call is not None:
            self._touch(operation.call, account, created=False)
            publish_resource_event(
                self.state,
                operation.call,
                deleted=False,
                resource_uri=account.arm_id,
                operation_name="Microsoft.CognitiveServices/accounts/write",
            )
            operation.call = None
        self.state.changed()

    def _operation_path(self, operation: Operation, kind: str) -> str:
        return (
            f"/subscriptions/{operation.subscription_id}/providers/Microsoft.CognitiveServices"
            f"/locations/{operation.location}/{kind}/{operation.id}"
        )

    def _lro_headers(
        self, call: Call, response: web.StreamResponse, operation: Operation, *, location: bool
    ) -> None:
        version = call.request.query.get("api-version", "")
        base = call.origin
        response.headers["Azure-AsyncOperation"] = (
            f"{base}{self._operation_path(operation, 'operationStatuses')}?api-version={version}"
        )
        if location:
            response.headers["Location"] = (
                f"{base}{self._operation_path(operation, 'operationResults')}?api-version={version}"
            )
        if self.settings.retry_after is not None:
            response.headers["Retry-After"] = self.settings.retry_after

    def _operation(self, call: Call) -> Operation:
        operation = self.operations.get(call.params["op"])
        if operation is None:
            raise ArmError(404, "OperationNotFound", "The operation was not found.")
        return operation

    async def operation_status(self, call: Call) -> web.Response:
        operation = self._operation(call)
        body: dict[str, Any] = {
            "id": self._operation_path(operation, "operationStatuses"),
            "name": operation.id,
            "status": operation.status,
            "startTime": iso(operation.started),
        }
        if operation.ended is not None:
            body["endTime"] = iso(operation.ended)
        if operation.status == "Failed":
            body["error"] = {"code": "Failed", "message": "The operation failed."}
        response = web.json_response(body)
        if operation.status == "InProgress" and self.settings.retry_after is not None:
            response.headers["Retry-After"] = self.settings.retry_after
        return response

    async def operation_result(self, call: Call) -> web.Response:
        operation = self._operation(call)
        if operation.status == "InProgress":
            response = web.Response(status=202)
            self._lro_headers(call, response, operation, location=True)
            return response
        account = self.state.accounts.get(operation.account)
        if account is None:
            return web.Response(status=204)
        return web.json_response(self.to_json(account))


def _checked_encryption(raw: Any, account: CognitiveAccount) -> dict[str, Any] | None:
    """Validate ``properties.encryption`` the way ARM does before storing it."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ArmError(400, "BadRequest", "properties.encryption must be an object.")
    source = raw.get("keySource") or "Microsoft.CognitiveServices"
    if source not in KEY_SOURCES:
        raise ArmError(
            400, "InvalidKeySource", f"keySource must be one of {', '.join(KEY_SOURCES)}."
        )
    encryption: dict[str, Any] = {"keySource": source}
    if source == "Microsoft.KeyVault":
        properties = raw.get("keyVaultProperties")
        if not isinstance(properties, dict) or not (
            properties.get("keyName") and properties.get("keyVaultUri")
        ):
            raise ArmError(
                400,
                "BadRequest",
                "keyVaultProperties with keyName and keyVaultUri is required when keySource is "
                "Microsoft.KeyVault.",
            )
        if not account.identity or account.identity.get("type", "None") == "None":
            raise ArmError(
                400,
                "BadRequest",
                "A managed identity is required to use a customer-managed key.",
            )
        client_id = properties.get("identityClientId")
        if client_id:
            known = {
                str(v.get("clientId"))
                for v in (account.identity.get("userAssignedIdentities") or {}).values()
            }
            if client_id not in known:
                raise ArmError(
                    400,
                    "BadRequest",
                    f"identityClientId '{client_id}' is not a user-assigned identity of the "
                    "account.",
                )
        encryption["keyVaultProperties"] = {
            k: properties[k]
            for k in ("keyName", "keyVersion", "keyVaultUri", "identityClientId")
            if properties.get(k) is not None
        }
    return encryption
