"""The one consumer of keyward's queue: picks the handler by the message's ``kind``.

One queue, one trigger (``rewrap_worker``), three kinds of message: ``rewrap`` shards
(``ShardMessage``; also any message without a ``kind``, as earlier versions wrote them) go
to :class:`RewrapWorkerService`, ``dependents`` follow-ups (``DependentsFollowUp``) to
:class:`DependentsFollowUpService`, ``operation`` slices (``OperationMessage``: a dry run,
verdict or retire started by the admin API) to :class:`OperationService`. Each handler
parses strictly; this only peeks.
"""

from __future__ import annotations

from shared.events import FOLLOW_UP_KIND
from shared.rewrap import OPERATION_KIND, queue_message_kind
from shared.services._queue_outcome import QueueOutcome
from shared.services.follow_up import DependentsFollowUpService
from shared.services.operations import OperationService
from shared.services.rewrap_worker import RewrapWorkerService, WorkerOutcome


class QueueWorkerService:
    """The service behind the queue trigger."""

    def __init__(
        self,
        *,
        rewrap: RewrapWorkerService,
        follow_ups: DependentsFollowUpService,
        operations: OperationService,
    ) -> None:
        self._rewrap = rewrap
        self._follow_ups = follow_ups
        self._operations = operations

    async def handle(
        self, body: str, *, message_id: str, dequeue_count: int
    ) -> WorkerOutcome | QueueOutcome:
        """Hand ``body`` to its kind's handler.

        Raises:
            ServiceError: a transient fault; the message becomes visible again.
        """
        kind = queue_message_kind(body)
        if kind == OPERATION_KIND:
            return await self._operations.handle(
                body, message_id=message_id, dequeue_count=dequeue_count
            )
        if kind == FOLLOW_UP_KIND:
            return await self._follow_ups.handle(
                body, message_id=message_id, dequeue_count=dequeue_count
            )
        return await self._rewrap.handle(body, message_id=message_id, dequeue_count=dequeue_count)
