"""The subscription-wide scope of the shared budget (``shared.rewrap._vault_share``), on a
fake clock.

Key Vault's subscription-wide limit is five times one vault's: members on several vaults of
one subscription group split ``share x 5 x budget`` as well as their own vault's share. Each
test runs members of several vaults on one in-memory board (its clock plays the storage
service's), each heartbeat writing and reading both of a member's scopes, and checks after
every step that no vault's members exceed the vault's share and no group's members exceed
the group's.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from shared.rewrap import (
    SUBSCRIPTION_BUDGET_FACTOR,
    Allotment,
    BoardView,
    InMemoryBudgetBoard,
    MemberState,
    Scope,
    ShareRules,
    VaultBudget,
    member_scopes,
    vault_budget,
)
from shared.rewrap._vault_share import ALONE, JOINING, SHARED, SUBSCRIPTION, VAULT

RSA_2048 = vault_budget("RSA", 2048)  # 400/s
RULES = ShareRules(share=0.5, headroom=0.98, lease_seconds=15)
SHARE = 0.5 - (1 - 0.98)  # of one vault's budget: the headroom comes off the share
GROUP_SHARE = SUBSCRIPTION_BUDGET_FACTOR * SHARE  # of one vault's budget


def test_the_subscription_is_five_vaults() -> None:
    """Key Vault's throttling guidance: the subscription-wide limit is 5x one vault's."""
    assert SUBSCRIPTION_BUDGET_FACTOR == 5


class World:
    """Members of several vaults and groups on one board, one clock (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.board = InMemoryBudgetBoard(
            now=lambda: datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=self.now)
        )
        self.members: dict[str, MemberState] = {}
        self.scopes: dict[str, tuple[Scope, ...]] = {}
        self.budgets: dict[str, VaultBudget] = {}
        self.next_beat: dict[str, float] = {}

    def join(self, name: str, vault: str, group: str, budget: VaultBudget = RSA_2048) -> None:
        self.scopes[name] = member_scopes(vault, group)
        self.members[name] = MemberState(RULES, budget, self.scopes[name])
        self.budgets[name] = budget
        self.beat(name)

    def beat(self, name: str) -> None:
        views = [
            _run(self.board.beat(scope.name, name, per_second=0.0, owner="t"))
            for scope in self.scopes[name]
        ]
        self.members[name].beat(self.now, self.now, *views)

    def allotment(self, name: str) -> Allotment:
        return self.members[name].current(self.now)

    def used(self) -> dict[str, float]:
        """Each scope's members' rates now, as fractions of one vault's budget (each member's
        of its own key type)."""
        totals: dict[str, float] = defaultdict(float)
        for name, member in self.members.items():
            rate = member.current(self.now).rate
            for scope in self.scopes[name]:
                if rate is not None:
                    totals[scope.name] += rate / self.budgets[name].operations_per_second
        return totals

    def advance(self, seconds: float, *, step: float = 0.1) -> None:
        """Every member heartbeats every refresh (staggered); after each step no vault uses
        more than its share and no group more than its own."""
        refresh = RULES.refresh_seconds
        end = self.now + seconds
        names = list(self.members)
        for i, name in enumerate(names):
            self.next_beat.setdefault(name, self.now + refresh * (i + 1) / (len(names) + 1))
        while self.now < end - 1e-9:
            self.now = min(end, self.now + step)
            for name in names:
                if self.now >= self.next_beat[name]:
                    self.beat(name)
                    self.next_beat[name] += refresh
            for scope, used in self.used().items():
                limit = GROUP_SHARE if scope.startswith(f"{SUBSCRIPTION}:") else SHARE
                assert used <= limit + 1e-9, (self.now, scope, used)


def _run(coro: object) -> BoardView:
    """Drive a coroutine of the in-memory board (it never awaits anything)."""
    try:
        coro.send(None)  # type: ignore[attr-defined]
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("the in-memory board awaited something")


def test_a_member_alone_on_its_vault_and_group_takes_the_vaults_share_at_once() -> None:
    world = World()
    world.join("a", "kv-a", "sub1")
    assert world.allotment("a") == Allotment(pytest.approx(400 * SHARE), 1, ALONE, VAULT, 1)


