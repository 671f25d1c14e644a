"""The two envelopes Event Grid delivers in, reduced to one shape.

Event Grid schema: ``id, topic, subject, eventType, eventTime, data, dataVersion``.
CloudEvents 1.0: ``specversion, id, source, subject, type, time, data`` (one published sample
spells ``specVersion``; names are matched case-insensitively). The schema is decided by the
presence of ``specversion``, the one field CloudEvents requires and Event Grid never sends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from shared.events._fields import Fields, reject
from shared.events._types import EventSchema, RejectionReason

#: Event Grid refuses events over 1 MB; anything larger did not come from it.
MAX_PAYLOAD_BYTES = 1024 * 1024
#: Event ids are stored as dedup keys; real ones are GUIDs (36 characters).
MAX_EVENT_ID_LENGTH = 256


@dataclass(frozen=True)
class Envelope:
    event_id: str
    event_type: str
    source: str | None
    subject: str | None
    time: datetime | None
    data: Fields
    schema: EventSchema


def load_payload(payload: object) -> Mapping[object, object]:
    """Accept a dict, or JSON text/bytes holding one object."""
    if isinstance(payload, bytes | bytearray | str):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise reject(RejectionReason.TOO_LARGE, f"payload is over {MAX_PAYLOAD_BYTES} bytes")
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError, bad UTF-8 and over-long integer literals.
            raise reject(
                RejectionReason.MALFORMED_JSON, f"not JSON: {type(exc).__name__}"
            ) from None
    if not isinstance(payload, Mapping):
        raise reject(
            RejectionReason.NOT_AN_OBJECT,
            f"an event is a JSON object, not {type(payload).__name__} "
            "(pass one event of a delivery batch at a time)",
        )
    return payload


def read_envelope(payload: Mapping[object, object]) -> Envelope:
    """Normalise either schema.

    Raises:
        EventRejectedError: a required field is missing or of the wrong type.
    """
    top = Fields(payload, "event")
    event_id = _event_id(top)
    top.event_id = event_id
    if top.has("specversion"):
        version = top.raw("specversion")
        if not isinstance(version, str) or version.strip() != "1.0":
            raise reject(
                RejectionReason.UNSUPPORTED_SCHEMA,
                f"CloudEvents specversion {str(version)[:20]!r} is not 1.0",
                event_id,
            )
        schema = EventSchema.CLOUD_EVENTS
        event_type = top.required_text("type")
        source = top.text("source")
        time = top.iso_time("time", required=False)
    else:
        schema = EventSchema.EVENT_GRID
        event_type = top.required_text("eventType")
        source = top.text("topic", required=False)
        time = top.iso_time("eventTime", required=True)
    if top.has("data_base64"):
        raise reject(
            RejectionReason.BAD_FIELD_TYPE, "binary CloudEvents data is not expected", event_id
        )
    return Envelope(
        event_id=event_id,
        event_type=event_type,
        source=source,
        subject=top.text("subject", required=False),
        time=time,
        data=top.mapping("data"),
        schema=schema,
    )


def _event_id(top: Fields) -> str:
    event_id = top.required_text("id")
    if len(event_id) > MAX_EVENT_ID_LENGTH or not event_id.isprintable():
        raise reject(
            RejectionReason.BAD_FIELD_TYPE,
            f"event id must be at most {MAX_EVENT_ID_LENGTH} printable characters",
        )
    return event_id


def peek_event_id(payload: object) -> str | None:
    """The event id, if one can be read without trusting anything else (for records)."""
    if not isinstance(payload, Mapping):
        return None
    for key, value in payload.items():
        if isinstance(key, str) and key.strip().lower() == "id" and isinstance(value, str):
            stripped = value.strip()
            if stripped and len(stripped) <= MAX_EVENT_ID_LENGTH and stripped.isprintable():
                return stripped
    return None
