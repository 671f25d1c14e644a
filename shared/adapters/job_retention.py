"""Retention of old rewrap jobs in keyward's state table (partition ``job:{shard}``).

Which jobs may go is the domain's rule (``shared.rewrap.expired_jobs``: never a key's
newest job in the shard, never a running one or one asked to run again, only those not
updated within the retention; an older version's failed job may go). This adapter finds
them cheaply:

1. one projection query of the shard's partition (row key, key id, status, the Table's own
   ``Timestamp``: a few hundred bytes a job, never the state) tells which keys hold more
   than one job with an old one among them; a key with a single job keeps it, unread;
2. only those keys' jobs are read in full (point reads) and judged by the rule;
3. the expired ones are deleted in batches, each delete conditional on the ETag read in
   step 2, so a job written meanwhile (a restart asked, a late message) stays.

Its cost is O(jobs in the shard) tiny rows plus O(expired jobs) reads and deletes: jobs
are one per key, version and store (bounded by the retention itself), never one per DEK.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translated
from shared.adapters._table_expiry import RowRef, delete_rows
from shared.adapters.table_state import TableJobStore
from shared.rewrap import JobStatus, StoredJob, expired_jobs, fold_key, may_expire


class TableJobRetention:
    """Deletes one shard's expired jobs at a time, at most ``limit`` per call."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def expire_jobs(self, shard: str, updated_before: datetime, limit: int) -> int:
        """Delete at most ``limit`` of ``shard``'s expired jobs; returns how many went.

        Raises:
            ServiceError: the state table could not be read or written.
        """
        if limit <= 0:
            return 0
        jobs = TableJobStore(self._table, shard)
        refs: list[RowRef] = []
        for rows in await self._keys_to_judge(jobs.shard_partition, updated_before):
            stored: list[StoredJob] = []
            for row in rows:
                found = await jobs.get(row)
                if found is not None:
                    stored.append(found)
            etags = {item.state.job_id: item.etag for item in stored}
            for state in expired_jobs([item.state for item in stored], updated_before):
                refs.append(RowRef(jobs.shard_partition, state.job_id, etags[state.job_id]))
            if len(refs) >= limit:
                break  # the rest next run: what is read is about what is deleted
        return await delete_rows(self._table, refs[:limit], "expire rewrap jobs")

    async def _keys_to_judge(self, partition: str, updated_before: datetime) -> list[list[str]]:
        """Row keys of each key with more than one job, one of them not running and not
        updated since ``updated_before`` (by the Table's ``Timestamp``)."""
        by_key: dict[str, list[str]] = defaultdict(list)
        old: set[str] = set()
        with translated("list rewrap jobs"):
            pages = self._table.query_entities(
                "PartitionKey eq @pk",
                parameters={"pk": partition},
                select=["RowKey", "KeyRef", "Status", "Timestamp"],
                results_per_page=1000,
            )
            async for entity in pages:
                key = fold_key(str(entity.get("KeyRef", "")))
                by_key[key].append(str(entity["RowKey"]))
                if _may_expire(entity) and _timestamp(entity) < updated_before:
                    old.add(key)
        return [rows for key, rows in by_key.items() if key in old and len(rows) > 1]


def _may_expire(entity: Any) -> bool:
    try:
        return may_expire(JobStatus(str(entity.get("Status"))))
    except ValueError:
        return False


def _timestamp(entity: Any) -> datetime:
    """The Table's last-modified time of the row (unknown: never old)."""
    stamp = entity.metadata.get("timestamp")
    return stamp if isinstance(stamp, datetime) else datetime.max.replace(tzinfo=UTC)
