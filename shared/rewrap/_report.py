"""What a rewrap job counts and reports, per item and in total.

Counters obey one invariant, checked by the tests after every crash and resume::

    scanned == rewrapped + already_current + gone + conflicts
               + sum(unreadable.values()) + sum(failed.values()) + len(pending_conflicts)

Nothing here holds key material: items are named by the store's ``ref`` and a key id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ItemOutcome(StrEnum):
    """What happened to one scanned DEK."""

    REWRAPPED = "rewrapped"
    #: Already at the target (or at a newer version): nothing to do.
    ALREADY_CURRENT = "already_current"
    #: The vault refused to unwrap it (version disabled, deleted, access lost); marked so.
    UNREADABLE = "unreadable"
    #: Its ETag changed under us twice; a concurrent writer's change was kept.
    CONFLICT = "conflict"
    #: A concurrent writer rewrapped or deleted it; this job has nothing left to do for it.
    GONE = "gone"
    #: Reported and left untouched; ``reason`` says why.
    FAILED = "failed"


class FailureReason(StrEnum):
    """Why a DEK was reported and left untouched."""

    UNPARSEABLE = "unparseable"
    FOREIGN_KEY = "foreign_key"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    INTEGRITY = "integrity"
    TRANSIENT = "transient_retries_exhausted"
    SERVICE_ERROR = "service_error"
    WRITE_FAILED = "write_failed"
    INTERNAL = "internal_error"
    #: Wrapped under a version retired through keyward: keeping that wrap as the previous
    #: one would write under a retired version, so the DEK is reported, not rewritten.
    RETIRED_VERSION = "retired_version"


class UnreadableReason(StrEnum):
    """Why the vault refused an unwrap (the reason written by ``mark_unreadable``)."""

    KEY_DISABLED = "key_disabled"
    KEY_NOT_FOUND = "key_not_found"
    ACCESS_DENIED = "access_denied"


@dataclass(frozen=True)
class ItemIssue:
    """One DEK that was not simply rewrapped, echoing the store's reference."""

    ref: str
    outcome: ItemOutcome
    reason: str
    key_id: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "ref": self.ref,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "key_id": self.key_id,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemIssue:
        return cls(
            ref=str(data["ref"]),
            outcome=ItemOutcome(data["outcome"]),
            reason=str(data["reason"]),
            key_id=str(data["key_id"]),
            detail=str(data.get("detail", "")),
        )


@dataclass
class JobCounters:
    """Running totals of a job; saved in every checkpoint."""

    scanned: int = 0
    rewrapped: int = 0
    already_current: int = 0
    gone: int = 0
    conflicts: int = 0
    unreadable: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    #: Unwrap requests sent to the vault, retries included.
    vault_operations: int = 0
    #: 429 answers received.
    throttled: int = 0

    @property
    def unreadable_total(self) -> int:
        return sum(self.unreadable.values())

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    def settled(self) -> int:
        """Items with a final outcome (everything scanned but pending conflicts)."""
        return (
            self.rewrapped
            + self.already_current
            + self.gone
            + self.conflicts
            + self.unreadable_total
            + self.failed_total
        )

    def count(self, outcome: ItemOutcome, reason: str = "") -> None:
        """Add one item with ``outcome`` (and ``reason`` for unreadable and failed)."""
        if outcome is ItemOutcome.REWRAPPED:
            self.rewrapped += 1
        elif outcome is ItemOutcome.ALREADY_CURRENT:
            self.already_current += 1
        elif outcome is ItemOutcome.GONE:
            self.gone += 1
        elif outcome is ItemOutcome.CONFLICT:
            self.conflicts += 1
        elif outcome is ItemOutcome.UNREADABLE:
            self.unreadable[reason] = self.unreadable.get(reason, 0) + 1
        else:
            self.failed[reason] = self.failed.get(reason, 0) + 1

    def merge(self, other: JobCounters) -> None:
        """Add ``other``'s counts to these."""
        self.scanned += other.scanned
        self.rewrapped += other.rewrapped
        self.already_current += other.already_current
        self.gone += other.gone
        self.conflicts += other.conflicts
        self.vault_operations += other.vault_operations
        self.throttled += other.throttled
        for reason, count in other.unreadable.items():
            self.unreadable[reason] = self.unreadable.get(reason, 0) + count
        for reason, count in other.failed.items():
            self.failed[reason] = self.failed.get(reason, 0) + count

    def copy(self) -> JobCounters:
        fresh = JobCounters()
        fresh.merge(self)
        return fresh

    def to_dict(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "rewrapped": self.rewrapped,
            "already_current": self.already_current,
            "gone": self.gone,
            "conflicts": self.conflicts,
            "unreadable": dict(sorted(self.unreadable.items())),
            "failed": dict(sorted(self.failed.items())),
            "vault_operations": self.vault_operations,
            "throttled": self.throttled,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobCounters:
        return cls(
            scanned=int(data.get("scanned", 0)),
            rewrapped=int(data.get("rewrapped", 0)),
            already_current=int(data.get("already_current", 0)),
            gone=int(data.get("gone", 0)),
            conflicts=int(data.get("conflicts", 0)),
            unreadable={str(k): int(v) for k, v in data.get("unreadable", {}).items()},
            failed={str(k): int(v) for k, v in data.get("failed", {}).items()},
            vault_operations=int(data.get("vault_operations", 0)),
            throttled=int(data.get("throttled", 0)),
        )
