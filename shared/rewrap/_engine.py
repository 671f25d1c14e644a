"""The rewrap engine: confirm the target, claim the job, run its passes, finish it.

Construction takes every collaborator (Tink's ``KmsEnvelopeAead`` style): the DEK store, the
key version source (the Key Vault adapter in production), the job store, settings, and for
tests a clock, a sleep and a fault probe. Nothing Azure is imported here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from shared import telemetry
from shared.errors import ConflictError, ServiceError
from shared.rewrap import _probe
from shared.rewrap._budget import throttle_ceiling
from shared.rewrap._budget_board import BudgetBoard
from shared.rewrap._deadline import Deadline, SliceDeadlineError
from shared.rewrap._dry_run import DryRunReport, dry_run
from shared.rewrap._errors import JobLeaseError, RewrapTargetError
from shared.rewrap._item import ItemRewrapper
from shared.rewrap._job_report import JobReport
from shared.rewrap._job_state import JobState, JobStatus, rewrap_job_id
from shared.rewrap._job_store import JobStore, StoredJob
from shared.rewrap._ledger import PASS_CONFLICTS, PASS_DONE, JobLedger, ProgressCallback
from shared.rewrap._left_behind import count_left_behind
from shared.rewrap._limiter import AimdRateLimiter
from shared.rewrap._membership import BudgetMembership, vault_membership
from shared.rewrap._outcome import record_refusal
from shared.rewrap._page import IssueSink
from shared.rewrap._pipeline import PassRunner
from shared.rewrap._ports import KeyVersionSource
from shared.rewrap._retired import NoRetiredVersions, RetiredVersions
from shared.rewrap._retry import CallStats, VaultCaller
from shared.rewrap._settings import SLICE_WRAP_UP_SECONDS, EngineSettings, default_owner
from shared.rewrap._target import RewrapPlan, normalize_key_ref, resolve_target
from shared.rewrap._target_proof import confirm_target
from shared.stores import DekStore

_log = logging.getLogger("keyward.rewrap")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RewrapEngine:
    """Rewraps every DEK of a key to its newest enabled version, resumably."""

    def __init__(
        self,
        *,
        store: DekStore,
        keys: KeyVersionSource,
        jobs: JobStore,
        settings: EngineSettings | None = None,
        owner: str | None = None,
        progress: ProgressCallback | None = None,
        on_issue: IssueSink | None = None,
        now: Callable[[], datetime] = _utc_now,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        probe: _probe.FaultProbe = _probe.no_probe,
        job_scope: str | None = None,
        retired: RetiredVersions | None = None,
        board: BudgetBoard | None = None,
    ) -> None:
        """Args:
        store: where the DEKs live.
        keys: the vault (the Key Vault adapter), or an in-process source in tests.
        jobs: where job states and checkpoints live.
        settings: tuning; see :class:`EngineSettings`.
        owner: this worker's lease identity (default: host and pid).
        progress: called with the job state after every checkpoint (once per page).
        on_issue: called for every DEK that was not simply rewrapped (streams them all;
            the job state keeps only the first ``max_issues``).
        now, clock, sleep: wall clock, monotonic clock and sleep (tests inject fakes).
        probe: fault-injection hook for crash tests; production passes none.
        job_scope: what the job id is scoped to besides key and version (default:
            ``store.name``, so each store holding the key's DEKs is its own job).
        retired: the retired-version record; read before the claim (a retired target is
            refused) and again after it, so a retire that missed this job's lease is seen
            (DEKs under a retired version are then reported, never rewritten).
        board: the vaults' budget boards: the run is a member of its vault's shared budget
            while it sends (``None``: alone, with the whole share).

        Raises:
            ValueError: ``page_size`` or ``workers`` below 1.
        """
        self._store = store
        self._scope = store.name if job_scope is None else job_scope
        self._keys = keys
        self._jobs = jobs
        self._settings = settings or EngineSettings()
        if self._settings.page_size < 1 or self._settings.workers < 1:
            raise ValueError("page_size and workers must be at least 1")
        self._owner = owner or default_owner()
        self._progress = progress
        self._on_issue = on_issue
        self._now = now
        self._clock = clock
        self._sleep = sleep
        self._probe = probe
        self._retired: RetiredVersions = retired or NoRetiredVersions()
        self._board = board

    async def plan(self, key_ref: str, requested_version: str | None = None) -> RewrapPlan:
        """Confirm the target with the vault (see :func:`resolve_target`).

        Raises:
            RewrapTargetError: the requested version is missing or not enabled.
            ServiceError: the vault could not be asked.
        """
        return await resolve_target(self._keys, normalize_key_ref(key_ref), requested_version)

    async def run(
        self,
        key_ref: str,
        requested_version: str | None = None,
        *,
        restart: bool = False,
        should_stop: Callable[[], bool] | None = None,
        deadline: Deadline | None = None,
    ) -> JobReport:
        """Rewrap key ``key_ref``'s DEKs to its newest enabled version; start or resume.

        A job that ended is returned as is, unless ``restart`` (a fresh pass over the store),
        an operator asked for a restart on the job, or it ended short of clean
        (``COMPLETED_WITH_FAILURES``, ``INCOMPLETE``) and its retry is due (attempts left,
        backoff passed): then this run is a fresh pass too. Before claiming the job the target
        is proven (:func:`confirm_target`): attributes, ``key_ops``, one round trip.

        ``should_stop`` is asked between pages; once it answers true, the pages already
        scanned are finished and checkpointed, the lease is released and the report's status
        stays ``RUNNING`` (a time slice ended: run again to continue). ``deadline`` is the
        slice's hard deadline: no wait inside page work ends past it (a page in flight is
        then left to the next slice, as after a crash), and job-store writes after it get
        ``SLICE_WRAP_UP_SECONDS`` more.

        Raises:
            RewrapTargetError: the target is refused (missing, not enabled, key_ops, probe);
                recorded on the job when the version exists.
            JobLeaseError: another live worker holds the job.
            SliceDeadlineError: the wrap-up itself overran (the lease lapses; resumable), or
                sending stayed held (joining, the budget board lost) or throttled until
                ``deadline`` before the job was claimed.
            ServiceError: the vault, DEK store or job store failed past retries (the job is
                marked failed and resumes from its checkpoint when run again).
        """
        started = self._clock()
        try:
            plan = await self.plan(key_ref, requested_version)
        except RewrapTargetError as error:
            if error.exists:
                job_id = rewrap_job_id(error.key_ref, error.version, self._scope)
                await self._record_refusal(
                    job_id, self._fresh_state(job_id, error.key_ref, error.version), error
                )
            raise
        settings = self._settings
        ceiling = throttle_ceiling(
            plan.budget, settings.rate_ceiling, settings.headroom, settings.vault_share
        )
        limiter = AimdRateLimiter(ceiling, clock=self._clock, sleep=self._sleep)
        job_id = plan.job_id(self._scope)
        self._refuse_retired_target(plan, await self._retired.retired_versions(plan.key_ref))
        stored = await self._jobs.get(job_id)
        if stored is not None and (stored.state.status.ended or stored.state.restart_requested):
            if not restart and not stored.state.retry_due(self._now()):
                return self._report(plan, stored.state, limiter, started, resumed=False, done=True)
            restart = True
        if stored is not None and stored.state.lease_held_by_other(self._owner, self._now()):
            raise JobLeaseError(
                f"job {job_id} is running on {stored.state.owner}",
                job_id=job_id,
                owner=stored.state.owner,
            )
        async with vault_membership(
            self._board, plan, limiter, settings, owner=self._owner, time=(self._clock, self._sleep)
        ) as membership:
            # With the deadline: a join or a lost board may hold the limiter past the slice.
            caller = VaultCaller(
                limiter,
                settings.retry,
                CallStats(vault=telemetry.vault_of(plan.key_ref)),
                sleep=self._sleep,
                deadline=deadline,
            )
            try:
                await confirm_target(self._keys, plan, caller, now=self._now())
            except (RewrapTargetError, ServiceError) as error:
                await self._record_refusal(
                    job_id, self._fresh_state(job_id, plan.key_ref, plan.target_version), error
                )
                raise
            ledger, resumed = await self._claim(plan, stored, restart=restart, deadline=deadline)
            self._probe(_probe.JOB_CLAIMED)
            _log.info(
                "rewrap job %s %s: %s -> %s at %.0f ops/s",
                job_id,
                "resumed" if resumed else "started",
                plan.key_ref,
                plan.target_version,
                limiter.ceiling,
            )
            try:
                # Read after the lease is written: a retire either sees this job or is seen here.
                retired = await self._retired.retired_versions(plan.key_ref)
                self._refuse_retired_target(plan, retired)
                try:
                    left_behind = None  # stays None if the slice ends in the passes or the count
                    if await self._run_passes(
                        plan, ledger, limiter, should_stop, deadline, retired=retired
                    ):
                        left_behind = await count_left_behind(
                            self._store, plan, ledger, settings, stop=should_stop, deadline=deadline
                        )
                except SliceDeadlineError as reached:
                    _log.info("rewrap job %s: slice deadline: %s", job_id, reached)
                if left_behind is None:
                    paused = await ledger.pause()
                    _log.info("rewrap job %s paused after %d pages", job_id, paused.pages)
                    return self._report(
                        plan, paused, limiter, started, resumed=resumed, done=False, seat=membership
                    )
                self._probe(_probe.JOB_BEFORE_COMPLETE)
                final = await ledger.complete(left_behind=left_behind)
            except (JobLeaseError, SliceDeadlineError) as error:
                _log.warning("rewrap job %s: %s; it continues later", job_id, type(error).__name__)
                raise
            except Exception as error:
                _log.warning("rewrap job %s stopped: %s", job_id, type(error).__name__)
                await ledger.fail(error)
                raise
            counters = final.counters
            _log.info(
                "rewrap job %s %s: scanned=%d rewrapped=%d current=%d unreadable=%d "
                "failed=%d conflicts=%d throttled=%d left_behind=%d allotment=%.1f/s members=%d",
                job_id,
                final.status.value,
                counters.scanned,
                counters.rewrapped,
                counters.already_current,
                counters.unreadable_total,
                counters.failed_total,
                counters.conflicts,
                counters.throttled,
                final.left_behind,
                membership.allotment,
                membership.members,
            )
            return self._report(
                plan, final, limiter, started, resumed=resumed, done=False, seat=membership
            )

    async def dry_run(self, key_ref: str, requested_version: str | None = None) -> DryRunReport:
        """What :meth:`run` would do now; writes nothing (see :func:`dry_run`).

        Raises:
            RewrapTargetError: the requested version is missing or not enabled.
            ServiceError: the vault or the store could not be read.
        """
        settings = self._settings
        return await dry_run(
            self._store,
            self._keys,
            key_ref,
            requested_version,
            page_size=settings.page_size,
            rate_ceiling=settings.rate_ceiling,
            headroom=settings.headroom,
            vault_share=settings.vault_share,
            allow_legacy_rsa1_5=settings.allow_legacy_rsa1_5,
            retry=settings.retry,
        )

    async def _record_refusal(self, job_id: str, fresh: JobState, error: Exception) -> None:
        await record_refusal(self._jobs, job_id, fresh, error, owner=self._owner, now=self._now())

    def _fresh_state(self, job_id: str, key_ref: str, version: str) -> JobState:
        now = self._now()
        return JobState(
            job_id=job_id,
            key_ref=key_ref,
            scope=self._scope,
            target_version=version,
            target_key_id=f"{key_ref}/{version}",
            status=JobStatus.RUNNING,
            created_at=now,
            updated_at=now,
        )

    async def status(self, job_id: str) -> JobState | None:
        """The stored state of job ``job_id``, if any."""
        stored = await self._jobs.get(job_id)
        return stored.state if stored else None

    async def _claim(
        self,
        plan: RewrapPlan,
        stored: StoredJob | None,
        *,
        restart: bool,
        deadline: Deadline | None,
    ) -> tuple[JobLedger, bool]:
        job_id = plan.job_id(self._scope)
        now = self._now()
        lease = timedelta(seconds=self._settings.lease_seconds)
        if stored is not None and stored.state.lease_held_by_other(self._owner, now):
            raise JobLeaseError(
                f"job {job_id} is running on {stored.state.owner}",
                job_id=job_id,
                owner=stored.state.owner,
            )
        fresh = self._fresh_state(job_id, plan.key_ref, plan.target_version)
        if stored is not None:
            # A restart is a fresh pass, but the attempts (and their cap) stay with the job.
            fresh = stored.state.restarted_as(fresh)  # and the pass history
        resumed = stored is not None and not restart and stored.state.pages > 0
        base = fresh if stored is None or restart else stored.state
        claimed = base.evolve(
            status=JobStatus.RUNNING,
            owner=self._owner,
            lease_expires_at=now + lease,
            updated_at=now,
            error=None,
            finished_at=None,
            restart_requested=False,
            next_attempt_at=None,
            refused=False,  # proven just now
        )
        try:
            etag = await self._jobs.put(
                claimed, expected_etag=stored.etag if stored is not None else None
            )
        except ConflictError:
            raise JobLeaseError(
                f"job {job_id} was claimed by another worker first", job_id=job_id
            ) from None
        ledger = JobLedger(
            self._jobs,
            claimed,
            etag,
            now=self._now,
            lease=lease,
            retry=self._settings.retry,
            stats=CallStats(vault=telemetry.vault_of(plan.key_ref)),
            max_issues=self._settings.max_issues,
            max_pending_conflicts=self._settings.max_pending_conflicts,
            progress=self._progress,
            probe=self._probe,
            deadline=deadline.later(SLICE_WRAP_UP_SECONDS) if deadline is not None else None,
        )
        return ledger, resumed

    async def _run_passes(
        self,
        plan: RewrapPlan,
        ledger: JobLedger,
        limiter: AimdRateLimiter,
        should_stop: Callable[[], bool] | None = None,
        deadline: Deadline | None = None,
        *,
        retired: frozenset[str] = frozenset(),
    ) -> bool:
        """Run the remaining passes; ``False`` when ``should_stop`` (or the deadline, between
        pages) ended them early.

        Raises:
            SliceDeadlineError: a wait inside page work would have passed ``deadline``.
        """
        settings = self._settings
        caller = VaultCaller(
            limiter, settings.retry, ledger.stats, sleep=self._sleep, deadline=deadline
        )
        rewrapper = ItemRewrapper(
            plan,
            self._keys,
            caller,
            allow_legacy_rsa1_5=settings.allow_legacy_rsa1_5,
            retry=settings.retry,
            probe=self._probe,
            deadline=deadline,
            retired=retired,
        )
        while ledger.state.pass_number < PASS_DONE:
            before = ledger.state.pass_number
            if before == PASS_CONFLICTS:
                self._probe(_probe.CONFLICT_REREAD_START)
            runner = PassRunner(
                self._store,
                rewrapper,
                ledger,
                key_ref=plan.key_ref,
                target_version=plan.target_version,
                page_size=settings.page_size,
                workers=settings.workers,
                pages_in_flight=settings.pages_in_flight,
                retry=settings.retry,
                on_issue=self._on_issue,
                probe=self._probe,
                should_stop=should_stop,
                deadline=deadline,
            )
            await runner.run()
            if runner.stopped_early:
                return False
            if ledger.state.pass_number <= before:
                raise RuntimeError(f"pass {before} ended without its final checkpoint")
        return True

    @staticmethod
    def _refuse_retired_target(plan: RewrapPlan, retired: frozenset[str]) -> None:
        if plan.target_version in retired:
            raise RewrapTargetError(
                f"version {plan.target_version} of {plan.key_ref} is retired; refusing to "
                "rewrap to it",
                key_ref=plan.key_ref,
                version=plan.target_version,
            )

    def _report(
        self,
        plan: RewrapPlan,
        state: JobState,
        limiter: AimdRateLimiter,
        started: float,
        *,
        resumed: bool,
        done: bool,
        seat: BudgetMembership | None = None,
    ) -> JobReport:
        return JobReport(
            state=state,
            requested_version=plan.requested_version,
            redirected=plan.redirected,
            resumed=resumed,
            already_completed=done,
            elapsed_seconds=self._clock() - started,
            budget=plan.budget,
            final_rate=limiter.rate,
            rate_decreases=limiter.decreases,
            allotment=limiter.ceiling,
            members=seat.members if seat is not None else 0,
            binding_scope=seat.binding_scope if seat is not None else "",
        )
