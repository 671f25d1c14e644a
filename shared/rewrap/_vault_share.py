"""The rules of a vault's shared budget: who is a live member, what each may send, when.

keyward takes ``share x published budget x headroom`` of a vault (the rest is left to the
vault's other users) and splits it equally among the engine runs that are *members* of that
vault's board (:mod:`shared.rewrap._budget_board`). Pure: the heartbeat loop
(:mod:`shared.rewrap._membership`) feeds these rules what it read and the time, and applies
the :class:`Allotment` they answer to the engine's rate limiter.

The rules, and why each keeps the sum of the members' rates within the share:

- A member heartbeats every ``lease / 5`` s (``refresh``): it writes its row, then reads
  the vault's rows. Ages are measured on the storage service's clock: a row's age is the
  reader's own fresh ``Timestamp`` minus that row's (no local clock is compared across
  machines).
- A member is *live* while its age is at most ``lease - refresh``; the share is split
  equally among live members, each member's part a fraction of its *own* key type's
  published budget (Key Vault charges a vault's budget by key type, so a member on RSA-4096
  taking 1/n of the RSA-4096 figure uses 1/n of the vault, as a member on RSA-2048 does).
- A member that joins sends nothing for one refresh interval plus :data:`JOIN_MARGIN_SECONDS`
  after its row is written, unless the board showed no other live member: by then every
  other member has read its row and lowered its own rate, so the sum never exceeds the share,
  not even at a join. (Two members joining at once cannot both see an empty board: each wrote
  before it read, so the later reader sees the earlier writer.)
- A member that has not completed a heartbeat for ``lease - refresh`` s (its own clock, from
  the start of its last good heartbeat, which precedes the service's stamp of its row) stops
  sending until a heartbeat succeeds: from then on the others may no longer count it, and
  they take its part. If it was held that long, a heartbeat that succeeds again is a join
  (the others must count it again before it sends). This is stricter than "keep the last
  allotment for one lease": holding for a full lease would overlap, by one refresh, the
  others taking its part.
- A dead member's row stops being live ``lease - refresh`` s after its last write, and each
  other member notices at its next heartbeat, at most ``refresh`` later: its part returns
  within one lease. Rows older than a whole lease are deleted by whoever reads them (only if
  unchanged since: the ETag they were read with). A member that leaves deletes its row.

Two *scopes*, the same rules in each: its vault's board, and its subscription group's
(:mod:`shared.rewrap._subscription_groups`), whose members split ``share x 5 x`` the budget.
A heartbeat is good only if both answered; the rate is the smaller part (the *binding*
scope); a joiner waits unless both showed it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.rewrap._budget import SUBSCRIPTION_BUDGET_FACTOR, VaultBudget, throttle_ceiling
from shared.rewrap._budget_board import BoardRow, BoardView
from shared.rewrap._limiter import DEFAULT_HEADROOM

#: Fraction of a vault's published budget keyward takes, all its workers together; the rest
#: is left to the applications that use the same vault (``KEYWARD_VAULT_SHARE``).
DEFAULT_VAULT_SHARE = 0.5
#: Seconds a member's row stays on the board without a heartbeat (``KEYWARD_BUDGET_LEASE_
#: SECONDS``): a dead worker's part returns to the others within this long.
DEFAULT_BUDGET_LEASE_SECONDS = 15
#: Bounds of the lease setting: below 5 s heartbeats (every lease / 5) come more often than
#: once a second per engine; above 60 s a dead worker's part stays lost for over a minute and
#: every join waits over 13 s.
MIN_BUDGET_LEASE_SECONDS = 5
MAX_BUDGET_LEASE_SECONDS = 60
#: Heartbeats per lease. Five leaves four missed heartbeats before a member's row stops
#: being live, so one slow Table request does not cost the member its part.
HEARTBEATS_PER_LEASE = 5
#: A joiner's wait beyond one refresh interval: the other members' heartbeat round trip (a
#: Table write and read: tens of ms, seconds when the Table is slow) and the requests they
#: already had in flight at the old rate must be over before the joiner sends.
JOIN_MARGIN_SECONDS = 1.0

#: Allotment states (reports and logs).
ALONE = "alone"
SHARED = "shared"
JOINING = "joining"
BOARD_LOST = "board unreachable"
#: Scope kinds: what a board partition stands for (reports say which one binds).
VAULT = "vault"
SUBSCRIPTION = "subscription"


def vault_host(key_ref: str) -> str:
    """The vault a key belongs to, as the board names it: its host (and port), lower case."""
    return urlsplit(key_ref).netloc.lower()


@dataclass(frozen=True)
class Scope:
    """One board a member counts on: its ``kind`` (:data:`VAULT`, :data:`SUBSCRIPTION`), its
    ``name`` on the board (a vault host, ``subscription:<group>``), and how many of a vault's
    ``budgets`` its members split (1, or ``SUBSCRIPTION_BUDGET_FACTOR``)."""

    kind: str
    name: str
    budgets: int = 1


def member_scopes(vault: str, group: str) -> tuple[Scope, Scope]:
    """The scopes of a member on ``vault`` (a host) whose subscription group is ``group``."""
    return (
        Scope(VAULT, vault),
        Scope(SUBSCRIPTION, f"{SUBSCRIPTION}:{group}", SUBSCRIPTION_BUDGET_FACTOR),
    )


@dataclass(frozen=True)
class Allotment:
    """What a member may send now.

    Attributes:
        rate: operations per second; ``None``: send nothing (joining, or the board is lost).
        members: live members at the last good heartbeat (this one included; 0: none yet),
            on the first scope (the vault).
        state: :data:`ALONE` (alone on every scope), :data:`SHARED`, :data:`JOINING` or
            :data:`BOARD_LOST`.
        binding: the kind of the scope whose part is the smallest (the vault on a tie).
        group_members: live members on the second scope (the subscription group), if any.
    """

    rate: float | None
    members: int
    state: str
    binding: str = VAULT
    group_members: int = 0


@dataclass(frozen=True)
class ShareRules:
    """The figures of the rules: the share, the headroom, the lease, an operator's cap.

    Raises:
        ValueError: ``share`` outside (0, 1], ``headroom`` outside (0, 1] or ``lease_seconds``
            not positive.
    """

    share: float = DEFAULT_VAULT_SHARE
    headroom: float = DEFAULT_HEADROOM
    lease_seconds: float = DEFAULT_BUDGET_LEASE_SECONDS
    #: The operator's cap on one engine's rate (``EngineSettings.rate_ceiling``), if any.
    rate_ceiling: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError(f"vault share {self.share} is outside (0, 1]")
        if not 0 < self.headroom <= 1:
            raise ValueError(f"headroom {self.headroom} is outside (0, 1]")
        if not self.lease_seconds > 0:
            raise ValueError("the budget lease must be positive")

    @property
    def refresh_seconds(self) -> float:
        return self.lease_seconds / HEARTBEATS_PER_LEASE

    @property
    def live_seconds(self) -> float:
        """A row is live while its age is at most this (``lease - refresh``)."""
        return self.lease_seconds - self.refresh_seconds

    @property
    def join_wait_seconds(self) -> float:
        return self.refresh_seconds + JOIN_MARGIN_SECONDS

    def part(self, budget: VaultBudget, members: int, budgets: int = 1) -> float:
        """One member's rate: its equal part of the share of ``budgets`` times its key type's
        ``budget``, no more than the operator's cap."""
        whole = throttle_ceiling(budget, None, self.headroom, self.share) * budgets
        part = whole / max(1, members)
        return min(part, self.rate_ceiling) if self.rate_ceiling else part

    @staticmethod
    def age(view: BoardView, row: BoardRow) -> float:
        """Seconds since ``row`` was written, on the service's clock (negative: after ours)."""
        return (view.own.written_at - row.written_at).total_seconds()

    def live(self, view: BoardView) -> tuple[BoardRow, ...]:
        """The live members' rows (the reader's own always among them)."""
        others = tuple(
            row
            for row in view.rows
            if row.member != view.own.member and self.age(view, row) <= self.live_seconds
        )
        return (view.own, *others)

    def expired(self, view: BoardView) -> tuple[BoardRow, ...]:
        """Rows older than a whole lease: dead members' rows, for the reader to delete."""
        return tuple(
            row
            for row in view.rows
            if row.member != view.own.member and self.age(view, row) > self.lease_seconds
        )


