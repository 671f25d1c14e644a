"""The shared vault budget's rules (``shared.rewrap._vault_share``), on a fake clock.

Several members are simulated on one in-memory board whose clock plays the storage
service's: each test moves time by hand, lets members heartbeat in a chosen order, and checks
what each may send, and that the members' rates, as fractions of their own key type's
budget, never add up to more than the share.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.rewrap import (
    Allotment,
    BoardRow,
    BoardView,
    InMemoryBudgetBoard,
    MemberState,
    ShareRules,
    VaultBudget,
    vault_budget,
    vault_host,
)
from shared.rewrap._vault_share import (
    ALONE,
    BOARD_LOST,
    JOIN_MARGIN_SECONDS,
    JOINING,
    SHARED,
)

RSA_2048 = vault_budget("RSA", 2048)  # 400/s
RSA_4096_HSM = vault_budget("RSA-HSM", 4096)  # 25/s
VAULT = "kv.vault.azure.net"
RULES = ShareRules(share=0.5, headroom=0.98, lease_seconds=15)
SHARE = 0.5 - (1 - 0.98)  # the headroom is the vault's: 0.48 of the budget


class World:
    """Members on one board, with one clock for the service and every member (seconds)."""

    def __init__(self, rules: ShareRules = RULES) -> None:
        self.rules = rules
        self.now = 1000.0
        self.board = InMemoryBudgetBoard(
            now=lambda: datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=self.now)
        )
        self.members: dict[str, MemberState] = {}
        self.budgets: dict[str, VaultBudget] = {}
        #: When each member beats next, kept across calls of :meth:`advance`.
        self.next_beat: dict[str, float] = {}

    def join(self, name: str, budget: VaultBudget = RSA_2048) -> MemberState:
        self.members[name] = MemberState(self.rules, budget)
        self.budgets[name] = budget
        self.beat(name)
        return self.members[name]

    def beat(self, name: str) -> None:
        view = _run(self.board.beat(VAULT, name, per_second=0.0, owner="test"))
        self.members[name].beat(self.now, self.now, view)

    def expire(self, name: str) -> None:
        """``name`` heartbeats and deletes what it reads as dead for a whole lease."""
        view = _run(self.board.beat(VAULT, name, per_second=0.0, owner="test"))
        self.members[name].beat(self.now, self.now, view)
        for row in self.rules.expired(view):
            _run(self.board.expire(VAULT, row))

    def leave(self, name: str) -> None:
        del self.members[name]
        _run(self.board.leave(VAULT, name))

    def allotment(self, name: str) -> Allotment:
        return self.members[name].current(self.now)

    def used(self) -> float:
        """The members' rates now, as a fraction of the vault (each of its own key type)."""
        total = 0.0
        for name, member in self.members.items():
            rate = member.current(self.now).rate
            if rate is not None:
                total += rate / self.budgets[name].operations_per_second
        return total

    def advance(self, seconds: float, *, beating: tuple[str, ...] = (), step: float = 0.1) -> None:
        """Move time by ``seconds`` in steps; members in ``beating`` heartbeat every refresh
        (at staggered offsets); after every step the sum must stay within the share."""
        refresh = self.rules.refresh_seconds
        end = self.now + seconds
        for i, name in enumerate(beating):
            self.next_beat.setdefault(name, self.now + refresh * (i + 1) / (len(beating) + 1))
        while self.now < end - 1e-9:
            self.now = min(end, self.now + step)
            for name in beating:
                if name in self.members and self.now >= self.next_beat[name]:
                    self.beat(name)
                    self.next_beat[name] += refresh
            assert self.used() <= SHARE + 1e-9, (self.now, self.used())


def _run(coro: object) -> BoardView:
    """Drive a coroutine of the in-memory board (it never awaits anything)."""
    try:
        coro.send(None)  # type: ignore[attr-defined]
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("the in-memory board awaited something")


def test_figures_follow_the_lease() -> None:
    assert RULES.refresh_seconds == 3
    assert RULES.live_seconds == 12
    assert RULES.join_wait_seconds == 3 + JOIN_MARGIN_SECONDS


