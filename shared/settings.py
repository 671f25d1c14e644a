"""keyward's app settings: one typed, frozen object, validated once at start.

Every setting is listed once in ``SPECS`` (name, default, meaning); the README table and
``local.settings.example.json`` are checked against it by tests. A bad value fails start-up
with a ``SettingError`` that names the setting and says what is expected, rather than
failing later inside an SDK call.

No secrets live in settings. Production authenticates with managed identity through
``DefaultAzureCredential`` (``AZURE_CLIENT_ID`` picks a user-assigned identity), so:

* storage is reached through ``KEYWARD_STORAGE_ACCOUNT_URL`` or an identity-based connection
  (``<connection>__accountName`` or ``__blobServiceUri``/``__queueServiceUri``/
  ``__tableServiceUri``); a connection string holding ``AccountKey=`` or
  ``SharedAccessSignature=`` is refused, except for Azurite's published development account
  (``UseDevelopmentStorage=true`` or ``AccountName=devstoreaccount1``), whose key is public;
* any ``KEYWARD_*`` value that looks like a credential is refused outright;
* ARM and Event Grid endpoints must be Azure hosts (or loopback, for the local emulator), so a
  typo cannot send the identity's bearer token elsewhere.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from shared.crypto import VaultAllowList
from shared.errors import KeyIdError, SettingError

T = TypeVar("T")


@dataclass(frozen=True)
class SettingSpec:
    """One documented setting. ``default`` is ``None`` when the setting is optional and
    unset means "off" (or "not configured"), and for the one required setting."""

    name: str
    default: str | None
    meaning: str
    required: bool = False


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
        "KEYWARD_BLOB_CONTAINERS",
        None,
        "Blob containers whose client-side-encrypted blobs are rewrapped, comma separated.",
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
    SettingSpec("KEYWARD_JOB_QUEUE", "keyward-rewrap", "Storage queue of rewrap shard messages."),
    SettingSpec(
        "KEYWARD_SWEEP_SCHEDULE",
        "0 */5 * * * *",
        "NCRONTAB (6 fields, seconds first) of the reconciling sweep.",
    ),
    SettingSpec(
        "KEYWARD_FACE_SUBSCRIPTIONS",
        None,
        "Subscription GUIDs searched for Face accounts, comma separated; empty: no Face checks.",
    ),
    SettingSpec(
        "KEYWARD_FACE_RESOURCE_GROUPS",
        None,
        "Limit the Face search to these resource groups, comma separated.",
    ),
    SettingSpec(
        "KEYWARD_FACE_REPOINT",
        "false",
        "Re-point Face accounts pinned to an old key version to the new version after a "
        "rotation (otherwise they are flagged STALE_KEY_VERSION).",
    ),
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
        "https://management.azure.com",
        "Azure Resource Manager endpoint (sovereign clouds; loopback for the emulator).",
    ),
    SettingSpec(
        "KEYWARD_CA_BUNDLE",
        None,
        "Development only: CA file trusted for the local emulator's TLS.",
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
        "32",
        "Unwraps in flight per worker (about rate x latency: 400/s x 20-80 ms).",
    ),
    SettingSpec(
        "KEYWARD_REWRAP_SLICE_SECONDS",
        "240",
        "Seconds a queue-triggered worker runs before checkpointing and enqueuing a "
        "continuation; keep it below the host's functionTimeout.",
    ),
)

SPEC_BY_NAME: Mapping[str, SettingSpec] = {spec.name: spec for spec in SPECS}

#: Settings that belong to the Functions host, not keyward; allowed in local.settings.json.
HOST_SETTINGS = frozenset(
    {
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "AzureWebJobsStorage",
        "AzureWebJobsFeatureFlags",
        "AzureWebJobsSecretStorageType",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "WEBSITE_RUN_FROM_PACKAGE",
    }
)

_AZURITE_ACCOUNT = "devstoreaccount1"
_CREDENTIAL_MARKERS = ("accountkey=", "sharedaccesssignature=", "sig=", "client_secret")
_ARM_HOSTS = ("management.azure.com", "management.chinacloudapi.cn", "management.usgovcloudapi.net")
_EVENTGRID_SUFFIXES = (
    ".eventgrid.azure.net",
    ".eventgrid.azure.cn",
    ".eventgrid.usgovcloudapi.net",
)
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_STORAGE_SERVICES = ("blob", "queue", "table")
_STORAGE_HOST = re.compile(r"^([a-z0-9]{3,24})\.(?:blob|queue|table|dfs|file)\.([a-z0-9.-]+)$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_TABLE = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_CONTAINER_OR_QUEUE = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$", re.ASCII)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class StorageTarget:
    """Where keyward's tables, queues and blobs live, and how it authenticates.

    Either ``connection_string`` is set (Azurite, or a key-less string) or the three service
    URLs are, to be used with managed identity.
    """

    connection_setting: str
    connection_string: str | None = field(default=None, repr=False)
    blob_url: str | None = None
    queue_url: str | None = None
    table_url: str | None = None

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None


@dataclass(frozen=True)
class Settings:
    """Validated settings. Build with ``Settings.from_env``; see ``SPECS`` for meanings."""

    vault_allowlist: VaultAllowList
    storage: StorageTarget
    dek_table: str = "keywarddeks"
    blob_containers: tuple[str, ...] = ()
    job_queue: str = "keyward-rewrap"
    sweep_schedule: str = "0 */5 * * * *"
    face_subscriptions: tuple[str, ...] = ()
    face_resource_groups: tuple[str, ...] = ()
    face_repoint: bool = False
    auto_rotate_near_expiry: bool = False
    expiry_warning_days: int = 30
    eventgrid_topic_endpoint: str | None = None
    arm_endpoint: str = "https://management.azure.com"
    ca_bundle: str | None = None
    azure_client_id: str | None = None
    allow_legacy_rsa1_5: bool = False
    rewrap_concurrency: int = 32
    rewrap_slice_seconds: int = 240

    @property
    def expiry_warning_window(self) -> timedelta:
        return timedelta(days=self.expiry_warning_days)

    @property
    def face_enabled(self) -> bool:
        return bool(self.face_subscriptions)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting.

        Args:
            environ: the app settings; ``os.environ`` when omitted.

        Raises:
            SettingError: the first missing or invalid setting, by name, with what is expected.
        """
        env: Mapping[str, str] = os.environ if environ is None else environ
        _refuse_unknown_and_secret(env)
        r = _Reader(env)
        return cls(
            vault_allowlist=r.get("KEYWARD_VAULT_ALLOWLIST", _allow_list),
            storage=_storage(env),
            dek_table=r.get("KEYWARD_DEK_TABLE", _table_name),
            blob_containers=r.get("KEYWARD_BLOB_CONTAINERS", _list(_container_name)),
            job_queue=r.get("KEYWARD_JOB_QUEUE", _queue_name),
            sweep_schedule=r.get("KEYWARD_SWEEP_SCHEDULE", _ncrontab),
            face_subscriptions=r.get("KEYWARD_FACE_SUBSCRIPTIONS", _list(_guid)),
            face_resource_groups=r.get("KEYWARD_FACE_RESOURCE_GROUPS", _list(_resource_group)),
            face_repoint=r.get("KEYWARD_FACE_REPOINT", _bool),
            auto_rotate_near_expiry=r.get("KEYWARD_AUTO_ROTATE_NEAR_EXPIRY", _bool),
            expiry_warning_days=r.get("KEYWARD_EXPIRY_WARNING_DAYS", _int_between(1, 365)),
            eventgrid_topic_endpoint=r.optional("KEYWARD_EVENTGRID_TOPIC_ENDPOINT", _eventgrid),
            arm_endpoint=r.get("KEYWARD_ARM_ENDPOINT", _arm_endpoint),
            ca_bundle=r.optional("KEYWARD_CA_BUNDLE", _existing_file),
            azure_client_id=r.optional("AZURE_CLIENT_ID", _guid),
            allow_legacy_rsa1_5=r.get("KEYWARD_ALLOW_LEGACY_RSA1_5", _bool),
            rewrap_concurrency=r.get("KEYWARD_REWRAP_CONCURRENCY", _int_between(1, 512)),
            rewrap_slice_seconds=r.get("KEYWARD_REWRAP_SLICE_SECONDS", _int_between(10, 3600)),
        )


