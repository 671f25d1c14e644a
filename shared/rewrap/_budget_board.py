"""The port of a vault's shared budget: a board where every running engine keeps one row.

Every engine run that sends requests to a vault (any process, instance, key or shard) is a
*member* of that vault's budget. The board is where members see each other: each heartbeat
writes the member's own row and reads every row of the vault, and the storage service
stamps each write with its own clock (Azure Table's ``Timestamp``), so members on different
machines compare ages on one clock and never trust their local ones across machines. The
rules that turn what a heartbeat read into a rate live in :mod:`shared.rewrap._vault_share`;
the Azure Table implementation in ``shared.adapters.budget_board``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from shared.errors import TransientServiceError


@dataclass(frozen=True)
class BoardRow:
    """One member's row as a heartbeat read it.

    Attributes:
        member: the member's id (unique per engine run).
        written_at: when the storage service last wrote the row, on the service's clock.
        etag: the row's ETag as read (an expired row is deleted only if still unchanged).
        per_second: the published budget (operations per second) of the member's key type;
            for operators reading the board, the rules do not need it.
    """

    member: str
    written_at: datetime
    etag: str
    per_second: float = 0.0


@dataclass(frozen=True)
class BoardView:
    """What one heartbeat saw: the member's own fresh row and every row of the vault."""

    own: BoardRow
    rows: tuple[BoardRow, ...]


@runtime_checkable
class BudgetBoard(Protocol):
    """Where the members of each vault's budget keep their rows (the state table)."""

    async def beat(self, vault: str, member: str, *, per_second: float, owner: str) -> BoardView:
        """Write ``member``'s row for ``vault`` (a scope's name: a vault host, or
        ``subscription:<group>``), then read all of its rows; the own row in the answer
        carries the service's time of this write.

        Raises:
            ServiceError: the board could not be written or read.
        """
        ...

    async def expire(self, vault: str, row: BoardRow) -> None:
        """Delete ``row`` only if it is unchanged since it was read (its ETag); a row
        written since (its member came back) or already gone is left alone, silently.

        Raises:
            ServiceError: the board could not be reached.
        """
        ...

    async def leave(self, vault: str, member: str) -> None:
        """Delete ``member``'s row, whatever its ETag; a missing row is fine.

        Raises:
            ServiceError: the board could not be reached.
        """
        ...


class InMemoryBudgetBoard:
    """A :class:`BudgetBoard` in a dict, for tests and for engines sharing one process.

    ``now`` plays the storage service's clock; ``reachable`` set to false makes every call
    fail as an unreachable service would (a transient error).
    """

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._rows: dict[tuple[str, str], BoardRow] = {}
        self._etags = itertools.count(1)
        self.reachable = True

    def _check(self) -> None:
        if not self.reachable:
            raise TransientServiceError("budget board: unreachable (in-memory test board)")

    def rows(self, vault: str) -> tuple[BoardRow, ...]:
        return tuple(row for (v, _), row in self._rows.items() if v == vault)

    async def beat(self, vault: str, member: str, *, per_second: float, owner: str) -> BoardView:
        self._check()
        own = BoardRow(member, self._now(), f"W/{next(self._etags)}", per_second)
        self._rows[(vault, member)] = own
        return BoardView(own, self.rows(vault))

    async def expire(self, vault: str, row: BoardRow) -> None:
        self._check()
        stored = self._rows.get((vault, row.member))
        if stored is not None and stored.etag == row.etag:
            del self._rows[(vault, row.member)]

    async def leave(self, vault: str, member: str) -> None:
        self._check()
        self._rows.pop((vault, member), None)
