"""Plan a rewrap job: confirm the target with the vault, then enqueue one message per shard.

The trigger that calls this has 30 seconds (Event Grid's response timeout), so planning
does only what must happen before acknowledging the event: ask the vault for the newest
enabled version (never rewrap backwards, whatever order events arrive in) and enqueue. The
work itself runs in ``rewrap_worker``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.rewrap import KeyVersionSource, RewrapPlan, ShardMessage, resolve_target
from shared.services._ports import ShardQueue


@dataclass(frozen=True)
class PlannedJob:
    """A job put on the queue: its target and one message per shard."""

    key_ref: str
    requested_version: str | None
    target_version: str
    messages: tuple[ShardMessage, ...]

    @property
    def redirected(self) -> bool:
        return self.requested_version not in (None, self.target_version)


class RewrapPlanner:
    """Turns "key K has version V" into queued shard work."""

    def __init__(self, keys: KeyVersionSource, queue: ShardQueue, shards: Sequence[str]) -> None:
        if not shards:
            raise ValueError("at least one DEK store shard is required")
        self._keys = keys
        self._queue = queue
        self._shards = tuple(shards)

    @property
    def shards(self) -> tuple[str, ...]:
        return self._shards

    async def plan(self, key_ref: str, requested_version: str | None) -> PlannedJob:
        """Confirm the target and enqueue every shard (:meth:`resolve`, then :meth:`enqueue`).

        Raises:
            RewrapTargetError: the requested version is missing or disabled.
            ServiceError: the vault or the queue failed (the caller lets the delivery retry).
        """
        return await self.enqueue(await self.resolve(key_ref, requested_version))

    async def resolve(self, key_ref: str, requested_version: str | None) -> RewrapPlan:
        """Ask the vault for the target; nothing is enqueued. Apart so that a caller can
        tell the vault's refusals (about the event) from its own queue's faults.

        Raises:
            RewrapTargetError: the requested version is missing or disabled.
            ServiceError: the vault refused or failed.
        """
        return await resolve_target(self._keys, key_ref, requested_version)

    async def enqueue(self, plan: RewrapPlan) -> PlannedJob:
        """One message per shard for ``plan``; the job ids derive from the messages.

        Raises:
            ServiceError: the queue failed.
        """
        messages = tuple(
            ShardMessage.for_shard(plan.key_ref, plan.target_version, shard)
            for shard in self._shards
        )
        for message in messages:
            await self._queue.send(message)
        return PlannedJob(plan.key_ref, plan.requested_version, plan.target_version, messages)
