"""A :class:`JobStore` in a SQLite file (stdlib ``sqlite3``): the CLI's and local runs' default.

The same file holds the CLI's retired-version record (:class:`RetiredVersions`): a version
retired with ``keyward retire`` is refused by every later ``keyward rewrap`` on that file.

Compare-and-set is one ``UPDATE ... WHERE etag = ?`` inside SQLite's own locking, so two
processes sharing the file coordinate as two workers sharing a Table would. Calls are
synchronous and short (one row, a few per second): running them on the event loop costs less
than a thread hop.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from pathlib import Path

from shared.errors import ConflictError
from shared.rewrap._job_state import JobState
from shared.rewrap._job_store import JobPage, StoredJob, check_job_page
from shared.rewrap._retired import fold_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keyward_rewrap_jobs (
    job_id TEXT PRIMARY KEY,
    key_ref TEXT NOT NULL,
    etag TEXT NOT NULL,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keyward_retired_versions (
    key_fold TEXT NOT NULL,
    version TEXT NOT NULL,
    attempt TEXT NOT NULL,
    PRIMARY KEY (key_fold, version)
);
"""
#: Seconds a writer waits for another process's lock before giving up.
_BUSY_TIMEOUT_SECONDS = 10.0


class SqliteJobStore:
    """Job states in table ``keyward_rewrap_jobs`` of a SQLite database file."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(
            str(path), timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.executescript(_SCHEMA)

    async def get(self, job_id: str) -> StoredJob | None:
        row = self._connection.execute(
            "SELECT etag, state FROM keyward_rewrap_jobs WHERE job_id = ?", (job_id,)
        ).fetchone()
        if row is None:
            return None
        return StoredJob(JobState.from_dict(json.loads(row[1])), str(row[0]))

    async def put(self, state: JobState, *, expected_etag: str | None) -> str:
        """See :meth:`JobStore.put`.

        Raises:
            ConflictError: the ETag condition does not hold.
        """
        etag = uuid.uuid4().hex
        text = json.dumps(state.to_dict(), sort_keys=True)
        if expected_etag is None:
            try:
                self._connection.execute(
                    "INSERT INTO keyward_rewrap_jobs (job_id, key_ref, etag, created_at, state)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (state.job_id, state.key_ref, etag, state.created_at.isoformat(), text),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(f"job {state.job_id} already exists", status=409) from None
            return etag
        cursor = self._connection.execute(
            "UPDATE keyward_rewrap_jobs SET etag = ?, state = ? WHERE job_id = ? AND etag = ?",
            (etag, text, state.job_id, expected_etag),
        )
        if cursor.rowcount != 1:
            raise ConflictError(f"job {state.job_id} changed since it was read", status=412)
        return etag

    async def list_jobs(self, key_ref: str | None = None) -> Sequence[JobState]:
        query = "SELECT state FROM keyward_rewrap_jobs"
        parameters: tuple[str, ...] = ()
        if key_ref is not None:
            query += " WHERE lower(key_ref) = ?"
            parameters = (key_ref.lower(),)
        rows = self._connection.execute(query + " ORDER BY created_at DESC", parameters)
        return [JobState.from_dict(json.loads(row[0])) for row in rows.fetchall()]

    async def list_page(self, *, limit: int, continuation: str | None = None) -> JobPage:
        check_job_page(limit, continuation)
        rows = self._connection.execute(
            "SELECT job_id, state FROM keyward_rewrap_jobs WHERE job_id > ?"
            " ORDER BY job_id LIMIT ?",
            (continuation or "", limit + 1),
        ).fetchall()
        states = [JobState.from_dict(json.loads(row[1])) for row in rows[:limit]]
        return JobPage(states, str(rows[limit - 1][0]) if len(rows) > limit else None)

    async def retired_versions(self, key_ref: str) -> frozenset[str]:
        rows = self._connection.execute(
            "SELECT version FROM keyward_retired_versions WHERE key_fold = ?", (fold_key(key_ref),)
        )
        return frozenset(str(row[0]) for row in rows.fetchall())

    async def record_retired(self, key_ref: str, version: str, *, attempt: str) -> None:
        self._connection.execute(
            "INSERT INTO keyward_retired_versions (key_fold, version, attempt) VALUES (?, ?, ?)"
            " ON CONFLICT (key_fold, version) DO UPDATE SET attempt = excluded.attempt",
            (fold_key(key_ref), version.lower(), attempt),
        )

    async def withdraw_retired(self, key_ref: str, version: str, *, attempt: str) -> bool:
        cursor = self._connection.execute(
            "DELETE FROM keyward_retired_versions WHERE key_fold = ? AND version = ?"
            " AND attempt = ?",
            (fold_key(key_ref), version.lower(), attempt),
        )
        return cursor.rowcount == 1

    async def close(self) -> None:
        self._connection.close()
