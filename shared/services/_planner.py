"""Plan a rewrap job: confirm the target with the vault, then enqueue one message per shard.

The trigger that calls this has 30 seconds (Event Grid's response timeout), so planning
does only what must happen before acknowledging the event: ask the vault for the newest
enabled version (never rewrap backwards, whatever order events arrive in) and enqueue. The
work itself runs in ``rewrap_worker``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.rewrap import KeyVersionSource, resolve_target, rewrap_job_id
from shared.rewrap._messages import ShardMessage
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
        """Confirm the target and enqueue every shard.

        Raises:
            RewrapTargetError: the requested version is missing or disabled.
            ServiceError: the vault or the queue failed (the caller lets the delivery retry).
        """
        plan = await resolve_target(self._keys, key_ref, requested_version)
        messages = tuple(
            ShardMessage(
                job_id=rewrap_job_id(plan.key_ref, plan.target_version, shard),
                key_ref=plan.key_ref,
                target_version=plan.target_version,
                shard=shard,
            )
            for shard in self._shards
        )
        for message in messages:
            await self._queue.send(message)
        return PlannedJob(plan.key_ref, requested_version, plan.target_version, messages)
