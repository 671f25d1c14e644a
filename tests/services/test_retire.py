"""Retiring a key version (issue 11 item 4): the record, the job check, the second look.

In-process parts: keyward's SQLite DEK store (it keeps previous wraps and drops them on
retirement), local RSA key versions, the in-memory job store and retired-version record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.crypto import DataKey, LocalRsaWrapper, VaultAllowList, WrapAlgorithm
from shared.errors import RetirementBlockedError, RetirementRaceError
from shared.rewrap import (
    BlockerKind,
    FailureReason,
    InMemoryJobStore,
    InMemoryRetiredVersions,
    JobState,
    JobStatus,
    RewrapEngine,
    RewrapTargetError,
    ShardMessage,
    SqliteJobStore,
    rewrap_job_id,
)
from shared.services._planner import RewrapPlanner
from shared.services._ports import FlagsPage
from shared.services.admin import AdminService
from shared.services.sweep import SweepService
from shared.stores import (
    CountPage,
    ForgetPage,
    ImmutableCopy,
    NewDek,
    SqliteDekStore,
    VersionCount,
)
from tests.rewrap.fakes import KEY_REF, V1, V2, V3, key_source

SHARD = "sqlite:deks"
NOW = datetime(2026, 12, 6, 11, tzinfo=UTC)


class Queue:
    def __init__(self) -> None:
        self.sent: list[ShardMessage] = []

    async def send(self, message: ShardMessage, *, delay_seconds: int = 0) -> None:
        self.sent.append(message)


class Ledger:
    async def recent_rejections(self, limit: int = 50) -> list[dict[str, Any]]:
        return []


@dataclass
class Dependents:
    pinned: Mapping[str, Sequence[str]]

    async def pinned_versions(self, key_ref: str) -> Mapping[str, Sequence[str]]:
        return self.pinned

    async def status(self, limit: int) -> Mapping[str, FlagsPage]:
        return {}


def _dek(source: Any, index: int, version: str, key_ref: str = KEY_REF) -> NewDek:
    key_id = f"{key_ref}/{version}"
    wrapper = LocalRsaWrapper(key_id, private_key=source.private_key(f"{KEY_REF}/{version}"))
    with DataKey.generate() as dek:
        return NewDek("p0", f"d{index:03}", key_id, WrapAlgorithm.RSA_OAEP_256,
                      wrapper.wrap(dek), dek.kcv)  # fmt: skip


class World:
    def __init__(
        self,
        *,
        pinned: Mapping[str, Sequence[str]] | None = None,
        more_stores: Mapping[str, Any] | None = None,
    ) -> None:
        self.source = key_source(V1, V2)
        self.store = SqliteDekStore()
        self.jobs = InMemoryJobStore()
        self.retired = InMemoryRetiredVersions()
        self.admin = AdminService(
            allow_list=VaultAllowList.parse("contoso-kv"),
            stores={SHARD: self.store, **(more_stores or {})},
            job_store=lambda shard: self.jobs,
            keys=self.source,
            planner=RewrapPlanner(self.source, Queue(), [SHARD]),
            ledger=Ledger(),  # type: ignore[arg-type]
            dependents=Dependents(pinned or {}),  # type: ignore[arg-type]
            retired=self.retired,
        )

    def engine(self) -> RewrapEngine:
        return RewrapEngine(
            store=self.store, keys=self.source, jobs=self.jobs, retired=self.retired,
            job_scope=SHARD,
        )  # fmt: skip

    async def insert(self, version: str, count: int, start: int = 0) -> None:
        deks = [_dek(self.source, start + i, version) for i in range(count)]
        await self.store.insert_batch(deks)


async def test_retire_records_the_version_and_the_verdict_says_safe() -> None:
    world = World()
    await world.insert(V1, 5)
    await world.engine().run(KEY_REF)

    before = await world.admin.verdict(KEY_REF)
    assert [b.kind for b in before.version(V1).blocker_list] == [BlockerKind.PREVIOUS]
    answer = await world.admin.retire(f"{KEY_REF}/{V1}")

    assert answer == {"key": KEY_REF, "version": V1, "status": "retired",
                      "safe_to_disable": True, "previous_wraps_dropped": 5}  # fmt: skip
    assert await world.retired.retired_versions(KEY_REF.upper()) == {V1}
    after = (await world.admin.verdict(KEY_REF)).version(V1)
    assert (after.status, after.retired, after.blockers) == ("safe_to_disable", True, [])


async def test_retire_refuses_while_a_job_of_the_key_is_running_or_pending() -> None:
    world = World()
    state = JobState(
        job_id=rewrap_job_id(KEY_REF, V2, SHARD), key_ref=KEY_REF, target_version=V2,
        target_key_id=f"{KEY_REF}/{V2}", status=JobStatus.RUNNING, created_at=NOW,
        updated_at=NOW, scope=SHARD,
    )  # fmt: skip
    await world.jobs.put(state, expected_etag=None)  # paused between slices: no lease

    with pytest.raises(RetirementBlockedError) as refused:
        await world.admin.retire(KEY_REF, version=V1)

    assert "1 rewrap jobs of the key running or pending" in refused.value.blockers
    assert await world.retired.retired_versions(KEY_REF) == frozenset()


async def test_a_superseded_job_of_an_older_target_does_not_block_forever() -> None:
    world = World()
    world.source.add_version(KEY_REF, V3, world.source.private_key(f"{KEY_REF}/{V2}"))
    stale = JobState(
        job_id=rewrap_job_id(KEY_REF, V2, SHARD), key_ref=KEY_REF, target_version=V2,
        target_key_id=f"{KEY_REF}/{V2}", status=JobStatus.FAILED, created_at=NOW,
        updated_at=NOW, scope=SHARD, lease_expires_at=NOW - timedelta(hours=1),
    )  # fmt: skip
    await world.jobs.put(stale, expected_etag=None)

    assert (await world.admin.retire(KEY_REF, version=V1))["status"] == "retired"


class JobStartsDuringRetire(InMemoryJobStore):
    """A worker claims a job right after the retire call's first look."""

    def __init__(self) -> None:
        super().__init__()
        self.lists = 0

    async def list_jobs(self, key_ref: str | None = None) -> Sequence[JobState]:
        self.lists += 1
        if self.lists == 2:
            state = JobState(
                job_id="rewrap-x", key_ref=KEY_REF, target_version=V2,
                target_key_id=f"{KEY_REF}/{V2}", status=JobStatus.RUNNING, created_at=NOW,
                updated_at=NOW, owner="w", lease_expires_at=datetime.now(UTC) + timedelta(60),
            )  # fmt: skip
            await self.put(state, expected_etag=None)
        return await super().list_jobs(key_ref)


