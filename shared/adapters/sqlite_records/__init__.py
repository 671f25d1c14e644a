"""The records ports (``shared.records``) over one SQLite file, for local use and tests.

``SqliteRecords.open(path)`` opens the file once and gives the three ports plus the two
vault-facing DEK stores over it: ``deks`` (records; format-1 rows are what a vault rotation
rewraps) and ``keks`` (intermediate keys; a vault rotation in hierarchy mode rewraps these).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shared.adapters.sqlite_records._keks import SqliteKekStore
from shared.adapters.sqlite_records._mode import SqliteModeStore
from shared.adapters.sqlite_records._records import SqliteRecordStore
from shared.stores import SqliteDatabase, SqliteDekStore


@dataclass(frozen=True)
class SqliteRecords:
    """Every port of one SQLite file, sharing one connection."""

    database: SqliteDatabase
    records: SqliteRecordStore
    keks: SqliteKekStore
    modes: SqliteModeStore
    #: The records table as the rewrap engine sees it (format-1 rows only).
    dek_store: SqliteDekStore

    @property
    def kek_dek_store(self) -> SqliteDekStore:
        """The KEK table as the rewrap engine sees it."""
        return self.keks.dek_store

    @classmethod
    def open(cls, path: str | Path = ":memory:") -> SqliteRecords:
        database = SqliteDatabase(path)
        return cls(
            database,
            SqliteRecordStore(database),
            SqliteKekStore(database),
            SqliteModeStore(database),
            SqliteDekStore(database),
        )

    async def aclose(self) -> None:
        self.database.close()


__all__ = ["SqliteKekStore", "SqliteModeStore", "SqliteRecordStore", "SqliteRecords"]
