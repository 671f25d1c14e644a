"""The count of DEKs a pass left behind resumes across slices and crashes (issue 12).

Benchmark (g) found the count that ends every pass to be one whole-store call, restarted by
every slice: at 10 million DEKs it outlasts a slice and the job never ends. It now pages the
store and checkpoints on the job. Over the real stores (a SQLite file; Table on Azurite),
with the jobs in a SQLite file (a crash is a reload of that file): a count cut into slices,
cut by a deadline or by a crash gives the total of one uninterrupted count, counts each page
once and never rescans; a fresh pass (restart, verification, retry) counts from zero.

The world: DEKs under an older enabled version (moved), an older disabled one (unreadable:
left behind), a deleted one (unknown to the plan: left behind), the target, and a newer
disabled one (ahead: not behind). The job ends ``INCOMPLETE`` with exactly those behind.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.seed import seed_deks
from shared.crypto import LocalRsaWrapper
from shared.rewrap import Deadline, JobState, JobStatus, RewrapEngine, SqliteJobStore
from shared.rewrap._ledger import PASS_DONE
from shared.rewrap._left_behind import behind_in
from shared.rewrap._passes import LeftBehindCount
from shared.rewrap._probe import COUNT_CHECKPOINT_AFTER, PAGE_SCANNED
from shared.rewrap._target import RewrapPlan
from shared.rewrap._verification import verification_requested
from shared.stores import VersionCount
from tests.rewrap.fakes import (
    KEY_REF,
    OTHER_KEY_REF,
    V1,
    V2,
    V3,
    V4,
    MemoryDekStore,
    engine_for,
    key_source,
    rsa_key,
)
from tests.rewrap.test_crash_resume import CrashAt, SimulatedCrash
from tests.rewrap.test_real_stores import StoreFactory, open_store  # noqa: F401 (fixture)

OLDER, OLDER_DISABLED, TARGET, NEWER_DISABLED = V1, V2, V3, V4
V_GONE = "5" * 32
MOVED, DISABLED, GONE, AT_TARGET, AHEAD = 13, 4, 3, 5, 6
LEFT_BEHIND = DISABLED + GONE
COUNT_PAGE = 3
LATER = timedelta(minutes=10)  # past a dead worker's lease


def _source() -> Any:
    source = key_source(OLDER, OLDER_DISABLED, TARGET, NEWER_DISABLED)
    source.set_enabled(KEY_REF, OLDER_DISABLED, False)
    source.set_enabled(KEY_REF, NEWER_DISABLED, False)
    return source


async def _seed(store: Any) -> None:
    sets = ((OLDER, 0, MOVED), (OLDER_DISABLED, 1, DISABLED), (TARGET, 2, AT_TARGET),
            (NEWER_DISABLED, 3, AHEAD), (V_GONE, 9, GONE))  # fmt: skip
    for version, index, count in sets:
        wrapper = LocalRsaWrapper(f"{KEY_REF}/{version}", private_key=rsa_key(index))
        await seed_deks(store, wrapper, count, partitions=2, prefix=f"s{index}")


class Slice:
    """One slice's view of the engine through its probe: pages scanned and counted; its
    ``should_stop`` answers true once ``limit`` count pages are checkpointed."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.scanned = 0
        self.counted = 0

    def probe(self, point: str) -> None:
        if point == PAGE_SCANNED:
            self.scanned += 1
        elif point == COUNT_CHECKPOINT_AFTER:
            self.counted += 1

    def should_stop(self) -> bool:
        return self.limit is not None and self.counted >= self.limit


def _engine(store: Any, jobs: SqliteJobStore, **options: Any) -> RewrapEngine:
    options.setdefault("owner", "worker-a")
    return engine_for(
        store, _source(), jobs, page_size=8, count_page_size=COUNT_PAGE, workers=4, **options
    )


async def _page_behinds(store: Any, plan: RewrapPlan) -> list[int]:
    """Each count page's DEKs behind, read straight from the store (the oracle)."""
    behinds, continuation = [], None
    while True:
        page = await store.count_versions(KEY_REF, continuation=continuation, page_size=COUNT_PAGE)
        behinds.append(behind_in(page.counts, plan))
        if page.continuation is None:
            return behinds
        continuation = page.continuation


async def _stored(jobs: SqliteJobStore, job_id: str) -> JobState:
    stored = await jobs.get(job_id)
    assert stored is not None
    return stored.state


