"""The key-access verdict for one key-dependent resource: a pure function of facts and a clock.

``ACCESS_LOST`` means the service cannot use the key now; ``AT_RISK`` means it can, but one
ordinary event (expiry, an accidental delete, the next rotation) would end that; ``UNKNOWN``
means keyward could not find out (vault unreachable, throttled, facts missing, or a grant
or network path it cannot evaluate: a group's membership, a condition, a deny assignment it
cannot match, a private endpoint) and is never rounded to OK or LOST. ACCESS_LOST needs
positive evidence. Every verdict carries machine-readable reasons with details.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.dependents._facts import (
    IdentityAccess,
    KeyAccessFacts,
    KeyFacts,
    KeyPresence,
    KeyVersionFacts,
    LookupStatus,
)
from shared.dependents._grants import (
    Grant,
    RbacFacts,
    RoleAssignmentFacts,
    built_in_definitions,
    judge_grants,
)
from shared.dependents._identity import identity_findings
from shared.dependents._models import DependentResource, normalize_vault_uri
from shared.dependents._network import network_findings
from shared.dependents._reasons import (
    LOST_REASONS,
    UNKNOWN_REASONS,
    Finding,
    Reason,
    Status,
    Verdict,
)
from shared.dependents._rules import (
    CMK_RULES,
    VerdictRules,
    missing_permissions,
)

DEFAULT_WARNING_WINDOW = timedelta(days=30)


def evaluate(
    account: DependentResource,
    facts: KeyAccessFacts,
    now: datetime,
    warning_window: timedelta = DEFAULT_WARNING_WINDOW,
    rules: VerdictRules = CMK_RULES,
) -> Verdict:
    """Judge whether ``account`` can use its key at ``now``.

    Args:
        account: the account and the key it points at.
        facts: what the adapters learned; ``None`` fields are unknown, not absent.
        now: the injected clock (aware UTC).
        warning_window: how far ahead an expiry makes the account AT_RISK.
        rules: the keys the account's kind accepts (its registration says; CMK_RULES).
    """
    if facts.lookup is LookupStatus.UNREACHABLE:
        detail = facts.detail or f"{account.key_vault_uri} could not be reached"
        return Verdict(Status.UNKNOWN, (Finding(Reason.VAULT_UNREACHABLE, detail),))
    if facts.lookup is LookupStatus.THROTTLED:
        detail = facts.detail or f"{account.key_vault_uri} throttled the lookup (429)"
        return Verdict(Status.UNKNOWN, (Finding(Reason.THROTTLED, detail),))
    if facts.vault is not None and not facts.vault.exists:
        return Verdict(Status.ACCESS_LOST, (Finding(Reason.VAULT_GONE, account.key_vault_uri),))
    found: list[Finding] = []
    missing: list[str] = []
    if facts.key is None:
        missing.append("key")
    else:
        found += _key_findings(account, facts.key, now, warning_window, missing, rules=rules)
    found += _vault_findings(facts, missing, rules)
    found += _access_findings(account, facts, missing)
    return _verdict(found, missing)


def _verdict(found: list[Finding], missing: list[str]) -> Verdict:
    if any(f.reason in LOST_REASONS for f in found):
        return Verdict(Status.ACCESS_LOST, tuple(found))
    if missing:
        incomplete = Finding(Reason.FACTS_INCOMPLETE, "unknown: " + ", ".join(missing))
        return Verdict(Status.UNKNOWN, (incomplete, *found))
    if any(f.reason in UNKNOWN_REASONS for f in found):
        return Verdict(Status.UNKNOWN, tuple(found))
    return Verdict(Status.AT_RISK if found else Status.OK, tuple(found))


_ABSENT = {
    KeyPresence.MISSING: Reason.KEY_MISSING,
    KeyPresence.DELETED: Reason.KEY_DELETED,
    KeyPresence.PURGED: Reason.KEY_PURGED,
}


def _key_findings(
    account: DependentResource,
    key: KeyFacts,
    now: datetime,
    window: timedelta,
    missing: list[str],
    *,
    rules: VerdictRules,
) -> list[Finding]:
    if key.presence in _ABSENT:
        return [Finding(_ABSENT[key.presence], account.key_ref)]
    found: list[Finding] = []
    if key.kid and normalize_vault_uri(key.kid) != account.key_vault_uri:
        found.append(
            Finding(Reason.KEY_IN_OTHER_VAULT, f"{key.kid} is not in {account.key_vault_uri}")
        )
    pinned = account.key_version
    effective = key.current
    if pinned is not None:
        effective = key.version(pinned)
        if effective is None:
            return [*found, Finding(Reason.PINNED_VERSION_MISSING, account.key_id)]
        if key.current_version and pinned != key.current_version.lower():
            found.append(
                Finding(
                    Reason.STALE_KEY_VERSION,
                    f"pinned to {pinned}, the key's current version is {key.current_version}",
                )
            )
            if not effective.enabled:
                found.append(Finding(Reason.PINNED_VERSION_DISABLED, account.key_id))
    if effective is None:
        missing.append("current key version")
        return found
    if not effective.enabled and Reason.PINNED_VERSION_DISABLED not in {f.reason for f in found}:
        found.append(Finding(Reason.KEY_DISABLED, f"version {effective.version} is disabled"))
    return found + _version_findings(effective, now, window, rules)


def _version_findings(
    version: KeyVersionFacts, now: datetime, window: timedelta, rules: VerdictRules
) -> list[Finding]:
    found: list[Finding] = []
    if version.exp is not None and version.exp <= now:
        found.append(Finding(Reason.KEY_EXPIRED, f"expired at {version.exp.isoformat()}"))
    elif version.exp is not None and version.exp - now <= window:
        found.append(Finding(Reason.EXPIRES_SOON, f"expires at {version.exp.isoformat()}"))
    if version.nbf is not None and version.nbf > now:
        found.append(Finding(Reason.KEY_NOT_YET_VALID, f"not before {version.nbf.isoformat()}"))
    if version.key_ops is not None and not version.allows("wrapKey", "unwrapKey"):
        found.append(
            Finding(Reason.KEY_OPS_MISSING, f"key_ops are {', '.join(version.key_ops) or 'empty'}")
        )
    kty = (version.kty or "").upper()
    if version.kty is not None and (
        kty not in rules.key_types
        or (version.key_size is not None and version.key_size not in rules.key_sizes)
    ):
        size = f" {version.key_size}" if version.key_size else ""
        found.append(
            Finding(
                Reason.UNSUPPORTED_KEY_TYPE,
                f"{version.kty}{size}; the service takes {rules.accepted}",
            )
        )
    return found


def _vault_findings(
    facts: KeyAccessFacts, missing: list[str], rules: VerdictRules
) -> list[Finding]:
    vault = facts.vault
    if vault is None:
        missing.append("vault properties")
        return []
    found: list[Finding] = []
    if vault.soft_delete is False:
        found.append(Finding(Reason.SOFT_DELETE_OFF, "the vault does not have soft delete"))
    if vault.purge_protection is False:
        found.append(Finding(Reason.PURGE_PROTECTION_OFF, "the vault lacks purge protection"))
    if vault.network is not None:
        found += network_findings(vault.network, trusted_service=rules.trusted_service)
    return found


def _access_findings(
    account: DependentResource, facts: KeyAccessFacts, missing: list[str]
) -> list[Finding]:
    """The identity the key names, then what access policies or RBAC let it do."""
    unresolved = identity_findings(account.identity)
    if unresolved:
        return unresolved
    principal = account.identity.effective_principal_id or ""
    access = facts.access
    if access is None:
        missing.append("identity permissions")
        return []
    rbac = facts.vault.rbac if facts.vault is not None else None
    lacks_perms = missing_permissions(access.key_permissions)
    if rbac is False:
        if lacks_perms:
            detail = "access policy lacks " + ", ".join(lacks_perms)
            return [Finding(Reason.IDENTITY_LACKS_PERMISSION, detail)]
        return []
    judgement = judge_grants(principal, _rbac_facts(principal, access))
    if judgement.grant is Grant.GRANTED:
        return []
    if rbac is None and not lacks_perms:
        return []  # the access policy grants it, whichever mode the vault is in
    if judgement.grant is Grant.UNCERTAIN:
        return list(judgement.findings)
    if rbac is None:
        return [
            Finding(
                Reason.IDENTITY_LACKS_PERMISSION,
                "neither an access policy nor a role grants get/wrapKey/unwrapKey",
            ),
            *(f for f in judgement.findings if f.reason is not Reason.IDENTITY_LACKS_ROLE),
        ]
    return list(judgement.findings)


def _rbac_facts(principal: str, access: IdentityAccess) -> RbacFacts:
    """The RBAC picture; from bare role ids (direct, unconditioned, built-in definitions)
    when the adapter gave nothing more."""
    if access.rbac is not None:
        return access.rbac
    assignments = tuple(RoleAssignmentFacts(r, principal) for r in access.role_definition_ids)
    return RbacFacts(assignments, built_in_definitions(access.role_definition_ids), ())
