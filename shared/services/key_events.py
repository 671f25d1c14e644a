"""Handle one Key Vault (or subscription) event: validate, deduplicate, act, remember.

Event Grid delivers at least once, in any order, and retries only what fails. So:

* a malformed or foreign event is recorded with its reason and *acknowledged* (returning
  normally): retrying it would fail the same way for 24 hours;
* a transient fault (vault, queue or table unreachable, throttled) *raises*, so Event Grid
  redelivers later; the event is remembered as handled only after every action succeeded;
* a duplicate (same type and id) changes nothing the second time;
* a stale event (an older version's rotation arriving late) is harmless: planning always
  targets the newest enabled version the vault confirms;
* the key-dependent resources' actions of one event (a rotation's follow-up and the key's
  access re-check, or a near-expiry warning and the same re-check) are run as ONE call, so
  each account is evaluated once per event: twice would double the ARM and vault calls
  inside Event Grid's 30 seconds. The call happens where the first of them is routed, so
  it still runs before a later action (an auto-rotation) changes the key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.crypto import VaultAllowList
from shared.errors import EventRejectedError, ServiceError
from shared.events import (
    AccessChangeEvent,
    FollowUpRotation,
    Ignore,
    IgnoredEvent,
    PlanRewrap,
    ReevaluateAccess,
    RotateKey,
    WarnNearExpiry,
    dedup_key,
    parse_event,
    rejected_event_record,
    route,
)
from shared.events import AccessScope as _Scope
from shared.rewrap import RewrapTargetError
from shared.services._planner import RewrapPlanner
from shared.services._ports import EventLedgerPort, KeyDependents, KeyRotator

_log = logging.getLogger("keyward.events")

HANDLED = "handled"
DUPLICATE = "duplicate"
IGNORED = "ignored"
REJECTED = "rejected"


@dataclass(frozen=True)
class EventOutcome:
    """What happened to one delivered event; ``log_line`` is the function's one log line."""

    status: str
    event_id: str | None
    event_type: str | None
    actions: tuple[str, ...] = ()
    detail: str = ""
    jobs: tuple[str, ...] = field(default=())

    def log_line(self) -> str:
        parts = [f"event {self.status}", f"id={self.event_id}", f"type={self.event_type}"]
        if self.actions:
            parts.append("actions=" + ",".join(self.actions))
        if self.jobs:
            parts.append("jobs=" + ",".join(self.jobs))
        if self.detail:
            parts.append(f"detail={self.detail}")
        return " ".join(parts)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class KeyEventService:
    """The service behind ``on_key_vault_event``."""

    def __init__(
        self,
        *,
        allow_list: VaultAllowList,
        ledger: EventLedgerPort,
        planner: RewrapPlanner,
        dependents: KeyDependents,
        rotator: KeyRotator | None = None,
        auto_rotate_near_expiry: bool = False,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._allow_list = allow_list
        self._ledger = ledger
        self._planner = planner
        self._dependents = dependents
        self._rotator = rotator
        self._auto_rotate = auto_rotate_near_expiry and rotator is not None
        self._now = now

    async def handle(self, payload: object) -> EventOutcome:
        """Handle one event given as a dict (or JSON text) in either schema.

        Raises:
            ServiceError: a transient fault; nothing was remembered, so a redelivery retries.
        """
        try:
            event = parse_event(payload, self._allow_list)
        except EventRejectedError as error:
            await self._ledger.reject(rejected_event_record(payload, error, self._now()))
            return EventOutcome(REJECTED, error.event_id, None, detail=error.reason)
        if isinstance(event, IgnoredEvent):
            _log.debug("ignored %s %s: %s", event.event_type, event.event_id, event.reason)
            return EventOutcome(IGNORED, event.event_id, event.event_type, detail=event.reason)
        key = dedup_key(event)
        if await self._ledger.seen(key):
            return EventOutcome(DUPLICATE, event.event_id, event.event_type)
        actions = route(event, auto_rotate_near_expiry=self._auto_rotate)
        done: list[str] = []
        jobs: list[str] = []
        rotations: list[FollowUpRotation] = []
        scopes: list[_Scope] = []
        for index, action in enumerate(actions):
            done.append(type(action).__name__)
            if isinstance(action, PlanRewrap):
                try:
                    planned = await self._planner.plan(action.key_ref, action.version)
                except RewrapTargetError as error:
                    # The version is gone or disabled already (a late event): nothing to move
                    # to. Acknowledge; the sweep keeps DEKs on the newest version anyway.
                    _log.info("rewrap not planned for %s: %s", action.key_ref, error)
                    continue
                jobs.extend(m.job_id for m in planned.messages)
            elif isinstance(action, FollowUpRotation):
                rotations.append(action)
            elif isinstance(action, ReevaluateAccess):
                scopes.append(action.scope)
            elif isinstance(action, WarnNearExpiry):
                scopes.append(self._key_scope(action.key_ref))
            elif isinstance(action, RotateKey):
                if self._rotator is not None:
                    await self._rotator.rotate(
                        action.key_ref, if_current_version=action.if_current_version
                    )
            elif isinstance(action, Ignore):
                continue
            if (rotations or scopes) and not _dependents_action(actions[index + 1 :]):
                await self._dependents.on_key_event(rotations, list(dict.fromkeys(scopes)))
                rotations, scopes = [], []
        await self._ledger.remember(key, event_type=event.event_type, event_id=event.event_id)
        scope = "access" if isinstance(event, AccessChangeEvent) else "key"
        return EventOutcome(
            HANDLED, event.event_id, event.event_type, tuple(done), detail=scope, jobs=tuple(jobs)
        )

    def _key_scope(self, key_ref: str) -> _Scope:
        """The access scope of one key, its vault named as the allow-list names it."""
        key = self._allow_list.check_key_id(key_ref, require_version=False)
        return _Scope(vault_name=key.vault_name, key_name=key.name)


def _dependents_action(rest: Sequence[object]) -> bool:
    """Whether the next action is for the key-dependent resources too (batch it)."""
    return bool(rest) and isinstance(rest[0], FollowUpRotation | ReevaluateAccess | WarnNearExpiry)


__all__ = ["EventOutcome", "KeyEventService", "ServiceError"]
