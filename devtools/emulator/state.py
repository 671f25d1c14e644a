"""The emulator's world: vaults, keys, principals, role assignments, Face accounts, clock.

This module is the contract between the emulator's surfaces: the Key Vault data plane
(``keyvault.py``), the ARM surface (``arm.py``) and Event Grid (``eventgrid.py``) all read and
change this one model, so a change made through ARM (remove an access policy, switch a vault
to RBAC, delete a role assignment) is what the next data-plane call sees.

Everything runs on one asyncio loop; handlers never await while holding a half-made change,
so no locks are needed. ``EmulatorState.to_json`` / ``from_json`` persist it (``--state``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from devtools.emulator.access_state import AccessWorld

DEFAULT_TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DEFAULT_SUBSCRIPTION_ID = "00000000-0000-0000-0000-00000000c0de"
DEFAULT_RESOURCE_GROUP = "keyward-rg"
DEFAULT_LOCATION = "westeurope"

# Built-in Key Vault role definition ids (Azure's fixed GUIDs).
ROLE_KEY_VAULT_CRYPTO_OFFICER = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
ROLE_KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
ROLE_KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
ROLE_KEY_VAULT_READER = "21090545-7ca7-4776-b22c-e363652d74d2"
ROLE_KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"

#: Seconds (of the emulator clock) after ``DELETE /keys/{name}`` during which the key is in
#: neither collection: Key Vault takes "a few seconds" to finish a soft delete (the SDKs poll
#: ``GET /deletedkeys/{name}`` until it stops answering 404; see docs/emulator.md).
DEFAULT_DELETION_LAG_SECONDS = 2.0


class Clock:
    """Wall time plus an offset tests can move forward (reach nbf/exp without sleeping)."""

    def __init__(self) -> None:
        self.offset_seconds = 0.0

    def now(self) -> float:
        return time.time() + self.offset_seconds

    def advance(self, seconds: float) -> None:
        self.offset_seconds += seconds


@dataclass
class KeyVersion:
    """One version of a key. ``private`` is PKCS#8 PEM for RSA, raw bytes (hex) for oct."""

    version: str
    kty: str  # "RSA", "RSA-HSM", "oct-HSM"
    key_size: int
    key_ops: list[str]
    private: str
    enabled: bool = True
    not_before: float | None = None
    expires: float | None = None
    created: float = 0.0
    updated: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)
    exportable: bool = False
    #: Set once the KeyNearExpiry / KeyExpired event for this version has been published.
    near_expiry_notified: bool = False
    expired_notified: bool = False


@dataclass
class Key:
    name: str
    #: Versions in creation order; the last is the current one.
    versions: list[KeyVersion] = field(default_factory=list)
    rotation_policy: dict[str, Any] | None = None
    #: Set when soft-deleted: (deleted_date, scheduled_purge_date, recovery_id).
    deleted_at: float | None = None
    scheduled_purge: float | None = None

    @property
    def current(self) -> KeyVersion:
        return self.versions[-1]

    def deletion_complete(self, now: float, lag_seconds: float) -> bool:
        """Whether a soft-deleted key shows among the deleted keys yet (``deleted_at + lag``)."""
        return self.deleted_at is None or now >= self.deleted_at + lag_seconds

    def version(self, version: str) -> KeyVersion | None:
        for candidate in self.versions:
            if candidate.version == version:
                return candidate
        return None


@dataclass
class AccessPolicy:
    """Access-policy-mode permissions for one principal (lower-case permission names)."""

    object_id: str
    tenant_id: str = DEFAULT_TENANT_ID
    keys: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)


