"""Subscription-topic events (``Microsoft.Resources.ResourceWrite/DeleteSuccess``).

Key Vault emits no event when an RBAC role assignment changes, so keyward subscribes to the
subscription topic and picks out the writes and deletes that can change who reaches a key:
role assignments (at key, vault, resource-group or subscription scope) and vaults themselves
(RBAC switched on or off, network rules, purge protection). Everything else on that topic is
ordinary traffic and is ignored, not rejected.
"""

from __future__ import annotations

from shared.crypto import VaultAllowList
from shared.events import _types as t
from shared.events._arm_ids import (
    VaultResource,
    key_name_of,
    parse_scope,
    parse_vault_resource,
    split_role_assignment,
)
from shared.events._envelope import Envelope
from shared.events._fields import reject
from shared.events._model import AccessChangeEvent, AccessScope, IgnoredEvent
from shared.events._types import AccessChangeKind, RejectionReason

_MANAGEMENT_GROUPS = "/providers/microsoft.management/managementgroups/"


def parse_resource_event(
    envelope: Envelope, event_type: str, allow_list: VaultAllowList
) -> AccessChangeEvent | IgnoredEvent:
    """Classify one resource event.

    Raises:
        EventRejectedError: a relevant resource on a malformed topic or outside the topic's
            subscription.
    """
    event_id = envelope.event_id
    resource_uri = envelope.data.required_text("resourceUri")
    if not resource_uri.startswith("/"):
        raise reject(
            RejectionReason.BAD_RESOURCE_URI,
            f"data.resourceUri {resource_uri[:200]!r} is not an ARM id",
            event_id,
        )
    deleted = event_type == t.RESOURCE_DELETE_SUCCESS
    ignored = IgnoredEvent(event_id, event_type, "", envelope.schema)
    role_scope = split_role_assignment(resource_uri)
    if role_scope is not None:
        kind = (
            AccessChangeKind.ROLE_ASSIGNMENT_DELETED
            if deleted
            else AccessChangeKind.ROLE_ASSIGNMENT_WRITTEN
        )
        scope_or_reason = _role_assignment_scope(role_scope, allow_list)
    else:
        vault = parse_vault_resource(resource_uri, allow_child=True)
        if vault is None:
            return _ignore(ignored, "not a role assignment or a vault")
        if not allow_list.allows_name(vault.vault_name):
            return _ignore(ignored, f"vault {vault.vault_name!r} is not on the allow-list")
        kind_scope = _vault_change(vault, deleted)
        if isinstance(kind_scope, str):
            return _ignore(ignored, kind_scope)
        kind, scope_or_reason = kind_scope
    if isinstance(scope_or_reason, str):
        return _ignore(ignored, scope_or_reason)
    _check_topic(envelope, resource_uri)
    return AccessChangeEvent(
        event_id=event_id,
        kind=kind,
        scope=scope_or_reason,
        resource_uri=resource_uri,
        event_time=envelope.time,
        schema=envelope.schema,
        event_type=event_type,
    )


def _ignore(template: IgnoredEvent, reason: str) -> IgnoredEvent:
    return IgnoredEvent(template.event_id, template.event_type, reason, template.schema)


def _role_assignment_scope(scope: str, allow_list: VaultAllowList) -> AccessScope | str:
    """The keys a role assignment at ``scope`` can reach, or why it reaches none of ours."""
    if scope == "/" or scope.lower().startswith(_MANAGEMENT_GROUPS) or parse_scope(scope):
        return AccessScope.everything()
    vault = parse_vault_resource(scope, allow_child=True)
    if vault is None:
        return "role assignment on a resource that is not a vault"
    if not allow_list.allows_name(vault.vault_name):
        return f"role assignment on vault {vault.vault_name!r}, not on the allow-list"
    if not vault.child:
        return AccessScope(vault.vault_name)
    key_name = key_name_of(vault.child)
    if key_name is None:
        return "role assignment on a vault object that is not a key"
    return AccessScope(vault.vault_name, key_name)


def _vault_change(
    vault: VaultResource, deleted: bool
) -> tuple[AccessChangeKind, AccessScope] | str:
    if not vault.child:
        kind = AccessChangeKind.VAULT_DELETED if deleted else AccessChangeKind.VAULT_WRITTEN
        return kind, AccessScope(vault.vault_name)
    if vault.child[0].lower() == "accesspolicies":
        return AccessChangeKind.ACCESS_POLICY_CHANGED, AccessScope(vault.vault_name)
    key_name = key_name_of(vault.child)
    if key_name is None:
        return f"vault child {vault.child[0][:40]!r} does not affect keys"
    kind = (
        AccessChangeKind.KEY_RESOURCE_DELETED if deleted else AccessChangeKind.KEY_RESOURCE_WRITTEN
    )
    return kind, AccessScope(vault.vault_name, key_name)


def _check_topic(envelope: Envelope, resource_uri: str) -> None:
    """The topic must be the subscription (or resource group) the resource lives in."""
    event_id = envelope.event_id
    if envelope.source is None:
        raise reject(RejectionReason.MISSING_FIELD, "topic/source is missing", event_id)
    topic = parse_scope(envelope.source)
    if topic is None:
        raise reject(
            RejectionReason.BAD_TOPIC,
            f"topic {envelope.source[:200]!r} is not a subscription or resource group",
            event_id,
        )
    resource_parts = [p.lower() for p in resource_uri.split("/")]
    prefix = ["", "subscriptions", topic.subscription_id]
    if topic.resource_group is not None:
        prefix += ["resourcegroups", topic.resource_group.lower()]
    if resource_parts[: len(prefix)] != prefix and not _is_above_subscription(resource_uri):
        raise reject(
            RejectionReason.SCOPE_MISMATCH,
            "data.resourceUri is outside the topic's subscription or resource group",
            event_id,
        )


def _is_above_subscription(resource_uri: str) -> bool:
    lowered = resource_uri.lower()
    return lowered.startswith((_MANAGEMENT_GROUPS, "/providers/microsoft.authorization/"))
