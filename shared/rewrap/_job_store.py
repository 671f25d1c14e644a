"""Where job states live: a small compare-and-set protocol and an in-memory implementation.

Every write is conditional on the ETag the writer last saw (``None``: create, only if absent),
so two workers racing for one job cannot both win, and a worker whose lease was taken over
finds out at its next checkpoint. An Azure Table job store maps this one to one onto
``create_entity`` / ``update_entity(match_condition=IfNotModified)``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from shared.errors import ConflictError, InvalidInputError
from shared.rewrap._job_state import JobState


@dataclass(frozen=True)
class StoredJob:
    """A job state and the ETag it was read with."""

    state: JobState
    etag: str


#: Jobs one ``list_page`` call returns at most (the admin API's ``?limit=`` cap).
MAX_JOB_PAGE = 200


@dataclass(frozen=True)
class JobPage:
    """One page of a job listing, in job id order, and where the next page starts."""

    states: Sequence[JobState]
    #: The store's own token for the next page (opaque to callers); ``None``: no more jobs.
    continuation: str | None = None


@runtime_checkable
class JobStore(Protocol):
    """Durable, ETag-conditional storage of :class:`JobState`."""

    async def get(self, job_id: str) -> StoredJob | None:
        """The job's state and ETag, or ``None`` when there is no such job."""
        ...

    async def put(self, state: JobState, *, expected_etag: str | None) -> str:
        """Write ``state``; returns the new ETag.

        ``expected_etag=None`` creates the job and fails if it exists; otherwise the write
        succeeds only if the stored ETag is still ``expected_etag``.

        Raises:
            ConflictError: the job exists (create) or changed since it was read (update).
        """
        ...

    async def list_jobs(self, key_ref: str | None = None) -> Sequence[JobState]:
        """Every job (of ``key_ref`` when given), newest first. Reads them all: for one
        key's jobs and the CLI; a status page uses :meth:`list_page`."""
        ...

    async def list_page(self, *, limit: int, continuation: str | None = None) -> JobPage:
        """At most ``limit`` (1..:data:`MAX_JOB_PAGE`) jobs in job id order, from where
        ``continuation`` (a token this store issued) left off; one bounded read.

        Raises:
            InvalidInputError: ``limit`` out of range, or a token this store did not issue.
        """
        ...

    async def close(self) -> None: ...


class InMemoryJobStore:
    """A :class:`JobStore` in a dict; states are stored serialized, like a real store."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, str]] = {}
        self._etags = itertools.count(1)

    async def get(self, job_id: str) -> StoredJob | None:
        row = self._rows.get(job_id)
        if row is None:
            return None
        etag, text = row
        return StoredJob(JobState.from_dict(json.loads(text)), etag)

    async def put(self, state: JobState, *, expected_etag: str | None) -> str:
        """See :meth:`JobStore.put`.

        Raises:
            ConflictError: the ETag condition does not hold.
        """
        current = self._rows.get(state.job_id)
        if expected_etag is None and current is not None:
            raise ConflictError(f"job {state.job_id} already exists", status=409)
        if expected_etag is not None and (current is None or current[0] != expected_etag):
            raise ConflictError(f"job {state.job_id} changed since it was read", status=412)
        etag = f"m{next(self._etags)}"
        self._rows[state.job_id] = (etag, json.dumps(state.to_dict(), sort_keys=True))
        return etag

    async def list_jobs(self, key_ref: str | None = None) -> Sequence[JobState]:
        states = [JobState.from_dict(json.loads(text)) for _, text in self._rows.values()]
        if key_ref is not None:
            states = [s for s in states if s.key_ref.lower() == key_ref.lower()]
        return sorted(states, key=lambda s: s.created_at, reverse=True)

    async def list_page(self, *, limit: int, continuation: str | None = None) -> JobPage:
        check_job_page(limit, continuation)
        ids = sorted(i for i in self._rows if continuation is None or i > continuation)
        states = [JobState.from_dict(json.loads(self._rows[i][1])) for i in ids[:limit]]
        return JobPage(states, ids[limit - 1] if len(ids) > limit else None)

    async def close(self) -> None:
        return None


def check_job_page(limit: int, continuation: str | None) -> None:
    """Raises: InvalidInputError: ``limit`` outside 1..:data:`MAX_JOB_PAGE`, or an empty or
    oversized token (job ids and the stores' tokens are short)."""
    if not 1 <= limit <= MAX_JOB_PAGE:
        raise InvalidInputError(f"limit must be 1..{MAX_JOB_PAGE}, got {limit}")
    if continuation is not None and not 0 < len(continuation) <= 1024:
        raise InvalidInputError("continuation is not one keyward issued")