async def test_a_job_claimed_after_the_first_look_makes_retire_withdraw_and_refuse() -> None:
    world = World()
    world.jobs = JobStartsDuringRetire()

    with pytest.raises(RetirementBlockedError) as refused:
        await world.admin.retire(KEY_REF, version=V1)

    assert "a rewrap job started" in str(refused.value)
    assert await world.retired.retired_versions(KEY_REF) == frozenset()


def _app_writes_during_forget(world: World) -> None:
    """Each page of step 4 lets an application write one DEK under the stale version."""
    forget = world.store.forget_previous_page
    written = iter(range(50, 10_000))

    async def forget_then_app_writes(key_id: str, **page: Any) -> ForgetPage:
        dropped = await forget(key_id, **page)
        await world.insert(V1, 1, start=next(written))  # an application with a stale key id
        return dropped

    world.store.forget_previous_page = forget_then_app_writes  # type: ignore[method-assign]


async def test_a_write_that_lands_during_retire_is_reported_as_a_race() -> None:
    world = World()
    await world.insert(V2, 2)
    _app_writes_during_forget(world)
    with pytest.raises(RetirementRaceError) as race:
        await world.admin.retire(KEY_REF, version=V1)

    assert race.value.code_name == "RetirementRace"
    assert race.value.blockers == ["1 DEKs wrapped under it"]
    entry = (await world.admin.verdict(KEY_REF)).version(V1)
    assert entry.status == "retired_in_use"
    assert entry.alerts == ["1 DEKs wrapped under this retired version"]


async def test_nothing_keyward_runs_writes_under_a_retired_version() -> None:
    world = World()
    await world.admin.retire(KEY_REF, version=V1)
    await world.insert(V1, 3)  # applications wrote under the retired version afterwards

    report = await world.engine().run(KEY_REF)

    assert report.state.counters.failed == {FailureReason.RETIRED_VERSION: 3}
    assert report.state.counters.rewrapped == 0
    details = [await world.store.get(f"p0/d{i:03}") for i in range(3)]
    assert all(d is not None and d.record.key_id.endswith(V1) for d in details)
    assert all(d is not None and d.previous_wrapped is None for d in details)
    # The retired version is never a target either.
    world.source.set_enabled(KEY_REF, V2, False)
    with pytest.raises(RewrapTargetError, match="retired"):
        await world.engine().run(KEY_REF)