def render_settings_table() -> str:
    """The Markdown table of every setting, as the README shows it."""
    rows = ["| Setting | Default | Meaning |", "|---|---|---|"]
    for spec in SPECS:
        default = "*(required)*" if spec.required else f"`{spec.default}`" if spec.default else ""
        rows.append(f"| `{spec.name}` | {default} | {spec.meaning} |")
    return "\n".join(rows) + "\n"


class _Reader:
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
        return _apply(name, raw, parse)

    def optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        raw = self._env.get(name, "").strip()
        return _apply(name, raw, parse) if raw else None


def _apply(name: str, raw: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(raw)
    except (ValueError, KeyIdError) as exc:
        raise SettingError(name, str(exc)) from None


def _refuse_unknown_and_secret(env: Mapping[str, str]) -> None:
    """Refuse likely typos of keyward settings and credential-looking values.

    Other ``KEYWARD_*`` variables are left alone: dev tooling uses a few of its own
    (``KEYWARD_AZURITE_CONNECTION_STRING``), and they are not app settings.
    """
    for name, value in env.items():
        if not name.startswith("KEYWARD_"):
            continue
        if name not in SPEC_BY_NAME:
            near = difflib.get_close_matches(name, list(SPEC_BY_NAME), n=1, cutoff=0.85)
            if near:
                raise SettingError(name, f"is not a keyward setting; did you mean {near[0]}?")
            continue
        if any(marker in value.lower() for marker in _CREDENTIAL_MARKERS):
            raise SettingError(
                name, "looks like it holds a credential; keyward settings never hold secrets"
            )


# --- value parsers: each raises ValueError with what is expected -------------------------


def _allow_list(raw: str) -> VaultAllowList:
    allow_list = VaultAllowList.parse(raw)
    if not allow_list:
        raise ValueError("lists no vault")
    return allow_list


def _list(item: Callable[[str], str]) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        items = [part.strip() for part in raw.split(",") if part.strip()]
        return tuple(dict.fromkeys(item(part) for part in items))

    return parse


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{raw[:20]!r} is not a boolean (expected true or false)")


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw[:20]!r} is not a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}..{high}")
        return value

    return parse


