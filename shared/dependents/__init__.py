"""Resources that depend on a customer-managed key: verdicts, flags, rotation follow-up. Pure.

A resource of any kind (Face and other Azure AI services accounts, storage accounts) is seen
as a :class:`DependentResource`.
``evaluate`` judges its key access from facts adapters gathered; ``next_flag_state`` turns a
verdict into a stored record and the effects to perform (only on a change);
``rotation_follow_up`` decides between re-pointing and flagging a stale pin. What differs per
kind is the :class:`DependentKind` port (ARM inventory, writer, user-visible labels, verdict
rules), registered once in ``shared.composition``. See ``docs/face.md``.
"""

from shared.dependents._facts import (
    IdentityAccess,
    KeyAccessFacts,
    KeyFacts,
    KeyPresence,
    KeyVersionFacts,
    LookupStatus,
    VaultFacts,
)
from shared.dependents._flags import (
    STATUS_TAG,
    Effect,
    FlagEventType,
    FlagRecord,
    FlagTransition,
    PublishEvent,
    SetTags,
    event_type_name,
    next_flag_state,
    with_purge,
)
from shared.dependents._grants import (
    CMK_DATA_ACTIONS,
    DenyAssignmentFacts,
    Grant,
    GrantJudgement,
    Permission,
    PrincipalRef,
    RbacFacts,
    RoleAssignmentFacts,
    RoleDefinitionFacts,
    action_matches,
    assignment_from_arm,
    definition_from_arm,
    deny_from_arm,
    judge_grants,
)
from shared.dependents._identity import identity_findings, identity_from_arm
from shared.dependents._index import AccountIndex
from shared.dependents._models import (
    AccountIdentity,
    DependentResource,
    normalize_vault_uri,
    vault_name_for,
)
from shared.dependents._network import VaultNetworkFacts, network_findings, network_from_arm
from shared.dependents._ports import (
    DependentInventory,
    DependentKind,
    DependentWriter,
    KeyAccessReader,
    KindLabels,
)
from shared.dependents._reasons import (
    LOST_REASONS,
    UNKNOWN_REASONS,
    Finding,
    Reason,
    Status,
    Verdict,
)
from shared.dependents._records import PendingEffects, record_from_dict, record_to_dict
from shared.dependents._rotation import RotationAction, RotationDecision, rotation_follow_up
from shared.dependents._rules import (
    CMK_RULES,
    KEY_USE_ROLES,
    KEY_VAULT_ADMINISTRATOR,
    KEY_VAULT_CRYPTO_OFFICER,
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    KEY_VAULT_CRYPTO_USER,
    KEY_VAULT_READER,
    REQUIRED_KEY_PERMISSIONS,
    VerdictRules,
    grants_key_use,
    missing_permissions,
)
from shared.dependents._verdict import DEFAULT_WARNING_WINDOW, evaluate

__all__ = [
    "AccountIdentity",
    "AccountIndex",
    "CMK_DATA_ACTIONS",
    "CMK_RULES",
    "DEFAULT_WARNING_WINDOW",
    "DenyAssignmentFacts",
    "DependentInventory",
    "DependentKind",
    "DependentResource",
    "DependentWriter",
    "Effect",
    "Finding",
    "FlagEventType",
    "FlagRecord",
    "FlagTransition",
    "Grant",
    "GrantJudgement",
    "IdentityAccess",
    "KEY_USE_ROLES",
    "KEY_VAULT_ADMINISTRATOR",
    "KEY_VAULT_CRYPTO_OFFICER",
    "KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER",
    "KEY_VAULT_CRYPTO_USER",
    "KEY_VAULT_READER",
    "KeyAccessFacts",
    "KeyAccessReader",
    "KeyFacts",
    "KeyPresence",
    "KeyVersionFacts",
    "KindLabels",
    "LOST_REASONS",
    "LookupStatus",
    "PendingEffects",
    "Permission",
    "PrincipalRef",
    "PublishEvent",
    "REQUIRED_KEY_PERMISSIONS",
    "RbacFacts",
    "Reason",
    "RoleAssignmentFacts",
    "RoleDefinitionFacts",
    "RotationAction",
    "RotationDecision",
    "STATUS_TAG",
    "SetTags",
    "Status",
    "UNKNOWN_REASONS",
    "VaultFacts",
    "VaultNetworkFacts",
    "Verdict",
    "VerdictRules",
    "action_matches",
    "assignment_from_arm",
    "definition_from_arm",
    "deny_from_arm",
    "evaluate",
    "event_type_name",
    "grants_key_use",
    "identity_findings",
    "identity_from_arm",
    "judge_grants",
    "missing_permissions",
    "network_findings",
    "network_from_arm",
    "next_flag_state",
    "normalize_vault_uri",
    "record_from_dict",
    "record_to_dict",
    "rotation_follow_up",
    "vault_name_for",
    "with_purge",
]