@dataclass
class Vault:
    name: str
    #: The loopback port this vault's data plane listens on (https://127.0.0.1:PORT).
    port: int = 0
    subscription_id: str = DEFAULT_SUBSCRIPTION_ID
    resource_group: str = DEFAULT_RESOURCE_GROUP
    location: str = DEFAULT_LOCATION
    tenant_id: str = DEFAULT_TENANT_ID
    managed_hsm: bool = False
    sku: str = "standard"
    enable_rbac_authorization: bool = False
    enable_soft_delete: bool = True
    enable_purge_protection: bool = True
    soft_delete_retention_days: int = 90
    access_policies: list[AccessPolicy] = field(default_factory=list)
    keys: dict[str, Key] = field(default_factory=dict)
    deleted_keys: dict[str, Key] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: How long a soft-deleted key stays invisible (``GET /deletedkeys/{name}`` 404, in no
    #: listing) before it shows among the deleted keys; 0 makes deletion instant.
    deletion_lag_seconds: float = DEFAULT_DELETION_LAG_SECONDS

    @property
    def arm_id(self) -> str:
        provider = "managedHSMs" if self.managed_hsm else "vaults"
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.KeyVault/{provider}/{self.name}"
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@dataclass
class Principal:
    """An Entra ID identity: a user, an app, or a managed identity."""

    object_id: str
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    display_name: str = ""
    tenant_id: str = DEFAULT_TENANT_ID


@dataclass
class RoleAssignment:
    """An Azure RBAC assignment. ``scope`` is an ARM id (vault) or ``{vault}/keys/{name}``."""

    name: str
    scope: str
    role_definition_id: str  # the GUID of the role definition
    principal_id: str
    principal_type: str = "ServicePrincipal"
    #: An ABAC condition and its version (``2.0``), as written; ``None``: unconditioned.
    condition: str | None = None
    condition_version: str | None = None

    @property
    def arm_id(self) -> str:
        return f"{self.scope}/providers/Microsoft.Authorization/roleAssignments/{self.name}"


@dataclass
class CognitiveAccount:
    """A Cognitive Services account (kind ``Face`` for keyward), as ARM returns it."""

    name: str
    kind: str = "Face"
    sku: str = "E0"
    subscription_id: str = DEFAULT_SUBSCRIPTION_ID
    resource_group: str = DEFAULT_RESOURCE_GROUP
    location: str = DEFAULT_LOCATION
    #: ARM ``identity`` object: {"type": ..., "principalId": ..., "tenantId": ...,
    #: "userAssignedIdentities": {...}}
    identity: dict[str, Any] = field(default_factory=dict)
    #: ARM ``properties.encryption``: {"keySource": ..., "keyVaultProperties": {...}}
    encryption: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    provisioning_state: str = "Succeeded"

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.name}"
        )


class EventPublisher(Protocol):
    """How surfaces announce what happened; Event Grid (``eventgrid.py``) implements it."""

    def publish(self, topic: str, event_type: str, subject: str, data: dict[str, Any]) -> None:
        """Queue one event on ``topic`` (an ARM id) for every matching subscription."""
        ...


class _NoEvents:
    def publish(self, topic: str, event_type: str, subject: str, data: dict[str, Any]) -> None:
        del topic, event_type, subject, data


@dataclass
class Counters:
    """Per vault / key / version request counters the control API exposes to tests."""

    requests: dict[str, int] = field(default_factory=dict)

    def bump(self, *labels: str) -> None:
        for label in labels:
            self.requests[label] = self.requests.get(label, 0) + 1


