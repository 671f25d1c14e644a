"""keyward's work queue on Azure Storage queues (azure-storage-queue).

One queue carries rewrap shards (``ShardMessage``), the key-dependent follow-ups of events
(``DependentsFollowUp``) and the slices of admin operations (``OperationMessage``); the one
queue trigger (``rewrap_worker``) tells them apart by their ``kind``. Messages are
base64-encoded, as the Functions host's queue trigger expects by default
(``messageEncoding: base64``), so a message sent here is what the trigger receives.

Every message carries the W3C ``traceparent`` of the span that sent it, so the worker's span
continues the sender's trace (``shared.telemetry``; docs/telemetry.md).
"""

from __future__ import annotations

import contextlib
import dataclasses

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

from shared.adapters._azure_errors import translated
from shared.adapters._pipeline import NO_REDIRECTS
from shared.events import DependentsFollowUp
from shared.rewrap import OperationMessage, ShardMessage, with_traceparent
from shared.telemetry import current_traceparent

#: Storage queues delay a message by at most 7 days.
MAX_DELAY_SECONDS = 7 * 24 * 3600


class RewrapQueue:
    """Sends shard and follow-up messages; the queue trigger consumes them."""

    def __init__(self, queue: QueueClient) -> None:
        self._queue = queue

    @classmethod
    def from_connection_string(cls, connection_string: str, queue_name: str) -> RewrapQueue:
        return cls(
            QueueClient.from_connection_string(
                connection_string,
                queue_name,
                message_encode_policy=TextBase64EncodePolicy(),
                **NO_REDIRECTS,
            )
        )

    @classmethod
    def from_url(
        cls, account_url: str, queue_name: str, credential: AsyncTokenCredential
    ) -> RewrapQueue:
        """Managed identity: ``credential`` is a TokenCredential (Storage Queue Data
        Message Sender on the queue is enough)."""
        return cls(
            QueueClient(
                account_url,
                queue_name,
                credential=credential,
                message_encode_policy=TextBase64EncodePolicy(),
                **NO_REDIRECTS,
            )
        )

    @property
    def name(self) -> str:
        return str(self._queue.queue_name)

    async def ensure_exists(self) -> None:
        with translated(f"create queue {self.name}"), contextlib.suppress(ResourceExistsError):
            await self._queue.create_queue()

    async def send(self, message: ShardMessage, *, delay_seconds: int = 0) -> None:
        """Enqueue ``message``, visible after ``delay_seconds``.

        Raises:
            ServiceError: the queue refused or could not be reached.
        """
        delay = max(0, min(delay_seconds, MAX_DELAY_SECONDS))
        message = dataclasses.replace(message, traceparent=current_traceparent())
        with translated(f"send to queue {self.name}"):
            await self._queue.send_message(message.to_json(), visibility_timeout=delay or None)

    async def send_follow_up(self, message: DependentsFollowUp) -> None:
        """Enqueue an event's key-dependent follow-up (visible at once).

        Raises:
            ServiceError: the queue refused or could not be reached.
        """
        body = with_traceparent(message.to_json(), current_traceparent())  # the sender's span
        with translated(f"send to queue {self.name}"):
            await self._queue.send_message(body)

    async def send_operation(self, message: OperationMessage, *, delay_seconds: int = 0) -> None:
        """Enqueue one slice of an admin operation, visible after ``delay_seconds``.

        Raises:
            ServiceError: the queue refused or could not be reached.
        """
        delay = max(0, min(delay_seconds, MAX_DELAY_SECONDS))
        message = dataclasses.replace(message, traceparent=current_traceparent())
        with translated(f"send to queue {self.name}"):
            await self._queue.send_message(message.to_json(), visibility_timeout=delay or None)

    async def close(self) -> None:
        await self._queue.close()
