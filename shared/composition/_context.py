"""The composition root: every adapter the services use, built once from Settings.

Azure Functions reuses a worker process for many invocations, so clients (and their
connection pools) are built once per process and event loop, not per invocation. Tests and
the local host build a context with an injected credential; production uses managed
identity through ``DefaultAzureCredential`` (``AZURE_CLIENT_ID`` picks a user-assigned one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.data.tables.aio import TableClient, TableServiceClient
from azure.storage.blob.aio import ContainerClient

from shared.adapters._azure_errors import translated
from shared.adapters._keyvault_admin import KeyVaultAdmin
from shared.adapters._pipeline import NO_REDIRECTS
from shared.adapters.audit_trail import TableAuditTrail
from shared.adapters.budget_board import TableBudgetBoard
from shared.adapters.dead_letters import BlobDeadLetters
from shared.adapters.entra_tokens import EntraTokenVerifier
from shared.adapters.event_ledger import EventLedger
from shared.adapters.job_retention import TableJobRetention
from shared.adapters.operation_store import TableOperationRecords, TableOperationRetention
from shared.adapters.queues import RewrapQueue
from shared.adapters.retired_versions import TableRetiredVersions
from shared.adapters.table_state import TableJobStore
from shared.composition._clients import arm_clients, keyvault_adapter
from shared.composition._dependents import (
    Clock,
    EventGridCredential,
    SharedClients,
    build_dependents,
)
from shared.composition._store_job_ports import build_job_ports
from shared.composition._stores import StorageClients, app_store_settings, build_app_stores
from shared.errors import ConfigurationError
from shared.rewrap import EngineSettings, KeyVersionSource
from shared.services._planner import RewrapPlanner
from shared.services._ports import KeyDependents
from shared.services._store_jobs import JobPorts, StoreJobParts
from shared.services.admin import AdminService
from shared.services.admin_access import AdminGate
from shared.services.dead_letters import DeadLetterReplay
from shared.services.dependents_sweep import DependentsSweepService
from shared.services.follow_up import DependentsFollowUpService
from shared.services.key_events import KeyEventService
from shared.services.migration import KeySourceVaultKeys
from shared.services.queue_worker import QueueWorkerService
from shared.services.retention import RetentionService
from shared.services.rewrap_worker import RewrapWorkerService
from shared.services.sweep import SweepService
from shared.settings import Settings
from shared.stores import DekStore

#: keyward's own state (job checkpoints, event ledger, every kind's flags) lives in this table;
#: the context builds one client for it and every user shares that one.
STATE_TABLE = "keywardstate"


def default_credential(settings: Settings) -> AsyncTokenCredential:
    """Managed identity in Azure; whatever DefaultAzureCredential finds elsewhere."""
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=settings.azure_client_id)


@dataclass
class AppContext:
    """Adapters for one process and event loop. Build with :meth:`build`; ``aclose`` ends it."""

    settings: Settings
    credential: AsyncTokenCredential
    keys: KeyVersionSource
    state_table: TableClient
    ledger: EventLedger
    queue: RewrapQueue
    stores: dict[str, DekStore]
    dependents: KeyDependents
    key_admin: KeyVaultAdmin
    #: The stores holding application records (migrations, KEK rotations), by shard name.
    job_ports: dict[str, JobPorts] = field(default_factory=dict)
    #: The event subscriptions' dead-letter container (``KEYWARD_DEADLETTER_CONTAINER``).
    dead_letters: BlobDeadLetters | None = None
    #: The admin API's token check (``KEYWARD_ADMIN_*``); ``None``: not configured, so every
    #: admin route refuses (``admin_gate``).
    admin_tokens: EntraTokenVerifier | None = None
    _closers: list[Any] = field(default_factory=list, repr=False)

    @property
    def shards(self) -> tuple[str, ...]:
        return tuple(self.stores)

    def planner(self) -> RewrapPlanner:
        return RewrapPlanner(self.keys, self.queue, self.shards)

    def job_store(self, shard: str) -> TableJobStore:
        return TableJobStore(self.state_table, shard)

    def retired(self) -> TableRetiredVersions:
        """The retired-version record, beside the job checkpoints in the state table."""
        return TableRetiredVersions(self.state_table)

    def audit_trail(self) -> TableAuditTrail:
        """The audit rows of mutating admin calls, beside the event ledger in the state table."""
        return TableAuditTrail(self.state_table)

    def admin_gate(self) -> AdminGate:
        """The admin API's check (Entra ID token, then app role); fails closed when
        ``KEYWARD_ADMIN_TENANT_ID`` or ``KEYWARD_ADMIN_AUDIENCE`` is unset."""
        return AdminGate(
            self.admin_tokens, missing="KEYWARD_ADMIN_TENANT_ID and KEYWARD_ADMIN_AUDIENCE"
        )

    def budget_board(self) -> TableBudgetBoard:
        """Every vault's shared budget board, beside the job checkpoints in the state table:
        each engine run of every instance is a member of its vault's budget."""
        return TableBudgetBoard(self.state_table)

    def store(self, shard: str) -> DekStore:
        try:
            return self.stores[shard]
        except KeyError:
            raise ConfigurationError(
                f"shard {shard!r} is not configured ({app_store_settings()})"
            ) from None

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            workers=self.settings.rewrap_concurrency,
            allow_legacy_rsa1_5=self.settings.allow_legacy_rsa1_5,
            vault_share=self.settings.vault_share,
            budget_lease_seconds=self.settings.budget_lease_seconds,
            subscription_groups=self.settings.vault_subscriptions,
        )

    def key_events(self) -> KeyEventService:
        return KeyEventService(
            allow_list=self.settings.vault_allowlist,
            ledger=self.ledger,
            planner=self.planner(),
            follow_ups=self.queue,
            rotator=self.key_admin,
            auto_rotate_near_expiry=self.settings.auto_rotate_near_expiry,
        )

    def dead_letter_replay(self) -> DeadLetterReplay:
        """Replays dead-lettered events through ``key_events().handle``, the Event Grid
        trigger's own entry point.

        Raises:
            ConfigurationError: ``KEYWARD_DEADLETTER_CONTAINER`` is not set.
        """
        if self.dead_letters is None:
            raise ConfigurationError(
                "KEYWARD_DEADLETTER_CONTAINER is not set: no dead letters to replay"
            )
        return DeadLetterReplay(self.dead_letters, self.key_events().handle)

    def follow_ups(self, *, max_dequeue_count: int | None = None) -> DependentsFollowUpService:
        return DependentsFollowUpService(
            allow_list=self.settings.vault_allowlist,
            ledger=self.ledger,
            dependents=self.dependents,
            rotator=self.key_admin,
            max_dequeue_count=max_dequeue_count,
        )

    def queue_worker(self, *, max_dequeue_count: int) -> QueueWorkerService:
        """The queue trigger's service: rewrap shards and key-dependent follow-ups."""
        return QueueWorkerService(
            rewrap=self.rewrap_worker(max_dequeue_count=max_dequeue_count),
            follow_ups=self.follow_ups(max_dequeue_count=max_dequeue_count),
            operations=self.admin(max_dequeue_count=max_dequeue_count).operations,
        )

    def rewrap_worker(self, *, max_dequeue_count: int) -> RewrapWorkerService:
        return RewrapWorkerService(
            allow_list=self.settings.vault_allowlist,
            stores=self.stores,
            job_store=self.job_store,
            keys=self.keys,
            queue=self.queue,
            engine_settings=self.engine_settings(),
            slice_seconds=self.settings.rewrap_slice_seconds,
            max_dequeue_count=max_dequeue_count,
            rejections=self.ledger,
            retired=self.retired(),
            budget_board=self.budget_board(),
        )

    def sweep(self) -> SweepService:
        return SweepService(
            allow_list=self.settings.vault_allowlist,
            lister=self.key_admin,
            keys=self.keys,
            shards=self.shards,
            job_store=self.job_store,
            queue=self.queue,
            verify_interval=self.settings.verify_interval,
        )

    def retention(self) -> RetentionService:
        """The retention timer's service, over the state table's ledger and job partitions."""
        return RetentionService(
            ledger=self.ledger,
            jobs=TableJobRetention(self.state_table),
            operations=TableOperationRetention(self.state_table),
            shards=self.shards,
            retention_days=self.settings.retention_days,
            audit=self.audit_trail(),
        )

    def dependents_sweep(self) -> DependentsSweepService:
        return DependentsSweepService(self.dependents)

    def admin(self, *, max_dequeue_count: int | None = None) -> AdminService:
        """The admin API's service; its ``operations`` run on the queue (records in the
        state table: ``shared.adapters.operation_store``)."""
        return AdminService(
            allow_list=self.settings.vault_allowlist,
            stores=self.stores,
            job_store=self.job_store,
            keys=self.keys,
            planner=self.planner(),
            ledger=self.ledger,
            dependents=self.dependents,
            engine_settings=self.engine_settings(),
            retired=self.retired(),
            operation_records=TableOperationRecords(self.state_table),
            operation_queue=self.queue,
            slice_seconds=self.settings.rewrap_slice_seconds,
            max_dequeue_count=max_dequeue_count,
            store_jobs=self.store_job_parts(),
            superseded_wait=self.settings.superseded_wait,
            dead_letters=self.dead_letters,
            dead_letter_replay=None if self.dead_letters is None else self.dead_letter_replay(),
            audit=self.audit_trail(),
        )

    def store_job_parts(self) -> StoreJobParts:
        """What the store-job operations run over: the record stores, the vault (wraps
        under the newest enabled version, RSA-OAEP-256), the writers' TTLs, and the vaults'
        budget boards their unwraps take a seat on (as every rewrap run does)."""
        return StoreJobParts(
            ports=self.job_ports,
            vault=KeySourceVaultKeys(
                self.keys, allow_legacy_rsa1_5=self.settings.allow_legacy_rsa1_5
            ),
            envelope=self.settings.envelope,
            engine=self.engine_settings(),
            board=self.budget_board(),
        )

    @classmethod
    async def build(
        cls,
        settings: Settings,
        *,
        credential: AsyncTokenCredential | None = None,
        dependents: KeyDependents | None = None,
        eventgrid_credential: EventGridCredential | None = None,
        clock: Clock | None = None,
    ) -> AppContext:
        """Build every adapter from ``settings``; no network call is made here except
        creating keyward's own state table and queue if they do not exist.

        ``dependents`` replaces the key-dependent resources' services (tests);
        ``eventgrid_credential`` and ``clock`` are handed to them (see ``build_dependents``).
        """

        closers: list[Any] = []
        if credential is None:
            credential = default_credential(settings)
            closers.append(credential)  # ours to close; an injected one is the caller's
        storage = settings.storage
        if storage.connection_string is not None:
            tables = TableServiceClient.from_connection_string(
                storage.connection_string, **NO_REDIRECTS
            )
            queue = RewrapQueue.from_connection_string(
                storage.connection_string, settings.job_queue
            )

            def container(name: str) -> ContainerClient:
                assert storage.connection_string is not None
                return ContainerClient.from_connection_string(
                    storage.connection_string, name, **NO_REDIRECTS
                )

        else:
            assert storage.table_url
            assert storage.queue_url
            assert storage.blob_url
            tables = TableServiceClient(storage.table_url, credential=credential, **NO_REDIRECTS)
            queue = RewrapQueue.from_url(storage.queue_url, settings.job_queue, credential)
            blob_url = storage.blob_url

            def container(name: str) -> ContainerClient:
                return ContainerClient(blob_url, name, credential=credential, **NO_REDIRECTS)

        closers.extend((tables, queue))
        try:
            with (
                translated(f"create table {STATE_TABLE}"),
                contextlib.suppress(ResourceExistsError),
            ):
                await tables.create_table(STATE_TABLE)
            await queue.ensure_exists()
        except BaseException:
            await _close_all(closers)  # a failed build leaves no client (connection) open
            raise
        state_table = tables.get_table_client(STATE_TABLE)
        stores = build_app_stores(StorageClients(settings, credential, tables, container))
        closers.extend(stores.values())
        dead_letters = None
        if settings.deadletter_container is not None:
            dead_letters = BlobDeadLetters(container(settings.deadletter_container))
            closers.append(dead_letters)
        admin_tokens = admin_token_verifier(settings)
        if admin_tokens is not None:
            closers.append(admin_tokens)
        job_ports, job_clients = build_job_ports(settings, tables)
        closers.extend(job_clients)
        keys = keyvault_adapter(settings, credential)  # also the key-access reader's
        closers.append(keys)
        key_admin = KeyVaultAdmin(keys)  # the same Key Vault clients, no second set
        arm = arm_clients(settings, credential)
        closers.append(arm)
        if dependents is None:
            dependents, built = build_dependents(
                settings,
                SharedClients(credential, state_table, keys, arm),
                eventgrid_credential=eventgrid_credential,
                clock=clock,
            )
            closers.extend(built)
        else:
            closers.append(dependents)  # injected: closed with the context, as before
        return cls(
            settings=settings,
            credential=credential,
            keys=keys,
            state_table=state_table,
            ledger=EventLedger(state_table),
            queue=queue,
            stores=stores,
            dependents=dependents,
            key_admin=key_admin,
            job_ports=job_ports,
            dead_letters=dead_letters,
            admin_tokens=admin_tokens,
            _closers=closers,
        )

    async def aclose(self) -> None:
        await _close_all(self._closers)


