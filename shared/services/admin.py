"""The admin API's service: status of jobs, flags and rejected events; start or dry-run a
rewrap. Everything it returns is ids, versions, counts and reasons, never key material."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.crypto import VaultAllowList
from shared.errors import ConflictError, InvalidInputError
from shared.rewrap import (
    EngineSettings,
    JobState,
    JobStatus,
    JobStore,
    KeyVersionSource,
    RetiredVersions,
    RetirementReport,
    RewrapEngine,
    resolve_target,
    rewrap_job_id,
)
from shared.services._planner import RewrapPlanner
from shared.services._ports import EventLedgerPort, KeyDependents
from shared.services._render import dry_run_json, job_json, retirement_json
from shared.services.retirement import Retirement
from shared.stores import DekStore

#: Keys shown in the retirement part of ``status`` (the newest jobs' keys first).
MAX_RETIREMENT_KEYS = 20


class AdminService:
    """The service behind ``GET /api/status`` and ``POST /api/rewrap``."""

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
    ) -> None:
        self._allow_list = allow_list
        self._retired = retired
        self._now = now
        self._stores = stores
        self._job_store = job_store
        self._keys = keys
        self._planner = planner
        self._ledger = ledger
        self._dependents = dependents
        self._engine_settings = engine_settings or EngineSettings()
        self._retirement = Retirement(
            stores=stores,
            keys=keys,
            pinned=dependents.pinned_versions,
            jobs=self._jobs_of,
            retired=retired,
            now=now,
        )

    async def status(self) -> dict[str, Any]:
        """Jobs (per shard, with progress), Face flags, rejected events, retirement.

        Raises:
            ServiceError: a store could not be read.
        """
        jobs: list[dict[str, Any]] = []
        key_refs: list[str] = []
        for shard in self._stores:
            for state in await self._job_store(shard).list_jobs():
                jobs.append(job_json(state))
                if state.key_ref not in key_refs:
                    key_refs.append(state.key_ref)
        jobs.sort(key=lambda job: str(job["updated_at"]), reverse=True)
        retirement = [
            retirement_json(await self.verdict(key_ref))
            for key_ref in key_refs[:MAX_RETIREMENT_KEYS]
        ]
        return {
            "jobs": jobs,
            **{
                key: [dict(flag) for flag in flags]
                for key, flags in (await self._dependents.status()).items()
            },
            "rejected_events": await self._ledger.recent_rejections(),
            "retirement": retirement,
            "shards": list(self._stores),
        }

    async def verdict(self, key_ref: str) -> RetirementReport:
        """The retirement verdict of ``key_ref`` over every store, the vault, the pinned
        resources, the key's jobs and the retired-version record.

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
        """Retire an old key version: record it as retired, drop the previous wraps kept
        under it, then look again; "safe to disable" only if nothing appeared meanwhile
        (the steps and why: ``shared.services.retirement``).

        Previous wraps are kept after a rewrap so data stays readable under the old version
        until an operator decides it is retired; this is that decision.

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            InvalidInputError: no version given.
            RetirementBlockedError: DEKs or immutable copies are still wrapped under it,
                resources are pinned to it, a job of the key is running or pending, or it is
                the key's newest enabled version. Nothing was changed.
            RetirementRaceError: the version is now retired and its previous wraps are
                dropped, but the second look found something under it (listed).
            ServiceError: the vault or a store failed.
        """
        key_id = self._allow_list.check_key_id(key, require_version=False)
        target = (version or key_id.version or "").lower()
        if not target:
            raise InvalidInputError("name the version to retire (a versioned key id or 'version')")
        return await self._retirement.retire(key_id.key_ref, target)

    async def rewrap(
        self, key: str, *, version: str | None, dry_run: bool, restart: bool = False
    ) -> dict[str, Any]:
        """Start (or dry-run) the rewrap of ``key`` to ``version`` or its newest version.

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
        if dry_run:
            reports = []
            for shard, store in self._stores.items():
                engine = RewrapEngine(
                    store=store,
                    keys=self._keys,
                    jobs=self._job_store(shard),
                    settings=self._engine_settings,
                    retired=self._retired,
                )
                reports.append(dry_run_json(shard, await engine.dry_run(key_ref, requested)))
            return {"dry_run": True, "key": key_ref, "shards": reports}
        restarted: list[str] = []
        if restart:
            target = await resolve_target(self._keys, key_ref, requested)
            restarted = await self._request_restart(key_ref, target.target_version)
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

    async def _request_restart(self, key_ref: str, target_version: str) -> list[str]:
        """Mark each shard's existing job of ``target_version`` for a fresh pass.

        A job that is running now (live lease) is left alone; it is already running.

        Raises:
            ServiceError: the job store failed.
        """
        marked: list[str] = []
        now = datetime.now(UTC)
        for shard in self._stores:
            jobs = self._job_store(shard)
            job_id = rewrap_job_id(key_ref, target_version, shard)
            stored = await jobs.get(job_id)
            if stored is None:
                continue  # no job yet: the queued message starts a fresh one
            state = stored.state
            live = state.lease_expires_at is not None and state.lease_expires_at > now
            if state.status is JobStatus.RUNNING and live:
                continue
            try:
                await jobs.put(
                    state.evolve(restart_requested=True, updated_at=now),
                    expected_etag=stored.etag,
                )
            except ConflictError:
                continue  # a worker took it meanwhile
            marked.append(job_id)
        return marked
