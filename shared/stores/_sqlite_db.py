"""One SQLite file, opened once, shared by every keyward store that lives in it.

The DEK store (``deks``), the KEK store (``keks``, the same layout) and the records' mode
(``keyward_meta``) are tables of one file, so an application's records, its KEKs and its
mode move together. ``":memory:"`` is one private database per connection, so stores that
must see each other there share one ``SqliteDatabase``. sqlite3 blocks: calls run in a
worker thread behind one lock; each is a single short statement or transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from shared.errors import ServiceError, TransientServiceError

T = TypeVar("T")
#: How long a writer waits for another process's lock before SQLite reports "busy".
BUSY_TIMEOUT_SECONDS = 30.0


class SqliteDatabase:
    """A connection to one SQLite file in WAL mode, for asyncio callers."""

    def __init__(
        self, path: str | Path = ":memory:", *, busy_timeout: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._closed = False

    @property
    def file_name(self) -> str:
        """The file's name (what store names show), ``:memory:`` for a private database."""
        return Path(self.path).name

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a worker thread; sqlite3 errors leave as keyward errors.

        Raises:
            TransientServiceError: "database is locked" after the busy timeout (another
                process holds the lock) or another operational error.
            ServiceError: any other sqlite3 error.
        """

        def locked() -> T:
            with self._lock:
                return work(self._db)

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.OperationalError as error:
            raise TransientServiceError(f"sqlite {self.file_name}: {error}") from None
        except sqlite3.Error as error:
            raise ServiceError(
                f"sqlite {self.file_name}: {type(error).__name__}: {error}"
            ) from None

    def run_now(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in this thread, under the lock (schema set-up, tests)."""
        with self._lock:
            return work(self._db)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one raw statement (tests, migrations); returns the affected row count."""
        return self.run_now(lambda db: db.execute(sql, params).rowcount)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._db.close()
                self._closed = True

    def __repr__(self) -> str:
        return f"SqliteDatabase({self.path!r})"
