"""The envelope end to end, offline: SQLite ports and a fake of keyward's VaultKeys port."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from shared.adapters.sqlite_records import SqliteRecords
from shared.crypto import DataKey, WrapAlgorithm, seal
from shared.errors import (
    ConfigurationError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    KeyDisabledError,
    UnsupportedAlgorithmError,
)
from shared.records import (
    FIRST_KEK_VERSION,
    Envelope,
    ModeRecord,
    RecordFormat,
    RecordNotFoundError,
    RecordWrite,
    StoreMode,
)
from tests.records.conftest import EnvelopeFactory, FakeClock
from tests.records.vault import LocalVaultKeys, wrap_as

DIRECT, HIERARCHY = StoreMode.DIRECT, StoreMode.HIERARCHY


async def test_direct_round_trip_wraps_under_the_newest_vault_version(
    make_envelope: EnvelopeFactory, vault: LocalVaultKeys
) -> None:
    newest = vault.rotate()
    envelope = make_envelope(DIRECT)
    stored = await envelope.encrypt("tenant-a", "order-1", b"hello", context=b"orders")
    assert stored.format is RecordFormat.DIRECT
    assert stored.key_id == newest
    assert stored.kek_version is None
    assert len(stored.wrapped) == 256
    assert await envelope.decrypt("tenant-a", "order-1", context=b"orders") == b"hello"
    assert envelope.stats.vault_unwraps == 0  # the DEK was cached by encrypt


async def test_direct_reads_call_the_vault_once_per_record(
    make_envelope: EnvelopeFactory,
) -> None:
    writer = make_envelope(DIRECT)
    for n in range(3):
        await writer.encrypt("t", f"r{n}", b"data %d" % n)
    reader = make_envelope(DIRECT)
    for _ in range(4):
        for n in range(3):
            assert await reader.decrypt("t", f"r{n}") == b"data %d" % n
    stats = reader.stats
    assert stats.vault_unwraps == 3
    assert stats.dek_cache_hits == 9


async def test_concurrent_reads_of_a_cold_record_cost_one_vault_call(
    make_envelope: EnvelopeFactory,
) -> None:
    await make_envelope(DIRECT).encrypt("t", "r", b"x")
    reader = make_envelope(DIRECT)
    results = await asyncio.gather(*(reader.decrypt("t", "r") for _ in range(20)))
    assert set(results) == {b"x"}
    assert reader.stats.vault_unwraps == 1


async def test_hierarchy_round_trip_creates_the_mode_row_and_one_kek(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords, vault: LocalVaultKeys
) -> None:
    envelope = make_envelope(HIERARCHY)
    stored = await envelope.encrypt("tenant-a", "r1", b"secret", context=b"ctx")
    assert stored.format is RecordFormat.HIERARCHY
    assert stored.kek_version == FIRST_KEK_VERSION
    assert stored.key_id is None
    assert len(stored.wrapped) == 40
    assert (await sqlite.modes.read_mode()).mode is HIERARCHY
    [kek] = await sqlite.keks.list_keks("tenant-a")
    assert kek.key_id == vault.versions[-1].key_id
    assert envelope.stats.keks_created == 1
    assert envelope.stats.vault_wraps == 1
    assert await envelope.decrypt("tenant-a", "r1", context=b"ctx") == b"secret"


async def test_hierarchy_reads_cost_one_vault_call_per_kek(
    make_envelope: EnvelopeFactory,
) -> None:
    writer = make_envelope(HIERARCHY)
    for partition in ("a", "b"):
        for n in range(5):
            await writer.encrypt(partition, f"r{n}", b"%s%d" % (partition.encode(), n))
    assert writer.stats.vault_unwraps == 0
    assert writer.stats.keks_created == 2
    reader = make_envelope(HIERARCHY)
    for partition in ("a", "b"):
        for n in range(5):
            assert await reader.decrypt(partition, f"r{n}") == b"%s%d" % (partition.encode(), n)
    stats = reader.stats
    assert stats.vault_unwraps == 2  # one per KEK, whatever the number of records
    assert stats.local_unwraps == 10
    # One miss per KEK (counted once, though a cold lookup looks again under the lock).
    assert (stats.kek_cache_misses, stats.kek_cache_hits) == (2, 8)


async def test_kek_created_once_per_partition_under_concurrency(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    """Twenty writers in this process, and two envelopes standing for two processes."""
    first, second = make_envelope(HIERARCHY), make_envelope(HIERARCHY)
    await first.encrypt("warm", "r", b"x")  # the mode row exists: the race is the KEK's
    writes = [(first if n % 2 else second).encrypt("cold", f"r{n}", b"%d" % n) for n in range(20)]
    await asyncio.gather(*writes)
    assert len(await sqlite.keks.list_keks("cold")) == 1
    created = first.stats.keks_created + second.stats.keks_created
    assert created == 2  # "warm" by first, "cold" by exactly one of the two
    reader = make_envelope(HIERARCHY)
    for n in range(20):
        assert await reader.decrypt("cold", f"r{n}") == b"%d" % n


async def test_kek_insert_conflict_uses_the_winner(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    """A writer that lost the insert race (another process inserted the first KEK between
    its list and its insert) wipes its own KEK and wraps under the winner's."""
    winner, loser = make_envelope(HIERARCHY), make_envelope(HIERARCHY)
    await winner.encrypt("p", "r1", b"one")
    real_list = sqlite.keks.list_keks
    calls = 0

    async def stale_then_real(partition: str):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return [] if calls == 1 else await real_list(partition)

    sqlite.keks.list_keks = stale_then_real  # type: ignore[method-assign]
    await loser.encrypt("p", "r2", b"two")
    assert loser.stats.keks_created == 0
    assert loser.stats.vault_unwraps == 1
    sqlite.keks.list_keks = real_list  # type: ignore[method-assign]
    assert len(await sqlite.keks.list_keks("p")) == 1
    assert await make_envelope().decrypt("p", "r2") == b"two"


