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
    DENY_ASSIGNMENT_BLOCKS = "DENY_ASSIGNMENT_BLOCKS"
    VAULT_FIREWALL_BLOCKS_SERVICE = "VAULT_FIREWALL_BLOCKS_SERVICE"
    # AT_RISK
    EXPIRES_SOON = "EXPIRES_SOON"
    SOFT_DELETE_OFF = "SOFT_DELETE_OFF"
    PURGE_PROTECTION_OFF = "PURGE_PROTECTION_OFF"
    STALE_KEY_VERSION = "STALE_KEY_VERSION"
    UNSUPPORTED_KEY_TYPE = "UNSUPPORTED_KEY_TYPE"
    KEY_IN_OTHER_VAULT = "KEY_IN_OTHER_VAULT"
    VAULT_ACCESS_VIA_TRUSTED_SERVICE = "VAULT_ACCESS_VIA_TRUSTED_SERVICE"
    # UNKNOWN
    VAULT_UNREACHABLE = "VAULT_UNREACHABLE"
    THROTTLED = "THROTTLED"
    FACTS_INCOMPLETE = "FACTS_INCOMPLETE"
    GROUP_MEMBERSHIP_UNCHECKED = "GROUP_MEMBERSHIP_UNCHECKED"
    CONDITION_UNEVALUATED = "CONDITION_UNEVALUATED"
    DENY_ASSIGNMENT_UNEVALUATED = "DENY_ASSIGNMENT_UNEVALUATED"
    ROLE_DEFINITION_UNREAD = "ROLE_DEFINITION_UNREAD"
    PRIVATE_ENDPOINT_UNEVALUATED = "PRIVATE_ENDPOINT_UNEVALUATED"
    NETWORK_RULES_UNEVALUATED = "NETWORK_RULES_UNEVALUATED"
    USER_ASSIGNED_IDENTITY_UNRESOLVED = "USER_ASSIGNED_IDENTITY_UNRESOLVED"
    IDENTITY_CLIENT_ID_MISSING = "IDENTITY_CLIENT_ID_MISSING"


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
        Reason.DENY_ASSIGNMENT_BLOCKS,
        Reason.VAULT_FIREWALL_BLOCKS_SERVICE,
    }
)
#: Each names something keyward could not check; any of them (and no LOST reason) makes the
#: verdict UNKNOWN: a grant or a path keyward cannot evaluate is never read as "no access".
UNKNOWN_REASONS = frozenset(
    {
        Reason.VAULT_UNREACHABLE,
        Reason.THROTTLED,
        Reason.FACTS_INCOMPLETE,
        Reason.GROUP_MEMBERSHIP_UNCHECKED,
        Reason.CONDITION_UNEVALUATED,
        Reason.DENY_ASSIGNMENT_UNEVALUATED,
        Reason.ROLE_DEFINITION_UNREAD,
        Reason.PRIVATE_ENDPOINT_UNEVALUATED,
        Reason.NETWORK_RULES_UNEVALUATED,
        Reason.USER_ASSIGNED_IDENTITY_UNRESOLVED,
        Reason.IDENTITY_CLIENT_ID_MISSING,
    }
)


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