def test_a_count_over_several_slices_gives_the_total_of_one_count(
    open_store: StoreFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    async def go() -> None:
        store = await open_store()
        await _seed(store)
        jobs = SqliteJobStore(tmp_path / "jobs.db")
        slices: list[Slice] = []
        report = None
        for _ in range(40):
            cut = Slice(limit=2)
            slices.append(cut)
            report = await _engine(store, jobs, probe=cut.probe).run(
                KEY_REF, should_stop=cut.should_stop
            )
            if report.status.ended:
                break
            state = await _stored(jobs, report.job_id)
            # Paused while counting: the passes are recorded as done, the count so far kept.
            assert state.status is JobStatus.RUNNING
            assert state.pass_number == PASS_DONE
            assert state.left_behind_count.pages == sum(s.counted for s in slices)
            assert state.left_behind_count.continuation is not None
        assert report is not None
        plan = await _engine(store, jobs).plan(KEY_REF)
        behinds = await _page_behinds(store, plan)
        pages = len(behinds)
        assert pages >= 8, "the count must span several slices"
        assert report.status is JobStatus.INCOMPLETE
        assert report.state.left_behind == LEFT_BEHIND == sum(behinds)
        assert report.counters.rewrapped == MOVED
        assert report.counters.unreadable_total == LEFT_BEHIND
        # The first slice scanned and counted; the others only counted, two pages each, and
        # every page was counted once: never restarted, never rescanned.
        assert slices[0].scanned > 0
        assert [s.scanned for s in slices[1:]] == [0] * (len(slices) - 1)
        assert all(0 < s.counted <= 2 for s in slices)
        assert sum(s.counted for s in slices) == pages
        assert len(slices) == math.ceil(pages / 2)
        assert report.state.left_behind_count == LeftBehindCount(None, pages, LEFT_BEHIND)
        # One uninterrupted pass agrees, and so does the whole store's count.
        whole = Slice()
        again = await _engine(store, jobs, probe=whole.probe).run(KEY_REF, restart=True)
        assert again.status is JobStatus.INCOMPLETE
        assert again.state.left_behind == LEFT_BEHIND
        assert whole.counted == pages
        assert behind_in(await store.version_counts(KEY_REF), plan) == LEFT_BEHIND
        await store.close()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("point", "nth"), [(COUNT_CHECKPOINT_AFTER, 3), ("job.before_complete", 1)]
)
def test_a_crash_mid_count_resumes_from_the_checkpoint(
    open_store: StoreFactory,  # noqa: F811
    tmp_path: Path,
    point: str,
    nth: int,
) -> None:
    async def go() -> None:
        store = await open_store()
        await _seed(store)
        path = tmp_path / "jobs.db"
        first = SqliteJobStore(path)
        with pytest.raises(SimulatedCrash):
            await _engine(store, first, probe=CrashAt(point, nth)).run(KEY_REF)
        await store.close()

        # Another process: the store and the job file reopened, the dead lease run out.
        store = await open_store()
        jobs = SqliteJobStore(path)
        plan = await _engine(store, jobs).plan(KEY_REF)
        behinds = await _page_behinds(store, plan)
        done = len(behinds) if point == "job.before_complete" else nth
        state = await _stored(jobs, plan.job_id(store.name))
        assert state.status is JobStatus.RUNNING
        assert state.pass_number == PASS_DONE
        assert state.left_behind_count.pages == done
        assert state.left_behind_count.behind == sum(behinds[:done])
        assert (state.left_behind_count.continuation is None) == (done == len(behinds))

        later = datetime.now(UTC) + LATER
        resumed = Slice()
        report = await _engine(
            store, jobs, owner="worker-b", probe=resumed.probe, now=lambda: later
        ).run(KEY_REF)
        assert report.resumed
        assert report.status is JobStatus.INCOMPLETE
        assert report.state.left_behind == LEFT_BEHIND
        assert resumed.scanned == 0
        assert resumed.counted == len(behinds) - done
        await store.close()

    asyncio.run(go())


def test_a_slice_deadline_mid_count_pauses_and_the_next_slice_goes_on(tmp_path: Path) -> None:
    from shared.stores import SqliteDekStore

    async def go() -> None:
        store = SqliteDekStore(tmp_path / "deks.sqlite")
        await _seed(store)
        jobs = SqliteJobStore(tmp_path / "jobs.db")
        clock = [0.0]
        cut = Slice()

        def probe(point: str) -> None:
            cut.probe(point)
            if cut.counted == 2:
                clock[0] = 1_000.0  # the hard deadline passes after the second count page

        deadline = Deadline(100.0, clock=lambda: clock[0])
        paused = await _engine(store, jobs, probe=probe).run(KEY_REF, deadline=deadline)
        assert paused.status is JobStatus.RUNNING
        assert cut.counted == 2
        assert paused.state.left_behind_count.pages == 2
        rest = Slice()
        report = await _engine(store, jobs, probe=rest.probe).run(KEY_REF)
        plan = await _engine(store, jobs).plan(KEY_REF)
        assert rest.scanned == 0
        assert rest.counted == len(await _page_behinds(store, plan)) - 2
        assert report.status is JobStatus.INCOMPLETE
        assert report.state.left_behind == LEFT_BEHIND
        await store.close()

    asyncio.run(go())


