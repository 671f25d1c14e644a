"""The heartbeat that keeps an engine run on its vault's shared budget, and the limiter it
steers: a ceiling changed at run time, sending held and released, the task ended with the run.

These run on real time with a short lease (a tenth of a second between heartbeats), on the
in-memory board; the rules themselves are tested on a fake clock in ``test_vault_share``.
"""

from __future__ import annotations

import asyncio
import time as _time

import pytest

from shared.rewrap import (
    AimdRateLimiter,
    BudgetMembership,
    Deadline,
    InMemoryBudgetBoard,
    InMemoryJobStore,
    ShareRules,
    SliceDeadlineError,
    vault_budget,
)
from tests.rewrap.fakes import (
    KEY_REF,
    V1,
    V2,
    MemoryDekStore,
    VirtualTime,
    engine_for,
    key_source,
    populate,
)

RSA_2048 = vault_budget("RSA", 2048)
RULES = ShareRules(share=0.5, headroom=0.98, lease_seconds=0.5)
WHOLE = 400 * (0.5 - 0.02)
VAULT = "kv.vault.azure.net"


def _member(board: InMemoryBudgetBoard | None, rules: ShareRules = RULES) -> BudgetMembership:
    limiter = AimdRateLimiter(WHOLE)
    return BudgetMembership(board, VAULT, limiter, rules, RSA_2048, owner="test:1")


async def _until(condition: object, timeout: float = 5.0, poll: float = 0.01) -> None:
    end = _time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if _time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(poll)


# the limiter's run-time ceiling and hold


def test_a_lower_ceiling_applies_at_once() -> None:
    limiter = AimdRateLimiter(400)
    limiter.set_ceiling(100)
    assert (limiter.ceiling, limiter.rate) == (100, 100)


def test_a_higher_ceiling_applies_at_once_when_never_throttled() -> None:
    limiter = AimdRateLimiter(100)
    limiter.set_ceiling(300)
    assert (limiter.ceiling, limiter.rate) == (300, 300)


def test_after_a_429_a_higher_ceiling_is_climbed_to_additively() -> None:
    time = VirtualTime()
    limiter = AimdRateLimiter(100, clock=time.clock, sleep=time.sleep)
    limiter.on_throttled(time.now, retry_after=1.0)
    assert limiter.rate == pytest.approx(70)
    limiter.set_ceiling(300)
    assert limiter.rate == pytest.approx(70)
    for _ in range(50):
        limiter.on_success()
    assert 70 < limiter.rate < 300
    for _ in range(5000):
        limiter.on_success()
    assert limiter.rate == 300


def test_a_part_below_one_operation_a_second_is_kept_even_after_a_429() -> None:
    """Twenty members on an RSA-4096 HSM key (25/s published, half of it keyward's) get
    0.61/s each: the AIMD floor of 1/s must not lift a member above its part."""
    time = VirtualTime()
    limiter = AimdRateLimiter(25 * 0.49 / 20, clock=time.clock, sleep=time.sleep)
    limiter.on_throttled(time.now, retry_after=1.0)
    assert limiter.rate <= 25 * 0.49 / 20
    limiter.set_ceiling(0.001)
    assert 0 < limiter.ceiling <= 0.01


def test_a_held_limiter_sends_nothing_until_released() -> None:
    async def go() -> None:
        limiter = AimdRateLimiter(1000)
        limiter.hold("joining")
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        limiter.release()
        await asyncio.wait_for(waiter, 1.0)

    asyncio.run(go())


def test_a_hold_stops_slots_already_reserved() -> None:
    """Workers asleep until their reserved slot do not send once sending is held (a member
    that lost the board must stop before the others take its part)."""

    async def go() -> None:
        limiter = AimdRateLimiter(10, burst_seconds=0)
        issued: list[float] = []

        async def worker() -> None:
            await limiter.acquire()
            issued.append(_time.monotonic())

        first = asyncio.create_task(worker())
        await first
        waiters = [asyncio.create_task(worker()) for _ in range(3)]  # slots 0.1-0.3 s ahead
        await asyncio.sleep(0.01)
        limiter.hold("board unreachable")
        held_at = _time.monotonic()
        await asyncio.sleep(0.5)
        assert len(issued) == 1
        limiter.release()
        await asyncio.wait_for(asyncio.gather(*waiters), 2.0)
        assert min(issued[1:]) >= held_at + 0.5

    asyncio.run(go())


def test_a_lower_ceiling_applies_to_slots_already_reserved() -> None:
    """Forty workers hold slots up to 0.4 s ahead at 100/s; the ceiling drops to 10/s: what
    is sent from then on is paced at 10/s, not at the rate the slots were reserved at."""

    async def go() -> None:
        limiter = AimdRateLimiter(100, burst_seconds=0)
        issued: list[float] = []

        async def worker() -> None:
            await limiter.acquire()
            issued.append(_time.monotonic())

        waiters = [asyncio.create_task(worker()) for _ in range(40)]
        await asyncio.sleep(0.005)
        lowered_at = _time.monotonic()
        limiter.set_ceiling(10)
        await asyncio.sleep(1.0)
        sent = [t for t in issued if t > lowered_at + 0.001]
        assert len(sent) <= 11  # 10/s for one second (plus the slot at the start)
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)

    asyncio.run(go())


