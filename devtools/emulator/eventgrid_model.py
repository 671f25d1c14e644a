"""Event Grid's wire shapes: the event envelope in both schemas, and event subscriptions.

An event is kept schema-neutral (:class:`Event`) and rendered per subscription, because Event
Grid itself converts: one Key Vault event reaches an ``EventGridSchema`` subscriber as
``{id, topic, subject, eventType, eventTime, data, dataVersion, metadataVersion}`` and a
``CloudEventSchemaV1_0`` subscriber as ``{id, source, specversion, type, subject, time, data}``
(``topic`` becomes ``source``). The key sets are exactly those of the published samples in
``../shared/specs/eventgrid/``; tests compare them field for field.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

SCHEMA_EVENTGRID = "EventGridSchema"
SCHEMA_CLOUDEVENTS = "CloudEventSchemaV1_0"
SCHEMAS = (SCHEMA_EVENTGRID, SCHEMA_CLOUDEVENTS)

VALIDATION_EVENT_TYPE = "Microsoft.EventGrid.SubscriptionValidationEvent"

#: Event Grid answers within these for a delivery to count as a success.
SUCCESS_STATUSES = frozenset({200, 201, 202, 203, 204})
#: Webhook answers Event Grid never retries (dead-lettered, or dropped without dead-lettering).
#: Azure's "delivery and retry" page lists 400, 413, 401 and, in its newer revision, 403.
NO_RETRY_STATUSES = frozenset({400, 401, 403, 413})

#: Event Grid's published retry schedule (seconds), then every 12 hours until the TTL.
RETRY_SCHEDULE: tuple[float, ...] = (10, 30, 60, 300, 600, 1800, 3600, 10800, 21600)
RETRY_EVERY_AFTER_SCHEDULE = 43200.0


def format_time(timestamp: float) -> str:
    """Event Grid's timestamp form: UTC with seven fractional digits (``...33.1036736Z``)."""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass
class Event:
    """One event as published, before it is rendered in a subscriber's schema."""

    topic: str
    event_type: str
    subject: str
    data: dict[str, Any]
    event_time: float
    data_version: str = "1"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: An event published to a custom topic, as the publisher sent it, and its schema: Event
    #: Grid delivers it as sent (adding ``topic``), converting only Event Grid -> CloudEvents.
    raw: dict[str, Any] | None = None
    raw_schema: str | None = None

    def to_eventgrid(self) -> dict[str, Any]:
        """The Event Grid schema envelope, keys as in the published samples."""
        if self.raw is not None and self.raw_schema == SCHEMA_EVENTGRID:
            return {**self.raw, "topic": self.topic, "metadataVersion": "1"}
        return {
            "id": self.id,
            "topic": self.topic,
            "subject": self.subject,
            "eventType": self.event_type,
            "eventTime": format_time(self.event_time),
            "data": self.data,
            "dataVersion": self.data_version,
            "metadataVersion": "1",
        }

    def to_cloudevent(self) -> dict[str, Any]:
        """The CloudEvents 1.0 structured-mode envelope; Event Grid maps topic to source."""
        if self.raw is not None and self.raw_schema == SCHEMA_CLOUDEVENTS:
            return dict(self.raw)
        time = self.raw.get("eventTime") if self.raw is not None else None
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.topic,
            "subject": self.subject,
            "type": self.event_type,
            "time": time or format_time(self.event_time),
            "data": self.data,
        }

    def render(self, schema: str) -> dict[str, Any]:
        return self.to_cloudevent() if schema == SCHEMA_CLOUDEVENTS else self.to_eventgrid()


@dataclass
class EventSubscription:
    """An event subscription on one topic (an ARM id), delivering to a webhook.

    Field names follow the ARM resource ``Microsoft.EventGrid/eventSubscriptions`` where one
    exists (``includedEventTypes``, ``subjectBeginsWith``, ``maxDeliveryAttempts``,
    ``eventTimeToLiveInMinutes``, ``maxEventsPerBatch``, ``eventDeliverySchema``).
    """

    name: str
    topic: str
    endpoint: str
    schema: str = SCHEMA_EVENTGRID
    included_event_types: list[str] | None = None
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    max_delivery_attempts: int = 30
    event_ttl_minutes: int = 1440
    max_events_per_batch: int = 1
    #: Azure keeps undeliverable events only when a dead-letter destination is configured.
    dead_letter: bool = False
    #: The dead-letter destination's blob container and the Storage connection string that
    #: reaches it (Azurite): ARM names a storage account by resource id, which the emulator
    #: cannot resolve, so the control API takes the connection. ``None``: memory only.
    dead_letter_container: str | None = None
    dead_letter_connection: str | None = None
    #: ``Succeeded`` once validated, ``AwaitingManualAction`` while waiting for a GET on the
    #: validation URL, ``Failed`` when the handshake failed.
    provisioning_state: str = "Succeeded"
    validation_code: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: float = 0.0

    def matches(self, event: Event) -> bool:
        """Event Grid's filter: topic, event types, subject prefix/suffix (case-insensitive)."""
        if self.topic.lower() != event.topic.lower():
            return False
        if self.included_event_types is not None and event.event_type.lower() not in {
            t.lower() for t in self.included_event_types
        }:
            return False
        subject = event.subject.lower()
        if self.subject_begins_with and not subject.startswith(self.subject_begins_with.lower()):
            return False
        return not (self.subject_ends_with and not subject.endswith(self.subject_ends_with.lower()))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "topic": self.topic,
            "endpoint": self.endpoint,
            "eventDeliverySchema": self.schema,
            "includedEventTypes": self.included_event_types,
            "subjectBeginsWith": self.subject_begins_with,
            "subjectEndsWith": self.subject_ends_with,
            "maxDeliveryAttempts": self.max_delivery_attempts,
            "eventTimeToLiveInMinutes": self.event_ttl_minutes,
            "maxEventsPerBatch": self.max_events_per_batch,
            "deadLetter": self.dead_letter,
            "deadLetterDestination": (
                {"endpointType": "StorageBlob", "blobContainerName": self.dead_letter_container}
                if self.dead_letter_container
                else None
            ),
            "provisioningState": self.provisioning_state,
        }


@dataclass
class DeliveryAttempt:
    """One POST (or handshake) Event Grid made to a webhook, as the control API reports it."""

    subscription: str
    event_ids: list[str]
    delivery_count: int
    time: float
    status: int | None
    outcome: str
    duration_ms: float
    kind: str = "Notification"
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription,
            "eventIds": self.event_ids,
            "deliveryCount": self.delivery_count,
            "time": format_time(self.time),
            "status": self.status,
            "outcome": self.outcome,
            "durationMs": round(self.duration_ms, 3),
            "kind": self.kind,
            "duplicate": self.duplicate,
        }


def outcome_for(status: int | None, error: str | None = None) -> str:
    """The ``lastDeliveryOutcome`` words Event Grid uses in dead-letter records."""
    if status is None:
        return error or "GenericError"
    if status in SUCCESS_STATUSES:
        return "Succeeded"
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        408: "TimedOut",
        413: "PayloadTooLarge",
        429: "Busy",
        503: "Busy",
    }.get(status, "GenericError")