@pytest.mark.parametrize("fresh", ["restart", "verification", "retry"])
def test_a_fresh_pass_counts_from_zero(
    open_store: StoreFactory,  # noqa: F811
    tmp_path: Path,
    fresh: str,
) -> None:
    async def go() -> None:
        store = await open_store()
        await _seed(store)
        jobs = SqliteJobStore(tmp_path / "jobs.db")
        plan = await _engine(store, jobs).plan(KEY_REF)
        job_id = plan.job_id(store.name)
        now = datetime.now(UTC)
        if fresh == "restart":  # asked of a job paused in the middle of its count
            cut = Slice(limit=2)
            await _engine(store, jobs, probe=cut.probe).run(KEY_REF, should_stop=cut.should_stop)
            assert (await _stored(jobs, job_id)).left_behind_count.pages == 2
        else:  # asked of a job that ended, its count whole
            ended = await _engine(store, jobs).run(KEY_REF)
            assert ended.state.left_behind_count.pages == len(await _page_behinds(store, plan))
            if fresh == "verification":
                stored = await jobs.get(job_id)
                assert stored is not None
                await jobs.put(verification_requested(stored.state, now), expected_etag=stored.etag)
            else:
                now = now + timedelta(days=1)  # the INCOMPLETE job's retry is due
        behinds = await _page_behinds(store, plan)  # after the first pass moved what it could
        cut = Slice(limit=1)
        paused = await _engine(store, jobs, probe=cut.probe, now=lambda: now).run(
            KEY_REF, restart=fresh == "restart", should_stop=cut.should_stop
        )
        assert paused.status is JobStatus.RUNNING
        assert cut.scanned > 0, "a fresh pass scans again"
        assert paused.state.left_behind_count == LeftBehindCount(
            paused.state.left_behind_count.continuation, 1, behinds[0]
        )
        assert paused.state.verification is (fresh == "verification")
        report = await _engine(store, jobs, now=lambda: now).run(KEY_REF)
        assert report.status is JobStatus.INCOMPLETE
        assert report.state.left_behind == LEFT_BEHIND
        await store.close()

    asyncio.run(go())


def test_behind_counts_older_and_unknown_versions_not_the_target_or_newer_ones() -> None:
    source = _source()
    plan = asyncio.run(engine_for(MemoryDekStore(), source).plan(KEY_REF))
    assert plan.target_version == TARGET
    counts = [
        VersionCount(f"{KEY_REF}/{OLDER}", current=2, previous=100),
        VersionCount(f"{KEY_REF.upper()}/{OLDER_DISABLED}", current=3, unreadable=3),
        VersionCount(f"{KEY_REF}/{TARGET}", current=5),
        VersionCount(f"{KEY_REF}/{NEWER_DISABLED}", current=7),
        VersionCount(f"{KEY_REF}/{V_GONE}", current=11),
        VersionCount(f"{OTHER_KEY_REF}/{OLDER}", current=13),
        VersionCount(f"{KEY_REF}-2/{OLDER}", current=17),
        VersionCount(f"{KEY_REF}/{OLDER}", current=0, previous=19),
    ]
    assert behind_in(counts, plan) == 2 + 3 + 11
    # Pages are disjoint: the sum over any split is the whole's.
    assert behind_in(counts[:3], plan) + behind_in(counts[3:], plan) == 16


def test_a_job_state_keeps_its_count_and_an_old_record_without_one_loads() -> None:
    now = datetime(2026, 12, 6, tzinfo=UTC)
    state = JobState(
        job_id="rewrap-x", key_ref=KEY_REF, target_version=TARGET,
        target_key_id=f"{KEY_REF}/{TARGET}", status=JobStatus.RUNNING, created_at=now,
        updated_at=now, pass_number=PASS_DONE,
        left_behind_count=LeftBehindCount("token-after-page-4", 4, 9),
    )  # fmt: skip
    data = state.to_dict()
    assert data["left_behind_count"] == {
        "continuation": "token-after-page-4", "pages": 4, "behind": 9,
    }  # fmt: skip
    assert JobState.from_dict(data) == state
    del data["left_behind_count"]
    old = JobState.from_dict(data)
    assert old.left_behind_count == LeftBehindCount()
    assert not old.left_behind_count.done
    assert LeftBehindCount(None, 4, 9).done
