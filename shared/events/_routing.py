"""What to do about a parsed event: a pure decision, executed elsewhere.

The trigger has 30 seconds per delivery, so actions are *plans* (enqueue a rewrap job, re-check
some accounts), never the work itself. Every action is safe to repeat: a duplicate delivery
yields the same actions, and their executors are idempotent (the rewrap engine targets the
newest enabled version it confirms with the vault, whatever version the event named).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.crypto import KeyId
from shared.events._model import (
    AccessChangeEvent,
    AccessScope,
    IgnoredEvent,
    KeyVaultEvent,
    ParsedEvent,
)
from shared.events._types import KeyEventKind


@dataclass(frozen=True)
class PlanRewrap:
    """Plan (or join) a rewrap job for ``key_ref`` towards ``version`` or newer."""

    key_ref: str
    version: str


@dataclass(frozen=True)
class FollowUpRotation:
    """Face accounts pinned to an older version of ``key_ref``: re-point or flag stale."""

    key_ref: str
    version: str


@dataclass(frozen=True)
class ReevaluateAccess:
    """Re-run Face key-access verdicts for the accounts in ``scope``."""

    scope: AccessScope


@dataclass(frozen=True)
class WarnNearExpiry:
    """Tell owners that ``key_ref`` (at ``version``) expires at ``exp``."""

    key_ref: str
    version: str | None
    exp: datetime | None


@dataclass(frozen=True)
class RotateKey:
    """Rotate ``key_ref``, but only while its current version is still ``if_current_version``.

    The condition makes a duplicate or late near-expiry event harmless: once the key has a
    newer version, the executor skips the rotation instead of minting yet another one.
    """

    key_ref: str
    if_current_version: str | None


@dataclass(frozen=True)
class Ignore:
    reason: str


Action = PlanRewrap | FollowUpRotation | ReevaluateAccess | WarnNearExpiry | RotateKey | Ignore


def route(event: ParsedEvent, *, auto_rotate_near_expiry: bool = False) -> list[Action]:
    """The actions an event calls for, in the order they should be taken.

    Args:
        event: a result of ``parse_event``.
        auto_rotate_near_expiry: ``Settings.auto_rotate_near_expiry``; without it a
            near-expiry event only warns.
    """
    if isinstance(event, IgnoredEvent):
        return [Ignore(event.reason)]
    if isinstance(event, AccessChangeEvent):
        return [ReevaluateAccess(event.scope)]
    return _route_key_event(event, auto_rotate_near_expiry=auto_rotate_near_expiry)


def _route_key_event(event: KeyVaultEvent, *, auto_rotate_near_expiry: bool) -> list[Action]:
    key: KeyId = event.key_id
    key_scope = ReevaluateAccess(AccessScope(event.vault_name, key.name))
    if event.kind is KeyEventKind.NEW_VERSION:
        assert event.version is not None  # parse_event requires it for new versions
        return [
            PlanRewrap(key.key_ref, event.version),
            FollowUpRotation(key.key_ref, event.version),
            key_scope,
        ]
    if event.kind is KeyEventKind.NEAR_EXPIRY:
        actions: list[Action] = [WarnNearExpiry(key.key_ref, event.version, event.exp), key_scope]
        if auto_rotate_near_expiry:
            actions.append(RotateKey(key.key_ref, event.version))
        return actions
    return [key_scope]
