"""Metric names, units, descriptions and attribute keys: the one list (docs/telemetry.md).

Attribute values are ids, versions, counts and reasons only. A key is named by its vault and
key name (never a full key id with a DEK reference, never bytes); a reason is one of keyward's
fixed reason codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

#: The instrumentation scope of every keyward tracer and meter.
TRACER_NAME = "keyward"
METER_NAME = "keyward"

ATTR_FUNCTION = "keyward.function"
ATTR_TRIGGER = "faas.trigger"
ATTR_INVOCATION_ID = "faas.invocation_id"
ATTR_EVENT_ID = "keyward.event_id"
ATTR_JOB_ID = "keyward.job_id"
ATTR_OPERATION_ID = "keyward.operation_id"
ATTR_MESSAGE_ID = "keyward.message_id"
ATTR_MESSAGE_KIND = "keyward.message_kind"
ATTR_SLICE = "keyward.slice"
ATTR_VAULT = "keyward.vault"
ATTR_KEY = "keyward.key"
ATTR_SHARD = "keyward.shard"
ATTR_OUTCOME = "keyward.outcome"
ATTR_REASON = "keyward.reason"
ATTR_KIND = "keyward.kind"
ATTR_VERDICT = "keyward.verdict"
#: Who made an admin call (ids and role names only: never a display name or a token).
ATTR_CALLER_OBJECT_ID = "keyward.caller.object_id"
ATTR_CALLER_TENANT_ID = "keyward.caller.tenant_id"
ATTR_CALLER_ROLES = "keyward.caller.roles"
ATTR_CALLER_VIA = "keyward.caller.via"


@dataclass(frozen=True)
class MetricSpec:
    """One instrument: its name, kind (``counter`` or ``gauge``), unit and attribute keys."""

    name: str
    kind: str
    unit: str
    description: str
    attributes: tuple[str, ...]


DEKS_REWRAPPED = MetricSpec(
    "keyward.rewrap.deks_rewrapped",
    "counter",
    "{dek}",
    "DEKs rewrapped to the target version (counted when their page is checkpointed).",
    (ATTR_VAULT, ATTR_KEY, ATTR_SHARD),
)
ITEMS_FAILED = MetricSpec(
    "keyward.rewrap.items_failed",
    "counter",
    "{dek}",
    "DEKs a rewrap could not rewrap, by outcome (unreadable, failed) and reason code.",
    (ATTR_VAULT, ATTR_KEY, ATTR_SHARD, ATTR_OUTCOME, ATTR_REASON),
)
VAULT_OPERATIONS = MetricSpec(
    "keyward.vault.operations",
    "counter",
    "{operation}",
    "Key Vault requests a rewrap sent (retries included).",
    (ATTR_VAULT,),
)
VAULT_THROTTLED = MetricSpec(
    "keyward.vault.throttled",
    "counter",
    "{response}",
    "Key Vault answers 429 (throttled) a rewrap received.",
    (ATTR_VAULT,),
)
JOB_PROGRESS = MetricSpec(
    "keyward.job.deks_settled",
    "gauge",
    "{dek}",
    "A rewrap job's DEKs with a final outcome so far, after each checkpoint (one series per "
    "job: its newest value is its progress).",
    (ATTR_JOB_ID, ATTR_VAULT, ATTR_KEY, ATTR_SHARD),
)
VERDICT_CHANGES = MetricSpec(
    "keyward.dependents.verdict_changes",
    "counter",
    "{change}",
    "Key-dependent resources (Face accounts) whose verdict changed, by kind and new verdict.",
    (ATTR_KIND, ATTR_VERDICT),
)
EVENTS_REJECTED = MetricSpec(
    "keyward.events.rejected",
    "counter",
    "{event}",
    "Event Grid deliveries keyward rejected, by reason code.",
    (ATTR_REASON,),
)

#: Every metric keyward emits (docs/telemetry.md lists the same).
METRICS: tuple[MetricSpec, ...] = (
    DEKS_REWRAPPED,
    ITEMS_FAILED,
    VAULT_OPERATIONS,
    VAULT_THROTTLED,
    JOB_PROGRESS,
    VERDICT_CHANGES,
    EVENTS_REJECTED,
)


def vault_of(key_ref: str) -> str:
    """The vault a key id names, as an attribute: its host (and port), lower case, as the
    shared budget board names it (``contoso-kv.vault.azure.net``).

    Only a label for telemetry; key ids are validated where they are used. Anything that is
    not an ``https`` URL is reported as ``unknown`` rather than echoed.
    """
    try:
        parts = urlsplit(key_ref)
    except ValueError:
        return "unknown"
    if parts.scheme != "https" or not parts.hostname:
        return "unknown"
    return parts.netloc.lower()[:255]


def key_name_of(key_ref: str) -> str:
    """The key's name from a key id (``/keys/{name}[/{version}]``), or ``unknown``."""
    try:
        path = urlsplit(key_ref).path
    except ValueError:
        return "unknown"
    segments = [s for s in path.split("/") if s]
    if len(segments) >= 2 and segments[0] == "keys":
        return segments[1][:127]
    return "unknown"
