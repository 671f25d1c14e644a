"""Whether Azure RBAC lets one principal use a key: role assignments, role definitions, denies.

Pure (no azure import): the adapter lists what ARM says applies at the key's scope and reads
the definitions; this module judges. The rule the verdict lives by: **a grant keyward cannot
evaluate is never read as "no access"**. The judgement has three outcomes:

* ``GRANTED``: an assignment keyward fully understands (to this principal, no condition, a
  role whose ``dataActions`` minus ``notDataActions`` cover every action a CMK needs) gives
  access, and no deny assignment could take it away;
* ``DENIED``: positive evidence that access is gone: no assignment that could grant it exists
  at the key's scope or above (ARM's ``atScope()`` listing includes inherited assignments,
  management groups too), or a deny assignment keyward fully understands blocks an action;
* ``UNCERTAIN``: access depends on something keyward cannot check: a group's membership
  (keyward does not read Microsoft Graph), a condition (ABAC), a deny assignment naming
  groups or excluding principals, a role definition it could not read. Each adds a finding
  naming what was not checked, and the verdict is UNKNOWN, never ACCESS_LOST.

Role definitions are evaluated from their ``permissions``: an action is allowed by a
permission block when one of its ``dataActions`` matches and none of its ``notDataActions``
does (wildcards ``*`` anywhere, case-insensitive, as ARM matches them). Built-in roles go
through the same evaluator; :data:`BUILT_IN_DATA_ACTIONS` only stands in for a built-in
definition the adapter could not read.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from shared.dependents._reasons import Finding, Reason

#: The data actions a customer-managed key needs (get, wrapKey, unwrapKey).
CMK_DATA_ACTIONS = (
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/wrap/action",
    "Microsoft.KeyVault/vaults/keys/unwrap/action",
)
#: ``principalType`` of an assignment to a group: membership is Microsoft Graph's to tell.
GROUP = "group"
#: The principal id deny assignments use for "Everyone" (``principalType: SystemDefined``).
EVERYONE = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Permission:
    """One ``permissions[]`` block of a role definition or deny assignment (data plane)."""

    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def allows(self, action: str) -> bool:
        return any(action_matches(p, action) for p in self.data_actions) and not any(
            action_matches(p, action) for p in self.not_data_actions
        )


@dataclass(frozen=True)
class RoleDefinitionFacts:
    """A role definition as ARM returns it (built-in or custom)."""

    id: str
    name: str = ""
    permissions: tuple[Permission, ...] = ()

    def allows(self, action: str) -> bool:
        return any(p.allows(action) for p in self.permissions)


@dataclass(frozen=True)
class RoleAssignmentFacts:
    """One role assignment that applies at the key's scope (there or above)."""

    role_definition_id: str
    principal_id: str
    principal_type: str = "ServicePrincipal"
    scope: str = ""
    condition: str | None = None

    @property
    def role(self) -> str:
        return role_guid(self.role_definition_id)


@dataclass(frozen=True)
class PrincipalRef:
    id: str
    type: str = "ServicePrincipal"


@dataclass(frozen=True)
class DenyAssignmentFacts:
    """A ``Microsoft.Authorization/denyAssignments`` entry applying at the key's scope."""

    name: str
    scope: str = ""
    permissions: tuple[Permission, ...] = ()
    principals: tuple[PrincipalRef, ...] = ()
    exclude_principals: tuple[PrincipalRef, ...] = ()
    condition: str | None = None
    #: ``doNotApplyToChildScopes`` false: it applies below its scope too (the usual case).
    applies_to_children: bool = True

    def blocks(self, action: str) -> bool:
        return any(p.allows(action) for p in self.permissions)


@dataclass(frozen=True)
class RbacFacts:
    """Everything RBAC-related the adapter read for one key scope.

    Attributes:
        assignments: every assignment at the key's scope or above (``atScope()``), for any
            principal; ``None`` when they could not be listed.
        definitions: role definition GUID -> definition; a GUID missing here could not be
            read (see :data:`BUILT_IN_DATA_ACTIONS`).
        denies: deny assignments at the key's scope or above; ``None``: could not be listed.
    """

    assignments: tuple[RoleAssignmentFacts, ...] | None = None
    definitions: Mapping[str, RoleDefinitionFacts] = field(default_factory=dict)
    denies: tuple[DenyAssignmentFacts, ...] | None = ()


class Grant(enum.StrEnum):
    GRANTED = "GRANTED"
    DENIED = "DENIED"
    UNCERTAIN = "UNCERTAIN"


@dataclass(frozen=True)
class GrantJudgement:
    grant: Grant
    findings: tuple[Finding, ...] = ()