def admin_token_verifier(settings: Settings) -> EntraTokenVerifier | None:
    """The admin API's token verifier from the settings; ``None`` unless both the tenant and
    the audience are set (no network call here: the keys are read on the first token)."""
    if settings.admin_tenant_id is None or not settings.admin_audience:
        return None
    return EntraTokenVerifier(
        tenant_id=settings.admin_tenant_id,
        audiences=settings.admin_audience,
        authority=settings.admin_authority,
        ca_bundle=settings.ca_bundle,
    )


async def _close_all(closers: Sequence[Any]) -> None:
    """Close each, newest first; one failing close leaves none of the others open."""
    for closer in reversed(closers):
        close = getattr(closer, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                result = close()
                if asyncio.iscoroutine(result):
                    await result


_CONTEXTS: dict[int, asyncio.Task[AppContext]] = {}


async def context_for_current_loop(settings_source: Any = None) -> AppContext:
    """The process-wide context for the running event loop, built once on first use.

    Keyed by loop because aiohttp sessions belong to the loop that made them. Concurrent
    first invocations share one build (a task), so no second context is built and leaked.

    Raises:
        ConfigurationError: a setting is missing or invalid (nothing is cached; the next
            invocation tries again, e.g. after the setting was fixed).
        ServiceError: keyward's own storage could not be prepared.
    """
    loop = asyncio.get_running_loop()
    key = id(loop)
    task = _CONTEXTS.get(key)
    if task is None:
        task = loop.create_task(AppContext.build(Settings.from_env(settings_source)))
        _CONTEXTS[key] = task
    try:
        return await asyncio.shield(task)
    except Exception:
        if _CONTEXTS.get(key) is task:
            del _CONTEXTS[key]
        raise


def reset_contexts() -> Sequence[AppContext]:
    """Forget cached contexts (tests, the local host between runs); returns the built ones
    so the caller can ``aclose`` them."""
    built = [
        t.result()
        for t in _CONTEXTS.values()
        if t.done() and not t.cancelled() and t.exception() is None
    ]
    _CONTEXTS.clear()
    return built