def test_ten_vaults_of_one_group_together_stay_within_five_vault_budgets() -> None:
    """The gap this scope closes: ten vaults at 196/s each would take 98% of the
    subscription's 2,000/s; together they now take the share of it."""
    world = World()
    for i in range(10):
        world.join(f"m{i}", f"kv-{i}", "sub1")
        world.advance(RULES.join_wait_seconds + 0.1)
    world.advance(RULES.lease_seconds)
    for i in range(10):
        allotment = world.allotment(f"m{i}")
        assert allotment == Allotment(
            pytest.approx(5 * 400 * SHARE / 10), 1, SHARED, SUBSCRIPTION, 10
        )
    assert world.used()["subscription:sub1"] == pytest.approx(GROUP_SHARE)
    # Each vault alone would allow twice as much: the subscription binds.
    assert 5 * 400 * SHARE / 10 < 400 * SHARE


def test_the_allotment_is_the_smaller_of_the_vault_part_and_the_subscription_part() -> None:
    world = World()
    for name in ("a1", "a2", "a3"):
        world.join(name, "kv-a", "sub1")
    world.join("b1", "kv-b", "sub1")
    world.advance(RULES.lease_seconds)
    # kv-a: 3 members split its share (65/s each) < 4 members split the group's (245/s).
    assert world.allotment("a1") == Allotment(pytest.approx(400 * SHARE / 3), 3, SHARED, VAULT, 4)
    # kv-b: alone on its vault (196/s) < its part of the group (245/s): the vault binds.
    assert world.allotment("b1") == Allotment(pytest.approx(400 * SHARE), 1, SHARED, VAULT, 4)
    for i in range(8):  # eight more vaults in the group: 12 members, 82/s each there
        world.join(f"x{i}", f"kv-x{i}", "sub1")
    world.advance(RULES.lease_seconds)
    group_part = 5 * 400 * SHARE / 12
    assert world.allotment("b1") == Allotment(
        pytest.approx(group_part), 1, SHARED, SUBSCRIPTION, 12
    )
    assert world.allotment("a1").binding == VAULT  # 65/s is still below 82/s
    assert world.used()["subscription:sub1"] <= GROUP_SHARE + 1e-9


def test_two_groups_are_independent() -> None:
    world = World()
    for i in range(10):
        world.join(f"m{i}", f"kv-{i}", "sub1")
    world.join("other", "kv-other", "sub2")
    world.advance(RULES.lease_seconds)
    assert world.allotment("other") == Allotment(pytest.approx(400 * SHARE), 1, ALONE, VAULT, 1)
    assert world.allotment("m0").rate == pytest.approx(5 * 400 * SHARE / 10)
    assert world.used()["subscription:sub2"] == pytest.approx(SHARE)


def test_a_joiner_alone_on_its_vault_waits_to_be_counted_by_its_group() -> None:
    world = World()
    world.join("a", "kv-a", "sub1")
    world.advance(1.0)
    world.join("b", "kv-b", "sub1")
    # b is alone on kv-a's neighbour kv-b, but a has not counted it in sub1 yet.
    assert world.allotment("b") == Allotment(None, 1, JOINING, VAULT, 2)
    world.advance(RULES.join_wait_seconds - 0.2)
    assert world.allotment("b").rate is None
    world.advance(0.3)
    assert world.allotment("b") == Allotment(pytest.approx(400 * SHARE), 1, SHARED, VAULT, 2)


def test_a_joiner_alone_in_its_group_but_not_on_its_vault_waits_too() -> None:
    world = World()
    world.join("a", "kv-a", "sub1")
    world.join("b", "kv-a", "sub2")  # two processes configured differently
    assert world.allotment("b") == Allotment(None, 2, JOINING, VAULT, 1)
    world.advance(RULES.join_wait_seconds + 0.1)
    assert world.allotment("b") == Allotment(pytest.approx(400 * SHARE / 2), 2, SHARED, VAULT, 1)


def test_a_dead_members_part_in_the_group_returns_within_one_lease() -> None:
    world = World()
    for i in range(10):
        world.join(f"m{i}", f"kv-{i}", "sub1")
    world.advance(RULES.lease_seconds)
    del world.members["m9"]  # dies: its rows stay, no longer written
    world.advance(RULES.lease_seconds)
    assert world.allotment("m0") == Allotment(
        pytest.approx(5 * 400 * SHARE / 9), 1, SHARED, SUBSCRIPTION, 9
    )


def test_a_heartbeat_must_read_every_scope() -> None:
    state = MemberState(RULES, RSA_2048, member_scopes("kv-a", "sub1"))
    view = _run(InMemoryBudgetBoard().beat("kv-a", "a", per_second=0.0, owner="t"))
    with pytest.raises(ValueError, match="1 board views for 2 scopes"):
        state.beat(0.0, 0.0, view)