def _guid(raw: str) -> str:
    if not _GUID.match(raw):
        raise ValueError(f"{raw[:40]!r} is not a GUID")
    return raw.lower()


def _table_name(raw: str) -> str:
    if not _TABLE.match(raw):
        raise ValueError(f"{raw[:70]!r} is not a table name (3-63 letters and digits)")
    return raw


def _container_name(raw: str) -> str:
    if not _CONTAINER_OR_QUEUE.match(raw):
        raise ValueError(
            f"{raw[:70]!r} is not a container name (3-63 lower-case letters, digits, hyphens)"
        )
    return raw


def _queue_name(raw: str) -> str:
    if not _CONTAINER_OR_QUEUE.match(raw):
        raise ValueError(
            f"{raw[:70]!r} is not a queue name (3-63 lower-case letters, digits, hyphens)"
        )
    return raw


def _resource_group(raw: str) -> str:
    if not _RESOURCE_GROUP.match(raw):
        raise ValueError(f"{raw[:100]!r} is not a resource group name")
    return raw


def _existing_file(raw: str) -> str:
    if not Path(raw).is_file():
        raise ValueError(f"{raw!r} is not a file")
    return raw


def _https_origin(raw: str, *, allow_path: bool) -> tuple[str, str]:
    """Validate an https URL; returns (normalised URL, host)."""
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ValueError(f"{raw[:100]!r} is not a URL") from None
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError(f"{raw[:100]!r} must be an https:// URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{raw[:100]!r} must not carry credentials, a query or a fragment")
    if not allow_path and parts.path not in ("", "/"):
        raise ValueError(f"{raw[:100]!r} must be just https://host")
    host = parts.hostname.lower()
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != 443:
        netloc += f":{port}"
    path = parts.path.rstrip("/") if allow_path else ""
    return f"https://{netloc}{path}", host


def _is_loopback(host: str) -> bool:
    return host in _LOOPBACK_HOSTS


def _arm_endpoint(raw: str) -> str:
    url, host = _https_origin(raw, allow_path=False)
    if host not in _ARM_HOSTS and not _is_loopback(host):
        raise ValueError(
            f"{raw[:100]!r} is not an Azure Resource Manager endpoint "
            f"({', '.join(_ARM_HOSTS)}) or a loopback emulator"
        )
    return url


def _eventgrid(raw: str) -> str:
    url, host = _https_origin(raw, allow_path=True)
    if not host.endswith(_EVENTGRID_SUFFIXES) and not _is_loopback(host):
        raise ValueError(
            f"{raw[:100]!r} is not an Event Grid topic endpoint (*.eventgrid.azure.net)"
        )
    return url


