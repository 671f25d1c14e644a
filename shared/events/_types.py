"""Event type names and the small enums every other events module shares.

The type strings equal ``azure.eventgrid.SystemEventNames`` values; they are spelled out here
so the pure domain never imports ``azure`` (house rule 1). ``tests/events/test_types.py``
pins each one against the SDK so a rename upstream fails CI, not production.
"""

from __future__ import annotations

import enum

KEY_NEW_VERSION_CREATED = "Microsoft.KeyVault.KeyNewVersionCreated"
KEY_NEAR_EXPIRY = "Microsoft.KeyVault.KeyNearExpiry"
KEY_EXPIRED = "Microsoft.KeyVault.KeyExpired"
SECRET_NEW_VERSION_CREATED = "Microsoft.KeyVault.SecretNewVersionCreated"  # noqa: S105 - an event type name
SECRET_NEAR_EXPIRY = "Microsoft.KeyVault.SecretNearExpiry"  # noqa: S105 - an event type name
SECRET_EXPIRED = "Microsoft.KeyVault.SecretExpired"  # noqa: S105 - an event type name
CERTIFICATE_NEW_VERSION_CREATED = "Microsoft.KeyVault.CertificateNewVersionCreated"
CERTIFICATE_NEAR_EXPIRY = "Microsoft.KeyVault.CertificateNearExpiry"
CERTIFICATE_EXPIRED = "Microsoft.KeyVault.CertificateExpired"
VAULT_ACCESS_POLICY_CHANGED = "Microsoft.KeyVault.VaultAccessPolicyChanged"
RESOURCE_WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
RESOURCE_DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess"

#: Key events keyward acts on, and what each one means for it.
KEY_EVENT_TYPES = (KEY_NEW_VERSION_CREATED, KEY_NEAR_EXPIRY, KEY_EXPIRED)
#: Secret and certificate events: well formed, but nothing keyward guards; ignored.
IGNORED_EVENT_TYPES = (
    SECRET_NEW_VERSION_CREATED,
    SECRET_NEAR_EXPIRY,
    SECRET_EXPIRED,
    CERTIFICATE_NEW_VERSION_CREATED,
    CERTIFICATE_NEAR_EXPIRY,
    CERTIFICATE_EXPIRED,
)
#: Subscription-topic events that may change who can reach a key.
RESOURCE_EVENT_TYPES = (RESOURCE_WRITE_SUCCESS, RESOURCE_DELETE_SUCCESS)
#: Every type ``parse_event`` understands; anything else is ``UNKNOWN_EVENT_TYPE``.
KNOWN_EVENT_TYPES = (
    *KEY_EVENT_TYPES,
    *IGNORED_EVENT_TYPES,
    VAULT_ACCESS_POLICY_CHANGED,
    *RESOURCE_EVENT_TYPES,
)


class EventSchema(enum.StrEnum):
    """The envelope an event arrived in."""

    EVENT_GRID = "EventGridSchema"
    CLOUD_EVENTS = "CloudEventSchemaV1_0"


class KeyEventKind(enum.StrEnum):
    """What happened to a key."""

    NEW_VERSION = "new_version"
    NEAR_EXPIRY = "near_expiry"
    EXPIRED = "expired"


class AccessChangeKind(enum.StrEnum):
    """What may have changed who can use a key."""

    ACCESS_POLICY_CHANGED = "access_policy_changed"
    ROLE_ASSIGNMENT_WRITTEN = "role_assignment_written"
    ROLE_ASSIGNMENT_DELETED = "role_assignment_deleted"
    VAULT_WRITTEN = "vault_written"
    VAULT_DELETED = "vault_deleted"
    KEY_RESOURCE_WRITTEN = "key_resource_written"
    KEY_RESOURCE_DELETED = "key_resource_deleted"


KEY_KIND_BY_TYPE = {
    KEY_NEW_VERSION_CREATED: KeyEventKind.NEW_VERSION,
    KEY_NEAR_EXPIRY: KeyEventKind.NEAR_EXPIRY,
    KEY_EXPIRED: KeyEventKind.EXPIRED,
}


class RejectionReason(enum.StrEnum):
    """Why an event was refused. Stable strings: they are stored with rejected events."""

    MALFORMED_JSON = "MALFORMED_JSON"
    TOO_LARGE = "TOO_LARGE"
    NOT_AN_OBJECT = "NOT_AN_OBJECT"
    MISSING_FIELD = "MISSING_FIELD"
    BAD_FIELD_TYPE = "BAD_FIELD_TYPE"
    AMBIGUOUS_FIELD = "AMBIGUOUS_FIELD"
    UNSUPPORTED_SCHEMA = "UNSUPPORTED_SCHEMA"
    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    BAD_TOPIC = "BAD_TOPIC"
    FOREIGN_VAULT = "FOREIGN_VAULT"
    VAULT_MISMATCH = "VAULT_MISMATCH"
    BAD_KEY_ID = "BAD_KEY_ID"
    OBJECT_TYPE_MISMATCH = "OBJECT_TYPE_MISMATCH"
    NAME_MISMATCH = "NAME_MISMATCH"
    VERSION_MISMATCH = "VERSION_MISMATCH"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"
    BAD_RESOURCE_URI = "BAD_RESOURCE_URI"
    SCOPE_MISMATCH = "SCOPE_MISMATCH"
    # Refused after asking: the event was well formed, but acting on it is refused for good
    # (Event Grid would redeliver it for 24 hours, asking the same question each time).
    KEY_NOT_FOUND = "KEY_NOT_FOUND"
    VERSION_NOT_FOUND = "VERSION_NOT_FOUND"
    ACCESS_DENIED = "ACCESS_DENIED"
    SERVICE_REFUSED = "SERVICE_REFUSED"
    # keyward's own queue: a message that cannot be acted on (malformed, or naming a job
    # its content does not derive to).
    BAD_QUEUE_MESSAGE = "BAD_QUEUE_MESSAGE"
    JOB_ID_MISMATCH = "JOB_ID_MISMATCH"
    #: A well-formed message whose transient faults outlasted the queue's deliveries: it
    #: goes to the poison queue (recorded on its last delivery).
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
