"""What the emulator knows about Azure RBAC beyond role assignments: management groups,
custom role definitions and deny assignments (one field of ``EmulatorState``: ``access``).

Plain data, no aiohttp: the ARM providers (``arm_authorization``, ``arm_roles``,
``arm_access``) read and write it, and ``state.py`` persists it with ``to_json``.
Shapes follow azure-rest-api-specs (see docs/emulator.md, "RBAC beyond direct grants").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MANAGEMENT_GROUP_PREFIX = "/providers/microsoft.management/managementgroups/"


@dataclass
class ManagementGroup:
    """A management group: its parent (``None``: under the tenant root) and subscriptions."""

    name: str
    parent: str | None = None
    subscriptions: list[str] = field(default_factory=list)
    display_name: str = ""

    @property
    def arm_id(self) -> str:
        return f"/providers/Microsoft.Management/managementGroups/{self.name}"


@dataclass
class CustomRole:
    """A custom role definition (``type: CustomRole``) as PUT by a caller."""

    guid: str
    name: str
    description: str = ""
    actions: list[str] = field(default_factory=list)
    not_actions: list[str] = field(default_factory=list)
    data_actions: list[str] = field(default_factory=list)
    not_data_actions: list[str] = field(default_factory=list)
    assignable_scopes: list[str] = field(default_factory=list)
    scope: str = ""


@dataclass
class DenyAssignment:
    """A deny assignment (Azure creates them for managed apps and blueprints; here, the
    control API). ``principals`` / ``exclude_principals``: ``{"id", "type"}`` dicts."""

    name: str
    scope: str
    deny_assignment_name: str = ""
    data_actions: list[str] = field(default_factory=list)
    not_data_actions: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    principals: list[dict[str, str]] = field(default_factory=list)
    exclude_principals: list[dict[str, str]] = field(default_factory=list)
    do_not_apply_to_child_scopes: bool = False
    condition: str | None = None


@dataclass
class AccessWorld:
    management_groups: dict[str, ManagementGroup] = field(default_factory=dict)
    custom_roles: dict[str, CustomRole] = field(default_factory=dict)
    deny_assignments: dict[str, DenyAssignment] = field(default_factory=dict)

    def groups_of(self, subscription_id: str) -> list[str]:
        """The management groups a subscription sits in, nearest first, up the chain."""
        wanted = subscription_id.lower()
        chain: list[str] = []
        current = next(
            (
                g
                for g in self.management_groups.values()
                if wanted in (s.lower() for s in g.subscriptions)
            ),
            None,
        )
        while current is not None and current.name.lower() not in chain:
            chain.append(current.name.lower())
            parent = current.parent
            current = self.management_groups.get(parent.lower()) if parent else None
        return chain

    def covers(self, outer: str, inner: str) -> bool:
        """Whether scope ``outer`` is ``inner`` or one of its ancestors, management groups
        included (ARM ids ignore case)."""
        outer, inner = outer.rstrip("/").lower(), inner.rstrip("/").lower()
        if inner == outer or inner.startswith(outer + "/"):
            return True
        if not outer.startswith(MANAGEMENT_GROUP_PREFIX):
            return False
        group = outer[len(MANAGEMENT_GROUP_PREFIX) :]
        if inner.startswith(MANAGEMENT_GROUP_PREFIX):
            child = self.management_groups.get(inner[len(MANAGEMENT_GROUP_PREFIX) :])
            seen: set[str] = set()
            while child is not None and child.parent and child.name.lower() not in seen:
                seen.add(child.name.lower())
                if child.parent.lower() == group:
                    return True
                child = self.management_groups.get(child.parent.lower())
            return False
        parts = inner.split("/")
        if len(parts) > 2 and parts[1] == "subscriptions":
            return group in self.groups_of(parts[2])
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "management_groups": [asdict(g) for g in self.management_groups.values()],
            "custom_roles": [asdict(r) for r in self.custom_roles.values()],
            "deny_assignments": [asdict(d) for d in self.deny_assignments.values()],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> AccessWorld:
        world = cls()
        raw = raw or {}
        for g in raw.get("management_groups", []):
            world.management_groups[g["name"].lower()] = ManagementGroup(**g)
        for r in raw.get("custom_roles", []):
            world.custom_roles[r["guid"].lower()] = CustomRole(**r)
        for d in raw.get("deny_assignments", []):
            world.deny_assignments[d["name"]] = DenyAssignment(**d)
        return world
