"""Run one event's key-dependent follow-up, taken from keyward's queue.

The event trigger enqueues a ``DependentsFollowUp`` instead of evaluating accounts inside
Event Grid's 30 seconds (see ``shared.services.key_events``). Here it runs with the queue's
retries, and is idempotent:

* the follow-up is remembered in the event ledger (under ``dependents|{event}``) once its
  evaluation succeeded, so a redelivered message (a crash, a lapsed visibility timeout)
  evaluates nothing twice: still one evaluation per account per event;
* an auto-rotation the event asked for runs after the evaluation and is conditional on the
  key's current version, so repeating it mints no second version;
* a permanent refusal (ARM or the vault answering 403, or any non-transient refusal of the
  account listing) is recorded with the rejected events and *acknowledged*: retrying would
  fail the same way until the message went to the poison queue. The sweep evaluates every
  account again once the refusal is fixed;
* a transient fault raises, so the queue redelivers the message; on its last delivery
  (``max_dequeue_count``) it is first recorded with the rejected events
  (``RETRIES_EXHAUSTED``), as a shard's job records its own, so a follow-up that went to the
  poison queue is not lost from ``GET /api/status``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from shared.crypto import VaultAllowList
from shared.errors import AccessDeniedError, InvalidInputError, ServiceError
from shared.events import DependentsFollowUp, RejectionReason, rejected_message_record
from shared.services._ports import EventLedgerPort, KeyDependents, KeyRotator
from shared.services._queue_outcome import QueueOutcome

_log = logging.getLogger("keyward.follow_up")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DependentsFollowUpService:
    """The queue worker's handler for ``kind: dependents`` messages."""

    def __init__(
        self,
        *,
        allow_list: VaultAllowList,
        ledger: EventLedgerPort,
        dependents: KeyDependents,
        rotator: KeyRotator | None = None,
        max_dequeue_count: int | None = None,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        """``max_dequeue_count``: the host's own limit (host.json's ``maxDequeueCount``), so
        the last delivery is known; ``None``: not known, no delivery is taken as the last."""
        self._allow_list = allow_list
        self._max_dequeue = max_dequeue_count
        self._ledger = ledger
        self._dependents = dependents
        self._rotator = rotator
        self._now = now

    async def handle(self, body: str, *, message_id: str, dequeue_count: int = 1) -> QueueOutcome:
        """Evaluate the accounts the message names (once), then run its rotation, if any.

        Raises:
            ServiceError: a transient fault; the message becomes visible again (after its
                last delivery, recorded as rejected first: it goes to the poison queue).
        """
        try:
            return await self._handle(body, message_id)
        except ServiceError as error:
            if self._max_dequeue is not None and dequeue_count >= self._max_dequeue:
                await self._record_poison(body, message_id, error, dequeue_count)
            raise

    async def _handle(self, body: str, message_id: str) -> QueueOutcome:
        try:
            message = DependentsFollowUp.from_json(body)
            for key_ref in message.key_refs:
                self._allow_list.check_key_id(key_ref, require_version=False)
        except InvalidInputError as error:  # KeyIdError and VaultNotAllowedError too
            await self._reject(body, message_id, RejectionReason.BAD_QUEUE_MESSAGE, str(error))
            return QueueOutcome("dropped", "follow-up", detail=str(error)[:200])
        summary: object = "already evaluated"
        if not await self._ledger.seen(message.dedup_key):
            try:
                summary = await self._dependents.on_key_event(message.rotations, message.scopes)
            except ServiceError as error:
                return await self._refused(body, message_id, message, error)
            await self._ledger.remember(
                message.dedup_key, event_type="dependents", event_id=message.event_id
            )
        if message.rotate is not None and self._rotator is not None:
            try:
                await self._rotator.rotate(
                    message.rotate.key_ref, if_current_version=message.rotate.if_current_version
                )
            except ServiceError as error:
                return await self._refused(body, message_id, message, error)
        return QueueOutcome("completed", "follow-up", message.event_id, detail=_text(summary))

    async def _refused(
        self, body: str, message_id: str, message: DependentsFollowUp, error: ServiceError
    ) -> QueueOutcome:
        """Record and acknowledge a permanent refusal; re-raise a transient fault."""
        if error.transient:
            raise error
        reason = (
            RejectionReason.ACCESS_DENIED
            if isinstance(error, AccessDeniedError)
            else RejectionReason.SERVICE_REFUSED
        )
        detail = f"follow-up of event {message.event_id}: {error}"
        await self._reject(body, message_id, reason, detail)
        _log.warning("follow-up %s refused for good: %s", message.event_id, error)
        return QueueOutcome("refused", "follow-up", message.event_id, detail=str(reason))

    async def _record_poison(
        self, body: str, message_id: str, error: ServiceError, attempts: int
    ) -> None:
        """Best effort: record that the message goes to the poison queue, and why."""
        detail = f"poison: follow-up moved to the poison queue after {attempts} attempts: {error}"
        try:
            await self._reject(body, message_id, RejectionReason.RETRIES_EXHAUSTED, detail[:500])
        except ServiceError as write_error:
            _log.warning("could not record poison follow-up %s: %s", message_id, write_error)

    async def _reject(self, body: str, message_id: str, reason: str, detail: str) -> None:
        record = rejected_message_record(body, reason, detail, self._now(), message_id=message_id)
        await self._ledger.reject(record)


def _text(summary: object) -> str:
    """A short, log-safe rendering of what the dependents reported."""
    if isinstance(summary, dict):
        parts = []
        for kind, value in summary.items():
            as_dict = getattr(value, "as_dict", None)
            parts.append(f"{kind}={as_dict() if callable(as_dict) else value}")
        return " ".join(parts)[:300]
    return str(summary)[:300]
