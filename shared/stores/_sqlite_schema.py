"""The SQLite store's schema and its one conditional update, kept apart from the logic.

Wrapped keys are stored as base64 text (like the Table store) so a corrupted value is
representable and reported, not rejected by the database. ``(key_ref, partition, dek_id)``
is indexed so a scan pages by key set, never by OFFSET.

Key ids match case-insensitively (Key Vault names do): every query compares ``key_ref``,
``key_id`` and ``prev_key_id`` with ``COLLATE NOCASE``, and the index is built with that
collation so the comparison still uses it. That is the whole migration for databases written
before: opening one drops the old binary-collated index and builds this one; no row is
rewritten, and rows written under any spelling are found as they are. NOCASE folds ASCII
only, which is all a vault host or key name may hold.
"""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS deks (
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
    PRIMARY KEY (partition, dek_id)
);
DROP INDEX IF EXISTS deks_by_key;
CREATE INDEX IF NOT EXISTS deks_by_key_nocase ON deks (key_ref COLLATE NOCASE, partition, dek_id);
"""

#: Every column ``_details`` unpacks, in order; the scan and the point read share it.
SELECT_DEKS = """
SELECT partition, dek_id, key_ref, key_id, algorithm, wrapped, kcv, prev_key_id, prev_algorithm,
    prev_wrapped, prev_kcv, unreadable, sealed, row_version
FROM deks
"""

#: Replace the wrap, keeping the current one as the previous wrap, if the version still holds.
#: SQLite evaluates every right-hand side against the old row, so prev_* get the old values.
#: ``key_ref`` follows the new wrap's spelling of the key, so the row stays self-consistent.
UPDATE_WRAP = """
UPDATE deks SET
    prev_key_id = key_id, prev_algorithm = algorithm, prev_wrapped = wrapped, prev_kcv = kcv,
    key_ref = ?, key_id = ?, key_version = ?, algorithm = ?, wrapped = ?, kcv = ?,
    unreadable = NULL, updated_at = ?, row_version = row_version + 1
WHERE partition = ? AND dek_id = ? AND row_version = ?
"""
