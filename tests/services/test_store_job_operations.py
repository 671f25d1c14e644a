"""A store's migration and KEK rotation as admin operations (issue 13), in process: the
records' in-memory ports (tests/records/memory.py), local RSA key versions, in-memory
operation records and a queue the tests deliver from, honouring each message's visibility
delay by moving the fake clock (no invocation sleeps through a writers' TTL)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest

from shared.crypto import VaultAllowList
from shared.errors import InvalidInputError
from shared.records import JobBusyError, RecordFormat, StoreMode, read_checkpoint
from shared.rewrap import InMemoryJobStore, InMemoryRetiredVersions, OperationMessage
from shared.services._error_answer import error_answer, error_status
from shared.services._operation_store import InMemoryOperationRecords
from shared.services._planner import RewrapPlanner
from shared.services._store_job_errors import StoreJobBlockedError
from shared.services._store_jobs import JobPorts, OldKek, StoreJobParts
from shared.services.admin import AdminService
from shared.stores import SqliteDekStore
from tests.records.memory import World, world
from tests.rewrap.fakes import KEY_REF
from tests.services.test_retire import Dependents, Ledger, Queue

STORE = "table:records"


class DelayQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[OperationMessage, int]] = []

    async def send_operation(self, message: OperationMessage, *, delay_seconds: int = 0) -> None:
        self.sent.append((message, delay_seconds))


@dataclass
class Rig:
    w: World
    admin: AdminService
    records: InMemoryOperationRecords
    queue: DelayQueue
    age_queries: list[datetime]
    delayed: float = 0.0

    async def deliver_all(self, *, steps_per_slice: int | None = None) -> tuple[dict, int]:
        """Deliver until the queue is empty; the last status and how many slices ran."""
        found, slices = None, 0
        while self.queue.sent:
            message, delay = self.queue.sent.pop(0)
            self.w.time.advance(delay)  # the message becomes visible after its delay
            self.delayed += delay
            op = await self.admin.operations.run_slice(
                message.operation_id, max_steps=steps_per_slice
            )
            slices += 1
            assert op is not None
            if not op.status.finished:
                wait = int(op.data.get("wait_seconds") or 0)
                self.queue.sent.append((message.next_slice(), wait))
            found = await self.admin.operation(message.operation_id)
        assert found is not None
        return found, slices


def rig(*, page_size: int = 7) -> Rig:
    w = world()
    ages: list[datetime] = []

    async def kek_older_than(cutoff: datetime) -> OldKek | None:
        ages.append(cutoff)
        for (partition, version), row in sorted(w.keks.rows.items()):
            if row.created_at < cutoff:
                return OldKek(partition, version, row.key_id.rsplit("/", 1)[0])
        return None

    parts = StoreJobParts(
        ports={STORE: JobPorts(w.records, w.keks, w.modes, kek_older_than)},
        vault=w.vault, page_size=page_size,
    )  # fmt: skip
    records, queue = InMemoryOperationRecords(), DelayQueue()
    admin = AdminService(
        allow_list=VaultAllowList.parse("contoso-kv"), stores={"sqlite:x": SqliteDekStore()},
        job_store=lambda shard: InMemoryJobStore(), keys=w.source,
        planner=RewrapPlanner(w.source, Queue(), ["sqlite:x"]), ledger=Ledger(),  # type: ignore[arg-type]
        dependents=Dependents({}), retired=InMemoryRetiredVersions(),  # type: ignore[arg-type]
        now=w.time.now, operation_records=records, operation_queue=queue, store_jobs=parts,
    )  # fmt: skip
    return Rig(w, admin, records, queue, ages)


async def test_a_migration_runs_in_slices_waiting_by_queue_delays_and_reports_progress() -> None:
    r = rig()
    await r.w.seed(40)
    started = await r.admin.start_migrate(KEY_REF, store=STORE, to="hierarchy")
    assert r.w.modes.row is not None
    assert r.w.modes.row.mode is StoreMode.TO_HIERARCHY  # claimed in the request

    status, slices = await r.deliver_all()
    assert status["status"] == "succeeded", status
    assert status["kind"] == "migrate"
    assert status["progress"]["store"] == STORE
    assert status["result"]["mode"] == "hierarchy"
    job = status["result"]["job"]
    assert (job["kind"], job["direction"], job["phase"]) == ("migrate", "hierarchy", "done")
    assert job["rows_converted"] == 40
    assert job["blocked_rows"] == 0
    assert slices >= 2  # the mode TTL (30 s) was one queue delay, then the pages
    # Nothing slept: the clock moved only by the messages' delays (the 30 s mode TTL).
    assert r.w.time.slept == r.delayed >= 30
    assert r.w.formats() == {RecordFormat.HIERARCHY}
    r.w.check_all_open()
    assert started.operation_id == status["operation_id"]


async def test_every_delay_keeps_the_lease_alive_and_the_slices_resume_the_same_job() -> None:
    r = rig()
    await r.w.seed(10)
    await r.admin.start_migrate(KEY_REF, store=STORE, to="hierarchy")
    delays: list[int] = []
    owners: set[str] = set()
    while r.queue.sent:
        message, delay = r.queue.sent.pop(0)
        delays.append(delay)
        r.w.time.advance(delay)
        op = await r.admin.operations.run_slice(message.operation_id)
        assert op is not None
        checkpoint = read_checkpoint(r.w.modes.row.migration if r.w.modes.row else None)
        assert checkpoint is not None
        owners.add(checkpoint.owner)
        if not op.status.finished:
            r.queue.sent.append((message.next_slice(), int(op.data["wait_seconds"])))
    assert max(delays) <= 20  # a third of the 60 s lease
    assert any(delays)
    assert owners == {f"operation:{op.operation_id}"}


async def test_a_second_start_while_one_runs_is_refused_and_changes_nothing() -> None:
    r = rig()
    await r.w.seed(10)
    await r.admin.start_migrate(KEY_REF, store=STORE, to="hierarchy")
    row, writes, sent = r.w.modes.row, r.records.writes, list(r.queue.sent)

    for start in (
        lambda: r.admin.start_migrate(KEY_REF, store=STORE, to="hierarchy"),
        lambda: r.admin.start_migrate(KEY_REF, store=STORE, to="direct"),
        lambda: r.admin.start_rotate_keks(KEY_REF, store=STORE),
    ):
        with pytest.raises(JobBusyError) as refused:
            await start()
        assert error_status(refused.value) == (409, "StoreJobBusy")
    assert r.w.modes.row == row
    assert (r.records.writes, r.queue.sent) == (writes, sent)

    # The lease lapses while the next slice waits in the queue: the operation still runs,
    # so a start is still refused.
    r.w.time.advance(600)
    with pytest.raises(JobBusyError):
        await r.admin.start_migrate(KEY_REF, store=STORE, to="hierarchy")
    assert r.w.modes.row == row


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"to": "sideways"}, "'to'"),
        ({"to": "hierarchy", "store": "table:other"}, "holds no application records"),
    ],
)
async def test_bad_input_is_refused_before_anything_is_written(
    call: dict[str, str], message: str
) -> None:
    r = rig()
    with pytest.raises(InvalidInputError, match=message):
        await r.admin.start_migrate(KEY_REF, store=call.get("store", STORE), to=call["to"])
    for bad in ({"partition": "~keyward"}, {"partition": ""}, {"older_than_days": -1.0}):
        with pytest.raises(InvalidInputError):
            await r.admin.start_rotate_keks(KEY_REF, store=STORE, **bad)  # type: ignore[arg-type]
    assert r.w.modes.row is None
    assert r.records.writes == 0
    assert r.queue.sent == []


async def test_a_blocked_migration_fails_its_operation_naming_the_rows() -> None:
    r = rig()
    await r.w.seed(5, partitions=1)
    key = ("t0", "r002")
    good = r.w.records.rows[key]
    r.w.records.rows[key] = replace(good, kcv="00" * 8)
    await r.admin.start_migrate(KEY_REF, store=STORE, to="hierarchy")
    status, _ = await r.deliver_all()
    assert status["status"] == "failed"
    assert status["error"]["code"] == "StoreJobBlocked"
    assert status["error"]["problem_refs"] == ["t0/r002"]
    assert status["progress"]["job"]["phase"] == "blocked"
    assert status["progress"]["job"]["blocked_rows"] >= 1
    assert error_answer(StoreJobBlockedError("x", ("a/b",)))[0] == 409
    # Blocked is finished: a new start resumes it (a fresh pass), as the CLI would.
    r.w.records.rows[key] = replace(r.w.records.rows[key], kcv=good.kcv)
    await r.admin.start_migrate(KEY_REF, store=STORE, to="hierarchy")
    again, _ = await r.deliver_all()
    assert again["status"] == "succeeded", again
    assert r.w.formats() == {RecordFormat.HIERARCHY}
    r.w.check_all_open()


async def test_the_crypto_period_rule_starts_one_rotation_of_due_keks_only() -> None:
    r = rig()
    await r.w.seed(12, partitions=3)
    assert await r.admin.start_due_kek_rotations(90) == []  # direct: not even a KEK query
    assert r.age_queries == []
    await r.admin.start_migrate(KEY_REF, store=STORE, to="hierarchy")
    await r.deliver_all()
    before = dict(r.w.keks.rows)

    assert await r.admin.start_due_kek_rotations(0) == []  # off
    assert await r.admin.start_due_kek_rotations(90) == []  # young KEKs
    assert len(r.age_queries) == 1  # one query per store and run

    r.w.time.advance(91 * 86_400)
    started = await r.admin.start_due_kek_rotations(90)
    assert len(started) == 1
    assert started[0].data["older_than_days"] == 90.0
    assert await r.admin.start_due_kek_rotations(90) == []  # one runs: never a second
    assert len(r.age_queries) == 2  # the running job was seen in the mode row: no query

    status, _ = await r.deliver_all()
    assert status["status"] == "succeeded", status
    assert status["kind"] == "rotate_keks"
    assert status["result"]["job"]["keks_created"] == 3
    assert status["result"]["job"]["keks_deleted"] == 3
    assert not set(before) & set(r.w.keks.rows)  # every partition has a new KEK only
    r.w.check_all_open()
    assert await r.admin.start_due_kek_rotations(90) == []  # the new KEKs are young
    assert r.age_queries[-1] == r.w.time.now() - timedelta(days=90)


async def test_a_duplicate_delivery_that_loses_the_mode_row_stops_without_recording() -> None:
    """Two deliveries of one message run the same job (one owner): the one whose checkpoint
    write loses records nothing on the operation and sends nothing; the other carries on."""
    r = rig()
    await r.w.seed(10)
    started = await r.admin.start_migrate(KEY_REF, store=STORE, to="hierarchy")
    r.w.time.advance(60)  # the mode TTL is over
    writes = r.records.writes
    seen: list[str] = []

    def other_delivery_writes_first(point: str) -> None:
        if point != "mode.before_write":
            return
        seen.append(point)
        if len(seen) == 2 and r.w.modes.row is not None:  # the step after the claim
            r.w.modes.row = replace(r.w.modes.row, etag="written-by-the-other-delivery")

    r.w.modes.probe = other_delivery_writes_first
    r.queue.sent = []
    outcome = await r.admin.operations.handle(
        OperationMessage(started.operation_id).to_json(), message_id="m", dequeue_count=1
    )
    assert outcome.status == "dropped"
    assert r.queue.sent == []  # no second chain of messages
    assert r.records.writes == writes + 1  # the claim's step only; the lost one recorded nothing
    status = await r.admin.operation(started.operation_id)
    assert status is not None
    assert (status["status"], status["error"]) == ("running", None)

    r.w.modes.probe = lambda point: None
    r.queue.sent = [(OperationMessage(started.operation_id), 0)]  # the other one's message
    done, _ = await r.deliver_all()
    assert done["status"] == "succeeded", done
    r.w.check_all_open()
