"""Job stores: compare-and-set semantics, identical for the in-memory and SQLite stores."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.errors import ConflictError
from shared.rewrap import (
    InMemoryJobStore,
    ItemIssue,
    ItemOutcome,
    JobCounters,
    JobState,
    JobStatus,
    JobStore,
    SqliteJobStore,
    rewrap_job_id,
)
from tests.rewrap.fakes import KEY_REF, V1, V2, MemoryDekStore, engine_for, key_source, populate

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _state(version: str = V2, **changes: object) -> JobState:
    state = JobState(
        job_id=rewrap_job_id(KEY_REF, version),
        key_ref=KEY_REF,
        target_version=version,
        target_key_id=f"{KEY_REF}/{version}",
        status=JobStatus.RUNNING,
        created_at=NOW,
        updated_at=NOW,
    )
    return state.evolve(**changes)


@pytest.fixture(params=["memory", "sqlite"])
def jobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    store: JobStore = (
        InMemoryJobStore() if request.param == "memory" else SqliteJobStore(tmp_path / "jobs.db")
    )
    yield store
    asyncio.run(store.close())


def test_create_then_conditional_update(jobs: JobStore) -> None:
    async def go() -> None:
        etag = await jobs.put(_state(), expected_etag=None)
        with pytest.raises(ConflictError):
            await jobs.put(_state(), expected_etag=None)
        newer = await jobs.put(_state(pages=1), expected_etag=etag)
        with pytest.raises(ConflictError):
            await jobs.put(_state(pages=2), expected_etag=etag)
        stored = await jobs.get(_state().job_id)
        assert stored is not None
        assert stored.etag == newer
        assert stored.state.pages == 1

    asyncio.run(go())


def test_state_round_trips_every_field(jobs: JobStore) -> None:
    counters = JobCounters(scanned=9, rewrapped=5, already_current=1, gone=1, conflicts=1)
    counters.count(ItemOutcome.FAILED, "integrity")
    counters.count(ItemOutcome.UNREADABLE, "key_disabled")
    state = _state(
        counters=counters,
        continuation="opaque-token",
        pass_number=2,
        pending_conflicts=("p/a",),
        issues=(ItemIssue("p/b", ItemOutcome.FAILED, "integrity", f"{KEY_REF}/{V1}", "kcv"),),
        issues_dropped=3,
        pages=4,
        owner="host:1",
        lease_expires_at=NOW + timedelta(minutes=5),
        finished_at=NOW,
        error="x",
    )

    async def go() -> JobState:
        await jobs.put(state, expected_etag=None)
        stored = await jobs.get(state.job_id)
        assert stored is not None
        return stored.state

    assert asyncio.run(go()) == state


def test_list_jobs_by_key(jobs: JobStore) -> None:
    async def go() -> None:
        await jobs.put(_state(V1), expected_etag=None)
        await jobs.put(_state(V2, created_at=NOW + timedelta(hours=1)), expected_etag=None)
        listed = await jobs.list_jobs(KEY_REF.upper())
        assert [s.target_version for s in listed] == [V2, V1]
        assert await jobs.list_jobs("https://x.vault.azure.net/keys/none") == []
        assert await jobs.get("rewrap-missing") is None

    asyncio.run(go())


def test_engine_checkpoints_into_sqlite_and_resumes_from_it(tmp_path: Path) -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 12)
    path = tmp_path / "jobs.db"
    seen: list[int] = []
    engine = engine_for(
        store, source, SqliteJobStore(path), page_size=5, progress=lambda s: seen.append(s.pages)
    )

    report = asyncio.run(engine.run(KEY_REF, V2))

    assert seen == [1, 2, 3]
    reopened = SqliteJobStore(path)
    stored = asyncio.run(reopened.get(report.job_id))
    assert stored is not None
    assert stored.state.status is JobStatus.COMPLETED
    assert stored.state.counters.rewrapped == 12


def test_checkpoints_hold_no_key_material(tmp_path: Path) -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    plaintexts = populate(store, source, [V1], 6)
    path = tmp_path / "jobs.db"
    asyncio.run(engine_for(store, source, SqliteJobStore(path)).run(KEY_REF, V2))
    raw = (
        path.read_bytes() + (tmp_path / "jobs.db-wal").read_bytes()
        if (tmp_path / "jobs.db-wal").exists()
        else path.read_bytes()
    )
    for plain in plaintexts.values():
        assert plain not in raw
        assert plain.hex().encode() not in raw
