"""The admin API's service: a bounded status page, starting a rewrap, and the operations
(dry run, retirement verdict, retire) that count whole stores in the background.

No method here reads a whole store or every job: status is one page, and whole-store work is
recorded and queued as an operation (``shared.services.operations``) whose status URL the
caller polls. Everything it returns is ids, versions, counts and reasons, never key material.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from shared.crypto import VaultAllowList
from shared.errors import ConfigurationError, InvalidInputError, KeywardError
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
from shared.services._caller import Caller
from shared.services._error_answer import error_status
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
from shared.services.audit import (
    ACCEPTED,
    REFUSED,
    SUCCEEDED,
    Auditor,
    AuditTrail,
    InMemoryAuditTrail,
)
from shared.services.dead_letters import (
    DeadLetterReplay,
    DeadLetterSource,
    ReplayReport,
    dead_letter_status,
)
from shared.services.operations import DEFAULT_OPERATION_SLICE_SECONDS, OperationService
from shared.services.retirement import Retirement
from shared.stores import DekStore

_log = logging.getLogger("keyward.admin")
T = TypeVar("T")

#: Dead-letter blobs one admin-API replay lists at most (one page): a call stays well inside
#: the HTTP front end's 230 s; ``more`` in the answer says to call again.
HTTP_REPLAY_BLOBS = 50


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
        dead_letter_replay: DeadLetterReplay | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        # How long after a rotation the verdict says "not yet" (the composition passes the
        # writers' mode TTL from the settings; the default assumes the default TTL).
        wait = default_superseded_wait() if superseded_wait is None else superseded_wait
        self._allow_list = allow_list
        self._dead_letters = dead_letters
        self._replay = dead_letter_replay
        #: Records every mutating call with its caller (state table row + log record).
        self.auditor = Auditor(audit or InMemoryAuditTrail(), now=now)
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
        page["audit"] = await self.auditor.recent()
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

    async def record_refused(self, action: str, caller: Caller, target: str, code: str) -> None:
        """Audit a mutating call refused before it reached the service (the caller's token
        lacked the role): who tried what is kept like any other refusal."""
        await self.auditor.record(action, caller, target, REFUSED, detail=code)

    async def _audited(
        self,
        action: str,
        caller: Caller | None,
        target: str,
        work: Callable[[], Awaitable[T]],
        *,
        outcome: str = ACCEPTED,
    ) -> T:
        """Run ``work`` and record the call with ``caller`` (``shared.services.audit``): the
        operation it started, or the refusal's error code (then re-raised)."""
        try:
            result = await work()
        except KeywardError as error:
            await self.auditor.record(action, caller, target, REFUSED,
                                      detail=error_status(error)[1])  # fmt: skip
            raise
        operation_id = result.operation_id if isinstance(result, Operation) else None
        await self.auditor.record(action, caller, target, outcome, operation_id=operation_id)
        return result

    @staticmethod
    def _caller_data(caller: Caller | None) -> dict[str, Any]:
        """What the operation record keeps of the caller (``GET /api/operations/<id>``)."""
        return {} if caller is None else {"caller": caller.to_dict()}

    async def start_retire(
        self, key: str, *, version: str | None = None, caller: Caller | None = None
    ) -> Operation:
        """Validate (key id, vault, a version named, the key exists), then start retiring
        (the steps and why: ``shared.services.retirement``). ``caller`` is recorded in the
        operation and the audit trail.

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            InvalidInputError: no version given.
            KeyNotFoundError: the vault has no such key.
            ServiceError: the vault, the record or the queue failed.
        """

        async def work() -> Operation:
            key_ref, target = self._retire_target(key, version)
            await self._keys.versions(key_ref)
            return await self.operations.start(
                OperationKind.RETIRE, key_ref, target, data=self._caller_data(caller)
            )

        return await self._audited("retire", caller, _target(key, version), work)

    async def start_migrate(
        self, key: str, *, store: str, to: str, caller: Caller | None = None
    ) -> Operation:
        """Validate, claim the store's job (one conditional write of its mode row), then
        start the migration's operation (``docs/store-jobs.md``); ``caller`` is recorded.

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            InvalidInputError: ``to`` is not hierarchy/direct, or ``store`` holds no records.
            KeyNotFoundError: the vault has no such key.
            JobBusyError: the store's job is held by another runner or operation (409).
            ServiceError: the vault, the store, the record or the queue failed.
        """

        async def work() -> Operation:
            if to not in TARGETS:
                raise InvalidInputError("'to' must be 'hierarchy' or 'direct'")
            data = {"store": store, "to": to, **self._caller_data(caller)}
            return await self._start_store_job(OperationKind.MIGRATE, key, data)

        return await self._audited("migrate", caller, f"{store} {key}", work)

    async def start_rotate_keks(
        self,
        key: str,
        *,
        store: str,
        partition: str | None = None,
        older_than_days: float | None = None,
        caller: Caller | None = None,
    ) -> Operation:
        """Validate, claim the store's job, then start its KEK rotation (of ``partition``,
        or of the partitions whose current KEK is ``older_than_days`` old, or all);
        ``caller`` is recorded (``None``: keyward's own, the sweep timer's).

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            InvalidInputError: a reserved or empty partition, a negative age, or ``store``
                holds no records.
            KeyNotFoundError: the vault has no such key.
            JobBusyError: the store's job is held, or the store is between modes (409).
            ServiceError: the vault, the store, the record or the queue failed.
        """

        async def work() -> Operation:
            if partition is not None and (not partition or partition.startswith("~")):
                raise InvalidInputError(
                    "'partition' must be a non-empty name not starting with '~'"
                )
            if older_than_days is not None and not 0 <= older_than_days <= 36_500:
                raise InvalidInputError("'older_than_days' must be a number of days 0..36500")
            data: dict[str, Any] = {"store": store, **self._caller_data(caller)}
            if partition is not None:
                data["partition"] = partition
            if older_than_days is not None:
                data["older_than_days"] = older_than_days
            return await self._start_store_job(OperationKind.ROTATE_KEKS, key, data)

        return await self._audited("rotate_keks", caller, f"{store} {key}", work)

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

    async def retire(
        self, key: str, *, version: str | None = None, caller: Caller | None = None
    ) -> dict[str, Any]:
        """Retire an old key version in this call (the retire operation's steps, run to the
        end in process: the CLI's and the tests' way; the admin API starts an operation).
        ``caller`` is recorded in the audit trail.

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            InvalidInputError: no version given.
            RetirementBlockedError: something still depends on the version; nothing changed.
            RetirementRaceError: retired and previous wraps dropped, but the second look
                found something under it (listed).
            ServiceError: the vault or a store failed.
        """

        async def work() -> dict[str, Any]:
            key_ref, target = self._retire_target(key, version)
            return await self._retirement.retire(key_ref, target)

        return await self._audited("retire", caller, _target(key, version), work,
                                   outcome=SUCCEEDED)  # fmt: skip

    async def rewrap(
        self,
        key: str,
        *,
        version: str | None,
        restart: bool = False,
        caller: Caller | None = None,
    ) -> dict[str, Any]:
        """Start the rewrap of ``key`` to ``version`` or its newest version (a dry run is an
        operation: :meth:`start_dry_run`).

        A job that already ended is not run again by a plain request (a duplicate is
        harmless); with ``restart`` every shard's job of the target that is not running now is
        marked for a fresh pass (whatever its status, attempts or backoff) before the shard
        messages are queued. The answer's ``restarted`` lists the jobs so marked. ``caller``
        is recorded in the audit trail.

        Raises:
            KeyIdError, VaultNotAllowedError: ``key`` is malformed or its vault is not allowed
                (no request was made).
            RewrapTargetError: the requested version is missing or disabled.
            ServiceError: the vault, the stores or the queue failed.
        """
        return await self._audited(
            "rewrap", caller, _target(key, version), lambda: self._rewrap(key, version, restart)
        )

    async def _rewrap(self, key: str, version: str | None, restart: bool) -> dict[str, Any]:
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

    async def replay_dead_letters(
        self,
        *,
        vault: str | None = None,
        dry_run: bool = False,
        max_blobs: int = HTTP_REPLAY_BLOBS,
        caller: Caller | None = None,
    ) -> ReplayReport:
        """Replay dead-lettered events through the Event Grid trigger's own handler
        (``shared.services.dead_letters``), in this call: at most ``max_blobs`` blobs listed
        (``more`` says others wait). A replay that is not dry is recorded with ``caller``.

        Raises:
            ConfigurationError: no dead-letter container is configured.
            ServiceError: the container could not be listed.
        """

        async def work() -> ReplayReport:
            if self._replay is None:
                raise ConfigurationError(
                    "KEYWARD_DEADLETTER_CONTAINER is not set: no dead letters to replay"
                )
            return await self._replay.replay(vault=vault, dry_run=dry_run, max_blobs=max_blobs)

        if dry_run:
            return await work()
        return await self._audited("replay_dead_letters", caller, vault or "*", work,
                                   outcome=SUCCEEDED)  # fmt: skip


def _target(key: str, version: str | None) -> str:
    """The audit row's target: the key id as given, and the version when named apart."""
    return f"{key} version={version}" if version else key
