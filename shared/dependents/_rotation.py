"""After a rotation: re-point a pinned account to the new version, or flag it stale.

Re-pointing changes a customer's resource, so it happens only when the kind's setting allows
it (``KEYWARD_FACE_REPOINT`` for Face) and only to a version the service can use right now:
enabled, within nbf/exp, with wrapKey and unwrapKey. The target is the key's *current*
version as the vault reports it, not the version an event named, so late or reordered events
cannot re-point an account backwards.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from shared.dependents._facts import KeyFacts, KeyPresence
from shared.dependents._models import DependentResource, normalize_vault_uri


class RotationAction(enum.StrEnum):
    NONE = "NONE"
    REPOINT = "REPOINT"
    FLAG_STALE = "FLAG_STALE"


@dataclass(frozen=True)
class RotationDecision:
    action: RotationAction
    target_version: str | None
    reason: str


def rotation_follow_up(
    account: DependentResource,
    key: KeyFacts,
    now: datetime,
    *,
    repoint_allowed: bool,
    repoint_setting: str = "REPOINT",
) -> RotationDecision:
    """What to do about ``account`` now that its key may have a newer version.

    ``repoint_setting`` names the setting that allows re-pointing, for the reason text.

    ``FLAG_STALE`` changes nothing in ARM; the account's verdict already carries
    ``STALE_KEY_VERSION`` and the flag machine reports it.
    """
    if account.key_version is None:
        return _none("the account follows the key's latest version")
    if key.presence is not KeyPresence.PRESENT or not key.current_version:
        return _none("the key has no current version; the verdict reports why")
    if key.kid and normalize_vault_uri(key.kid) != account.key_vault_uri:
        return _none("the key facts are for a key in another vault")
    current = key.current_version.lower()
    if account.key_version == current:
        return _none("already on the current version")
    target = key.current
    if target is None:
        return _stale(current, "the current version's attributes are unknown")
    problem = None
    if not target.enabled:
        problem = "the current version is disabled"
    elif target.exp is not None and target.exp <= now:
        problem = "the current version has expired"
    elif target.nbf is not None and target.nbf > now:
        problem = "the current version is not valid yet"
    elif not target.allows("wrapKey", "unwrapKey"):
        problem = "the current version lacks wrapKey or unwrapKey"
    if problem is not None:
        return _stale(current, problem)
    if not repoint_allowed:
        return _stale(current, f"re-pointing is off ({repoint_setting}=false)")
    return RotationDecision(RotationAction.REPOINT, current, f"re-point to {current}")


def _none(reason: str) -> RotationDecision:
    return RotationDecision(RotationAction.NONE, None, reason)


def _stale(version: str, reason: str) -> RotationDecision:
    return RotationDecision(RotationAction.FLAG_STALE, version, reason)
