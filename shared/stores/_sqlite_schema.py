"""The SQLite store's schema and its one conditional update, kept apart from the logic.

Wrapped keys are stored as base64 text (like the Table store) so a corrupted value is
representable and reported, not rejected by the database. ``(key_ref, partition, dek_id)``
is indexed so a scan pages by key set, never by OFFSET.
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
CREATE INDEX IF NOT EXISTS deks_by_key ON deks (key_ref, partition, dek_id);
"""

#: Every column ``_details`` unpacks, in order; the scan and the point read share it.
SELECT_DEKS = """
SELECT partition, dek_id, key_ref, key_id, algorithm, wrapped, kcv, prev_key_id, prev_algorithm,
    prev_wrapped, prev_kcv, unreadable, sealed, row_version
FROM deks
"""

#: Replace the wrap, keeping the current one as the previous wrap, if the version still holds.
#: SQLite evaluates every right-hand side against the old row, so prev_* get the old values.
UPDATE_WRAP = """
UPDATE deks SET
    prev_key_id = key_id, prev_algorithm = algorithm, prev_wrapped = wrapped, prev_kcv = kcv,
    key_id = ?, key_version = ?, algorithm = ?, wrapped = ?, kcv = ?,
    unreadable = NULL, updated_at = ?, row_version = row_version + 1
WHERE partition = ? AND dek_id = ? AND row_version = ?
"""