class MemberState:
    """One member's standing, from its heartbeats and its own (monotonic) clock."""

    def __init__(
        self,
        rules: ShareRules,
        budget: VaultBudget,
        scopes: tuple[Scope, ...] = (Scope(VAULT, ""),),
    ) -> None:
        """``budget``: the member's key type's; ``scopes``: in :meth:`beat`'s order."""
        self._rules = rules
        self._budget = budget
        self._scopes = scopes
        self._last_ok: float | None = None
        self._join_until: float | None = None
        self._members: tuple[int, ...] = (0,) * len(scopes)
        self._rate = rules.part(budget, 1)
        self._binding = scopes[0].kind

    def beat(self, started: float, ended: float, *views: BoardView) -> None:
        """A heartbeat that started at ``started`` and read ``views`` by ``ended``."""
        rules = self._rules  # views: one per scope, every board answered
        if len(views) != len(self._scopes):
            raise ValueError(f"{len(views)} board views for {len(self._scopes)} scopes")
        members = tuple(len(rules.live(view)) for view in views)
        counted = self._last_ok is not None and ended - self._last_ok < rules.live_seconds
        if all(count == 1 for count in members):
            self._join_until = None  # nobody else to wait for, on any scope
        elif not counted:
            self._join_until = ended + rules.join_wait_seconds  # a join (or a rejoin)
        self._last_ok = started
        self._members = members
        parts = [
            (rules.part(self._budget, count, scope.budgets), scope.kind)
            for scope, count in zip(self._scopes, members, strict=True)
        ]
        self._rate, self._binding = min(parts, key=lambda part: part[0])  # first on a tie

    def current(self, now: float) -> Allotment:
        """What the member may send at ``now``."""
        vault, group = self._members[0], sum(self._members[1:])
        if self._last_ok is None:
            return Allotment(None, 0, JOINING)
        if now - self._last_ok >= self._rules.live_seconds:
            return Allotment(None, vault, BOARD_LOST, self._binding, group)
        if self._join_until is not None and now < self._join_until:
            return Allotment(None, vault, JOINING, self._binding, group)
        alone = all(count == 1 for count in self._members)
        return Allotment(self._rate, vault, ALONE if alone else SHARED, self._binding, group)

    def next_change(self, now: float) -> float | None:
        """The next instant after ``now`` at which :meth:`current` changes without a
        heartbeat (a join wait ends, or the board counts as lost), if any."""
        if self._last_ok is None:
            return None
        candidates = [self._last_ok + self._rules.live_seconds]
        if self._join_until is not None:
            candidates.append(self._join_until)
        later = [at for at in candidates if at > now]
        return min(later) if later else None
