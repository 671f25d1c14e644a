"""The heartbeat on both scopes of the shared budget: a member's vault and its subscription
group (``shared.rewrap._membership``), on the in-memory board and real time with a short
lease; the rules themselves are tested on a fake clock in ``test_subscription_share``.
"""

from __future__ import annotations

import asyncio
import time as _time

import pytest

from shared.rewrap import (
    AimdRateLimiter,
    BoardView,
    BudgetMembership,
    InMemoryBudgetBoard,
    ShareRules,
    SubscriptionGroups,
    vault_budget,
)
from tests.rewrap.fakes import KEY_REF, V1, V2, MemoryDekStore, engine_for, key_source, populate
from tests.rewrap.test_membership import _until

RSA_2048 = vault_budget("RSA", 2048)
RULES = ShareRules(share=0.5, headroom=0.98, lease_seconds=0.5)
WHOLE = 400 * (0.5 - 0.02)  # one vault's share, less the vault's headroom


def _member(board: InMemoryBudgetBoard, vault: str, group: str) -> BudgetMembership:
    limiter = AimdRateLimiter(WHOLE)
    return BudgetMembership(board, vault, limiter, RULES, RSA_2048, owner="t:1", group=group)


class PartlyDown(InMemoryBudgetBoard):
    """A board whose partitions named in ``down`` fail (an unreachable partition)."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()

    async def beat(self, vault: str, member: str, *, per_second: float, owner: str) -> BoardView:
        if vault in self.down:
            raise TimeoutError(f"{vault} unreachable")
        return await super().beat(vault, member, per_second=per_second, owner=owner)


def _sending_at_group_part(member: BudgetMembership) -> bool:
    return member.binding_scope == "subscription" and not member._limiter.held


def test_six_vaults_of_one_group_split_five_vault_budgets_and_leave_both_boards() -> None:
    async def go() -> None:
        board = InMemoryBudgetBoard()
        members = [_member(board, f"kv-{i}.vault.azure.net", "sub1") for i in range(6)]
        for member in members:
            await member.__aenter__()
        try:
            for member in members:
                await _until(lambda m=member: _sending_at_group_part(m))
            for member in members:
                # 5 x 196/s over six members: 163/s each, below each vault's 196/s.
                assert member.allotment == pytest.approx(5 * WHOLE / 6)
                assert member.members == 1
            assert len(board.rows("subscription:sub1")) == 6
        finally:
            for member in members:
                await member.close()
        assert board.rows("subscription:sub1") == ()
        assert board.rows("kv-0.vault.azure.net") == ()

    asyncio.run(go())


def test_a_joiner_on_another_vault_of_the_group_waits_until_counted() -> None:
    async def go() -> None:
        board = InMemoryBudgetBoard()
        first = _member(board, "kv-a.vault.azure.net", "sub1")
        async with first:
            await _until(lambda: not first._limiter.held)
            second = _member(board, "kv-b.vault.azure.net", "sub1")
            async with second:
                await _until(lambda: second.members == 1)  # alone on kv-b...
                assert second._limiter.held  # ...but not yet counted in sub1
                joined = _time.monotonic()
                await _until(lambda: not second._limiter.held, poll=0.002)
                assert _time.monotonic() - joined >= RULES.refresh_seconds - 0.05
                assert (second.binding_scope, second.allotment) == ("vault", WHOLE)

    asyncio.run(go())


def test_losing_only_the_group_partition_pauses_then_rejoins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> None:
        board = PartlyDown()
        member = _member(board, "kv-a.vault.azure.net", "sub1")
        async with member:
            await _until(lambda: not member._limiter.held)
            board.down.add("subscription:sub1")
            lost_at = _time.monotonic()
            await _until(lambda: member._limiter.held)
            held_after = _time.monotonic() - lost_at
            assert RULES.live_seconds - RULES.refresh_seconds - 0.05 <= held_after
            assert held_after <= RULES.live_seconds + 0.1
            board.down.clear()
            await _until(lambda: not member._limiter.held)

    with caplog.at_level("INFO", logger="keyward.budget"):
        asyncio.run(go())
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "board unreachable (TimeoutError)" in messages
    assert "subscription:sub1: 1 member(s), vault binds" in messages


def test_the_engine_counts_in_the_group_its_settings_name_for_its_vault() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 20)
    beaten: set[str] = set()

    class Board(InMemoryBudgetBoard):
        async def beat(
            self, vault: str, member: str, *, per_second: float, owner: str
        ) -> BoardView:
            beaten.add(vault)
            return await super().beat(vault, member, per_second=per_second, owner=owner)

    groups = SubscriptionGroups((("contoso-kv.vault.azure.net", "sub7"),))
    engine = engine_for(store, source, rate_ceiling=None, board=Board(), subscription_groups=groups)
    report = asyncio.run(engine.run(KEY_REF, V2))
    assert beaten == {"contoso-kv.vault.azure.net", "subscription:sub7"}
    assert (report.counters.rewrapped, report.binding_scope) == (20, "vault")
