"""Intermediate keys (KEKs) in their own table: the ``KekStore`` port on Table.

A KEK row *is* a format-1 DEK row (``_entity``): PartitionKey = the data partition, RowKey =
the KEK version, wrapped by the Key Vault key. So ``TableDekStore`` over the same table is
what the rewrap engine rotates, and this module only adds what the envelope needs: a
partition's versions newest first (versions sort by creation), insert, a conditional delete
and the list of partitions.

The table is created on the first insert, so a store that never left direct mode has none;
every read of a missing table reads as empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translate
from shared.adapters.dek_table._entity import check_keys, etag_of, new_entity
from shared.adapters.dek_table._missing import create_table, creating_table, is_missing_table
from shared.adapters.dek_table._query import query_page, quote_value
from shared.errors import InvalidInputError, ServiceError
from shared.records import PartitionPage, StoredKek
from shared.records._entities import kek_from_entity
from shared.records._format import (
    ALGORITHM,
    CREATED_AT,
    KCV,
    KEY_ID,
    KEY_REF,
    PARTITION_KEY,
    ROW_KEY,
    WRAPPED_KEY,
)
from shared.records._kek_ids import require_kek_version
from shared.stores import NewDek, WriteOutcome, WriteResult
from shared.stores._common import (
    check_page_size,
    decode_continuation,
    encode_continuation,
)

_IF_MATCH = MatchConditions.IfNotModified
_KIND = "table-keks"
_COLUMNS = [PARTITION_KEY, ROW_KEY, KEY_REF, KEY_ID, ALGORITHM, WRAPPED_KEY, KCV, CREATED_AT]


class TableKekStore:
    """``KekStore`` over one Azure table (``KEYWARD_KEK_TABLE``)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    @property
    def name(self) -> str:
        return f"table:{self._table.table_name}"

    async def list_keks(self, partition: str) -> Sequence[StoredKek]:
        check_keys(partition, "-")
        query = f"PartitionKey eq {quote_value(partition)}"
        keks: list[StoredKek] = []
        token: dict[str, str] | None = None
        try:
            while True:
                entities, token = await query_page(
                    self._table, query, _COLUMNS, 1000, token, operation="list KEKs"
                )
                keks += [_kek(e) for e in entities]
                if token is None:
                    break
        except ServiceError as error:
            if not is_missing_table(error):
                raise
            return []
        return sorted(keks, key=lambda kek: kek.version, reverse=True)

    async def read_kek(self, partition: str, version: str) -> StoredKek | None:
        check_keys(partition, version)
        try:
            entity = await self._table.get_entity(partition, version, select=_COLUMNS)
        except ResourceNotFoundError:
            return None  # no such row, or no table yet
        except AzureError as error:
            raise translate(error, "read KEK") from None
        return _kek(entity)

    async def insert_kek(self, kek: NewDek) -> StoredKek:
        require_kek_version(kek.dek_id)
        entity = new_entity(kek)
        answer = await creating_table(
            self._table, "insert KEK", lambda: self._table.create_entity(entity)
        )
        return _kek({**entity, "odata.etag": answer.get("etag")})

    async def delete_kek(self, kek: StoredKek) -> WriteResult:
        """Delete ``kek`` if its ETag still holds; a version already gone counts as deleted
        (azure-data-tables answers a delete's 404 as success)."""
        try:
            await self._table.delete_entity(
                kek.partition, kek.version, etag=kek.etag, match_condition=_IF_MATCH
            )
        except ResourceNotFoundError:
            return WriteResult(kek.ref, WriteOutcome.NOT_FOUND, "no such KEK")
        except HttpResponseError as error:
            if error.status_code == 412:
                return WriteResult(kek.ref, WriteOutcome.CONFLICT, "etag no longer matches")
            raise translate(error, "delete KEK") from None
        except AzureError as error:
            raise translate(error, "delete KEK") from None
        return WriteResult(kek.ref, WriteOutcome.WRITTEN)

    async def kek_partitions(
        self, *, continuation: str | None = None, page_size: int = 1000
    ) -> PartitionPage:
        """One query page of partitions (it may be empty and still carry a continuation).

        The continuation is the last partition returned (the next page starts after it), so
        a partition is listed once even when its versions straddle two service pages.
        """
        state = decode_continuation(_KIND, continuation) if continuation else {}
        if not isinstance(state, dict) or not set(state) <= {"after", "token"}:
            raise InvalidInputError("continuation is not one keyward issued")
        after, token = state.get("after"), state.get("token")
        if token is not None and not (isinstance(token, dict) and "PartitionKey" in token):
            raise InvalidInputError("continuation is not one keyward issued")
        query = f"PartitionKey gt {quote_value(str(after))}" if after is not None else ""
        try:
            entities, token = await query_page(
                self._table, query, ["PartitionKey"], check_page_size(page_size), token,
                operation="list KEK partitions",
            )  # fmt: skip
        except ServiceError as error:
            if not is_missing_table(error):
                raise
            return PartitionPage([], None)
        partitions: list[str] = []
        for entity in entities:
            partition = str(entity.get("PartitionKey") or "")
            if not partitions or partitions[-1] != partition:
                partitions.append(partition)
        if token is None:
            return PartitionPage(partitions, None)
        if not partitions:  # the service answered an empty page: resume where it stopped
            return PartitionPage([], encode_continuation(_KIND, {"after": after, "token": token}))
        return PartitionPage(partitions, encode_continuation(_KIND, {"after": partitions[-1]}))

    async def create_table(self) -> None:
        """Create the table if it does not exist yet."""
        await create_table(self._table)

    async def close(self) -> None:
        await self._table.close()

    def __repr__(self) -> str:
        return f"TableKekStore({self._table.table_name!r})"


def _kek(entity: Mapping[str, Any]) -> StoredKek:
    """A KEK row as the envelope sees it (a corrupted one raises ``InvalidInputError``)."""
    return kek_from_entity(entity, etag_of(entity))
