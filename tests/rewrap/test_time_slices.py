"""Time slices: the function app runs a job in slices (``should_stop``), each ending at a page
boundary with everything before it checkpointed and the lease released for the next slice."""

from __future__ import annotations

from shared.rewrap import InMemoryJobStore, JobStatus
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


async def test_slices_resume_until_done_and_every_dek_ends_at_the_target() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    plaintexts = populate(store, source, [V1], 250)
    jobs = InMemoryJobStore()
    slices = 0
    while True:
        slices += 1
        asked = 0

        def stop_after_two_pages() -> bool:
            nonlocal asked
            asked += 1
            return asked > 2

        engine = engine_for(
            store, source, jobs, page_size=20, pages_in_flight=1, owner=f"w{slices}"
        )
        report = await engine.run(KEY_REF, should_stop=stop_after_two_pages)
        if report.status is JobStatus.COMPLETED:
            break
        assert report.state.status is JobStatus.RUNNING
        assert report.state.owner is None, "a paused slice releases its lease"
        assert report.state.lease_expires_at is None
        assert slices < 50
    assert slices > 3, "the job really ran in several slices"
    assert report.state.counters.rewrapped == 250
    for ref, row in store.rows.items():
        assert row.key_id.endswith(V2)
        assert unwrap_row(source, row) == plaintexts[ref]


async def test_a_paused_job_can_be_claimed_at_once_by_another_worker() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 100)
    jobs = InMemoryJobStore()
    first = engine_for(store, source, jobs, page_size=10, pages_in_flight=1, owner="a")
    paused = await first.run(KEY_REF, should_stop=lambda: True)
    assert paused.status is JobStatus.RUNNING
    assert 0 < paused.state.pages < 10
    second = engine_for(store, source, jobs, page_size=10, owner="b")
    done = await second.run(KEY_REF)
    assert done.status is JobStatus.COMPLETED
    assert done.resumed
    assert done.state.counters.rewrapped == 100