def test_a_member_alone_sends_at_once_at_the_whole_share() -> None:
    world = World()
    first = world.join("a")
    assert first.current(world.now) == Allotment(pytest.approx(400 * SHARE), 1, ALONE)


def test_the_share_is_split_equally_and_a_joiner_waits_to_be_counted() -> None:
    world = World()
    world.join("a")
    world.advance(1.0)
    world.join("b")
    # b saw a live member: it sends nothing until a has heartbeat and lowered its rate.
    assert world.allotment("b") == Allotment(None, 2, JOINING)
    assert world.allotment("a").rate == pytest.approx(400 * SHARE)
    world.advance(RULES.join_wait_seconds - 0.05, beating=("a",))
    assert world.allotment("b").rate is None
    assert world.allotment("a") == Allotment(pytest.approx(200 * SHARE), 2, SHARED)
    world.advance(0.1, beating=("a",))
    assert world.allotment("b") == Allotment(pytest.approx(200 * SHARE), 2, SHARED)
    world.join("c")
    world.advance(RULES.join_wait_seconds + 0.1, beating=("a", "b"))
    rates = [world.allotment(name).rate for name in "abc"]
    assert rates == [pytest.approx(400 * SHARE / 3)] * 3
    assert world.used() == pytest.approx(SHARE)


def test_two_members_joining_at_once_cannot_both_skip_the_wait() -> None:
    world = World()
    world.members["a"] = MemberState(RULES, RSA_2048)
    world.members["b"] = MemberState(RULES, RSA_2048)
    world.budgets.update(a=RSA_2048, b=RSA_2048)
    # Both write before either reads (the worst interleaving): both see each other.
    view_a = _run(world.board.beat(VAULT, "a", per_second=0.0, owner="t"))
    view_b = _run(world.board.beat(VAULT, "b", per_second=0.0, owner="t"))
    view_a = BoardView(view_a.own, world.board.rows(VAULT))
    world.members["a"].beat(world.now, world.now, view_a)
    world.members["b"].beat(world.now, world.now, view_b)
    assert world.used() == 0
    world.advance(RULES.join_wait_seconds + 0.1, beating=("a", "b"))
    assert world.used() == pytest.approx(SHARE)


def test_a_dead_members_part_returns_within_one_lease() -> None:
    world = World()
    world.join("a")
    world.join("b")
    world.advance(RULES.join_wait_seconds + 0.1, beating=("a", "b"))
    assert world.allotment("a").rate == pytest.approx(200 * SHARE)
    # b dies right after a heartbeat: no more heartbeats, no leave.
    world.beat("b")
    died_at = world.now
    world.members.pop("b")
    while world.allotment("a").members == 2 and world.now - died_at < 60:
        world.advance(0.1, beating=("a",))
    # Its part came back after "lease - refresh" (not live any more), within one lease.
    assert RULES.live_seconds < world.now - died_at <= RULES.lease_seconds
    assert world.allotment("a") == Allotment(pytest.approx(400 * SHARE), 1, ALONE)
    world.advance(RULES.lease_seconds, beating=("a",))
    world.expire("a")
    assert [row.member for row in world.board.rows(VAULT)] == ["a"]


def test_a_dead_member_is_still_counted_until_its_row_is_no_longer_live() -> None:
    world = World()
    world.join("a")
    world.join("b")
    world.advance(RULES.join_wait_seconds + 0.1, beating=("a", "b"))
    world.members.pop("b")
    world.advance(RULES.live_seconds - RULES.refresh_seconds - 0.5, beating=("a",))
    assert world.allotment("a").members == 2


def test_a_leaving_member_returns_its_part_at_the_next_heartbeat() -> None:
    world = World()
    world.join("a")
    world.join("b")
    world.advance(RULES.join_wait_seconds + 0.1, beating=("a", "b"))
    world.leave("b")
    world.advance(RULES.refresh_seconds + 0.1, beating=("a",))
    assert world.allotment("a") == Allotment(pytest.approx(400 * SHARE), 1, ALONE)


