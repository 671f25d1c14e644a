"""A rejected event, kept for the operator without keeping anything it should not.

Key Vault events carry no key material, but a rejected payload is by definition untrusted:
it may be garbage, oversized, or a subscription-topic event whose ``claims`` and
``httpRequest`` hold names, UPNs and client IP addresses. So the record keeps an allow-list
of known fields (values capped), names every other field without its value, and keeps only
the length and SHA-256 of text that is not JSON at all.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from shared.errors import EventRejectedError
from shared.events._envelope import MAX_PAYLOAD_BYTES, peek_event_id

#: Longest redacted payload kept in a record (Table string properties hold 32K characters).
MAX_RECORD_PAYLOAD_CHARS = 16_384
_MAX_VALUE_CHARS = 512
_MAX_NAME_CHARS = 64
_MAX_KEYS = 64

_ENVELOPE_FIELDS = frozenset(
    {
        "id",
        "topic",
        "source",
        "subject",
        "eventtype",
        "type",
        "eventtime",
        "time",
        "dataversion",
        "metadataversion",
        "specversion",
        "datacontenttype",
    }
)
_DATA_FIELDS = frozenset(
    {
        # Key Vault event data
        "id",
        "vaultname",
        "objecttype",
        "objectname",
        "version",
        "nbf",
        "exp",
        # Resource event data (claims and httpRequest are deliberately absent)
        "resourceuri",
        "operationname",
        "status",
        "subscriptionid",
        "tenantid",
        "resourceprovider",
        "correlationid",
    }
)
_AUTHORIZATION_FIELDS = frozenset({"scope", "action"})
#: keyward's own queue messages (``ShardMessage``, ``DependentsFollowUp``): ids only.
_QUEUE_MESSAGE_FIELDS = frozenset(
    {"v", "kind", "job", "key", "target", "shard", "slice", "event", "event_id"}
)


@dataclass(frozen=True)
class RejectedEventRecord:
    """What the rejected-events table stores for one refused delivery.

    Attributes:
        reason: a ``RejectionReason`` value.
        detail: the human-readable explanation.
        event_id: the event's id when one could be read.
        received_at: when keyward refused it (injected clock).
        payload: redacted JSON, at most ``MAX_RECORD_PAYLOAD_CHARS`` characters.
        payload_truncated: whether ``payload`` was cut (it is then not valid JSON).
        payload_sha256: digest of the original payload, to spot repeats without keeping it.
    """

    reason: str
    detail: str
    event_id: str | None
    received_at: datetime
    payload: str
    payload_truncated: bool
    payload_sha256: str


def rejected_event_record(
    payload: object, error: EventRejectedError, received_at: datetime
) -> RejectedEventRecord:
    """Build the record for ``payload``, refused with ``error``."""
    text = json.dumps(redact_payload(payload), ensure_ascii=True, separators=(",", ":"))
    truncated = len(text) > MAX_RECORD_PAYLOAD_CHARS
    return RejectedEventRecord(
        reason=error.reason,
        detail=error.detail[:1000],
        event_id=error.event_id or peek_event_id(_as_object(payload)),
        received_at=received_at,
        payload=text[:MAX_RECORD_PAYLOAD_CHARS],
        payload_truncated=truncated,
        payload_sha256=_digest(payload),
    )


def rejected_message_record(
    text: str, reason: str, detail: str, received_at: datetime, *, message_id: str
) -> RejectedEventRecord:
    """The record of a refused queue message (shown with the rejected events in status).

    A message on keyward's queue is as untrusted as an event (anyone who may write to the
    queue can put one there), so the same rules hold: known id fields kept, capped, the rest
    named without a value. ``event_id`` holds the queue's message id.
    """
    value = _as_object(text)
    if isinstance(value, _Unparsed):
        kept: object = {"unparsed": True, "length": value.length}
    elif isinstance(value, Mapping):
        kept = _redact_object(value, _QUEUE_MESSAGE_FIELDS)
    else:
        kept = {"not_an_object": type(value).__name__}
    payload = json.dumps(kept, ensure_ascii=True, separators=(",", ":"))
    return RejectedEventRecord(
        reason=reason,
        detail=detail[:1000],
        event_id=message_id[:256] or None,
        received_at=received_at,
        payload=payload[:MAX_RECORD_PAYLOAD_CHARS],
        payload_truncated=len(payload) > MAX_RECORD_PAYLOAD_CHARS,
        payload_sha256=_digest(text),
    )


def redact_payload(payload: object) -> object:
    """A JSON-serialisable copy of ``payload`` with unknown and personal fields removed."""
    value = _as_object(payload)
    if isinstance(value, _Unparsed):
        return {"unparsed": True, "length": value.length}
    if not isinstance(value, Mapping):
        return {"not_an_object": type(value).__name__}
    return _redact_object(value, _ENVELOPE_FIELDS, top=True)


@dataclass(frozen=True)
class _Unparsed:
    length: int


def _as_object(payload: object) -> object:
    if isinstance(payload, bytes | bytearray | str):
        if len(payload) > MAX_PAYLOAD_BYTES:
            return _Unparsed(len(payload))
        try:
            return json.loads(payload)
        except (ValueError, RecursionError):
            return _Unparsed(len(payload))
    return payload


def _redact_object(
    value: Mapping[object, object], allowed: frozenset[str], *, top: bool = False
) -> dict[str, object]:
    out: dict[str, object] = {}
    for index, (key, item) in enumerate(value.items()):
        if index >= _MAX_KEYS:
            out["..."] = f"{len(value) - _MAX_KEYS} more fields dropped"
            break
        name = str(key)[:_MAX_NAME_CHARS]
        folded = name.strip().lower()
        if top and folded == "data" and isinstance(item, Mapping):
            out[name] = _redact_object(item, _DATA_FIELDS)
        elif not top and folded == "authorization" and isinstance(item, Mapping):
            out[name] = _redact_object(item, _AUTHORIZATION_FIELDS)
        elif folded in allowed:
            out[name] = _scalar(item)
        else:
            out[name] = f"<redacted {type(item).__name__}>"
    return out


def _scalar(item: object) -> object:
    if item is None or isinstance(item, bool | int):
        return item if not isinstance(item, int) or abs(item) < 10**18 else "<large integer>"
    if isinstance(item, float):
        return item if math.isfinite(item) else str(item)
    if isinstance(item, str):
        return item if len(item) <= _MAX_VALUE_CHARS else item[:_MAX_VALUE_CHARS] + "..."
    return f"<redacted {type(item).__name__}>"


def _digest(payload: object) -> str:
    if isinstance(payload, str):
        raw = payload.encode("utf-8", "surrogatepass")
    elif isinstance(payload, bytes | bytearray):
        raw = bytes(payload)
    else:
        try:
            raw = json.dumps(payload, sort_keys=True, default=repr).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError, RecursionError):
            raw = repr(type(payload)).encode()
    return hashlib.sha256(raw).hexdigest()
