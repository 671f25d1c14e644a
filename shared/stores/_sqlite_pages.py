"""The SQLite store's counting and forgetting, one page of rows at a time.

Both walk the key's rows in ``(partition, dek_id)`` order through the key's index (never
OFFSET), so a page's continuation is the last row it read and pages are disjoint: counting
resumes without counting a row twice, and forgetting resumes where it stopped (a dropped
previous wrap does not move its row). Run in the store's worker thread, under its lock.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from shared.errors import InvalidInputError
from shared.stores._common import (
    VersionTally,
    check_page_size,
    decode_continuation,
    encode_continuation,
    normalize_key_ref,
    split_key_id,
)
from shared.stores._protocol import CountPage, ForgetPage
from shared.stores._sqlite_schema import RECORD_TABLE, check_table

_KIND = "sqlite"
_PAGE = (
    "SELECT partition, dek_id, key_id, prev_key_id, unreadable IS NOT NULL FROM {table}"
    " WHERE key_ref = ? COLLATE NOCASE AND (partition, dek_id) > (?, ?)"
    " ORDER BY partition, dek_id LIMIT ?"
)
_FORGET = (
    "UPDATE {table} SET prev_key_id = NULL, prev_algorithm = NULL, prev_wrapped = NULL,"
    " prev_kcv = NULL, updated_at = ?, row_version = row_version + 1"
    " WHERE partition = ? AND dek_id = ? AND prev_key_id = ? COLLATE NOCASE"
    " AND unreadable IS NULL"
)


def after_row(continuation: str | None) -> list[str]:
    """The ``(partition, dek_id)`` a page starts after (``["", ""]``: the first page).

    Raises:
        InvalidInputError: not a continuation a SQLite store issued.
    """
    after = decode_continuation(_KIND, continuation) if continuation else ["", ""]
    if not (isinstance(after, list) and len(after) == 2 and all(isinstance(a, str) for a in after)):
        raise InvalidInputError("continuation is not one keyward issued")
    return after


def _page(db: sqlite3.Connection, key_ref: str, continuation: str | None,
          page_size: int, table: str) -> tuple[list[Any], str | None]:  # fmt: skip
    limit = check_page_size(page_size)
    params = (normalize_key_ref(key_ref), *after_row(continuation), limit + 1)
    rows = db.execute(_PAGE.format(table=check_table(table)), params).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    token = encode_continuation(_KIND, [rows[-1][0], rows[-1][1]]) if more else None
    return rows, token


def count_page(
    db: sqlite3.Connection,
    key_ref: str,
    continuation: str | None,
    page_size: int,
    table: str = RECORD_TABLE,
) -> CountPage:
    """Counts of one page of the key's rows (see ``DekStore.count_versions``)."""
    rows, token = _page(db, key_ref, continuation, page_size, table)
    tally = VersionTally(key_ref)
    for _partition, _dek, key_id, previous, unreadable in rows:
        tally.add(key_id, previous, bool(unreadable))
    return CountPage(tally.result(), token)


def forget_page(
    db: sqlite3.Connection,
    previous_key_id: str,
    continuation: str | None,
    page_size: int,
    table: str = RECORD_TABLE,
) -> ForgetPage:
    """Drop previous wraps under ``previous_key_id`` in one page of the key's rows, in one
    transaction; unreadable rows keep theirs (it may be the only wrap that opens them).

    Raises:
        InvalidInputError: ``previous_key_id`` is not a versioned key id.
    """
    split = split_key_id(previous_key_id)
    if split is None:
        raise InvalidInputError(f"{previous_key_id!r} is not a versioned key id")
    rows, token = _page(db, split[0], continuation, page_size, table)
    forget = _FORGET.format(table=check_table(table))
    wanted, now = previous_key_id.lower(), datetime.now(UTC).isoformat()
    dropped = 0
    db.execute("BEGIN IMMEDIATE")
    try:
        for partition, dek_id, _key_id, previous, unreadable in rows:
            if unreadable or (previous or "").lower() != wanted:
                continue
            dropped += db.execute(forget, (now, partition, dek_id, previous_key_id)).rowcount
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return ForgetPage(dropped, token)
