"""The admin API's service: a bounded status page, starting a rewrap, and the operations
(dry run, retirement verdict, retire) that count whole stores in the background.

No method here reads a whole store or every job: status is one page, and whole-store work is
recorded and queued as an operation (``shared.services.operations``) whose status URL the
caller polls. Everything it returns is ids, versions, counts and reasons, never key material.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.crypto import VaultAllowList
from shared.errors import InvalidInputError, KeywardError
from shared.records import Phase as JobPhase
from shared.records import StoreMode, read_checkpoint
from shared.rewrap import (
    EngineSettings,
    JobState,
    JobStore,
    KeyVersionSource,
    RetiredVersions,
    RetirementReport,
    resolve_target,
)
from shared.services._operation import (
    Operation,
    OperationKind,
    accepted_json,
    new_operation_id,
)
from shared.services._operation_steps import OperationParts
from shared.services._operation_steps import superseded_wait as default_superseded_wait
from shared.services._operation_store import (
    InMemoryOperationRecords,
    NoQueue,
    OperationQueue,
    OperationRecords,
    OperationStore,
)
from shared.services._planner import RewrapPlanner
from shared.services._ports import EventLedgerPort, KeyDependents
from shared.services._restart import request_restart
from shared.services._status_page import status_json, store_jobs, store_modes
from shared.services._store_jobs import (
    TARGETS,
    StoreJobParts,
    build_job,
    claim,
    refuse_if_running,
)
from shared.services.dead_letters import DeadLetterSource, dead_letter_status
from shared.services.operations import DEFAULT_OPERATION_SLICE_SECONDS, OperationService
from shared.services.retirement import Retirement
from shared.stores import DekStore

_log = logging.getLogger("keyward.admin")


class AdminService:
    """The service behind the admin API: status, rewrap, and the operations (dry run,
    verdict, retire) that run in the background."""

    def __init__(
        self,
        *,
        allow_list: VaultAllowList,
        stores: Mapping[str, DekStore],
        job_store: Callable[[str], JobStore],
        keys: KeyVersionSource,
        planner: RewrapPlanner,
        ledger: EventLedgerPort,
        dependents: KeyDependents,
        engine_settings: EngineSettings | None = None,
        retired: RetiredVersions,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        operation_records: OperationRecords | None = None,
        operation_queue: OperationQueue | None = None,
        slice_seconds: float = DEFAULT_OPERATION_SLICE_SECONDS,
        max_dequeue_count: int | None = None,
        store_jobs: StoreJobParts | None = None,
        superseded_wait: timedelta | None = None,
        dead_letters: DeadLetterSource | None = None,
    ) -> None:
        # How long after a rotation the verdict says "not yet" (the composition passes the
        # writers' mode TTL from the settings; the default assumes the default TTL).
        wait = default_superseded_wait() if superseded_wait is None else superseded_wait
        self._allow_list = allow_list
        self._dead_letters = dead_letters
        self._store_jobs = store_jobs
        self._now = now
        self._stores = stores
        self._job_store = job_store
        self._keys = keys
        self._planner = planner
        self._ledger = ledger
        self._dependents = dependents
        self._retirement = Retirement(
            stores=stores,
            keys=keys,
            pinned=dependents.pinned_versions,
            jobs=self._jobs_of,
            retired=retired,
            now=now,
            superseded_wait=wait,
        )
        parts = OperationParts(stores, keys, dependents.pinned_versions, self._jobs_of, retired,
                               now, engine_settings or EngineSettings(),
                               store_jobs=store_jobs, superseded_wait=wait)  # fmt: skip
        #: The operations' service (the queue worker runs its slices).
        self.operations = OperationService(
            parts=parts,
            records=OperationStore(operation_records or InMemoryOperationRecords()),
            queue=operation_queue or NoQueue(),
            slice_seconds=slice_seconds,
            max_dequeue_count=max_dequeue_count,
        )

    async def status(
        self, *, limit: int | None = None, continuation: str | None = None
    ) -> dict[str, Any]:
        """One page of jobs (per shard, with progress), flags, rejected events and
        dead-lettered events per vault (``dead_letters``: at most 50 blobs listed), all
        bounded; no store scan and no verdict (``shared.services._status_page``).

        Raises:
            InvalidInputError: ``limit`` out of 1..200, or a malformed ``continuation``.
            ServiceError: the state could not be read.
        """
        page = await status_json(list(self._stores), self._job_store, self._dependents,
                                 self._ledger, limit=limit, continuation=continuation,
                                 modes=await store_modes(self._stores),
                                 store_jobs=await store_jobs(self._stores))  # fmt: skip
        page["dead_letters"] = await self._dead_letter_status()
        return page

    async def _dead_letter_status(self) -> dict[str, Any]:
        """Dead-lettered events per vault (one bounded listing); a container that cannot be
        read is said on the page, which still answers."""
        try:
            return await dead_letter_status(self._dead_letters)
        except KeywardError as error:
            return {"enabled": True, "error": str(error)}

    @staticmethod
    def accepted(operation: Operation) -> dict[str, Any]:
        """The ``202`` body for a started operation: id, status URL, status."""
        return accepted_json(operation)

    async def operation(self, operation_id: str) -> dict[str, Any] | None:
        """An operation's status, progress and result or error; ``None`` if unknown.

        Raises:
            InvalidInputError: not an operation id.
            ServiceError: the record could not be read.
        """
        return await self.operations.status(operation_id)

    async def start_dry_run(self, key: str, *, version: str | None) -> Operation:
        """Validate (key id, vault, target: a few vault reads), then start a dry run.

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            RewrapTargetError: the requested version is missing or disabled.
            ServiceError: the vault, the record or the queue failed.
        """
        key_id = self._allow_list.check_key_id(key, require_version=False)
        target = await resolve_target(self._keys, key_id.key_ref, version or key_id.version)
        return await self.operations.start(
            OperationKind.DRY_RUN, target.key_ref, target.target_version
        )

    async def start_verdict(self, key: str) -> Operation:
        """Validate (key id, vault, the key exists: one vault read), then start a verdict.

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            KeyNotFoundError: the vault has no such key.
            ServiceError: the vault, the record or the queue failed.
        """
        key_ref = self._allow_list.check_key_id(key, require_version=False).key_ref
        await self._keys.versions(key_ref)
        return await self.operations.start(OperationKind.VERDICT, key_ref)

    async def start_retire(self, key: str, *, version: str | None = None) -> Operation:
        """Validate (key id, vault, a version named, the key exists), then start retiring
        (the steps and why: ``shared.services.retirement``).

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            InvalidInputError: no version given.
            KeyNotFoundError: the vault has no such key.
            ServiceError: the vault, the record or the queue failed.
        """
        key_ref, target = self._retire_target(key, version)
        await self._keys.versions(key_ref)
        return await self.operations.start(OperationKind.RETIRE, key_ref, target)

    async def start_migrate(self, key: str, *, store: str, to: str) -> Operation:
        """Validate, claim the store's job (one conditional write of its mode row), then
        start the migration's operation (``docs/store-jobs.md``).

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            InvalidInputError: ``to`` is not hierarchy/direct, or ``store`` holds no records.
            KeyNotFoundError: the vault has no such key.
            JobBusyError: the store's job is held by another runner or operation (409).
            ServiceError: the vault, the store, the record or the queue failed.
        """
        if to not in TARGETS:
            raise InvalidInputError("'to' must be 'hierarchy' or 'direct'")
        return await self._start_store_job(OperationKind.MIGRATE, key, {"store": store, "to": to})

    async def start_rotate_keks(
        self,
        key: str,
        *,
        store: str,
        partition: str | None = None,
        older_than_days: float | None = None,
    ) -> Operation:
        """Validate, claim the store's job, then start its KEK rotation (of ``partition``,
        or of the partitions whose current KEK is ``older_than_days`` old, or all).

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            InvalidInputError: a reserved or empty partition, a negative age, or ``store``
                holds no records.
            KeyNotFoundError: the vault has no such key.
            JobBusyError: the store's job is held, or the store is between modes (409).
            ServiceError: the vault, the store, the record or the queue failed.
        """
        if partition is not None and (not partition or partition.startswith("~")):
            raise InvalidInputError("'partition' must be a non-empty name not starting with '~'")
        if older_than_days is not None and not 0 <= older_than_days <= 36_500:
            raise InvalidInputError("'older_than_days' must be a number of days 0..36500")
        data: dict[str, Any] = {"store": store}
        if partition is not None:
            data["partition"] = partition
        if older_than_days is not None:
            data["older_than_days"] = older_than_days
        return await self._start_store_job(OperationKind.ROTATE_KEKS, key, data)

    async def _start_store_job(
        self, kind: OperationKind, key: str, data: dict[str, Any]
    ) -> Operation:
        if self._store_jobs is None:
            raise InvalidInputError("no store with application records is configured")
        key_ref = self._allow_list.check_key_id(key, require_version=False).key_ref
        ports = self._store_jobs.store(str(data["store"]))
        await self._keys.versions(key_ref)
        await refuse_if_running(ports, self._operation_running, self._now())
        operation_id = new_operation_id()
        draft = Operation(operation_id, kind, key_ref, None, (str(data["store"]),),
                          self._now(), self._now(), data=data)  # fmt: skip
        job = build_job(self._store_jobs, draft, self._now, self._store_jobs.vault)
        try:
            await claim(job)
        finally:
            job.close()
        return await self.operations.start(kind, key_ref, operation_id=operation_id, data=data)

    async def start_due_kek_rotations(self, max_age_days: int) -> list[Operation]:
        """The intermediate keys' crypto-period (the sweep timer): for each hierarchy-mode
        store with no job running whose KEK table holds a KEK created more than
        ``max_age_days`` ago, start a KEK rotation of the partitions that old. Per store:
        one mode-row read and at most one KEK-table query (``CreatedAt`` filter, top 1);
        never a scan of the records. ``0``: off.

        A store whose rotation cannot start (its job taken in between, the key gone) is
        logged and asked again at the next run.

        Raises:
            ServiceError: a store's mode row or KEK table could not be read.
        """
        if max_age_days <= 0 or self._store_jobs is None:
            return []
        started: list[Operation] = []
        now = self._now()
        for store, ports in self._store_jobs.ports.items():
            row = await ports.modes.read_mode()
            if row.mode is not StoreMode.HIERARCHY:
                continue
            last = read_checkpoint(row.migration)
            if last is not None and not last.finished:
                continue  # a job runs (or waits to be resumed): never a second one
            if last is not None and last.phase is JobPhase.BLOCKED:
                continue  # blocked on records an operator must look at: not every sweep
            old = await ports.kek_older_than(now - timedelta(days=max_age_days))
            if old is None:
                continue
            try:
                started.append(await self.start_rotate_keks(
                    old.key_ref, store=store, older_than_days=float(max_age_days)))  # fmt: skip
            except KeywardError as error:  # the next timer run asks again
                _log.warning("KEK rotation of %s not started: %s", store, error)
        return started

    async def _operation_running(self, operation_id: str) -> bool:
        try:
            found = await self.operations.status(operation_id)
        except InvalidInputError:
            return False
        return found is not None and found["status"] in {"accepted", "running"}

    def _retire_target(self, key: str, version: str | None) -> tuple[str, str]:
        key_id = self._allow_list.check_key_id(key, require_version=False)
        target = (version or key_id.version or "").lower()
        if not target:
            raise InvalidInputError("name the version to retire (a versioned key id or 'version')")
        return key_id.key_ref, target

    async def verdict(self, key_ref: str) -> RetirementReport:
        """The retirement verdict of ``key_ref``, counted whole in this call (the CLI's and
        the tests' view; the admin API runs it as an operation).

        Raises:
            ServiceError: a store, the job store or the vault could not be read.
        """
        return await self._retirement.verdict(key_ref)

    async def _jobs_of(self, key_ref: str) -> list[JobState]:
        states: list[JobState] = []
        for shard in self._stores:
            states.extend(await self._job_store(shard).list_jobs(key_ref))
        return states

    async def retire(self, key: str, *, version: str | None = None) -> dict[str, Any]:
        """Retire an old key version in this call (the retire operation's steps, run to the
        end in process: the CLI's and the tests' way; the admin API starts an operation).

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            InvalidInputError: no version given.
            RetirementBlockedError: something still depends on the version; nothing changed.
            RetirementRaceError: retired and previous wraps dropped, but the second look
                found something under it (listed).
            ServiceError: the vault or a store failed.
        """
        key_ref, target = self._retire_target(key, version)
        return await self._retirement.retire(key_ref, target)

    async def rewrap(
        self, key: str, *, version: str | None, restart: bool = False
    ) -> dict[str, Any]:
        """Start the rewrap of ``key`` to ``version`` or its newest version (a dry run is an
        operation: :meth:`start_dry_run`).

        A job that already ended is not run again by a plain request (a duplicate is
        harmless); with ``restart`` every shard's job of the target that is not running now is
        marked for a fresh pass (whatever its status, attempts or backoff) before the shard
        messages are queued. The answer's ``restarted`` lists the jobs so marked.

        Raises:
            KeyIdError, VaultNotAllowedError: ``key`` is malformed or its vault is not allowed
                (no request was made).
            RewrapTargetError: the requested version is missing or disabled.
            ServiceError: the vault, the stores or the queue failed.
        """
        key_id = self._allow_list.check_key_id(key, require_version=False)
        requested = version or key_id.version
        key_ref = key_id.key_ref
        restarted: list[str] = []
        if restart:
            target = await resolve_target(self._keys, key_ref, requested)
            restarted = await request_restart(
                list(self._stores), self._job_store, key_ref, target.target_version
            )
            requested = target.target_version
        planned = await self._planner.plan(key_ref, requested)
        return {
            "dry_run": False,
            "key": planned.key_ref,
            "requested_version": planned.requested_version,
            "target_version": planned.target_version,
            "redirected": planned.redirected,
            "jobs": [{"job_id": m.job_id, "shard": m.shard} for m in planned.messages],
            "restarted": restarted,
        }
