"""Admin operation records in keyward's state table, ETag-conditional.

One entity per operation: PartitionKey ``op:{first two hex digits of the id}`` (ids are
random, so 256 partitions share the load and a lookup by id is one point read: a partition
per month would need the month in the id, or a query across months to find it), RowKey the
id, the record as JSON (chunked like a job's: a verdict's counts can pass one property's
64 KiB). Writes are ``create_entity`` (new) or ``update_entity(IfNotModified)`` (each step),
so two deliveries of one operation can never both save a step.

Retention (:class:`TableOperationRetention`) deletes finished records once their last
update (the Table's own ``Timestamp``) is older than ``KEYWARD_RETENTION_DAYS``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translated
from shared.adapters._table_expiry import RowRef, delete_rows
from shared.adapters.table_state import _chunks, _unchunk
from shared.errors import ConflictError


def operation_partition(operation_id: str) -> str:
    """The partition of an operation's record (from its random id)."""
    return f"op:{operation_id[:2]}"


class TableOperationRecords:
    """Operation records (``shared.services`` ``OperationRecords``) in the state table; the
    table client is shared and closed by its owner."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def get(self, operation_id: str) -> tuple[dict[str, Any], str] | None:
        with translated("read operation"):
            try:
                entity = await self._table.get_entity(
                    operation_partition(operation_id), operation_id
                )
            except ResourceNotFoundError:
                return None
        return json.loads(_unchunk(dict(entity))), str(entity.metadata["etag"])

    async def put(
        self, operation_id: str, record: Mapping[str, Any], *, expected_etag: str | None
    ) -> str:
        """Create (``expected_etag=None``) or compare-and-set the record.

        Raises:
            ConflictError: it exists already, or changed since it was read.
        """
        text = json.dumps(dict(record), sort_keys=True, separators=(",", ":"))
        chunks = _chunks(text)
        entity: dict[str, Any] = {
            "PartitionKey": operation_partition(operation_id),
            "RowKey": operation_id,
            "Kind": str(record.get("kind") or ""),
            "Status": str(record.get("status") or ""),
            "StateChunks": len(chunks),
            **chunks,
        }
        with translated("write operation"):
            if expected_etag is None:
                try:
                    result = await self._table.create_entity(entity)
                except ResourceExistsError:
                    raise ConflictError("operation exists already", status=409) from None
            else:
                result = await self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=expected_etag,
                    match_condition=MatchConditions.IfNotModified,
                )
        return str(result["etag"])


#: The operation partitions, ``op:00`` to ``op:ff``, as one key range (``;`` follows ``:``).
_OPERATION_RANGE = "PartitionKey ge 'op:' and PartitionKey lt 'op;'"
_PAGE = 1000


class TableOperationRetention:
    """Deletes finished operation records not updated within the retention, at most
    ``limit`` a call. One filtered query over the 256 ``op:`` partitions (the server
    filters on ``Status`` and ``Timestamp``; only keys and ETags come back), then batched
    deletes, each conditional on the ETag the query saw: a record written meanwhile stays.
    Its cost is O(operation records), which the retention itself bounds; never O(DEKs)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def expire_operations(
        self, updated_before: datetime, finished: Collection[str], limit: int
    ) -> int:
        """Delete at most ``limit`` records whose ``Status`` is one of ``finished`` and
        whose last update is before ``updated_before``; returns how many went.

        Raises:
            ServiceError: the state table could not be read or written.
        """
        if limit <= 0 or not finished:
            return 0
        statuses = " or ".join(f"Status eq @s{i}" for i in range(len(finished)))
        parameters: dict[str, Any] = {f"s{i}": s for i, s in enumerate(sorted(finished))}
        parameters["before"] = updated_before
        # the SDK substitutes parameters between spaces: none may touch a parenthesis
        query = f"{_OPERATION_RANGE} and Timestamp lt @before and ( {statuses} )"
        refs: list[RowRef] = []
        with translated("list expired operations"):
            pages = self._table.query_entities(
                query,
                parameters=parameters,
                select=["PartitionKey", "RowKey"],
                results_per_page=min(limit, _PAGE),
            )
            async for entity in pages:
                etag = str(entity.metadata["etag"])
                refs.append(RowRef(str(entity["PartitionKey"]), str(entity["RowKey"]), etag))
                if len(refs) >= limit:
                    break
        return await delete_rows(self._table, refs, "expire operations")
