"""The migration, both ways, over the in-memory ports: every record still opens, the mode
follows, vault calls are what the design says, and a second runner is refused clearly."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.crypto import LocalRsaWrapper, WrapAlgorithm
from shared.errors import ConfigurationError, UnsupportedAlgorithmError
from shared.records import RecordFormat, StoreMode
from shared.records._migration_state import Checkpoint, JobBusyError, Phase
from shared.services.migration import JobRun, KeySourceVaultKeys
from tests.records.memory import MODE_TTL, World, world
from tests.records.vault import wrap_as
from tests.rewrap.fakes import KEY_REF, V1, V2, key_source


def run(coro: object) -> JobRun:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_direct_to_hierarchy_and_back_keeps_every_record() -> None:
    w = world()
    asyncio.run(w.seed(40))
    unwraps = w.vault.counts.unwraps
    done = run(w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF))
    assert done.started
    assert done.mode is StoreMode.HIERARCHY
    assert done.checkpoint is not None
    assert done.checkpoint.phase is Phase.DONE
    assert w.formats() == {RecordFormat.HIERARCHY}
    # One vault unwrap per DEK, none per KEK (the job made them and held them).
    assert w.vault.counts.unwraps - unwraps == 40
    assert done.checkpoint.tally.converted == 40
    assert done.checkpoint.tally.keks_created == 4
    assert w.time.slept >= MODE_TTL  # the writers' mode TTL was waited out
    w.check_all_open()

    unwraps, slept = w.vault.counts.unwraps, w.time.slept
    back = run(w.jobs().migrate(StoreMode.DIRECT, KEY_REF))
    # The mode TTL before converting; the KEK TTL before the KEK rows go.
    assert w.time.slept - slept >= MODE_TTL + w.jobs().settings.kek_cache_seconds
    assert back.mode is StoreMode.DIRECT
    assert back.checkpoint is not None
    assert back.checkpoint.phase is Phase.DONE
    assert w.formats() == {RecordFormat.DIRECT}
    # One vault unwrap per KEK, plus the round trip that proved the target version.
    assert w.vault.counts.unwraps - unwraps == 4 + 1
    assert not w.keks.rows  # nothing references them: deleted
    assert back.checkpoint.tally.keks_deleted == 4
    w.check_all_open()


def test_migrating_to_the_mode_a_store_has_does_nothing() -> None:
    w = world()
    asyncio.run(w.seed(3))
    nothing = run(w.jobs().migrate(StoreMode.DIRECT, KEY_REF))
    assert not nothing.started
    assert nothing.mode is StoreMode.DIRECT
    assert w.modes.writes == 0


def test_a_second_runner_is_refused_while_the_first_is_live_then_takes_over() -> None:
    w = world()
    asyncio.run(w.seed(10))

    class Stop(BaseException):
        pass

    def stop_after_first_page(point: str) -> None:
        if point == "page.before_checkpoint":
            raise Stop

    with pytest.raises(Stop):
        run(w.jobs("runner-a", probe=stop_after_first_page).migrate(StoreMode.HIERARCHY, KEY_REF))
    with pytest.raises(JobBusyError) as busy:
        run(w.jobs("runner-b").migrate(StoreMode.HIERARCHY, KEY_REF))
    assert busy.value.owner == "runner-a"
    assert "runner-a" in str(busy.value)
    assert "lease ends" in str(busy.value)
    w.time.advance(120)  # runner-a's lease runs out
    done = run(w.jobs("runner-b").migrate(StoreMode.HIERARCHY, KEY_REF))
    assert done.mode is StoreMode.HIERARCHY
    assert done.checkpoint is not None
    assert done.checkpoint.owner == "runner-b"
    w.check_all_open()


def test_a_writer_changing_a_row_mid_conversion_is_retried_not_overwritten() -> None:
    w = world()
    asyncio.run(w.seed(6, partitions=1))
    touched: list[tuple[str, str]] = []

    def writer(key: tuple[str, str]) -> None:
        if not touched:
            touched.append(key)
            w.records.touch(*key)
            w.records.rows[key] = replace(w.records.rows[key], app_column="changed by the app")

    w.records.before_replace = writer
    done = run(w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF))
    assert done.checkpoint is not None
    assert done.checkpoint.tally.conflicts == 1
    assert w.records.rows[touched[0]].app_column == "changed by the app"
    assert w.formats() == {RecordFormat.HIERARCHY}
    w.check_all_open()


def test_a_row_that_cannot_be_converted_blocks_the_mode_change_and_is_named() -> None:
    w = world()
    asyncio.run(w.seed(5, partitions=1))
    key = ("t0", "r002")
    w.records.rows[key] = replace(w.records.rows[key], kcv="00" * 8)
    blocked = run(w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF))
    assert blocked.mode is StoreMode.TO_HIERARCHY
    assert blocked.checkpoint is not None
    assert blocked.checkpoint.phase is Phase.BLOCKED
    assert blocked.checkpoint.problem_refs == ("t0/r002",)
    assert "t0/r002" in blocked.checkpoint.detail
    assert w.records.rows[key].format is RecordFormat.DIRECT  # left exactly as it was


def _rewrap_by_hand(w: World, key: tuple[str, str], algorithm: WrapAlgorithm) -> None:
    """Make a row as an older writer did: the same DEK, wrapped with ``algorithm``."""
    row = w.records.rows[key]
    assert row.key_id is not None
    private = w.source.private_key(row.key_id)
    with LocalRsaWrapper(row.key_id, private_key=private).unwrap(row.wrapped) as dek:
        wrapped = wrap_as(private, row.key_id, algorithm, dek)
    w.records.rows[key] = replace(row, algorithm=algorithm, wrapped=wrapped)


def test_rows_convert_with_their_own_algorithm_and_rsa1_5_only_when_allowed() -> None:
    w = world()
    asyncio.run(w.seed(6, partitions=1))
    _rewrap_by_hand(w, ("t0", "r001"), WrapAlgorithm.RSA_OAEP)
    _rewrap_by_hand(w, ("t0", "r004"), WrapAlgorithm.RSA1_5)
    blocked = run(w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF))
    assert blocked.checkpoint is not None
    assert blocked.checkpoint.phase is Phase.BLOCKED
    assert blocked.checkpoint.problem_refs == ("t0/r004",)
    assert w.records.rows[("t0", "r001")].format is RecordFormat.HIERARCHY
    w.vault.allow_legacy_rsa1_5 = True  # the operator's explicit opt-in
    done = run(w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF))
    assert done.mode is StoreMode.HIERARCHY
    assert w.formats() == {RecordFormat.HIERARCHY}
    w.check_all_open()


def test_an_unfinished_migration_under_another_key_is_refused() -> None:
    w = world()
    asyncio.run(w.seed(3))

    class Stop(BaseException):
        pass

    def stop(point: str) -> None:
        if point == "job.mode_set":
            raise Stop

    with pytest.raises(Stop):
        run(w.jobs(probe=stop).migrate(StoreMode.HIERARCHY, KEY_REF))
    w.time.advance(120)
    with pytest.raises(ConfigurationError, match="wraps under"):
        run(w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF + "-other"))


def test_the_checkpoint_round_trips_through_json() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    from shared.records._migration_state import JobKind, Tally

    checkpoint = Checkpoint(
        kind=JobKind.ROTATE_KEKS,
        target="",
        key_ref=KEY_REF,
        owner="o",
        lease_until=now,
        started_at=now,
        phase=Phase.COUNT,
        version_counts={"k1": 2},
        partition="t1",
        tally=Tally(converted=3),
        problem_refs=("a/b",),
        older_than_days=90.0,
    )
    assert Checkpoint.from_json(checkpoint.to_json()) == checkpoint


def test_vault_unwraps_are_paced_and_a_429_is_waited_out() -> None:
    from shared.errors import ThrottledError

    w = world()
    asyncio.run(w.seed(40))
    throttled = [3]
    inner_version = w.vault.version

    async def throttling_version(key_id: str, algorithm: WrapAlgorithm | None = None) -> object:
        wrapper = await inner_version(key_id, algorithm)
        real_unwrap = wrapper.unwrap

        async def unwrap(wrapped: bytes) -> object:
            if throttled[0]:
                throttled[0] -= 1
                raise ThrottledError("429", retry_after=2)
            return await real_unwrap(wrapped)

        wrapper.unwrap = unwrap  # type: ignore[method-assign]
        return wrapper

    w.vault.version = throttling_version  # type: ignore[method-assign]
    before = w.time.mono
    done = run(w.jobs(rate=10.0).migrate(StoreMode.HIERARCHY, KEY_REF))
    assert done.mode is StoreMode.HIERARCHY
    # 40 unwraps at no more than 10/s, after the mode TTL, plus the 429's pause.
    assert w.time.mono - before >= MODE_TTL + 40 / 10 + 2 - 1
    w.check_all_open()


async def test_the_clis_vault_keys_use_the_rows_algorithm_rsa1_5_if_allowed() -> None:
    source = key_source(V1, V2)
    key_id = f"{KEY_REF}/{V1}"
    strict = KeySourceVaultKeys(source)
    assert (await strict.version(key_id, WrapAlgorithm.RSA_OAEP)).algorithm is (
        WrapAlgorithm.RSA_OAEP
    )
    assert (await strict.version(key_id)).algorithm is WrapAlgorithm.RSA_OAEP_256
    with pytest.raises(UnsupportedAlgorithmError, match="RSA1_5"):
        await strict.version(key_id, WrapAlgorithm.RSA1_5)
    legacy = KeySourceVaultKeys(source, allow_legacy_rsa1_5=True)
    assert (await legacy.version(key_id, WrapAlgorithm.RSA1_5)).algorithm is WrapAlgorithm.RSA1_5
