"""A job that stops on a store fault is marked failed and resumes; a lost lease stops a worker."""

from __future__ import annotations

import asyncio

import pytest

from shared.errors import AccessDeniedError, TransientServiceError
from shared.rewrap import InMemoryJobStore, JobLeaseError, JobState, JobStatus, RetryPolicy
from shared.stores import ScanPage
from tests.rewrap.fakes import (
    KEY_REF,
    V1,
    V2,
    MemoryDekStore,
    engine_for,
    key_source,
    populate,
    unwrap_row,
)


class FlakyScanStore(MemoryDekStore):
    """Scans fail with ``error`` from the ``fail_from``-th call on, ``failures`` times."""

    def __init__(self, error: Exception, fail_from: int, failures: int) -> None:
        super().__init__()
        self.error = error
        self.fail_from = fail_from
        self.failures = failures

    async def scan(self, key_ref: str, **kwargs: object) -> ScanPage:  # type: ignore[override]
        if self.scans + 1 >= self.fail_from and self.failures > 0:
            self.scans += 1
            self.failures -= 1
            raise self.error
        return await super().scan(key_ref, **kwargs)  # type: ignore[arg-type]


async def _no_sleep(seconds: float) -> None:
    return None


def test_store_fault_fails_the_job_and_a_rerun_resumes_from_the_checkpoint() -> None:
    source = key_source(V1, V2)
    store = FlakyScanStore(
        AccessDeniedError("storage said 403", status=403), fail_from=3, failures=1
    )
    plaintexts = populate(store, source, [V1], 20)
    jobs = InMemoryJobStore()

    with pytest.raises(AccessDeniedError):
        asyncio.run(
            engine_for(store, source, jobs, page_size=4, pages_in_flight=1).run(KEY_REF, V2)
        )
    [failed] = asyncio.run(jobs.list_jobs())
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    assert "AccessDeniedError" in failed.error
    assert failed.pages == 2

    report = asyncio.run(engine_for(store, source, jobs, page_size=4).run(KEY_REF, V2))

    assert report.resumed
    assert report.status is JobStatus.COMPLETED
    assert report.counters.rewrapped == 20
    assert report.consistent
    for ref, plain in plaintexts.items():
        assert unwrap_row(source, store.rows[ref]) == plain


def test_transient_store_faults_are_retried_inside_the_run() -> None:
    source = key_source(V1, V2)
    store = FlakyScanStore(TransientServiceError("503", status=503), fail_from=2, failures=2)
    populate(store, source, [V1], 10)

    report = asyncio.run(
        engine_for(store, source, page_size=4, sleep=_no_sleep, retry=RetryPolicy()).run(
            KEY_REF, V2
        )
    )

    assert report.counters.rewrapped == 10


def test_worker_whose_lease_was_taken_over_stops_at_its_next_checkpoint() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 12)
    jobs = InMemoryJobStore()

    def another_worker_takes_over(state: JobState) -> None:
        if state.pages == 1:
            # Another worker's write changes the ETag this worker holds.
            jobs._rows[state.job_id] = ("stolen", jobs._rows[state.job_id][1])

    engine = engine_for(
        store, source, jobs, page_size=3, pages_in_flight=1, progress=another_worker_takes_over
    )
    with pytest.raises(JobLeaseError):
        asyncio.run(engine.run(KEY_REF, V2))

    written = [row for row in store.rows.values() if row.key_id.endswith(V2)]
    assert 3 <= len(written) < 12
