"""The admin API's service: a bounded status page, starting a rewrap, and the operations
(dry run, retirement verdict, retire) that count whole stores in the background.

No method here reads a whole store or every job: status is one page, and whole-store work is
recorded and queued as an operation (``shared.services.operations``) whose status URL the
caller polls. Everything it returns is ids, versions, counts and reasons, never key material.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.crypto import VaultAllowList
from shared.errors import InvalidInputError
from shared.rewrap import (
    EngineSettings,
    JobState,
    JobStore,
    KeyVersionSource,
    RetiredVersions,
    RetirementReport,
    resolve_target,
)
from shared.services._operation import Operation, OperationKind, accepted_json
from shared.services._operation_steps import OperationParts
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
from shared.services._status_page import status_json, store_modes
from shared.services.operations import DEFAULT_OPERATION_SLICE_SECONDS, OperationService
from shared.services.retirement import Retirement
from shared.stores import DekStore


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
    ) -> None:
        self._allow_list = allow_list
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
        )
        parts = OperationParts(stores, keys, dependents.pinned_versions, self._jobs_of, retired,
                               now, engine_settings or EngineSettings())  # fmt: skip
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
        """One page of jobs (per shard, with progress), flags and rejected events, all
        bounded; no store scan and no verdict (``shared.services._status_page``).

        Raises:
            InvalidInputError: ``limit`` out of 1..200, or a malformed ``continuation``.
            ServiceError: the state could not be read.
        """
        return await status_json(list(self._stores), self._job_store, self._dependents,
                                 self._ledger, limit=limit, continuation=continuation,
                                 modes=await store_modes(self._stores))  # fmt: skip

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