def test_a_hold_that_outlasts_the_slice_deadline_is_refused() -> None:
    async def go() -> None:
        limiter = AimdRateLimiter(1000)
        limiter.hold("board unreachable")
        with pytest.raises(SliceDeadlineError, match="board unreachable"):
            await limiter.acquire(Deadline.after(0.05))

    asyncio.run(go())


# the membership


def test_without_a_board_a_member_is_alone_and_nothing_runs_in_the_background() -> None:
    async def go() -> None:
        tasks_before = asyncio.all_tasks()
        async with _member(None) as member:
            assert asyncio.all_tasks() == tasks_before
            assert (member.members, member.allotment) == (1, WHOLE)

    asyncio.run(go())


def test_members_split_the_share_and_a_joiner_waits_until_counted() -> None:
    async def go() -> None:
        board = InMemoryBudgetBoard()
        first = _member(board)
        async with first:
            await _until(lambda: not first._limiter.held)
            assert (first.members, first.allotment) == (1, pytest.approx(WHOLE))
            second = _member(board)
            async with second:
                assert second._limiter.held
                # When the joiner starts sending, the first member is already at its half.
                await _until(lambda: not second._limiter.held, timeout=5.0, poll=0.002)
                assert first.allotment == pytest.approx(WHOLE / 2)
                assert second.allotment == pytest.approx(WHOLE / 2)
                assert second.members == 2
                assert {row.member for row in board.rows(VAULT)} == {first.member, second.member}
            # The second left: its row is gone, and the first takes the whole share again.
            assert [row.member for row in board.rows(VAULT)] == [first.member]
            await _until(lambda: first.allotment == pytest.approx(WHOLE))
        assert board.rows(VAULT) == ()

    asyncio.run(go())


def test_a_member_that_loses_the_board_pauses_then_rejoins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> None:
        board = InMemoryBudgetBoard()
        member = _member(board)
        async with member:
            await _until(lambda: not member._limiter.held)
            board.reachable = False
            lost_at = _time.monotonic()
            await _until(lambda: member._limiter.held)
            # Kept its allotment while the others could still count it, not longer.
            held_after = _time.monotonic() - lost_at
            assert RULES.live_seconds - RULES.refresh_seconds - 0.05 <= held_after
            assert held_after <= RULES.live_seconds + 0.1
            board.reachable = True
            await _until(lambda: not member._limiter.held)

    with caplog.at_level("INFO", logger="keyward.budget"):
        asyncio.run(go())
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "board unreachable (TransientServiceError)" in messages
    assert "reachable again" in messages


def test_a_dead_members_row_is_deleted_by_the_others() -> None:
    async def go() -> None:
        board = InMemoryBudgetBoard()
        dead = _member(board)
        await dead.__aenter__()
        await _until(lambda: board.rows(VAULT) != ())
        dead._task.cancel()  # type: ignore[union-attr]  # dies: no heartbeat, no leave
        await asyncio.sleep(0.01)
        survivor = _member(board)
        async with survivor:
            await _until(lambda: survivor.members == 1 and not survivor._limiter.held)
            await _until(lambda: [r.member for r in board.rows(VAULT)] == [survivor.member])

    asyncio.run(go())


def test_the_heartbeat_ends_with_the_run_even_when_the_run_is_cancelled() -> None:
    async def go() -> None:
        board = InMemoryBudgetBoard()
        member = _member(board)

        async def run() -> None:
            async with member:
                await asyncio.sleep(10)

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(run(), 0.3)
        assert [t for t in asyncio.all_tasks() if t.get_name() == "keyward-budget"] == []
        assert board.rows(VAULT) == ()

    asyncio.run(go())


def test_a_broken_board_never_fails_the_run() -> None:
    class Broken(InMemoryBudgetBoard):
        async def leave(self, vault: str, member: str) -> None:
            raise RuntimeError("not a ServiceError")

    async def go() -> None:
        member = _member(Broken())
        async with member:
            await _until(lambda: not member._limiter.held)

    asyncio.run(go())


# the engine on a board


def test_an_engine_on_a_board_reports_its_allotment_and_leaves() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 20)
    left: list[str] = []

    class Board(InMemoryBudgetBoard):
        async def leave(self, vault: str, member: str) -> None:
            left.append(vault)
            await super().leave(vault, member)

    board = Board()
    engine = engine_for(store, source, rate_ceiling=None, board=board)

    report = asyncio.run(engine.run(KEY_REF, V2))

    assert sorted(left) == ["contoso-kv.vault.azure.net", "subscription:default"]
    assert report.counters.rewrapped == 20
    assert report.members == 1
    assert report.allotment == pytest.approx(WHOLE)
    assert report.binding_scope == "vault"
    assert board.rows("contoso-kv.vault.azure.net") == ()
    assert board.rows("subscription:default") == ()


def test_an_engine_whose_board_is_down_claims_nothing_and_ends_at_the_deadline() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 5)
    board = InMemoryBudgetBoard()
    board.reachable = False
    jobs = InMemoryJobStore()
    engine = engine_for(store, source, jobs, rate_ceiling=None, board=board)

    async def go() -> None:
        with pytest.raises(SliceDeadlineError, match="joining"):
            await engine.run(KEY_REF, V2, deadline=Deadline.after(0.3))
        assert [t for t in asyncio.all_tasks() if t.get_name() == "keyward-budget"] == []

    asyncio.run(go())
    assert asyncio.run(jobs.list_jobs()) == []  # never claimed: nothing was sent
