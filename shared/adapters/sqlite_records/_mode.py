"""SQLite ``ModeStore``: the store's mode in the ``keyward_meta`` table (name = ``mode``)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from shared.errors import ConflictError
from shared.records import ModeRecord
from shared.records._rows import parse_mode
from shared.stores import SqliteDatabase
from shared.stores._sqlite_schema import META_SCHEMA, META_TABLE, MODE_NAME, for_table

_READ = for_table(
    "SELECT value, changed_at, migration, row_version FROM {table} WHERE name = ?", META_TABLE
)
_INSERT = for_table(
    "INSERT INTO {table} (name, value, changed_at, migration, row_version) VALUES (?,?,?,?,1)",
    META_TABLE,
)
_UPDATE = for_table(
    "UPDATE {table} SET value = ?, changed_at = ?, migration = ?,"
    " row_version = row_version + 1 WHERE name = ? AND row_version = ?",
    META_TABLE,
)


def _mode(row: tuple[Any, ...]) -> ModeRecord:
    value, changed_at, migration, row_version = row
    return ModeRecord(
        parse_mode(value), str(row_version),
        datetime.fromisoformat(changed_at) if changed_at else None, migration,
    )  # fmt: skip


class SqliteModeStore:
    """The mode row of the records in one SQLite file."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database
        database.run_now(lambda db: db.executescript(META_SCHEMA))

    async def read_mode(self) -> ModeRecord:
        row = await self._database.run(lambda db: db.execute(_READ, (MODE_NAME,)).fetchone())
        return _mode(tuple(row)) if row else ModeRecord()

    async def write_mode(self, record: ModeRecord) -> ModeRecord:
        changed_at = record.changed_at or datetime.now(UTC)
        values = (record.mode.value, changed_at.isoformat(), record.migration)

        def work(db: sqlite3.Connection) -> ModeRecord:
            if not record.etag:
                try:
                    db.execute(_INSERT, (MODE_NAME, *values))
                except sqlite3.IntegrityError:
                    raise ConflictError("the mode row exists: someone else wrote it") from None
            else:
                try:
                    version = int(record.etag)
                except ValueError:
                    version = -1
                if not db.execute(_UPDATE, (*values, MODE_NAME, version)).rowcount:
                    raise ConflictError("the mode row changed since it was read")
            row = db.execute(_READ, (MODE_NAME,)).fetchone()
            return _mode(tuple(row))

        return await self._database.run(work)

    def __repr__(self) -> str:
        return f"SqliteModeStore({self._database.path!r})"
