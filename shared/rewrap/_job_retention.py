"""Which of a key's jobs in one shard retention may delete (``KEYWARD_RETENTION_DAYS``).

Jobs pile up, one per rotation, key and store. Retention deletes the old ones, with three
rules that keep what keyward still reads:

* the newest job of each key in each shard is always kept, however old and whatever its
  status: the sweep looks up the job of the key's newest version to know the store was
  handled (without it, it would queue a full pass again), retired-version alerts come from
  it, and so do the verification passes (``shared.rewrap._verification``);
* a running job, or one asked to restart or verify, is never deleted: someone runs it;
* any other job (ended, clean or not, or failed, refused or not) is deleted only once its
  last update is older than the retention.

Why an older *failed* job may go: it is never resumed on its own. The sweep reads only the
job of a key's newest version (``SweepService._reconcile_key``), so an older version's job
runs again only when asked (``restart_requested``: kept) or when a late queue message
carries it (a message is delivered within days, far inside a retention of at least two).
Nor is anything left undone with it: the newest job of the same key and shard rewraps every
DEK of that store under any older version, the failed job's ones included, and it is the
one the sweep retries, the verdict reads and an operator restarts. Deleting the older
record loses a history line, never a DEK's rewrap.

"Newest" is by creation (then last update): the job the sweep created last for the key is
the one for its newest version (targets never go backwards), whatever a late message did
to an older one since.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.rewrap._job_state import JobState, JobStatus
from shared.rewrap._retired import fold_key


def may_expire(status: JobStatus) -> bool:
    """Whether a job in ``status`` may ever be deleted (if not its key's newest): any status
    but running. The Table adapter pre-selects keys with it before reading their jobs."""
    return status is not JobStatus.RUNNING


def expired_jobs(jobs: Sequence[JobState], updated_before: datetime) -> list[JobState]:
    """The jobs among ``jobs`` (one shard's) that retention may delete: not running, not asked
    to run again, last updated before ``updated_before``, and not their key's newest."""
    newest: dict[str, JobState] = {}
    for state in jobs:
        key = fold_key(state.key_ref)
        kept = newest.get(key)
        if kept is None or (state.created_at, state.updated_at) > (
            kept.created_at,
            kept.updated_at,
        ):
            newest[key] = state
    return [
        state
        for state in jobs
        if state is not newest[fold_key(state.key_ref)]
        and may_expire(state.status)
        and not state.restart_requested
        and state.updated_at < updated_before
    ]
