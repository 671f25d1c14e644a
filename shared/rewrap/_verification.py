"""The periodic verification pass of a clean job, and the record each pass leaves.

keyward is not in the applications' write path: after a job ended clean, an application
may still insert a DEK wrapped under an older version of the key. The sweep never reads
DEKs (its cost is O(keys x shards)), so it cannot see that. Instead, once a key's newest
job has ended clean more than ``KEYWARD_VERIFY_INTERVAL_HOURS`` ago, the sweep asks for a
fresh pass of that same job (:func:`verification_due`, :func:`verification_requested`,
written with the job's ETag like an operator restart). The worker runs it through the
engine like any pass: paced by the vault budget, in slices, resumable; a DEK found under
an older version is rewrapped and counted (``rewrapped`` of the pass record).

While the pass runs, the job is ``RUNNING``: the retirement verdict
(``shared.rewrap._verdict.unfinished_jobs``) counts it as unfinished and blocks retiring
the key's older versions until the pass ends, even though the job had ended clean before.
That is the safe side, and it is kept: the pass may be about to find (and move) a DEK under
the version an operator wants to retire, and the verdict should count it first. A pass only
asked for (still ``COMPLETED``, not claimed) does not block, like an operator's restart
request; should a retire slip in before the claim, the engine reads the retired record
after claiming its lease and never writes under a retired version (it reports such DEKs).

Every ended pass, verification or not, is recorded on the job (:func:`pass_ended`), so
status and the benchmark report the verification's DEKs/s.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.rewrap._job_state import JobState, JobStatus
from shared.rewrap._passes import PassRecord, appended


def verification_due(state: JobState, now: datetime, interval: timedelta) -> bool:
    """Whether the sweep should ask for a verification pass of ``state`` now.

    Only a job that ended clean (``COMPLETED``), with nothing asked of it yet, whose last
    pass ended ``interval`` ago or more; a zero interval turns verification off. A running,
    failed, refused or short-of-clean job is not verified: the retry rules own it.
    """
    if interval <= timedelta(0) or state.status is not JobStatus.COMPLETED:
        return False
    if state.restart_requested or state.finished_at is None:
        return False
    return state.finished_at + interval <= now


def verification_requested(state: JobState, now: datetime) -> JobState:
    """``state`` marked for a fresh pass that is a verification (the engine runs a job with
    ``restart_requested`` as a fresh pass; ``JobState.restarted_as`` carries the flag)."""
    return state.evolve(restart_requested=True, verification=True, updated_at=now)


def pass_ended(state: JobState, status: JobStatus, now: datetime) -> JobState:
    """``state`` as its current pass ends with ``status``: the pass's record appended to
    ``passes`` (bounded), the per-pass fields cleared for the next pass."""
    record = PassRecord(
        scanned=state.counters.scanned,
        rewrapped=state.counters.rewrapped,
        seconds=state.pass_seconds,
        started_at=state.pass_started_at or state.created_at,
        ended_at=now,
        verification=state.verification,
        status=status.value,
    )
    return state.evolve(
        passes=appended(state.passes, record),
        verification=False,
        pass_started_at=None,
        pass_seconds=0.0,
    )
