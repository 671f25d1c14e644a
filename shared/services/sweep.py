"""The rewrap reconciliation sweep (the ``sweep`` timer): reconcile what events miss.

Event Grid may drop a delivery after its retries, so a rotation can reach keyward with no
event. So every few minutes the sweep:

* lists each allowed vault's keys and, per DEK store, checks that a job for the key's newest
  enabled version exists; where none does (a missed rotation event, or a version no event
  told of), it queues one. Whether the store still holds DEKs under older versions is the
  worker's question, answered paced and in slices: the timer never reads the DEKs;
* resumes jobs running with a lapsed lease (a worker died), at once;
* resumes jobs that failed (store down, vault faults) once their backoff has passed, while
  they have attempts left (``JobState.failures`` in a row, up to ``max_attempts``), and
  retries jobs that ended short of clean (``COMPLETED_WITH_FAILURES``: items failed;
  ``INCOMPLETE``: DEKs left under older versions) the same way (each run counts one
  ``attempts``); it reports those that spent them (``POST /api/rewrap`` with
  ``"restart": true`` runs them again);
* never resumes a job whose target the vault refused (``JobState.refused``: disabled,
  expired, key_ops without unwrapKey...): the same question would get the same answer every
  few minutes. It reports it instead; a new version is a new job, and a fixed version needs
  the restart;
* alerts when the newest job found DEKs under a version retired through keyward (counted by
  the job as ``retired_version`` failures): keyward is not in the applications' write path,
  so an insert under a retired version is found by the job that meets it.
* asks for a *verification pass* of a key's newest job that ended clean more than
  ``KEYWARD_VERIFY_INTERVAL_HOURS`` ago (0: never): it marks the job for a fresh pass with
  an ETag-conditional write (``restart_requested`` and ``verification``, as an operator
  restart is written) and queues the shard's message. The worker runs that pass paced,
  like any job, and rewraps what an application wrote under an older version since; the
  pass's DEKs scanned and seconds are recorded on the job
  (:mod:`shared.rewrap._verification`). Running, failed, refused and short-of-clean jobs
  are not verified: the rules above own them. A verification asked for and not claimed
  yet is sent again only after ``VERIFICATION_RESEND`` (its message may be waiting behind
  many: after a mass rotation every key falls due together);

The sweep reads one job per key and shard, writes at most one (a verification's mark) and
sends at most one message each: its cost is O(keys x stores), whatever the number of DEKs;
the worker does the work.

The revocation verdicts (access lost through disable, delete, purge, expiry or a removed
role) are the ``dependents_sweep`` timer's (:mod:`shared.services.dependents_sweep`), on a
schedule of their own: a slow reconciliation never delays them, nor they it.

It is idempotent: with nothing changed, a sweep enqueues nothing and publishes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.crypto import VaultAllowList
from shared.errors import (
    AccessDeniedError,
    ConflictError,
    KeyDisabledError,
    KeyNotFoundError,
    ServiceError,
)
from shared.rewrap import (
    FailureReason,
    JobState,
    JobStatus,
    JobStore,
    KeyVersionSource,
    ShardMessage,
    StoredJob,
    rewrap_job_id,
    verification_due,
    verification_requested,
)
from shared.services._ports import KeyLister, ShardQueue

_log = logging.getLogger("keyward.sweep")
_RESTART = 'POST /api/rewrap {"restart": true}'
#: A verification asked for but not claimed since is asked again (its message may have been
#: lost) after this long; sooner, its message is only waiting behind others in the queue,
#: and resending every sweep would grow a backlog of duplicates.
VERIFICATION_RESEND = timedelta(hours=1)


@dataclass
class SweepReport:
    keys_checked: int = 0
    jobs_started: list[str] = field(default_factory=list)
    jobs_resumed: list[str] = field(default_factory=list)
    jobs_retried: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: Jobs whose verification pass was asked for (or asked again: not run yet) and queued.
    verifications_queued: list[str] = field(default_factory=list)

    def log_line(self) -> str:
        return (
            f"sweep keys={self.keys_checked} started={len(self.jobs_started)} "
            f"resumed={len(self.jobs_resumed)} retried={len(self.jobs_retried)} "
            f"verifications={len(self.verifications_queued)} problems={len(self.problems)}"
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SweepService:
    """The service behind the ``sweep`` timer."""

    def __init__(
        self,
        *,
        allow_list: VaultAllowList,
        lister: KeyLister,
        keys: KeyVersionSource,
        shards: Sequence[str],
        job_store: Callable[[str], JobStore],
        queue: ShardQueue,
        now: Callable[[], datetime] = _utc_now,
        verify_interval: timedelta = timedelta(0),
    ) -> None:
        """``verify_interval``: how long after a job's last pass ended clean the sweep asks
        for a verification pass (``KEYWARD_VERIFY_INTERVAL_HOURS``); zero: never."""
        self._allow_list = allow_list
        self._lister = lister
        self._keys = keys
        self._shards = tuple(shards)
        self._job_store = job_store
        self._queue = queue
        self._now = now
        self._verify_interval = verify_interval

    async def run(self) -> SweepReport:
        """One sweep. Vault-level problems are reported and the sweep goes on.

        Raises:
            ServiceError: keyward's own storage (job store, queue) failed.
        """
        report = SweepReport()
        for vault in self._allow_list.vaults:
            try:
                key_refs = await self._lister.list_keys(vault.url)
            except ServiceError as error:
                report.problems.append(f"{vault.name}: cannot list keys ({type(error).__name__})")
                continue
            for key_ref in key_refs:
                report.keys_checked += 1
                await self._reconcile_key(key_ref, report)
        _log.info(report.log_line())
        return report

    async def _reconcile_key(self, key_ref: str, report: SweepReport) -> None:
        try:
            newest = await self._keys.newest_enabled_version(key_ref)
        except (KeyNotFoundError, KeyDisabledError, AccessDeniedError) as error:
            # No usable version: nothing to rewrap to. The dependents sweep judges the loss.
            report.problems.append(f"{key_ref}: {type(error).__name__}")
            return
        for shard in self._shards:
            job_id = rewrap_job_id(key_ref, newest, shard)
            stored = await self._job_store(shard).get(job_id)
            message = ShardMessage(job_id, key_ref, newest, shard)
            if stored is None:
                await self._queue.send(message)
                report.jobs_started.append(job_id)
                continue
            state = stored.state
            _alert_retired(shard, key_ref, state, report)
            now = self._now()
            lapsed = state.lease_expires_at is None or state.lease_expires_at <= now
            if state.status is JobStatus.RUNNING:
                if lapsed:
                    await self._queue.send(message)
                    report.jobs_resumed.append(job_id)
            elif state.status is JobStatus.FAILED and state.refused:
                report.problems.append(
                    f"{job_id}: target refused ({state.error}); not retried until the key "
                    f"has a new version, or it is restarted with {_RESTART}"
                )
            elif verification_due(state, now, self._verify_interval):
                if await self._ask_verification(shard, stored, now):
                    await self._queue.send(message)
                    report.verifications_queued.append(job_id)
            elif state.verification and state.status is JobStatus.COMPLETED:
                # Asked, not claimed yet: the message waits in the queue behind others (the
                # worker is paced). Send it again only when it may have been lost.
                if state.restart_requested and state.updated_at + VERIFICATION_RESEND <= now:
                    await self._queue.send(message)
                    report.verifications_queued.append(job_id)
            elif state.retry_due(now):
                await self._queue.send(message)
                failed = state.status is JobStatus.FAILED
                (report.jobs_resumed if failed else report.jobs_retried).append(job_id)
            elif state.gave_up:
                spent = state.failures if state.status is JobStatus.FAILED else state.attempts
                report.problems.append(
                    f"{job_id}: {state.status.value} after {spent} attempts; "
                    f"restart it with {_RESTART}"
                )

    async def _ask_verification(self, shard: str, stored: StoredJob, now: datetime) -> bool:
        """Mark the job for a verification pass, ETag-conditional; ``False`` when it changed
        since the sweep read it (a worker or an operator got there first: the next sweep
        looks again).

        Raises:
            ServiceError: the job store failed.
        """
        try:
            await self._job_store(shard).put(
                verification_requested(stored.state, now), expected_etag=stored.etag
            )
        except ConflictError:
            return False
        return True


def _alert_retired(shard: str, key_ref: str, state: JobState, report: SweepReport) -> None:
    """Report the DEKs the job found under a version retired through keyward."""
    found = state.counters.failed.get(FailureReason.RETIRED_VERSION.value, 0)
    if found:
        report.problems.append(
            f"ALERT {shard}: {found} DEKs under a retired version of {key_ref} "
            f"(found by job {state.job_id}; left untouched)"
        )