# NCRONTAB fields: second, minute, hour, day, month, day of week (names allowed in the last two).
_CRON_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CRON_NAMES: tuple[Mapping[str, int], ...] = (
    {},
    {},
    {},
    {},
    {m: i + 1 for i, m in enumerate(_MONTHS)},
    {d: i for i, d in enumerate(_DAYS)},
)
_CRON_FIELDS = ("second", "minute", "hour", "day", "month", "day of week")


def _ncrontab(raw: str) -> str:
    fields = raw.split()
    if len(fields) != 6:
        raise ValueError(
            f"{raw[:60]!r} has {len(fields)} fields; NCRONTAB needs 6: "
            "{second} {minute} {hour} {day} {month} {day-of-week}"
        )
    for text, (low, high), names, label in zip(
        fields, _CRON_RANGES, _CRON_NAMES, _CRON_FIELDS, strict=True
    ):
        for part in text.split(","):
            _cron_part(part, low, high, names, label)
    return " ".join(fields)


def _cron_part(part: str, low: int, high: int, names: Mapping[str, int], label: str) -> None:
    base, _, step = part.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"{label} step {step!r} must be a positive number")
    if base == "*":
        return
    bounds = base.split("-")
    if len(bounds) > 2 or not all(bounds):
        raise ValueError(f"{label} {part!r} is not a value, range or */step")
    for bound in bounds:
        value = names.get(bound.lower()) if not bound.isdigit() else int(bound)
        if value is None or not low <= value <= high:
            raise ValueError(f"{label} {bound!r} is outside {low}-{high}")


def _storage(env: Mapping[str, str]) -> StorageTarget:
    """Resolve storage: account URL, identity-based connection, or Azurite's dev string."""
    reader = _Reader(env)
    connection = reader.get("KEYWARD_STORAGE_CONNECTION", _setting_name)
    account_url = reader.optional("KEYWARD_STORAGE_ACCOUNT_URL", _storage_account_url)
    if account_url is not None:
        return StorageTarget(connection, None, *account_url)
    value = env.get(connection, "").strip()
    if value:
        _refuse_keyed_connection_string(connection, value)
        return StorageTarget(connection, value)
    account_name = env.get(f"{connection}__accountName", "").strip()
    if account_name:
        urls = _apply(
            f"{connection}__accountName",
            f"https://{account_name}.blob.core.windows.net",
            _storage_account_url,
        )
        return StorageTarget(connection, None, *urls)
    service_urls = [env.get(f"{connection}__{s}ServiceUri", "").strip() for s in _STORAGE_SERVICES]
    if all(service_urls):
        checked = [
            _apply(
                f"{connection}__{s}ServiceUri", u, lambda v: _https_origin(v, allow_path=True)[0]
            )
            for s, u in zip(_STORAGE_SERVICES, service_urls, strict=True)
        ]
        return StorageTarget(connection, None, *checked)
    raise SettingError(
        connection,
        "is not set: give KEYWARD_STORAGE_ACCOUNT_URL, an identity-based connection "
        f"({connection}__accountName), or Azurite's UseDevelopmentStorage=true",
    )


def _setting_name(raw: str) -> str:
    if not _SETTING_NAME.match(raw):
        raise ValueError(
            f"must name the setting holding the connection (e.g. AzureWebJobsStorage), "
            f"not hold the connection itself; got {raw[:20]!r}..."
        )
    return raw


def _storage_account_url(raw: str) -> tuple[str, str, str]:
    _, host = _https_origin(raw, allow_path=False)
    match = _STORAGE_HOST.match(host)
    if match is None:
        raise ValueError(
            f"{raw[:100]!r} is not a storage account URL (https://<account>.blob.core.windows.net)"
        )
    account, suffix = match.groups()
    blob, queue, table = (f"https://{account}.{s}.{suffix}" for s in _STORAGE_SERVICES)
    return blob, queue, table


def _refuse_keyed_connection_string(name: str, value: str) -> None:
    pairs = {
        key.strip().lower(): val.strip()
        for key, _, val in (part.partition("=") for part in value.split(";"))
        if key.strip()
    }
    if pairs.get("usedevelopmentstorage", "").lower() == "true":
        return
    if pairs.get("accountname", "").lower() == _AZURITE_ACCOUNT:
        return  # Azurite's well-known development key is published, not a secret
    if "accountkey" in pairs or "sharedaccesssignature" in pairs:
        raise SettingError(
            name,
            "holds an account key or SAS; keyward uses managed identity: set "
            f"KEYWARD_STORAGE_ACCOUNT_URL or an identity-based {name}__accountName instead",
        )
