"""The limiter paces at the vault's budget, honours Retry-After, and backs off / recovers (AIMD)."""

from __future__ import annotations

import asyncio
import time as _time

import pytest

from shared.errors import ThrottledError
from shared.rewrap import AimdRateLimiter, vault_budget
from tests.rewrap.fakes import (
    KEY_REF,
    V1,
    V2,
    FaultyKeySource,
    MemoryDekStore,
    VirtualTime,
    engine_for,
    key_source,
    populate,
)


@pytest.mark.parametrize(
    ("key_type", "size", "per_window"),
    [
        ("RSA", 2048, 4000),
        ("RSA-HSM", 2048, 2000),
        ("RSA", 3072, 1000),
        ("RSA-HSM", 3072, 500),
        ("RSA", 4096, 500),
        ("RSA-HSM", 4096, 250),
    ],
)
def test_budget_is_the_published_figure(key_type: str, size: int, per_window: int) -> None:
    budget = vault_budget(key_type, size)
    assert budget.operations_per_window == per_window
    assert budget.operations_per_second == per_window / 10


@pytest.mark.parametrize(("key_type", "size"), [("oct-HSM", 256), ("oct", 128), ("RSA", 8192)])
def test_keys_without_a_published_row_get_the_lowest_figure(key_type: str, size: int) -> None:
    """Managed HSM publishes no limit for oct keys; larger RSA keys are not in the table."""
    assert vault_budget(key_type, size).operations_per_window == 250


def test_limiter_paces_at_its_rate() -> None:
    time = VirtualTime()
    limiter = AimdRateLimiter(
        400, burst_seconds=0, tick_seconds=0, clock=time.clock, sleep=time.sleep
    )

    async def go() -> None:
        for _ in range(400):
            await limiter.acquire()

    start = time.now
    asyncio.run(go())
    assert time.now - start == pytest.approx(399 / 400)


def test_tick_grid_keeps_the_rate_in_real_time() -> None:
    limiter = AimdRateLimiter(400)
    issued: list[float] = []

    async def worker() -> None:
        for _ in range(25):
            issued.append(await limiter.acquire())

    async def go() -> float:
        start = _time.monotonic()
        await asyncio.gather(*(worker() for _ in range(8)))
        return _time.monotonic() - start

    elapsed = asyncio.run(go())
    # Never faster than the rate (bar the small initial burst), and not much slower.
    assert elapsed >= 200 / 400 - 0.05
    assert elapsed < 200 / 400 + 0.35
    assert len(issued) == 200


def test_throttle_waits_retry_after_and_cuts_the_rate_once_per_generation() -> None:
    time = VirtualTime()
    limiter = AimdRateLimiter(400, burst_seconds=0, clock=time.clock, sleep=time.sleep)

    async def go() -> None:
        issued = [await limiter.acquire() for _ in range(10)]
        # Ten in-flight requests all answered 429: one cut, not ten.
        for moment in issued:
            limiter.on_throttled(moment, retry_after=2.0)
        before = time.now
        await limiter.acquire()
        assert time.now - before == pytest.approx(2.0)

    asyncio.run(go())
    assert limiter.decreases == 1
    assert limiter.rate == pytest.approx(400 * 0.7)


def test_without_retry_after_the_pause_doubles_per_generation_and_resets() -> None:
    """Key Vault may send a 429 with no Retry-After: the limiter chooses the pause itself,
    1, 2, 4, 8 s for each generation throttled again (never past one 10 s window), and
    starts again at 1 s after a success."""
    time = VirtualTime()
    limiter = AimdRateLimiter(400, burst_seconds=0, clock=time.clock, sleep=time.sleep)
    pauses: list[float] = []

    async def throttled_generation(width: int) -> None:
        issued = [await limiter.acquire() for _ in range(width)]
        for moment in issued:  # a burst of in-flight 429s is one generation
            limiter.on_throttled(moment, retry_after=None)
        before = time.now
        await limiter.acquire()
        pauses.append(round(time.now - before, 3))

    async def go() -> None:
        for _ in range(6):
            await throttled_generation(5)
        limiter.on_success()
        await throttled_generation(5)

    asyncio.run(go())
    assert pauses == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 1.0]


