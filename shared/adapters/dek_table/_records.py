"""Application records (both formats) in the data table: the ``RecordStore`` port on Table.

One entity per record, the layout ``docs/record-format.md`` describes: format 1 is the DEK
row ``TableDekStore`` has always written, format 2 carries ``Format``=2 and ``KekVersion``
and none of the vault-key properties, so the rewrap engine's scans (a ``KeyRef`` range)
never see it. Which property means what is ``shared.records``' business (``_format``); this
module only moves entities.

Why REPLACE, not MERGE, for a change of format: a MERGE cannot remove a property, and a row
must never carry both formats' properties (a format-2 row with a stale ``KeyRef`` would be
scanned and "rewrapped" by the engine). To keep what an application stored beside the wrap
(its own columns), the replace reads the whole entity first, checks it is still the version
the caller read, and writes it back with the wrap properties swapped, conditional on that
ETag: a concurrent change makes it a CONFLICT, never a lost update.

Partitions starting with ``~`` are keyward's own (the mode row lives in ``~keyward``): a
write there is refused and a scan skips them.
"""

from __future__ import annotations

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translate, translated
from shared.adapters.dek_table._entity import check_keys, etag_of, now
from shared.adapters.dek_table._missing import creating_table, is_missing_table
from shared.adapters.dek_table._query import query_page, quote_value
from shared.errors import InvalidInputError, ServiceError
from shared.records import RecordPage, RecordWrite, StoredRecord
from shared.records._entities import new_record_entity, record_from_entity, replaced_entity
from shared.records._format import (
    CREATED_AT,
    FORMAT_1_PROPERTIES,
    FORMAT_2_PROPERTIES,
    PARTITION_KEY,
    PREV_ALGORITHM,
    PREV_KCV,
    PREV_KEY_ID,
    PREV_WRAPPED_KEY,
    ROW_KEY,
    SEALED,
    UPDATED_AT,
    is_reserved_partition,
)
from shared.records._rows import check_write, require_usable
from shared.stores import WriteOutcome, WriteResult
from shared.stores._common import check_page_size, decode_continuation, encode_continuation

_IF_MATCH = MatchConditions.IfNotModified
_KIND = "table-records"


class TableRecordStore:
    """``RecordStore`` over one Azure table (the data table keyward's DEK shard scans)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    @property
    def name(self) -> str:
        return f"table:{self._table.table_name}"

    async def read_record(self, partition: str, record_id: str) -> StoredRecord | None:
        check_keys(partition, record_id)
        with translated("read record"):
            try:
                entity = await self._table.get_entity(partition, record_id)
            except ResourceNotFoundError:
                return None
        return require_usable(record_from_entity(entity, etag_of(entity)))

    async def insert_record(self, write: RecordWrite) -> StoredRecord:
        entity = new_record_entity(write, now())  # checks the write before any I/O
        answer = await creating_table(
            self._table, "insert record", lambda: self._table.create_entity(entity)
        )
        return require_usable(record_from_entity(entity, str(answer.get("etag") or "")))

    async def replace_record(self, current: StoredRecord, write: RecordWrite) -> WriteResult:
        ref = current.ref
        check_write(write)
        if write.ref != ref:
            return WriteResult(ref, WriteOutcome.FAILED, "write is for another record")
        if current.kcv and write.kcv != current.kcv:
            return WriteResult(ref, WriteOutcome.FAILED, "kcv differs: not the same DEK")
        with translated("read record"):
            try:
                entity = await self._table.get_entity(current.partition, current.record_id)
            except ResourceNotFoundError:
                return WriteResult(ref, WriteOutcome.NOT_FOUND, "no such record")
        if etag_of(entity) != current.etag:
            return WriteResult(ref, WriteOutcome.CONFLICT, "etag no longer matches")
        replacement = replaced_entity(entity, write, now())
        try:
            answer = await self._table.update_entity(
                replacement, mode=UpdateMode.REPLACE, etag=current.etag, match_condition=_IF_MATCH
            )
        except ResourceNotFoundError:
            return WriteResult(ref, WriteOutcome.NOT_FOUND, "no such record")
        except HttpResponseError as error:
            if error.status_code == 412:
                return WriteResult(ref, WriteOutcome.CONFLICT, "etag no longer matches")
            raise translate(error, "replace record") from None
        except AzureError as error:
            raise translate(error, "replace record") from None
        return WriteResult(ref, WriteOutcome.WRITTEN, new_etag=answer.get("etag"))

    async def scan_records(
        self,
        *,
        partition: str | None = None,
        continuation: str | None = None,
        page_size: int = 1000,
    ) -> RecordPage:
        """One query page of records (the sealed data is not read: a scan wants the wraps).

        A page may be empty and still carry a continuation (the reserved partition's row
        was skipped); callers read on until the continuation is ``None``.
        """
        query = ""
        if partition is not None:
            check_keys(partition, "-")
            query = f"PartitionKey eq {quote_value(partition)}"
        token = decode_continuation(_KIND, continuation) if continuation else None
        if token is not None and not (isinstance(token, dict) and "PartitionKey" in token):
            raise InvalidInputError("continuation is not one keyward issued")
        try:
            entities, token = await query_page(
                self._table, query, _SCAN_COLUMNS, check_page_size(page_size), token,
                operation="scan records",
            )  # fmt: skip
        except ServiceError as error:
            if not is_missing_table(error):
                raise
            return RecordPage([], None)
        records = [
            record_from_entity(entity, etag_of(entity))
            for entity in entities
            if not is_reserved_partition(str(entity.get(PARTITION_KEY) or ""))
        ]
        return RecordPage(records, encode_continuation(_KIND, token) if token else None)

    async def close(self) -> None:
        await self._table.close()

    def __repr__(self) -> str:
        return f"TableRecordStore({self._table.table_name!r})"


_NOT_SCANNED = frozenset({SEALED, CREATED_AT, UPDATED_AT, PREV_KEY_ID, PREV_ALGORITHM,
                          PREV_WRAPPED_KEY, PREV_KCV})  # fmt: skip
#: A scan reads the key columns and every wrap property of both formats, never the sealed
#: payload (nor the timestamps and previous wraps, which no record of a scan carries).
_SCAN_COLUMNS = [
    PARTITION_KEY, ROW_KEY,
    *dict.fromkeys(c for c in (*FORMAT_1_PROPERTIES, *FORMAT_2_PROPERTIES)
                   if c not in _NOT_SCANNED),
]  # fmt: skip
