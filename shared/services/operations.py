"""Admin operations: record, enqueue, run in slices, report (asynchronous request-reply).

``POST`` handlers validate their input at once (a bad one changes nothing and records
nothing), then :meth:`OperationService.start` records the operation and enqueues its first
slice; the caller answers ``202`` with the status URL. The queue worker calls
:meth:`OperationService.handle` for each ``operation`` message: steps run one page at a time,
each saved ETag-conditionally, until the operation ends or the slice's time is up (then the
same message is sent again as the continuation). A duplicate delivery loses its first
conditional write and stops; a dead worker's message comes back and continues from the last
saved step. The CLI runs the same steps to the end in process (:meth:`run_to_end`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from shared.errors import ConflictError, InvalidInputError, KeywardError, ServiceError
from shared.rewrap import OPERATION_KIND, Deadline, OperationMessage
from shared.services._error_answer import error_json
from shared.services._operation import (
    Operation,
    OperationKind,
    OperationStatus,
    Phase,
    check_operation_id,
    fresh_cursors,
    new_operation_id,
    operation_json,
)
from shared.services._operation_steps import OperationParts, Steps
from shared.services._operation_store import (
    InMemoryOperationRecords,
    NoQueue,
    OperationQueue,
    OperationStore,
)
from shared.services._queue_outcome import QueueOutcome
from shared.services._store_job_errors import SliceSuperseded

_log = logging.getLogger("keyward.operations")
#: Where each kind starts.
_FIRST_PHASE = {OperationKind.DRY_RUN: Phase.SCAN, OperationKind.VERDICT: Phase.COUNT,
                OperationKind.RETIRE: Phase.LOOK, OperationKind.MIGRATE: Phase.JOB,
                OperationKind.ROTATE_KEKS: Phase.JOB}  # fmt: skip
#: Seconds of steps per slice when the caller does not say (each step is one store page).
DEFAULT_OPERATION_SLICE_SECONDS = 60.0


class OperationService:
    """Starts operations, runs their slices and reports them."""

    def __init__(
        self,
        *,
        parts: OperationParts,
        records: OperationStore,
        queue: OperationQueue,
        slice_seconds: float = DEFAULT_OPERATION_SLICE_SECONDS,
        max_dequeue_count: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._parts = parts
        self._records = records
        self._queue = queue
        self._slice_seconds = slice_seconds
        self._max_dequeue = max_dequeue_count
        self._clock = clock

    async def start(
        self,
        kind: OperationKind,
        key_ref: str,
        version: str | None = None,
        *,
        operation_id: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Operation:
        """Record a new operation and enqueue its first slice (input already validated).
        ``operation_id``: an id chosen before (a store job is claimed under it first);
        ``data``: the kind's own input (a store job's ``store``, ``to``, ...).

        Raises:
            ServiceError: the record or the queue could not be written.
        """
        now = self._parts.now()
        store = (data or {}).get("store")
        shards = (str(store),) if store is not None else tuple(self._parts.stores)
        initial = {"attempt": new_operation_id()} if kind is OperationKind.RETIRE else {}
        data = {**initial, **(data or {})}
        op = Operation(
            operation_id or new_operation_id(), kind, key_ref, version, shards, now, now,
            phase=_FIRST_PHASE[kind], cursors=fresh_cursors(shards), data=data,
        )  # fmt: skip
        await self._records.put(op, expected_etag=None)
        await self._queue.send_operation(OperationMessage(op.operation_id))
        return op

    async def status(self, operation_id: str) -> dict[str, Any] | None:
        """What ``GET /api/operations/<id>`` shows; ``None`` for an unknown id (one read).

        Raises:
            InvalidInputError: not an operation id.
            ServiceError: the record could not be read.
        """
        stored = await self._records.get(check_operation_id(operation_id))
        return None if stored is None else operation_json(stored.operation)

    async def handle(self, body: str, *, message_id: str, dequeue_count: int) -> QueueOutcome:
        """Run one slice of the operation a queue message names.

        Raises:
            ServiceError: a transient fault before the last delivery; the message returns
                and the next delivery continues from the last saved step.
        """
        try:
            message = OperationMessage.from_json(body)
        except InvalidInputError as error:
            return QueueOutcome("dropped", OPERATION_KIND, None, str(error))
        try:
            op = await self.run_slice(message.operation_id)
        except ServiceError as error:
            if self._max_dequeue is None or dequeue_count < self._max_dequeue:
                raise
            op = await self._fail(message.operation_id, error)  # the host gives up on it now
        if op is None:
            return QueueOutcome("dropped", OPERATION_KIND, message.operation_id, "not running")
        if not op.status.finished:
            # A store job waiting out a writers' TTL comes back after (at most a third of its
            # lease): no invocation sleeps through it.
            delay = int(op.data.get("wait_seconds") or 0)
            await self._queue.send_operation(message.next_slice(), delay_seconds=delay)
            return QueueOutcome("continued", OPERATION_KIND, op.operation_id, op.phase.value)
        return QueueOutcome(op.status.value, OPERATION_KIND, op.operation_id, op.kind.value)

    async def run_slice(
        self, operation_id: str, *, max_steps: int | None = None, raise_errors: bool = False
    ) -> Operation | None:
        """Steps until the operation ends, the slice's time (or ``max_steps``) is up, or
        another delivery saved a step first. Returns the last saved record (``None``: no
        such operation, or another delivery is running it).

        Raises:
            ServiceError: a transient fault; nothing past the last saved step was kept.
            KeywardError: only with ``raise_errors`` (in process): the error the operation
                failed with, as raised (else it is recorded on the operation).
        """
        stored = await self._records.get(operation_id)
        if stored is None:
            return None
        op, etag = stored.operation, stored.etag
        deadline = self._clock() + self._slice_seconds
        steps = Steps(self._parts, deadline=Deadline(deadline, clock=self._clock))
        taken = 0
        try:
            while not op.status.finished:
                if self._clock() >= deadline or (max_steps is not None and taken >= max_steps):
                    break
                if taken and op.data.get("wait_seconds"):
                    break  # a store job waits: the message comes back after the wait
                try:
                    moved = await steps.step(op)
                except SliceSuperseded:
                    return None  # another delivery of this operation runs its store job
                except KeywardError as error:
                    if raise_errors or (isinstance(error, ServiceError) and error.transient):
                        raise
                    moved = _failed(op, error)
                moved = moved.evolve(updated_at=self._parts.now())
                try:
                    etag = await self._records.put(moved, expected_etag=etag)
                except ConflictError:
                    return None  # another delivery saved first; it carries on
                op, taken = moved, taken + 1
        finally:
            await steps.aclose()
        return op

    async def _fail(self, operation_id: str, error: KeywardError) -> Operation | None:
        stored = await self._records.get(operation_id)
        if stored is None or stored.operation.status.finished:
            return None if stored is None else stored.operation
        failed = _failed(stored.operation, error).evolve(updated_at=self._parts.now())
        try:
            await self._records.put(failed, expected_etag=stored.etag)
        except ConflictError:
            return None
        return failed


async def run_to_end(
    parts: OperationParts, kind: OperationKind, key_ref: str, version: str | None = None
) -> Operation:
    """Run an operation to its end in this process (the CLI; no queue, no record kept
    beyond this call): the same steps the queue worker runs.

    Raises:
        KeywardError: what the operation failed with (``RetirementBlockedError``, ...).
    """
    local = OperationService(parts=parts, records=OperationStore(InMemoryOperationRecords()),
                             queue=NoQueue(), slice_seconds=float("inf"))  # fmt: skip
    op = await local.start(kind, key_ref, version)
    finished = await local.run_slice(op.operation_id, raise_errors=True)
    assert finished is not None  # nobody else writes the local record
    return finished


def _failed(op: Operation, error: KeywardError) -> Operation:
    _log.info("operation %s (%s) failed: %s", op.operation_id, op.kind.value, error)
    return op.evolve(status=OperationStatus.FAILED, error=error_json(error))
