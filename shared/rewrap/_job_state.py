"""A rewrap job's durable state: identity, checkpoint, counters, lease.

The job id is derived from (key, target version) only, so the same request twice, from two
events or two workers, is one job. A checkpoint is the store's scan continuation plus the
counters as of that continuation, written together after each page, so a resumed job neither
skips nor double-counts a page. No key material is ever part of the state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.rewrap._report import ItemIssue, JobCounters

_JOB_ID_PREFIX = "rewrap-"
_JOB_ID_HEX = 32


class JobStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    #: Stopped by a fault that is not one item's (store down, target refused); resumable.
    FAILED = "failed"


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
        status: running, completed or failed.
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
        )
