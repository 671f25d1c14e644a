"""Every keyward setting, named once: its default and what it means.

The README table, docs/events.md and ``local.settings.example.json`` are checked against
``SPECS`` by tests, so documentation cannot drift from what ``Settings.from_env`` reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from shared.errors import SettingError
from shared.records import EnvelopeSettings
from shared.rewrap import (
    DEFAULT_BUDGET_LEASE_SECONDS,
    DEFAULT_SLICE_SECONDS,
    DEFAULT_SUBSCRIPTION_GROUP,
    DEFAULT_VAULT_SHARE,
    DEFAULT_WORKERS,
    FUNCTION_TIMEOUT_SECONDS,
    MAX_BUDGET_LEASE_SECONDS,
    MAX_SLICE_SECONDS,
    MIN_BUDGET_LEASE_SECONDS,
    SLICE_SAFETY_MARGIN_SECONDS,
    SUBSCRIPTION_BUDGET_FACTOR,
)
from shared.settings._values import PUBLIC_ARM_ENDPOINT, PUBLIC_LOGIN_AUTHORITY, apply

T = TypeVar("T")


@dataclass(frozen=True)
class SettingSpec:
    """One documented setting. ``default`` is ``None`` when the setting is optional and
    unset means "off" (or "not configured"), and for the one required setting."""

    name: str
    default: str | None
    meaning: str
    required: bool = False


@dataclass(frozen=True)
class DependentSpec:
    """The settings of one kind of key-dependent resource (registry name ``kind``).

    Each kind gets the same three settings, ``{prefix}_SUBSCRIPTIONS``,
    ``{prefix}_RESOURCE_GROUPS`` and ``{prefix}_REPOINT``, so adding a kind is one entry in
    :data:`DEPENDENT_SPECS` (and ``Settings.dependent(kind)`` reads them).

    Attributes:
        kind: the kind's name in the composition root's registry.
        prefix: the settings' common prefix.
        plural: what the resources are called (``Face accounts``).
        short: what the checks are called (``Face``).
    """

    kind: str
    prefix: str
    plural: str
    short: str

    @property
    def subscriptions(self) -> str:
        return f"{self.prefix}_SUBSCRIPTIONS"

    @property
    def resource_groups(self) -> str:
        return f"{self.prefix}_RESOURCE_GROUPS"

    @property
    def repoint(self) -> str:
        return f"{self.prefix}_REPOINT"

    def specs(self) -> tuple[SettingSpec, ...]:
        return (
            SettingSpec(
                self.subscriptions,
                None,
                f"Subscription GUIDs searched for {self.plural}, comma separated; empty: no "
                f"{self.short} checks.",
            ),
            SettingSpec(
                self.resource_groups,
                None,
                f"Limit the {self.short} search to these resource groups, comma separated.",
            ),
            SettingSpec(
                self.repoint,
                "false",
                f"Re-point {self.plural} pinned to an old key version to the new version after "
                "a rotation (otherwise they are flagged STALE_KEY_VERSION).",
            ),
        )


#: One entry per kind of key-dependent resource (see ``shared.composition``'s kind registry).
DEPENDENT_SPECS: tuple[DependentSpec, ...] = (
    DependentSpec("face", "KEYWARD_FACE", "Face accounts", "Face"),
    DependentSpec(
        "cognitive",
        "KEYWARD_COGNITIVE",
        "Azure AI services accounts of every kind but Face (OpenAI, Speech, Language, "
        "Document Intelligence...)",
        "Azure AI services",
    ),
    DependentSpec(
        "storage",
        "KEYWARD_STORAGE_ACCOUNTS",
        "storage accounts with a customer-managed key",
        "storage account",
    ),
)
#: The kind watched when ``KEYWARD_DEPENDENT_KINDS`` is not set.
DEFAULT_DEPENDENT_KIND = "face"


def dependent_kinds(raw: str) -> tuple[str, ...]:
    """``KEYWARD_DEPENDENT_KINDS``: registered kind names, comma separated, each once."""
    known = [spec.kind for spec in DEPENDENT_SPECS]
    names = [part.strip().lower() for part in raw.split(",") if part.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(dict.fromkeys(names))


_DEPENDENT_SETTINGS = (
    SettingSpec(
        "KEYWARD_DEPENDENT_KINDS",
        DEFAULT_DEPENDENT_KIND,
        "Kinds of key-dependent resources watched, comma separated: `face` (Face accounts), "
        "`cognitive` (every other Azure AI services account kind), `storage` (storage "
        "accounts with a customer-managed key). Each is searched in its own "
        "`*_SUBSCRIPTIONS`; setting those of a kind not listed here is refused.",
    ),
    *(spec for kind in DEPENDENT_SPECS for spec in kind.specs()),
    SettingSpec(
        "KEYWARD_RESOURCE_GRAPH",
        "true",
        "Find key-dependent resources with one paged Azure Resource Graph query over every "
        "watched subscription (needs Reader on them); `false`, or Resource Graph refusing "
        "the query, lists each subscription instead.",
    ),
    SettingSpec(
        "KEYWARD_INVENTORY_CACHE_SECONDS",
        "120",
        "Seconds an inventory of key-dependent resources is reused by key events before it "
        "is queried again (each sweep queries afresh); 0 to 3600.",
    ),
    SettingSpec(
        "KEYWARD_ARM_REQUESTS_PER_SECOND",
        "20",
        "Most ARM requests keyward starts in any one second (inventory, vault and role "
        "reads, re-points, tags), so a sweep never trips ARM throttling; 1 to 1000.",
    ),
)

#: The application envelope's defaults live in ``shared.records.EnvelopeSettings``.
_ENVELOPE = EnvelopeSettings()
#: The application envelope's caches and the mode row's TTL.
_ENVELOPE_SETTINGS = (
    SettingSpec(
        "KEYWARD_CACHE_SIZE",
        str(_ENVELOPE.cache_size),
        "Application envelope: unwrapped keys (DEKs and intermediate keys together) kept in "
        "memory, wiped on eviction; 0 caches nothing.",
    ),
    SettingSpec(
        "KEYWARD_DEK_CACHE_SECONDS",
        str(int(_ENVELOPE.dek_cache_seconds)),
        "Application envelope: seconds an unwrapped DEK is cached. In direct mode, how long "
        "cached records stay readable after the Key Vault key is revoked.",
    ),
    SettingSpec(
        "KEYWARD_KEK_CACHE_SECONDS",
        str(int(_ENVELOPE.kek_cache_seconds)),
        "Application envelope: seconds an unwrapped intermediate key is cached (DEKs it opened "
        "expire no later). In hierarchy mode, the revocation latency: reads stop within it "
        "once the Key Vault key is disabled or deleted.",
    ),
    SettingSpec(
        "KEYWARD_MODE_TTL",
        str(int(_ENVELOPE.mode_ttl_seconds)),
        "Seconds a store's mode row is trusted before it is read again (writers, the rewrap "
        "shards); a migration waits this long after changing the mode.",
    ),
    SettingSpec(
        "KEYWARD_SUPERSEDED_WAIT_SECONDS",
        None,
        "Seconds after a Key Vault rotation before the retirement verdict judges the version "
        "it superseded (writers may still land wraps under it until then). Unset: the writers' "
        "bound, 95 s + KEYWARD_MODE_TTL. A longer wait is allowed; a shorter one (even negative: "
        "an emulator whose clock tests moved forward) only when every allow-listed vault is a "
        "development endpoint.",
    ),
    SettingSpec(
        "KEYWARD_KEK_MAX_AGE_DAYS",
        "90",
        "Crypto-period of a hierarchy-mode store's intermediate keys: the sweep timer starts a "
        "KEK rotation (an admin operation) once the oldest current one is older; 0 = never.",
    ),
)
SPECS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "KEYWARD_VAULT_ALLOWLIST",
        None,
        "Vaults keyward may act on, comma separated: names (public cloud), vault or Managed HSM "
        "URLs, or `name=https://127.0.0.1:PORT` for the local emulator. Events from any other "
        "vault are refused before a network call.",
        required=True,
    ),
    SettingSpec("KEYWARD_DEK_TABLE", "keywarddeks", "Azure Table holding keyward's wrapped DEKs."),
    SettingSpec(
        "KEYWARD_KEK_TABLE",
        "keywardkeks",
        "Azure Table holding the intermediate keys of stores in hierarchy mode (one per data "
        "partition, wrapped by the Key Vault key); rotated like a DEK table. A missing table "
        "reads as empty.",
    ),
    SettingSpec(
        "KEYWARD_BLOB_CONTAINERS",
        None,
        "Blob containers whose client-side-encrypted blobs are rewrapped, comma separated.",
    ),
    SettingSpec(
        "KEYWARD_DEADLETTER_CONTAINER",
        None,
        "Blob container (in keyward's storage account) where keyward's event subscriptions "
        "dead-letter; unset: dead letters are neither shown nor replayed. `GET /api/status` "
        "lists at most 50 of its blobs per call; `keyward replay-dead-letters` replays them.",
    ),
    SettingSpec(
        "KEYWARD_STORAGE_CONNECTION",
        "AzureWebJobsStorage",
        "Name of the storage connection setting (not the connection itself); identity-based "
        "`<name>__accountName` or Azurite's dev connection string.",
    ),
    SettingSpec(
        "KEYWARD_STORAGE_ACCOUNT_URL",
        None,
        "Storage account URL (`https://<account>.blob.core.windows.net`) reached with managed "
        "identity; takes precedence over KEYWARD_STORAGE_CONNECTION.",
    ),
    SettingSpec(
        "KEYWARD_JOB_QUEUE",
        "keyward-rewrap",
        "Storage queue of rewrap shard messages. Set it explicitly: the queue trigger "
        "resolves `%KEYWARD_JOB_QUEUE%`.",
    ),
    SettingSpec(
        "KEYWARD_SWEEP_SCHEDULE",
        "0 */5 * * * *",
        "NCRONTAB (6 fields, seconds first) of the reconciling sweep. Set it explicitly: the "
        "timer resolves `%KEYWARD_SWEEP_SCHEDULE%`.",
    ),
    SettingSpec(
        "KEYWARD_DEPENDENTS_SWEEP_SCHEDULE",
        "30 */5 * * * *",
        "NCRONTAB of the revocation sweep (Face verdicts), apart from the reconciling sweep "
        "and offset from it. Set it explicitly: the timer resolves "
        "`%KEYWARD_DEPENDENTS_SWEEP_SCHEDULE%`.",
    ),
    SettingSpec(
        "KEYWARD_VERIFY_INTERVAL_HOURS",
        "24",
        "Hours after a key's newest rewrap job ended clean before the sweep queues a paced "
        "verification pass of it (it rewraps DEKs applications wrote under an older version "
        "since); 0 turns verification off; at most 8760.",
    ),
    SettingSpec(
        "KEYWARD_RETENTION_DAYS",
        "30",
        "Days keyward keeps handled-event and rejected-event records, ended rewrap jobs "
        "(the newest job per key and store is always kept) and finished admin operations; "
        "2 to 3650: Event Grid redelivers an event for up to 24 hours, and the ledger must "
        "still know it.",
    ),
    SettingSpec(
        "KEYWARD_RETENTION_SCHEDULE",
        "0 30 3 * * *",
        "NCRONTAB of the retention timer (deletes expired records in bounded batches). Set "
        "it explicitly: the timer resolves `%KEYWARD_RETENTION_SCHEDULE%`.",
    ),
    *_DEPENDENT_SETTINGS,
    SettingSpec(
        "KEYWARD_AUTO_ROTATE_NEAR_EXPIRY",
        "false",
        "Rotate a key when Key Vault says it is near expiry (otherwise only warn).",
    ),
    SettingSpec(
        "KEYWARD_EXPIRY_WARNING_DAYS",
        "30",
        "Days before a key's expiry at which Face accounts are flagged AT_RISK.",
    ),
    SettingSpec(
        "KEYWARD_EVENTGRID_TOPIC_ENDPOINT",
        None,
        "Event Grid topic for keyward's outgoing CloudEvents (flags); unset: none published.",
    ),
    SettingSpec(
        "KEYWARD_ARM_ENDPOINT",
        PUBLIC_ARM_ENDPOINT,
        "Azure Resource Manager endpoint (sovereign clouds; loopback for the emulator).",
    ),
    SettingSpec(
        "KEYWARD_CA_BUNDLE",
        None,
        "Development only: CA file trusted for the local emulator's TLS.",
    ),
    SettingSpec(
        "KEYWARD_ADMIN_TENANT_ID",
        None,
        "Admin API: the Microsoft Entra tenant (GUID) whose access tokens are accepted "
        "(`tid` and issuer). Unset: every admin route refuses (500 `AdminAuthNotConfigured`).",
    ),
    SettingSpec(
        "KEYWARD_ADMIN_AUDIENCE",
        None,
        "Admin API: the audience its tokens must carry: the app registration's client id "
        "(v2.0 tokens' `aud`), and/or its application ID URI, separated by `,`. Unset: every "
        "admin route refuses.",
    ),
    SettingSpec(
        "KEYWARD_ADMIN_AUTHORITY",
        PUBLIC_LOGIN_AUTHORITY,
        "Admin API: the Entra ID login endpoint whose OpenID metadata and signing keys are "
        "trusted (sovereign clouds; loopback for the emulator); https only (docs/admin-auth.md).",
    ),
    SettingSpec(
        "AZURE_CLIENT_ID",
        None,
        "Client id of a user-assigned managed identity; unset: the system-assigned identity.",
    ),
    SettingSpec(
        "KEYWARD_ALLOW_LEGACY_RSA1_5",
        "false",
        "Unwrap legacy RSA1_5 DEKs (they are rewrapped with RSA-OAEP-256); never wraps RSA1_5.",
    ),
    SettingSpec(
        "KEYWARD_REWRAP_CONCURRENCY",
        str(DEFAULT_WORKERS),
        "Unwraps in flight per worker: at least rate x latency (400/s x 20-80 ms = 8-32); "
        f"{DEFAULT_WORKERS} leaves room for a slow or contended host (docs/benchmarks.md).",
    ),
    SettingSpec(
        "KEYWARD_REWRAP_SLICE_SECONDS",
        str(DEFAULT_SLICE_SECONDS),
        "Seconds a queue-triggered worker runs before checkpointing and enqueuing a "
        f"continuation; at most {MAX_SLICE_SECONDS}: plus a {SLICE_SAFETY_MARGIN_SECONDS} s "
        f"safety margin it must end before host.json's functionTimeout "
        f"({FUNCTION_TIMEOUT_SECONDS} s).",
    ),
    SettingSpec(
        "KEYWARD_VAULT_SHARE",
        str(DEFAULT_VAULT_SHARE),
        "Fraction of each vault's published Key Vault budget keyward takes, every worker "
        "together (the rest is left to the vault's other users); more than 0, at most 1. "
        "Workers split it through the state table (docs/architecture.md).",
    ),
    SettingSpec(
        "KEYWARD_BUDGET_LEASE_SECONDS",
        str(DEFAULT_BUDGET_LEASE_SECONDS),
        "Seconds a worker's seat on a vault's shared budget lasts without a heartbeat (one "
        f"every fifth of it); {MIN_BUDGET_LEASE_SECONDS} to {MAX_BUDGET_LEASE_SECONDS}. A "
        "dead worker's part returns to the others within this long.",
    ),
    SettingSpec(
        "KEYWARD_VAULT_SUBSCRIPTIONS",
        None,
        "Which allow-listed vaults share an Azure subscription, as `vault=group` pairs separated "
        "by `;` (e.g. `kv-a=sub1;kv-b=sub1;kv-c=sub2`). Each group's workers together also stay "
        f"within the share of {SUBSCRIPTION_BUDGET_FACTOR}x a vault's budget (Key Vault's "
        f"subscription-wide limit); unnamed vaults are all in group "
        f"`{DEFAULT_SUBSCRIPTION_GROUP}`.",
    ),
    *_ENVELOPE_SETTINGS,
)


SPEC_BY_NAME: Mapping[str, SettingSpec] = {spec.name: spec for spec in SPECS}

#: Settings that belong to the Functions host, not keyward; allowed in local.settings.json.
#: Every one is valid on the Flex Consumption plan as an app setting except
#: ``FUNCTIONS_WORKER_RUNTIME`` (:data:`LOCAL_ONLY_HOST_SETTINGS`).
HOST_SETTINGS = frozenset(
    {
        "FUNCTIONS_WORKER_RUNTIME",
        "AzureWebJobsStorage",
        "AzureWebJobsFeatureFlags",
        "AzureWebJobsSecretStorageType",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
        "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
    }
)

#: keyward's telemetry (``shared.adapters.telemetry``) exports to Application Insights when
#: this host setting is present, and nothing when it is absent (docs/telemetry.md). A secret:
#: never logged, never in a repr or an exception.
TELEMETRY_CONNECTION_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
#: The Python worker's OpenTelemetry setting (``true``): the worker configures Azure Monitor
#: at start-up and joins each invocation to the host's trace; host.json's ``telemetryMode:
#: OpenTelemetry`` is the host's half. keyward then leaves the worker's configuration alone.
WORKER_TELEMETRY_SETTING = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
#: The worker-side choices keyward's own configuration makes too, as the worker reads them:
#: export the ``keyward`` loggers only, and no span per Azure SDK request.
WORKER_TELEMETRY_DEFAULTS: Mapping[str, str] = {
    WORKER_TELEMETRY_SETTING: "true",
    "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME": "keyward",
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "azure_sdk",
}
#: Settings whose values are secrets: never logged, never in a repr.
SECRET_SETTINGS = frozenset({TELEMETRY_CONNECTION_SETTING})

#: Host settings that only the local host reads (Core Tools, ``devtools.localhost``): on Flex
#: Consumption the language and its version are ``functionAppConfig.runtime`` (``az
#: functionapp create --runtime python --runtime-version ...``), not an app setting.
LOCAL_ONLY_HOST_SETTINGS = frozenset({"FUNCTIONS_WORKER_RUNTIME"})

#: App settings the Flex Consumption plan deprecates that a Functions app on the older plans
#: sets (runtime and deployment moved to ``functionAppConfig``; the full list is "Flex
#: Consumption plan deprecations" in the Azure Functions app settings reference, see
#: docs/flex-consumption.md). keyward never requires, recommends or lists them: the example
#: settings and the README must not set them (tests/test_settings.py).
FLEX_DEPRECATED_SETTINGS = frozenset(
    {
        "FUNCTIONS_EXTENSION_VERSION",
        "FUNCTIONS_WORKER_RUNTIME_VERSION",
        "WEBSITE_RUN_FROM_PACKAGE",
    }
)


def render_settings_table() -> str:
    """The Markdown table of every setting, as the README shows it."""
    rows = ["| Setting | Default | Meaning |", "|---|---|---|"]
    for spec in SPECS:
        default = "*(required)*" if spec.required else f"`{spec.default}`" if spec.default else ""
        rows.append(f"| `{spec.name}` | {default} | {spec.meaning} |")
    return "\n".join(rows) + "\n"


class Reader:
    """Applies defaults from ``SPECS`` and wraps parser errors with the setting's name."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def get(self, name: str, parse: Callable[[str], T]) -> T:
        spec = SPEC_BY_NAME[name]
        raw = self._env.get(name, "").strip()
        if not raw:
            if spec.required:
                raise SettingError(name, f"is required: {spec.meaning}")
            raw = spec.default or ""
        return apply(name, raw, parse)

    def optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        raw = self._env.get(name, "").strip()
        return apply(name, raw, parse) if raw else None
