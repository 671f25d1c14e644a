"""Which of a key's jobs in one shard retention may delete (``KEYWARD_RETENTION_DAYS``).

Ended jobs pile up, one per rotation, key and store. Retention deletes the old ones, with
three rules that keep what keyward still reads:

* the newest job of each key in each shard is always kept, however old: the sweep looks up
  the job of the key's newest version to know the store was handled (without it, it would
  queue a full pass again), retired-version alerts come from it, and so do the verification
  passes (``shared.rewrap._verification``);
* a job that has not ended (running, failed and resumable, or asked to restart or verify)
  is never deleted: someone will run it again;
* an ended job is deleted only once its last update is older than the retention.

"Newest" is by creation (then last update): the job the sweep created last for the key is
the one for its newest version, whatever a late message did to an older one since.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.rewrap._job_state import JobState
from shared.rewrap._retired import fold_key


def expired_jobs(jobs: Sequence[JobState], updated_before: datetime) -> list[JobState]:
    """The jobs among ``jobs`` (one shard's) that retention may delete: ended, not asked to
    run again, last updated before ``updated_before``, and not their key's newest."""
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
        and state.status.ended
        and not state.restart_requested
        and state.updated_at < updated_before
    ]
