"""The migration both ways and a KEK rotation over the SQLite ports: the same jobs on a real
store (rows, ETags, the ``keks`` table and the mode row in ``keyward_meta``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared.adapters.sqlite_records import SqliteRecords
from shared.records import Envelope, EnvelopeSettings, RecordFormat, StoreMode
from shared.records._migration_state import Phase
from shared.services.migration import StoreJobs
from tests.records.memory import FakeTime, LocalVaultKeys
from tests.rewrap.fakes import KEY_REF, V1, V2, key_source

SETTINGS = EnvelopeSettings(mode_ttl_seconds=30, kek_cache_seconds=300)


async def life(path: Path) -> None:
    store = SqliteRecords.open(path)
    time = FakeTime()
    vault = LocalVaultKeys(key_source(V1, V2))

    def jobs() -> StoreJobs:
        return StoreJobs(store.records, store.keks, store.modes, vault, settings=SETTINGS,
                         owner="sqlite-test", page_size=4, now=time.now, sleep=time.sleep,
                         monotonic=time.monotonic)  # fmt: skip

    def envelope() -> Envelope:
        return Envelope(store.records, store.keks, store.modes, vault, KEY_REF,
                        settings=SETTINGS, clock=time.monotonic, wall_clock=time.now)  # fmt: skip

    async def formats() -> set[RecordFormat]:
        page = await store.records.scan_records(page_size=1000)
        assert page.continuation is None
        assert all(row.problem is None for row in page.records)
        return {row.format for row in page.records}

    async def all_open(plain: dict[tuple[str, str], bytes]) -> None:
        async with envelope() as reader:
            for (partition, record_id), data in plain.items():
                assert await reader.decrypt(partition, record_id) == data

    plain = {(f"t{i % 3}", f"r{i:02}"): f"data {i}".encode() for i in range(11)}
    async with envelope() as writer:
        for (partition, record_id), data in plain.items():
            await writer.encrypt(partition, record_id, data)
    assert await formats() == {RecordFormat.DIRECT}

    up = await jobs().migrate(StoreMode.HIERARCHY, KEY_REF)
    assert up.mode is StoreMode.HIERARCHY
    assert (await store.modes.read_mode()).mode is StoreMode.HIERARCHY
    assert await formats() == {RecordFormat.HIERARCHY}
    # Nothing left under the vault key for the engine: the format-1 view is empty.
    assert not (await store.dek_store.version_counts(KEY_REF))
    await all_open(plain)

    rotated = await jobs().rotate_keks(KEY_REF)
    assert rotated.checkpoint is not None
    assert rotated.checkpoint.phase is Phase.DONE
    assert rotated.checkpoint.tally.keks_deleted == 3
    await all_open(plain)

    down = await jobs().migrate(StoreMode.DIRECT, KEY_REF)
    assert down.mode is StoreMode.DIRECT
    assert await formats() == {RecordFormat.DIRECT}
    assert not (await store.keks.kek_partitions()).partitions
    await all_open(plain)
    await store.aclose()


def test_migration_and_kek_rotation_on_sqlite(tmp_path: Path) -> None:
    asyncio.run(life(tmp_path / "records.sqlite"))
