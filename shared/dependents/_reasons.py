"""What a verdict says: a status and machine-readable reasons, each with a detail.

The codes are user-visible (status API, outgoing events, stored flag records), so they never
change; each reason belongs to exactly one status family.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    OK = "OK"
    AT_RISK = "AT_RISK"
    ACCESS_LOST = "ACCESS_LOST"
    UNKNOWN = "UNKNOWN"


class Reason(enum.StrEnum):
    # ACCESS_LOST
    VAULT_GONE = "VAULT_GONE"
    KEY_MISSING = "KEY_MISSING"
    KEY_DELETED = "KEY_DELETED"
    KEY_PURGED = "KEY_PURGED"
    KEY_DISABLED = "KEY_DISABLED"
    KEY_EXPIRED = "KEY_EXPIRED"
    KEY_NOT_YET_VALID = "KEY_NOT_YET_VALID"
    PINNED_VERSION_MISSING = "PINNED_VERSION_MISSING"
    PINNED_VERSION_DISABLED = "PINNED_VERSION_DISABLED"
    KEY_OPS_MISSING = "KEY_OPS_MISSING"
    IDENTITY_MISSING = "IDENTITY_MISSING"
    IDENTITY_LACKS_PERMISSION = "IDENTITY_LACKS_PERMISSION"
    IDENTITY_LACKS_ROLE = "IDENTITY_LACKS_ROLE"
    # AT_RISK
    EXPIRES_SOON = "EXPIRES_SOON"
    SOFT_DELETE_OFF = "SOFT_DELETE_OFF"
    PURGE_PROTECTION_OFF = "PURGE_PROTECTION_OFF"
    STALE_KEY_VERSION = "STALE_KEY_VERSION"
    UNSUPPORTED_KEY_TYPE = "UNSUPPORTED_KEY_TYPE"
    KEY_IN_OTHER_VAULT = "KEY_IN_OTHER_VAULT"
    # UNKNOWN
    VAULT_UNREACHABLE = "VAULT_UNREACHABLE"
    THROTTLED = "THROTTLED"
    FACTS_INCOMPLETE = "FACTS_INCOMPLETE"


LOST_REASONS = frozenset(
    {
        Reason.VAULT_GONE,
        Reason.KEY_MISSING,
        Reason.KEY_DELETED,
        Reason.KEY_PURGED,
        Reason.KEY_DISABLED,
        Reason.KEY_EXPIRED,
        Reason.KEY_NOT_YET_VALID,
        Reason.PINNED_VERSION_MISSING,
        Reason.PINNED_VERSION_DISABLED,
        Reason.KEY_OPS_MISSING,
        Reason.IDENTITY_MISSING,
        Reason.IDENTITY_LACKS_PERMISSION,
        Reason.IDENTITY_LACKS_ROLE,
    }
)
UNKNOWN_REASONS = frozenset({Reason.VAULT_UNREACHABLE, Reason.THROTTLED, Reason.FACTS_INCOMPLETE})


@dataclass(frozen=True)
class Finding:
    reason: Reason
    detail: str


@dataclass(frozen=True)
class Verdict:
    status: Status
    reasons: tuple[Finding, ...] = ()

    @property
    def codes(self) -> tuple[Reason, ...]:
        return tuple(f.reason for f in self.reasons)
