"""SQLite DEK store: the embedded default for local runs and the CLI.

Same semantics as the Table store: the ETag is a per-row version counter, every write is
``UPDATE ... WHERE row_version = ?`` so a concurrent writer is never overwritten, and a batch
runs in one transaction with a per-item check (a conflict costs only the loser). WAL mode lets
readers (``status``) run beside a writer. sqlite3 blocks, so calls run in a worker thread
behind one lock; each is a single short statement or transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from shared.errors import ConflictError, InvalidInputError
from shared.stores._common import (
    StoredWrap,
    b64_encode,
    check_page_size,
    clean_reason,
    encode_continuation,
    normalize_key_ref,
    split_key_id,
    to_record,
)
from shared.stores._model import DekDetails, NewDek, rewrap_refusal, split_ref
from shared.stores._paging import all_version_counts, forget_all_previous
from shared.stores._protocol import (
    DEFAULT_COUNT_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    CountPage,
    DekRecord,
    ForgetPage,
    Rewrap,
    ScanPage,
    VersionCount,
    WriteOutcome,
    WriteResult,
)
from shared.stores._sqlite_db import BUSY_TIMEOUT_SECONDS, SqliteDatabase
from shared.stores._sqlite_pages import after_row, count_page, forget_page
from shared.stores._sqlite_schema import (
    CURRENT_WRAP,
    INSERT_DEKS,
    MARK_UNREADABLE,
    RECORD_TABLE,
    check_table,
    ensure_table,
    for_table,
    select_deks,
    update_wrap,
)

T = TypeVar("T")
_KIND = "sqlite"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def store_name(database: SqliteDatabase, table: str) -> str:
    """A store's name: ``sqlite:FILE`` for the records table, ``sqlite:FILE:TABLE`` else."""
    base = f"sqlite:{database.file_name}"
    return base if table == RECORD_TABLE else f"{base}:{table}"


class SqliteDekStore:
    """A DekStore in one SQLite file (``":memory:"`` for a private in-process database).

    ``table`` picks the DEK-layout table: ``deks`` (the records, the default) or ``keks``
    (intermediate keys, the vault-facing side of key hierarchy mode). ``path`` may be an
    open :class:`SqliteDatabase` shared with the records adapters; the store then leaves
    closing it to its owner.
    """

    def __init__(
        self,
        path: str | Path | SqliteDatabase = ":memory:",
        *,
        busy_timeout: float = BUSY_TIMEOUT_SECONDS,
        table: str = RECORD_TABLE,
    ) -> None:
        self._table = check_table(table)
        self._owns_database = not isinstance(path, SqliteDatabase)
        self._database = (
            path if isinstance(path, SqliteDatabase)
            else SqliteDatabase(path, busy_timeout=busy_timeout)
        )  # fmt: skip
        self._path = self._database.path
        self._database.run_now(lambda db: ensure_table(db, self._table))
        self._select = select_deks(self._table)
        self._update = update_wrap(self._table)

    @property
    def name(self) -> str:
        return store_name(self._database, self._table)

    @property
    def database(self) -> SqliteDatabase:
        return self._database

    @property
    def table(self) -> str:
        return self._table

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a worker thread; sqlite3 errors leave as keyward errors."""
        return await self._database.run(work)

    async def scan(
        self,
        key_ref: str,
        *,
        exclude_version: str | None,
        continuation: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> ScanPage:
        limit = check_page_size(page_size)
        after = after_row(continuation)
        sql = self._select + " WHERE key_ref = ? COLLATE NOCASE AND (partition, dek_id) > (?, ?)"
        params: list[Any] = [normalize_key_ref(key_ref), *after]
        if exclude_version:
            sql += " AND key_version != ?"
            params.append(exclude_version.lower())
        sql += " ORDER BY partition, dek_id LIMIT ?"
        params.append(limit + 1)
        rows = await self._run(lambda db: db.execute(sql, params).fetchall())
        more = len(rows) > limit
        rows = rows[:limit]
        records = [_details(row).record for row in rows]
        token = encode_continuation(_KIND, [rows[-1][0], rows[-1][1]]) if more else None
        return ScanPage(records, token)

    async def replace_batch(self, rewraps: Sequence[Rewrap]) -> Sequence[WriteResult]:
        def work(db: sqlite3.Connection) -> list[WriteResult]:
            results = []
            db.execute("BEGIN IMMEDIATE")
            try:
                for rewrap in rewraps:
                    results.append(_replace_one(db, rewrap, self._table, self._update))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return results

        return await self._run(work)

    async def mark_unreadable(self, record: DekRecord, reason: str) -> WriteResult:
        partition, dek_id = split_ref(record.ref)
        sql = for_table(MARK_UNREADABLE, self._table)
        params = (clean_reason(reason), _now(), partition, dek_id, _version_of(record.etag))

        def work(db: sqlite3.Connection) -> WriteResult:
            if db.execute(sql, params).rowcount:
                return WriteResult(record.ref, WriteOutcome.WRITTEN, new_etag=str(params[-1] + 1))
            return _missed(db, record.ref, self._table)

        return await self._run(work)

    async def count_versions(
        self,
        key_ref: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> CountPage:
        return await self._run(
            lambda db: count_page(db, key_ref, continuation, page_size, self._table)
        )

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        return await all_version_counts(self, key_ref)

    async def insert_batch(self, deks: Sequence[NewDek]) -> None:
        """Insert new DEKs in one transaction.

        Raises:
            InvalidInputError: a key id is not versioned.
            ConflictError: a DEK with the same partition and id exists (nothing is inserted).
        """
        now = _now()
        rows = [_insert_row(dek, now) for dek in deks]
        sql = for_table(INSERT_DEKS, self._table)

        def work(db: sqlite3.Connection) -> None:
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(sql, rows)
                db.execute("COMMIT")
            except sqlite3.IntegrityError:
                db.execute("ROLLBACK")
                raise ConflictError("a DEK with that partition and id already exists") from None

        await self._run(work)

    async def forget_previous(self, previous_key_id: str) -> int:
        """Drop the previous wraps made under ``previous_key_id`` (that version is being
        retired); returns how many. DEKs marked unreadable keep theirs: it may be the only
        wrap that still opens them.

        Raises:
            InvalidInputError: ``previous_key_id`` is not a versioned key id.
        """
        return await forget_all_previous(self, previous_key_id)

    async def forget_previous_page(
        self,
        previous_key_id: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> ForgetPage:
        return await self._run(
            lambda db: forget_page(db, previous_key_id, continuation, page_size, self._table)
        )

    async def get(self, ref: str) -> DekDetails | None:
        """Everything stored about one DEK, or ``None``."""
        sql = self._select + " WHERE partition = ? AND dek_id = ?"
        row = await self._run(lambda db: db.execute(sql, split_ref(ref)).fetchone())
        return _details(row) if row else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one raw statement (tests, migrations); returns the affected row count."""
        return self._database.execute(sql, params)

    async def close(self) -> None:
        if self._owns_database:
            self._database.close()

    def __repr__(self) -> str:
        table = "" if self._table == RECORD_TABLE else f", table={self._table!r}"
        return f"SqliteDekStore({self._path!r}{table})"


