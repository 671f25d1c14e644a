"""Vault onboarding, pure: what a connected vault must have, and how a found one compares.

No ``azure`` import: ``shared/services/onboarding.py`` applies it through ports and
``shared/adapters/onboarding.py`` speaks ARM. See docs/onboarding.md.
"""

from shared.onboarding._findings import (
    AdvancedFilter,
    Finding,
    FoundSubscription,
    subscription_findings,
)
from shared.onboarding._requirements import (
    ACCESS_OPERATIONS,
    ACCESS_POLICY_KEY_PERMISSIONS,
    ACCESS_SUBSCRIPTION,
    CRYPTO_SERVICE_ENCRYPTION_USER,
    EVENT_FUNCTION,
    EVENT_TTL_MINUTES,
    KEY_VAULT_READER,
    MANAGED_TAG,
    MAX_DELIVERY_ATTEMPTS,
    NEVER_GRANTED,
    SUBSCRIPTION_TOPIC_TYPE,
    VAULT_SUBSCRIPTION,
    VAULT_TOPIC_TYPE,
    DeadLetterTarget,
    Role,
    StringInFilter,
    SubscriptionSpec,
    SubscriptionTemplate,
    assignment_name,
    function_resource_id,
    roles_for,
    subscription_topic_name,
    vault_topic_name,
)
from shared.onboarding._resources import FoundAssignment, TopicRef, VaultRef

__all__ = [
    "ACCESS_OPERATIONS",
    "ACCESS_POLICY_KEY_PERMISSIONS",
    "ACCESS_SUBSCRIPTION",
    "CRYPTO_SERVICE_ENCRYPTION_USER",
    "EVENT_FUNCTION",
    "EVENT_TTL_MINUTES",
    "KEY_VAULT_READER",
    "MANAGED_TAG",
    "MAX_DELIVERY_ATTEMPTS",
    "NEVER_GRANTED",
    "SUBSCRIPTION_TOPIC_TYPE",
    "VAULT_SUBSCRIPTION",
    "VAULT_TOPIC_TYPE",
    "AdvancedFilter",
    "FoundAssignment",
    "TopicRef",
    "VaultRef",
    "DeadLetterTarget",
    "Finding",
    "FoundSubscription",
    "Role",
    "StringInFilter",
    "SubscriptionSpec",
    "SubscriptionTemplate",
    "assignment_name",
    "function_resource_id",
    "roles_for",
    "subscription_findings",
    "subscription_topic_name",
    "vault_topic_name",
]
