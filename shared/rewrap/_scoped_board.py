"""One member's calls to the budget board, made on every scope it counts on at once.

A member counts on its vault's board and on its subscription group's
(:func:`shared.rewrap._vault_share.member_scopes`): each heartbeat writes its row and reads
the rows of both partitions, which costs two upserts and two one-partition reads. They run
concurrently, so a heartbeat takes one round trip, not two; the first failure cancels the
other calls (no board call outlives the heartbeat that made it) and is raised as itself, so
the heartbeat's log names its type.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from shared.rewrap._budget_board import BoardView, BudgetBoard
from shared.rewrap._vault_share import Scope, ShareRules

_log = logging.getLogger("keyward.budget")
T = TypeVar("T")


class ScopedBoard:
    """``member``'s rows on ``board``, one per scope in ``scopes``."""

    def __init__(
        self,
        board: BudgetBoard,
        scopes: tuple[Scope, ...],
        member: str,
        *,
        per_second: float,
        owner: str,
    ) -> None:
        self._board = board
        self.scopes = scopes
        self._member = member
        self._per_second = per_second
        self._owner = owner

    async def beat(self) -> list[BoardView]:
        """Write the member's row on every scope and read each scope's rows (in ``scopes``'
        order).

        Raises:
            Exception: the first failure of any scope's call (a ``ServiceError`` from the
                board, or whatever a broken board raises).
        """
        member, per_second, owner = self._member, self._per_second, self._owner
        return await _at_once(
            self._board.beat(scope.name, member, per_second=per_second, owner=owner)
            for scope in self.scopes
        )

    async def expire(self, rules: ShareRules, views: Iterable[BoardView]) -> None:
        """Delete the rows each view shows dead for a whole lease (best effort: another
        member may delete them, and a row kept is still not live)."""
        for scope, view in zip(self.scopes, views, strict=True):
            for row in rules.expired(view):
                try:
                    async with asyncio.timeout(rules.refresh_seconds):
                        await self._board.expire(scope.name, row)
                except Exception as error:
                    _log.debug("budget of %s: row kept: %s", scope.name, type(error).__name__)

    async def leave(self) -> None:
        """Delete the member's row on every scope.

        Raises:
            Exception: the first failure (the rows left behind age out within one lease).
        """
        await _at_once(self._board.leave(scope.name, self._member) for scope in self.scopes)


async def _at_once(calls: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``calls`` concurrently; the first failure cancels the others and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call) for call in calls]
    except ExceptionGroup as errors:
        raise errors.exceptions[0] from None
    return [task.result() for task in tasks]