def test_members_of_different_key_types_each_take_a_part_of_their_own_budget() -> None:
    world = World()
    world.join("rsa", RSA_2048)
    world.join("hsm", RSA_4096_HSM)
    world.advance(RULES.join_wait_seconds + 0.1, beating=("rsa", "hsm"))
    assert world.allotment("rsa").rate == pytest.approx(400 * SHARE / 2)
    assert world.allotment("hsm").rate == pytest.approx(25 * SHARE / 2)
    # Key Vault charges an RSA-4096 HSM operation 16 RSA-2048 ones: half of each is the share.
    assert world.used() == pytest.approx(SHARE)


def test_an_unreachable_board_keeps_the_allotment_then_pauses_until_a_heartbeat() -> None:
    world = World()
    world.join("a")
    world.join("b")
    world.advance(RULES.join_wait_seconds + 0.1, beating=("a", "b"))
    last_ok = world.now
    world.beat("a")
    part = world.allotment("a").rate
    # a cannot reach the board: it keeps its part while the others still count it ...
    world.advance(RULES.live_seconds - 0.1, beating=("b",))
    assert world.allotment("a").rate == part
    assert world.members["a"].next_change(world.now) == pytest.approx(last_ok + 12)
    # ... and stops before they stop counting it (b's read: a's row no longer live).
    world.advance(0.1, beating=("b",))
    assert world.allotment("a") == Allotment(None, 2, BOARD_LOST)
    world.advance(RULES.refresh_seconds, beating=("b",))
    assert world.allotment("b") == Allotment(pytest.approx(400 * SHARE), 1, ALONE)
    # Back on the board, a is a joiner again: b must count it before it sends.
    world.beat("a")
    assert world.allotment("a") == Allotment(None, 2, JOINING)
    world.advance(RULES.join_wait_seconds + 0.1, beating=("a", "b"))
    assert world.allotment("a").rate == pytest.approx(200 * SHARE)


def test_a_short_outage_keeps_the_member_counted_and_sending() -> None:
    world = World()
    world.join("a")
    world.join("b")
    world.advance(RULES.join_wait_seconds + 0.1, beating=("a", "b"))
    world.beat("a")
    world.advance(RULES.refresh_seconds * 2, beating=("b",))  # a misses two heartbeats
    world.beat("a")
    assert world.allotment("a") == Allotment(pytest.approx(200 * SHARE), 2, SHARED)


def test_a_member_that_never_reached_the_board_sends_nothing() -> None:
    member = MemberState(RULES, RSA_2048)
    assert member.current(0.0) == Allotment(None, 0, JOINING)
    assert member.next_change(0.0) is None


def test_the_operator_cap_limits_a_members_part() -> None:
    rules = ShareRules(share=0.5, headroom=0.98, lease_seconds=15, rate_ceiling=50)
    assert rules.part(RSA_2048, 1) == 50
    assert rules.part(RSA_2048, 8) == pytest.approx(400 * SHARE / 8)


def test_rows_written_after_the_readers_own_are_live_and_only_old_rows_expire() -> None:
    t = datetime(2026, 12, 1, tzinfo=UTC)
    own = BoardRow("me", t, "1")
    rows = (
        own,
        BoardRow("later", t + timedelta(seconds=1), "2"),
        BoardRow("edge", t - timedelta(seconds=12), "3"),
        BoardRow("stale", t - timedelta(seconds=12.5), "4"),
        BoardRow("dead", t - timedelta(seconds=15.5), "5"),
    )
    view = BoardView(own, rows)
    assert [row.member for row in RULES.live(view)] == ["me", "later", "edge"]
    assert [row.member for row in RULES.expired(view)] == ["dead"]


@pytest.mark.parametrize(
    "figures", [{"share": 0}, {"share": 1.5}, {"headroom": 0}, {"lease_seconds": 0}]
)
def test_impossible_figures_are_refused(figures: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ShareRules(**figures)


def test_the_board_names_a_vault_by_its_host() -> None:
    assert vault_host("https://KV.vault.azure.net/keys/k") == "kv.vault.azure.net"
    assert vault_host("https://127.0.0.1:8443/keys/k") == "127.0.0.1:8443"
