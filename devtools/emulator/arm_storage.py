"""Microsoft.Storage/storageAccounts on the emulator's ARM surface (azure-mgmt-storage 25.3,
api-version 2026-09-01, and earlier stable versions), as far as keyward uses them.

What keyward needs of a storage account is its customer-managed key: ``properties.encryption``
with ``keySource`` ``Microsoft.Keyvault`` and ``keyvaultproperties`` ``{keyvaulturi, keyname,
keyversion}`` (all lower-case in ARM's JSON, unlike Cognitive Services'
``keyVaultProperties``), the identity that reaches the key (``encryption.identity
.userAssignedIdentity``, else the system-assigned one), and its tags. An empty or absent
``keyversion`` means the account follows the key's latest version: Azure picks a new version
up only within a day, and says which version the account uses now in
``keyvaultproperties.currentVersionedKeyIdentifier`` (read-only, with
``lastKeyRotationTimestamp``; see docs/emulator.md). The emulator answers it for pinned
accounts (the pinned version) and for accounts that follow the latest: the version the
account last "moved" to (:attr:`StorageAccount.current_version`), set when the account starts
following the key (the key's newest version then, or the version it was pinned to) and moved
only through the control route ``PUT /control/arm/storage/{name}/current-version`` (see
``arm_inventory``): so a test can show an account still on the old version after a rotation,
then moved. With no version known (the key is not in an emulated vault, or the control route
cleared it) the field is left out, as ARM may.

Served: GET / PUT / PATCH / DELETE of one account, listing by subscription and by resource
group. PATCH (``StorageAccounts_Update``) is synchronous in Azure and here; PUT
(``StorageAccounts_Create``) is a long-running operation in Azure, answered here at once with
200 and the account (the SDK's poller accepts a final 200), so seeding stays simple. A write
publishes ``Microsoft.Resources.ResourceWriteSuccess`` like the other providers.

Azure checks at write time that the identity may use the key; the emulator only requires an
identity and the key's name and vault (as ``arm_cognitive`` does).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from devtools.emulator.arm_cognitive import AccountsProvider
from devtools.emulator.arm_common import (
    ArmError,
    Call,
    Dispatcher,
    iso,
    not_found,
    publish_resource_event,
)
from devtools.emulator.state import (
    DEFAULT_LOCATION,
    DEFAULT_RESOURCE_GROUP,
    DEFAULT_SUBSCRIPTION_ID,
    EmulatorState,
)

RESOURCE_TYPE = "Microsoft.Storage/storageAccounts"
API_VERSIONS = frozenset(
    {"2026-09-01", "2025-06-01", "2025-01-01", "2024-01-01", "2023-05-01", "2023-01-01"}
)
KEY_SOURCES = ("Microsoft.Storage", "Microsoft.Keyvault")


@dataclass
class StorageAccount:
    """A storage account as ARM returns it (only what keyward reads or writes)."""

    name: str
    subscription_id: str = DEFAULT_SUBSCRIPTION_ID
    resource_group: str = DEFAULT_RESOURCE_GROUP
    location: str = DEFAULT_LOCATION
    kind: str = "StorageV2"
    sku: str = "Standard_LRS"
    identity: dict[str, Any] = field(default_factory=dict)
    #: ARM ``properties.encryption`` as stored: keySource, keyvaultproperties, identity.
    encryption: dict[str, Any] = field(default_factory=lambda: {"keySource": "Microsoft.Storage"})
    tags: dict[str, str] = field(default_factory=dict)
    created: float = 0.0
    etag: str = field(default_factory=lambda: f'"{uuid.uuid4()}"')
    #: The version an account that follows the latest uses now ("" : unknown, not reported).
    current_version: str = ""
    #: When it last moved to a version (``lastKeyRotationTimestamp``), epoch seconds.
    moved_at: float = 0.0

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Storage/storageAccounts/{self.name}"
        )


class StorageAccountsProvider:
    """The storage accounts the emulator holds (by name: names are global in Azure too)."""

    def __init__(self, state: EmulatorState, identities: AccountsProvider) -> None:
        self.state = state
        self.accounts: dict[str, StorageAccount] = {}
        self._identities = identities

    def register(self, dispatcher: Dispatcher) -> None:
        sub = "/subscriptions/{sub}"
        base = sub + "/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts"
        add = dispatcher.add
        add("GET", sub + "/providers/Microsoft.Storage/storageAccounts", self.list_sub,
            API_VERSIONS, RESOURCE_TYPE)  # fmt: skip
        add("GET", base, self.list_group, API_VERSIONS, RESOURCE_TYPE)
        add("GET PUT PATCH DELETE", base + "/{name}", self.account, API_VERSIONS, RESOURCE_TYPE)

    # --- rendering ------------------------------------------------------------------------

    def to_json(self, account: StorageAccount) -> dict[str, Any]:
        created = iso(account.created or self.state.clock.now())
        endpoints = {
            service: f"https://{account.name}.{service}.core.windows.net/"
            for service in ("blob", "queue", "table", "file")
        }
        encryption = dict(account.encryption)
        kv = encryption.get("keyvaultproperties")
        if isinstance(kv, dict):
            kv = dict(kv)
            in_use = str(kv.get("keyversion") or "") or account.current_version
            if in_use:
                kv["currentVersionedKeyIdentifier"] = (
                    f"{str(kv['keyvaulturi']).rstrip('/')}/keys/{kv['keyname']}/{in_use}"
                )
            if account.moved_at and not kv.get("keyversion"):
                kv["lastKeyRotationTimestamp"] = iso(account.moved_at)
            encryption["keyvaultproperties"] = kv
        encryption.setdefault(
            "services",
            {
                "blob": {"enabled": True, "keyType": "Account", "lastEnabledTime": created},
                "file": {"enabled": True, "keyType": "Account", "lastEnabledTime": created},
            },
        )
        body: dict[str, Any] = {
            "id": account.arm_id,
            "name": account.name,
            "type": RESOURCE_TYPE,
            "location": account.location,
            "kind": account.kind,
            "sku": {"name": account.sku, "tier": account.sku.split("_", 1)[0]},
            "tags": dict(account.tags),
            "properties": {
                "provisioningState": "Succeeded",
                "creationTime": created,
                "primaryEndpoints": endpoints,
                "primaryLocation": account.location,
                "statusOfPrimary": "available",
                "encryption": encryption,
                "minimumTlsVersion": "TLS1_2",
                "allowBlobPublicAccess": False,
                "supportsHttpsTrafficOnly": True,
            },
        }
        if account.identity:
            body["identity"] = account.identity
        return body

    # --- reads ----------------------------------------------------------------------------

    def _find(self, call: Call) -> StorageAccount:
        name = call.params["name"]
        account = self.accounts.get(name.lower())
        if (
            account is None
            or account.subscription_id.lower() != call.subscription_id.lower()
            or account.resource_group.lower() != call.params["rg"].lower()
        ):
            raise not_found(RESOURCE_TYPE, name, call.params["rg"])
        return account

    def in_subscription(self, subscription: str) -> list[StorageAccount]:
        sub = subscription.lower()
        return [a for a in self.accounts.values() if a.subscription_id.lower() == sub]

    async def list_sub(self, call: Call) -> web.Response:
        found = self.in_subscription(call.subscription_id)
        return web.json_response({"value": [self.to_json(a) for a in found]})

    async def list_group(self, call: Call) -> web.Response:
        group = call.params["rg"].lower()
        found = [
            a for a in self.in_subscription(call.subscription_id)
            if a.resource_group.lower() == group
        ]  # fmt: skip
        return web.json_response({"value": [self.to_json(a) for a in found]})

    # --- writes ---------------------------------------------------------------------------

    def apply(self, account: StorageAccount, body: dict[str, Any], *, full: bool) -> None:
        """Write an ARM body onto ``account`` (``full``: PUT, else PATCH merge).

        Raises:
            ArmError: the body is not what ARM accepts (checked before anything changes).
        """
        identity = account.identity
        if "identity" in body and body["identity"] is not None:
            identity = self._identities.resolve_identity(account, body["identity"])
        elif full:
            identity = {}
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise ArmError(400, "InvalidRequestContent", "properties must be an object.")
        encryption = account.encryption
        if "encryption" in properties and properties["encryption"] is not None:
            encryption = _checked_encryption(properties["encryption"], identity)
        elif full:
            encryption = {"keySource": "Microsoft.Storage"}
        sku = body.get("sku")
        if isinstance(sku, dict) and sku.get("name"):
            account.sku = str(sku["name"])
        if "tags" in body and body["tags"] is not None:
            account.tags = {str(k): str(v) for k, v in body["tags"].items()}
        elif full:
            account.tags = {}
        self._follow(account, encryption)
        account.identity = identity
        account.encryption = encryption
        account.etag = f'"{uuid.uuid4()}"'

    def _follow(self, account: StorageAccount, encryption: dict[str, Any]) -> None:
        """Set which version an account that follows the latest uses after a write: on the
        same key, the one it used before (it moves later, not at once; a PATCH of tags
        changes nothing); on another key, that key's newest version now."""
        new = encryption.get("keyvaultproperties")
        if not isinstance(new, dict) or new.get("keyversion"):
            account.current_version, account.moved_at = "", 0.0
            return
        old = account.encryption.get("keyvaultproperties")
        if isinstance(old, dict) and _same_key(old, new):
            if old.get("keyversion"):  # it was pinned: it uses that version until it moves
                account.current_version = str(old["keyversion"]).lower()
            return
        account.current_version = self.newest_version(new)
        account.moved_at = self.state.clock.now() if account.current_version else 0.0

    def newest_version(self, kv: dict[str, Any]) -> str:
        """The newest version of the key ``kv`` names (``keyvaultproperties``) in an
        emulated vault ("" : none known)."""
        try:
            port = urlsplit(str(kv.get("keyvaulturi") or "")).port
        except ValueError:
            return ""
        vault = self.state.vault_by_port(port) if port else None
        key = None if vault is None else vault.keys.get(str(kv.get("keyname") or ""))
        return key.current.version if key is not None and key.versions else ""

    def move(self, account: StorageAccount, version: str | None = None) -> None:
        """Azure Storage moving an account that follows the latest to ``version`` (``None``:
        the key's newest version now; ``""``: unknown, the field is then left out).

        Raises:
            ArmError: the account is pinned (it moves only when re-pointed) or has no
                Key Vault key.
        """
        kv = account.encryption.get("keyvaultproperties")
        if not isinstance(kv, dict) or kv.get("keyversion"):
            raise ArmError(409, "Conflict", f"{account.name} does not follow the latest version.")
        account.current_version = self.newest_version(kv) if version is None else version
        account.moved_at = self.state.clock.now() if account.current_version else 0.0

    async def account(self, call: Call) -> web.StreamResponse:
        method = call.request.method
        if method == "GET":
            return web.json_response(self.to_json(self._find(call)))
        if method == "DELETE":
            removed = self.accounts.pop(call.params["name"].lower(), None)
            if removed is None:
                return web.Response(status=204)
            self.state.changed()
            self._event(call, removed, deleted=True)
            return web.Response(status=200)
        body = await call.body()
        if method == "PUT":
            account = self.accounts.get(call.params["name"].lower())
            if account is None:
                if not body.get("location") or not body.get("sku") or not body.get("kind"):
                    raise ArmError(
                        400, "InvalidRequestContent", "location, sku and kind are required."
                    )
                account = StorageAccount(
                    name=call.params["name"].lower(),
                    subscription_id=call.subscription_id,
                    resource_group=call.params["rg"],
                    location=str(body["location"]).replace(" ", "").lower(),
                    kind=str(body["kind"]),
                    created=self.state.clock.now(),
                )
            else:
                account = self._find(call)
            self.apply(account, body, full=True)
            self.accounts[account.name.lower()] = account
        else:
            account = self._find(call)
            self.apply(account, body, full=False)
        self.state.changed()
        self._event(call, account, deleted=False)
        return web.json_response(self.to_json(account))

    def _event(self, call: Call, account: StorageAccount, *, deleted: bool) -> None:
        publish_resource_event(
            self.state,
            call,
            deleted=deleted,
            resource_uri=account.arm_id,
            operation_name=f"{RESOURCE_TYPE}/{'delete' if deleted else 'write'}",
        )

    def seed(self, name: str, body: dict[str, Any]) -> StorageAccount:
        """Create or overwrite an account directly (control route: no event).

        Raises:
            ArmError: the body is not what ARM accepts.
        """
        account = StorageAccount(
            name=name.lower(),
            subscription_id=str(body.get("subscriptionId") or DEFAULT_SUBSCRIPTION_ID),
            resource_group=str(body.get("resourceGroup") or DEFAULT_RESOURCE_GROUP),
            location=str(body.get("location") or DEFAULT_LOCATION),
            kind=str(body.get("kind") or "StorageV2"),
            created=self.state.clock.now(),
        )
        previous = self.accounts.get(account.name)
        if previous is not None and previous.arm_id.lower() == account.arm_id.lower():
            account.identity = previous.identity  # keep the system identity's principal
        self.apply(account, body, full=True)
        self.accounts[account.name] = account
        self.state.changed()
        return account


