"""The job's durable side: claiming the lease, checkpointing pages in order, finishing.

Only the ledger writes job state, always ETag-conditional. A checkpoint merges a run of
consecutive finished pages and the continuation after the last of them in one write, so the
stored counters always describe exactly the pages before the stored continuation.

Each write also adds the time this worker has held the job since its previous write (or
its claim) to the pass's ``pass_seconds``, and the end of a pass appends the pass's record
(DEKs scanned, rewrapped, seconds, verification or not; ``shared.rewrap._verification``):
the figures ride on writes the ledger makes anyway, so measuring a pass costs no request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from shared import telemetry
from shared.errors import ConflictError, ServiceError
from shared.rewrap import _probe
from shared.rewrap._deadline import Deadline, SliceDeadlineError
from shared.rewrap._errors import JobLeaseError
from shared.rewrap._job_state import JobState, JobStatus, retry_delay
from shared.rewrap._job_store import JobStore
from shared.rewrap._outcome import failed_state
from shared.rewrap._page import Page
from shared.rewrap._passes import LeftBehindCount
from shared.rewrap._report import ItemIssue, ItemOutcome
from shared.rewrap._retry import CallStats, RetryPolicy, call_store
from shared.rewrap._verification import pass_ended

PASS_MAIN = 1
PASS_CONFLICTS = 2
PASS_DONE = 3

ProgressCallback = Callable[[JobState], None]


class JobLedger:
    """Holds a claimed job's state and ETag; writes checkpoints, completion and failure."""

    def __init__(
        self,
        jobs: JobStore,
        state: JobState,
        etag: str,
        *,
        now: Callable[[], datetime],
        lease: timedelta,
        retry: RetryPolicy,
        stats: CallStats,
        max_issues: int,
        max_pending_conflicts: int,
        progress: ProgressCallback | None = None,
        probe: _probe.FaultProbe = _probe.no_probe,
        deadline: Deadline | None = None,
    ) -> None:
        #: Bounds the waits of job-store retries (the slice's wrap-up deadline).
        self._deadline = deadline
        self._jobs = jobs
        if state.pass_started_at is None:  # a fresh pass: it starts at this claim
            state = state.evolve(pass_started_at=state.updated_at)
        self._state = state
        #: Since when this worker holds the job without the time being in ``pass_seconds``.
        self._held_since = state.updated_at
        self._etag = etag
        self._now = now
        self._lease = lease
        self._retry = retry
        self.stats = stats
        self._base_operations = state.counters.vault_operations
        self._base_throttled = state.counters.throttled
        self._max_issues = max_issues
        self._max_pending = max_pending_conflicts
        self._progress = progress
        self._probe = probe
        #: Refs still to re-read in the conflict pass; the scanner filters on it.
        self.pending: set[str] = set(state.pending_conflicts)
        self._broken = False

    @property
    def state(self) -> JobState:
        return self._state

    async def checkpoint(self, pages: Sequence[Page]) -> None:
        """Merge ``pages`` (consecutive, in order) and persist with the continuation after them.

        Raises:
            JobLeaseError: another worker wrote the job since this one claimed it.
            ServiceError: the job store failed past the retry policy.
        """
        if self._broken:
            # An earlier checkpoint failed part-way; pages it took are not in the state, so no
            # later page may be checkpointed past them.
            raise RuntimeError(f"job {self._state.job_id}: an earlier checkpoint failed")
        self._broken = True
        state = self._state
        counters = state.counters.copy()
        issues = list(state.issues)
        dropped = state.issues_dropped
        new_issues: list[ItemIssue] = []
        for page in pages:
            counters.merge(page.counters)
            new_issues.extend(page.issues)
            for ref in page.resolved:
                self.pending.discard(ref)
            for ref in page.conflicts:
                if len(self.pending) < self._max_pending:
                    self.pending.add(ref)
                else:
                    counters.count(ItemOutcome.CONFLICT)
        last = pages[-1]
        pass_number = state.pass_number
        continuation = last.continuation_after
        if continuation is None:
            if pass_number == PASS_CONFLICTS:
                # Pending refs the re-read did not find were rewrapped or deleted by others.
                counters.gone += len(self.pending)
                self.pending.clear()
            pass_number = PASS_CONFLICTS if self.pending else PASS_DONE
        room = max(0, self._max_issues - len(issues))
        issues.extend(new_issues[:room])
        dropped += max(0, len(new_issues) - room)
        counters.vault_operations = self._base_operations + self.stats.vault_operations
        counters.throttled = self._base_throttled + self.stats.throttled
        self._probe(_probe.PAGE_BEFORE_CHECKPOINT)
        await self._write(
            state.evolve(
                counters=counters,
                issues=tuple(issues),
                issues_dropped=dropped,
                pending_conflicts=tuple(sorted(self.pending)),
                continuation=continuation,
                pass_number=pass_number,
                pages=state.pages + len(pages),
                failures=0,  # progress: the job is not stuck
            )
        )
        self._broken = False
        for page in pages:  # the committed pages' DEKs, counted once, after the write
            done = page.counters
            telemetry.page_committed(state.key_ref, state.scope, done.rewrapped, done.unreadable,
                                     done.failed)  # fmt: skip
        saved = self._state
        telemetry.job_progress(saved.job_id, saved.key_ref, saved.scope, saved.counters.settled())
        self._probe(_probe.CHECKPOINT_AFTER)
        if self._progress is not None:
            self._progress(self._state)

    async def checkpoint_count(self, count: LeftBehindCount) -> None:
        """Persist how far the count of DEKs left behind got (one write per count page, as
        the scan writes one per page), so the next slice or worker resumes it there.

        Raises:
            JobLeaseError: another worker wrote the job since this one claimed it.
            ServiceError: the job store failed past the retry policy.
        """
        await self._write(self._state.evolve(left_behind_count=count, failures=0))
        self._probe(_probe.COUNT_CHECKPOINT_AFTER)  # no progress call: no DEK was decided

    async def complete(self, *, left_behind: int = 0) -> JobState:
        """Mark the job ended: ``COMPLETED`` when clean, else ``COMPLETED_WITH_FAILURES``
        (items failed) or ``INCOMPLETE`` (``left_behind`` DEKs still under older versions),
        with the time the sweep may retry it.

        Raises:
            JobLeaseError: another worker wrote the job since this one claimed it.
        """
        now = self._now()
        state = self._state.evolve(pass_seconds=self._state.pass_seconds + self._held(now))
        counters = state.counters
        if counters.failed_total or counters.conflicts:
            status = JobStatus.COMPLETED_WITH_FAILURES
        elif left_behind:
            status = JobStatus.INCOMPLETE
        else:
            status = JobStatus.COMPLETED
        attempts = state.attempts + 1
        ended = state.evolve(
            status=status,
            finished_at=now,
            lease_expires_at=None,
            error=None,
            attempts=attempts,
            left_behind=left_behind,
            next_attempt_at=now + retry_delay(attempts) if status.short_of_clean else None,
            failures=0,
            refused=False,
        )
        await self._write(pass_ended(ended, status, now))
        return self._state

    async def pause(self) -> JobState:
        """End this worker's time slice: the job stays running, the lease is released so the
        continuation (any worker) can claim it at once.

        Raises:
            JobLeaseError: another worker wrote the job since this one claimed it.
        """
        await self._write(self._state.evolve(owner=None, lease_expires_at=None), keep_lease=False)
        return self._state

    async def fail(self, error: Exception) -> None:
        """Best effort: record that the job stopped on ``error`` (resumable later; see
        :func:`failed_state` for when the sweep resumes it)."""
        try:
            await self._write(failed_state(self._state, error, self._now()))
        except (ServiceError, JobLeaseError, SliceDeadlineError):
            return

    def _held(self, now: datetime) -> float:
        return max(0.0, (now - self._held_since).total_seconds())

    async def _write(self, state: JobState, *, keep_lease: bool = True) -> None:
        now = self._now()
        state = state.evolve(updated_at=now)
        if state.pass_started_at is not None:  # None: the pass ended, its time is recorded
            state = state.evolve(pass_seconds=state.pass_seconds + self._held(now))
        if state.status is JobStatus.RUNNING and keep_lease:
            state = state.evolve(lease_expires_at=now + self._lease)
        try:
            self._etag = await call_store(
                lambda: self._jobs.put(state, expected_etag=self._etag),
                self._retry,
                deadline=self._deadline,
            )
        except ConflictError:
            raise JobLeaseError(
                f"job {state.job_id} was changed by another worker; stopping",
                job_id=state.job_id,
            ) from None
        self._state = state
        self._held_since = now
