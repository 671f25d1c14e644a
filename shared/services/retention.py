"""Retention (the ``retention`` timer): drop what keyward keeps about the past, bounded.

The state table would otherwise grow forever: one row per handled event, per rejected
delivery, per job (key, version and store). Each run deletes, older than
``KEYWARD_RETENTION_DAYS``:

* handled-event rows (the dedup ledger) of days before the cutoff's day: whole dated
  partitions, found by key range (the ledger needs only the last 24 hours: Event Grid's
  redelivery window, which the setting's minimum of 2 days covers);
* rejected deliveries the same way;
* rewrap jobs not updated since (ended, or failed), except each key's newest job per store,
  which the sweep and the retired-version alerts read, and running or restarting ones
  (``shared.rewrap.expired_jobs`` has the rule, and why an older failed job may go);
* finished admin operations (succeeded or failed) not updated since: their result has
  been there to poll for the whole retention; an accepted or running one is never deleted
  (its queue message would find no record and its caller an unknown id);
* audit rows of mutating admin calls (``shared.services.audit``) of days before the cutoff's
  day: whole dated partitions, like the rejections.

Each run deletes at most ``max_deletes`` rows (in Table batches of up to 100 per
partition), kinds in that order, and logs what it did; whatever is left goes on the next
run, since rows once deleted are not found again. Its cost is O(expired rows) (plus one
projection of the job partitions, O(jobs), and one filtered query of the operation
partitions), never O(DEKs): it never reads a DEK store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from shared.services._operation import OperationStatus

_log = logging.getLogger("keyward.retention")

#: Rows one run deletes at most (200 batch requests); the rest waits for the next run.
MAX_DELETES_PER_RUN = 20_000


class ExpiringLedger(Protocol):
    """The event ledger's retention side (``shared.adapters.event_ledger.EventLedger``)."""

    async def expire_handled(self, before: date, limit: int) -> int: ...

    async def expire_rejections(self, before: date, limit: int) -> int: ...


class ExpiringJobs(Protocol):
    """Ended jobs' retention (``shared.adapters.job_retention.TableJobRetention``)."""

    async def expire_jobs(self, shard: str, updated_before: datetime, limit: int) -> int: ...


class ExpiringOperations(Protocol):
    """Finished operations' retention (``shared.adapters.operation_store``
    ``TableOperationRetention``): deletes only records whose status is in ``finished``."""

    async def expire_operations(
        self, updated_before: datetime, finished: Collection[str], limit: int
    ) -> int: ...


class ExpiringAudit(Protocol):
    """The audit trail's retention (``shared.adapters.audit_trail.TableAuditTrail``)."""

    async def expire(self, before: date, limit: int) -> int: ...


#: The statuses an operation record may be deleted in (never accepted or running).
FINISHED_OPERATIONS = frozenset(s.value for s in OperationStatus if s.finished)


@dataclass
class RetentionReport:
    cutoff: datetime
    events: int = 0
    rejections: int = 0
    jobs: int = 0
    operations: int = 0
    audit: int = 0
    #: The run stopped at its cap: more expired rows wait for the next run.
    capped: bool = False

    @property
    def deleted(self) -> int:
        return self.events + self.rejections + self.jobs + self.operations + self.audit

    def log_line(self) -> str:
        return (
            f"retention cutoff={self.cutoff.isoformat()} events={self.events} "
            f"rejections={self.rejections} jobs={self.jobs} "
            f"operations={self.operations} capped={self.capped} audit={self.audit}"
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RetentionService:
    """The service behind the ``retention`` timer."""

    def __init__(
        self,
        *,
        ledger: ExpiringLedger,
        jobs: ExpiringJobs,
        operations: ExpiringOperations,
        shards: Sequence[str],
        retention_days: int,
        max_deletes: int = MAX_DELETES_PER_RUN,
        now: Callable[[], datetime] = _utc_now,
        audit: ExpiringAudit | None = None,
    ) -> None:
        """Raises:
        ValueError: ``retention_days`` below 1 or ``max_deletes`` below 1 (the settings
            check ``KEYWARD_RETENTION_DAYS`` first, with the reason).
        """
        if retention_days < 1 or max_deletes < 1:
            raise ValueError("retention_days and max_deletes must be at least 1")
        self._ledger = ledger
        self._jobs = jobs
        self._operations = operations
        self._shards = tuple(shards)
        self._retention = timedelta(days=retention_days)
        self._max_deletes = max_deletes
        self._now = now
        self._audit = audit

    async def run(self) -> RetentionReport:
        """One bounded run.

        Raises:
            ServiceError: the state table failed (what was deleted stays deleted; the
                next run continues).
        """
        cutoff = self._now().astimezone(UTC) - self._retention
        report = RetentionReport(cutoff=cutoff)
        report.events = await self._ledger.expire_handled(cutoff.date(), self._room(report))
        report.rejections = await self._ledger.expire_rejections(cutoff.date(), self._room(report))
        for shard in self._shards:
            if not self._room(report):
                break
            report.jobs += await self._jobs.expire_jobs(shard, cutoff, self._room(report))
        report.operations = await self._operations.expire_operations(
            cutoff, FINISHED_OPERATIONS, self._room(report)
        )
        if self._audit is not None:
            report.audit = await self._audit.expire(cutoff.date(), self._room(report))
        report.capped = report.deleted >= self._max_deletes
        _log.info(report.log_line())
        return report

    def _room(self, report: RetentionReport) -> int:
        return max(0, self._max_deletes - report.deleted)
