"""SQLite-only behaviour: two processes' stores on one file, and a lock held too long."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from devtools.seed import seed_deks
from shared.errors import TransientServiceError
from shared.stores import SqliteDekStore, WriteOutcome
from tests.stores.conftest import Keys
from tests.stores.test_conformance import rewrap_to, scan_all


def test_second_store_on_the_same_file_loses_the_race(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "deks.db"

    async def main() -> None:
        first, second = SqliteDekStore(path), SqliteDekStore(path)
        try:
            await seed_deks(first, keys.v1, 4)
            records = await scan_all(second)
            [written] = await first.replace_batch([rewrap_to(records[0], keys, keys.v2)])
            assert written.outcome is WriteOutcome.WRITTEN
            results = await second.replace_batch([rewrap_to(r, keys, keys.v3) for r in records])
            assert [r.outcome for r in results] == [WriteOutcome.CONFLICT] + [
                WriteOutcome.WRITTEN
            ] * 3
            versions = {r.ref: r.key_id for r in await scan_all(first)}
            assert versions[records[0].ref] == keys.v2.key_id
            assert {versions[r.ref] for r in records[1:]} == {keys.v3.key_id}
        finally:
            await first.close()
            await second.close()

    asyncio.run(main())


def test_lock_held_elsewhere_is_a_transient_error(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "deks.db"

    async def main() -> None:
        store = SqliteDekStore(path, busy_timeout=0.05)
        await seed_deks(store, keys.v1, 1)
        records = await scan_all(store)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(TransientServiceError, match="locked"):
                await store.replace_batch([rewrap_to(records[0], keys, keys.v2)])
        finally:
            other.execute("ROLLBACK")
            other.close()
            await store.close()

    asyncio.run(main())
