"""The store's mode row in the data table: the ``ModeStore`` port on Table.

One entity, PartitionKey ``~keyward`` (reserved: records cannot use a partition starting with
``~``), RowKey ``mode``: ``Mode`` (a ``StoreMode`` value), ``ChangedAt`` and ``Migration``
(the migration job's checkpoint, opaque JSON). It lives in the data table itself, not in
settings, so every writer, the Function App and the CLI read the same truth, and a store
copied elsewhere keeps its mode. Writes are conditional on the ETag read ("" = create):
two jobs racing to change the mode get a ``ConflictError``, never a lost update.
"""

from __future__ import annotations

from datetime import UTC, datetime

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translate, translated
from shared.adapters.dek_table._entity import etag_of
from shared.adapters.dek_table._missing import creating_table
from shared.records import ModeRecord
from shared.records._entities import mode_entity, mode_from_entity
from shared.records._format import MODE_PARTITION, MODE_ROW

_IF_MATCH = MatchConditions.IfNotModified


class TableModeStore:
    """``ModeStore`` over the data table's ``~keyward``/``mode`` row."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    @property
    def name(self) -> str:
        return f"table:{self._table.table_name}"

    async def read_mode(self) -> ModeRecord:
        """The mode row; absent (or no table yet) reads as direct with an empty ETag.

        Raises:
            InvalidInputError: the row names a mode this keyward does not know.
        """
        try:
            entity = await self._table.get_entity(MODE_PARTITION, MODE_ROW)
        except ResourceNotFoundError:
            return ModeRecord()
        except AzureError as error:
            raise translate(error, "read mode") from None
        return mode_from_entity(entity, etag_of(entity))

    async def write_mode(self, record: ModeRecord) -> ModeRecord:
        entity = mode_entity(record, datetime.now(UTC))
        if record.etag:
            with translated("write mode"):  # 412 -> ConflictError, 404 -> ServiceError
                answer = await self._table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=record.etag, match_condition=_IF_MATCH
                )
        else:
            answer = await creating_table(  # 409 (exists) -> ConflictError
                self._table, "create mode", lambda: self._table.create_entity(entity)
            )
        return mode_from_entity(entity, str(answer.get("etag") or ""))

    def __repr__(self) -> str:
        return f"TableModeStore({self._table.table_name!r})"