async def test_context_mismatch_is_refused(make_envelope: EnvelopeFactory) -> None:
    envelope = make_envelope(DIRECT)
    await envelope.encrypt("d", "r", b"x", context=b"right")
    with pytest.raises(IntegrityError):
        await envelope.decrypt("d", "r", context=b"wrong")
    with pytest.raises(IntegrityError):
        await make_envelope(DIRECT).decrypt("d", "r")  # no context at all


async def test_context_mismatch_is_refused_in_hierarchy_mode(
    make_envelope: EnvelopeFactory,
) -> None:
    envelope = make_envelope(HIERARCHY)
    await envelope.encrypt("h", "r", b"x", context=b"right")
    with pytest.raises(IntegrityError):
        await make_envelope(HIERARCHY).decrypt("h", "r", context=b"wrong")


async def test_data_moved_to_another_record_is_refused(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    envelope = make_envelope(DIRECT)
    await envelope.encrypt("t", "a", b"for a")
    await envelope.encrypt("t", "b", b"for b")
    sqlite.database.execute(
        "UPDATE deks SET sealed = (SELECT sealed FROM deks WHERE dek_id = 'a') WHERE dek_id = 'b'"
    )
    with pytest.raises(IntegrityError):
        await make_envelope(DIRECT).decrypt("t", "b")


async def test_unknown_format_is_refused_clearly(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    envelope = make_envelope()
    await envelope.encrypt("t", "r", b"x")
    sqlite.database.execute("UPDATE deks SET format = 3 WHERE dek_id = 'r'")
    with pytest.raises(InvalidInputError) as caught:
        await envelope.decrypt("t", "r")
    assert str(caught.value) == (
        "record t/r cannot be used: record format 3 is newer than this keyward (reads 1, 2): "
        "upgrade keyward"
    )


async def test_kcv_mismatch_is_an_integrity_error(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    await make_envelope(DIRECT).encrypt("d", "r", b"x")
    sqlite.database.execute("UPDATE deks SET kcv = '0123456789abcdef'")
    with pytest.raises(IntegrityError, match="KCV differs"):
        await make_envelope(DIRECT).decrypt("d", "r")


async def test_kcv_mismatch_in_hierarchy_mode(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    await make_envelope(HIERARCHY).encrypt("h", "r", b"x")
    sqlite.database.execute("UPDATE deks SET kcv = '0123456789abcdef'")
    with pytest.raises(IntegrityError, match="KCV differs"):
        await make_envelope(HIERARCHY).decrypt("h", "r")


async def test_tampered_kek_row_kcv_is_refused(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    await make_envelope(HIERARCHY).encrypt("h", "r", b"x")
    sqlite.database.execute("UPDATE keks SET kcv = '0123456789abcdef'")
    with pytest.raises(IntegrityError, match=r"KEK h/.* KCV differs"):
        await make_envelope(HIERARCHY).decrypt("h", "r")


async def test_direct_store_declared_hierarchy_is_refused(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    await make_envelope(DIRECT).encrypt("t", "r", b"x")
    hierarchy = make_envelope(HIERARCHY)
    message = "store sqlite:records.sqlite is in direct mode; migrate it with `keyward migrate`"
    with pytest.raises(ConfigurationError) as caught:
        await hierarchy.encrypt("t", "r2", b"y")
    assert str(caught.value) == message
    with pytest.raises(ConfigurationError):
        await hierarchy.decrypt("t", "r")
    assert (await sqlite.modes.read_mode()).etag == ""  # nothing written


async def test_hierarchy_store_declared_direct_is_refused(
    make_envelope: EnvelopeFactory,
) -> None:
    await make_envelope(HIERARCHY).encrypt("t", "r", b"x")
    with pytest.raises(ConfigurationError, match="is in hierarchy mode"):
        await make_envelope(DIRECT).encrypt("t", "r2", b"y")


async def test_migrating_store_serves_either_declaration(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    await make_envelope(DIRECT).encrypt("t", "old", b"direct row")
    row = await sqlite.modes.write_mode(ModeRecord(StoreMode.TO_HIERARCHY))
    for declared in (DIRECT, HIERARCHY, None):
        envelope = make_envelope(declared)
        stored = await envelope.encrypt("t", f"new-{declared}", b"y")
        assert stored.format is RecordFormat.HIERARCHY
        assert await envelope.decrypt("t", "old") == b"direct row"
    await sqlite.modes.write_mode(ModeRecord(StoreMode.TO_DIRECT, etag=row.etag))
    stored = await make_envelope(HIERARCHY).encrypt("t", "back", b"z")
    assert stored.format is RecordFormat.DIRECT


async def test_mode_row_is_reread_after_the_mode_ttl(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords, clock: FakeClock
) -> None:
    envelope = make_envelope(None, mode_ttl_seconds=30)
    assert (await envelope.encrypt("t", "a", b"1")).format is RecordFormat.DIRECT
    await sqlite.modes.write_mode(ModeRecord(StoreMode.TO_HIERARCHY))
    clock.advance(29)
    assert (await envelope.encrypt("t", "b", b"2")).format is RecordFormat.DIRECT
    clock.advance(1)
    assert (await envelope.encrypt("t", "c", b"3")).format is RecordFormat.HIERARCHY
    assert envelope.stats.mode_reads == 2


async def test_declared_migration_mode_is_refused(make_envelope: EnvelopeFactory) -> None:
    with pytest.raises(InvalidInputError, match="declare mode direct or hierarchy"):
        make_envelope(StoreMode.TO_HIERARCHY)


async def test_revocation_in_hierarchy_mode_takes_effect_after_the_kek_ttl(
    make_envelope: EnvelopeFactory, vault: LocalVaultKeys, clock: FakeClock
) -> None:
    """The DEK cache TTL is long on purpose: a DEK never outlives the KEK that opened it."""
    await make_envelope(HIERARCHY).encrypt("t", "r", b"x")
    reader = make_envelope(HIERARCHY, kek_cache_seconds=60, dek_cache_seconds=3600)
    assert await reader.decrypt("t", "r") == b"x"
    vault.disable()
    clock.advance(59.9)
    assert await reader.decrypt("t", "r") == b"x"  # within the TTL: cached
    clock.advance(0.1)
    with pytest.raises(KeyDisabledError):
        await reader.decrypt("t", "r")
    with pytest.raises(KeyDisabledError):
        await reader.encrypt("t", "r2", b"y")  # no KEK either: writes stop too


async def test_revocation_in_direct_mode_takes_effect_after_the_dek_ttl(
    make_envelope: EnvelopeFactory, vault: LocalVaultKeys, clock: FakeClock
) -> None:
    await make_envelope(DIRECT).encrypt("t", "r", b"x")
    reader = make_envelope(DIRECT, dek_cache_seconds=10)
    assert await reader.decrypt("t", "r") == b"x"
    vault.disable()
    clock.advance(9)
    assert await reader.decrypt("t", "r") == b"x"
    clock.advance(1)
    with pytest.raises(KeyDisabledError):
        await reader.decrypt("t", "r")


async def test_cache_size_zero_calls_the_vault_every_time(
    make_envelope: EnvelopeFactory,
) -> None:
    await make_envelope(HIERARCHY).encrypt("t", "r", b"x")
    reader = make_envelope(HIERARCHY, cache_size=0)
    for _ in range(3):
        assert await reader.decrypt("t", "r") == b"x"
    assert reader.stats.vault_unwraps == 3


async def test_reserved_and_malformed_keys_are_refused_before_any_call(
    make_envelope: EnvelopeFactory, vault: LocalVaultKeys
) -> None:
    envelope = make_envelope()
    for partition, record_id in (("~keyward", "mode"), ("~x", "r"), ("a/b", "r"), ("", "r")):
        with pytest.raises(InvalidInputError):
            await envelope.encrypt(partition, record_id, b"x")
        with pytest.raises(InvalidInputError):
            await envelope.decrypt(partition, record_id)
    assert not vault.calls


async def test_an_existing_record_is_not_overwritten(
    make_envelope: EnvelopeFactory,
) -> None:
    envelope = make_envelope()
    await envelope.encrypt("t", "r", b"first")
    with pytest.raises(ConflictError, match="record t/r exists"):
        await envelope.encrypt("t", "r", b"second")
    assert await make_envelope().decrypt("t", "r") == b"first"


async def test_missing_record(make_envelope: EnvelopeFactory) -> None:
    with pytest.raises(RecordNotFoundError, match="no record t/none"):
        await make_envelope().decrypt("t", "none")


async def test_records_written_before_a_vault_rotation_still_open(
    make_envelope: EnvelopeFactory, vault: LocalVaultKeys
) -> None:
    envelope = make_envelope(DIRECT)
    await envelope.encrypt("t", "old", b"1")
    vault.rotate()
    new = await envelope.encrypt("t", "new", b"2")
    assert new.key_id == vault.versions[-1].key_id
    reader = make_envelope(DIRECT)
    assert [await reader.decrypt("t", r) for r in ("old", "new")] == [b"1", b"2"]


async def test_close_wipes_and_refuses(make_envelope: EnvelopeFactory) -> None:
    envelope = make_envelope(HIERARCHY)
    await envelope.encrypt("t", "r", b"x")
    async with envelope:
        pass
    with pytest.raises(InvalidInputError, match="closed"):
        await envelope.decrypt("t", "r")


def test_envelope_is_never_pickled_and_its_repr_holds_no_secret(
    make_envelope: EnvelopeFactory,
) -> None:
    envelope: Envelope = make_envelope(HIERARCHY)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(envelope)
    assert "KeyCache(entries=0" in repr(envelope)


async def test_two_first_hierarchy_writers_race_for_the_mode_row(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords
) -> None:
    first, second = make_envelope(HIERARCHY), make_envelope(HIERARCHY)
    stored = await asyncio.gather(first.encrypt("a", "r", b"1"), second.encrypt("b", "r", b"2"))
    assert {s.format for s in stored} == {RecordFormat.HIERARCHY}
    row = await sqlite.modes.read_mode()
    assert (row.mode, row.etag) == (HIERARCHY, "1")  # written once


async def _insert_direct(
    sqlite: SqliteRecords, vault: LocalVaultKeys, algorithm: WrapAlgorithm, plaintext: bytes
) -> None:
    """A format-1 row as another writer (an older keyward, an oct-HSM setup) made it."""
    key_id = vault.versions[0].key_id
    with DataKey.generate() as dek:
        wrapped = wrap_as(vault.private_key(key_id), key_id, algorithm, dek)
        await sqlite.records.insert_record(
            RecordWrite("t", "r", RecordFormat.DIRECT, algorithm, wrapped, dek.kcv,
                        key_id=key_id, sealed=seal(dek, plaintext, dek_id="t/r"))
        )  # fmt: skip


async def test_a_direct_row_wrapped_with_rsa_oaep_is_read_with_its_algorithm(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords, vault: LocalVaultKeys
) -> None:
    await _insert_direct(sqlite, vault, WrapAlgorithm.RSA_OAEP, b"sha-1 era")
    reader = make_envelope(DIRECT)
    assert await reader.decrypt("t", "r") == b"sha-1 era"
    assert reader.stats.vault_unwraps == 1


async def test_a_direct_row_wrapped_with_rsa1_5_is_refused_without_legacy_reads(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords, vault: LocalVaultKeys
) -> None:
    await _insert_direct(sqlite, vault, WrapAlgorithm.RSA1_5, b"legacy")
    with pytest.raises(UnsupportedAlgorithmError, match="RSA1_5 unwrap is disabled"):
        await make_envelope(DIRECT).decrypt("t", "r")


async def test_a_vault_wrapper_of_another_algorithm_is_refused_clearly(
    make_envelope: EnvelopeFactory, sqlite: SqliteRecords, vault: LocalVaultKeys
) -> None:
    """A ``VaultKeys`` that ignores the row's algorithm never unwraps with the wrong one."""
    await _insert_direct(sqlite, vault, WrapAlgorithm.RSA_OAEP, b"x")
    real = vault.version

    async def default_only(key_id: str, algorithm: WrapAlgorithm | None = None) -> object:
        return await real(key_id)

    vault.version = default_only  # type: ignore[method-assign,assignment]
    with pytest.raises(InvalidInputError, match="wrapped with RSA-OAEP; the vault wrapper for"):
        await make_envelope(DIRECT).decrypt("t", "r")
