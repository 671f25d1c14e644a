"""One engine run's seat on its vault's shared budget, kept by a background heartbeat.

:class:`BudgetMembership` is an async context manager around the part of a run that sends
vault requests. On entry it holds the run's rate limiter (a joiner sends nothing until the
rules say so) and starts a heartbeat task; each heartbeat writes the member's row and reads
the rows of each of its scopes (its vault's board and its subscription group's, at once: two
upserts and two one-partition reads), deletes rows dead for a whole lease, and applies the rules'
:class:`~shared.rewrap._vault_share.Allotment` to the limiter (its ceiling, or a hold). On exit
the task is cancelled and awaited, then the row deleted (best effort: a row left behind ages
out within one lease), so the heartbeat never outlives the run. Nothing the board does can
fail the run: every fault of a heartbeat is logged (its type, never a key) and counted as
the board being unreachable, which the rules turn into a pause after ``lease - refresh``.

Without a board (the CLI, unit tests) the member is alone: the limiter keeps the whole share
and nothing runs in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType

from shared.rewrap._budget import VaultBudget
from shared.rewrap._budget_board import BudgetBoard
from shared.rewrap._limiter import AimdRateLimiter
from shared.rewrap._scoped_board import ScopedBoard
from shared.rewrap._settings import EngineSettings
from shared.rewrap._subscription_groups import DEFAULT_SUBSCRIPTION_GROUP
from shared.rewrap._target import RewrapPlan
from shared.rewrap._vault_share import (
    BOARD_LOST,
    Allotment,
    MemberState,
    ShareRules,
    member_scopes,
    vault_host,
)

_log = logging.getLogger("keyward.budget")

#: How long leaving (deleting the row) may take at the end of a run; past it the row is left
#: to age out (one lease), so a slow board never delays a slice's wrap-up by more.
LEAVE_TIMEOUT_SECONDS = 2.0


class BudgetMembership:
    """A member of ``vault``'s budget for the duration of an ``async with`` block."""

    def __init__(
        self,
        board: BudgetBoard | None,
        vault: str,
        limiter: AimdRateLimiter,
        rules: ShareRules,
        budget: VaultBudget,
        *,
        owner: str,
        group: str = DEFAULT_SUBSCRIPTION_GROUP,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Args:
        board: the vault boards (``None``: alone, the whole share).
        vault: the vault's host (``vault_host(key_ref)``).
        limiter: the run's limiter, built at the whole share (the ceiling while alone).
        rules: the share, headroom, lease and any operator cap.
        budget: the published budget of the run's key type.
        owner: the run's lease owner, written on its row for operators (host and pid).
        group: the vault's subscription group (the second scope).
        clock, sleep: monotonic clock and sleep (tests inject fakes).
        """
        self.member = uuid.uuid4().hex
        self._vault = vault
        self._limiter = limiter
        self._rules = rules
        self._clock = clock
        self._sleep = sleep
        self._scopes = scopes = member_scopes(vault, group)
        self._state = MemberState(rules, budget, scopes)
        per_second = budget.operations_per_second
        self._rows: ScopedBoard | None = None
        if board is not None:
            self._rows = ScopedBoard(board, scopes, self.member, per_second=per_second, owner=owner)
        self._task: asyncio.Task[None] | None = None
        self._applied: Allotment | None = None
        self._failing = False
        self._closing = False

    @property
    def members(self) -> int:
        """Live members at the last good heartbeat (1 without a board; 0 before the first)."""
        return 1 if self._rows is None else self._state.current(self._clock()).members

    @property
    def binding_scope(self) -> str:
        """Which scope's part is the allotment (``vault``, ``subscription``; ``""`` without
        a board or before the first heartbeat)."""
        applied = self._applied
        return applied.binding if self._rows is not None and applied and applied.members else ""

    @property
    def allotment(self) -> float:
        """This member's allotted rate (operations per second): the limiter's ceiling."""
        return self._limiter.ceiling

    async def __aenter__(self) -> BudgetMembership:
        if self._rows is not None:
            self._limiter.hold("joining the vault's shared budget")
            self._task = asyncio.create_task(self._heartbeats(), name="keyward-budget")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the heartbeat, then leave the board (best effort)."""
        task, self._task = self._task, None
        if task is None or self._rows is None:
            return
        self._closing = True  # the loop ends even if a cancel were lost in a board call
        _log.info(
            "budget of %s: leaving with %.1f ops/s, %d member(s)",
            self._vault,
            self.allotment,
            self.members,
        )
        task.cancel()
        try:
            await asyncio.wait({task})  # never raises the task's error; our cancel propagates
        finally:
            try:
                async with asyncio.timeout(LEAVE_TIMEOUT_SECONDS):
                    await self._rows.leave()
            except Exception as error:  # the row ages out within one lease
                _log.warning("budget of %s: could not leave: %s", self._vault, type(error).__name__)

    async def _heartbeats(self) -> None:
        try:
            await self._heartbeat_loop()
        except Exception as error:  # a defect here must not leave the limiter sending
            _log.error("budget of %s: heartbeat stopped: %s", self._vault, type(error).__name__)
            self._limiter.hold("budget heartbeat stopped")

    async def _heartbeat_loop(self) -> None:
        refresh = self._rules.refresh_seconds
        while not self._closing:
            started = self._clock()
            await self._beat(started)
            self._apply()
            next_beat = started + refresh
            while (now := self._clock()) < next_beat:
                change = self._state.next_change(now)
                wake = next_beat if change is None else min(next_beat, change)
                await self._sleep(wake - now)
                self._apply()

    async def _beat(self, started: float) -> None:
        """One heartbeat; any fault counts as the board being unreachable."""
        assert self._rows is not None
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancel that
            # arrives as the call completes, and the heartbeat must end with the run.
            async with asyncio.timeout(self._rules.refresh_seconds):
                views = await self._rows.beat()
        except Exception as error:
            if not self._failing:
                sending = self._state.current(self._clock()).rate is not None
                _log.warning(
                    "budget of %s: board unreachable (%s); %s",
                    self._vault,
                    type(error).__name__,
                    f"keeping {self._limiter.ceiling:.1f} ops/s for at most "
                    f"{self._rules.live_seconds:.0f} s, then pausing"
                    if sending
                    else "sending nothing until a heartbeat succeeds",
                )
            self._failing = True
            return
        if self._failing:
            _log.info("budget of %s: board reachable again", self._vault)
        self._failing = False
        self._state.beat(started, self._clock(), *views)
        await self._rows.expire(self._rules, views)

    def _apply(self) -> None:
        """Give the limiter what the rules allow now; log a change of state or members."""
        allotment = self._state.current(self._clock())
        if allotment.rate is None:
            self._limiter.hold(allotment.state)
        else:
            self._limiter.set_ceiling(allotment.rate)
            self._limiter.release()
        last, self._applied = self._applied, allotment
        if last is None or _shown(last) != _shown(allotment):
            level = logging.WARNING if allotment.state == BOARD_LOST else logging.INFO
            _log.log(
                level,
                "budget of %s: %s, %d member(s), %s: %d member(s), %s binds, %s",
                self._vault,
                allotment.state,
                allotment.members,
                self._scopes[1].name,
                allotment.group_members,
                allotment.binding,
                "paused" if allotment.rate is None else f"{allotment.rate:.1f} ops/s",
            )


def _shown(allotment: Allotment) -> tuple[str, int, int, str]:
    """What the heartbeat's log line says: a change of any of it is logged."""
    return (allotment.state, allotment.members, allotment.group_members, allotment.binding)


def vault_membership(
    board: BudgetBoard | None,
    plan: RewrapPlan,
    limiter: AimdRateLimiter,
    settings: EngineSettings,
    *,
    owner: str,
    time: tuple[Callable[[], float], Callable[[float], Awaitable[None]]],
) -> BudgetMembership:
    """The membership of a run of ``plan`` in its vault's budget, from the engine settings
    (``owner``: the run's lease owner; ``time``: the engine's clock and sleep)."""
    rules = ShareRules(
        share=settings.vault_share,
        headroom=settings.headroom,
        lease_seconds=settings.budget_lease_seconds,
        rate_ceiling=settings.rate_ceiling,
    )
    return BudgetMembership(
        board,
        vault_host(plan.key_ref),
        limiter,
        rules,
        plan.budget,
        owner=owner,
        group=settings.subscription_groups.group_of(vault_host(plan.key_ref)),
        clock=time[0],
        sleep=time[1],
    )
