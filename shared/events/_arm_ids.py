"""ARM resource ids that matter to keyward: vaults, their keys, and role-assignment scopes.

Parsed segment by segment (provider and type segments compare case-insensitively, as ARM
does), never with ``str.startswith`` on the whole id: ``.../vaults/kv1`` must not match
``.../vaults/kv10``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.crypto import is_valid_key_name, is_valid_vault_name

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# Resource group names: 1-90 of letters, digits, underscores, hyphens, periods, parentheses;
# not ending in a period.
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
_ROLE_ASSIGNMENTS = ("providers", "microsoft.authorization", "roleassignments")
_MAX_ARM_ID = 2048


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


def is_resource_group_name(value: str) -> bool:
    return bool(_RESOURCE_GROUP.match(value)) and value.isascii()


@dataclass(frozen=True)
class VaultResource:
    """A vault (or Managed HSM) named by its ARM id, optionally with a child path below it.

    Attributes:
        subscription_id: lower-case subscription GUID.
        resource_group: as written in the id (ARM treats it case-insensitively).
        vault_name: lower-case vault name.
        managed_hsm: ``managedHSMs`` rather than ``vaults``.
        child: the segments after the vault name (``("keys", "k1")``), lower-case types.
    """

    subscription_id: str
    resource_group: str
    vault_name: str
    managed_hsm: bool
    child: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScopeResource:
    """A subscription or resource-group scope (a role assignment's scope, a topic)."""

    subscription_id: str
    resource_group: str | None


def _segments(value: str) -> list[str] | None:
    if not isinstance(value, str) or not value.startswith("/") or len(value) > _MAX_ARM_ID:
        return None
    parts = value.strip().rstrip("/").split("/")[1:]
    if any(not part or part != part.strip() for part in parts):
        return None
    return parts


def parse_resource_id(value: str, provider: str, resource_type: str) -> tuple[str, str, str] | None:
    """(subscription, resource group, name) of a top-level resource of ``provider`` /
    ``resource_type`` in a resource group (``/subscriptions/{s}/resourceGroups/{rg}/providers/
    {provider}/{type}/{name}``; provider and type compare case-insensitively), else None.
    Every key-dependent kind's ARM ids (Cognitive Services accounts, storage accounts) go
    through here."""
    parts = _segments(value)
    if (
        parts is None
        or len(parts) != 8
        or parts[0].lower() != "subscriptions"
        or parts[2].lower() != "resourcegroups"
        or parts[4].lower() != "providers"
        or parts[5].lower() != provider.lower()
        or parts[6].lower() != resource_type.lower()
    ):
        return None
    return parts[1], parts[3], parts[7]


def parse_scope(value: str) -> ScopeResource | None:
    """``/subscriptions/{guid}`` or ``/subscriptions/{guid}/resourceGroups/{rg}``, else None."""
    parts = _segments(value)
    if parts is None or len(parts) not in (2, 4) or parts[0].lower() != "subscriptions":
        return None
    if not is_guid(parts[1]):
        return None
    if len(parts) == 2:
        return ScopeResource(parts[1].lower(), None)
    if parts[2].lower() != "resourcegroups" or not is_resource_group_name(parts[3]):
        return None
    return ScopeResource(parts[1].lower(), parts[3])


def parse_vault_resource(value: str, *, allow_child: bool = False) -> VaultResource | None:
    """A vault ARM id (``.../providers/Microsoft.KeyVault/vaults/{name}``), else None."""
    parts = _segments(value)
    if parts is None or len(parts) < 8:
        return None
    head = [p.lower() for p in parts[:7]]
    if (
        head[0] != "subscriptions"
        or not is_guid(parts[1])
        or head[2] != "resourcegroups"
        or not is_resource_group_name(parts[3])
        or head[4] != "providers"
        or head[5] != "microsoft.keyvault"
        or head[6] not in ("vaults", "managedhsms")
        or not is_valid_vault_name(parts[7])
    ):
        return None
    child = tuple(parts[8:])
    if child and not allow_child:
        return None
    return VaultResource(
        subscription_id=parts[1].lower(),
        resource_group=parts[3],
        vault_name=parts[7].lower(),
        managed_hsm=head[6] == "managedhsms",
        child=child,
    )


def split_role_assignment(resource_uri: str) -> str | None:
    """The scope of a role assignment id (``{scope}/providers/Microsoft.Authorization/
    roleAssignments/{guid}``), or None when ``resource_uri`` is not a role assignment."""
    parts = _segments(resource_uri)
    if parts is None or len(parts) < 4:
        return None
    tail = [p.lower() for p in parts[-4:-1]]
    if tuple(tail) != _ROLE_ASSIGNMENTS:
        return None
    return "/" + "/".join(parts[:-4]) if len(parts) > 4 else "/"


def key_name_of(child: tuple[str, ...]) -> str | None:
    """The key name when ``child`` is ``keys/{name}[/versions/{v}]``, else None."""
    if len(child) >= 2 and child[0].lower() == "keys" and is_valid_key_name(child[1]):
        return child[1]
    return None
