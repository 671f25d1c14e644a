"""KEK rotation (the intermediate keys' crypto-period) over the in-memory ports: new
versions, local rewrap with one vault unwrap per KEK version, old versions deleted only once
no record is under them, and the crypto-period filter."""

from __future__ import annotations

import asyncio

import pytest

from shared.errors import ConfigurationError
from shared.records import RecordFormat, StoreMode
from shared.records._migration_state import Phase
from tests.records.memory import World, world, write_under_kek
from tests.rewrap.fakes import KEY_REF

PARTITIONS = 4


def hierarchy_world(count: int = 24) -> World:
    w = world()
    asyncio.run(w.seed(count, partitions=PARTITIONS))
    asyncio.run(w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF))
    return w


def versions(w: World, partition: str) -> list[str]:
    return sorted((v for p, v in w.keks.rows if p == partition), reverse=True)


def test_rotation_rewraps_locally_and_deletes_the_old_versions() -> None:
    w = hierarchy_world()
    old = {f"t{i}": versions(w, f"t{i}") for i in range(PARTITIONS)}
    unwraps, slept = w.vault.counts.unwraps, w.time.slept
    run = asyncio.run(w.jobs().rotate_keks(KEY_REF))
    assert run.checkpoint is not None
    assert run.checkpoint.phase is Phase.DONE
    assert run.checkpoint.tally.keks_created == PARTITIONS
    assert run.checkpoint.tally.keks_deleted == PARTITIONS
    assert run.checkpoint.tally.converted == 24
    # Per partition: its old KEK and its new one, each unwrapped once; none per DEK.
    assert w.vault.counts.unwraps - unwraps == 2 * PARTITIONS
    assert w.time.slept - slept >= w.jobs().settings.kek_cache_seconds
    for partition, before in old.items():
        now = versions(w, partition)
        assert len(now) == 1
        assert now[0] > before[0]
        assert {row.kek_version for (p, _), row in w.records.rows.items() if p == partition} == set(
            now
        )
    assert w.modes.row is not None
    assert w.modes.row.mode is StoreMode.HIERARCHY
    w.check_all_open()


def test_one_partition_only() -> None:
    w = hierarchy_world()
    before = {p: versions(w, p) for p in ("t0", "t1")}
    asyncio.run(w.jobs().rotate_keks(KEY_REF, partition="t1"))
    assert versions(w, "t0") == before["t0"]
    assert versions(w, "t1") != before["t1"]
    assert len(versions(w, "t1")) == 1
    w.check_all_open()


def test_older_than_rotates_only_keks_past_their_crypto_period() -> None:
    w = hierarchy_world()
    w.time.advance(10 * 86400)
    young = asyncio.run(w.jobs().rotate_keks(KEY_REF, older_than_days=30))
    assert young.checkpoint is not None
    assert young.checkpoint.tally.keks_created == 0
    w.time.advance(25 * 86400)
    due = asyncio.run(w.jobs().rotate_keks(KEY_REF, older_than_days=30))
    assert due.checkpoint is not None
    assert due.checkpoint.tally.keks_created == PARTITIONS
    w.check_all_open()


def test_a_late_writer_under_an_old_version_sends_the_partition_round_again() -> None:
    w = hierarchy_world(8)
    old_t0 = versions(w, "t0")[0]
    late: list[str] = []

    def late_writer(point: str) -> None:
        # Once the rewrap has passed it, a writer still on the old KEK adds a record.
        if point == "row.after_write" and not late:
            late.append("t0/late")
            write_under_kek(w, "t0", "late", b"written late", old_t0)

    run = asyncio.run(w.jobs(probe=late_writer).rotate_keks(KEY_REF, partition="t0"))
    assert late
    assert run.checkpoint is not None
    assert run.checkpoint.pass_number == 2
    assert old_t0 not in versions(w, "t0")
    assert w.records.rows[("t0", "late")].kek_version == versions(w, "t0")[0]
    w.check_all_open()


def test_a_direct_store_has_nothing_to_rotate_and_a_half_migrated_one_is_refused() -> None:
    w = world()
    asyncio.run(w.seed(4))
    assert not asyncio.run(w.jobs().rotate_keks(KEY_REF)).started

    class Stop(BaseException):
        pass

    def stop(point: str) -> None:
        if (
            point == "checkpoint.after"
            and w.modes.row
            and w.modes.row.mode is StoreMode.TO_HIERARCHY
        ):
            raise Stop

    with pytest.raises(Stop):
        asyncio.run(w.jobs(probe=stop).migrate(StoreMode.HIERARCHY, KEY_REF))
    w.time.advance(600)
    with pytest.raises(ConfigurationError, match="keyward migrate"):
        asyncio.run(w.jobs().rotate_keks(KEY_REF))
    assert {row.format for row in w.records.rows.values()} == {RecordFormat.DIRECT}
