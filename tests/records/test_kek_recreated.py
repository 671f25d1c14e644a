"""A KEK deleted and created again under the first version id (a store migrated to direct
mode and back) must never be confused with the one before: a writer that cached the old
one would wrap new DEKs that nobody can open once its cache expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.adapters.sqlite_records import SqliteRecords
from shared.crypto import DataKey
from shared.records import (
    FIRST_KEK_VERSION,
    EnvelopeStats,
    KekRing,
    KeyCache,
    ModeRecord,
    StoreMode,
)
from shared.stores import NewDek
from tests.records.conftest import EnvelopeFactory, FakeClock
from tests.records.vault import KEY_REF, LocalVaultKeys

T0 = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)


async def _round_trip_to_direct_and_back(sqlite: SqliteRecords) -> None:
    """What a migration there and back leaves: no KEK rows, no records, a mode row that
    changed twice (raw deletes stand for the converted and deleted rows)."""
    sqlite.database.execute("DELETE FROM keks")
    sqlite.database.execute("DELETE FROM deks")
    row = await sqlite.modes.read_mode()
    row = await sqlite.modes.write_mode(ModeRecord(StoreMode.DIRECT, row.etag, T0))
    await sqlite.modes.write_mode(
        ModeRecord(StoreMode.HIERARCHY, row.etag, T0 + timedelta(minutes=2))
    )


async def test_a_writer_never_wraps_under_a_kek_from_before_a_round_trip(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords, clock: FakeClock
) -> None:
    writer = make_envelope(StoreMode.HIERARCHY, kek_cache_seconds=300, mode_ttl_seconds=30)
    await writer.encrypt("p", "before", b"1")
    await _round_trip_to_direct_and_back(sqlite)
    other = make_envelope(StoreMode.HIERARCHY)
    await other.encrypt("p", "after", b"2")  # a new first KEK, another key
    clock.advance(30)  # the writer's mode expires; its KEK (300 s) has not
    await writer.encrypt("p", "late", b"3")
    reader = make_envelope(StoreMode.HIERARCHY)
    assert await reader.decrypt("p", "late") == b"3"
    assert await reader.decrypt("p", "after") == b"2"


async def test_a_reader_with_the_old_kek_cached_reads_the_new_records(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    """Even without noticing the mode change (its mode is still cached), a reader whose
    cached KEK fails the local unwrap reads the KEK row again, once."""
    reader = make_envelope(StoreMode.HIERARCHY, mode_ttl_seconds=3600)
    await reader.encrypt("p", "before", b"1")
    await _round_trip_to_direct_and_back(sqlite)
    await make_envelope(StoreMode.HIERARCHY).encrypt("p", "after", b"2")
    assert await reader.decrypt("p", "after") == b"2"
    assert reader.stats.vault_unwraps == 1


async def test_current_checks_the_cached_key_against_the_row(
    sqlite: SqliteRecords, vault: LocalVaultKeys, clock: FakeClock
) -> None:
    cache = KeyCache(10, clock=clock)
    stale = DataKey.generate()
    cache.put(("kek", sqlite.keks.name, "p", FIRST_KEK_VERSION), stale, ttl=300)
    # No wall clock: the ring's first KEK has a fixed version id; rotations date theirs.
    ring = KekRing(sqlite.keks, vault, KEY_REF, cache, EnvelopeStats(), kek_seconds=300,
                   clock=clock)  # fmt: skip
    real = DataKey.generate()
    wrapper = vault.versions[0]
    await sqlite.keks.insert_kek(
        NewDek(
            "p", FIRST_KEK_VERSION, wrapper.key_id, wrapper.algorithm, wrapper.wrap(real), real.kcv
        )
    )
    opened = await ring.current("p")
    assert opened.key.matches(real)
    got = cache.get(("kek", sqlite.keks.name, "p", FIRST_KEK_VERSION))
    assert got is not None
    assert got.matches(real)