async def test_the_sweep_alerts_on_deks_under_a_retired_version() -> None:
    """The job that meets DEKs under a retired version counts them; the sweep reads that
    job (never the DEKs) and raises the alert."""
    world = World()
    await world.admin.retire(KEY_REF, version=V1)
    await world.insert(V1, 2)

    class Lister:
        async def list_keys(self, vault_url: str) -> list[str]:
            return [KEY_REF]

    queue = Queue()
    sweep = SweepService(
        allow_list=VaultAllowList.parse("contoso-kv"), lister=Lister(), keys=world.source,
        shards=(SHARD,), job_store=lambda shard: world.jobs, queue=queue,
    )  # fmt: skip
    first = await sweep.run()
    assert first.jobs_started == [rewrap_job_id(KEY_REF, V2, SHARD)]
    assert not [p for p in first.problems if p.startswith("ALERT")]

    await world.engine().run(KEY_REF)  # the queued job, as the worker runs it
    report = await sweep.run()

    job = rewrap_job_id(KEY_REF, V2, SHARD)
    alert = (
        f"ALERT {SHARD}: 2 DEKs under a retired version of {KEY_REF} "
        f"(found by job {job}; left untouched)"
    )
    assert alert in report.problems


class StoreWithCopies(SqliteDekStore):
    """A store that also has immutable copies (as blob versions and snapshots are)."""

    counts: list[VersionCount]

    async def count_versions(self, key_ref: str, **page: Any) -> CountPage:
        return CountPage(self.counts)

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        return self.counts


async def test_the_verdict_lists_every_blocker_by_kind_with_names() -> None:
    store = StoreWithCopies()
    key_id = f"{KEY_REF.upper()}/{V1}"  # counted under any spelling of the key id
    copies = tuple(ImmutableCopy(f"c/blob-{i}", key_id, snapshot=f"t{i}") for i in range(25))
    store.counts = [VersionCount(key_id, immutable=25, immutable_copies=copies)]
    world = World(pinned={V1: ["/subscriptions/s/face-1"]}, more_stores={"blob:c": store})
    await world.insert(V1, 2)

    entry = (await world.admin.verdict(KEY_REF)).version(V1)

    kinds = {b.kind: b for b in entry.blocker_list}
    assert set(kinds) == {BlockerKind.CURRENT, BlockerKind.IMMUTABLE, BlockerKind.PINNED}
    copies = kinds[BlockerKind.IMMUTABLE].to_dict()
    assert (copies["count"], len(copies["names"]), copies["more"]) == (25, 20, 5)
    assert copies["names"][0] == "blob:c: c/blob-0?snapshot=t0"
    with pytest.raises(RetirementBlockedError) as refused:
        await world.admin.retire(KEY_REF, version=V1)
    assert "25 immutable copies wrapped under it (blob:c: 25)" in refused.value.blockers


async def test_concurrent_retire_calls_leave_the_version_retired() -> None:
    import asyncio

    world = World()
    await world.insert(V1, 3)
    await world.engine().run(KEY_REF)

    answers = await asyncio.gather(
        *(world.admin.retire(KEY_REF, version=V1) for _ in range(3)), return_exceptions=True
    )

    assert all(isinstance(a, dict) and a["safe_to_disable"] for a in answers)
    assert await world.retired.retired_versions(KEY_REF) == {V1}


async def test_the_sqlite_job_file_keeps_the_cli_record(tmp_path: Any) -> None:
    jobs = SqliteJobStore(tmp_path / "jobs.sqlite")
    await jobs.record_retired(KEY_REF, V1.upper(), attempt="a")
    await jobs.record_retired(KEY_REF, V1, attempt="b")
    assert not await jobs.withdraw_retired(KEY_REF, V1, attempt="a")  # b's record stays
    assert await jobs.retired_versions(KEY_REF.replace("payments", "PAYMENTS")) == {V1}
    assert await jobs.withdraw_retired(KEY_REF, V1, attempt="b")
    assert await jobs.retired_versions(KEY_REF) == frozenset()
    await jobs.close()


async def test_a_job_short_of_clean_blocks_until_its_retries_are_spent() -> None:
    world = World()
    short = JobState(
        job_id=rewrap_job_id(KEY_REF, V2, SHARD), key_ref=KEY_REF, target_version=V2,
        target_key_id=f"{KEY_REF}/{V2}", status=JobStatus.COMPLETED_WITH_FAILURES,
        created_at=NOW, updated_at=NOW, scope=SHARD, attempts=1,
    )  # fmt: skip
    etag = await world.jobs.put(short, expected_etag=None)
    with pytest.raises(RetirementBlockedError):
        await world.admin.retire(KEY_REF, version=V1)  # the sweep will run it again

    spent = short.evolve(attempts=short.max_attempts)
    await world.jobs.put(spent, expected_etag=etag)
    assert (await world.admin.retire(KEY_REF, version=V1))["status"] == "retired"
