"""An inventory "lab" per test: a vault, a key, resources of every kind across subscriptions,
and keyward's key-dependent services for them, all real (emulator ARM and Key Vault, Azurite).

Every test gets its own resource group (the kinds' scope), vault and flag table; resources are
seeded through the emulator's control routes and read back through ARM with the real SDKs.
The services are built by ``shared.composition.build_dependents`` from :class:`Settings`, as
in production.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.data.tables.aio import TableClient

from devtools.azurite import AzuriteInfo
from devtools.emulator.arm_client import ArmControl, cmk_encryption
from devtools.emulator.arm_inventory_client import InventoryControl, storage_cmk
from devtools.emulator.credential import AsyncEmulatorCredential
from devtools.emulator.pytest_plugin import ALL_KEY_PERMISSIONS, RunningEmulator
from devtools.emulator.state import DEFAULT_SUBSCRIPTION_ID
from shared.adapters.arm import ArmClients
from shared.adapters.keyvault import AsyncKeyVaultAdapter
from shared.composition._clients import arm_clients, keyvault_adapter
from shared.composition._dependents import SharedClients, build_dependents
from shared.services._all_dependents import AllDependents
from shared.settings import Settings

CMK_PERMISSIONS = ["get", "wrapKey", "unwrapKey"]
ALL_KINDS = "face,cognitive,storage"


@dataclass
class InventoryLab:
    emulator: RunningEmulator
    azurite: AzuriteInfo
    operator: str
    group: str = field(default_factory=lambda: "kwinv-" + uuid.uuid4().hex[:10])
    subscriptions: tuple[str, ...] = field(
        default_factory=lambda: (DEFAULT_SUBSCRIPTION_ID, str(uuid.uuid4()), str(uuid.uuid4()))
    )
    closers: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.control = InventoryControl(self.emulator.url, self.emulator.ca_path)
        self.arm = ArmControl(self.emulator.url, self.emulator.ca_path)
        self.vault_name = "kwi" + uuid.uuid4().hex[:12]
        info = self.client.create_vault(self.vault_name, purge_protection=True)
        self.vault_url = str(info["url"])
        self.client.set_access_policy(self.vault_name, self.operator, ALL_KEY_PERMISSIONS)

    @property
    def client(self) -> Any:
        return self.emulator.client

    def key(self, name: str = "cmk") -> str:
        """Create (a new version of) a key; returns the version."""
        bundle = self.client.create_key(self.vault_name, name)
        return str(bundle["key"]["kid"]).rsplit("/", 1)[-1]

    @property
    def key_ref(self) -> str:
        return f"{self.vault_url}/keys/cmk"

    def grant(self, resource: dict[str, Any]) -> None:
        principal = resource["identity"]["principalId"]
        self.client.set_access_policy(self.vault_name, principal, CMK_PERMISSIONS)

    def cognitive(
        self, kind: str, version: str | None, *, subscription: str | None = None
    ) -> dict[str, Any]:
        """A Cognitive Services account of ``kind`` on the lab's key (``None``: latest)."""
        encryption = cmk_encryption(self.vault_url + "/", "cmk", version or "")
        if version is None:
            encryption["keyVaultProperties"].pop("keyVersion")
        account = self.control.seed_account(
            kind.lower()[:6] + uuid.uuid4().hex[:10],
            kind=kind,
            subscription=subscription or self.subscriptions[0],
            resource_group=self.group,
            encryption=encryption,
            tags={"owner": "team"},
        )
        self.grant(account)
        return account

    def storage(self, version: str, *, subscription: str | None = None) -> dict[str, Any]:
        """A storage account on the lab's key (``""``: follows the latest version)."""
        account = self.control.seed_storage(
            "st" + uuid.uuid4().hex[:12],
            subscription=subscription or self.subscriptions[0],
            resource_group=self.group,
            encryption=storage_cmk(self.vault_url, "cmk", version),
            tags={"owner": "team"},
        )
        self.grant(account)
        return account

    def settings(self, **extra: str) -> Settings:
        subs = ",".join(self.subscriptions)
        return Settings.from_env({
            "KEYWARD_VAULT_ALLOWLIST": f"{self.vault_name}=https://{self.vault_url.split('://')[1]}",
            "AzureWebJobsStorage": self.azurite.connection_string,
            "KEYWARD_DEPENDENT_KINDS": ALL_KINDS,
            "KEYWARD_FACE_SUBSCRIPTIONS": subs,
            "KEYWARD_FACE_RESOURCE_GROUPS": self.group,
            "KEYWARD_COGNITIVE_SUBSCRIPTIONS": subs,
            "KEYWARD_COGNITIVE_RESOURCE_GROUPS": self.group,
            "KEYWARD_STORAGE_ACCOUNTS_SUBSCRIPTIONS": subs,
            "KEYWARD_STORAGE_ACCOUNTS_RESOURCE_GROUPS": self.group,
            "KEYWARD_ARM_ENDPOINT": self.emulator.url,
            "KEYWARD_CA_BUNDLE": self.emulator.ca_path,
            "KEYWARD_ARM_REQUESTS_PER_SECOND": "1000",
            **extra,
        })  # fmt: skip

    def now(self) -> datetime:
        return datetime.fromtimestamp(float(self.client.clock()["now"]), UTC)

    def build(self, **extra: str) -> tuple[AllDependents, ArmClients, AsyncKeyVaultAdapter]:
        """Every watched kind's service, over clients this lab closes."""
        settings = self.settings(**extra)
        credential = AsyncEmulatorCredential(self.operator)
        table = TableClient.from_connection_string(
            self.azurite.connection_string, "kwinv" + uuid.uuid4().hex[:12]
        )
        keys = keyvault_adapter(settings, credential)
        arm = arm_clients(settings, credential)
        self.closers += [arm, keys, table]
        dependents, built = build_dependents(
            settings,
            SharedClients(credential, table, keys, arm),
            clock=self.now,
            create_table=True,
        )
        self.closers += [dependents, *built]
        return dependents, arm, keys

    async def close(self) -> None:
        for closer in reversed(self.closers):
            await closer.close()
        self.client.delete_vault(self.vault_name)


@pytest.fixture(scope="module")
def fast_arm(emulator: RunningEmulator) -> Iterator[None]:
    """Cognitive Services operations answer Retry-After 0.05 s for this module."""
    control = ArmControl(emulator.url, emulator.ca_path)
    before = control.session.call("GET", "/control/arm/settings")
    control.set_lro(retry_after="0.05")
    yield
    control.set_lro(retry_after=before.get("retryAfter"))


@pytest.fixture
async def lab(
    emulator: RunningEmulator, azurite: AzuriteInfo, fast_arm: None
) -> AsyncIterator[InventoryLab]:
    operator = str(emulator.client.create_principal(display_name="keyward")["object_id"])
    made = InventoryLab(emulator, azurite, operator)
    yield made
    made.control.refuse_resource_graph(False)
    made.control.unreadable_subscriptions([])
    made.control.resource_graph_fault("")
    await made.close()