def _checked_encryption(raw: Any, identity: dict[str, Any]) -> dict[str, Any]:
    """Validate ``properties.encryption`` the way ARM does before storing it."""
    if not isinstance(raw, dict):
        raise ArmError(400, "InvalidRequestContent", "properties.encryption must be an object.")
    source = str(raw.get("keySource") or "Microsoft.Storage")
    matched = [s for s in KEY_SOURCES if s.lower() == source.lower()]
    if not matched:
        raise ArmError(
            400, "InvalidValuesForRequestParameters",
            f"Values for request parameters are invalid: keySource ({source}).",
        )  # fmt: skip
    encryption: dict[str, Any] = {"keySource": matched[0]}
    if "requireInfrastructureEncryption" in raw:
        encryption["requireInfrastructureEncryption"] = bool(raw["requireInfrastructureEncryption"])
    if matched[0] != "Microsoft.Keyvault":
        return encryption
    kv = raw.get("keyvaultproperties")
    if not isinstance(kv, dict) or not (kv.get("keyname") and kv.get("keyvaulturi")):
        raise ArmError(
            400, "InvalidValuesForRequestParameters",
            "keyvaultproperties with keyname and keyvaulturi is required when keySource is "
            "Microsoft.Keyvault.",
        )  # fmt: skip
    if not identity or identity.get("type", "None") == "None":
        raise ArmError(
            400, "InvalidRequestContent",
            "A managed identity is required to use a customer-managed key.",
        )  # fmt: skip
    chosen = raw.get("identity") if isinstance(raw.get("identity"), dict) else {}
    assigned = str((chosen or {}).get("userAssignedIdentity") or "")
    if assigned and assigned.lower() not in {
        k.lower() for k in (identity.get("userAssignedIdentities") or {})
    }:
        raise ArmError(
            400, "InvalidRequestContent",
            f"userAssignedIdentity '{assigned}' is not an identity of the storage account.",
        )  # fmt: skip
    encryption["keyvaultproperties"] = {
        "keyname": str(kv["keyname"]),
        "keyversion": str(kv.get("keyversion") or ""),
        "keyvaulturi": str(kv["keyvaulturi"]),
    }
    if assigned:
        encryption["identity"] = {"userAssignedIdentity": assigned}
    return encryption


def _same_key(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def ref(kv: dict[str, Any]) -> tuple[str, str]:
        return str(kv.get("keyname", "")).lower(), str(kv.get("keyvaulturi", "")).rstrip(
            "/"
        ).lower()

    return ref(old) == ref(new)