def _version_of(etag: str) -> int:
    try:
        return int(etag)
    except ValueError:
        return -1


def _require_versioned(key_id: str) -> tuple[str, str]:
    split = split_key_id(key_id)
    if split is None:
        raise InvalidInputError(f"{key_id!r} is not a versioned key id")
    return split


def _insert_row(dek: NewDek, now: str) -> tuple[Any, ...]:
    split = _require_versioned(dek.key_id)
    return (
        dek.partition, dek.dek_id, split[0], split[1], dek.key_id, dek.algorithm.value,
        b64_encode(dek.wrapped), dek.kcv, dek.sealed, now, now,
    )  # fmt: skip


def _details(row: Sequence[Any]) -> DekDetails:
    (partition, dek_id, key_ref, key_id, algorithm, wrapped, kcv, prev_key_id, prev_algorithm,
     prev_wrapped, prev_kcv, unreadable, sealed, row_version) = row  # fmt: skip
    stored = StoredWrap(
        ref=f"{partition}/{dek_id}",
        partition=partition,
        etag=str(row_version),
        key_ref=key_ref,
        key_id=key_id,
        algorithm=algorithm,
        wrapped=wrapped,
        kcv=kcv,
        previous_key_id=prev_key_id,
    )
    previous = None
    if prev_wrapped is not None:
        previous = to_record(
            StoredWrap("", "", "", key_ref, prev_key_id, prev_algorithm, prev_wrapped, None)
        )
    return DekDetails(
        record=to_record(stored),
        previous_algorithm=prev_algorithm,
        previous_wrapped=previous.wrapped if previous else None,
        previous_kcv=prev_kcv,
        unreadable=unreadable,
        sealed=sealed,
    )


def _replace_one(db: sqlite3.Connection, rewrap: Rewrap, table: str, update: str) -> WriteResult:
    record = rewrap.record
    refusal = rewrap_refusal(rewrap)
    split = split_key_id(rewrap.key_id)
    if refusal is not None or split is None:
        return WriteResult(record.ref, WriteOutcome.FAILED, detail=refusal or "bad key id")
    partition, dek_id = split_ref(record.ref)
    version = _version_of(record.etag)
    params = (
        split[0], rewrap.key_id, split[1], rewrap.algorithm.value, b64_encode(rewrap.wrapped),
        rewrap.kcv, _now(), partition, dek_id, version,
    )  # fmt: skip
    if db.execute(update, params).rowcount:
        return WriteResult(record.ref, WriteOutcome.WRITTEN, new_etag=str(version + 1))
    return _missed(db, record.ref, table, rewrap)


def _missed(
    db: sqlite3.Connection, ref: str, table: str, rewrap: Rewrap | None = None
) -> WriteResult:
    """Why a conditional update touched no row: it is gone, it changed, or (a replayed
    rewrap) it already holds exactly the wrap being written, which counts as written."""
    sql = for_table(CURRENT_WRAP, table)
    row = db.execute(sql, split_ref(ref)).fetchone()
    if row is None:
        return WriteResult(ref, WriteOutcome.NOT_FOUND, detail="no such DEK")
    if rewrap is not None and (row[0], row[1]) == (rewrap.key_id, b64_encode(rewrap.wrapped)):
        return WriteResult(ref, WriteOutcome.WRITTEN, "already written", str(row[2]))
    return WriteResult(ref, WriteOutcome.CONFLICT, detail="etag no longer matches")
