"""Deleting expired rows of keyward's state table: found by key range, deleted in batches.

Retention must cost O(expired rows). Rows are found by PartitionKey/RowKey range queries
that project only the keys (the table's own index: no scan of the rows that stay), and
deleted with entity group transactions: up to 100 deletes of one partition per request,
the Table service's limit. A delete may carry the row's ETag (a job read before deciding);
if any delete of a batch fails (the row changed, or is gone already), the batch changes
nothing and its rows are deleted one by one, skipping the ones that changed or went.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError
from azure.data.tables import TableTransactionError
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translate, translated

#: The Table service's limit of operations in one entity group transaction.
MAX_BATCH = 100
#: Rows one query page returns at most (the service's page size).
_MAX_PAGE = 1000
#: A single delete answered with these skipped the row: gone already, or changed since read.
_CHANGED_OR_GONE = (404, 409, 412)


@dataclass(frozen=True)
class RowRef:
    """A row to delete; ``etag``: delete it only if it is unchanged since it was read."""

    partition: str
    row: str
    etag: str | None = None


async def row_keys(
    table: TableClient, query: str, parameters: Mapping[str, Any], limit: int, operation: str
) -> list[RowRef]:
    """The keys of at most ``limit`` rows matching ``query`` (a key-range filter)."""
    found: list[RowRef] = []
    if limit <= 0:
        return found
    with translated(operation):
        pages = table.query_entities(
            query,
            parameters=dict(parameters),
            select=["PartitionKey", "RowKey"],
            results_per_page=min(limit, _MAX_PAGE),
        )
        async for entity in pages:
            found.append(RowRef(str(entity["PartitionKey"]), str(entity["RowKey"])))
            if len(found) >= limit:
                break
    return found


async def delete_rows(table: TableClient, rows: Sequence[RowRef], operation: str) -> int:
    """Delete ``rows`` (batched per partition); returns how many were deleted.

    Raises:
        ServiceError: the table could not be reached (translated).
    """
    deleted = 0
    ordered = sorted(rows, key=lambda ref: ref.partition)
    for _, group in groupby(ordered, key=lambda ref: ref.partition):
        members = list(group)
        for start in range(0, len(members), MAX_BATCH):
            chunk = members[start : start + MAX_BATCH]
            deleted += await _delete_batch(table, chunk, operation)
    return deleted


def _conditions(ref: RowRef) -> dict[str, Any]:
    if ref.etag is None:
        return {}
    return {"etag": ref.etag, "match_condition": MatchConditions.IfNotModified}


async def _delete_batch(table: TableClient, chunk: Sequence[RowRef], operation: str) -> int:
    actions: list[Any] = [
        ("delete", {"PartitionKey": ref.partition, "RowKey": ref.row}, _conditions(ref))
        for ref in chunk
    ]
    try:
        await table.submit_transaction(actions)
        return len(chunk)
    except TableTransactionError:
        pass  # one row changed or went: the batch did nothing; go one by one
    except AzureError as error:
        raise translate(error, operation) from None
    deleted = 0
    for ref in chunk:
        try:
            await table.delete_entity(ref.partition, ref.row, **_conditions(ref))
        except HttpResponseError as error:
            if error.status_code in _CHANGED_OR_GONE:
                continue
            raise translate(error, operation) from None
        except AzureError as error:
            raise translate(error, operation) from None
        deleted += 1
    return deleted
