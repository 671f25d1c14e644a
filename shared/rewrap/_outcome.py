"""How a run of a job ends, beyond its counters: what it left behind, and refusals recorded.

A job's status must say whether it is done: after the passes, DEKs may still be wrapped under
versions older than the target (unreadable ones; DEKs an application wrote under an old version
behind the scan), and :func:`count_left_behind` counts them so the job ends ``INCOMPLETE``
rather than ``COMPLETED``. A refused target (:mod:`._target_proof`) is written on the job by
:func:`record_refusal`, so ``GET /api/status`` says why nothing moved.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from shared.errors import ConflictError, ServiceError
from shared.rewrap._deadline import Deadline, SliceDeadlineError
from shared.rewrap._errors import RewrapTargetError
from shared.rewrap._job_state import JobState, JobStatus, retry_delay
from shared.rewrap._job_store import JobStore
from shared.rewrap._retry import RetryPolicy, call_store
from shared.rewrap._target import RewrapPlan
from shared.stores import DekStore

_log = logging.getLogger("keyward.rewrap")


async def count_left_behind(
    store: DekStore, plan: RewrapPlan, retry: RetryPolicy, deadline: Deadline | None
) -> int:
    """DEKs still wrapped under versions older than the target once the passes are done.

    One ``version_counts`` call (a scan of the key's DEKs in the store, no vault call),
    bounded by the slice deadline: past it, the job pauses and the next slice counts again.
    Versions newer than the target (a rotation during the job) are ahead, not behind; a
    version the plan does not know counts as behind (the next run's plan will know it).

    Raises:
        SliceDeadlineError: the count did not finish before the deadline.
        ServiceError: the store failed past retries.
    """
    count = call_store(lambda: store.version_counts(plan.key_ref), retry)
    if deadline is None:
        counts = await count
    else:
        try:
            counts = await asyncio.wait_for(count, max(0.0, deadline.remaining()))
        except TimeoutError:
            raise SliceDeadlineError("counting the DEKs left behind passed the deadline") from None
    prefix = plan.key_ref.lower() + "/"
    target_created = plan.target.created
    left = 0
    for entry in counts:
        key_id = entry.key_id.lower()
        if not key_id.startswith(prefix) or not entry.current:
            continue
        version = key_id[len(prefix) :]
        if version == plan.target_version:
            continue
        known = plan.versions.get(version)
        if known is not None and known.created > target_created:
            continue
        left += entry.current
    return left


def failed_state(state: JobState, error: Exception, now: datetime) -> JobState:
    """``state`` stopped on ``error``: one more failure in a row, which the sweep retries after
    the backoff, unless the vault refused the target (``RewrapTargetError``: asking again
    would get the same answer until the version changes or an operator restarts the job)."""
    refused = isinstance(error, RewrapTargetError)
    failures = state.failures + 1
    return state.evolve(
        status=JobStatus.FAILED,
        error=f"{type(error).__name__}: {error}"[:500],
        lease_expires_at=None,
        failures=failures,
        refused=refused,
        next_attempt_at=None if refused else now + retry_delay(failures),
    )


async def record_refusal(
    jobs: JobStore,
    job_id: str,
    fresh: JobState,
    error: Exception,
    *,
    owner: str,
    now: datetime,
) -> None:
    """Best effort: mark job ``job_id`` failed with why its target was refused (``fresh`` is
    the state to create when there is no job yet). No DEK is touched. A ``RewrapTargetError``
    is a refusal for good (the sweep does not resume the job); a vault fault is retried.

    A job another worker holds, or one that ended (unless a restart was asked), is left as is.
    """
    try:
        stored = await jobs.get(job_id)
        if stored is not None and (
            stored.state.lease_held_by_other(owner, now)
            or (stored.state.status.ended and not stored.state.restart_requested)
        ):
            return
        base = stored.state if stored is not None else fresh
        failed = failed_state(base, error, now).evolve(owner=None, updated_at=now)
        await jobs.put(failed, expected_etag=stored.etag if stored is not None else None)
    except (ServiceError, ConflictError):
        _log.warning("could not record the refusal on job %s", job_id)
