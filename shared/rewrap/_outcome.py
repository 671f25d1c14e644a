"""How a run of a job ends short of its passes: failures and refusals recorded.

A run that stops on an error leaves the job ``FAILED`` (:func:`failed_state`), resumable
from its checkpoint after a backoff unless the vault refused the target. A refused target
(:mod:`._target_proof`) is written on the job by :func:`record_refusal`, so
``GET /api/status`` says why nothing moved. (What a finished pass left behind is counted by
:mod:`._left_behind`.)
"""

from __future__ import annotations

import logging
from datetime import datetime

from shared.errors import ConflictError, ServiceError
from shared.rewrap._errors import RewrapTargetError
from shared.rewrap._job_state import JobState, JobStatus, retry_delay
from shared.rewrap._job_store import JobStore

_log = logging.getLogger("keyward.rewrap")


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
