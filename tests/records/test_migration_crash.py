"""Kill the migration (both ways) and the KEK rotation at every probe point, resume after
the lease, and lose nothing: every record opens, the mode is the target, no KEK is left
behind (to direct) and no old KEK version survives (rotation)."""

from __future__ import annotations

import asyncio

import pytest

from shared.records import RecordFormat, StoreMode
from shared.records._migration_probe import JOB_POINTS
from tests.records.memory import JobProbe, World, world
from tests.rewrap.fakes import KEY_REF

STORE_POINTS = ("store.after_replace", "mode.before_write", "mode.after_write",
                "keks.after_insert")  # fmt: skip
ALL_POINTS = (*JOB_POINTS, *STORE_POINTS)
CASES = [(point, nth) for point in ALL_POINTS for nth in (1, 3)]
LEASE_OVER = 120.0


class SimulatedCrash(BaseException):
    """The process died here."""


class CrashAt:
    def __init__(self, point: str, nth: int) -> None:
        self.point, self.nth, self.hits, self.fired = point, nth, 0, False

    def __call__(self, name: str) -> None:
        if name == self.point and not self.fired:
            self.hits += 1
            if self.hits == self.nth:
                self.fired = True
                raise SimulatedCrash(f"{self.point}#{self.nth}")


def crash_then_resume(w: World, crash: CrashAt, job: str) -> None:
    """Run ``job`` with ``crash`` armed (in the job and in the stores), then again clean."""
    for probe, owner in ((crash, "runner-crashing"), (None, "runner-resuming")):
        hook: JobProbe = probe or (lambda name: None)
        w.records.probe = w.keks.probe = w.modes.probe = hook
        jobs = w.jobs(owner, probe=hook)
        coro = (
            jobs.rotate_keks(KEY_REF) if job == "rotate" else jobs.migrate(StoreMode(job), KEY_REF)
        )
        try:
            asyncio.run(coro)
        except SimulatedCrash:
            w.time.advance(LEASE_OVER)


def check(w: World, mode: StoreMode) -> None:
    assert w.modes.row is not None
    assert w.modes.row.mode is mode
    wanted = RecordFormat.DIRECT if mode is StoreMode.DIRECT else RecordFormat.HIERARCHY
    assert {row.format for row in w.records.rows.values()} == {wanted}
    assert len(w.records.rows) == len(w.plaintexts)
    w.check_all_open()


def seeded() -> World:
    """14 records in 3 partitions, and an application that changes a row the job has just
    read, once per run (its replace must conflict, the row be read again)."""
    w = world()
    asyncio.run(w.seed(14, partitions=3))
    replaces = [0]

    def writer(key: tuple[str, str]) -> None:
        replaces[0] += 1
        if replaces[0] % 9 == 2:
            w.records.touch(*key)

    w.records.before_replace = writer
    return w


@pytest.mark.parametrize(("point", "nth"), CASES, ids=[f"{p}#{n}" for p, n in CASES])
def test_migrations_both_ways_survive_a_crash_anywhere(point: str, nth: int) -> None:
    w = seeded()
    crash_then_resume(w, CrashAt(point, nth), "hierarchy")
    check(w, StoreMode.HIERARCHY)
    crash_then_resume(w, CrashAt(point, nth), "direct")
    check(w, StoreMode.DIRECT)
    assert not w.keks.rows


@pytest.mark.parametrize(("point", "nth"), CASES, ids=[f"{p}#{n}" for p, n in CASES])
def test_kek_rotation_survives_a_crash_anywhere(point: str, nth: int) -> None:
    w = seeded()
    asyncio.run(w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF))
    before = set(w.keks.rows)
    crash_then_resume(w, CrashAt(point, nth), "rotate")
    check(w, StoreMode.HIERARCHY)
    partitions = {p for p, _ in w.keks.rows}
    assert len(w.keks.rows) == len(partitions) == 3  # one (new) version each
    assert not before & set(w.keks.rows)


def test_most_points_really_fire() -> None:
    fired = set()
    for point, nth in CASES:
        for job in ("hierarchy", "direct", "rotate"):
            w = seeded()
            if job != "hierarchy":
                asyncio.run(w.jobs().migrate(StoreMode.HIERARCHY, KEY_REF))
            crash = CrashAt(point, nth)
            crash_then_resume(w, crash, job)
            if crash.fired:
                fired.add(point)
    assert fired == set(ALL_POINTS), set(ALL_POINTS) - fired
