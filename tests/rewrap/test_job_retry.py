"""A job that ends short of clean says so, and is run again: by the sweep (bounded, with
backoff, at O(jobs) cost) or on request (issue 11 item 6).

Before: a job with failed items, or with DEKs written under the old version while it ran,
was ``COMPLETED`` like a clean one; the sweep skipped it and ``POST /api/rewrap`` did nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.crypto import VaultAllowList
from shared.errors import TransientServiceError
from shared.rewrap import (
    InMemoryJobStore,
    InMemoryRetiredVersions,
    JobState,
    JobStatus,
    RetryPolicy,
    RewrapTargetError,
    ShardMessage,
    rewrap_job_id,
)
from shared.rewrap._job_state import JOB_RETRY_BASE_SECONDS, MAX_JOB_ATTEMPTS, retry_delay
from shared.services._planner import RewrapPlanner
from shared.services.admin import AdminService
from shared.services.sweep import SweepService
from shared.stores import DekRecord
from tests.rewrap.fakes import (
    KEY_REF,
    V1,
    V2,
    V3,
    FaultyKeySource,
    MemoryDekStore,
    OneKeyLister,
    RecordingQueue,
    engine_for,
    key_source,
    make_dek,
    populate,
    rsa_key,
    unwrap_row,
)

SHARD = "table:deks"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class NoDependents:
    async def sweep(self) -> object:
        return None

    async def pinned_versions(self, key_ref: str) -> dict[str, list[str]]:
        return {}


async def _noop_sleep(seconds: float) -> None:
    return None


def _engine(store: MemoryDekStore, source: Any, jobs: InMemoryJobStore, clock: Clock) -> Any:
    return engine_for(
        store,
        source,
        jobs,
        workers=1,
        now=clock,
        sleep=_noop_sleep,
        job_scope=SHARD,
        retry=RetryPolicy(max_transient_attempts=2),
    )


def test_failed_items_end_the_job_completed_with_failures_then_a_due_retry_fixes_them() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    plaintexts = populate(store, source, [V1], 6)
    broken = {f"{KEY_REF}/{V1}"}
    faulty = FaultyKeySource(
        source, lambda key_id: TransientServiceError("timeout") if key_id in broken else None
    )
    jobs, clock = InMemoryJobStore(), Clock()

    first = asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))

    assert first.status is JobStatus.COMPLETED_WITH_FAILURES
    assert first.counters.failed_total == 6
    assert first.state.attempts == 1
    assert first.state.left_behind == 6
    assert first.state.next_attempt_at == T0 + timedelta(seconds=JOB_RETRY_BASE_SECONDS)

    # Not due yet: a run (a duplicate message) does nothing.
    clock.now = T0 + timedelta(seconds=JOB_RETRY_BASE_SECONDS - 1)
    again = asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))
    assert again.already_completed
    assert again.state.attempts == 1

    # Due, and the vault is back: the retry is a fresh pass and ends clean.
    broken.clear()
    clock.now = T0 + timedelta(seconds=JOB_RETRY_BASE_SECONDS)
    retried = asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))
    assert not retried.already_completed
    assert retried.status is JobStatus.COMPLETED
    assert retried.state.attempts == 2
    assert retried.state.next_attempt_at is None
    assert retried.counters.rewrapped == 6
    for ref, row in store.rows.items():
        assert row.key_id.endswith(V2)
        assert unwrap_row(source, row) == plaintexts[ref]

    # Clean: never run again on its own.
    clock.now += timedelta(days=30)
    assert asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2)).already_completed


def test_a_dek_written_under_the_old_version_behind_the_scan_ends_the_job_incomplete() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 8)
    late, late_plain = make_dek(source, "aaa-late", V1)  # sorts before every scanned ref
    written: list[bool] = []

    def application_writes(records: Sequence[DekRecord]) -> None:
        if not written and any(r.ref == "dek-0007" for r in records):
            written.append(True)
            store.add(late)

    store.after_scan = application_writes
    jobs, clock = InMemoryJobStore(), Clock()

    report = asyncio.run(
        engine_for(store, source, jobs, page_size=3, now=clock, job_scope=SHARD).run(KEY_REF, V2)
    )

    assert written
    assert report.counters.failed_total == 0
    assert report.status is JobStatus.INCOMPLETE
    assert report.state.left_behind == 1
    assert store.rows["aaa-late"].key_id.endswith(V1)

    store.after_scan = None
    clock.now += retry_delay(1)
    retried = asyncio.run(
        engine_for(store, source, jobs, page_size=3, now=clock, job_scope=SHARD).run(KEY_REF, V2)
    )
    assert retried.status is JobStatus.COMPLETED
    assert retried.state.left_behind == 0
    assert unwrap_row(source, store.rows["aaa-late"]) == late_plain


def test_a_permanently_failing_item_stops_being_retried_after_max_attempts() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 2)
    faulty = FaultyKeySource(source, lambda key_id: TransientServiceError("timeout"))
    jobs, clock = InMemoryJobStore(), Clock()

    runs = 0
    while True:
        report = asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))
        if report.already_completed:
            break
        runs += 1
        assert report.status is JobStatus.COMPLETED_WITH_FAILURES
        clock.now += timedelta(days=2)  # past any backoff
        assert runs <= MAX_JOB_ATTEMPTS

    assert runs == MAX_JOB_ATTEMPTS
    assert report.state.attempts == MAX_JOB_ATTEMPTS
    assert report.state.gave_up
    assert not report.state.retry_due(clock.now)


def test_backoff_doubles_and_is_capped() -> None:
    delays = [retry_delay(n).total_seconds() for n in range(1, 10)]
    assert delays[:4] == [300, 600, 1200, 2400]
    assert max(delays) == 6 * 3600


def _sweep(
    source: Any, jobs: InMemoryJobStore, queue: RecordingQueue, clock: Clock
) -> SweepService:
    """The sweep sees shard names and job stores, never a DEK store: it cannot read DEKs."""
    return SweepService(
        allow_list=VaultAllowList.parse("contoso-kv"),
        lister=OneKeyLister(),
        keys=source,
        shards=(SHARD,),
        job_store=lambda shard: jobs,
        queue=queue,
        now=clock,
    )


def test_the_sweep_requeues_a_due_job_once_per_sweep() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 4)
    faulty = FaultyKeySource(source, lambda key_id: TransientServiceError("timeout"))
    jobs, clock, queue = InMemoryJobStore(), Clock(), RecordingQueue()
    asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))
    job_id = rewrap_job_id(KEY_REF, V2, SHARD)

    early = asyncio.run(_sweep(source, jobs, queue, clock).run())
    assert early.jobs_retried == []
    assert queue.sent == []

    clock.now += retry_delay(1)
    due = asyncio.run(_sweep(source, jobs, queue, clock).run())
    assert due.jobs_retried == [job_id]
    assert queue.sent == [ShardMessage(job_id, KEY_REF, V2, SHARD)]


def test_the_sweep_reports_a_job_that_spent_its_attempts_and_leaves_it() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 1)
    jobs, clock, queue = InMemoryJobStore(), Clock(), RecordingQueue()
    job_id = rewrap_job_id(KEY_REF, V2, SHARD)
    faulty = FaultyKeySource(source, lambda key_id: TransientServiceError("timeout"))
    asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))
    stored = asyncio.run(jobs.get(job_id))
    assert stored is not None
    spent = stored.state.evolve(attempts=MAX_JOB_ATTEMPTS)
    asyncio.run(jobs.put(spent, expected_etag=stored.etag))
    clock.now += timedelta(days=2)

    report = asyncio.run(_sweep(source, jobs, queue, clock).run())

    assert queue.sent == []
    assert any(job_id in problem and "restart" in problem for problem in report.problems)


def test_post_rewrap_restart_runs_an_ended_job_again_whatever_its_attempts() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 3)
    broken = {f"{KEY_REF}/{V1}"}
    faulty = FaultyKeySource(
        source, lambda key_id: TransientServiceError("timeout") if key_id in broken else None
    )
    jobs, clock, queue = InMemoryJobStore(), Clock(), RecordingQueue()
    job_id = rewrap_job_id(KEY_REF, V2, SHARD)
    asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))
    stored = asyncio.run(jobs.get(job_id))
    assert stored is not None
    asyncio.run(jobs.put(stored.state.evolve(attempts=MAX_JOB_ATTEMPTS), expected_etag=stored.etag))

    admin = AdminService(
        allow_list=VaultAllowList.parse("contoso-kv"),
        stores={SHARD: store},
        job_store=lambda shard: jobs,
        keys=source,
        planner=RewrapPlanner(source, queue, [SHARD]),
        ledger=None,  # type: ignore[arg-type]
        dependents=NoDependents(),  # type: ignore[arg-type]
        retired=InMemoryRetiredVersions(),
    )
    # A plain request for an ended job queues a message that does nothing.
    plain = asyncio.run(admin.rewrap(KEY_REF, version=None))
    assert plain["restarted"] == []
    assert asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2)).already_completed

    answer = asyncio.run(admin.rewrap(KEY_REF, version=None, restart=True))
    assert answer["restarted"] == [job_id]
    assert queue.sent[-1].job_id == job_id
    marked = asyncio.run(jobs.get(job_id))
    assert marked is not None
    assert marked.state.restart_requested

    broken.clear()
    report = asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))
    assert report.status is JobStatus.COMPLETED
    assert report.counters.rewrapped == 3
    assert not report.state.restart_requested
    assert report.state.attempts == MAX_JOB_ATTEMPTS + 1


# -- failed jobs (issue 11 follow-up): a refused target waits, other failures back off ----------


def _problems_about(report: Any, job_id: str) -> list[str]:
    return [problem for problem in report.problems if job_id in problem]


def _admin(
    store: MemoryDekStore, source: Any, jobs: InMemoryJobStore, queue: RecordingQueue
) -> Any:
    return AdminService(
        allow_list=VaultAllowList.parse("contoso-kv"),
        stores={SHARD: store},
        job_store=lambda shard: jobs,
        keys=source,
        planner=RewrapPlanner(source, queue, [SHARD]),
        ledger=None,  # type: ignore[arg-type]
        dependents=NoDependents(),  # type: ignore[arg-type]
        retired=InMemoryRetiredVersions(),
    )


def _restart(
    store: MemoryDekStore, source: Any, jobs: InMemoryJobStore, queue: RecordingQueue
) -> Any:
    """``POST /api/rewrap`` with ``"restart": true`` for the key."""
    admin = _admin(store, source, jobs, queue)
    return asyncio.run(admin.rewrap(KEY_REF, version=None, restart=True))


def test_a_refused_target_is_not_resumed_by_the_sweep_until_a_restart() -> None:
    source = key_source(V1)
    source.add_version(KEY_REF, V2, rsa_key(1), key_ops=("wrapKey", "encrypt", "verify"))
    store = MemoryDekStore()
    plaintexts = populate(store, source, [V1], 3)
    jobs, clock, queue = InMemoryJobStore(), Clock(), RecordingQueue()
    job_id = rewrap_job_id(KEY_REF, V2, SHARD)

    with pytest.raises(RewrapTargetError, match="without unwrapKey"):
        asyncio.run(_engine(store, source, jobs, clock).run(KEY_REF, V2))
    stored = asyncio.run(jobs.get(job_id))
    assert stored is not None
    refused = stored.state
    assert refused.status is JobStatus.FAILED
    assert refused.refused
    assert refused.next_attempt_at is None
    assert not refused.retry_due(clock.now + timedelta(days=30))
    assert not refused.gave_up

    # Sweep after sweep: never re-queued (no vault call for it), reported once each time.
    for later in (timedelta(0), timedelta(minutes=5), timedelta(hours=7), timedelta(days=2)):
        clock.now = T0 + later
        report = asyncio.run(_sweep(source, jobs, queue, clock).run())
        assert queue.sent == []
        assert report.jobs_resumed == report.jobs_retried == []
        (problem,) = _problems_about(report, job_id)
        assert "refused" in problem
        assert "without unwrapKey" in problem
        assert '"restart": true' in problem

    # The operator fixes the version's key_ops and restarts: the job runs and ends clean.
    created = asyncio.run(source.key_version(f"{KEY_REF}/{V2}")).created
    source.add_version(KEY_REF, V2, rsa_key(1), created=created)
    answer = _restart(store, source, jobs, queue)
    assert answer["restarted"] == [job_id]
    report = asyncio.run(_engine(store, source, jobs, clock).run(KEY_REF, V2))
    assert report.status is JobStatus.COMPLETED
    assert not report.state.refused
    assert report.state.failures == 0
    for ref, row in store.rows.items():
        assert unwrap_row(source, row) == plaintexts[ref]
    assert _problems_about(asyncio.run(_sweep(source, jobs, queue, clock).run()), job_id) == []


def test_a_refused_target_is_left_behind_when_the_key_gets_a_new_version() -> None:
    source = key_source(V1)
    source.add_version(KEY_REF, V2, rsa_key(1), key_ops=("wrapKey", "encrypt", "verify"))
    store = MemoryDekStore()
    populate(store, source, [V1], 2)
    jobs, clock, queue = InMemoryJobStore(), Clock(), RecordingQueue()
    with pytest.raises(RewrapTargetError):
        asyncio.run(_engine(store, source, jobs, clock).run(KEY_REF, V2))

    source.add_version(KEY_REF, V3, rsa_key(2))  # the key changes: a new, usable version
    report = asyncio.run(_sweep(source, jobs, queue, clock).run())

    fresh = rewrap_job_id(KEY_REF, V3, SHARD)
    assert report.jobs_started == [fresh]
    assert queue.sent == [ShardMessage(fresh, KEY_REF, V3, SHARD)]
    assert report.problems == []


def test_a_failing_job_is_resumed_with_backoff_and_capped() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 3)
    down = [True]
    faulty = FaultyKeySource(
        source,
        lambda key_id: TransientServiceError("timeout", status=503) if down[0] else None,
        fault_probe=True,
    )
    jobs, clock, queue = InMemoryJobStore(), Clock(), RecordingQueue()
    job_id = rewrap_job_id(KEY_REF, V2, SHARD)
    message = ShardMessage(job_id, KEY_REF, V2, SHARD)

    for failure in range(1, MAX_JOB_ATTEMPTS + 1):
        with pytest.raises(TransientServiceError):
            asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))
        stored = asyncio.run(jobs.get(job_id))
        assert stored is not None
        state = stored.state
        assert (state.status, state.refused, state.failures) == (JobStatus.FAILED, False, failure)
        assert state.next_attempt_at == clock.now + retry_delay(failure)
        # Not due: the sweep leaves it (before, it re-queued a failed job every sweep).
        clock.now = state.next_attempt_at - timedelta(seconds=1)
        early = asyncio.run(_sweep(source, jobs, queue, clock).run())
        assert early.jobs_resumed == []
        assert queue.sent == []
        clock.now = state.next_attempt_at
        due = asyncio.run(_sweep(source, jobs, queue, clock).run())
        if failure < MAX_JOB_ATTEMPTS:
            assert due.jobs_resumed == [job_id]
            assert queue.sent == [message]
            queue.sent.clear()

    # Every attempt spent: reported naming the restart, never re-queued on its own.
    assert state.gave_up
    clock.now += timedelta(days=3)
    spent = asyncio.run(_sweep(source, jobs, queue, clock).run())
    assert queue.sent == []
    (problem,) = _problems_about(spent, job_id)
    assert f"failed after {MAX_JOB_ATTEMPTS} attempts" in problem
    assert "restart" in problem

    down[0] = False
    _restart(store, source, jobs, queue)
    report = asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))
    assert report.status is JobStatus.COMPLETED
    assert report.state.failures == 0


def test_a_failure_after_progress_starts_the_count_again() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 6)
    jobs, clock = InMemoryJobStore(), Clock()
    job_id = rewrap_job_id(KEY_REF, V2, SHARD)
    # Three failures in a row before any page, then a run that checkpoints a page and fails.
    faulty = FaultyKeySource(
        source, lambda key_id: TransientServiceError("timeout", status=503), fault_probe=True
    )
    for _ in range(3):
        with pytest.raises(TransientServiceError):
            asyncio.run(_engine(store, faulty, jobs, clock).run(KEY_REF, V2))
    stored = asyncio.run(jobs.get(job_id))
    assert stored is not None
    assert stored.state.failures == 3

    pages: list[int] = []

    def fail_after_first_page(records: Sequence[DekRecord]) -> None:
        pages.append(len(records))
        if len(pages) == 2:
            raise TransientServiceError("table storage down", status=503)

    store.after_scan = fail_after_first_page
    with pytest.raises(TransientServiceError):
        asyncio.run(
            engine_for(
                store, source, jobs, page_size=3, workers=1, now=clock, sleep=_noop_sleep,
                job_scope=SHARD, retry=RetryPolicy(max_transient_attempts=1),
            ).run(KEY_REF, V2)
        )  # fmt: skip
    stored = asyncio.run(jobs.get(job_id))
    assert stored is not None
    assert stored.state.status is JobStatus.FAILED
    assert stored.state.pages >= 1
    assert stored.state.failures == 1, "a run that checkpointed a page was not stuck"


def test_a_running_job_whose_lease_lapsed_is_resumed_at_once_every_sweep() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 2)
    jobs, clock, queue = InMemoryJobStore(), Clock(), RecordingQueue()
    job_id = rewrap_job_id(KEY_REF, V2, SHARD)
    asyncio.run(_engine(store, source, jobs, clock).run(KEY_REF, V2))
    stored = asyncio.run(jobs.get(job_id))
    assert stored is not None
    crashed = stored.state.evolve(
        status=JobStatus.RUNNING, owner="dead-worker", lease_expires_at=T0 - timedelta(seconds=1)
    )
    asyncio.run(jobs.put(crashed, expected_etag=stored.etag))

    for _ in range(2):
        report = asyncio.run(_sweep(source, jobs, queue, clock).run())
        assert report.jobs_resumed == [job_id]
    assert queue.sent == [ShardMessage(job_id, KEY_REF, V2, SHARD)] * 2


def test_a_failed_job_recorded_before_the_cap_existed_is_resumed_at_once() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 2)
    jobs, clock, queue = InMemoryJobStore(), Clock(), RecordingQueue()
    job_id = rewrap_job_id(KEY_REF, V2, SHARD)
    asyncio.run(_engine(store, source, jobs, clock).run(KEY_REF, V2))
    stored = asyncio.run(jobs.get(job_id))
    assert stored is not None
    legacy = stored.state.to_dict()
    legacy.update(status="failed", error="ServiceError: table down", next_attempt_at=None)
    del legacy["failures"], legacy["refused"]
    asyncio.run(jobs.put(JobState.from_dict(legacy), expected_etag=stored.etag))

    report = asyncio.run(_sweep(source, jobs, queue, clock).run())

    assert report.jobs_resumed == [job_id]
