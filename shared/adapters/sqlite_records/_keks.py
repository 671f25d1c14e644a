"""SQLite ``KekStore``: intermediate keys in the ``keks`` table (the DEK row layout).

Rows are ordinary format-1 DEK rows (PartitionKey = data partition, dek_id = KEK version),
so ``SqliteDekStore(database, table="keks")`` rewraps them when the vault key rotates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.errors import ConflictError
from shared.records import PartitionPage, StoredKek
from shared.records._kek_ids import require_kek_version
from shared.records._rows import kek_from_row
from shared.stores import NewDek, SqliteDatabase, SqliteDekStore, WriteOutcome, WriteResult
from shared.stores._common import check_page_size, decode_continuation, encode_continuation
from shared.stores._sqlite_schema import KEK_TABLE, for_table

_KIND = "sqlite-partitions"
_SELECT = (
    "SELECT partition, dek_id, row_version, key_ref, key_id, algorithm, wrapped, kcv,"
    " created_at FROM {table}"
)
_DELETE = "DELETE FROM {table} WHERE partition = ? AND dek_id = ? AND row_version = ?"
_EXISTS = "SELECT 1 FROM {table} WHERE partition = ? AND dek_id = ?"
_PARTITIONS = (
    "SELECT DISTINCT partition FROM {table} WHERE partition > ? ORDER BY partition LIMIT ?"
)


def _kek(row: tuple[Any, ...]) -> StoredKek:
    partition, version, row_version, key_ref, key_id, algorithm, wrapped, kcv, created = row
    try:
        created_at = datetime.fromisoformat(created) if created else None
    except ValueError:
        created_at = None
    return kek_from_row(
        partition, version, str(row_version), key_ref=key_ref, key_id=key_id,
        algorithm=algorithm, wrapped=wrapped, kcv=kcv, created_at=created_at,
    )  # fmt: skip


class SqliteKekStore:
    """Intermediate keys in one SQLite file's ``keks`` table."""

    def __init__(self, database: SqliteDatabase, *, table: str = KEK_TABLE) -> None:
        # The DEK store over the same table is the one writer of inserts (one home for the
        # row layout) and creates the table.
        self._deks = SqliteDekStore(database, table=table)
        self._database = database
        self._table = table
        self._select = for_table(_SELECT, table)

    @property
    def name(self) -> str:
        """The same name as the vault-facing ``SqliteDekStore`` over this table."""
        return self._deks.name

    @property
    def dek_store(self) -> SqliteDekStore:
        """This table as the rewrap engine sees it."""
        return self._deks

    async def list_keks(self, partition: str) -> Sequence[StoredKek]:
        sql = self._select + " WHERE partition = ? ORDER BY dek_id DESC"
        rows = await self._database.run(lambda db: db.execute(sql, (partition,)).fetchall())
        return [_kek(tuple(row)) for row in rows]

    async def read_kek(self, partition: str, version: str) -> StoredKek | None:
        sql = self._select + " WHERE partition = ? AND dek_id = ?"
        row = await self._database.run(lambda db: db.execute(sql, (partition, version)).fetchone())
        return _kek(tuple(row)) if row else None

    async def insert_kek(self, kek: NewDek) -> StoredKek:
        require_kek_version(kek.dek_id)
        try:
            await self._deks.insert_batch([kek])
        except ConflictError:
            raise ConflictError(f"KEK {kek.ref} already exists") from None
        stored = await self.read_kek(kek.partition, kek.dek_id)
        assert stored is not None  # just inserted; KEKs are deleted only when unreferenced
        return stored

    async def delete_kek(self, kek: StoredKek) -> WriteResult:
        try:
            version = int(kek.etag)
        except ValueError:
            return WriteResult(kek.ref, WriteOutcome.CONFLICT, "etag no longer matches")
        delete, exists = for_table(_DELETE, self._table), for_table(_EXISTS, self._table)
        keys = (kek.partition, kek.version)

        def work(db: sqlite3.Connection) -> WriteResult:
            if db.execute(delete, (*keys, version)).rowcount:
                return WriteResult(kek.ref, WriteOutcome.WRITTEN)
            if db.execute(exists, keys).fetchone() is None:
                return WriteResult(kek.ref, WriteOutcome.NOT_FOUND, "no such KEK")
            return WriteResult(kek.ref, WriteOutcome.CONFLICT, "etag no longer matches")

        return await self._database.run(work)

    async def kek_partitions(
        self, *, continuation: str | None = None, page_size: int = 1000
    ) -> PartitionPage:
        limit = check_page_size(page_size)
        after = decode_continuation(_KIND, continuation) if continuation else ""
        if not isinstance(after, str):
            after = ""
        sql = for_table(_PARTITIONS, self._table)
        rows = await self._database.run(lambda db: db.execute(sql, (after, limit + 1)).fetchall())
        names = [row[0] for row in rows]
        more = len(names) > limit
        names = names[:limit]
        return PartitionPage(names, encode_continuation(_KIND, names[-1]) if more else None)

    def __repr__(self) -> str:
        return f"SqliteKekStore({self._database.path!r})"
