"""SQLite DEK store: the embedded default for local runs and the CLI.

Same semantics as the Table store: the ETag is a per-row version counter, every write is
``UPDATE ... WHERE row_version = ?`` so a concurrent writer is never overwritten, and a batch
runs in one transaction with a per-item check (a conflict costs only the loser). WAL mode lets
readers (``status``) run beside a writer. sqlite3 blocks, so calls run in a worker thread
behind one lock; each is a single short statement or transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from shared.errors import (
    ConflictError,
    InvalidInputError,
    ServiceError,
    TransientServiceError,
)
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
from shared.stores._sqlite_pages import after_row, count_page, forget_page
from shared.stores._sqlite_schema import SCHEMA, SELECT_DEKS, UPDATE_WRAP

T = TypeVar("T")
#: How long a writer waits for another process's lock before SQLite reports "busy".
BUSY_TIMEOUT_SECONDS = 30.0
_KIND = "sqlite"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SqliteDekStore:
    """A DekStore in one SQLite file (``":memory:"`` for a private in-process database)."""

    def __init__(
        self, path: str | Path = ":memory:", *, busy_timeout: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self._path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self._path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    @property
    def name(self) -> str:
        return f"sqlite:{Path(self._path).name}"

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a worker thread; sqlite3 errors leave as keyward errors."""

        def locked() -> T:
            with self._lock:
                return work(self._db)

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.OperationalError as error:
            # "database is locked" after the busy timeout: another process holds the lock.
            raise TransientServiceError(f"sqlite {self.name}: {error}") from None
        except sqlite3.Error as error:
            raise ServiceError(f"sqlite {self.name}: {type(error).__name__}: {error}") from None

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
        sql = SELECT_DEKS + " WHERE key_ref = ? COLLATE NOCASE AND (partition, dek_id) > (?, ?)"
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
                    results.append(_replace_one(db, rewrap))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return results

        return await self._run(work)

    async def mark_unreadable(self, record: DekRecord, reason: str) -> WriteResult:
        partition, dek_id = split_ref(record.ref)
        sql = (
            "UPDATE deks SET unreadable = ?, updated_at = ?, row_version = row_version + 1"
            " WHERE partition = ? AND dek_id = ? AND row_version = ?"
        )
        params = (clean_reason(reason), _now(), partition, dek_id, _version_of(record.etag))

        def work(db: sqlite3.Connection) -> WriteResult:
            if db.execute(sql, params).rowcount:
                return WriteResult(record.ref, WriteOutcome.WRITTEN, new_etag=str(params[-1] + 1))
            return _missed(db, record.ref)

        return await self._run(work)

    async def count_versions(
        self,
        key_ref: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> CountPage:
        return await self._run(lambda db: count_page(db, key_ref, continuation, page_size))

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
        sql = (
            "INSERT INTO deks (partition, dek_id, key_ref, key_version, key_id, algorithm,"
            " wrapped, kcv, sealed, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        )

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
        return await self._run(lambda db: forget_page(db, previous_key_id, continuation, page_size))

    async def get(self, ref: str) -> DekDetails | None:
        """Everything stored about one DEK, or ``None``."""
        sql = SELECT_DEKS + " WHERE partition = ? AND dek_id = ?"
        row = await self._run(lambda db: db.execute(sql, split_ref(ref)).fetchone())
        return _details(row) if row else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one raw statement (tests, migrations); returns the affected row count."""
        with self._lock:
            return self._db.execute(sql, params).rowcount

    async def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SqliteDekStore({self._path!r})"


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


def _replace_one(db: sqlite3.Connection, rewrap: Rewrap) -> WriteResult:
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
    if db.execute(UPDATE_WRAP, params).rowcount:
        return WriteResult(record.ref, WriteOutcome.WRITTEN, new_etag=str(version + 1))
    return _missed(db, record.ref, rewrap)


def _missed(db: sqlite3.Connection, ref: str, rewrap: Rewrap | None = None) -> WriteResult:
    """Why a conditional update touched no row: it is gone, it changed, or (a replayed
    rewrap) it already holds exactly the wrap being written, which counts as written."""
    sql = "SELECT key_id, wrapped, row_version FROM deks WHERE partition = ? AND dek_id = ?"
    row = db.execute(sql, split_ref(ref)).fetchone()
    if row is None:
        return WriteResult(ref, WriteOutcome.NOT_FOUND, detail="no such DEK")
    if rewrap is not None and (row[0], row[1]) == (rewrap.key_id, b64_encode(rewrap.wrapped)):
        return WriteResult(ref, WriteOutcome.WRITTEN, "already written", str(row[2]))
    return WriteResult(ref, WriteOutcome.CONFLICT, detail="etag no longer matches")
