"""Event Grid dead-letter blobs: their names, their content, and the vault of each event.

Event Grid writes one blob per undeliverable delivery batch into the subscription's
dead-letter container, named ``{SUBSCRIPTION NAME IN UPPER CASE}/{yyyy}/{M}/{d}/{H}/{guid}.json``
(date and hour in UTC, not zero padded); the blob holds a JSON array of the original events,
each with ``deadLetterReason``, ``deliveryAttempts``, ``lastDeliveryOutcome``,
``lastHttpStatusCode``, ``publishTime`` and ``lastDeliveryAttemptTime`` added
(https://learn.microsoft.com/azure/event-grid/manage-event-delivery, "Set dead-letter
location"; docs/emulator.md). keyward moves a blob it has replayed under :data:`REPLAYED_PREFIX`
and one holding an event refused for good under :data:`REJECTED_PREFIX`. Pure: no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: Where a replayed blob is moved (kept for the record, never listed as pending again).
REPLAYED_PREFIX = "replayed/"
#: Where a blob holding an event refused for good is moved (not retried again).
REJECTED_PREFIX = "rejected/"
#: The properties Event Grid adds to a dead-lettered event (removed before a replay).
DEAD_LETTER_FIELDS = (
    "deadLetterReason",
    "deliveryAttempts",
    "lastDeliveryOutcome",
    "lastHttpStatusCode",
    "publishTime",
    "lastDeliveryAttemptTime",
)
#: A vault that no event field names.
UNKNOWN_VAULT = "(unknown)"


def is_pending(name: str) -> bool:
    """A blob Event Grid wrote and keyward has not settled (replayed or rejected)."""
    return not name.startswith((REPLAYED_PREFIX, REJECTED_PREFIX))


@dataclass(frozen=True)
class DeadLetteredEvent:
    """One event of a dead-letter blob: the original delivery and why it was given up."""

    event: dict[str, Any]
    vault: str
    reason: str
    attempts: int | None
    published: str | None

    @property
    def event_id(self) -> str | None:
        value = self.event.get("id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class DeadLetterBlob:
    """A dead-letter blob: its events, or why it could not be read (``error``)."""

    name: str
    events: tuple[DeadLetteredEvent, ...] = ()
    error: str | None = None
    last_modified: str | None = None
    vaults: tuple[str, ...] = field(default=())


def original_event(record: dict[str, Any]) -> dict[str, Any]:
    """The event as it was delivered: the dead-letter properties removed."""
    return {k: v for k, v in record.items() if k not in DEAD_LETTER_FIELDS}


def vault_of(event: dict[str, Any]) -> str:
    """The event's vault (lower case): ``data.VaultName`` (any case), else the topic's or
    source's ``.../vaults/{name}``, else :data:`UNKNOWN_VAULT`."""
    data = event.get("data")
    if isinstance(data, dict):
        for key, value in data.items():
            if key.strip().lower() == "vaultname" and isinstance(value, str) and value.strip():
                return value.strip().lower()
    for key in ("topic", "source", "subject"):
        value = event.get(key)
        if isinstance(value, str):
            parts = value.strip("/").split("/")
            lowered = [part.lower() for part in parts]
            if "vaults" in lowered:
                index = lowered.index("vaults")
                if index + 1 < len(parts):
                    return lowered[index + 1]
    return UNKNOWN_VAULT


def parse_dead_letter_blob(
    name: str, content: bytes, *, last_modified: str | None = None
) -> DeadLetterBlob:
    """Read one blob; a malformed one is returned with ``error`` set, never raised."""
    try:
        records = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return DeadLetterBlob(name, error="not JSON", last_modified=last_modified)
    if isinstance(records, dict):
        records = [records]
    if not isinstance(records, list) or not records:
        error = "not a JSON array of events"
        return DeadLetterBlob(name, error=error, last_modified=last_modified)
    events: list[DeadLetteredEvent] = []
    for record in records:
        if not isinstance(record, dict):
            error = "an entry is not an object"
            return DeadLetterBlob(name, error=error, last_modified=last_modified)
        attempts = record.get("deliveryAttempts")
        published = record.get("publishTime")
        events.append(
            DeadLetteredEvent(
                event=original_event(record),
                vault=vault_of(record),
                reason=str(record.get("deadLetterReason", ""))[:100],
                attempts=attempts if isinstance(attempts, int) else None,
                published=published if isinstance(published, str) else None,
            )
        )
    vaults = tuple(dict.fromkeys(event.vault for event in events))
    return DeadLetterBlob(name, tuple(events), None, last_modified, vaults)
