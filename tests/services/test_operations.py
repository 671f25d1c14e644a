"""Admin operations (issue 12): recorded, queued, run in slices, resumed without counting twice.

In-process parts, as ``test_retire``: keyward's SQLite DEK store or the in-memory one, local
RSA key versions, the in-memory job store, retired-version record and operation records. The
queue is a list the tests deliver from, as the queue trigger would.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.errors import InvalidInputError, TransientServiceError
from shared.rewrap import (
    JobState,
    JobStatus,
    OperationMessage,
    RewrapEngine,
    rewrap_job_id,
)
from shared.services._operation import check_operation_id
from shared.services._operation_store import InMemoryOperationRecords
from shared.services._render import dry_run_json, retirement_json
from shared.services.admin import AdminService
from shared.services.operations import OperationService
from shared.stores import CountPage
from tests.memory_store import MemoryDekStore
from tests.rewrap.fakes import KEY_REF, V1, V2
from tests.services.test_retire import SHARD, World, _app_writes_during_forget

NOW = datetime(2026, 12, 6, 11, tzinfo=UTC)


class OperationQueue:
    def __init__(self) -> None:
        self.sent: list[OperationMessage] = []

    async def send_operation(self, message: OperationMessage, *, delay_seconds: int = 0) -> None:
        self.sent.append(message)


class Stack:
    """A ``World`` whose admin records operations and queues them, as in production."""

    def __init__(self, world: World, *, page_size: int = 1000) -> None:
        self.world, self.records, self.queue = world, InMemoryOperationRecords(), OperationQueue()
        old = world.admin
        self.admin = AdminService(
            allow_list=old._allow_list, stores=old._stores, job_store=old._job_store,
            keys=old._keys, planner=old._planner, ledger=old._ledger,
            dependents=old._dependents, retired=world.retired,
            operation_records=self.records, operation_queue=self.queue, max_dequeue_count=3,
        )  # fmt: skip
        parts = self.admin.operations._parts
        self.admin.operations._parts = type(parts)(
            parts.stores, parts.keys, parts.pinned, parts.jobs, parts.retired, parts.now,
            parts.engine_settings, count_page_size=page_size,
        )  # fmt: skip
        world.admin = self.admin  # its in-process verdict and retire, for comparisons

    @property
    def operations(self) -> OperationService:
        return self.admin.operations

    async def deliver_all(self, *, steps_per_slice: int | None = 1) -> dict[str, Any]:
        """Deliver queued messages until none is left (slices of ``steps_per_slice`` steps:
        every slice ends mid-scan); the last operation's status."""
        found: dict[str, Any] | None = None
        while self.queue.sent:
            message = self.queue.sent.pop(0)
            op = await self.operations.run_slice(message.operation_id, max_steps=steps_per_slice)
            assert op is not None
            if not op.status.finished:
                self.queue.sent.append(message.next_slice())
            found = await self.admin.operation(message.operation_id)
        assert found is not None
        return found


async def test_a_verdict_in_one_step_slices_equals_the_whole_store_verdict() -> None:
    world = World(pinned={V1: ["/subscriptions/s/face-1"]})
    await world.insert(V1, 25)
    stack = Stack(world, page_size=4)

    started = await stack.admin.start_verdict(KEY_REF)
    accepted = stack.admin.accepted(started)
    assert accepted == {"operation_id": started.operation_id, "status": "accepted",
                        "status_url": f"/api/operations/{started.operation_id}"}  # fmt: skip
    assert [m.operation_id for m in stack.queue.sent] == [started.operation_id]
    pending = await stack.admin.operation(started.operation_id)
    assert pending is not None
    assert (pending["status"], pending["result"], pending["error"]) == ("accepted", None, None)

    done = await stack.deliver_all()

    assert done["status"] == "succeeded"
    assert done["progress"]["stores"] == {SHARD: {"counted": 25, "done": True}}
    assert done["result"] == retirement_json(await world.admin.verdict(KEY_REF))
    (v1,) = [v for v in done["result"]["versions"] if v["version"] == V1]
    assert (v1["current"], v1["pinned"]) == (25, ["/subscriptions/s/face-1"])


async def test_a_dry_run_operation_answers_what_the_dry_run_always_did() -> None:
    world = World()
    await world.insert(V1, 30)
    stack = Stack(world)

    started = await stack.admin.start_dry_run(KEY_REF, version=None)
    done = await stack.deliver_all()

    engine = RewrapEngine(store=world.store, keys=world.source, jobs=world.jobs)
    expected = dry_run_json(SHARD, await engine.dry_run(KEY_REF))
    assert done["operation_id"] == started.operation_id
    assert done["result"] == {"dry_run": True, "key": KEY_REF, "shards": [expected]}
    assert expected["would_rewrap"] == {V1: 30}
    assert done["progress"]["stores"][SHARD] == {"counted": 30, "done": True}


