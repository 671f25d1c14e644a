"""Face accounts with customer-managed keys: verdicts, flags, rotation follow-up. Pure.

``evaluate`` judges one account's key access from facts adapters gathered;
``next_flag_state`` turns a verdict into a stored record and the effects to perform (only on
a change); ``rotation_follow_up`` decides between re-pointing and flagging a stale pin. The
protocols in ``_inventory`` are what adapters implement. See ``docs/events.md``.
"""

from shared.face._facts import (
    IdentityAccess,
    KeyAccessFacts,
    KeyFacts,
    KeyPresence,
    KeyVersionFacts,
    LookupStatus,
    VaultFacts,
)
from shared.face._flags import (
    STATUS_TAG,
    Effect,
    FlagEventType,
    FlagRecord,
    FlagTransition,
    PublishEvent,
    SetTags,
    next_flag_state,
)
from shared.face._inventory import (
    AccountIndex,
    FaceAccountWriter,
    FaceInventory,
    FlagPublisher,
    FlagStore,
    KeyAccessReader,
)
from shared.face._models import (
    FACE_KIND,
    AccountIdentity,
    FaceAccount,
    account_from_arm,
    normalize_vault_uri,
)
from shared.face._roles import (
    KEY_USE_ROLES,
    KEY_VAULT_ADMINISTRATOR,
    KEY_VAULT_CRYPTO_OFFICER,
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    KEY_VAULT_CRYPTO_USER,
    KEY_VAULT_READER,
    REQUIRED_KEY_PERMISSIONS,
    grants_key_use,
    missing_permissions,
)
from shared.face._rotation import RotationAction, RotationDecision, rotation_follow_up
from shared.face._verdict import (
    DEFAULT_WARNING_WINDOW,
    LOST_REASONS,
    UNKNOWN_REASONS,
    Finding,
    Reason,
    Status,
    Verdict,
    evaluate,
)

__all__ = [
    "DEFAULT_WARNING_WINDOW",
    "FACE_KIND",
    "KEY_USE_ROLES",
    "KEY_VAULT_ADMINISTRATOR",
    "KEY_VAULT_CRYPTO_OFFICER",
    "KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER",
    "KEY_VAULT_CRYPTO_USER",
    "KEY_VAULT_READER",
    "LOST_REASONS",
    "REQUIRED_KEY_PERMISSIONS",
    "STATUS_TAG",
    "UNKNOWN_REASONS",
    "AccountIdentity",
    "AccountIndex",
    "Effect",
    "FaceAccount",
    "FaceAccountWriter",
    "FaceInventory",
    "Finding",
    "FlagEventType",
    "FlagPublisher",
    "FlagRecord",
    "FlagStore",
    "FlagTransition",
    "IdentityAccess",
    "KeyAccessFacts",
    "KeyAccessReader",
    "KeyFacts",
    "KeyPresence",
    "KeyVersionFacts",
    "LookupStatus",
    "PublishEvent",
    "Reason",
    "RotationAction",
    "RotationDecision",
    "SetTags",
    "Status",
    "VaultFacts",
    "Verdict",
    "account_from_arm",
    "evaluate",
    "grants_key_use",
    "missing_permissions",
    "normalize_vault_uri",
    "next_flag_state",
    "rotation_follow_up",
]
