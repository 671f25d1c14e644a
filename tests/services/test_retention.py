"""The retention timer's service over keyward's real state table on Azurite: it deletes
only what is expired, keeps each key's newest job per shard and every job that may run
again, stops at its cap and continues on the next run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables.aio import TableClient

from shared.adapters.audit_trail import TableAuditTrail
from shared.adapters.event_ledger import EventLedger
from shared.adapters.job_retention import TableJobRetention
from shared.adapters.operation_store import TableOperationRecords, TableOperationRetention
from shared.adapters.table_state import TableJobStore
from shared.composition import Caller
from shared.rewrap import JobState, JobStatus, expired_jobs, rewrap_job_id
from shared.services._operation import (
    Operation,
    OperationKind,
    OperationStatus,
    new_operation_id,
)
from shared.services._operation_store import OperationStore
from shared.services.audit import ACCEPTED, AuditEntry
from shared.services.retention import RetentionService

pytestmark = pytest.mark.azurite

SHARDS = ("table:deks", "blob:docs")
VAULT = "https://contoso-kv.vault.azure.net/keys"
#: Table ``Timestamp``s are the service's real clock, so the runs below look at the state
#: from 40 days ahead: everything written now is older than a 30-day retention by then.
REAL_NOW = datetime.now(UTC)
LATER = REAL_NOW + timedelta(days=40)
OLD = REAL_NOW - timedelta(days=1)  # a job's last update, long before LATER's cutoff
RECENT = LATER - timedelta(days=3)  # within the retention at LATER


def _job(key: str, version: str, shard: str, created: datetime, **changes: object) -> JobState:
    key_ref = f"{VAULT}/{key}"
    state = JobState(
        job_id=rewrap_job_id(key_ref, version, shard),
        key_ref=key_ref,
        scope=shard,
        target_version=version,
        target_key_id=f"{key_ref}/{version}",
        status=JobStatus.COMPLETED,
        created_at=created,
        updated_at=OLD,
        finished_at=OLD,
    )
    return state.evolve(**changes)


async def _put(table: TableClient, *states: JobState) -> None:
    for state in states:
        await TableJobStore(table, state.scope).put(state, expected_etag=None)


async def _job_ids(table: TableClient, shard: str) -> set[str]:
    return {state.job_id for state in await TableJobStore(table, shard).list_jobs()}


def _service(table: TableClient, **options: object) -> RetentionService:
    return RetentionService(
        ledger=EventLedger(table),
        jobs=TableJobRetention(table),
        operations=TableOperationRetention(table),
        shards=SHARDS,
        retention_days=30,
        **{"now": lambda: LATER, **options},  # type: ignore[arg-type]
    )


T = REAL_NOW - timedelta(days=200)


async def test_only_expired_jobs_go_and_each_keys_newest_stays(table: TableClient) -> None:
    shard, other = SHARDS
    a1, a2, a3 = (_job("a", f"{i}" * 32, shard, T + timedelta(days=i)) for i in (1, 2, 3))
    lone = _job("lone", "1" * 32, shard, T)  # one job, however old: the sweep needs it
    running = _job("b", "1" * 32, shard, T, status=JobStatus.RUNNING)
    asked = _job("b", "2" * 32, shard, T + timedelta(days=1), restart_requested=True)
    failed = _job("b", "3" * 32, shard, T + timedelta(days=2), status=JobStatus.FAILED)
    refused = _job("b", "6" * 32, shard, T - timedelta(days=1), status=JobStatus.FAILED)
    refused = refused.evolve(refused=True)
    fresh = _job("b", "4" * 32, shard, T + timedelta(days=3), updated_at=RECENT)
    b5 = _job("b", "5" * 32, shard, T + timedelta(days=4))
    # A failed newest job stays (the sweep reads it); an older one asked to restart too.
    d1 = _job("d", "1" * 32, shard, T)
    d2 = _job("d", "2" * 32, shard, T + timedelta(days=1), restart_requested=True)
    d2 = d2.evolve(status=JobStatus.FAILED)
    d3 = _job("d", "3" * 32, shard, T + timedelta(days=2), status=JobStatus.FAILED)
    # The same key in the other shard: its own newest job, kept there.
    a1_other = _job("a", "1" * 32, other, T + timedelta(days=1))
    a2_other = _job("a", "2" * 32, other, T + timedelta(days=2))
    # A late write to an older job does not make it the newest: creation decides.
    a1 = a1.evolve(updated_at=OLD + timedelta(hours=1))
    await _put(table, a1, a2, a3, lone, running, asked, failed, refused, fresh, b5, a1_other)
    await _put(table, a2_other, d1, d2, d3)

    report = await _service(table).run()

    # a1, a2, failed, refused, d1 (this shard); a1 (the other shard).
    assert report.jobs == 6
    assert await _job_ids(table, shard) == {
        a3.job_id,
        lone.job_id,
        running.job_id,
        asked.job_id,
        fresh.job_id,
        b5.job_id,
        d2.job_id,
        d3.job_id,
    }
    assert await _job_ids(table, other) == {a2_other.job_id}
    assert (await _service(table).run()).jobs == 0, "nothing more to delete"


async def test_a_run_stops_at_its_cap_and_the_next_continues(table: TableClient) -> None:
    ledger = EventLedger(table, now=lambda: REAL_NOW - timedelta(days=60))
    for index in range(5):
        await ledger.remember(f"e|{index}", event_type="e", event_id=str(index))
    jobs = [_job("c", f"{i}" * 32, SHARDS[0], T + timedelta(days=i)) for i in range(1, 6)]
    await _put(table, *jobs)

    first = await _service(table, max_deletes=4).run()
    assert (first.events, first.jobs, first.capped) == (4, 0, True)
    second = await _service(table, max_deletes=4).run()
    assert (second.events, second.jobs, second.capped) == (1, 3, True)
    third = await _service(table, max_deletes=4).run()
    assert (third.deleted, third.capped) == (1, False)
    assert await _job_ids(table, SHARDS[0]) == {jobs[-1].job_id}
    assert "events=0 rejections=0 jobs=1 operations=0 capped=False" in third.log_line()


async def test_recent_records_and_other_partitions_stay(table: TableClient) -> None:
    ledger = EventLedger(table, now=lambda: LATER - timedelta(days=29))
    await ledger.remember("e|kept", event_type="e", event_id="kept")
    others = [("retired:abc", "v1"), ("budget:kv.vault.azure.net", "m1"), ("flags:face", "f")]
    for partition, row in others:
        await table.create_entity({"PartitionKey": partition, "RowKey": row})
    report = await _service(table).run()
    assert report.deleted == 0
    assert await EventLedger(table, now=lambda: LATER - timedelta(days=29)).seen("e|kept")
    for partition, row in others:
        assert (await table.get_entity(partition, row))["RowKey"] == row


async def _operation(table: TableClient, status: OperationStatus) -> str:
    """An operation record in ``status``, written now (a real ``Timestamp``)."""
    operation = Operation(
        new_operation_id(), OperationKind.VERDICT, f"{VAULT}/k", None, SHARDS, REAL_NOW, REAL_NOW
    )
    store = OperationStore(TableOperationRecords(table))
    etag = await store.put(operation, expected_etag=None)
    if status is not OperationStatus.ACCEPTED:
        await store.put(operation.evolve(status=status), expected_etag=etag)
    return operation.operation_id


async def _operation_ids(table: TableClient) -> set[str]:
    query = "PartitionKey ge 'op:' and PartitionKey lt 'op;'"
    return {str(e["RowKey"]) async for e in table.query_entities(query, select=["RowKey"])}


async def test_finished_operations_go_and_accepted_or_running_ones_stay(
    table: TableClient,
) -> None:
    ids = {s: [await _operation(table, s) for _ in range(3)] for s in OperationStatus}
    unfinished = set(ids[OperationStatus.ACCEPTED] + ids[OperationStatus.RUNNING])

    # Within the retention (now, not 40 days ahead) nothing goes, finished or not.
    assert (await _service(table, now=lambda: REAL_NOW).run()).operations == 0
    # A run's cap is shared: 6 finished records past the cutoff, 4 deletes this run.
    first = await _service(table, max_deletes=4).run()
    assert (first.operations, first.capped) == (4, True)
    second = await _service(table, max_deletes=4).run()
    assert (second.operations, second.capped) == (2, False)
    assert "operations=2" in second.log_line()
    assert await _operation_ids(table) == unfinished
    assert (await _service(table).run()).operations == 0, "never an accepted or running one"
    # The kept records are whole: a running one can still be read and carried on.
    (running, *_) = ids[OperationStatus.RUNNING]
    stored = await OperationStore(TableOperationRecords(table)).get(running)
    assert stored is not None
    assert stored.operation.status is OperationStatus.RUNNING


async def test_operations_share_the_cap_with_the_ledger_and_jobs(table: TableClient) -> None:
    ledger = EventLedger(table, now=lambda: REAL_NOW - timedelta(days=60))
    for index in range(3):
        await ledger.remember(f"e|{index}", event_type="e", event_id=str(index))
    done = {await _operation(table, OperationStatus.SUCCEEDED) for _ in range(2)}

    first = await _service(table, max_deletes=4).run()
    assert (first.events, first.operations, first.capped) == (3, 1, True)
    second = await _service(table, max_deletes=4).run()
    assert (second.events, second.operations, second.capped) == (0, 1, False)
    assert done.isdisjoint(await _operation_ids(table))


async def test_an_operation_written_after_the_query_is_not_deleted(table: TableClient) -> None:
    """The deletes carry the ETag the query saw: a record changed in between stays."""
    records = TableOperationRecords(table)
    operation_id = await _operation(table, OperationStatus.FAILED)
    found = await records.get(operation_id)
    assert found is not None
    retention = TableOperationRetention(table)
    real_delete = table.submit_transaction

    async def write_first(actions: object, **kwargs: object) -> object:
        await records.put(operation_id, found[0], expected_etag=found[1])  # a late write
        table.submit_transaction = real_delete  # type: ignore[method-assign]
        return await real_delete(actions, **kwargs)  # type: ignore[arg-type]

    table.submit_transaction = write_first  # type: ignore[method-assign]
    assert await retention.expire_operations(LATER, {"failed"}, 10) == 0
    assert await _operation_ids(table) == {operation_id}


def test_the_rule_keeps_the_newest_whatever_the_spelling_of_the_key() -> None:
    shard = SHARDS[0]
    older = _job("k", "1" * 32, shard, T)
    newer = _job("k", "2" * 32, shard, T + timedelta(days=1))
    newer = newer.evolve(key_ref=newer.key_ref.upper())
    assert expired_jobs([older, newer], LATER) == [older]
    assert expired_jobs([newer], LATER) == []


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetentionService(ledger=None, jobs=None, operations=None, shards=(), retention_days=0)  # type: ignore[arg-type]


async def test_audit_rows_expire_by_whole_days_like_the_ledger(table: TableClient) -> None:
    trail = TableAuditTrail(table)
    caller = Caller("0a0b", "7f7f", "ada@contoso.example", ("Keyward.Operator",))
    for when in (LATER - timedelta(days=45), LATER - timedelta(days=31), RECENT):
        await trail.append(AuditEntry(when, "retire", caller, f"{VAULT}/k", ACCEPTED).to_dict())
    report = await _service(table, audit=trail).run()
    assert report.audit == 2
    assert "audit=2" in report.log_line()
    (kept,) = await trail.recent(10)
    assert kept["at"] == RECENT.isoformat()
