"""keyward's event ledger in its state table: handled events and rejected deliveries, in
dated partitions so retention drops whole old days (``KEYWARD_RETENTION_DAYS``).

==========================================  =======================  =====================
PartitionKey                                RowKey                   what
==========================================  =======================  =====================
``ledger:{YYYY-MM-DD}``                     sha256(dedup key)        a handled event, by
                                                                     the UTC day it was
                                                                     first handled
``rejected:{99999999 - YYYYMMDD}:{date}``   inverted time + digest   a rejected delivery
``event`` (legacy, before issue 12)         sha256(dedup key)        read, then expired
``rejected`` (legacy, before issue 12)      inverted time + digest   listed, then expired
==========================================  =======================  =====================

**Dedup across days.** Event Grid redelivers an event for up to 24 hours after it was
published, so a redelivery arrives at most 24 hours after the first delivery was handled:
on the day that delivery was remembered or on the next. :meth:`EventLedger.seen` reads the
row in today's and yesterday's partitions (and the legacy one): three point reads, at once.
An event first handled at 23:59 and redelivered at 00:01 is found in yesterday's partition.

**Newest first.** A rejection's partition leads with the inverted day, so one key-range
query lists the newest day's rows first, each day newest first (the inverted time in the
RowKey): ``recent_rejections(limit)`` reads at most ``limit`` rows whatever the history.

**Legacy rows** (one ``event`` and one ``rejected`` partition, written before the dated
layout) are honoured, not migrated: ``seen`` still finds a legacy row, ``recent_rejections``
lists legacy rows after the dated ones, and retention deletes legacy rows older than the
retention like any other (by ``HandledAt``; by RowKey range for rejections). Once the
retention has passed after an upgrade the legacy partitions are empty, and the legacy read
in ``seen`` (one 404) can go in a later release.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translated
from shared.adapters._table_expiry import delete_rows, row_keys
from shared.events import RejectedEventRecord

_HANDLED = "ledger:"
_REJECTED = "rejected:"
_LEGACY_HANDLED = "event"
_LEGACY_REJECTED = "rejected"
#: The character after ``:``: ``prefix + ";"`` bounds a key range of ``prefix:...`` keys.
_AFTER_COLON = ";"
_MAX_TICKS = 10**19
_MAX_DAY_NUMBER = 99_999_999


def _utc_now() -> datetime:
    return datetime.now(UTC)


def handled_partition(day: date) -> str:
    return f"{_HANDLED}{day.isoformat()}"


def rejected_partition(day: date) -> str:
    """Newest day first in key order: the inverted ``YYYYMMDD``, then the date to read."""
    return f"{_REJECTED}{_inverted_day(day):08d}:{day.isoformat()}"


def _inverted_day(day: date) -> int:
    return _MAX_DAY_NUMBER - int(day.strftime("%Y%m%d"))


def _inverted_ticks(moment: datetime) -> str:
    return f"{_MAX_TICKS - int(moment.timestamp() * 1_000_000):020d}"


class EventLedger:
    """Remembers handled events (at-least-once delivery) and keeps rejected ones."""

    def __init__(self, table: TableClient, *, now: Callable[[], datetime] = _utc_now) -> None:
        self._table = table
        self._now = now

    @staticmethod
    def _row(dedup_key: str) -> str:
        return hashlib.sha256(dedup_key.encode("utf-8")).hexdigest()

    async def seen(self, dedup_key: str) -> bool:
        """Whether the event was handled: today's, yesterday's or the legacy partition."""
        today = self._now().astimezone(UTC).date()
        partitions = (
            handled_partition(today),
            handled_partition(today - timedelta(days=1)),
            _LEGACY_HANDLED,
        )
        row = self._row(dedup_key)
        found = await asyncio.gather(*(self._exists(partition, row) for partition in partitions))
        return any(found)

    async def _exists(self, partition: str, row: str) -> bool:
        with translated("read event ledger"):
            try:
                await self._table.get_entity(partition, row, select=["RowKey"])
            except ResourceNotFoundError:
                return False
        return True

    async def remember(self, dedup_key: str, *, event_type: str, event_id: str) -> bool:
        """Record a handled event in today's partition; ``False`` if it was recorded there
        already (a duplicate)."""
        now = self._now().astimezone(UTC)
        entity = {
            "PartitionKey": handled_partition(now.date()),
            "RowKey": self._row(dedup_key),
            "EventType": event_type[:256],
            "EventId": event_id[:256],
            "HandledAt": now.isoformat(),
        }
        with translated("write event ledger"):
            try:
                await self._table.create_entity(entity)
            except ResourceExistsError:
                return False
        return True

    async def reject(self, record: RejectedEventRecord) -> None:
        """Keep a rejected delivery in its day's partition, newest first."""
        received = record.received_at.astimezone(UTC)
        entity = {
            "PartitionKey": rejected_partition(received.date()),
            "RowKey": f"{_inverted_ticks(received)}-{record.payload_sha256[:16]}",
            "Reason": record.reason,
            "Detail": record.detail[:4000],
            "EventId": record.event_id or "",
            "ReceivedAt": record.received_at.isoformat(),
            "Payload": record.payload,
            "PayloadTruncated": record.payload_truncated,
            "PayloadSha256": record.payload_sha256,
        }
        with translated("record rejected event"):
            await self._table.upsert_entity(entity)

    async def recent_rejections(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest rejected deliveries (without payloads, for status pages): at most
        ``limit`` rows read, dated partitions first, then the legacy one."""
        found: list[dict[str, Any]] = []
        for query, parameters in (
            ("PartitionKey ge @lo and PartitionKey lt @hi", _prefix_range(_REJECTED)),
            ("PartitionKey eq @pk", {"pk": _LEGACY_REJECTED}),
        ):
            if len(found) >= limit:
                break
            await self._list_rejections(query, parameters, limit, found)
        return found

    async def _list_rejections(
        self, query: str, parameters: dict[str, Any], limit: int, found: list[dict[str, Any]]
    ) -> None:
        with translated("list rejected events"):
            pages = self._table.query_entities(
                query,
                parameters=parameters,
                select=["Reason", "Detail", "EventId", "ReceivedAt"],
                results_per_page=limit,
            )
            async for entity in pages:
                found.append({
                    "reason": entity.get("Reason"),
                    "detail": entity.get("Detail"),
                    "event_id": entity.get("EventId") or None,
                    "received_at": entity.get("ReceivedAt"),
                })  # fmt: skip
                if len(found) >= limit:
                    break

    async def expire_handled(self, before: date, limit: int) -> int:
        """Delete up to ``limit`` handled-event rows of days before ``before`` (whole dated
        partitions, then legacy rows handled before it); returns how many went."""
        rows = await row_keys(
            self._table,
            "PartitionKey ge @lo and PartitionKey lt @hi",
            {"lo": _HANDLED, "hi": handled_partition(before)},
            limit,
            "list expired events",
        )
        cutoff = datetime.combine(before, datetime.min.time(), UTC).isoformat()
        rows += await row_keys(
            self._table,
            "PartitionKey eq @pk and HandledAt lt @cutoff",
            {"pk": _LEGACY_HANDLED, "cutoff": cutoff},
            limit - len(rows),
            "list expired events",
        )
        return await delete_rows(self._table, rows, "expire handled events")

    async def expire_rejections(self, before: date, limit: int) -> int:
        """Delete up to ``limit`` rejected-delivery rows of days before ``before`` (whole
        dated partitions, then legacy rows received before it); returns how many went."""
        rows = await row_keys(
            self._table,
            "PartitionKey gt @lo and PartitionKey lt @hi",
            # Older days have larger inverted numbers: after ``before``'s own partition.
            {"lo": rejected_partition(before), "hi": _REJECTED[:-1] + _AFTER_COLON},
            limit,
            "list expired rejections",
        )
        start = datetime.combine(before, datetime.min.time(), UTC)
        rows += await row_keys(
            self._table,
            "PartitionKey eq @pk and RowKey gt @row",
            {"pk": _LEGACY_REJECTED, "row": _inverted_ticks(start)},
            limit - len(rows),
            "list expired rejections",
        )
        return await delete_rows(self._table, rows, "expire rejected events")


def _prefix_range(prefix: str) -> dict[str, Any]:
    """``lo``/``hi`` bounds of every key starting with ``prefix`` (which ends in ``:``)."""
    return {"lo": prefix, "hi": prefix[:-1] + _AFTER_COLON}
