"""The two Table shards the rewrap engine sees: the data table by its mode, and the KEK table.

``ModeAwareTableStore`` is the data table's shard. Once the store's mode row says
``hierarchy``, no row of it is wrapped by a vault key (the migration counted zero before it
set the mode), so ``scan``, ``count_versions`` and ``forget_previous_page`` answer an empty
final page at once: a vault rotation costs no scan of the records, only of the KEK table.
The mode row is read at most once per ``mode_ttl`` seconds; a migration waits that long
after changing the mode (the same setting), so a stale "hierarchy" is never believed while
direct rows may still exist. Every other mode delegates to ``TableDekStore``.

``KekTableShard`` is the KEK table's shard: a plain ``TableDekStore`` (KEK rows are format-1
DEK rows) whose table may not exist yet (a store that never used hierarchy mode): a missing
table reads as empty instead of failing every rotation of a direct-mode deployment.

Both say their mode (:meth:`store_mode`) for the status page, from the same cache: O(1);
the data table's also its store job's checkpoint (:meth:`store_job`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from azure.data.tables.aio import TableClient

from shared.adapters._pipeline import NO_REDIRECTS
from shared.adapters.dek_table._missing import is_missing_table
from shared.adapters.dek_table._mode import TableModeStore
from shared.adapters.dek_table._store import TableDekStore
from shared.errors import ServiceError
from shared.records import ModeRecord, StoreMode
from shared.stores import (
    DEFAULT_COUNT_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    CountPage,
    DekRecord,
    ForgetPage,
    Rewrap,
    ScanPage,
    VersionCount,
    WriteResult,
    all_version_counts,
    forget_all_previous,
)
from shared.stores._model import DekDetails, NewDek

#: What the KEK shard reports as its mode on the status page.
KEK_SHARD_MODE = "intermediate-keys"

_Page = TypeVar("_Page", ScanPage, CountPage, ForgetPage)


class _TableShard:
    """A ``TableDekStore`` seen through one rule: the three reads that walk the table (scan,
    count, forget-previous) go through :meth:`_read`, which may answer an empty final page
    instead; every write and point read is the store's own."""

    def __init__(self, store: TableDekStore) -> None:
        self._store = store

    @property
    def name(self) -> str:
        return self._store.name

    async def _read(self, read: Callable[[], Awaitable[_Page]], empty: _Page) -> _Page:
        raise NotImplementedError

    async def scan(
        self,
        key_ref: str,
        *,
        exclude_version: str | None,
        continuation: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> ScanPage:
        return await self._read(
            lambda: self._store.scan(
                key_ref, exclude_version=exclude_version, continuation=continuation,
                page_size=page_size,
            ),
            ScanPage([], None),
        )  # fmt: skip

    async def count_versions(
        self,
        key_ref: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> CountPage:
        return await self._read(
            lambda: self._store.count_versions(
                key_ref, continuation=continuation, page_size=page_size
            ),
            CountPage([], None),
        )

    async def forget_previous_page(
        self,
        previous_key_id: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> ForgetPage:
        return await self._read(
            lambda: self._store.forget_previous_page(
                previous_key_id, continuation=continuation, page_size=page_size
            ),
            ForgetPage(0, None),
        )

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        return await all_version_counts(self, key_ref)

    async def forget_previous(self, previous_key_id: str) -> int:
        return await forget_all_previous(self, previous_key_id)

    async def replace_batch(self, rewraps: Sequence[Rewrap]) -> Sequence[WriteResult]:
        return await self._store.replace_batch(rewraps)

    async def mark_unreadable(self, record: DekRecord, reason: str) -> WriteResult:
        return await self._store.mark_unreadable(record, reason)

    async def insert_batch(self, deks: Sequence[NewDek]) -> None:
        await self._store.insert_batch(deks)

    async def get(self, ref: str) -> DekDetails | None:
        return await self._store.get(ref)

    async def create_table(self) -> None:
        await self._store.create_table()

    async def close(self) -> None:
        await self._store.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._store!r})"


class ModeAwareTableStore(_TableShard):
    """The data table's ``DekStore``: empty to the rewrap engine when in hierarchy mode."""

    def __init__(
        self,
        store: TableDekStore,
        modes: TableModeStore,
        *,
        mode_ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(store)
        self._modes = modes
        self._ttl, self._monotonic = mode_ttl, monotonic
        self._mode: ModeRecord | None = None
        self._read_at = 0.0

    @classmethod
    def from_connection_string(
        cls, connection_string: str, table_name: str, *, mode_ttl: float
    ) -> ModeAwareTableStore:
        """The view over ``table_name`` (one client for the rows and the mode row)."""
        table = TableClient.from_connection_string(connection_string, table_name, **NO_REDIRECTS)
        return cls(TableDekStore(table), TableModeStore(table), mode_ttl=mode_ttl)

    async def store_mode(self) -> str:
        """The mode row's mode (cached for ``mode_ttl`` seconds)."""
        return (await self._current()).mode.value

    async def store_job(self) -> str | None:
        """The mode row's store-job checkpoint (opaque JSON), from the same cache."""
        return (await self._current()).migration

    async def _current(self) -> ModeRecord:
        now = self._monotonic()
        if self._mode is None or now - self._read_at >= self._ttl:
            self._mode, self._read_at = await self._modes.read_mode(), now
        return self._mode

    async def _read(self, read: Callable[[], Awaitable[_Page]], empty: _Page) -> _Page:
        if (await self._current()).mode is StoreMode.HIERARCHY:
            return empty
        return await read()


class KekTableShard(_TableShard):
    """The KEK table's ``DekStore``: a ``TableDekStore`` whose missing table reads as empty."""

    async def store_mode(self) -> str:
        return KEK_SHARD_MODE

    async def _read(self, read: Callable[[], Awaitable[_Page]], empty: _Page) -> _Page:
        try:
            return await read()
        except ServiceError as error:
            if not is_missing_table(error):
                raise
            return empty
