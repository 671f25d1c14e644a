"""A Face "lab" per test: vaults, keys, Face accounts and keyward's Face service, all real.

One emulator (ARM, Key Vault, Event Grid) and one Azurite for the session; every test gets
fresh vaults, a resource group of its own (the inventory is scoped to it), a custom topic
whose sink records keyward's outgoing events, and a flag table of its own. The service is
built by :func:`shared.composition.build_dependent_service` from :class:`Settings`, as in
production (the Face kind from the kind registry), with the
emulator's credential and clock. Nothing is mocked: changes are made in the emulator and
observed through its ARM state, its event records and the sink.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.data.tables.aio import TableClient
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.keyvault import KeyVaultManagementClient

from devtools.azurite import AzuriteInfo
from devtools.emulator.arm_client import ArmControl, cmk_encryption, management_client_kwargs
from devtools.emulator.credential import AsyncEmulatorCredential, EmulatorCredential
from devtools.emulator.eventgrid_client import EventGridControl
from devtools.emulator.pytest_plugin import ALL_KEY_PERMISSIONS, RunningEmulator
from devtools.emulator.state import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION_ID
from shared.composition import build_dependent_service
from shared.dependents import STATUS_TAG
from shared.services.dependents import DependentService
from shared.settings import Settings

SUBSCRIPTION = DEFAULT_SUBSCRIPTION_ID
WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
CMK_PERMISSIONS = ["get", "wrapKey", "unwrapKey"]


@dataclass
class LabVault:
    name: str
    url: str
    arm_id: str


@dataclass
class FaceLab:
    """Builds the world for one test and reads back what keyward did to it."""

    emulator: RunningEmulator
    azurite: AzuriteInfo
    operator: str  # keyward's own identity: every key permission, and admin on RBAC vaults
    group: str = field(default_factory=lambda: "kwface-" + uuid.uuid4().hex[:10])
    vaults: list[LabVault] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    topic: dict[str, Any] = field(default_factory=dict)
    services: list[DependentService] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.grid = EventGridControl(self.emulator.url, self.emulator.ca_path)
        self.arm = ArmControl(self.emulator.url, self.emulator.ca_path)
        self.topic = self.grid.create_topic(
            "kw" + uuid.uuid4().hex[:12], input_schema="CloudEventSchemaV1_0"
        )
        self.table_name = "kwflags" + uuid.uuid4().hex[:12]

    @property
    def client(self) -> Any:
        return self.emulator.client

    # -- the world ---------------------------------------------------------------------------

    def vault(
        self, *, rbac: bool = False, soft_delete: bool = True, purge: bool = True, **extra: Any
    ) -> LabVault:
        """A fresh vault keyward's identity may read (``extra``: e.g. ``subscription_id``)."""
        name = "kwf" + uuid.uuid4().hex[:12]
        info = self.client.create_vault(
            name, rbac=rbac, soft_delete=soft_delete, purge_protection=purge, **extra
        )
        self.client.set_access_policy(name, self.operator, ALL_KEY_PERMISSIONS)
        self.client.create_role_assignment(self.operator, "Key Vault Administrator", vault=name)
        vault = LabVault(name, info["url"], info["arm_id"])
        self.vaults.append(vault)
        return vault

    def key(self, vault: LabVault, name: str = "cmk", **options: Any) -> str:
        """Create (a version of) a key; returns the version."""
        bundle = self.client.create_key(vault.name, name, **options)
        return str(bundle["key"]["kid"]).rsplit("/", 1)[-1]

    def account(
        self,
        vault: LabVault,
        key: str = "cmk",
        version: str | None = None,
        *,
        vault_uri: str | None = None,
        grant: str | None = "policy",
    ) -> dict[str, Any]:
        """A Face E0 account with a customer-managed key; ``grant``: policy, role or None."""
        encryption = cmk_encryption(vault_uri or vault.url + "/", key, version or "")
        if version is None:
            encryption["keyVaultProperties"].pop("keyVersion")
        account = self.arm.seed_account(
            "face" + uuid.uuid4().hex[:10],
            kind="Face",
            sku="E0",
            resource_group=self.group,
            identity="SystemAssigned",
            encryption=encryption,
            tags={"owner": "team-vision", "cost-center": "42"},
        )
        principal = account["identity"]["principalId"]
        if grant == "policy":
            self.client.set_access_policy(vault.name, principal, CMK_PERMISSIONS)
        elif grant == "role":
            self.client.create_role_assignment(
                principal, "Key Vault Crypto Service Encryption User", vault=vault.name, key=key
            )
        return account

    def alias(self, vault: LabVault) -> str:
        """The same vault reached as ``https://localhost:PORT`` (another host for the kid)."""
        alias = vault.url.replace("127.0.0.1", "localhost")
        self.aliases[vault.name] = alias
        return alias

    def service(
        self,
        *,
        repoint: bool = False,
        warning_days: int = 30,
        topic_key: bool = True,
        allowed: list[LabVault] | None = None,
        resource_graph: bool = True,
    ) -> DependentService:
        """keyward's Face service over this lab; ``topic_key=False`` publishes with the token
        credential (production's way); ``allowed`` limits the vault allow-list;
        ``resource_graph=False`` lists each subscription instead."""
        listed = self.vaults if allowed is None else allowed
        entries = [f"{v.name}=https://{v.url.split('://', 1)[1]}" for v in listed]
        entries += [f"{name}={url}" for name, url in self.aliases.items()]
        settings = Settings.from_env({
            "KEYWARD_VAULT_ALLOWLIST": ",".join(entries),
            "AzureWebJobsStorage": self.azurite.connection_string,
            "KEYWARD_FACE_SUBSCRIPTIONS": SUBSCRIPTION,
            "KEYWARD_FACE_RESOURCE_GROUPS": self.group,
            "KEYWARD_FACE_REPOINT": "true" if repoint else "false",
            "KEYWARD_EXPIRY_WARNING_DAYS": str(warning_days),
            "KEYWARD_EVENTGRID_TOPIC_ENDPOINT": self.topic["endpoint"],
            "KEYWARD_ARM_ENDPOINT": self.emulator.url,
            "KEYWARD_CA_BUNDLE": self.emulator.ca_path,
            "KEYWARD_RESOURCE_GRAPH": "true" if resource_graph else "false",
        })  # fmt: skip
        service = build_dependent_service(
            settings,
            AsyncEmulatorCredential(self.operator),
            eventgrid_credential=AzureKeyCredential(self.topic["key1"]) if topic_key else None,
            table=TableClient.from_connection_string(
                self.azurite.connection_string, self.table_name
            ),
            clock=self.now,
        )
        self.services.append(service)
        return service

    def now(self) -> datetime:
        return datetime.fromtimestamp(float(self.client.clock()["now"]), UTC)

    # -- what keyward did ------------------------------------------------------------------

    def sunk(self) -> list[dict[str, Any]]:
        """The sink's records: ``{receivedAt, auth, contentType, event}``."""
        return self.grid.sunk_events(self.topic["name"])

    def events(self, account: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """CloudEvents keyward published (for one account, when given), oldest first."""
        sunk = [e["event"] for e in self.sunk()]
        if account is None:
            return sunk
        return [e for e in sunk if e["subject"].lower() == account["id"].lower()]

    def event_types(self, account: dict[str, Any]) -> list[str]:
        return [e["type"].rsplit(".", 1)[-1] for e in self.events(account)]

    def arm_writes(self, account: dict[str, Any]) -> int:
        """How many times the account was written through ARM (tags, re-point)."""
        published = self.grid.published(
            topic=f"/subscriptions/{SUBSCRIPTION}", event_type=WRITE_SUCCESS
        )
        return sum(
            1 for e in published if e["data"]["resourceUri"].lower() == account["id"].lower()
        )

    def arm_account(self, account: dict[str, Any]) -> Any:
        client = CognitiveServicesManagementClient(
            EmulatorCredential(self.operator),
            SUBSCRIPTION,
            **management_client_kwargs(self.emulator.url, self.emulator.ca_path),
        )
        with client:
            return client.accounts.get(self.group, account["name"])

    def tag(self, account: dict[str, Any]) -> str | None:
        tags = self.arm_account(account).tags or {}
        return tags.get(STATUS_TAG)

    def keyvault_mgmt(self) -> KeyVaultManagementClient:
        return KeyVaultManagementClient(
            EmulatorCredential(self.operator),
            SUBSCRIPTION,
            **management_client_kwargs(self.emulator.url, self.emulator.ca_path),
        )

    def close(self) -> None:
        existing = {v["name"] for v in self.client.list_vaults()}
        for vault in self.vaults:
            if vault.name in existing:
                self.client.delete_vault(vault.name)


@pytest.fixture(scope="module")
def fast_arm(emulator: RunningEmulator) -> Iterator[None]:
    """ARM operations answer Retry-After 0.05 s for this module (restored afterwards)."""
    control = ArmControl(emulator.url, emulator.ca_path)
    before = control.session.call("GET", "/control/arm/settings")
    control.set_lro(retry_after="0.05")
    yield
    control.set_lro(retry_after=before.get("retryAfter"))


@pytest.fixture
async def lab(
    emulator: RunningEmulator, azurite: AzuriteInfo, fast_arm: None
) -> AsyncIterator[FaceLab]:
    operator = str(emulator.client.create_principal(display_name="keyward")["object_id"])
    made = FaceLab(emulator, azurite, operator)
    yield made
    for service in made.services:
        await service.close()
    made.close()


__all__ = ["DEFAULT_RESOURCE_GROUP", "FaceLab", "LabVault"]
