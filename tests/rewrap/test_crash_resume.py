"""Kill the engine at every instrumented point, resume, and lose nothing.

A ``SimulatedCrash`` (a ``BaseException``, so no ``except Exception`` in the engine can
swallow it) is raised at the n-th hit of a named point: between unwrap and write, mid-batch
inside the store, after a write but before the checkpoint, inside the job store's write
(before and after it lands), at claim and before completion. A second worker then resumes
after the first one's lease expired. Every DEK must end at the target with its original
plaintext, every bad record untouched, and the report's counts exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.rewrap import ENGINE_POINTS, InMemoryJobStore, JobState, JobStatus, StoredJob
from shared.rewrap._report import FailureReason, UnreadableReason
from shared.stores import DekRecord
from tests.rewrap.fakes import (
    KEY_REF,
    OTHER_KEY_REF,
    V1,
    V2,
    V3,
    MemoryDekStore,
    engine_for,
    key_source,
    make_dek,
    populate,
    rsa_key,
    unwrap_row,
)

V_GONE = "5" * 32
GOOD = 30
ALREADY_CURRENT = 4
STORE_POINTS = ("store.mid_batch", "jobstore.before_put", "jobstore.after_put")
ALL_POINTS = (*ENGINE_POINTS, *STORE_POINTS)


class SimulatedCrash(BaseException):
    """The process died here."""


class CrashAt:
    def __init__(self, point: str, nth: int) -> None:
        self.point = point
        self.nth = nth
        self.hits = 0
        self.fired = False

    def __call__(self, name: str) -> None:
        if name == self.point and not self.fired:
            self.hits += 1
            if self.hits == self.nth:
                self.fired = True
                raise SimulatedCrash(f"{self.point}#{self.nth}")


class CrashingJobStore(InMemoryJobStore):
    def __init__(self) -> None:
        super().__init__()
        self.probe: CrashAt | None = None

    async def put(self, state: JobState, *, expected_etag: str | None) -> str:
        if self.probe:
            self.probe("jobstore.before_put")
        etag = await super().put(state, expected_etag=expected_etag)
        if self.probe:
            self.probe("jobstore.after_put")
        return etag

    async def get(self, job_id: str) -> StoredJob | None:
        return await super().get(job_id)


@dataclass
class World:
    store: MemoryDekStore
    source: object
    jobs: CrashingJobStore
    plaintexts: dict[str, bytes]
    bad: dict[str, object]
    unreadable: set[str]
    clock: list[datetime] = field(default_factory=lambda: [datetime(2026, 1, 1, tzinfo=UTC)])
    touched: bool = False

    def now(self) -> datetime:
        return self.clock[0]


def build_world() -> World:
    source = key_source(V1, V2, V_GONE, V3)
    store = MemoryDekStore(filter_current=False)
    plaintexts = populate(store, source, [V1, V2], GOOD)
    plaintexts |= populate(store, source, [V3], ALREADY_CURRENT, prefix="cur")
    unreadable = set(populate(store, source, [V_GONE], 3, prefix="gone"))
    source.delete_version(KEY_REF, V_GONE)
    template, _ = make_dek(source, "t", V1)
    source.add_version(OTHER_KEY_REF, V1, rsa_key(5))
    bad_rows = [
        replace(template, ref="bad-1", problem="wrapped key is not base64", wrapped=b""),
        make_dek(source, "bad-2", V1, key_ref=OTHER_KEY_REF)[0],
        replace(template, ref="bad-3", kcv="00" * 8),
    ]
    for row in bad_rows:
        store.add(row)
    world = World(
        store, source, CrashingJobStore(), plaintexts, {r.ref: r for r in bad_rows}, unreadable
    )

    def concurrent_writer(records: Sequence[DekRecord]) -> None:
        # Once, a writer changes a DEK the engine has just read: its write must conflict.
        candidates = [record.ref for record in records if record.ref.startswith("dek-")]
        if not world.touched and candidates:
            world.touched = True
            store.touch(candidates[-1])

    store.after_scan = concurrent_writer
    return world


def run_once(world: World, owner: str, probe: CrashAt | None) -> object:
    world.store.probe = probe
    world.jobs.probe = probe
    engine = engine_for(
        world.store,
        world.source,
        world.jobs,
        page_size=4,
        workers=3,
        pages_in_flight=2,
        owner=owner,
        now=world.now,
        probe=probe or (lambda name: None),
    )
    return asyncio.run(engine.run(KEY_REF, V3))


def crash_then_resume(world: World, crashes: Sequence[CrashAt]) -> tuple[object, int]:
    fired = 0
    for number, crash in enumerate(crashes):
        try:
            run_once(world, f"worker-{number}", crash)
        except SimulatedCrash:
            fired += 1
            # The dead worker's lease runs out before the next one arrives.
            world.clock[0] += timedelta(minutes=10)
    return run_once(world, "worker-final", None), fired


def assert_nothing_lost(world: World, report: object) -> None:
    # The world holds bad records and DEKs under a deleted version: the job ends saying so.
    assert report.status is JobStatus.COMPLETED_WITH_FAILURES
    # bad-3 under V1 and the three under V_GONE (bad-1 does not parse: no version to count).
    assert report.state.left_behind == 1 + 3
    assert report.consistent
    counters = report.counters
    assert counters.rewrapped + counters.already_current == GOOD + ALREADY_CURRENT
    assert counters.conflicts == 0
    assert counters.gone == 0
    assert counters.failed == {
        FailureReason.UNPARSEABLE: 1,
        FailureReason.FOREIGN_KEY: 1,
        FailureReason.INTEGRITY: 1,
    }
    assert counters.unreadable == {UnreadableReason.KEY_NOT_FOUND: 3}
    for ref, plain in world.plaintexts.items():
        row = world.store.rows[ref]
        assert row.key_id == f"{KEY_REF}/{V3}", ref
        assert unwrap_row(world.source, row) == plain, ref
    for ref, row in world.bad.items():
        assert world.store.rows[ref] == row
    for ref in world.unreadable:
        assert world.store.rows[ref].key_id.endswith(V_GONE)
        assert world.store.rows[ref].unreadable_reason == "key_not_found"
    assert len(world.store.rows) == GOOD + ALREADY_CURRENT + 3 + len(world.bad)


CRASH_POINTS = [(point, nth) for point in ALL_POINTS for nth in (1, 4)]


@pytest.mark.parametrize(("point", "nth"), CRASH_POINTS, ids=[f"{p}#{n}" for p, n in CRASH_POINTS])
def test_crash_at_a_point_then_resume_loses_nothing(point: str, nth: int) -> None:
    world = build_world()
    crash = CrashAt(point, nth)
    report, _ = crash_then_resume(world, [crash])
    assert_nothing_lost(world, report)


def test_at_least_twenty_distinct_crash_points_really_fire() -> None:
    fired = []
    for point, nth in CRASH_POINTS:
        world = build_world()
        crash = CrashAt(point, nth)
        crash_then_resume(world, [crash])
        if crash.fired:
            fired.append((point, nth))
    assert len(fired) >= 20, fired
    fired_names = {point for point, _ in fired}
    assert {"item.after_unwrap", "store.mid_batch", "batch.after_write"} <= fired_names
    assert {"jobstore.before_put", "jobstore.after_put", "conflict_reread.start"} <= fired_names


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(ALL_POINTS), st.integers(min_value=1, max_value=12)),
        min_size=1,
        max_size=4,
    )
)
def test_repeated_crashes_at_random_points_lose_nothing(plan: list[tuple[str, int]]) -> None:
    world = build_world()
    report, _ = crash_then_resume(world, [CrashAt(point, nth) for point, nth in plan])
    assert_nothing_lost(world, report)


def test_a_live_lease_keeps_a_second_worker_out() -> None:
    from shared.rewrap import JobLeaseError

    world = build_world()
    with pytest.raises(SimulatedCrash):
        run_once(world, "worker-a", CrashAt("checkpoint.after", 2))
    with pytest.raises(JobLeaseError) as refused:
        run_once(world, "worker-b", None)
    assert refused.value.owner == "worker-a"
    stored = asyncio.run(world.jobs.get(refused.value.job_id))
    assert stored is not None
    assert stored.state.status is JobStatus.RUNNING
