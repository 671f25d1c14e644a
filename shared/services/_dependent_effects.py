"""Performing a flag transition's effects at most once, even across crashes and instances.

``next_flag_state`` says what to do on a verdict change: publish an event, then set a tag.
Both are outside keyward's storage, so a crash between them (or before the record is stored)
must neither lose the change nor repeat it, and two instances evaluating the same account
(a sweep and an event) must not both perform it. The order of writes:

1. the pending marker (the effects, each event with its CloudEvent id, the new record, and a
   lease) beside the *old* record, ETag-conditional: a concurrent evaluation that read the
   old record fails here, before any effect;
2. each effect, advancing the marker's ``done`` count (and renewing the lease) after it;
3. the new record, clearing the marker.

An evaluation that finds a marker (:meth:`EffectRunner.resume`) leaves it alone while its
lease runs (another instance is at work: ``ConflictError``); once the lease ran out (the
holder crashed) or was given up (the holder's effect failed), it claims the marker with a
conditional write and replays only what was not done. A replayed event keeps its id, and a
tag write is skipped by the writer when the account already carries the tag.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.dependents import (
    DependentWriter,
    Effect,
    FlagRecord,
    FlagTransition,
    KindLabels,
    PendingEffects,
    PublishEvent,
    SetTags,
    event_type_name,
)
from shared.errors import ConflictError

_LOG = logging.getLogger(__name__)
#: How long a marker's writer holds it; far longer than publishing and one ARM PATCH take.
DEFAULT_LEASE = timedelta(minutes=2)


class FlagJournal(Protocol):
    """A flag store that also keeps a pending-effects marker (``TableFlagStore``)."""

    async def load(self, account_id: str) -> tuple[FlagRecord | None, PendingEffects | None]: ...

    async def put(self, record: FlagRecord) -> None: ...

    async def put_pending(self, current: FlagRecord | None, pending: PendingEffects) -> None: ...

    async def first(self, limit: int) -> tuple[Sequence[FlagRecord], bool]:
        """At most ``limit`` records, reading at most ``limit + 1``, and whether more exist."""
        ...


class IdempotentPublisher(Protocol):
    """A flag publisher that takes the event's type, source and id (``EventGridFlagPublisher``)."""

    async def publish(
        self,
        *,
        event_type: str,
        source: str,
        subject: str,
        data: Mapping[str, object],
        event_id: str | None = None,
    ) -> None: ...


@dataclass
class OutcomeCounts:
    events: int = 0
    tag_writes: int = 0
    conflicts: int = 0
    failures: int = 0


@dataclass
class DependentSummary(OutcomeCounts):
    """What one call did, for the function's one log line and the HTTP answers."""

    accounts: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    repointed: int = 0
    stale: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "statuses": dict(self.statuses),
            "events": self.events,
            "tag_writes": self.tag_writes,
            "repointed": self.repointed,
            "stale": self.stale,
            "conflicts": self.conflicts,
            "failures": self.failures,
        }


def event_id(event: PublishEvent, labels: KindLabels) -> str:
    """A stable id for ``event``: the same change of the same account gives the same id."""
    observed = str(event.data.get("observedAt", ""))
    event_type = event_type_name(labels.event_type_prefix, event.event_type)
    name = f"keyward:{event.subject.lower()}:{event_type}:{observed}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def encode(effect: Effect, labels: KindLabels) -> dict[str, Any]:
    """``effect`` as stored in the pending marker; an event with its full CloudEvent type and
    id, so a replay (even by another version of keyward) sends the very same event."""
    if isinstance(effect, PublishEvent):
        return {
            "kind": "event",
            "type": event_type_name(labels.event_type_prefix, effect.event_type),
            "subject": effect.subject,
            "data": dict(effect.data),
            "id": event_id(effect, labels),
        }
    return {"kind": "tags", "resource_id": effect.resource_id, "tags": dict(effect.tags)}


class EffectRunner:
    """Runs effects through the journal's pending marker (see the module docstring)."""

    def __init__(
        self,
        journal: FlagJournal,
        writer: DependentWriter,
        publisher: IdempotentPublisher | None,
        *,
        labels: KindLabels,
        clock: Callable[[], datetime],
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self._labels = labels
        self._journal = journal
        self._writer = writer
        self._publisher = publisher
        self._clock = clock
        self._lease = lease

    async def resume(self, account_id: str, counts: OutcomeCounts) -> FlagRecord | None:
        """The account's record, after finishing any effects a previous run left pending.

        Raises:
            ConflictError: another instance holds the marker, or changed the flag meanwhile.
            ServiceError: an effect or a write failed (the marker keeps what is left).
        """
        record, pending = await self._journal.load(account_id)
        if pending is None:
            return record
        if pending.lease_until is not None and pending.lease_until > self._clock():
            raise ConflictError(f"effects for {account_id} are being performed elsewhere")
        _LOG.info("finishing %d pending effect(s) for %s", len(pending.effects), account_id)
        pending = replace(pending, lease_until=self._clock() + self._lease)
        await self._journal.put_pending(record, pending)  # the claim (ETag-conditional)
        await self._finish(record, pending, counts)
        return pending.record

    async def apply(
        self, previous: FlagRecord | None, transition: FlagTransition, counts: OutcomeCounts
    ) -> None:
        """Store the transition's record, performing its effects first when it has any.

        Raises:
            ConflictError, ServiceError: as for :meth:`resume`.
        """
        if not transition.effects:
            await self._journal.put(transition.record)
            return
        pending = PendingEffects(
            transition.record,
            tuple(encode(e, self._labels) for e in transition.effects),
            lease_until=self._clock() + self._lease,
        )
        await self._journal.put_pending(previous, pending)
        await self._finish(previous, pending, counts)

    async def _finish(
        self, current: FlagRecord | None, pending: PendingEffects, counts: OutcomeCounts
    ) -> None:
        for index in range(pending.done, len(pending.effects)):
            try:
                await self._perform(pending.effects[index], counts)
            except Exception:
                # Let go at once, so the next evaluation (here or elsewhere) need not wait
                # for the lease; if even that write fails, the lease runs out by itself.
                with contextlib.suppress(Exception):
                    await self._journal.put_pending(current, replace(pending, lease_until=None))
                raise
            if index + 1 < len(pending.effects):
                pending = replace(pending, done=index + 1, lease_until=self._clock() + self._lease)
                await self._journal.put_pending(current, pending)
        await self._journal.put(pending.record)

    async def _perform(self, effect: Mapping[str, Any], counts: OutcomeCounts) -> None:
        if effect["kind"] == "tags":
            tags = SetTags(str(effect["resource_id"]), dict(effect["tags"]))
            await self._writer.set_tags(tags.resource_id, tags.tags)
            counts.tag_writes += 1
            return
        if self._publisher is None:
            _LOG.info("no Event Grid topic configured; %s not published", effect["type"])
            return
        await self._publisher.publish(
            event_type=str(effect["type"]),
            source=self._labels.event_source,
            subject=str(effect["subject"]),
            data=dict(effect["data"]),
            event_id=str(effect["id"]),
        )
        counts.events += 1
