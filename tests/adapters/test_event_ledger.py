"""The event ledger's dated partitions against Azurite: dedup across midnight, rejections
newest first and bounded, legacy rows honoured, expiry by whole old days in batches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from azure.data.tables.aio import TableClient

from shared.adapters._table_expiry import RowRef, delete_rows
from shared.adapters.event_ledger import EventLedger, handled_partition, rejected_partition
from shared.errors import EventRejectedError
from shared.events import rejected_event_record
from shared.events._types import RejectionReason

pytestmark = pytest.mark.azurite

DAY = date(2026, 12, 6)


def at(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _rows(table: TableClient) -> list[tuple[str, str]]:
    found = []
    async for entity in table.list_entities(select=["PartitionKey", "RowKey"]):
        found.append((str(entity["PartitionKey"]), str(entity["RowKey"])))
    return sorted(found)


async def test_an_event_handled_at_2359_is_a_duplicate_when_redelivered_at_0001(
    table: TableClient,
) -> None:
    clock = Clock(at(DAY, 23, 59))
    ledger = EventLedger(table, now=clock)
    assert not await ledger.seen("rotated|e1")
    assert await ledger.remember("rotated|e1", event_type="rotated", event_id="e1")
    assert [pk for pk, _ in await _rows(table)] == [handled_partition(DAY)]

    clock.now = at(DAY + timedelta(days=1), 0, 1)
    assert await ledger.seen("rotated|e1"), "found in yesterday's partition"
    # The 24-hour redelivery window at its far end: still found.
    clock.now = at(DAY, 23, 59) + timedelta(hours=24)
    assert await ledger.seen("rotated|e1")
    clock.now = at(DAY, 0, 0, 1)
    await ledger.remember("rotated|e2", event_type="rotated", event_id="e2")
    clock.now = at(DAY, 0, 0, 1) + timedelta(hours=24)
    assert await ledger.seen("rotated|e2")
    # Another event, never handled, is not seen on either day.
    assert not await ledger.seen("rotated|e3")


async def test_remember_twice_the_same_day_is_a_duplicate(table: TableClient) -> None:
    ledger = EventLedger(table, now=Clock(at(DAY, 12, 0)))
    assert await ledger.remember("k|1", event_type="k", event_id="1")
    assert not await ledger.remember("k|1", event_type="k", event_id="1")


async def test_legacy_rows_are_honoured(table: TableClient) -> None:
    """Rows written before the dated layout (one ``event``, one ``rejected`` partition)."""
    ledger = EventLedger(table, now=Clock(at(DAY, 12, 0)))
    await table.create_entity({
        "PartitionKey": "event",
        "RowKey": EventLedger._row("old|1"),
        "HandledAt": at(DAY, 1, 0).isoformat(),
    })  # fmt: skip
    assert await ledger.seen("old|1")
    await table.create_entity({
        "PartitionKey": "rejected",
        "RowKey": "00000000000000000001-legacy",
        "Reason": "legacy",
        "ReceivedAt": at(DAY - timedelta(days=3), 1, 0).isoformat(),
    })  # fmt: skip
    await ledger.reject(_rejection("new", at(DAY, 11, 0)))
    assert [r["reason"] for r in await ledger.recent_rejections()] == [
        RejectionReason.MISSING_FIELD.value,
        "legacy",
    ]


def _rejection(event_id: str, when: datetime) -> object:
    error = EventRejectedError(RejectionReason.MISSING_FIELD, "bad", event_id=event_id)
    return rejected_event_record({"id": event_id}, error, when)


async def test_recent_rejections_are_newest_first_across_days_and_bounded(
    table: TableClient,
) -> None:
    ledger = EventLedger(table)
    times = [at(DAY - timedelta(days=d), h, 0) for d in (0, 1, 9) for h in (3, 20)]
    for index, when in enumerate(times):
        await ledger.reject(_rejection(f"e{index}", when))  # type: ignore[arg-type]
    newest = await ledger.recent_rejections(limit=3)
    assert [r["event_id"] for r in newest] == ["e1", "e0", "e3"]
    every = await ledger.recent_rejections(limit=50)
    assert [r["received_at"] for r in every] == [t.isoformat() for t in sorted(times, reverse=True)]
    assert rejected_partition(DAY) < rejected_partition(DAY - timedelta(days=1))


async def test_expiry_deletes_whole_old_days_only_bounded_and_continues(
    table: TableClient,
) -> None:
    clock = Clock(at(DAY, 0, 0))
    ledger = EventLedger(table, now=clock)
    for offset in (40, 31, 30, 29, 0):  # days ago
        clock.now = at(DAY - timedelta(days=offset), 12, 0)
        for index in range(3):
            await ledger.remember(f"e|{offset}-{index}", event_type="e", event_id="x")
        await ledger.reject(_rejection(f"r{offset}", clock.now))  # type: ignore[arg-type]
    for row, days_ago in (("old", 45), ("new", 2)):
        handled = at(DAY - timedelta(days=days_ago), 1, 0).isoformat()
        await table.create_entity({"PartitionKey": "event", "RowKey": row, "HandledAt": handled})
    before = DAY - timedelta(days=30)  # keep 30 days: days 40 and 31 ago go

    assert await ledger.expire_handled(before, limit=4) == 4, "bounded"
    assert await ledger.expire_handled(before, limit=100) == 3, "continues, legacy row too"
    assert await ledger.expire_handled(before, limit=100) == 0
    assert await ledger.expire_rejections(before, limit=1) == 1
    assert await ledger.expire_rejections(before, limit=100) == 1
    assert await ledger.expire_rejections(before, limit=100) == 0

    kept = await _rows(table)
    handled_days = sorted({pk for pk, _ in kept if pk.startswith("ledger:")})
    assert handled_days == [handled_partition(DAY - timedelta(days=d)) for d in (30, 29, 0)]
    assert ("event", "new") in kept
    assert ("event", "old") not in kept
    clock.now = at(DAY, 12, 0)
    reasons = [r["event_id"] for r in await ledger.recent_rejections()]
    assert reasons == ["r0", "r29", "r30"]


async def test_batch_deletes_span_more_than_one_transaction(table: TableClient) -> None:
    """150 rows of one partition: two transactions of at most 100; a row that changed
    since it was read (stale ETag) stays."""
    partition = handled_partition(DAY)
    etags = {}
    for index in range(150):
        result = await table.create_entity({"PartitionKey": partition, "RowKey": f"r{index:03d}"})
        etags[f"r{index:03d}"] = str(result["etag"])
    await table.upsert_entity({"PartitionKey": partition, "RowKey": "r007", "Changed": True})
    refs = [RowRef(partition, row, etag) for row, etag in etags.items()]
    assert await delete_rows(table, refs, "test") == 149
    assert await _rows(table) == [(partition, "r007")]
