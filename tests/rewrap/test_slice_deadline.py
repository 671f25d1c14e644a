"""Unbounded waits are bounded (issue 11 item 8): Retry-After is capped wherever it is obeyed,
and a slice's hard deadline holds inside page work, so under sustained 429s a slice ends on
time and the job still completes over later slices (crash-resume semantics unchanged).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from devtools.seed import seed_deks
from shared.adapters import AsyncKeyVaultAdapter
from shared.crypto import LocalRsaWrapper, VaultAllowList
from shared.errors import MAX_RETRY_AFTER_SECONDS, ThrottledError
from shared.rewrap import (
    AimdRateLimiter,
    Deadline,
    EngineSettings,
    InMemoryJobStore,
    JobStatus,
    RetryPolicy,
    RewrapEngine,
    SliceDeadlineError,
)
from shared.rewrap._retry import CallStats, VaultCaller, call_store
from shared.stores import SqliteDekStore
from tests.rewrap.fakes import (
    KEY_REF,
    V1,
    V2,
    FaultyKeySource,
    MemoryDekStore,
    engine_for,
    key_source,
    populate,
    unwrap_row,
)


class FakeTime:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize("retry_after", [float("inf"), 1e9, 3600.0])
def test_the_limiter_obeys_a_huge_retry_after_for_at_most_the_cap(retry_after: float) -> None:
    fake = FakeTime()
    limiter = AimdRateLimiter(100.0, clock=fake.clock, sleep=fake.sleep)
    limiter.on_throttled(fake.now, retry_after)  # inf used to raise OverflowError later

    asyncio.run(limiter.acquire())

    assert sum(fake.slept) <= MAX_RETRY_AFTER_SECONDS + 0.1


def test_a_store_retry_caps_retry_after_and_stops_at_the_deadline() -> None:
    fake = FakeTime()
    calls = 0

    async def throttled() -> None:
        nonlocal calls
        calls += 1
        raise ThrottledError("busy", retry_after=1e9)

    with pytest.raises(SliceDeadlineError):
        asyncio.run(
            call_store(
                throttled,
                RetryPolicy(max_transient_attempts=50),
                sleep=fake.sleep,
                deadline=Deadline(fake.now + 150.0, clock=fake.clock),
            )
        )
    assert fake.slept == [MAX_RETRY_AFTER_SECONDS, MAX_RETRY_AFTER_SECONDS]
    assert calls == 3
    assert fake.now <= 1150.0


def test_a_vault_call_under_sustained_429s_gives_up_at_the_deadline_not_after() -> None:
    fake = FakeTime()
    limiter = AimdRateLimiter(100.0, clock=fake.clock, sleep=fake.sleep)
    deadline = Deadline(fake.now + 30.0, clock=fake.clock)
    caller = VaultCaller(limiter, RetryPolicy(), CallStats(), sleep=fake.sleep, deadline=deadline)

    async def throttled() -> None:
        raise ThrottledError("busy", retry_after=None)  # the limiter backs off on its own

    with pytest.raises(SliceDeadlineError):
        asyncio.run(caller.call(throttled))
    assert fake.now <= deadline.at


def test_sustained_429s_end_the_slice_by_its_deadline_and_later_slices_finish() -> None:
    """In process, on a fake clock: every unwrap is throttled with an absurd Retry-After for
    the first slice; the slice pauses at its deadline with nothing lost, and the next slices
    (the vault recovered) finish the job."""
    source = key_source(V1, V2)
    store = MemoryDekStore()
    plaintexts = populate(store, source, [V1], 12)
    throttling = [True]
    faulty = FaultyKeySource(
        source,
        lambda key_id: ThrottledError("busy", retry_after=float("inf")) if throttling[0] else None,
    )
    fake = FakeTime()
    jobs = InMemoryJobStore()

    def engine() -> RewrapEngine:
        return engine_for(
            store, faulty, jobs, page_size=4, workers=2, clock=fake.clock, sleep=fake.sleep
        )

    deadline = Deadline(fake.now + 100.0, clock=fake.clock)
    first = asyncio.run(engine().run(KEY_REF, V2, deadline=deadline))

    assert first.status is JobStatus.RUNNING, "the slice paused, the job goes on"
    assert fake.now <= deadline.at
    assert first.state.owner is None, "the lease is released for the continuation"
    assert all(row.key_id.endswith(V1) for row in store.rows.values())

    throttling[0] = False
    for _ in range(5):
        report = asyncio.run(
            engine().run(KEY_REF, V2, deadline=Deadline(fake.now + 100.0, clock=fake.clock))
        )
        if report.status.ended:
            break
    assert report.status is JobStatus.COMPLETED
    assert report.counters.rewrapped == 12
    assert report.consistent
    for ref, row in store.rows.items():
        assert unwrap_row(source, row) == plaintexts[ref]


@pytest.mark.emulator
def test_sustained_429s_from_the_emulator_end_each_slice_by_its_deadline(
    emulator_vault: Any, tmp_path: Path
) -> None:
    vault = emulator_vault
    client = vault.client
    client.create_key(vault.name, "deks", kty="RSA", size=2048)
    key_ref = f"{vault.url}/keys/deks"
    allow = VaultAllowList.parse(f"{vault.name}={vault.url}")
    count = 40
    hard_seconds = 1.5

    async def go() -> None:
        adapter = AsyncKeyVaultAdapter(
            vault.async_credential(), allow, ca_bundle=vault.emulator.ca_path
        )
        store = SqliteDekStore(tmp_path / "deks.sqlite")
        jobs = InMemoryJobStore()
        try:
            old = await adapter.newest_enabled_version(key_ref)
            public = await adapter.public_key(f"{key_ref}/{old}")
            seeder = LocalRsaWrapper(f"{key_ref}/{old}", public_key=public.rsa_public_key)
            await seed_deks(store, seeder, count, partitions=2)
            client.rotate_key(vault.name, "deks")
            # Far below what the engine starts at: 429s (Retry-After 1-2 s) all the time.
            client.set_throttle(vault.name, budget=12, window_seconds=2.0, enabled=True)
            slices, overran, paused = 0, [], 0
            report = None
            for _ in range(80):
                engine = RewrapEngine(
                    store=store,
                    keys=adapter,
                    jobs=jobs,
                    settings=EngineSettings(workers=4, page_size=5),
                )
                started = time.monotonic()
                soft_end = started + hard_seconds / 2
                deadline = Deadline(started + hard_seconds)
                try:
                    report = await engine.run(
                        key_ref,
                        should_stop=lambda end=soft_end: time.monotonic() >= end,
                        deadline=deadline,
                    )
                except (SliceDeadlineError, ThrottledError):
                    # Ran out before claiming (the probe waited), or the plan's vault reads
                    # were throttled (the worker raises; the queue redelivers): next slice.
                    report = None
                    await asyncio.sleep(0.5)
                elapsed = time.monotonic() - started
                slices += 1
                if elapsed > hard_seconds + 1.0:
                    overran.append(elapsed)
                if report is not None and report.status.ended:
                    break
                if report is not None:
                    paused += 1  # the slice ended with the job running: resumable
            assert report is not None
            assert report.status is JobStatus.COMPLETED
            assert report.state.left_behind == 0
            new = report.state.target_version
            rows = (await store.scan(key_ref, exclude_version=None, page_size=1000)).records
            assert len(rows) == count
            assert all(row.key_id == f"{key_ref}/{new}" for row in rows)
            # A page written but not checkpointed when a deadline stopped its slice is found
            # at the target next time, as after a crash; this store filters those out.
            assert report.counters.rewrapped <= count
            assert paused >= 2, "the throttle must have forced the job over several slices"
            assert overran == [], "a slice outlived its deadline"
            throttled = client.counters(vault.name)["vault"].get("throttled", 0)
            assert throttled > 0, "the vault answered 429s"
        finally:
            await store.close()
            await adapter.close()

    asyncio.run(go())
