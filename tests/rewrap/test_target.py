"""Rewrap never goes backwards, and the same request twice is one job."""

from __future__ import annotations

import asyncio

import pytest

from shared.rewrap import InMemoryJobStore, JobStatus, RewrapTargetError, rewrap_job_id
from tests.rewrap.fakes import (
    KEY_REF,
    V1,
    V2,
    V3,
    V4,
    MemoryDekStore,
    engine_for,
    key_source,
    make_dek,
    populate,
    rsa_key,
    unwrap_row,
)


def test_target_older_than_newest_is_redirected_to_newest() -> None:
    source = key_source(V1, V2, V3)
    store = MemoryDekStore()
    plaintexts = populate(store, source, [V1, V2], 6)

    report = asyncio.run(engine_for(store, source).run(KEY_REF, V2))

    assert report.redirected
    assert report.state.target_version == V3
    assert report.job_id == rewrap_job_id(KEY_REF, V3, scope=store.name)
    for ref, row in store.rows.items():
        assert row.key_id == f"{KEY_REF}/{V3}"
        assert unwrap_row(source, row) == plaintexts[ref]


def test_events_out_of_order_never_move_deks_backwards() -> None:
    source = key_source(V1, V2, V3)
    store = MemoryDekStore()
    populate(store, source, [V1], 4)
    jobs = InMemoryJobStore()
    asyncio.run(engine_for(store, source, jobs).run(KEY_REF, V3))
    # The older event (V2 created) arrives after the newer one.
    late = asyncio.run(engine_for(store, source, jobs).run(KEY_REF, V2))

    assert late.already_completed
    assert {row.key_id for row in store.rows.values()} == {f"{KEY_REF}/{V3}"}


def test_missing_target_version_is_refused_and_nothing_changes() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 3)
    before = dict(store.rows)

    with pytest.raises(RewrapTargetError, match="does not exist") as refused:
        asyncio.run(engine_for(store, source).run(KEY_REF, V4))

    assert refused.value.version == V4
    assert store.rows == before


def test_disabled_target_version_is_refused() -> None:
    source = key_source(V1, V2, V3)
    source.set_enabled(KEY_REF, V3, False)
    store = MemoryDekStore()
    populate(store, source, [V1], 3)

    with pytest.raises(RewrapTargetError, match="not enabled"):
        asyncio.run(engine_for(store, source).run(KEY_REF, V3))


def test_without_a_version_the_target_is_the_newest_enabled() -> None:
    source = key_source(V1, V2, V3)
    source.set_enabled(KEY_REF, V3, False)
    store = MemoryDekStore()
    populate(store, source, [V1, V3], 4)

    report = asyncio.run(engine_for(store, source).run(KEY_REF))

    assert report.state.target_version == V2
    # DEKs at V3 (newer than the target, though disabled) are left where they are.
    assert report.counters.already_current == 2
    assert sorted(row.key_id[-32:] for row in store.rows.values()) == [V2, V2, V3, V3]


def test_same_request_twice_is_one_job_and_the_second_changes_nothing() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 5)
    jobs = InMemoryJobStore()

    first = asyncio.run(engine_for(store, source, jobs).run(KEY_REF, V2))
    writes = list(store.written_refs)
    second = asyncio.run(
        engine_for(store, source, jobs).run(KEY_REF.upper().replace("HTTPS", "https"), V2.upper())
    )

    assert first.job_id == second.job_id
    assert second.already_completed
    assert second.counters.rewrapped == first.counters.rewrapped == 5
    assert store.written_refs == writes
    assert len(asyncio.run(jobs.list_jobs())) == 1


def test_restarting_a_completed_job_is_an_idempotent_no_op() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore(filter_current=False)
    populate(store, source, [V1], 5)
    jobs = InMemoryJobStore()
    asyncio.run(engine_for(store, source, jobs).run(KEY_REF))
    writes = list(store.written_refs)

    again = asyncio.run(engine_for(store, source, jobs).run(KEY_REF, restart=True))

    assert again.status is JobStatus.COMPLETED
    assert again.counters.rewrapped == 0
    assert again.counters.already_current == 5
    assert store.written_refs == writes


def test_dek_at_a_version_created_during_the_job_is_left_alone() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 3)
    # A DEK already wrapped under V4, a version the plan has not seen yet.
    source.add_version(KEY_REF, V4, rsa_key(3))
    row, _ = make_dek(source, "newer", V4)
    store.add(row)
    source.delete_version(KEY_REF, V4)

    def rotate_during_scan(records: object) -> None:
        if store.scans == 1:
            source.add_version(KEY_REF, V4, rsa_key(3))

    store.after_scan = rotate_during_scan
    report = asyncio.run(engine_for(store, source, page_size=2).run(KEY_REF, V2))

    assert report.state.target_version == V2
    assert store.rows["newer"] == row
    assert report.counters.rewrapped == 3
    assert report.counters.already_current == 1


def test_job_id_is_deterministic_and_case_insensitive() -> None:
    assert rewrap_job_id(KEY_REF, V2) == rewrap_job_id(KEY_REF.upper() + "/", V2.upper())
    assert rewrap_job_id(KEY_REF, V2) != rewrap_job_id(KEY_REF, V3)
    assert rewrap_job_id(KEY_REF, V2).startswith("rewrap-")


def test_each_store_holding_the_keys_deks_is_its_own_job() -> None:
    source = key_source(V1, V2)
    jobs = InMemoryJobStore()
    table, blobs = MemoryDekStore(), MemoryDekStore()
    populate(table, source, [V1], 3)
    populate(blobs, source, [V1], 2)

    first = asyncio.run(engine_for(table, source, jobs, job_scope="table:deks").run(KEY_REF))
    second = asyncio.run(engine_for(blobs, source, jobs, job_scope="blob:docs").run(KEY_REF))

    assert first.job_id != second.job_id
    assert (first.counters.rewrapped, second.counters.rewrapped) == (3, 2)
    assert not second.already_completed
    assert {state.scope for state in asyncio.run(jobs.list_jobs(KEY_REF))} == {
        "table:deks",
        "blob:docs",
    }


def test_target_disabled_mid_job_stops_the_job_without_marking_deks_unreadable() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 12)
    jobs = InMemoryJobStore()

    def disable_target(records: object) -> None:
        if store.scans == 2:
            source.set_enabled(KEY_REF, V2, False)

    store.after_scan = disable_target
    with pytest.raises(RewrapTargetError, match="refused wrap"):
        asyncio.run(engine_for(store, source, jobs, page_size=4, workers=1).run(KEY_REF, V2))

    [state] = asyncio.run(jobs.list_jobs())
    assert state.status is JobStatus.FAILED
    assert "RewrapTargetError" in (state.error or "")
    assert not [row for row in store.rows.values() if row.unreadable_reason]
    assert all(row.key_id.endswith((V1, V2)) for row in store.rows.values())