#: Built-in Key Vault roles' data actions (Azure's published definitions), used only when the
#: adapter could not read the definition itself.
BUILT_IN_DATA_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": ("Microsoft.KeyVault/vaults/*",),  # Administrator
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603": (  # Crypto Officer
        "Microsoft.KeyVault/vaults/keys/*",
        "Microsoft.KeyVault/vaults/keyrotationpolicies/*",
    ),
    "12338af0-0e69-4776-bea7-57ae8d297424": (  # Crypto User
        "Microsoft.KeyVault/vaults/keys/read",
        "Microsoft.KeyVault/vaults/keys/update/action",
        "Microsoft.KeyVault/vaults/keys/backup/action",
        "Microsoft.KeyVault/vaults/keys/encrypt/action",
        "Microsoft.KeyVault/vaults/keys/decrypt/action",
        "Microsoft.KeyVault/vaults/keys/wrap/action",
        "Microsoft.KeyVault/vaults/keys/unwrap/action",
        "Microsoft.KeyVault/vaults/keys/sign/action",
        "Microsoft.KeyVault/vaults/keys/verify/action",
    ),
    "e147488a-f6f5-4113-8e2d-b22465e65bf6": CMK_DATA_ACTIONS,  # Crypto Service Encryption User
    "21090545-7ca7-4776-b22c-e363652d74d2": (  # Reader
        "Microsoft.KeyVault/vaults/*/read",
        "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    ),
}


def role_guid(role_definition_id: str) -> str:
    """The GUID of ``.../roleDefinitions/{guid}`` (or of a bare GUID), lower case."""
    return role_definition_id.strip().rstrip("/").rsplit("/", 1)[-1].lower()


@lru_cache(maxsize=512)
def _pattern(pattern: str) -> re.Pattern[str]:
    parts = (re.escape(part) for part in pattern.strip().split("*"))
    return re.compile("^" + ".*".join(parts) + "$", re.IGNORECASE)


def action_matches(pattern: str, action: str) -> bool:
    """Whether an ARM action pattern (``*``, ``Microsoft.KeyVault/vaults/keys/*``,
    ``*/read``...) matches ``action``; ``*`` stands for any run of characters, ``/`` too."""
    return bool(_pattern(pattern).match(action.strip()))


def definition_or_built_in(
    guid: str, definitions: Mapping[str, RoleDefinitionFacts]
) -> RoleDefinitionFacts | None:
    """The definition read from ARM, else the published built-in one, else ``None``."""
    found = definitions.get(guid)
    if found is not None:
        return found
    actions = BUILT_IN_DATA_ACTIONS.get(guid)
    if actions is None:
        return None
    return RoleDefinitionFacts(guid, permissions=(Permission(actions),))


def built_in_definitions(guids: Iterable[str]) -> dict[str, RoleDefinitionFacts]:
    """The published definitions of the built-in roles among ``guids`` (others left out)."""
    found: dict[str, RoleDefinitionFacts] = {}
    for guid in map(role_guid, guids):
        definition = definition_or_built_in(guid, {})
        if definition is not None:
            found[guid] = definition
    return found


def judge_grants(
    principal_id: str,
    facts: RbacFacts,
    actions: Sequence[str] = CMK_DATA_ACTIONS,
) -> GrantJudgement:
    """Whether ``principal_id`` may perform every one of ``actions`` on the key."""
    if facts.assignments is None:
        return GrantJudgement(
            Grant.UNCERTAIN,
            (Finding(Reason.FACTS_INCOMPLETE, "role assignments could not be listed"),),
        )
    wanted = principal_id.strip().lower()
    uncertain: dict[tuple[Reason, str], None] = {}
    not_granted: list[str] = []
    for action in actions:
        sure, maybe = _grant_for(wanted, action, facts, uncertain)
        if not sure and not maybe:
            not_granted.append(action)
    denied, deny_uncertain = _denies(wanted, actions, facts.denies)
    if denied:
        return GrantJudgement(Grant.DENIED, tuple(denied))
    if not_granted:
        detail = "no role assignment at the key's scope or above grants " + ", ".join(
            _short(a) for a in not_granted
        )
        return GrantJudgement(Grant.DENIED, (Finding(Reason.IDENTITY_LACKS_ROLE, detail),))
    for item in deny_uncertain:
        uncertain.setdefault((item.reason, item.detail), None)
    if uncertain:
        findings = tuple(Finding(reason, detail) for reason, detail in uncertain)
        # An action surely granted everywhere with only an unevaluable deny is still uncertain;
        # one granted only through unevaluable assignments is too.
        return GrantJudgement(Grant.UNCERTAIN, findings)
    return GrantJudgement(Grant.GRANTED)


def _grant_for(
    principal: str,
    action: str,
    facts: RbacFacts,
    uncertain: dict[tuple[Reason, str], None],
) -> tuple[bool, bool]:
    """(surely granted, possibly granted) for one action; records why it is only possible."""
    possible: list[tuple[Reason, str]] = []
    for assignment in facts.assignments or ():
        is_group = assignment.principal_type.strip().lower() == GROUP
        if assignment.principal_id.strip().lower() != principal and not is_group:
            continue
        definition = definition_or_built_in(assignment.role, facts.definitions)
        where = assignment.scope or "the key's scope"
        if definition is None:
            possible.append(
                (
                    Reason.ROLE_DEFINITION_UNREAD,
                    f"role definition {assignment.role} (assigned at {where}) could not be read",
                )
            )
            continue
        if not definition.allows(action):
            continue
        if is_group:
            possible.append(
                (
                    Reason.GROUP_MEMBERSHIP_UNCHECKED,
                    f"group {assignment.principal_id} holds role "
                    f"{definition.name or assignment.role} at {where}; keyward does not read "
                    "group membership",
                )
            )
        elif assignment.condition:
            possible.append(
                (
                    Reason.CONDITION_UNEVALUATED,
                    f"role {definition.name or assignment.role} at {where} has a condition "
                    "keyward does not evaluate",
                )
            )
        else:
            return True, True
    for item in possible:
        uncertain.setdefault(item, None)
    return False, bool(possible)


