"""Azure Table DEK store: keyward's own envelope encryption, one entity per DEK.

Entity layout (see ``_entity``): PartitionKey = tenant or shard, RowKey = DEK id, the
wrap (base64 text, full versioned key id, ``KeyRef``/``KeyVersion`` for server-side
filtering, algorithm, KCV), the previous wrap, ``Unreadable`` and timestamps.

Writes are entity group transactions (at most 100 operations, one partition) of MERGE
updates conditional on each entity's ETag. MERGE, not REPLACE: a ``Rewrap`` carries the wrap
fields only, and REPLACE would drop every property the store does not model (the sealed
payload, columns an application adds); the ETag condition already guarantees nothing changed
since the read. A transaction fails whole when one entity lost its race, so on 412/404/400
the chunk falls back to per-item conditional updates: the others land, the loser gets
CONFLICT (or FAILED with the service's reason). Transactions are serialized by
``_batch`` rather than ``submit_transaction``, whose multipart encoding cost more CPU
per entity than the rewrap's RSA operation; the request goes through the same SDK pipeline
(``_batch`` says why that one private reach stays).

Key ids match case-insensitively (Key Vault names do), and rows already written under any
spelling must be found, with no migration. Table filters are case-sensitive and have no
``tolower``, so the scan, the counts and ``forget_previous`` ask for the range of ``KeyRef``
values that holds every spelling of the key (``_query.spellings_filter``: from the all-upper
to the all-lower spelling) and keep the rows whose folded ``KeyRef`` is the key's. Why not a
normalised property: ``KeyRef`` is not a key column, so any filter on it (equality, range,
or a new ``KeyFold eq``) makes the service read the same entities; a new property would
also need a backfill of every old row before it could be trusted, and a range needs none.
The price is the rows of other keys whose ref sorts inside the range, sent and dropped
here. Measured on Azurite, 2,000 DEKs of the key (half spelled ``DEK-Kek``), 2,000 of
``archive-kek`` (inside the range) and 2,000 of ``payments-kek`` (outside), one full pass
(``tests/stores/bench_key_ref_range.py``):
the exact filter returned 1,000 rows (it missed the other spelling), the range 4,000 (2,000
of them foreign), 0.015 ms of client CPU per foreign row, a hundredth of the RSA unwrap a
rewrap spends per DEK.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import from_status, is_item_fault, translated
from shared.adapters._pipeline import NO_REDIRECTS
from shared.adapters.dek_table._batch import BatchOperation, send_changeset
from shared.adapters.dek_table._conditional import mark_unreadable, write_one
from shared.adapters.dek_table._entity import (
    COUNT_COLUMNS,
    SCAN_COLUMNS,
    details,
    rewrap_entity,
    to_stored,
)
from shared.adapters.dek_table._query import (
    query_page,
    quote_value,
    spellings_filter,
)
from shared.adapters.dek_table._upkeep import (
    MAX_TRANSACTION_OPERATIONS,
    forget_page,
    insert_deks,
)
from shared.errors import InvalidInputError
from shared.stores import (
    DEFAULT_COUNT_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    CountPage,
    ForgetPage,
    all_version_counts,
    forget_all_previous,
)
from shared.stores._common import (
    MAX_LISTING_PAGES_PER_SCAN,
    VersionTally,
    check_page_size,
    decode_continuation,
    encode_continuation,
    fold_key_ref,
    normalize_key_ref,
)
from shared.stores._model import DekDetails, NewDek, rewrap_refusal, split_ref
from shared.stores._protocol import DekRecord, Rewrap, ScanPage, VersionCount, WriteOutcome
from shared.stores._protocol import WriteResult as Result

#: Transactions (or per-item fallbacks) in flight at once from one store.
MAX_CONCURRENT_REQUESTS = 16
_KIND = "table"


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
            TableClient.from_connection_string(
                connection_string, table_name, **{**NO_REDIRECTS, **client_options}
            )
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
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> ScanPage:
        token = _native(continuation)
        query, wanted = (
            spellings_filter("KeyRef", normalize_key_ref(key_ref)),
            fold_key_ref(key_ref),
        )
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
                records = [to_stored(e) for e in entities if _folded_ref(e) == wanted]
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
        return list(await asyncio.gather(*(write_one(self._table, self._gate, r) for r in chunk)))

    async def mark_unreadable(self, record: DekRecord, reason: str) -> Result:
        return await mark_unreadable(self._table, record, reason)

    async def count_versions(
        self,
        key_ref: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> CountPage:
        """One query page (one request; it may hold no row of the key, and still moves on)."""
        tally, wanted = VersionTally(key_ref), fold_key_ref(key_ref)
        query = spellings_filter("KeyRef", normalize_key_ref(key_ref))
        entities, token = await query_page(
            self._table, query, COUNT_COLUMNS, check_page_size(page_size),
            _native(continuation), operation="count versions",
        )  # fmt: skip
        for entity in entities:
            if _folded_ref(entity) == wanted:
                tally.add(
                    str(entity.get("KeyId") or ""),
                    entity.get("PrevKeyId") or None,
                    bool(entity.get("Unreadable")),
                )
        return CountPage(tally.result(), encode_continuation(_KIND, token) if token else None)

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        return await all_version_counts(self, key_ref)

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
        return await forget_all_previous(self, previous_key_id)

    async def forget_previous_page(
        self,
        previous_key_id: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> ForgetPage:
        dropped, token = await forget_page(
            self._table, self._gate, previous_key_id, _native(continuation),
            check_page_size(page_size),
        )  # fmt: skip
        return ForgetPage(dropped, encode_continuation(_KIND, token) if token else None)

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


def _native(continuation: str | None) -> dict[str, str] | None:
    """The service's token inside a continuation this store issued.

    Raises:
        InvalidInputError: not a continuation a Table store issued.
    """
    token = decode_continuation(_KIND, continuation) if continuation else None
    if token is not None and not (isinstance(token, dict) and "PartitionKey" in token):
        raise InvalidInputError("continuation is not one keyward issued")
    return token


def _folded_ref(entity: Any) -> str:
    return fold_key_ref(str(entity.get("KeyRef") or ""))
