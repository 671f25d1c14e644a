"""Synchronous helpers for the inventory surface (``arm_inventory``): seeding Cognitive
Services accounts of any kind and storage accounts in any subscription, Resource Graph's
refusal switch, and the ARM request counts. For tests, the benchmark and the demo::

    control = InventoryControl(emulator_url, ca_path)
    control.seed_storage("stdemo", identity="SystemAssigned",
                         encryption=storage_cmk(vault_url, "cmk", version))
    control.reset_requests()
    ...  # a sweep
    assert control.inventory_requests() <= 3
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.emulator.arm_client import ControlSession
from devtools.emulator.state import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION_ID

#: Routes (``arm_inventory.route_label``) that find resources: Resource Graph queries and
#: the per-subscription (or per-group) listings of the kinds keyward watches.
INVENTORY_ROUTES = frozenset(
    {
        "POST Microsoft.ResourceGraph/resources",
        "GET Microsoft.CognitiveServices/accounts",
        "GET Microsoft.Storage/storageAccounts",
    }
)


def storage_cmk(
    vault_uri: str, key_name: str, key_version: str = "", user_assigned: str | None = None
) -> dict[str, Any]:
    """A storage account's ``properties.encryption`` with a Key Vault key (an empty
    ``key_version`` follows the latest version)."""
    encryption: dict[str, Any] = {
        "keySource": "Microsoft.Keyvault",
        "keyvaultproperties": {
            "keyname": key_name,
            "keyversion": key_version,
            "keyvaulturi": vault_uri,
        },
    }
    if user_assigned:
        encryption["identity"] = {"userAssignedIdentity": user_assigned}
    return encryption


class InventoryControl:
    """Seeding and counters of the emulator's inventory surface."""

    def __init__(self, base_url: str, ca_path: str | Path) -> None:
        self.session = ControlSession(base_url, ca_path)

    def seed_account(
        self,
        name: str,
        *,
        kind: str,
        subscription: str = DEFAULT_SUBSCRIPTION_ID,
        resource_group: str = DEFAULT_RESOURCE_GROUP,
        identity: str | dict[str, Any] = "SystemAssigned",
        encryption: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A Cognitive Services account of ``kind`` (Face, OpenAI, SpeechServices...)."""
        body: dict[str, Any] = {
            "kind": kind,
            "sku": {"name": "S0"},
            "subscriptionId": subscription,
            "resourceGroup": resource_group,
            "identity": {"type": identity} if isinstance(identity, str) else identity,
            "tags": tags or {},
        }
        if encryption is not None:
            body["properties"] = {"encryption": encryption}
        result: dict[str, Any] = self.session.call("PUT", f"/control/arm/accounts/{name}", body)
        return result

    def seed_storage(
        self,
        name: str,
        *,
        subscription: str = DEFAULT_SUBSCRIPTION_ID,
        resource_group: str = DEFAULT_RESOURCE_GROUP,
        identity: str | dict[str, Any] = "SystemAssigned",
        encryption: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A StorageV2 account (with ``encryption`` when given, see :func:`storage_cmk`)."""
        body: dict[str, Any] = {
            "kind": "StorageV2",
            "sku": {"name": "Standard_LRS"},
            "subscriptionId": subscription,
            "resourceGroup": resource_group,
            "identity": {"type": identity} if isinstance(identity, str) else identity,
            "tags": tags or {},
        }
        if encryption is not None:
            body["properties"] = {"encryption": encryption}
        result: dict[str, Any] = self.session.call("PUT", f"/control/arm/storage/{name}", body)
        return result

    def move_storage(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Azure Storage moving ``name`` (which follows the latest version) to ``version``:
        ``None`` the key's newest version now, ``""`` unknown (ARM then leaves
        ``currentVersionedKeyIdentifier`` out). Returns the account as ARM shows it."""
        body = {} if version is None else {"version": version}
        path = f"/control/arm/storage/{name}/current-version"
        result: dict[str, Any] = self.session.call("PUT", path, body)
        return result

    def storage_accounts(self) -> list[dict[str, Any]]:
        result: dict[str, Any] = self.session.call("GET", "/control/arm/storage")
        return list(result["value"])

    def delete_storage(self, name: str) -> None:
        self.session.call("DELETE", f"/control/arm/storage/{name}")

    def refuse_resource_graph(self, refuse: bool = True) -> None:
        """Resource Graph answers 403 AuthorizationFailed (or answers again)."""
        self.session.call("PUT", "/control/arm/resourcegraph", {"refuse": refuse})

    def unreadable_subscriptions(self, subscriptions: list[str]) -> None:
        """Resource Graph leaves ``subscriptions`` out of every answer (the caller has no
        Reader role there); ``[]`` shows them all again."""
        self.session.call("PUT", "/control/arm/resourcegraph", {"unreadable": subscriptions})

    def resource_graph_fault(self, fault: str = "") -> None:
        """A paging fault of Resource Graph's answers (``arm_resourcegraph.FAULTS``; "" :
        none)."""
        self.session.call("PUT", "/control/arm/resourcegraph", {"fault": fault})

    def requests(self) -> dict[str, int]:
        """ARM requests since the last reset, by route (``arm_inventory.route_label``)."""
        result: dict[str, Any] = self.session.call("GET", "/control/arm/requests")
        return {str(k): int(v) for k, v in result["byRoute"].items()}

    def inventory_requests(self) -> int:
        """Of :meth:`requests`, those that find resources (:data:`INVENTORY_ROUTES`)."""
        return sum(n for route, n in self.requests().items() if route in INVENTORY_ROUTES)

    def reset_requests(self) -> None:
        self.session.call("DELETE", "/control/arm/requests")
