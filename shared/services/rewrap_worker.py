"""Run one shard message: a time slice of one job over one DEK store.

One queue message is one shard of one job. The worker runs the engine until the slice ends
(``KEYWARD_REWRAP_SLICE_SECONDS``), then enqueues the same message again as the continuation;
the checkpoint in the job store says where to resume. The slice has a hard deadline too
(``SLICE_DRAIN_SECONDS`` after its end): no wait inside page work may pass it, and the whole
run is cancelled, as a crash, if it is not back ``SLICE_WRAP_UP_SECONDS`` later; both fit in
the margin the settings keep below ``functionTimeout`` (``SLICE_SAFETY_MARGIN_SECONDS``).
Scale-out is safe by construction: a job lease admits one worker per shard at a time, every
DEK write is ETag-conditional, and a duplicate or stale message finds the job completed or
leased and does nothing.

The job a message works on is derived from its content (key, target version, shard), never
taken from it: a message whose ``job`` field names another id is refused and recorded with
the rejected events, and no job is read or written for it (anyone who may write to the
queue could otherwise fail or lease another key's job).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.crypto import VaultAllowList
from shared.errors import ConfigurationError, ConflictError, InvalidInputError, ServiceError
from shared.events import RejectionReason, rejected_message_record
from shared.rewrap import (
    DEFAULT_SLICE_SECONDS,
    MAX_SLICE_SECONDS,
    SLICE_DRAIN_SECONDS,
    SLICE_WRAP_UP_SECONDS,
    BudgetBoard,
    Deadline,
    EngineSettings,
    JobIdMismatchError,
    JobLeaseError,
    JobReport,
    JobStatus,
    JobStore,
    KeyVersionSource,
    RetiredVersions,
    RewrapEngine,
    RewrapTargetError,
    ShardMessage,
    SliceDeadlineError,
)
from shared.services._ports import RejectionLog, ShardQueue
from shared.stores import DekStore

_log = logging.getLogger("keyward.worker")

#: When another live worker holds the job, look again after this long (its lease renews on
#: every checkpoint; a dead worker's lease lapses within ``EngineSettings.lease_seconds``).
BUSY_RETRY_SECONDS = 60


@dataclass(frozen=True)
class WorkerOutcome:
    status: str  # completed | continued | busy | dropped | refused | poisoned
    job_id: str | None = None
    shard: str | None = None
    rewrapped: int = 0
    detail: str = ""

    def log_line(self) -> str:
        return (
            f"rewrap slice {self.status} job={self.job_id} shard={self.shard} "
            f"rewrapped={self.rewrapped} {self.detail}".rstrip()
        )


class RewrapWorkerService:
    """The service behind ``rewrap_worker``.

    ``max_dequeue_count`` has no default here: it must be the host's own limit (host.json's
    ``maxDequeueCount``, passed in by ``functions.rewrap_worker``), or the job would record
    a poisoned message the host is still going to redeliver, or miss one it gave up on.
    """

    def __init__(
        self,
        *,
        allow_list: VaultAllowList,
        stores: Mapping[str, DekStore],
        job_store: Callable[[str], JobStore],
        keys: KeyVersionSource,
        queue: ShardQueue,
        engine_settings: EngineSettings | None = None,
        max_dequeue_count: int,
        slice_seconds: float = DEFAULT_SLICE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        rejections: RejectionLog | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        retired: RetiredVersions | None = None,
        budget_board: BudgetBoard | None = None,
    ) -> None:
        """``budget_board``: where each engine run joins its vault's shared budget (``None``:
        every run takes keyward's whole share alone).

        Raises:
        ConfigurationError: ``slice_seconds`` plus the safety margin passes the timeout.
        """
        if not 0 < slice_seconds <= MAX_SLICE_SECONDS:
            raise ConfigurationError(
                f"slice_seconds must be in (0, {MAX_SLICE_SECONDS}]: a slice plus its safety "
                "margin must end before the host's functionTimeout"
            )
        self._allow_list = allow_list
        #: The retired-version record: the engine reads it after claiming the job's lease.
        self._retired = retired
        self._stores = stores
        self._job_store = job_store
        self._keys = keys
        self._queue = queue
        self._engine_settings = engine_settings or EngineSettings()
        self._slice_seconds = slice_seconds
        self._max_dequeue = max_dequeue_count
        self._clock = clock
        self._rejections = rejections
        self._now = now
        self._budget_board = budget_board

    async def handle(self, body: str, *, message_id: str, dequeue_count: int) -> WorkerOutcome:
        """Run one slice of the shard ``body`` names.

        Malformed or foreign messages are dropped, and a message claiming a job id its content
        does not derive to is refused (returned, not raised: retrying cannot fix them; both
        are recorded with the rejected events). Transient faults raise, so the queue
        redelivers; on the last delivery the job records that its message went to the poison
        queue.

        Raises:
            ServiceError: a transient fault; the message becomes visible again.
        """
        try:
            message = ShardMessage.from_json(body)
            self._allow_list.check_key_id(message.key_ref, require_version=False)
        except JobIdMismatchError as error:
            _log.error("rewrap message %s refused: %s", message_id, error)
            await self._reject(body, message_id, RejectionReason.JOB_ID_MISMATCH, str(error))
            return WorkerOutcome("refused", detail=str(error)[:200])
        except InvalidInputError as error:  # KeyIdError and VaultNotAllowedError too
            _log.error("rewrap message %s dropped: %s", message_id, error)
            await self._reject(body, message_id, RejectionReason.BAD_QUEUE_MESSAGE, str(error))
            return WorkerOutcome("dropped", detail=str(error)[:200])
        store = self._stores.get(message.shard)
        if store is None:
            return WorkerOutcome(
                "dropped", message.job_id, message.shard, detail="shard not configured"
            )
        jobs = self._job_store(message.shard)
        engine = RewrapEngine(
            store=store,
            keys=self._keys,
            jobs=jobs,
            settings=self._engine_settings,
            owner=f"{socket.gethostname()}:{os.getpid()}:{message_id}:{dequeue_count}",
            # The planner named the job after the shard; keep the ids identical.
            job_scope=message.shard,
            retired=self._retired,
            board=self._budget_board,
        )
        soft_end = self._clock() + self._slice_seconds
        hard = Deadline(soft_end + SLICE_DRAIN_SECONDS, clock=self._clock)

        def should_stop() -> bool:
            return self._clock() >= soft_end

        async def run(version: str | None) -> JobReport:
            # The backstop: past the hard deadline and the wrap-up, cancel as a crash would.
            return await asyncio.wait_for(
                engine.run(message.key_ref, version, should_stop=should_stop, deadline=hard),
                timeout=max(1.0, hard.remaining() + SLICE_WRAP_UP_SECONDS),
            )

        try:
            try:
                report = await run(message.target_version)
            except RewrapTargetError:
                # The planned version was disabled or removed since; move to the newest.
                report = await run(None)
        except JobLeaseError as error:
            await self._queue.send(message, delay_seconds=BUSY_RETRY_SECONDS)
            return WorkerOutcome("busy", message.job_id, message.shard, detail=str(error)[:200])
        except (SliceDeadlineError, TimeoutError) as error:
            # The wrap-up overran: the lease lapses within lease_seconds, then this continues.
            await self._queue.send(message.next_slice(), delay_seconds=BUSY_RETRY_SECONDS)
            detail = f"slice overran its deadline ({type(error).__name__})"
            return WorkerOutcome("continued", message.job_id, message.shard, detail=detail)
        except RewrapTargetError as error:
            return WorkerOutcome("dropped", message.job_id, message.shard, detail=str(error)[:200])
        except ServiceError as error:
            if dequeue_count >= self._max_dequeue:
                await self._record_poison(jobs, message, error, dequeue_count)
            raise
        if report.status.ended:
            detail = "" if report.status is JobStatus.COMPLETED else report.status.value
            return WorkerOutcome(
                "completed",
                report.job_id,
                message.shard,
                report.state.counters.rewrapped,
                detail=detail,
            )
        await self._queue.send(message.next_slice())
        return WorkerOutcome(
            "continued", report.job_id, message.shard, report.state.counters.rewrapped
        )

    async def _reject(self, body: str, message_id: str, reason: str, detail: str) -> None:
        """Record a refused message with the rejected events (shown by ``GET /api/status``).

        Raises:
            ServiceError: the record could not be written (the message is retried).
        """
        if self._rejections is None:
            return
        record = rejected_message_record(body, reason, detail, self._now(), message_id=message_id)
        await self._rejections.reject(record)

    async def _record_poison(
        self, jobs: JobStore, message: ShardMessage, error: ServiceError, attempts: int
    ) -> None:
        """Best effort: say on the job that its message is going to the poison queue."""
        note = f"poison: message moved to the poison queue after {attempts} attempts: {error}"
        try:
            stored = await jobs.get(message.job_id)
            if stored is None:
                return
            state = stored.state.evolve(status=JobStatus.FAILED, error=note[:500])
            await jobs.put(state, expected_etag=stored.etag)
        except (ServiceError, ConflictError) as write_error:
            _log.warning("could not record poison on job %s: %s", message.job_id, write_error)
