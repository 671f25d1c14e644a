"""The SQLite stores' schema and their one conditional update, kept apart from the logic.

Wrapped keys are stored as base64 text (like the Table store) so a corrupted value is
representable and reported, not rejected by the database. ``(key_ref, partition, dek_id)``
is indexed so a scan pages by key set, never by OFFSET.

Key ids match case-insensitively (Key Vault names do): every query compares ``key_ref``,
``key_id`` and ``prev_key_id`` with ``COLLATE NOCASE``, and the index is built with that
collation so the comparison still uses it. That is the whole migration for databases written
before: opening one drops the old binary-collated index and builds this one; no row is
rewritten, and rows written under any spelling are found as they are. NOCASE folds ASCII
only, which is all a vault host or key name may hold.

Record formats (``docs/record-format.md``): ``format`` (NULL = 1) and ``kek_version`` are
added to a table on open when missing (``ALTER TABLE ... ADD COLUMN``, idempotent), so old
files read as format 1 unchanged. A format-2 row stores :data:`NO_KEY` (the empty string)
in the NOT NULL ``key_ref``/``key_version``/``key_id`` columns: no vault key ref is empty,
so the key scans and counts, which filter on ``key_ref``, never see a format-2 row.

The same layout serves the KEK table (``keks``): ``SqliteDekStore(path, table="keks")`` is
the vault-facing DEK store of intermediate keys. ``keyward_meta`` holds the store's mode.
"""

from __future__ import annotations

import re
import sqlite3

from shared.errors import InvalidInputError

#: The records (application DEKs) table, and the intermediate keys table of the same layout.
RECORD_TABLE = "deks"
KEK_TABLE = "keks"
#: The mode row's table (one row per name; the mode's name is ``"mode"``).
META_TABLE = "keyward_meta"
MODE_NAME = "mode"
#: Columns the record formats added, and their declarations.
FORMAT_COLUMN = "format"
KEK_VERSION_COLUMN = "kek_version"
_ADDED_COLUMNS = ((FORMAT_COLUMN, "INTEGER"), (KEK_VERSION_COLUMN, "TEXT"))
#: What a format-2 row holds in the NOT NULL vault key columns (never a key ref).
NO_KEY = ""
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

_TEMPLATE = """
CREATE TABLE IF NOT EXISTS {table} (
    partition     TEXT NOT NULL,
    dek_id        TEXT NOT NULL,
    key_ref       TEXT NOT NULL,
    key_version   TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    algorithm     TEXT NOT NULL,
    wrapped       TEXT NOT NULL,
    kcv           TEXT,
    prev_key_id   TEXT,
    prev_algorithm TEXT,
    prev_wrapped  TEXT,
    prev_kcv      TEXT,
    unreadable    TEXT,
    sealed        BLOB,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    row_version   INTEGER NOT NULL DEFAULT 1,
    format        INTEGER,
    kek_version   TEXT,
    PRIMARY KEY (partition, dek_id)
);
DROP INDEX IF EXISTS {table}_by_key;
CREATE INDEX IF NOT EXISTS {table}_by_key_nocase
    ON {table} (key_ref COLLATE NOCASE, partition, dek_id);
"""

META_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {META_TABLE} (
    name          TEXT NOT NULL PRIMARY KEY,
    value         TEXT NOT NULL,
    changed_at    TEXT,
    migration     TEXT,
    row_version   INTEGER NOT NULL DEFAULT 1
);
"""


def check_table(table: str) -> str:
    """``table`` if it is a plain lower-case identifier (it is spliced into SQL).

    Raises:
        InvalidInputError: anything else.
    """
    if not _TABLE_NAME.match(table):
        raise InvalidInputError(f"{table!r} is not a table name keyward uses")
    return table


def schema(table: str = RECORD_TABLE) -> str:
    """The DDL of a DEK-layout table (idempotent)."""
    return _TEMPLATE.format(table=check_table(table))


#: The records table's DDL (kept for the tests that rebuild an old database from it).
SCHEMA = schema(RECORD_TABLE)


def ensure_table(db: sqlite3.Connection, table: str) -> None:
    """Create ``table`` if missing, and add the format columns to a table from before them."""
    db.executescript(schema(table))
    have = {row[1] for row in db.execute(f"PRAGMA table_info({check_table(table)})")}
    for column, declaration in _ADDED_COLUMNS:
        if column not in have:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def for_table(template: str, table: str) -> str:
    """``template`` with ``{table}`` replaced by a checked table name (never caller text)."""
    return template.format(table=check_table(table))


_SELECT_TEMPLATE = """
SELECT partition, dek_id, key_ref, key_id, algorithm, wrapped, kcv, prev_key_id, prev_algorithm,
    prev_wrapped, prev_kcv, unreadable, sealed, row_version
FROM {table}
"""

#: Replace the wrap, keeping the current one as the previous wrap, if the version still
#: holds (and the row is format 1: a format-2 row is never the target of a vault rewrap).
#: SQLite evaluates every right-hand side against the old row, so prev_* get the old values.
#: ``key_ref`` follows the new wrap's spelling of the key, so the row stays self-consistent.
_UPDATE_TEMPLATE = """
UPDATE {table} SET
    prev_key_id = key_id, prev_algorithm = algorithm, prev_wrapped = wrapped, prev_kcv = kcv,
    key_ref = ?, key_id = ?, key_version = ?, algorithm = ?, wrapped = ?, kcv = ?,
    unreadable = NULL, updated_at = ?, row_version = row_version + 1
WHERE partition = ? AND dek_id = ? AND row_version = ? AND (format IS NULL OR format = 1)
"""
MARK_UNREADABLE = (
    "UPDATE {table} SET unreadable = ?, updated_at = ?, row_version = row_version + 1"
    " WHERE partition = ? AND dek_id = ? AND row_version = ?"
)
INSERT_DEKS = (
    "INSERT INTO {table} (partition, dek_id, key_ref, key_version, key_id, algorithm,"
    " wrapped, kcv, sealed, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
CURRENT_WRAP = "SELECT key_id, wrapped, row_version FROM {table} WHERE partition = ? AND dek_id = ?"


def select_deks(table: str = RECORD_TABLE) -> str:
    """Every column ``_details`` unpacks, in order; the scan and the point read share it."""
    return for_table(_SELECT_TEMPLATE, table)


def update_wrap(table: str = RECORD_TABLE) -> str:
    """The conditional rewrap update of ``table``."""
    return for_table(_UPDATE_TEMPLATE, table)


SELECT_DEKS = select_deks(RECORD_TABLE)
UPDATE_WRAP = update_wrap(RECORD_TABLE)