@dataclass
class EmulatorState:
    vaults: dict[str, Vault] = field(default_factory=dict)
    principals: dict[str, Principal] = field(default_factory=dict)
    role_assignments: dict[str, RoleAssignment] = field(default_factory=dict)
    accounts: dict[str, CognitiveAccount] = field(default_factory=dict)
    clock: Clock = field(default_factory=Clock)
    counters: Counters = field(default_factory=Counters)
    events: EventPublisher = field(default_factory=_NoEvents)
    #: Management groups, custom roles, deny assignments, group members (``access_state``).
    access: AccessWorld = field(default_factory=AccessWorld)
    #: Called after every change so ``--state FILE`` can be rewritten.
    on_change: Callable[[], None] | None = None
    #: Set by the server: binds a data-plane port for a vault (synchronously sets vault.port).
    vault_listener: Callable[[Vault], None] | None = None
    #: Set by the server: stops a vault's port, then removes the vault.
    vault_remover: Callable[[str], Awaitable[None]] | None = None
    #: Set by ``arm_eventgrid.register``: Event Grid system topics and their subscriptions
    #: made through ARM, registered sites and storage accounts, the ARM write log.
    arm_eventgrid: Any = None

    def to_json(self) -> dict[str, Any]:
        return state_to_json(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> EmulatorState:
        return state_from_json(raw)

    def add_vault(self, vault: Vault) -> Vault:
        """Insert ``vault`` and give it its own loopback port (``vault.port`` is set on return).

        Surfaces that create vaults (control API, ARM PUT) should call this rather than writing
        ``vaults[name]`` directly, so the vault's data plane is reachable at once.
        """
        self.vaults[vault.name] = vault
        if self.vault_listener is not None:
            self.vault_listener(vault)
        self.changed()
        return vault

    async def remove_vault(self, name: str) -> Vault | None:
        """Remove a vault and stop its port; returns the vault (None if there was none)."""
        vault = self.vaults.get(name)
        if self.vault_remover is not None:
            await self.vault_remover(name)
        else:
            self.vaults.pop(name, None)
            self.changed()
        return vault

    def vault_by_port(self, port: int) -> Vault | None:
        for vault in self.vaults.values():
            if vault.port == port:
                return vault
        return None

    def changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


# --- persistence (``--state FILE``) -----------------------------------------------------------
# Added by the emulator core: a plain-JSON image of the world. Runtime-only things (counters,
# the event publisher, throttle windows, loaded key objects) are deliberately not persisted.

STATE_FORMAT_VERSION = 1


def _key_to_json(key: Key) -> dict[str, Any]:
    return {
        "name": key.name,
        "versions": [asdict(v) for v in key.versions],
        "rotation_policy": key.rotation_policy,
        "deleted_at": key.deleted_at,
        "scheduled_purge": key.scheduled_purge,
    }


def _key_from_json(raw: dict[str, Any]) -> Key:
    return Key(
        name=raw["name"],
        versions=[KeyVersion(**v) for v in raw.get("versions", [])],
        rotation_policy=raw.get("rotation_policy"),
        deleted_at=raw.get("deleted_at"),
        scheduled_purge=raw.get("scheduled_purge"),
    )


def state_to_json(state: EmulatorState) -> dict[str, Any]:
    """A JSON-able image of ``state`` (includes private key material: dev tooling only)."""
    vaults = []
    for vault in state.vaults.values():
        raw = {f.name: getattr(vault, f.name) for f in fields(vault)}
        raw["access_policies"] = [asdict(p) for p in vault.access_policies]
        raw["keys"] = [_key_to_json(k) for k in vault.keys.values()]
        raw["deleted_keys"] = [_key_to_json(k) for k in vault.deleted_keys.values()]
        vaults.append(raw)
    return {
        "format": STATE_FORMAT_VERSION,
        "clock_offset_seconds": state.clock.offset_seconds,
        "vaults": vaults,
        "principals": [asdict(p) for p in state.principals.values()],
        "role_assignments": [asdict(r) for r in state.role_assignments.values()],
        "accounts": [asdict(a) for a in state.accounts.values()],
        "access": state.access.to_json(),
    }


def state_from_json(raw: dict[str, Any]) -> EmulatorState:
    """Rebuild an :class:`EmulatorState` from :func:`state_to_json` output."""
    state = EmulatorState()
    state.clock.offset_seconds = float(raw.get("clock_offset_seconds", 0.0))
    for vault_raw in raw.get("vaults", []):
        vault_raw = dict(vault_raw)
        policies = [AccessPolicy(**p) for p in vault_raw.pop("access_policies", [])]
        keys = [_key_from_json(k) for k in vault_raw.pop("keys", [])]
        deleted = [_key_from_json(k) for k in vault_raw.pop("deleted_keys", [])]
        known = {f.name for f in fields(Vault)}
        vault = Vault(**{k: v for k, v in vault_raw.items() if k in known})
        vault.access_policies = policies
        vault.keys = {k.name: k for k in keys}
        vault.deleted_keys = {k.name: k for k in deleted}
        state.vaults[vault.name] = vault
    for p in raw.get("principals", []):
        state.principals[p["object_id"]] = Principal(**p)
    for r in raw.get("role_assignments", []):
        state.role_assignments[r["name"]] = RoleAssignment(**r)
    for a in raw.get("accounts", []):
        state.accounts[a["name"]] = CognitiveAccount(**a)
    state.access = AccessWorld.from_json(raw.get("access"))
    return state
