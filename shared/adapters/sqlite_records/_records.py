"""SQLite ``RecordStore``: application records of both formats in the ``deks`` table.

The same table ``SqliteDekStore`` rewraps: format-1 rows are ordinary DEK rows; format-2
rows carry ``format`` = 2, ``kek_version`` and the empty string in the vault key columns, so
the key scans never see them (``shared/stores/_sqlite_schema.py`` says why). Every write is
conditional on ``row_version`` (the ETag), like the DEK store's.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from shared.errors import ConflictError
from shared.records import RecordFormat, RecordPage, RecordWrite, StoredRecord
from shared.records._rows import check_write, format_value, record_from_row, require_usable
from shared.stores import SqliteDatabase, WriteOutcome, WriteResult
from shared.stores._common import b64_encode, check_page_size, encode_continuation
from shared.stores._sqlite import store_name
from shared.stores._sqlite_pages import after_row
from shared.stores._sqlite_schema import NO_KEY, RECORD_TABLE, ensure_table, for_table

_KIND = "sqlite"
_SELECT = (
    "SELECT partition, dek_id, row_version, format, key_ref, key_id, kek_version, algorithm,"
    " wrapped, kcv, sealed FROM {table}"
)
_INSERT = (
    "INSERT INTO {table} (partition, dek_id, format, key_ref, key_version, key_id, kek_version,"
    " algorithm, wrapped, kcv, sealed, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
#: Both formats' columns are set (the other format's to empty/NULL) and the previous wrap and
#: unreadable mark dropped: a row never carries two authorities, and the new wrap is verified.
_REPLACE = (
    "UPDATE {table} SET format = ?, key_ref = ?, key_version = ?, key_id = ?, kek_version = ?,"
    " algorithm = ?, wrapped = ?, kcv = ?, sealed = COALESCE(?, sealed), prev_key_id = NULL,"
    " prev_algorithm = NULL, prev_wrapped = NULL, prev_kcv = NULL, unreadable = NULL,"
    " updated_at = ?, row_version = row_version + 1"
    " WHERE partition = ? AND dek_id = ? AND row_version = ?"
)


def _record(row: tuple[Any, ...]) -> StoredRecord:
    (partition, record_id, row_version, fmt, key_ref, key_id, kek_version, algorithm, wrapped,
     kcv, sealed) = row  # fmt: skip
    return record_from_row(
        partition, record_id, str(row_version), format_value=fmt, key_ref=key_ref,
        key_id=key_id, kek_version=kek_version, algorithm=algorithm, wrapped=wrapped, kcv=kcv,
        sealed=bytes(sealed) if sealed is not None else None,
    )  # fmt: skip


def _key_columns(write: RecordWrite) -> tuple[str, str, str]:
    """``key_ref``, ``key_version``, ``key_id`` of a write (empty for format 2)."""
    if write.format is RecordFormat.HIERARCHY or write.key_id is None:
        return NO_KEY, NO_KEY, NO_KEY
    prefix, _, version = write.key_id.rpartition("/")
    return prefix, version.lower(), write.key_id


class SqliteRecordStore:
    """Records of both formats in one SQLite file's ``deks`` table."""

    def __init__(self, database: SqliteDatabase, *, table: str = RECORD_TABLE) -> None:
        self._database = database
        self._table = table
        database.run_now(lambda db: ensure_table(db, table))
        self._select = for_table(_SELECT, table)

    @property
    def name(self) -> str:
        """The same name as the ``SqliteDekStore`` over this table (caches key on it)."""
        return store_name(self._database, self._table)

    async def read_record(self, partition: str, record_id: str) -> StoredRecord | None:
        sql = self._select + " WHERE partition = ? AND dek_id = ?"
        row = await self._database.run(
            lambda db: db.execute(sql, (partition, record_id)).fetchone()
        )
        return require_usable(_record(row)) if row else None

    async def insert_record(self, write: RecordWrite) -> StoredRecord:
        check_write(write)
        now = datetime.now(UTC).isoformat()
        key_ref, key_version, key_id = _key_columns(write)
        params = (
            write.partition, write.record_id, format_value(write.format), key_ref, key_version,
            key_id, write.kek_version, write.algorithm.value, b64_encode(write.wrapped),
            write.kcv, write.sealed, now, now,
        )  # fmt: skip
        sql = for_table(_INSERT, self._table)

        def work(db: sqlite3.Connection) -> None:
            try:
                db.execute(sql, params)
            except sqlite3.IntegrityError:
                raise ConflictError(f"record {write.ref} already exists") from None

        await self._database.run(work)
        return StoredRecord(
            write.partition, write.record_id, "1", write.format, write.algorithm, write.wrapped,
            write.kcv, key_id=write.key_id, kek_version=write.kek_version, sealed=write.sealed,
        )  # fmt: skip

    async def replace_record(self, current: StoredRecord, write: RecordWrite) -> WriteResult:
        """Replace ``current``'s wrap with ``write`` if its ETag holds. Refused (``FAILED``,
        nothing written) when ``write`` is another record or another DEK (KCV differs)."""
        check_write(write)
        if write.ref != current.ref:
            return WriteResult(current.ref, WriteOutcome.FAILED, "write is for another record")
        if current.kcv and write.kcv != current.kcv:
            return WriteResult(current.ref, WriteOutcome.FAILED, "kcv differs: not the same DEK")
        try:
            version = int(current.etag)
        except ValueError:
            return WriteResult(current.ref, WriteOutcome.CONFLICT, "etag no longer matches")
        key_ref, key_version, key_id = _key_columns(write)
        params = (
            format_value(write.format), key_ref, key_version, key_id, write.kek_version,
            write.algorithm.value, b64_encode(write.wrapped), write.kcv, write.sealed,
            datetime.now(UTC).isoformat(), write.partition, write.record_id, version,
        )  # fmt: skip
        sql = for_table(_REPLACE, self._table)
        exists = f"{self._select} WHERE partition = ? AND dek_id = ?"

        def work(db: sqlite3.Connection) -> WriteResult:
            if db.execute(sql, params).rowcount:
                return WriteResult(current.ref, WriteOutcome.WRITTEN, new_etag=str(version + 1))
            if db.execute(exists, (write.partition, write.record_id)).fetchone() is None:
                return WriteResult(current.ref, WriteOutcome.NOT_FOUND, "no such record")
            return WriteResult(current.ref, WriteOutcome.CONFLICT, "etag no longer matches")

        return await self._database.run(work)

    async def scan_records(
        self,
        *,
        partition: str | None = None,
        continuation: str | None = None,
        page_size: int = 1000,
    ) -> RecordPage:
        limit = check_page_size(page_size)
        after = after_row(continuation)
        sql = self._select + " WHERE (partition, dek_id) > (?, ?)"
        params: list[Any] = [*after]
        if partition is not None:
            sql += " AND partition = ?"
            params.append(partition)
        sql += " ORDER BY partition, dek_id LIMIT ?"
        params.append(limit + 1)
        rows = await self._database.run(lambda db: db.execute(sql, params).fetchall())
        more = len(rows) > limit
        rows = rows[:limit]
        token = encode_continuation(_KIND, [rows[-1][0], rows[-1][1]]) if more else None
        return RecordPage([_record(tuple(row)) for row in rows], token)

    def __repr__(self) -> str:
        return f"SqliteRecordStore({self._database.path!r})"
