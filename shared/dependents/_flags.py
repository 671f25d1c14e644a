"""The flag state machine: one status record per account, effects only on a change.

Idempotent by construction: the same verdict twice yields the same record (bar
``last_seen``) and no effects, so a sweep every five minutes never re-sends an event or
re-writes a tag. ``UNKNOWN`` never flips a flag: a throttled or unreachable vault keeps the
last known verdict and only notes since when it has been unknown, so a flaky network cannot
make flags flap between LOST and OK.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType

from shared.dependents._facts import KeyAccessFacts, KeyPresence
from shared.dependents._models import DependentResource
from shared.dependents._reasons import Finding, Reason, Status, Verdict

#: The tag keyward sets on the account; the owner's other tags are left as they are.
STATUS_TAG = "keyward-cmk-status"


class FlagEventType(enum.StrEnum):
    """The change an outgoing event reports; its CloudEvent type is the kind's prefix plus
    this (``Keyward.FaceAccount.KeyAccessLost``), see :func:`event_type_name`."""

    KEY_ACCESS_LOST = "KeyAccessLost"
    KEY_ACCESS_RESTORED = "KeyAccessRestored"
    KEY_AT_RISK = "KeyAtRisk"
    KEY_REPOINTED = "KeyRepointed"


def event_type_name(prefix: str, event_type: FlagEventType) -> str:
    """The CloudEvent ``type`` for a kind: ``{prefix}.{change}``."""
    return f"{prefix}.{event_type.value}"


@dataclass(frozen=True)
class FlagRecord:
    """What keyward remembers about one account.

    Attributes:
        status: the last *known* verdict (``UNKNOWN`` only before anything was known).
        reasons: the reasons of that verdict.
        key_id: the key id the account pointed at (versioned when pinned).
        first_seen / last_seen: first and latest evaluation.
        last_change: when ``status`` last changed.
        unknown_since: since when evaluations have been UNKNOWN, or ``None``.
        unknown_reasons: why the latest evaluation was UNKNOWN.
    """

    account_id: str
    status: Status
    reasons: tuple[Finding, ...]
    key_id: str
    first_seen: datetime
    last_seen: datetime
    last_change: datetime
    unknown_since: datetime | None = None
    unknown_reasons: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class PublishEvent:
    """Publish one CloudEvent (the change, ``subject`` = the account id, ``data``); the
    kind's labels complete the CloudEvent ``type`` and ``source``."""

    event_type: FlagEventType
    subject: str
    data: Mapping[str, object] = field(hash=False)


@dataclass(frozen=True)
class SetTags:
    """Replace the account's tags with ``tags``: the owner's tags plus keyward's one."""

    resource_id: str
    tags: Mapping[str, str] = field(hash=False)


Effect = PublishEvent | SetTags


@dataclass(frozen=True)
class FlagTransition:
    record: FlagRecord
    effects: tuple[Effect, ...]


def next_flag_state(
    previous: FlagRecord | None, verdict: Verdict, account: DependentResource, now: datetime
) -> FlagTransition:
    """The new record for ``account`` and the effects to perform, given its new verdict.

    Persist the record only after the effects succeed; if they fail, the next sweep computes
    the same transition again (at least once, like Event Grid itself).
    """
    if verdict.status is Status.UNKNOWN:
        return FlagTransition(_unknown(previous, verdict, account, now), ())
    known = previous.status if previous and previous.status is not Status.UNKNOWN else None
    changed = known is not verdict.status
    effects: list[Effect] = []
    if previous is not None and previous.key_id != account.key_id:
        effects.append(
            _event(FlagEventType.KEY_REPOINTED, account, verdict, known, now, previous=previous)
        )
    if changed:
        event_type = _event_type(known, verdict.status)
        if event_type is not None:
            effects.append(_event(event_type, account, verdict, known, now, previous=previous))
        tags = {**account.tags, STATUS_TAG: verdict.status.value}
        if tags != dict(account.tags):
            effects.append(SetTags(account.id, MappingProxyType(tags)))
    record = FlagRecord(
        account_id=account.id,
        status=verdict.status,
        reasons=verdict.reasons,
        key_id=account.key_id,
        first_seen=previous.first_seen if previous else now,
        last_seen=now,
        last_change=now if changed or previous is None else previous.last_change,
    )
    return FlagTransition(record, tuple(effects))


def _unknown(
    previous: FlagRecord | None, verdict: Verdict, account: DependentResource, now: datetime
) -> FlagRecord:
    if previous is None:
        return FlagRecord(
            account_id=account.id,
            status=Status.UNKNOWN,
            reasons=(),
            key_id=account.key_id,
            first_seen=now,
            last_seen=now,
            last_change=now,
            unknown_since=now,
            unknown_reasons=verdict.reasons,
        )
    # key_id is kept: a re-point seen while unknown is reported once the account is known.
    return replace(
        previous,
        last_seen=now,
        unknown_since=previous.unknown_since or now,
        unknown_reasons=verdict.reasons,
    )


def _event_type(known: Status | None, new: Status) -> FlagEventType | None:
    if new is Status.ACCESS_LOST:
        return FlagEventType.KEY_ACCESS_LOST
    if new is Status.AT_RISK:
        return FlagEventType.KEY_AT_RISK
    if known in (Status.ACCESS_LOST, Status.AT_RISK):
        return FlagEventType.KEY_ACCESS_RESTORED
    return None  # first sight of a healthy account: a tag, no event


def _event(
    event_type: FlagEventType,
    account: DependentResource,
    verdict: Verdict,
    known: Status | None,
    now: datetime,
    *,
    previous: FlagRecord | None,
) -> PublishEvent:
    data: dict[str, object] = {
        "accountId": account.id,
        "accountName": account.name,
        "status": verdict.status.value,
        "previousStatus": known.value if known else None,
        "reasons": [f.reason.value for f in verdict.reasons],
        "details": [f.detail for f in verdict.reasons],
        "keyId": account.key_id,
        "observedAt": now.isoformat(),
    }
    if event_type is FlagEventType.KEY_REPOINTED and previous is not None:
        data["previousKeyId"] = previous.key_id
    return PublishEvent(event_type, account.id, MappingProxyType(data))


def with_purge(facts: KeyAccessFacts, previous: FlagRecord | None) -> KeyAccessFacts:
    """A key the vault no longer has, deleted or not, that keyward saw before: PURGED."""
    key = facts.key
    if key is None or key.presence is not KeyPresence.MISSING or previous is None:
        return facts
    reasons = {f.reason for f in previous.reasons}
    if previous.status is Status.UNKNOWN or reasons & {Reason.KEY_MISSING, Reason.KEY_PURGED}:
        return facts
    return replace(facts, key=replace(key, presence=KeyPresence.PURGED))