async def test_an_operation_resumes_after_a_slice_ends_mid_scan_counting_nothing_twice() -> None:
    store = MemoryDekStore()
    world = World(more_stores={"memory:m": store})
    await world.insert(V1, 3)
    for index in range(97):
        await store.insert_batch([_memory_dek(world, index)])
    stack = Stack(world, page_size=10)
    started = await stack.admin.start_verdict(KEY_REF)

    first = await stack.operations.run_slice(started.operation_id, max_steps=4)
    assert first is not None
    assert first.status.value == "running"
    midway = await stack.admin.operation(started.operation_id)
    assert midway is not None
    assert midway["progress"]["stores"]["memory:m"] == {"counted": 30, "done": False}
    assert store.count_calls == 3

    # A new delivery (another worker, after the slice ended) continues from the checkpoint.
    done = await stack.operations.run_slice(started.operation_id)
    assert done is not None
    assert done.status.value == "succeeded"
    assert store.count_calls == 10  # 97 DEKs, 10 a page: each page read once
    (v1,) = [v for v in done.result["versions"] if v["version"] == V1]  # type: ignore[index]
    assert v1["current"] == 100


async def test_a_worker_that_dies_mid_page_loses_only_that_page_and_counts_it_once() -> None:
    store = FlakyCounts(fail_on_call=3)
    world = World(more_stores={"memory:m": store})
    for index in range(45):
        await store.insert_batch([_memory_dek(world, index)])
    stack = Stack(world, page_size=10)
    started = await stack.admin.start_verdict(KEY_REF)
    message = OperationMessage(started.operation_id).to_json()

    with pytest.raises(TransientServiceError):  # the queue makes the message visible again
        await stack.operations.handle(message, message_id="m", dequeue_count=1)
    outcome = await stack.operations.handle(message, message_id="m", dequeue_count=2)

    assert outcome.status == "succeeded"
    found = await stack.admin.operation(started.operation_id)
    assert found is not None
    (v1,) = [v for v in found["result"]["versions"] if v["version"] == V1]
    assert v1["current"] == 45  # the page read when the worker died is counted once


async def test_two_deliveries_at_once_save_each_step_once() -> None:
    store = SlowCounts()
    world = World(more_stores={"memory:m": store})
    for index in range(60):
        await store.insert_batch([_memory_dek(world, index)])
    stack = Stack(world, page_size=7)
    started = await stack.admin.start_verdict(KEY_REF)

    outcomes = await asyncio.gather(
        *(stack.operations.run_slice(started.operation_id) for _ in range(3))
    )

    assert sum(o is None for o in outcomes) >= 1  # a delivery lost a write and stopped
    found = await stack.admin.operation(started.operation_id)
    assert found is not None
    if found["status"] != "succeeded":  # every delivery lost a race: the next one finishes
        await stack.operations.run_slice(started.operation_id)
        found = await stack.admin.operation(started.operation_id)
    assert found is not None
    (v1,) = [v for v in found["result"]["versions"] if v["version"] == V1]
    assert v1["current"] == 60


async def test_retire_as_an_operation_sliced_at_every_step() -> None:
    world = World()
    await world.insert(V1, 12)
    await world.engine().run(KEY_REF)
    stack = Stack(world, page_size=5)

    await stack.admin.start_retire(f"{KEY_REF}/{V1}")
    done = await stack.deliver_all()

    assert done["status"] == "succeeded"
    assert done["result"] == {"key": KEY_REF, "version": V1, "status": "retired",
                              "safe_to_disable": True, "previous_wraps_dropped": 12}  # fmt: skip
    assert done["progress"]["previous_wraps_dropped"] == 12
    assert await world.retired.retired_versions(KEY_REF) == {V1}


async def test_a_refused_retire_operation_says_why_and_changes_nothing() -> None:
    world = World()
    await world.insert(V1, 2)  # DEKs still wrapped under it
    stack = Stack(world)

    await stack.admin.start_retire(KEY_REF, version=V1)
    done = await stack.deliver_all()

    assert (done["status"], done["result"]) == ("failed", None)
    assert done["error"]["code"] == "RetirementBlocked"
    assert "2 DEKs wrapped under it" in done["error"]["blockers"]
    assert await world.retired.retired_versions(KEY_REF) == frozenset()


