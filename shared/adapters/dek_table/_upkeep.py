"""Table store upkeep outside the rewrap path: inserting new DEKs, forgetting previous wraps.

Both write through ``_batch`` (lean transactions of up to 100 entities per partition).
Forgetting happens when an operator retires a key version: until then each rewrapped DEK
keeps the wrap it replaced, and the retirement report counts those as blockers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import from_status, is_item_fault, translated
from shared.adapters.dek_table._batch import BatchAnswer, BatchOperation, send_changeset
from shared.adapters.dek_table._entity import new_entity, now
from shared.adapters.dek_table._query import query_page, spellings_filter
from shared.errors import InvalidInputError
from shared.stores._common import fold_key_ref, split_key_id
from shared.stores._model import NewDek

#: Azure Tables accepts at most 100 operations in one entity group transaction.
MAX_TRANSACTION_OPERATIONS = 100
#: A transaction's body may not exceed 4 MiB; keep a margin for multipart framing.
MAX_TRANSACTION_BYTES = 3 * 1024 * 1024
#: Generous serialized size of one entity's wrap fields, names and framing.
ENTITY_OVERHEAD_BYTES = 2 * 1024
_FORGOTTEN = {"PrevKeyId": "", "PrevAlgorithm": "", "PrevWrappedKey": "", "PrevKcv": ""}


def _raise_for(answer: BatchAnswer, operation: str) -> None:
    failure = answer.failure
    raise from_status(operation, failure.status, failure.error_code, answer.retry_after)


async def insert_deks(table: TableClient, gate: asyncio.Semaphore, deks: Sequence[NewDek]) -> None:
    """Insert with create transactions, grouped by partition and bounded in count and bytes.

    Raises:
        InvalidInputError: a key id is not versioned, or a partition/id is unusable.
        ConflictError: a DEK with the same partition and id exists (its chunk is not written).
    """
    chunks: list[list[NewDek]] = []
    open_chunks: dict[str, tuple[list[NewDek], int]] = {}
    for dek in deks:
        size = len(dek.sealed or b"") * 4 // 3 + ENTITY_OVERHEAD_BYTES  # base64 on the wire
        chunk, used = open_chunks.get(dek.partition, ([], 0))
        if len(chunk) == MAX_TRANSACTION_OPERATIONS or used + size > MAX_TRANSACTION_BYTES:
            chunk, used = [], 0
        if not chunk:
            chunks.append(chunk)
        chunk.append(dek)
        open_chunks[dek.partition] = (chunk, used + size)

    async def create(chunk: list[NewDek]) -> None:
        operations = [BatchOperation("insert", new_entity(dek)) for dek in chunk]
        with translated("insert DEKs"):
            async with gate:
                answer = await send_changeset(table, operations)
        if not answer.landed(len(chunk)):
            _raise_for(answer, "insert DEKs")

    await asyncio.gather(*(create(chunk) for chunk in chunks))


async def forget_page(
    table: TableClient,
    gate: asyncio.Semaphore,
    previous_key_id: str,
    token: Mapping[str, str] | None,
    top: int,
) -> tuple[int, dict[str, str] | None]:
    """Clear previous wraps under ``previous_key_id`` in one query page, each conditional on
    its ETag; returns how many were cleared and the next page's token. DEKs marked
    unreadable keep theirs (it may be the only wrap that still opens them); a DEK changed
    meanwhile is skipped (run again to catch it). The token is positional, so a cleared row
    (which no longer matches the filter) never shifts the pages still to come.

    Raises:
        InvalidInputError: ``previous_key_id`` is not a versioned key id.
    """
    split = split_key_id(previous_key_id)
    if split is None:
        raise InvalidInputError(f"{previous_key_id!r} is not a versioned key id")
    # Any spelling of the key and of the previous key id (see ``_store``): a range per
    # property on the service, the exact case-insensitive match here.
    ranges = spellings_filter("KeyRef", split[0]), spellings_filter("PrevKeyId", previous_key_id)
    query = " and ".join(ranges)
    wanted, previous = fold_key_ref(split[0]), previous_key_id.lower()
    select = ["PartitionKey", "RowKey", "KeyRef", "PrevKeyId", "Unreadable"]
    entities, next_token = await query_page(
        table, query, select, top, token, operation="find previous wraps"
    )
    groups: dict[str, list[BatchOperation]] = {}
    for entity in entities:
        if entity.get("Unreadable") or str(entity.get("PrevKeyId") or "").lower() != previous:
            continue
        if fold_key_ref(str(entity.get("KeyRef") or "")) != wanted:
            continue
        changes = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"],
                   **_FORGOTTEN, "UpdatedAt": now()}  # fmt: skip
        groups.setdefault(entity["PartitionKey"], []).append(
            BatchOperation("merge", changes, entity["odata.etag"])
        )
    chunks = [
        group[i : i + MAX_TRANSACTION_OPERATIONS]
        for group in groups.values()
        for i in range(0, len(group), MAX_TRANSACTION_OPERATIONS)
    ]
    cleared = await asyncio.gather(*(_clear(table, gate, chunk) for chunk in chunks))
    return sum(cleared), next_token


async def _clear(table: TableClient, gate: asyncio.Semaphore, group: list[BatchOperation]) -> int:
    with translated("forget previous wraps"):
        async with gate:
            answer = await send_changeset(table, group)
    if answer.landed(len(group)):
        return len(group)
    failure = answer.failure
    if answer.status != 202 or not is_item_fault(from_status("", failure.status)):
        _raise_for(answer, "forget previous wraps")
    if len(group) == 1:
        return 0  # changed or deleted meanwhile: not ours to clear now
    # One entity sank the transaction: clear the others one by one.
    return sum([await _clear(table, gate, [operation]) for operation in group])
