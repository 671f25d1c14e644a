"""The periodic verification pass (issue 12): the sweep asks for it, the worker runs it.

An application may insert a DEK under an older key version after keyward's job ended clean;
the sweep never reads DEKs, so it asks for a fresh pass of the job once its last pass ended
``KEYWARD_VERIFY_INTERVAL_HOURS`` ago, and the worker runs it like any job. Job states live
in keyward's real Table job store on Azurite (the ETag-conditional mark is the point); DEKs
are real RSA wraps in the rewrap tests' in-memory store, which here returns every DEK to the
scan (a store may drop those at the target server-side: then ``scanned`` counts the rest).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables.aio import TableClient

from functions.rewrap_worker import MAX_DEQUEUE_COUNT
from shared.adapters.table_state import TableJobStore
from shared.crypto import VaultAllowList
from shared.errors import TransientServiceError
from shared.rewrap import (
    JobState,
    JobStatus,
    RetryPolicy,
    ShardMessage,
    StoredJob,
    rewrap_job_id,
    unfinished_jobs,
)
from shared.services._render import job_json
from shared.services.rewrap_worker import RewrapWorkerService
from shared.services.sweep import VERIFICATION_RESEND, SweepService
from tests.rewrap.fakes import (
    KEY_REF,
    V1,
    V2,
    FaultyKeySource,
    MemoryDekStore,
    OneKeyLister,
    RecordingQueue,
    engine_for,
    key_source,
    make_dek,
    populate,
    unwrap_row,
)

pytestmark = pytest.mark.azurite

SHARD = "table:deks"
JOB_ID = rewrap_job_id(KEY_REF, V2, SHARD)
DAY = timedelta(hours=24)


def _sweep(
    source: Any, jobs: TableJobStore, queue: RecordingQueue, now: datetime, **kw: Any
) -> Any:
    return SweepService(
        allow_list=VaultAllowList.parse("contoso-kv"),
        lister=OneKeyLister(),
        keys=source,
        shards=(SHARD,),
        job_store=lambda shard: jobs,
        queue=queue,
        now=lambda: now,
        verify_interval=kw.pop("verify_interval", DAY),
    )


def _worker(store: MemoryDekStore, source: Any, jobs: TableJobStore, **kw: Any) -> Any:
    return RewrapWorkerService(
        allow_list=VaultAllowList.parse("contoso-kv"),
        stores={SHARD: store},
        job_store=lambda shard: jobs,
        keys=source,
        queue=RecordingQueue(),
        max_dequeue_count=MAX_DEQUEUE_COUNT,
        **kw,
    )


def _message() -> ShardMessage:
    return ShardMessage(JOB_ID, KEY_REF, V2, SHARD)


async def _stored(jobs: TableJobStore) -> StoredJob:
    stored = await jobs.get(JOB_ID)
    assert stored is not None
    return stored


async def _complete_first_pass(
    store: MemoryDekStore, source: Any, jobs: TableJobStore, count: int = 12
) -> JobState:
    populate(store, source, [V1], count)
    outcome = await _worker(store, source, jobs).handle(
        _message().to_json(), message_id="first", dequeue_count=1
    )
    assert outcome.status == "completed"
    state = (await _stored(jobs)).state
    assert state.status is JobStatus.COMPLETED
    return state


async def test_the_sweep_asks_for_a_verification_only_once_due(table: TableClient) -> None:
    source, store = key_source(V1, V2), MemoryDekStore(filter_current=False)
    jobs, queue = TableJobStore(table, SHARD), RecordingQueue()
    first = await _complete_first_pass(store, source, jobs)
    assert first.finished_at is not None
    ended = first.finished_at

    early = await _sweep(source, jobs, queue, ended + DAY - timedelta(minutes=1)).run()
    assert early.verifications_queued == []
    assert queue.sent == []
    off = await _sweep(source, jobs, queue, ended + 30 * DAY, verify_interval=timedelta(0)).run()
    assert off.verifications_queued == []
    assert queue.sent == []
    assert (await _stored(jobs)).state.restart_requested is False

    due = await _sweep(source, jobs, queue, ended + DAY).run()
    assert due.verifications_queued == [JOB_ID]
    assert queue.sent == [_message()]
    assert "verifications=1" in due.log_line()
    marked = (await _stored(jobs)).state
    assert marked.restart_requested
    assert marked.verification
    assert marked.status is JobStatus.COMPLETED

    # Not claimed yet: the message waits in the queue; the next sweeps write nothing and
    # send it again only once it may have been lost.
    etag = (await _stored(jobs)).etag
    marked_at = marked.updated_at
    waiting = await _sweep(source, jobs, queue, marked_at + timedelta(minutes=5)).run()
    assert waiting.verifications_queued == []
    assert waiting.jobs_retried == []
    assert len(queue.sent) == 1
    again = await _sweep(source, jobs, queue, marked_at + VERIFICATION_RESEND).run()
    assert again.verifications_queued == [JOB_ID]
    assert again.jobs_retried == []
    assert len(queue.sent) == 2
    assert (await _stored(jobs)).etag == etag


async def test_a_mark_lost_to_a_concurrent_write_is_not_queued(table: TableClient) -> None:
    source, store = key_source(V1, V2), MemoryDekStore(filter_current=False)
    jobs, queue = TableJobStore(table, SHARD), RecordingQueue()
    first = await _complete_first_pass(store, source, jobs)
    assert first.finished_at is not None
    sweep = _sweep(source, jobs, queue, first.finished_at + 2 * DAY)
    stale = await _stored(jobs)
    # Someone (an operator's restart) writes the job after the sweep read it.
    await jobs.put(stale.state.evolve(restart_requested=True), expected_etag=stale.etag)
    assert await sweep._ask_verification(SHARD, stale, first.finished_at + 2 * DAY) is False
    assert (await _stored(jobs)).state.verification is False


async def test_only_clean_completed_jobs_are_verified(table: TableClient) -> None:
    """A job that ended short of clean, or failed, or runs, follows the existing rules."""
    source = key_source(V1, V2)
    jobs, queue = TableJobStore(table, SHARD), RecordingQueue()
    store = MemoryDekStore()
    populate(store, source, [V1], 6)
    broken = FaultyKeySource(source, lambda key_id: TransientServiceError("timeout"))
    worker = _worker(
        store,
        broken,
        jobs,
        engine_settings=_settings(RetryPolicy(max_transient_attempts=1)),
    )
    await worker.handle(_message().to_json(), message_id="a", dequeue_count=1)
    short = (await _stored(jobs)).state
    assert short.status is JobStatus.COMPLETED_WITH_FAILURES
    later = short.updated_at + 30 * DAY
    report = await _sweep(source, jobs, queue, later).run()
    assert report.verifications_queued == []
    assert report.jobs_retried == [JOB_ID], "the retry rule, not a verification"
    assert (await _stored(jobs)).state.verification is False

    for status, extra in (
        (JobStatus.FAILED, {"refused": True, "error": "disabled"}),
        (JobStatus.FAILED, {"failures": 1}),
        (JobStatus.RUNNING, {"lease_expires_at": later + DAY, "owner": "w"}),
    ):
        stored = await _stored(jobs)
        await jobs.put(
            stored.state.evolve(status=status, finished_at=short.updated_at, **extra),
            expected_etag=stored.etag,
        )
        queue.sent.clear()
        report = await _sweep(source, jobs, queue, later).run()
        assert report.verifications_queued == [], status
        assert (await _stored(jobs)).state.verification is False


def _settings(retry: RetryPolicy) -> Any:
    from shared.rewrap import EngineSettings

    return EngineSettings(rate_ceiling=1_000_000, workers=2, retry=retry)


async def test_the_verification_pass_rewraps_a_dek_written_under_an_older_version(
    table: TableClient,
) -> None:
    source, store = key_source(V1, V2), MemoryDekStore(filter_current=False)
    jobs, queue = TableJobStore(table, SHARD), RecordingQueue()
    first = await _complete_first_pass(store, source, jobs, count=12)
    assert first.finished_at is not None
    assert [(p.scanned, p.rewrapped, p.verification) for p in first.passes] == [(12, 12, False)]

    # An application, not keyward, inserts a DEK wrapped under the old version afterwards.
    row, plaintext = make_dek(source, "app-late", V1, partition="p0")
    store.add(row)

    report = await _sweep(source, jobs, queue, datetime.now(UTC) + DAY).run()
    assert report.verifications_queued == [JOB_ID]
    marked = (await _stored(jobs)).state
    # Asked for, not claimed yet: still COMPLETED, so not unfinished for the verdict.
    assert unfinished_jobs([marked], KEY_REF, V2, datetime.now(UTC)) == ()

    worker = _worker(store, source, jobs)
    outcome = await worker.handle(queue.sent[0].to_json(), message_id="verify", dequeue_count=1)
    assert outcome.status == "completed"

    late = store.rows[row.ref]
    assert late.key_id.endswith(V2)
    assert unwrap_row(source, late) == plaintext

    state = (await _stored(jobs)).state
    assert state.status is JobStatus.COMPLETED
    assert not state.verification
    assert not state.restart_requested
    assert state.counters.scanned == 13
    assert state.counters.rewrapped == 1
    assert state.attempts == 1, "a verification starts a new series of retries"
    assert state.created_at == first.created_at
    assert [(p.scanned, p.rewrapped, p.verification) for p in state.passes] == [
        (12, 12, False),
        (13, 1, True),
    ]
    verification = state.passes[-1]
    assert verification.seconds > 0
    assert verification.deks_per_second == pytest.approx(13 / verification.seconds)
    assert verification.ended_at == state.finished_at
    assert verification.started_at >= first.finished_at
    assert verification.status == "completed"
    shown = job_json(state)["passes"][-1]
    assert shown["verification"] is True
    assert shown["deks_per_second"] > 0


async def test_a_verification_pass_in_progress_blocks_retirement(table: TableClient) -> None:
    """While the verification runs (a slice ended mid-pass), the verdict counts the job as
    unfinished: the safe side, it may be about to move a DEK under the version an operator
    wants to retire. The pass's time adds up over its slices."""
    source, store = key_source(V1, V2), MemoryDekStore(filter_current=False)
    jobs, queue = TableJobStore(table, SHARD), RecordingQueue()
    first = await _complete_first_pass(store, source, jobs, count=30)
    assert unfinished_jobs([first], KEY_REF, V2, datetime.now(UTC)) == ()
    await _sweep(source, jobs, queue, datetime.now(UTC) + DAY).run()

    engine = engine_for(store, source, jobs, page_size=10, job_scope=SHARD)
    paused = await engine.run(KEY_REF, V2, should_stop=lambda: True)
    mid = (await _stored(jobs)).state
    assert paused.status is JobStatus.RUNNING
    assert mid.verification
    assert 0 < mid.counters.scanned < 30
    assert mid.pass_seconds > 0
    assert mid.pass_started_at is not None
    assert unfinished_jobs([mid], KEY_REF, V2, datetime.now(UTC)) == (
        f"{SHARD}:{JOB_ID} (running)",
    )

    done = await engine_for(store, source, jobs, page_size=10, job_scope=SHARD).run(KEY_REF, V2)
    assert done.status is JobStatus.COMPLETED
    verification = done.state.passes[-1]
    assert verification.verification
    assert verification.scanned == 30
    assert verification.started_at == mid.pass_started_at
    assert verification.seconds > mid.pass_seconds
    assert unfinished_jobs([done.state], KEY_REF, V2, datetime.now(UTC)) == ()