def test_rate_recovers_additively_to_the_ceiling() -> None:
    time = VirtualTime()
    limiter = AimdRateLimiter(400, start_rate=200, clock=time.clock, sleep=time.sleep)
    rates = []
    for _ in range(2000):
        limiter.on_success()
        rates.append(limiter.rate)
    assert rates == sorted(rates)
    assert rates[0] < 201
    assert limiter.rate == 400


def test_engine_backs_off_on_429_and_recovers() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 60)
    answers = iter([None] * 10 + [ThrottledError("429", retry_after=1.5)] * 3 + [None] * 1000)
    faulty = FaultyKeySource(source, lambda _: next(answers))
    time = VirtualTime()

    engine = engine_for(
        store, faulty, workers=1, rate_ceiling=100, clock=time.clock, sleep=time.sleep
    )
    report = asyncio.run(engine.run(KEY_REF, V2))

    assert report.counters.rewrapped == 60
    assert report.counters.throttled == 3
    assert report.counters.vault_operations == 63
    assert report.rate_decreases == 3  # one worker: each 429 is a new generation
    assert any(wait >= 1.5 for wait in time.sleeps)
    assert 100 * 0.7**3 < report.final_rate <= 100
    # Virtual time: 63 slots at <= 100/s plus three Retry-After pauses of 1.5 s.
    assert time.now - 100.0 >= 4.5 + 0.5


def test_engine_starts_from_the_key_budget() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 40)
    time = VirtualTime()
    engine = engine_for(
        store, source, workers=8, rate_ceiling=None, clock=time.clock, sleep=time.sleep
    )

    report = asyncio.run(engine.run(KEY_REF, V2))

    assert report.budget.operations_per_window == 4000
    # Alone (no budget board), the run takes keyward's whole share: half the vault by default.
    # The 2% headroom is the vault's, so it comes off the share: (0.5 - 0.02) x 400.
    assert report.final_rate == pytest.approx(400 * 0.48)
    assert report.allotment == pytest.approx(400 * 0.48)
    assert report.members == 1
    # 40 unwraps at 192/s take about a fifth of a virtual second.
    assert 0.17 < time.now - 100.0 < 0.28


class StallingTime(VirtualTime):
    """Virtual time in which the first sleep past ``stall_at`` wakes ``stall`` seconds late:
    a starved process, or an event loop blocked by something else."""

    def __init__(self, stall_at: float, stall: float) -> None:
        super().__init__()
        self._stall_at, self._stall = stall_at, stall

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self._stall and self.now >= self._stall_at:
            self.now += self._stall
            self._stall = 0.0
        await asyncio.sleep(0)


def _busiest_second(sent: list[float]) -> int:
    sent = sorted(sent)
    return max(sum(1 for t in sent[i:] if t < start + 1.0) for i, start in enumerate(sent))


def test_a_stall_does_not_release_its_slots_at_once() -> None:
    """Slots that fell inside a stall are not all sent when it ends (bench (f) saw 500-690/s
    from members paced at 33/s): no one-second window holds more than the rate, plus one and
    the one tenth of a second the guard's buckets may leave uncounted at the window's edge."""
    time = StallingTime(stall_at=101.0, stall=2.0)
    limiter = AimdRateLimiter(33, clock=time.clock, sleep=time.sleep)
    sent: list[float] = []

    async def worker() -> None:
        for _ in range(10):
            sent.append(await limiter.acquire())

    async def go() -> None:
        await asyncio.gather(*(worker() for _ in range(32)))

    asyncio.run(go())
    assert len(sent) == 320
    assert _busiest_second(sent) <= 33 * 1.1 + 1
    # The guard costs the stall, not the pace: 320 at 33/s is 9.7 s, plus the 2-second stall.
    assert max(sent) - 100.0 < 320 / 33 + 2.0 + 1.0


def test_a_raised_ceiling_is_taken_at_once_unless_throttled_within_a_window() -> None:
    """A part handed back (a member left or died) is taken at once when the vault has said
    nothing for a whole 10-second window; after a recent 429 the rate climbs to it."""
    time = VirtualTime()
    limiter = AimdRateLimiter(50, clock=time.clock, sleep=time.sleep)
    limiter.on_throttled(time.now, retry_after=1.0)
    cut = limiter.rate
    limiter.set_ceiling(100)
    assert limiter.ceiling == 100
    assert limiter.rate == cut  # 429 just now: climb
    time.now += 10.0
    limiter.set_ceiling(150)
    assert limiter.rate == 150  # a whole window without a 429: at once
