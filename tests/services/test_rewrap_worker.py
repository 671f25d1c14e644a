"""RewrapWorkerService: slices, continuations, scale-out safety, poison, bad messages.

In-process parts: the rewrap tests' MemoryDekStore (real wrapped DEKs under real RSA keys),
keyward's LocalKeyVersionSource and InMemoryJobStore, and an in-memory queue.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from functions.rewrap_worker import MAX_DEQUEUE_COUNT
from shared.crypto import VaultAllowList
from shared.errors import TransientServiceError
from shared.rewrap import (
    EngineSettings,
    InMemoryJobStore,
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
    foreign = ShardMessage("j", "https://evil-kv.vault.azure.net/keys/k", V2, SHARD).to_json()
    unknown_shard = ShardMessage("j", KEY_REF, V2, "blob:nope").to_json()
    # A well-formed shard of a kind no store is registered or configured for (the message
    # no longer enumerates kinds): the worker, which holds the configured stores, refuses it.
    unknown_kind = ShardMessage("j", KEY_REF, V2, "s3:tab").to_json()
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
