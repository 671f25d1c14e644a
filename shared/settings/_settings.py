"""The ``Settings`` object: read every setting once, validate, freeze."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any, TypeVar

from shared.crypto import VaultAllowList
from shared.errors import SettingError
from shared.records import EnvelopeSettings, superseded_wait_seconds
from shared.rewrap import MAX_BUDGET_LEASE_SECONDS, MIN_BUDGET_LEASE_SECONDS, SubscriptionGroups
from shared.settings._specs import (
    DEPENDENT_SPECS,
    SPEC_BY_NAME,
    DependentSpec,
    Reader,
    dependent_kinds,
)
from shared.settings._storage import StorageTarget, resolve_storage
from shared.settings._values import (
    allow_list,
    arm_endpoint,
    as_bool,
    audiences,
    container_name,
    eventgrid_endpoint,
    existing_file,
    guid,
    int_between,
    list_of,
    login_authority,
    ncrontab,
    queue_name,
    resource_group,
    retention_days,
    slice_seconds,
    table_name,
    vault_share,
    verify_interval_hours,
)

T = TypeVar("T")


@dataclass(frozen=True)
class DependentScope:
    """Where one kind of key-dependent resource is searched, and whether it is re-pointed.

    Attributes:
        subscriptions: subscription GUIDs to search; none: the kind is not checked.
        resource_groups: limit the search to these groups.
        repoint: re-point resources pinned to an old key version after a rotation.
        repoint_setting: the name of the setting behind ``repoint`` (for messages).
    """

    subscriptions: tuple[str, ...] = ()
    resource_groups: tuple[str, ...] = ()
    repoint: bool = False
    repoint_setting: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.subscriptions)


_CREDENTIAL_MARKERS = ("accountkey=", "sharedaccesssignature=", "sig=", "client_secret")
#: Field metadata key: the setting a field is read from, its parser, and whether unset is None.
_SETTING = "keyward_setting"
#: Field metadata key: the field holding every key-dependent kind's scope.
_DEPENDENTS = "keyward_dependents"


def _setting(name: str, parse: Callable[[str], T]) -> T:
    """A field read from setting ``name``; its default is that setting's ``SPECS`` default,
    parsed, so a default is written once (in ``SPECS``) and ``from_env`` applies the same."""
    default = Reader({}).get(name, parse)
    return field(default=default, metadata={_SETTING: (name, parse, False)})


def _optional(name: str, parse: Callable[[str], T]) -> T | None:
    """A field read from setting ``name``, ``None`` when it is unset (``SPECS`` default None)."""
    return field(default=None, metadata={_SETTING: (name, parse, True)})


def _scope(r: Reader, kind: DependentSpec) -> DependentScope:
    return DependentScope(
        subscriptions=r.get(kind.subscriptions, list_of(guid)),
        resource_groups=r.get(kind.resource_groups, list_of(resource_group)),
        repoint=r.get(kind.repoint, as_bool),
        repoint_setting=kind.repoint,
    )


def _dependents(r: Reader) -> Mapping[str, DependentScope]:
    """Every key-dependent kind's scope, in ``DEPENDENT_SPECS`` order; a kind not in
    ``KEYWARD_DEPENDENT_KINDS`` is off, and naming subscriptions for it is refused (a
    setting that would silently do nothing)."""
    watched = r.get("KEYWARD_DEPENDENT_KINDS", dependent_kinds)
    scopes = {}
    for kind in DEPENDENT_SPECS:
        scope = _scope(r, kind)
        if kind.kind not in watched:
            if scope.subscriptions:
                raise SettingError(
                    kind.subscriptions,
                    f"is set but {kind.kind!r} is not in KEYWARD_DEPENDENT_KINDS "
                    f"({', '.join(watched) or 'empty'}); add it there or unset this",
                )
            scope = DependentScope(repoint_setting=kind.repoint)
        scopes[kind.kind] = scope
    return scopes


@dataclass(frozen=True)
class Settings:
    """Validated settings. Build with ``Settings.from_env``; see ``SPECS`` for meanings."""

    vault_allowlist: VaultAllowList
    storage: StorageTarget
    dek_table: str = _setting("KEYWARD_DEK_TABLE", table_name)
    kek_table: str = _setting("KEYWARD_KEK_TABLE", table_name)
    blob_containers: tuple[str, ...] = _setting("KEYWARD_BLOB_CONTAINERS", list_of(container_name))
    deadletter_container: str | None = _optional("KEYWARD_DEADLETTER_CONTAINER", container_name)
    job_queue: str = _setting("KEYWARD_JOB_QUEUE", queue_name)
    sweep_schedule: str = _setting("KEYWARD_SWEEP_SCHEDULE", ncrontab)
    dependents_sweep_schedule: str = _setting("KEYWARD_DEPENDENTS_SWEEP_SCHEDULE", ncrontab)
    verify_interval_hours: int = _setting("KEYWARD_VERIFY_INTERVAL_HOURS", verify_interval_hours)
    retention_days: int = _setting("KEYWARD_RETENTION_DAYS", retention_days)
    retention_schedule: str = _setting("KEYWARD_RETENTION_SCHEDULE", ncrontab)
    #: Each key-dependent kind's settings (``DEPENDENT_SPECS``), read at this point in order.
    dependents: Mapping[str, DependentScope] = field(
        default_factory=lambda: _dependents(Reader({})), metadata={_DEPENDENTS: True}
    )
    #: How key-dependent resources are found: Resource Graph (else per subscription), how
    #: long an inventory is reused, and the one ARM pace (``shared.adapters.arm.ArmPacer``).
    resource_graph: bool = _setting("KEYWARD_RESOURCE_GRAPH", as_bool)
    inventory_cache_seconds: int = _setting("KEYWARD_INVENTORY_CACHE_SECONDS", int_between(0, 3600))
    arm_requests_per_second: int = _setting("KEYWARD_ARM_REQUESTS_PER_SECOND", int_between(1, 1000))
    auto_rotate_near_expiry: bool = _setting("KEYWARD_AUTO_ROTATE_NEAR_EXPIRY", as_bool)
    expiry_warning_days: int = _setting("KEYWARD_EXPIRY_WARNING_DAYS", int_between(1, 365))
    eventgrid_topic_endpoint: str | None = _optional(
        "KEYWARD_EVENTGRID_TOPIC_ENDPOINT", eventgrid_endpoint
    )
    arm_endpoint: str = _setting("KEYWARD_ARM_ENDPOINT", arm_endpoint)
    ca_bundle: str | None = _optional("KEYWARD_CA_BUNDLE", existing_file)
    #: The admin API's token validation (docs/admin-auth.md); unset tenant/audience: refused.
    admin_tenant_id: str | None = _optional("KEYWARD_ADMIN_TENANT_ID", guid)
    admin_audience: tuple[str, ...] | None = _optional("KEYWARD_ADMIN_AUDIENCE", audiences)
    admin_authority: str = _setting("KEYWARD_ADMIN_AUTHORITY", login_authority)
    azure_client_id: str | None = _optional("AZURE_CLIENT_ID", guid)
    allow_legacy_rsa1_5: bool = _setting("KEYWARD_ALLOW_LEGACY_RSA1_5", as_bool)
    rewrap_concurrency: int = _setting("KEYWARD_REWRAP_CONCURRENCY", int_between(1, 512))
    rewrap_slice_seconds: int = _setting("KEYWARD_REWRAP_SLICE_SECONDS", slice_seconds)
    vault_share: float = _setting("KEYWARD_VAULT_SHARE", vault_share)
    budget_lease_seconds: int = _setting(
        "KEYWARD_BUDGET_LEASE_SECONDS",
        int_between(MIN_BUDGET_LEASE_SECONDS, MAX_BUDGET_LEASE_SECONDS),
    )
    cache_size: int = _setting("KEYWARD_CACHE_SIZE", int_between(0, 10_000_000))
    dek_cache_seconds: int = _setting("KEYWARD_DEK_CACHE_SECONDS", int_between(0, 86_400))
    kek_cache_seconds: int = _setting("KEYWARD_KEK_CACHE_SECONDS", int_between(0, 86_400))
    mode_ttl: int = _setting("KEYWARD_MODE_TTL", int_between(0, 3_600))
    superseded_wait_seconds: int | None = _optional(
        "KEYWARD_SUPERSEDED_WAIT_SECONDS", int_between(-86_400, 86_400)
    )
    kek_max_age_days: int = _setting("KEYWARD_KEK_MAX_AGE_DAYS", int_between(0, 36_500))
    #: ``KEYWARD_VAULT_SUBSCRIPTIONS``, read in ``from_env`` (its names need the allow-list).
    vault_subscriptions: SubscriptionGroups = field(default_factory=SubscriptionGroups)
    #: Every keyward setting present in the environment, as given, for :meth:`read`.
    raw: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def envelope(self) -> EnvelopeSettings:
        """The application envelope's caches and mode TTL, from these settings."""
        return _envelope({name: getattr(self, name) for name in _ENVELOPE_FIELDS})

    @property
    def superseded_wait(self) -> timedelta:
        """How long after a rotation the retirement verdict says "not yet" for the version it
        superseded: the writers' bound for ``KEYWARD_MODE_TTL``
        (``shared.records.superseded_wait_seconds``), or ``KEYWARD_SUPERSEDED_WAIT_SECONDS``.

        Raises:
            SettingError: a wait shorter than the writers' bound while a real vault is on the
                allow-list (only the emulator's tests may shorten it).
        """
        floor = superseded_wait_seconds(self.mode_ttl)
        given = self.superseded_wait_seconds
        if given is None:
            return timedelta(seconds=floor)
        dev_only = len(self.vault_allowlist.dev_origins) == len(self.vault_allowlist.vaults)
        if given < floor and not dev_only:
            raise SettingError(
                "KEYWARD_SUPERSEDED_WAIT_SECONDS",
                f"{given} is shorter than the writers' bound "
                f"({floor:g} s for KEYWARD_MODE_TTL={self.mode_ttl}); a retirement verdict could "
                "call a version safe while wraps under it are still landing",
            )
        return timedelta(seconds=given)

    def read(self, name: str, parse: Callable[[str], T]) -> T:
        """A setting no field above holds (a registered DEK-store kind's own; see
        ``shared.composition``), with its ``SPECS`` default; errors name the setting.

        Raises:
            SettingError: the setting is missing (when required) or invalid.
        """
        return Reader(self.raw).get(name, parse)

    @property
    def verify_interval(self) -> timedelta:
        """How long after a clean job's last pass the sweep verifies it (zero: never)."""
        return timedelta(hours=self.verify_interval_hours)

    @property
    def expiry_warning_window(self) -> timedelta:
        return timedelta(days=self.expiry_warning_days)

    def dependent(self, kind: str) -> DependentScope:
        """The settings of one kind of key-dependent resource (``face``); unset: off."""
        return self.dependents.get(kind) or DependentScope()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting, in field order.

        Args:
            environ: the app settings; ``os.environ`` when omitted.

        Raises:
            SettingError: the first missing or invalid setting, by name, with what is expected.
        """
        env: Mapping[str, str] = os.environ if environ is None else environ
        _refuse_unknown_and_secret(env)
        r = Reader(env)
        vault_allowlist = r.get("KEYWARD_VAULT_ALLOWLIST", allow_list)
        subscriptions = r.get(
            "KEYWARD_VAULT_SUBSCRIPTIONS",
            lambda raw: SubscriptionGroups.parse(raw, vault_allowlist),
        )
        storage = resolve_storage(env)
        values: dict[str, Any] = {}
        for spec in fields(cls):
            if _SETTING in spec.metadata:
                name, parse, optional = spec.metadata[_SETTING]
                values[spec.name] = r.optional(name, parse) if optional else r.get(name, parse)
            elif _DEPENDENTS in spec.metadata:
                values[spec.name] = _dependents(r)
        return cls(
            vault_allowlist=vault_allowlist,
            storage=storage,
            vault_subscriptions=subscriptions,
            raw={name: env[name] for name in SPEC_BY_NAME if name in env},
            **values,
        )


#: The ``Settings`` fields an application's envelope reads (``envelope_from_env``).
_ENVELOPE_FIELDS = ("cache_size", "dek_cache_seconds", "kek_cache_seconds", "mode_ttl")


def envelope_from_env(environ: Mapping[str, str] | None = None) -> EnvelopeSettings:
    """The application envelope's settings (``KEYWARD_CACHE_SIZE``,
    ``KEYWARD_DEK_CACHE_SECONDS``, ``KEYWARD_KEK_CACHE_SECONDS``, ``KEYWARD_MODE_TTL``) alone,
    with the same parsers and defaults as :class:`Settings`: an application has none of the
    Function App's other settings.

    Raises:
        SettingError: one of the four is invalid, by name.
    """
    r = Reader(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        if spec.name in _ENVELOPE_FIELDS:
            name, parse, _ = spec.metadata[_SETTING]
            values[spec.name] = r.get(name, parse)
    return _envelope(values)


def _envelope(values: Mapping[str, int]) -> EnvelopeSettings:
    return EnvelopeSettings(
        cache_size=values["cache_size"],
        dek_cache_seconds=float(values["dek_cache_seconds"]),
        kek_cache_seconds=float(values["kek_cache_seconds"]),
        mode_ttl_seconds=float(values["mode_ttl"]),
    )


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
