"""``POST /api/rewrap {"restart": true}``: mark each shard's job of the target for a fresh pass.

A job that ended is not run again by a plain request (a duplicate is harmless); a restart
marks it, whatever its status, attempts or backoff, so the queued message runs it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from shared.errors import ConflictError
from shared.rewrap import JobStatus, JobStore, rewrap_job_id


async def request_restart(
    shards: Sequence[str], job_store: Callable[[str], JobStore], key_ref: str, target_version: str
) -> list[str]:
    """Mark each shard's existing job of ``target_version`` for a fresh pass.

    A job that is running now (live lease) is left alone; it is already running.

    Raises:
        ServiceError: the job store failed.
    """
    marked: list[str] = []
    now = datetime.now(UTC)
    for shard in shards:
        jobs = job_store(shard)
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
