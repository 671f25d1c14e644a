"""Handle one Key Vault (or subscription) event: validate, deduplicate, act, remember.

Event Grid delivers at least once, in any order, and retries only what fails. So:

* a malformed or foreign event is recorded with its reason and *acknowledged* (returning
  normally): retrying it would fail the same way for 24 hours;
* so is an event the vault refuses for good: a key or version it does not have, or a
  permanent refusal (403, any non-transient answer). The vault is asked only what planning
  asks anyway; no job is planned and nothing else is done. A later fix (a role granted, a
  key restored) is picked up by the sweep, which lists the keys itself;
* a transient fault (vault, queue or table unreachable, throttled) *raises*, so Event Grid
  redelivers later; the event is remembered as handled only after every action succeeded;
* a duplicate (same type and id) changes nothing the second time;
* a stale event (an older version's rotation arriving late) is harmless: planning always
  targets the newest enabled version the vault confirms;
* the key-dependent resources' actions of one event (a rotation's follow-up and the key's
  access re-check, or a near-expiry warning and the same re-check) do not run here: they
  go as ONE follow-up message on keyward's queue (``DependentsFollowUp``), which the queue
  worker runs with the queue's retries, each account evaluated once per event. Listing and
  evaluating accounts costs ARM and vault calls that do not fit Event Grid's 30 seconds,
  and a permanent ARM refusal there would be redelivered for a day. An auto-rotation the
  event asks for after them travels in the same message, so the evaluation still sees the
  key before it rotates.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from shared import telemetry
from shared.crypto import VaultAllowList
from shared.errors import (
    AccessDeniedError,
    EventRejectedError,
    KeyNotFoundError,
    KeywardError,
    ServiceError,
)
from shared.events import (
    AccessChangeEvent,
    DependentsFollowUp,
    FollowUpRotation,
    IgnoredEvent,
    PlanRewrap,
    ReevaluateAccess,
    RejectionReason,
    RotateKey,
    WarnNearExpiry,
    dedup_key,
    parse_event,
    rejected_event_record,
    route,
)
from shared.events import AccessScope as _Scope
from shared.rewrap import RewrapPlan, RewrapTargetError, TargetVersionNotFoundError
from shared.services._planner import RewrapPlanner
from shared.services._ports import EventLedgerPort, FollowUpQueue, KeyRotator

_log = logging.getLogger("keyward.events")
T = TypeVar("T")

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


class _Refused(Exception):
    """The vault refused what the event asks, for good (carries the rejection)."""

    def __init__(self, rejection: EventRejectedError) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


class KeyEventService:
    """The service behind ``on_key_vault_event``."""

    def __init__(
        self,
        *,
        allow_list: VaultAllowList,
        ledger: EventLedgerPort,
        planner: RewrapPlanner,
        follow_ups: FollowUpQueue,
        rotator: KeyRotator | None = None,
        auto_rotate_near_expiry: bool = False,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._allow_list = allow_list
        self._ledger = ledger
        self._planner = planner
        self._follow_ups = follow_ups
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
            telemetry.event_rejected(error.reason)
            return EventOutcome(REJECTED, error.event_id, None, detail=error.reason)
        if isinstance(event, IgnoredEvent):
            _log.debug("ignored %s %s: %s", event.event_type, event.event_id, event.reason)
            return EventOutcome(IGNORED, event.event_id, event.event_type, detail=event.reason)
        key = dedup_key(event)
        if await self._ledger.seen(key):
            return EventOutcome(DUPLICATE, event.event_id, event.event_type)
        actions = route(event, auto_rotate_near_expiry=self._auto_rotate)
        try:
            done, jobs, follow_up = await self._act(actions, key, event.event_id)
        except _Refused as refused:
            rejection = refused.rejection
            await self._ledger.reject(rejected_event_record(payload, rejection, self._now()))
            telemetry.event_rejected(rejection.reason)
            _log.warning("event %s refused: %s", event.event_id, rejection)
            return EventOutcome(REJECTED, event.event_id, event.event_type, detail=rejection.reason)
        if follow_up is not None:
            await self._follow_ups.send_follow_up(follow_up)
        await self._ledger.remember(key, event_type=event.event_type, event_id=event.event_id)
        scope = "access" if isinstance(event, AccessChangeEvent) else "key"
        return EventOutcome(
            HANDLED, event.event_id, event.event_type, tuple(done), detail=scope, jobs=tuple(jobs)
        )

    async def _act(
        self, actions: Sequence[object], event_key: str, event_id: str
    ) -> tuple[list[str], list[str], DependentsFollowUp | None]:
        """Run the event's own actions; gather the dependents' into one follow-up message.

        Raises:
            _Refused: the vault refused an action for good (nothing was enqueued).
            ServiceError: a transient fault.
        """
        done: list[str] = []
        jobs: list[str] = []
        rotations: list[FollowUpRotation] = []
        scopes: list[_Scope] = []
        rotate_after: RotateKey | None = None
        for action in actions:
            done.append(type(action).__name__)
            if isinstance(action, PlanRewrap):
                plan = await self._resolve(action, event_id)
                if plan is not None:
                    jobs.extend(m.job_id for m in (await self._planner.enqueue(plan)).messages)
            elif isinstance(action, FollowUpRotation):
                rotations.append(action)
            elif isinstance(action, ReevaluateAccess):
                scopes.append(action.scope)
            elif isinstance(action, WarnNearExpiry):
                scopes.append(self._key_scope(action.key_ref))
            elif isinstance(action, RotateKey) and self._rotator is not None:
                if rotations or scopes:
                    rotate_after = action  # after the evaluation, in the follow-up
                else:
                    await self._refusing(
                        self._rotator.rotate(
                            action.key_ref, if_current_version=action.if_current_version
                        ),
                        event_id,
                    )
        follow_up = None
        if rotations or scopes or rotate_after is not None:
            follow_up = DependentsFollowUp(
                event_key,
                event_id,
                tuple(rotations),
                tuple(dict.fromkeys(scopes)),
                rotate_after,
            )
        return done, jobs, follow_up

    async def _resolve(self, action: PlanRewrap, event_id: str) -> RewrapPlan | None:
        """The rewrap target the vault confirms; ``None`` for a late event (disabled version).

        Raises:
            _Refused: the key or version does not exist, or the vault refused for good.
            ServiceError: a transient fault.
        """
        try:
            return await self._refusing(
                self._planner.resolve(action.key_ref, action.version), event_id
            )
        except TargetVersionNotFoundError as error:
            raise _Refused(
                EventRejectedError(RejectionReason.VERSION_NOT_FOUND, str(error), event_id=event_id)
            ) from None
        except RewrapTargetError as error:
            # The version is disabled already (a late event): nothing to move to.
            # Acknowledge; the sweep keeps DEKs on the newest version anyway.
            _log.info("rewrap not planned for %s: %s", action.key_ref, error)
            return None

    async def _refusing(self, call: Awaitable[T], event_id: str) -> T:
        """Await a vault call, turning a permanent refusal into :class:`_Refused`.

        Raises:
            _Refused: a non-transient ServiceError (404, 403, other refusals).
            ServiceError: a transient one, as raised.
        """
        try:
            return await call
        except ServiceError as error:
            if error.transient:
                raise
            raise _Refused(
                EventRejectedError(_refusal_reason(error), str(error), event_id=event_id)
            ) from None

    def _key_scope(self, key_ref: str) -> _Scope:
        """The access scope of one key, its vault named as the allow-list names it."""
        key = self._allow_list.check_key_id(key_ref, require_version=False)
        return _Scope(vault_name=key.vault_name, key_name=key.name)


def _refusal_reason(error: KeywardError) -> RejectionReason:
    if isinstance(error, KeyNotFoundError):
        return RejectionReason.KEY_NOT_FOUND
    if isinstance(error, AccessDeniedError):
        return RejectionReason.ACCESS_DENIED
    return RejectionReason.SERVICE_REFUSED


__all__ = ["EventOutcome", "KeyEventService", "ServiceError"]
