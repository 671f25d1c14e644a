"""A rewrap job's durable state: identity, checkpoint, counters, lease.

The job id is derived from (key, target version) only, so the same request twice, from two
events or two workers, is one job. A checkpoint is the store's scan continuation plus the
counters as of that continuation, written together after each page, so a resumed job neither
skips nor double-counts a page. No key material is ever part of the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.rewrap._job_status import (
    JOB_RETRY_BASE_SECONDS,
    JOB_RETRY_MAX_SECONDS,
    MAX_JOB_ATTEMPTS,
    JobStatus,
    retry_delay,
    rewrap_job_id,
)
from shared.rewrap._passes import LeftBehindCount, PassRecord
from shared.rewrap._report import ItemIssue, JobCounters

__all__ = [
    "JOB_RETRY_BASE_SECONDS",
    "JOB_RETRY_MAX_SECONDS",
    "MAX_JOB_ATTEMPTS",
    "JobState",
    "JobStatus",
    "retry_delay",
    "rewrap_job_id",
]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class JobState:
    """Everything needed to report on a job and to resume it.

    Attributes:
        job_id: see :func:`rewrap_job_id`.
        key_ref: the unversioned key id.
        scope: the DEK store the job covers (its ``name``).
        target_version: the version DEKs are rewrapped to (the newest enabled one).
        target_key_id: the full versioned target key id.
        status: see :class:`JobStatus`.
        pass_number: 1 for the main scan, 2 for the conflict re-read pass.
        continuation: the store continuation after the last checkpointed page (``None``:
            start of the pass).
        counters: totals as of ``continuation``.
        pending_conflicts: refs whose ETag changed in pass 1, re-read in pass 2.
        issues: a bounded sample of per-item issues (the first ones seen).
        issues_dropped: issues not kept in ``issues`` because the sample was full.
        pages: pages checkpointed so far.
        created_at, updated_at, finished_at: wall-clock times (UTC).
        owner: the worker holding the lease; ``lease_expires_at``: until when.
        error: why the job failed, when it did (never contains key material).
        attempts: runs that ended (clean or not); a retry or restart is one more.
        max_attempts: runs the sweep makes before it stops retrying a job short of clean.
        next_attempt_at: when the sweep may retry a job that ended short of clean.
        restart_requested: an operator asked for a fresh pass (``POST /api/rewrap``
            ``restart``); the next run restarts whatever the status, attempts or backoff.
        left_behind: DEKs still under versions older than the target when the job ended.
        failures: runs in a row that stopped ``FAILED`` without checkpointing a page (one
            making progress is not stuck); the sweep resumes it while under ``max_attempts``.
        refused: it failed on the vault refusing the target (``RewrapTargetError``): the sweep
            does not ask again (same answer) until a new version or a restart.
        verification: the pass asked for (``restart_requested``) or running is the sweep's
            verification of a clean job (``shared.rewrap._verification``); cleared when it
            ends.
        pass_started_at, pass_seconds: when the current pass began, and the time workers
            held it so far (summed over slices); ``passes``: the ended ones
            (:class:`~shared.rewrap._passes.PassRecord`, newest last, bounded).
        left_behind_count: the current pass's count of DEKs left behind, as far as it got
            (its checkpoint; :class:`~shared.rewrap._passes.LeftBehindCount`).
    """

    job_id: str
    key_ref: str
    target_version: str
    target_key_id: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    scope: str = ""
    pass_number: int = 1
    continuation: str | None = None
    counters: JobCounters = field(default_factory=JobCounters)
    pending_conflicts: tuple[str, ...] = ()
    issues: tuple[ItemIssue, ...] = ()
    issues_dropped: int = 0
    pages: int = 0
    finished_at: datetime | None = None
    owner: str | None = None
    lease_expires_at: datetime | None = None
    error: str | None = None
    attempts: int = 0
    max_attempts: int = MAX_JOB_ATTEMPTS
    next_attempt_at: datetime | None = None
    restart_requested: bool = False
    left_behind: int = 0
    failures: int = 0
    refused: bool = False
    verification: bool = False
    pass_started_at: datetime | None = None
    pass_seconds: float = 0.0
    passes: tuple[PassRecord, ...] = ()
    left_behind_count: LeftBehindCount = field(default_factory=LeftBehindCount)

    def restarted_as(self, fresh: JobState) -> JobState:
        """``fresh`` (a new pass's state) with what outlives a restart: the creation time,
        the attempts and their cap, the pass history, and whether this pass is a verification.

        A verification starts a new series of retries (its attempts count from zero): the
        earlier passes ended clean, and a job verified daily would otherwise have spent its
        attempts within a week. Every run stays counted in ``passes``.
        """
        return fresh.evolve(
            created_at=self.created_at,
            attempts=0 if self.verification else self.attempts,
            max_attempts=self.max_attempts,
            passes=self.passes,
            verification=self.verification,
        )

    def retry_due(self, now: datetime) -> bool:
        """Whether a run now should restart this ended job, or resume this failed one (a
        retry or an asked restart); never a refused target's, unless a restart was asked."""
        if self.restart_requested:
            return True
        failed = self.status is JobStatus.FAILED
        if self.refused or self.gave_up or not (self.status.short_of_clean or failed):
            return False
        return self.next_attempt_at is None or self.next_attempt_at <= now

    @property
    def gave_up(self) -> bool:
        """Ended short of clean, or failed (not refused), with every attempt spent: only an
        explicit restart runs it."""
        if self.restart_requested or self.refused:
            return False
        if self.status is JobStatus.FAILED:
            return self.failures >= self.max_attempts
        return self.status.short_of_clean and self.attempts >= self.max_attempts

    def evolve(self, **changes: Any) -> JobState:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)

    def lease_held_by_other(self, owner: str, now: datetime) -> bool:
        """Whether a different, live worker holds this job's lease at ``now``."""
        return (
            self.status is JobStatus.RUNNING
            and self.owner is not None
            and self.owner != owner
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "key_ref": self.key_ref,
            "target_version": self.target_version,
            "target_key_id": self.target_key_id,
            "status": self.status.value,
            "scope": self.scope,
            "pass_number": self.pass_number,
            "continuation": self.continuation,
            "counters": self.counters.to_dict(),
            "pending_conflicts": list(self.pending_conflicts),
            "issues": [issue.to_dict() for issue in self.issues],
            "issues_dropped": self.issues_dropped,
            "pages": self.pages,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "finished_at": _iso(self.finished_at),
            "owner": self.owner,
            "lease_expires_at": _iso(self.lease_expires_at),
            "error": self.error,
            "attempts": self.attempts,
            "max_attempts": self.max_attempts,
            "next_attempt_at": _iso(self.next_attempt_at),
            "restart_requested": self.restart_requested,
            "left_behind": self.left_behind,
            "failures": self.failures,
            "refused": self.refused,
            "verification": self.verification,
            "pass_started_at": _iso(self.pass_started_at),
            "pass_seconds": self.pass_seconds,
            "passes": [record.to_dict() for record in self.passes],
            "left_behind_count": self.left_behind_count.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobState:
        created = _from_iso(data["created_at"])
        updated = _from_iso(data["updated_at"])
        assert created is not None
        assert updated is not None
        return cls(
            job_id=str(data["job_id"]),
            key_ref=str(data["key_ref"]),
            target_version=str(data["target_version"]),
            target_key_id=str(data["target_key_id"]),
            status=JobStatus(data["status"]),
            scope=str(data.get("scope", "")),
            pass_number=int(data.get("pass_number", 1)),
            continuation=data.get("continuation"),
            counters=JobCounters.from_dict(data.get("counters", {})),
            pending_conflicts=tuple(str(ref) for ref in data.get("pending_conflicts", ())),
            issues=tuple(ItemIssue.from_dict(item) for item in data.get("issues", ())),
            issues_dropped=int(data.get("issues_dropped", 0)),
            pages=int(data.get("pages", 0)),
            created_at=created,
            updated_at=updated,
            finished_at=_from_iso(data.get("finished_at")),
            owner=data.get("owner"),
            lease_expires_at=_from_iso(data.get("lease_expires_at")),
            error=data.get("error"),
            attempts=int(data.get("attempts", 0)),
            max_attempts=int(data.get("max_attempts", MAX_JOB_ATTEMPTS)),
            next_attempt_at=_from_iso(data.get("next_attempt_at")),
            restart_requested=bool(data.get("restart_requested", False)),
            left_behind=int(data.get("left_behind", 0)),
            failures=int(data.get("failures", 0)),
            refused=bool(data.get("refused", False)),
            verification=bool(data.get("verification", False)),
            pass_started_at=_from_iso(data.get("pass_started_at")),
            pass_seconds=float(data.get("pass_seconds", 0.0)),
            passes=tuple(PassRecord.from_dict(item) for item in data.get("passes", ())),
            left_behind_count=LeftBehindCount.from_dict(data.get("left_behind_count")),
        )
