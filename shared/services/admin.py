"""The admin API's service: status of jobs, flags and rejected events; start or dry-run a
rewrap. Everything it returns is ids, versions, counts and reasons, never key material."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.crypto import VaultAllowList
from shared.errors import ConflictError, InvalidInputError, RetirementBlockedError
from shared.rewrap import (
    EngineSettings,
    JobStatus,
    JobStore,
    KeyVersionSource,
    RewrapEngine,
    resolve_target,
    retirement_report,
    rewrap_job_id,
)
from shared.services._planner import RewrapPlanner
from shared.services._ports import EventLedgerPort, KeyDependents
from shared.services._render import dry_run_json, job_json, retirement_json
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
    ) -> None:
        self._allow_list = allow_list
        self._stores = stores
        self._job_store = job_store
        self._keys = keys
        self._planner = planner
        self._ledger = ledger
        self._dependents = dependents
        self._engine_settings = engine_settings or EngineSettings()

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
        retirement: list[dict[str, Any]] = []
        for key_ref in key_refs[:MAX_RETIREMENT_KEYS]:
            pinned = await self._dependents.pinned_versions(key_ref)
            for shard, store in self._stores.items():
                report = await retirement_report(store, key_ref, keys=self._keys, pinned=pinned)
                retirement.append(retirement_json(shard, report))
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

    async def retire(self, key: str, *, version: str | None = None) -> dict[str, Any]:
        """Retire an old key version: drop the previous wraps kept under it, once nothing
        else depends on it; afterwards the retirement report says "safe to disable".

        Previous wraps are kept after a rewrap so data stays readable under the old version
        until an operator decides it is retired; this is that decision.

        Raises:
            KeyIdError, VaultNotAllowedError: malformed key id or vault not allowed.
            InvalidInputError: no version given.
            RetirementBlockedError: DEKs are still wrapped under it, accounts are pinned to
                it, or it is the key's newest enabled version.
            ServiceError: the vault or a store failed.
        """
        key_id = self._allow_list.check_key_id(key, require_version=False)
        target = (version or key_id.version or "").lower()
        if not target:
            raise InvalidInputError("name the version to retire (a versioned key id or 'version')")
        key_ref = key_id.key_ref
        pinned = await self._dependents.pinned_versions(key_ref)
        blockers: list[str] = []
        if (await self._keys.newest_enabled_version(key_ref)).lower() == target:
            blockers.append(f"{target} is the newest enabled version of {key_ref}")
        blockers.extend(f"pinned: {resource}" for resource in pinned.get(target, ()))
        for shard, store in self._stores.items():
            report = await retirement_report(store, key_ref, keys=self._keys)
            entry = next((v for v in report.versions if v.version == target), None)
            if entry is not None and (entry.current or entry.unreadable):
                blockers.append(f"{shard}: {entry.current} DEKs still wrapped under {target}")
        if blockers:
            raise RetirementBlockedError(f"{key_ref}/{target} cannot be retired yet", blockers)
        dropped = 0
        for store in self._stores.values():
            forget = getattr(store, "forget_previous", None)
            if forget is not None:
                dropped += int(await forget(f"{key_ref}/{target}"))
        return {"key": key_ref, "version": target, "previous_wraps_dropped": dropped}

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
