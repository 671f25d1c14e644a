"""Azure Table DEK store: keyward's own envelope encryption, one entity per DEK.

Entity layout (see ``_table_entity``): PartitionKey = tenant or shard, RowKey = DEK id, the
wrap (base64 text, full versioned key id, ``KeyRef``/``KeyVersion`` for server-side
filtering, algorithm, KCV), the previous wrap, ``Unreadable`` and timestamps.

Writes are entity group transactions (at most 100 operations, one partition) of MERGE
updates conditional on each entity's ETag. MERGE, not REPLACE: a ``Rewrap`` carries the wrap
fields only, and REPLACE would drop every property the store does not model (the sealed
payload, columns an application adds); the ETag condition already guarantees nothing changed
since the read. A transaction fails whole when one entity lost its race, so on 412/404/400
the chunk falls back to per-item conditional updates: the others land, the loser gets
CONFLICT (or FAILED with the service's reason). Transactions are serialized by
``_table_batch`` rather than ``submit_transaction``, whose multipart encoding cost more CPU
per entity than the rewrap's RSA operation; the request goes through the same SDK pipeline
(``_batch`` says why that one private reach stays).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import (
    from_status,
    is_item_fault,
    item_fault,
    translate,
    translated,
)
from shared.adapters.dek_table._batch import BatchOperation, send_changeset
from shared.adapters.dek_table._entity import (
    COUNT_COLUMNS,
    SCAN_COLUMNS,
    details,
    holds_wrap,
    now,
    rewrap_entity,
    to_stored,
)
from shared.adapters.dek_table._query import query_all, query_page, quote_value
from shared.adapters.dek_table._upkeep import (
    MAX_TRANSACTION_OPERATIONS,
    forget_previous,
    insert_deks,
)
from shared.errors import InvalidInputError
from shared.stores._common import (
    MAX_LISTING_PAGES_PER_SCAN,
    VersionTally,
    check_page_size,
    clean_reason,
    decode_continuation,
    encode_continuation,
    normalize_key_ref,
)
from shared.stores._model import DekDetails, NewDek, rewrap_refusal, split_ref
from shared.stores._protocol import DekRecord, Rewrap, ScanPage, VersionCount, WriteOutcome
from shared.stores._protocol import WriteResult as Result

#: Transactions (or per-item fallbacks) in flight at once from one store.
MAX_CONCURRENT_REQUESTS = 16
_KIND = "table"
_IF_MATCH = MatchConditions.IfNotModified


class TableDekStore:
    """A DekStore over one Azure table, through ``azure.data.tables.aio``."""

    def __init__(self, table: TableClient) -> None:
        self._table = table
        self._gate = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)

    @classmethod
    def from_connection_string(
        cls, connection_string: str, table_name: str = "deks", **client_options: Any
    ) -> TableDekStore:
        """A store over ``table_name`` (created on demand by :meth:`create_table`)."""
        return cls(
            TableClient.from_connection_string(connection_string, table_name, **client_options)
        )

    @property
    def name(self) -> str:
        return f"table:{self._table.table_name}"

    async def create_table(self) -> None:
        """Create the table if it does not exist yet."""
        with translated("create table"), contextlib.suppress(ResourceExistsError):
            await self._table.create_table()

    async def scan(
        self,
        key_ref: str,
        *,
        exclude_version: str | None,
        continuation: str | None = None,
        page_size: int = 100,
    ) -> ScanPage:
        token = decode_continuation(_KIND, continuation) if continuation else None
        if token is not None and not (isinstance(token, dict) and "PartitionKey" in token):
            raise InvalidInputError("continuation is not one keyward issued")
        query = f"KeyRef eq {quote_value(normalize_key_ref(key_ref))}"
        if exclude_version:
            query += f" and KeyVersion ne {quote_value(exclude_version.lower())}"
        top = check_page_size(page_size)
        records: list[DekRecord] = []
        with translated("scan table"):
            # The service filters non-key properties by scanning; it may return empty pages
            # with a continuation. Read on until a page has records, the scan is complete or
            # enough pages went by (an empty page with a continuation still lets a job
            # checkpoint its progress through a sparse table).
            for _ in range(MAX_LISTING_PAGES_PER_SCAN):
                entities, token = await query_page(
                    self._table, query, SCAN_COLUMNS, top, token, operation="scan table"
                )
                records = [to_stored(entity) for entity in entities]
                if records or token is None:
                    break
        return ScanPage(records, encode_continuation(_KIND, token) if token else None)

    async def replace_batch(self, rewraps: Sequence[Rewrap]) -> Sequence[Result]:
        results: list[Result | None] = [None] * len(rewraps)
        chunks: list[list[int]] = []
        open_chunks: dict[str, list[int]] = {}
        for index, rewrap in enumerate(rewraps):
            refusal = rewrap_refusal(rewrap)
            if refusal is not None:
                results[index] = Result(rewrap.record.ref, WriteOutcome.FAILED, refusal)
                continue
            chunk = open_chunks.get(rewrap.record.partition)
            if chunk is None or len(chunk) == MAX_TRANSACTION_OPERATIONS:
                chunk = open_chunks[rewrap.record.partition] = []
                chunks.append(chunk)
            chunk.append(index)
        written = await asyncio.gather(
            *(self._write_chunk([rewraps[i] for i in chunk]) for chunk in chunks)
        )
        for chunk, chunk_results in zip(chunks, written, strict=True):
            for index, result in zip(chunk, chunk_results, strict=True):
                results[index] = result
        assert all(r is not None for r in results)  # every input got exactly one result
        return [r for r in results if r is not None]

    async def _write_chunk(self, chunk: Sequence[Rewrap]) -> list[Result]:
        operations = [BatchOperation("merge", rewrap_entity(r), r.record.etag) for r in chunk]
        with translated("rewrap transaction"):
            async with self._gate:
                answer = await send_changeset(self._table, operations)
        if answer.landed(len(chunk)):
            return [
                Result(r.record.ref, WriteOutcome.WRITTEN, new_etag=part.etag)
                for r, part in zip(chunk, answer.parts, strict=True)
            ]
        failure = answer.failure
        error = from_status("rewrap transaction", failure.status, failure.error_code,
                            answer.retry_after)  # fmt: skip
        if answer.status != 202 or not is_item_fault(error):
            raise error
        # One entity sank the whole transaction (412, 404, 400): write one by one.
        return list(await asyncio.gather(*(self._write_one(r) for r in chunk)))

    async def _write_one(self, rewrap: Rewrap) -> Result:
        ref = rewrap.record.ref
        entity = rewrap_entity(rewrap)
        try:
            async with self._gate:
                answer = await self._table.update_entity(
                    entity,
                    mode=UpdateMode.MERGE,
                    etag=rewrap.record.etag,
                    match_condition=_IF_MATCH,
                )
        except ResourceNotFoundError:
            return Result(ref, WriteOutcome.NOT_FOUND, "no such DEK")
        except HttpResponseError as error:
            if error.status_code == 412:
                return await self._after_conflict(rewrap)
            fault = item_fault(error, "rewrap update")
            if fault is None:
                raise translate(error, "rewrap update") from None
            return Result(ref, WriteOutcome.FAILED, str(fault))
        except AzureError as error:
            raise translate(error, "rewrap update") from None
        return Result(ref, WriteOutcome.WRITTEN, new_etag=answer.get("etag"))

    async def _after_conflict(self, rewrap: Rewrap) -> Result:
        """A 412 is a success when the entity already holds exactly this wrap: a retry of a
        batch whose first attempt landed (or whose answer was lost) reports it as written."""
        partition, dek_id = split_ref(rewrap.record.ref)
        with translated("read after conflict"):
            try:
                entity = await self._table.get_entity(partition, dek_id, select=SCAN_COLUMNS)
            except ResourceNotFoundError:
                return Result(rewrap.record.ref, WriteOutcome.NOT_FOUND, "no such DEK")
        if holds_wrap(entity, rewrap):
            etag = entity.metadata.get("etag")
            return Result(rewrap.record.ref, WriteOutcome.WRITTEN, "already written", etag)
        return Result(rewrap.record.ref, WriteOutcome.CONFLICT, "etag no longer matches")

    async def mark_unreadable(self, record: DekRecord, reason: str) -> Result:
        partition, dek_id = split_ref(record.ref)
        entity = {"PartitionKey": partition, "RowKey": dek_id,
                  "Unreadable": clean_reason(reason), "UnreadableAt": now()}  # fmt: skip
        try:
            answer = await self._table.update_entity(
                entity, mode=UpdateMode.MERGE, etag=record.etag, match_condition=_IF_MATCH
            )
        except ResourceNotFoundError:
            return Result(record.ref, WriteOutcome.NOT_FOUND, "no such DEK")
        except HttpResponseError as error:
            if error.status_code != 412:
                raise translate(error, "mark unreadable") from None
            return Result(record.ref, WriteOutcome.CONFLICT, "etag no longer matches")
        except AzureError as error:
            raise translate(error, "mark unreadable") from None
        return Result(record.ref, WriteOutcome.WRITTEN, new_etag=answer.get("etag"))

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        tally = VersionTally()
        query = f"KeyRef eq {quote_value(normalize_key_ref(key_ref))}"
        entities = query_all(self._table, query, COUNT_COLUMNS, "count versions")
        with translated("count versions"):
            async for entity in entities:  # streamed page by page, one entity at a time
                tally.add(
                    str(entity.get("KeyId") or ""),
                    entity.get("PrevKeyId") or None,
                    bool(entity.get("Unreadable")),
                )
        return tally.result()

    async def insert_batch(self, deks: Sequence[NewDek]) -> None:
        """Insert new DEKs (transactions of up to 100 per partition, several in flight).

        Raises:
            InvalidInputError: a key id is not versioned, or a partition/id is unusable.
            ConflictError: a DEK with the same partition and id exists.
        """
        await insert_deks(self._table, self._gate, deks)

    async def forget_previous(self, previous_key_id: str) -> int:
        """Drop previous wraps made under ``previous_key_id`` once that version is retired;
        returns how many. DEKs marked unreadable keep theirs.

        Raises:
            InvalidInputError: ``previous_key_id`` is not a versioned key id.
        """
        return await forget_previous(self._table, self._gate, previous_key_id)

    async def get(self, ref: str) -> DekDetails | None:
        """Everything stored about one DEK, or ``None``."""
        partition, dek_id = split_ref(ref)
        if not dek_id:
            raise InvalidInputError(f"{ref!r} is not a partition/id ref")
        with translated("read DEK"):
            try:
                entity = await self._table.get_entity(partition, dek_id)
            except ResourceNotFoundError:
                return None
        return details(entity)

    async def close(self) -> None:
        await self._table.close()

    def __repr__(self) -> str:
        return f"TableDekStore({self._table.table_name!r})"
