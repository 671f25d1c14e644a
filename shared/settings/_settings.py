"""The ``Settings`` object: read every setting once, validate, freeze."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from shared.crypto import VaultAllowList
from shared.errors import SettingError
from shared.settings._specs import DEPENDENT_SPECS, SPEC_BY_NAME, Reader
from shared.settings._storage import StorageTarget, resolve_storage
from shared.settings._values import (
    allow_list,
    arm_endpoint,
    as_bool,
    container_name,
    eventgrid_endpoint,
    existing_file,
    guid,
    int_between,
    list_of,
    ncrontab,
    queue_name,
    resource_group,
    table_name,
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


@dataclass(frozen=True)
class Settings:
    """Validated settings. Build with ``Settings.from_env``; see ``SPECS`` for meanings."""

    vault_allowlist: VaultAllowList
    storage: StorageTarget
    dek_table: str = "keywarddeks"
    blob_containers: tuple[str, ...] = ()
    job_queue: str = "keyward-rewrap"
    sweep_schedule: str = "0 */5 * * * *"
    dependents: Mapping[str, DependentScope] = field(default_factory=dict)
    auto_rotate_near_expiry: bool = False
    expiry_warning_days: int = 30
    eventgrid_topic_endpoint: str | None = None
    arm_endpoint: str = "https://management.azure.com"
    ca_bundle: str | None = None
    azure_client_id: str | None = None
    allow_legacy_rsa1_5: bool = False
    rewrap_concurrency: int = 64
    rewrap_slice_seconds: int = 240
    #: Every keyward setting present in the environment, as given, for :meth:`read`.
    raw: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def read(self, name: str, parse: Callable[[str], T]) -> T:
        """A setting no field above holds (a registered DEK-store kind's own; see
        ``shared.composition``), with its ``SPECS`` default; errors name the setting.

        Raises:
            SettingError: the setting is missing (when required) or invalid.
        """
        return Reader(self.raw).get(name, parse)

    @property
    def expiry_warning_window(self) -> timedelta:
        return timedelta(days=self.expiry_warning_days)

    def dependent(self, kind: str) -> DependentScope:
        """The settings of one kind of key-dependent resource (``face``); unset: off."""
        return self.dependents.get(kind) or DependentScope()

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
        r = Reader(env)
        return cls(
            vault_allowlist=r.get("KEYWARD_VAULT_ALLOWLIST", allow_list),
            storage=resolve_storage(env),
            dek_table=r.get("KEYWARD_DEK_TABLE", table_name),
            blob_containers=r.get("KEYWARD_BLOB_CONTAINERS", list_of(container_name)),
            job_queue=r.get("KEYWARD_JOB_QUEUE", queue_name),
            sweep_schedule=r.get("KEYWARD_SWEEP_SCHEDULE", ncrontab),
            dependents={
                spec.kind: DependentScope(
                    subscriptions=r.get(spec.subscriptions, list_of(guid)),
                    resource_groups=r.get(spec.resource_groups, list_of(resource_group)),
                    repoint=r.get(spec.repoint, as_bool),
                    repoint_setting=spec.repoint,
                )
                for spec in DEPENDENT_SPECS
            },
            auto_rotate_near_expiry=r.get("KEYWARD_AUTO_ROTATE_NEAR_EXPIRY", as_bool),
            expiry_warning_days=r.get("KEYWARD_EXPIRY_WARNING_DAYS", int_between(1, 365)),
            eventgrid_topic_endpoint=r.optional(
                "KEYWARD_EVENTGRID_TOPIC_ENDPOINT", eventgrid_endpoint
            ),
            arm_endpoint=r.get("KEYWARD_ARM_ENDPOINT", arm_endpoint),
            ca_bundle=r.optional("KEYWARD_CA_BUNDLE", existing_file),
            azure_client_id=r.optional("AZURE_CLIENT_ID", guid),
            allow_legacy_rsa1_5=r.get("KEYWARD_ALLOW_LEGACY_RSA1_5", as_bool),
            rewrap_concurrency=r.get("KEYWARD_REWRAP_CONCURRENCY", int_between(1, 512)),
            rewrap_slice_seconds=r.get("KEYWARD_REWRAP_SLICE_SECONDS", int_between(10, 3600)),
            raw={name: env[name] for name in SPEC_BY_NAME if name in env},
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
