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

from collections.abc import Mapping
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translate, translated
from shared.adapters.dek_table._entity import check_keys, now
from shared.adapters.dek_table._missing import creating_table, is_missing_table
from shared.adapters.dek_table._query import query_page, quote_value
from shared.adapters.dek_table._record_entity import (
    format_properties,
    parse_record,
    record_columns,
)
from shared.errors import InvalidInputError, ServiceError
from shared.records import RecordPage, RecordWrite, StoredRecord
from shared.records._format import check_record_keys, is_reserved_partition
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
        return parse_record(_row(entity), strict=True)

    async def insert_record(self, write: RecordWrite) -> StoredRecord:
        check_record_keys(write.partition, write.record_id)
        created = now()
        entity = {"PartitionKey": write.partition, "RowKey": write.record_id,
                  **format_properties(write), "CreatedAt": created,
                  "UpdatedAt": created}  # fmt: skip
        if write.sealed is not None:
            entity["Sealed"] = write.sealed
        answer = await creating_table(
            self._table, "insert record", lambda: self._table.create_entity(entity)
        )
        return parse_record({**entity, "odata.etag": answer.get("etag") or ""}, strict=True)

    async def replace_record(self, current: StoredRecord, write: RecordWrite) -> WriteResult:
        ref = current.ref
        properties = format_properties(write)  # checks the write before any I/O
        if write.ref != ref:
            return WriteResult(ref, WriteOutcome.FAILED, "write is for another record")
        if current.kcv and write.kcv != current.kcv:
            return WriteResult(ref, WriteOutcome.FAILED, "kcv differs: not the same DEK")
        with translated("read record"):
            try:
                entity = await self._table.get_entity(current.partition, current.record_id)
            except ResourceNotFoundError:
                return WriteResult(ref, WriteOutcome.NOT_FOUND, "no such record")
        if str(entity.metadata.get("etag") or "") != current.etag:
            return WriteResult(ref, WriteOutcome.CONFLICT, "etag no longer matches")
        modelled = set(record_columns())
        kept = {name: value for name, value in entity.items() if name not in modelled}
        replacement = {**kept, "PartitionKey": current.partition, "RowKey": current.record_id,
                       **properties, "UpdatedAt": now()}  # fmt: skip
        for name in ("CreatedAt", "Sealed"):
            if entity.get(name) is not None:
                replacement[name] = entity[name]
        if write.sealed is not None:
            replacement["Sealed"] = write.sealed
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
            parse_record(entity, strict=False)
            for entity in entities
            if not is_reserved_partition(str(entity.get("PartitionKey") or ""))
        ]
        return RecordPage(records, encode_continuation(_KIND, token) if token else None)

    async def close(self) -> None:
        await self._table.close()

    def __repr__(self) -> str:
        return f"TableRecordStore({self._table.table_name!r})"


#: A scan reads the key columns and every wrap property, never the sealed payload.
_SCAN_COLUMNS = ["PartitionKey", "RowKey", *(c for c in record_columns() if c != "Sealed")]


def _row(entity: Mapping[str, Any]) -> dict[str, Any]:
    metadata = getattr(entity, "metadata", None) or {}
    return {**entity, "odata.etag": str(metadata.get("etag") or "")}