def _denies(
    principal: str,
    actions: Sequence[str],
    denies: tuple[DenyAssignmentFacts, ...] | None,
) -> tuple[list[Finding], list[Finding]]:
    """(deny findings that are positive evidence, deny findings keyward cannot evaluate)."""
    if denies is None:
        return [], [Finding(Reason.DENY_ASSIGNMENT_UNEVALUATED, "deny assignments not listed")]
    sure: list[Finding] = []
    unsure: list[Finding] = []
    for deny in denies:
        blocked = [a for a in actions if deny.blocks(a)]
        if not blocked:
            continue
        applies = _deny_applies(principal, deny)
        what = f"deny assignment {deny.name} at {deny.scope or 'the key scope'}"
        if applies is True:
            sure.append(
                Finding(
                    Reason.DENY_ASSIGNMENT_BLOCKS,
                    f"{what} denies {', '.join(_short(a) for a in blocked)}",
                )
            )
        elif applies is None:
            unsure.append(
                Finding(
                    Reason.DENY_ASSIGNMENT_UNEVALUATED,
                    f"{what} may apply (groups, exclusions or a condition keyward cannot check)",
                )
            )
    return sure, unsure


def _deny_applies(principal: str, deny: DenyAssignmentFacts) -> bool | None:
    """True: it covers the principal; False: it does not; None: keyward cannot tell."""
    if deny.condition:
        return None
    excluded = {p.id.strip().lower() for p in deny.exclude_principals}
    if principal in excluded:
        return False
    excludes_groups = any(p.type.strip().lower() == GROUP for p in deny.exclude_principals)
    names = {p.id.strip().lower() for p in deny.principals}
    names_groups = any(p.type.strip().lower() == GROUP for p in deny.principals)
    if principal in names or EVERYONE in names:
        return None if excludes_groups else True
    return None if names_groups else False


def _short(action: str) -> str:
    return action.rsplit("/keys/", 1)[-1]


# -- ARM's REST shapes (Microsoft.Authorization 2022-04-01) -> facts ------------------------


def assignment_from_arm(resource: Mapping[str, object]) -> RoleAssignmentFacts:
    """A ``roleAssignments`` resource (REST JSON) as facts."""
    props = _dict(resource.get("properties"))
    return RoleAssignmentFacts(
        role_definition_id=_text(props.get("roleDefinitionId")),
        principal_id=_text(props.get("principalId")),
        principal_type=_text(props.get("principalType")) or "ServicePrincipal",
        scope=_text(props.get("scope")),
        condition=_text(props.get("condition")) or None,
    )


def definition_from_arm(resource: Mapping[str, object]) -> RoleDefinitionFacts:
    """A ``roleDefinitions`` resource (REST JSON) as facts: its data-plane permissions."""
    props = _dict(resource.get("properties"))
    return RoleDefinitionFacts(
        id=role_guid(_text(resource.get("name")) or _text(resource.get("id"))),
        name=_text(props.get("roleName")),
        permissions=tuple(_permission(p) for p in _list(props.get("permissions"))),
    )


def deny_from_arm(resource: Mapping[str, object]) -> DenyAssignmentFacts:
    """A ``denyAssignments`` resource (REST JSON) as facts.

    A deny assignment whose permission block carries its own ``condition`` is read as
    conditioned as a whole (keyward evaluates no condition)."""
    props = _dict(resource.get("properties"))
    permissions = _list(props.get("permissions"))
    conditioned = _text(props.get("condition")) or next(
        (_text(_dict(p).get("condition")) for p in permissions if _text(_dict(p).get("condition"))),
        "",
    )
    return DenyAssignmentFacts(
        name=_text(props.get("denyAssignmentName")) or _text(resource.get("name")),
        scope=_text(props.get("scope")),
        permissions=tuple(_permission(p) for p in permissions),
        principals=tuple(_principal(p) for p in _list(props.get("principals"))),
        exclude_principals=tuple(_principal(p) for p in _list(props.get("excludePrincipals"))),
        condition=conditioned or None,
        applies_to_children=not props.get("doNotApplyToChildScopes"),
    )


def _permission(raw: object) -> Permission:
    entry = _dict(raw)
    return Permission(
        tuple(_text(a) for a in _list(entry.get("dataActions"))),
        tuple(_text(a) for a in _list(entry.get("notDataActions"))),
    )


def _principal(raw: object) -> PrincipalRef:
    entry = _dict(raw)
    return PrincipalRef(_text(entry.get("id")), _text(entry.get("type")) or "ServicePrincipal")


def _dict(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
