"""A rewrap job's durable state: identity, checkpoint, counters, lease.

The job id is derived from (key, target version) only, so the same request twice, from two
events or two workers, is one job. A checkpoint is the store's scan continuation plus the
counters as of that continuation, written together after each page, so a resumed job neither
skips nor double-counts a page. No key material is ever part of the state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.rewrap._report import ItemIssue, JobCounters

_JOB_ID_PREFIX = "rewrap-"
_JOB_ID_HEX = 32


#: Runs of a job that ended short of clean (failed items, DEKs left under older versions)
#: the sweep makes before it stops retrying on its own (``POST /api/rewrap`` with
#: ``"restart": true`` still restarts it). Recorded on each job as ``max_attempts``.
MAX_JOB_ATTEMPTS = 6
#: Wait before the sweep retries such a job: doubles per attempt (5, 10, 20, 40, 80 min...),
#: at most ``JOB_RETRY_MAX_SECONDS``. Throttling and conflicts pass; a retry right away would
#: meet the same vault.
JOB_RETRY_BASE_SECONDS = 300
JOB_RETRY_MAX_SECONDS = 6 * 3600


class JobStatus(StrEnum):
    RUNNING = "running"
    #: Ended clean: every DEK is at the target (or newer, or gone); nothing is left behind.
    COMPLETED = "completed"
    #: Ended, but items failed (throttled out, conflicts, vault or write errors): the sweep
    #: retries it (a fresh pass) with backoff, up to ``max_attempts`` runs.
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    #: Ended with no failed item, but DEKs are still under older versions (unreadable ones,
    #: or DEKs written under an old version while the job ran): retried like the above.
    INCOMPLETE = "incomplete"
    #: Stopped by a fault that is not one item's (store down, target refused); resumable: by
    #: the sweep with backoff, up to ``max_attempts`` failures in a row, unless ``refused``.
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        """Whether the job ran to its end (clean or not); a run returns it as is."""
        return self in _ENDED

    @property
    def short_of_clean(self) -> bool:
        """Ended, but not clean: the sweep retries it with backoff, bounded."""
        return self in _SHORT_OF_CLEAN


_SHORT_OF_CLEAN = frozenset({JobStatus.COMPLETED_WITH_FAILURES, JobStatus.INCOMPLETE})
_ENDED = frozenset({JobStatus.COMPLETED, *_SHORT_OF_CLEAN})


def retry_delay(attempts: int) -> timedelta:
    """How long after its ``attempts``-th run ended short of clean a job is retried."""
    exponent = min(max(attempts, 1) - 1, 16)
    return timedelta(seconds=min(JOB_RETRY_MAX_SECONDS, JOB_RETRY_BASE_SECONDS * 2**exponent))


def rewrap_job_id(key_ref: str, target_version: str, scope: str = "") -> str:
    """The id of the job that rewraps key ``key_ref`` to ``target_version`` in ``scope``.

    ``scope`` names the DEK store (the engine passes ``store.name``): one key's DEKs may live
    in several stores (a table, blob containers), each its own job with its own checkpoint.
    Deterministic and case-insensitive (vault hosts, key names and versions are), safe as a
    Table row key, a file name or a queue message field.
    """
    identity = f"{key_ref.strip().rstrip('/').lower()}|{target_version.strip().lower()}"
    if scope:
        identity = f"{scope}|{identity}"
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:_JOB_ID_HEX]
    return _JOB_ID_PREFIX + digest


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
        )
