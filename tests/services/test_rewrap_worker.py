"""RewrapWorkerService: slices, continuations, scale-out safety, poison, bad messages.

In-process parts: the rewrap tests' MemoryDekStore (real wrapped DEKs under real RSA keys),
keyward's LocalKeyVersionSource and InMemoryJobStore, and an in-memory queue.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest

from functions.rewrap_worker import MAX_DEQUEUE_COUNT
from shared.crypto import VaultAllowList
from shared.errors import TransientServiceError
from shared.events import RejectedEventRecord
from shared.rewrap import (
    EngineSettings,
    InMemoryJobStore,
    JobState,
    JobStatus,
    RetryPolicy,
    ShardMessage,
    rewrap_job_id,
)
from shared.services.rewrap_worker import RewrapWorkerService
from tests.rewrap.fakes import KEY_REF, V1, V2, MemoryDekStore, key_source, populate, unwrap_row

SHARD = "table:deks"


class Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[ShardMessage, int]] = []

    async def send(self, message: ShardMessage, *, delay_seconds: int = 0) -> None:
        self.sent.append((message, delay_seconds))


def _worker(
    store: MemoryDekStore, jobs: InMemoryJobStore, queue: Queue, **options: object
) -> RewrapWorkerService:
    options.setdefault("max_dequeue_count", MAX_DEQUEUE_COUNT)
    return RewrapWorkerService(
        allow_list=VaultAllowList.parse("contoso-kv"),
        stores={SHARD: store},
        job_store=lambda shard: jobs,
        keys=options.pop("keys"),  # type: ignore[arg-type]
        queue=queue,
        **options,  # type: ignore[arg-type]
    )


def _message() -> ShardMessage:
    return ShardMessage(rewrap_job_id(KEY_REF, V2, SHARD), KEY_REF, V2, SHARD)


async def test_two_workers_on_one_shard_lose_nothing_and_apply_each_write_once() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    plaintexts = populate(store, source, [V1], 300)
    jobs, queue = InMemoryJobStore(), Queue()
    worker = _worker(store, jobs, queue, keys=source)
    body = _message().to_json()
    first, second = await asyncio.gather(
        worker.handle(body, message_id="a", dequeue_count=1),
        worker.handle(body, message_id="b", dequeue_count=1),
    )
    statuses = sorted([first.status, second.status])
    assert statuses in (["busy", "completed"], ["completed", "completed"])
    for ref, row in store.rows.items():
        assert row.key_id.endswith(V2)
        assert unwrap_row(source, row) == plaintexts[ref]
    stored = await jobs.get(_message().job_id)
    assert stored is not None
    assert stored.state.status is JobStatus.COMPLETED
    assert stored.state.counters.rewrapped == 300, "each DEK rewrapped exactly once"


async def test_a_slice_that_ends_enqueues_its_continuation() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 400)
    jobs, queue = InMemoryJobStore(), Queue()
    # Each read of the clock moves it 100 ms: the slice (2 s) ends after 20 reads. The hard
    # deadline reads it too, before every wait, so a page in flight still gets its drain.
    ticks = itertools.count()
    worker = _worker(
        store, jobs, queue, keys=source, slice_seconds=2.0, clock=lambda: next(ticks) / 10
    )
    outcome = await worker.handle(_message().to_json(), message_id="a", dequeue_count=1)
    assert outcome.status == "continued"
    ((continuation, delay),) = queue.sent
    assert (continuation.slice_number, delay) == (1, 0)
    while True:
        queue.sent.clear()
        outcome = await worker.handle(continuation.to_json(), message_id="b", dequeue_count=1)
        if outcome.status == "completed":
            break
        ((continuation, _),) = queue.sent
    assert all(row.key_id.endswith(V2) for row in store.rows.values())


async def test_malformed_and_foreign_messages_are_dropped_without_side_effects() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 5)
    jobs, queue = InMemoryJobStore(), Queue()
    worker = _worker(store, jobs, queue, keys=source)
    foreign = ShardMessage.for_shard("https://evil-kv.vault.azure.net/keys/k", V2, SHARD).to_json()
    unknown_shard = ShardMessage.for_shard(KEY_REF, V2, "blob:nope").to_json()
    # A well-formed shard of a kind no store is registered or configured for (the message
    # no longer enumerates kinds): the worker, which holds the configured stores, refuses it.
    unknown_kind = ShardMessage.for_shard(KEY_REF, V2, "s3:tab").to_json()
    for body in ("{", "[]", foreign, unknown_shard, unknown_kind):
        outcome = await worker.handle(body, message_id="m", dequeue_count=1)
        assert outcome.status == "dropped"
        if body in (unknown_shard, unknown_kind):
            assert outcome.detail == "shard not configured"
    assert queue.sent == []
    assert await jobs.list_jobs() == []
    assert all(row.key_id.endswith(V1) for row in store.rows.values())


class _BrokenStore(MemoryDekStore):
    async def replace_batch(self, rewraps):  # type: ignore[no-untyped-def]
        raise TransientServiceError("storage unavailable", status=503)


async def test_the_last_failed_delivery_records_the_poison_on_the_job() -> None:
    source = key_source(V1, V2)
    store = _BrokenStore()
    populate(store, source, [V1], 10)
    jobs, queue = InMemoryJobStore(), Queue()
    from shared.rewrap import EngineSettings, RetryPolicy

    settings = EngineSettings(
        retry=RetryPolicy(
            max_transient_attempts=1, base_backoff_seconds=0.0, max_backoff_seconds=0.0
        )
    )
    worker = _worker(store, jobs, queue, keys=source, engine_settings=settings, max_dequeue_count=2)
    for attempt in (1, 2):
        try:
            await worker.handle(_message().to_json(), message_id="m", dequeue_count=attempt)
        except TransientServiceError:
            pass
        else:
            raise AssertionError("a transient fault must raise so the queue redelivers")
    stored = await jobs.get(_message().job_id)
    assert stored is not None
    assert stored.state.status is JobStatus.FAILED
    assert (stored.state.error or "").startswith("poison:")


def test_a_slice_longer_than_the_function_timeout_allows_is_refused() -> None:
    from shared.errors import ConfigurationError
    from shared.rewrap import MAX_SLICE_SECONDS

    with pytest.raises(ConfigurationError, match="functionTimeout"):
        _worker(
            MemoryDekStore(),
            InMemoryJobStore(),
            Queue(),
            keys=key_source(V1, V2),
            slice_seconds=MAX_SLICE_SECONDS + 1,
        )


async def test_a_job_that_ends_short_of_clean_is_not_continued_by_the_worker() -> None:
    """It ended: the sweep retries it after its backoff, not the worker at once."""
    from tests.rewrap.fakes import FaultyKeySource

    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 3)
    faulty = FaultyKeySource(source, lambda key_id: TransientServiceError("timeout"))
    jobs, queue = InMemoryJobStore(), Queue()
    worker = _worker(
        store,
        jobs,
        queue,
        keys=faulty,
        engine_settings=EngineSettings(retry=RetryPolicy(max_transient_attempts=1)),
    )

    outcome = await worker.handle(_message().to_json(), message_id="a", dequeue_count=1)

    assert outcome.status == "completed"
    assert outcome.detail == "completed_with_failures"
    assert queue.sent == []


class _Rejections:
    def __init__(self) -> None:
        self.records: list[RejectedEventRecord] = []

    async def reject(self, record: RejectedEventRecord) -> None:
        self.records.append(record)


async def test_a_message_claiming_another_jobs_id_is_refused_and_that_job_untouched() -> None:
    """Issue 11 item 9: the job id is derived from the message, never trusted from it."""
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 5)
    jobs, queue, rejections = InMemoryJobStore(), Queue(), _Rejections()
    worker = _worker(store, jobs, queue, keys=source, max_dequeue_count=1, rejections=rejections)
    # The victim: another key's job, running on the same shard's job store.
    other_key = KEY_REF.replace("/keys/", "/keys/payroll-")
    victim = rewrap_job_id(other_key, V2, SHARD)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    running = JobState(
        job_id=victim, key_ref=other_key, target_version=V2, target_key_id=f"{other_key}/{V2}",
        status=JobStatus.RUNNING, created_at=now, updated_at=now, scope=SHARD,
    )  # fmt: skip
    await jobs.put(running, expected_etag=None)
    before = await jobs.get(victim)
    assert before is not None
    forged = _message().to_json().replace(_message().job_id, victim)
    # Even on the last delivery (when a failing message would mark "its" job failed).
    outcome = await worker.handle(forged, message_id="forged-1", dequeue_count=1)
    assert outcome.status == "refused"
    assert await jobs.get(victim) == before
    assert await jobs.get(_message().job_id) is None, "no job was started for it either"
    assert all(row.key_id.endswith(V1) for row in store.rows.values())
    (record,) = rejections.records
    assert record.reason == "JOB_ID_MISMATCH"
    assert record.event_id == "forged-1"
    assert victim in record.payload
    assert victim in record.detail


async def test_malformed_messages_are_recorded_with_the_rejections() -> None:
    source = key_source(V1, V2)
    rejections = _Rejections()
    worker = _worker(
        MemoryDekStore(), InMemoryJobStore(), Queue(), keys=source, rejections=rejections
    )
    outcome = await worker.handle("{not json", message_id="m1", dequeue_count=1)
    assert outcome.status == "dropped"
    assert [r.reason for r in rejections.records] == ["BAD_QUEUE_MESSAGE"]
