"""SQLite-only behaviour: two processes' stores on one file, and a lock held too long."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from devtools.seed import seed_deks
from shared.errors import TransientServiceError
from shared.stores import SqliteDekStore, WriteOutcome
from shared.stores._sqlite_schema import SCHEMA
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


def test_database_from_before_case_folding_is_migrated_on_open(tmp_path: Path) -> None:
    """A database written with the old binary-collated index opens with the NOCASE one, and
    rows it holds under another spelling of the key are found as they are."""
    path = tmp_path / "old.db"
    old_schema = SCHEMA.replace("DROP INDEX IF EXISTS deks_by_key;", "").replace(
        "deks_by_key_nocase ON deks (key_ref COLLATE NOCASE,", "deks_by_key ON deks (key_ref,"
    )
    with sqlite3.connect(path) as db:
        db.executescript(old_schema)
        db.execute(
            "INSERT INTO deks (partition, dek_id, key_ref, key_version, key_id, algorithm,"
            " wrapped, kcv, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,'','')",
            ("p", "d", "https://KV.vault.azure.net/keys/KEK", "1" * 32,
             f"https://KV.vault.azure.net/keys/KEK/{'1' * 32}", "RSA-OAEP-256", "AAAA", None),
        )  # fmt: skip
    store = SqliteDekStore(path)

    async def body() -> None:
        page = await store.scan("https://kv.vault.azure.net/keys/kek", exclude_version=None)
        assert [r.ref for r in page.records] == ["p/d"]
        await store.close()

    asyncio.run(body())
    with sqlite3.connect(path) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "deks_by_key_nocase" in names
    assert "deks_by_key" not in names
