"""Key Vault and subscription events: parse, validate, decide. Pure; no ``azure`` imports.

``parse_event`` is the gate (allow-listed vaults only, consistent fields, a specific
``RejectionReason`` otherwise); ``route`` turns a parsed event into planned actions;
``rejected_event_record`` keeps a redacted copy of what was refused. See ``docs/events.md``.
"""

from shared.events._arm_ids import parse_resource_id
from shared.events._binding import event_dict_from_binding
from shared.events._dead_letter import (
    REJECTED_PREFIX,
    REPLAYED_PREFIX,
    DeadLetterBlob,
    DeadLetteredEvent,
    is_pending,
    original_event,
    parse_dead_letter_blob,
    vault_of,
)
from shared.events._follow_up import FOLLOW_UP_KIND, DependentsFollowUp
from shared.events._model import (
    AccessChangeEvent,
    AccessScope,
    IgnoredEvent,
    KeyVaultEvent,
    ParsedEvent,
    dedup_key,
)
from shared.events._parse import parse_event
from shared.events._redact import (
    MAX_RECORD_PAYLOAD_CHARS,
    RejectedEventRecord,
    redact_payload,
    rejected_event_record,
    rejected_message_record,
)
from shared.events._routing import (
    Action,
    FollowUpRotation,
    Ignore,
    PlanRewrap,
    ReevaluateAccess,
    RotateKey,
    WarnNearExpiry,
    route,
)
from shared.events._types import (
    CERTIFICATE_EXPIRED,
    CERTIFICATE_NEAR_EXPIRY,
    CERTIFICATE_NEW_VERSION_CREATED,
    KEY_EXPIRED,
    KEY_NEAR_EXPIRY,
    KEY_NEW_VERSION_CREATED,
    KNOWN_EVENT_TYPES,
    RESOURCE_DELETE_SUCCESS,
    RESOURCE_WRITE_SUCCESS,
    SECRET_EXPIRED,
    SECRET_NEAR_EXPIRY,
    SECRET_NEW_VERSION_CREATED,
    VAULT_ACCESS_POLICY_CHANGED,
    AccessChangeKind,
    EventSchema,
    KeyEventKind,
    RejectionReason,
)

__all__ = [
    "parse_resource_id",
    "REJECTED_PREFIX",
    "REPLAYED_PREFIX",
    "DeadLetterBlob",
    "DeadLetteredEvent",
    "is_pending",
    "original_event",
    "parse_dead_letter_blob",
    "vault_of",
    "FOLLOW_UP_KIND",
    "CERTIFICATE_EXPIRED",
    "CERTIFICATE_NEAR_EXPIRY",
    "CERTIFICATE_NEW_VERSION_CREATED",
    "KEY_EXPIRED",
    "KEY_NEAR_EXPIRY",
    "KEY_NEW_VERSION_CREATED",
    "KNOWN_EVENT_TYPES",
    "MAX_RECORD_PAYLOAD_CHARS",
    "RESOURCE_DELETE_SUCCESS",
    "RESOURCE_WRITE_SUCCESS",
    "SECRET_EXPIRED",
    "SECRET_NEAR_EXPIRY",
    "SECRET_NEW_VERSION_CREATED",
    "VAULT_ACCESS_POLICY_CHANGED",
    "AccessChangeEvent",
    "AccessChangeKind",
    "AccessScope",
    "Action",
    "DependentsFollowUp",
    "EventSchema",
    "FollowUpRotation",
    "Ignore",
    "IgnoredEvent",
    "KeyEventKind",
    "KeyVaultEvent",
    "ParsedEvent",
    "PlanRewrap",
    "ReevaluateAccess",
    "RejectedEventRecord",
    "RejectionReason",
    "RotateKey",
    "WarnNearExpiry",
    "dedup_key",
    "event_dict_from_binding",
    "parse_event",
    "redact_payload",
    "rejected_event_record",
    "rejected_message_record",
    "route",
]