async def test_a_job_claimed_between_the_looks_makes_the_operation_withdraw_and_refuse() -> None:
    world = World()
    stack = Stack(world)
    await stack.admin.start_retire(KEY_REF, version=V1)
    first = stack.queue.sent[0].operation_id
    while (await stack.operations.run_slice(first, max_steps=1)).phase.value == "look":  # type: ignore[union-attr]
        pass  # the first look is done; a worker claims a job before the record is written
    claimed = JobState(
        job_id=rewrap_job_id(KEY_REF, V2, SHARD), key_ref=KEY_REF, target_version=V2,
        target_key_id=f"{KEY_REF}/{V2}", status=JobStatus.RUNNING, created_at=NOW,
        updated_at=NOW, scope=SHARD, owner="w",
        lease_expires_at=datetime.now(UTC) + timedelta(minutes=1),
    )  # fmt: skip
    await world.jobs.put(claimed, expected_etag=None)

    stack.queue.sent[:] = [OperationMessage(first)]
    done = await stack.deliver_all()

    assert done["status"] == "failed"
    assert "a rewrap job started" in done["error"]["message"]
    assert "1 rewrap jobs of the key running or pending" in done["error"]["blockers"]
    assert await world.retired.retired_versions(KEY_REF) == frozenset()


async def test_a_write_during_the_forget_phase_makes_the_operation_a_race() -> None:
    world = World()
    await world.insert(V2, 2)
    _app_writes_during_forget(world)
    stack = Stack(world)

    await stack.admin.start_retire(KEY_REF, version=V1)
    done = await stack.deliver_all()

    assert done["status"] == "failed"
    assert done["error"]["code"] == "RetirementRace"
    assert done["error"]["blockers"] == ["1 DEKs wrapped under it"]
    assert done["error"]["previous_wraps_dropped"] == 0
    assert await world.retired.retired_versions(KEY_REF) == {V1}  # it stays retired


async def test_the_last_delivery_of_a_failing_operation_records_the_failure() -> None:
    store = FlakyCounts(fail_on_call=1, always=True)
    world = World(more_stores={"memory:m": store})
    stack = Stack(world)
    started = await stack.admin.start_verdict(KEY_REF)
    message = OperationMessage(started.operation_id).to_json()
    for delivery in (1, 2):
        with pytest.raises(TransientServiceError):
            await stack.operations.handle(message, message_id="m", dequeue_count=delivery)

    outcome = await stack.operations.handle(message, message_id="m", dequeue_count=3)

    assert outcome.status == "failed"
    found = await stack.admin.operation(started.operation_id)
    assert found is not None
    assert (found["status"], found["error"]["code"]) == ("failed", "Unavailable")


async def test_unknown_and_malformed_operations() -> None:
    stack = Stack(World())
    assert await stack.admin.operation("0" * 32) is None
    for garbage in ("", "x" * 32, "0" * 31, "../../etc", "A" * 32):
        with pytest.raises(InvalidInputError):
            check_operation_id(garbage)
    outcome = await stack.operations.handle('{"kind": "operation", "v": 1, "operation": "x"}',
                                            message_id="m", dequeue_count=1)  # fmt: skip
    assert outcome.status == "dropped"
    gone = OperationMessage("f" * 32).to_json()
    assert (
        await stack.operations.handle(gone, message_id="m", dequeue_count=1)
    ).status == "dropped"


async def test_bad_input_records_nothing() -> None:
    stack = Stack(World())
    with pytest.raises(InvalidInputError):
        await stack.admin.start_retire(KEY_REF)  # no version
    with pytest.raises(InvalidInputError):
        await stack.admin.start_verdict("https://evil.vault.azure.net/keys/k")
    assert (stack.records.writes, stack.queue.sent) == (0, [])


def _memory_dek(world: World, index: int) -> Any:
    from tests.services.test_retire import _dek

    return _dek(world.source, 1000 + index, V1)


class FlakyCounts(MemoryDekStore):
    """Fails (transiently) on its ``fail_on_call``-th count, after reading the page: a
    worker that died mid-step (or, with ``always``, a store that is down)."""

    def __init__(self, *, fail_on_call: int, always: bool = False) -> None:
        super().__init__()
        self._fail_on, self._always = fail_on_call, always

    async def count_versions(self, key_ref: str, **page: Any) -> CountPage:
        counted = await super().count_versions(key_ref, **page)
        if self.count_calls == self._fail_on or (
            self._always and self.count_calls >= self._fail_on
        ):
            raise TransientServiceError("Storage: HTTP 503", status=503)
        return counted


class SlowCounts(MemoryDekStore):
    """Yields to the loop in every count, as a real store's request does (so concurrent
    deliveries interleave)."""

    async def count_versions(self, key_ref: str, **page: Any) -> CountPage:
        await asyncio.sleep(0)
        return await super().count_versions(key_ref, **page)
