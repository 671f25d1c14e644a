"""evaluate: one table row per reason, each from a healthy baseline with one fact broken."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.dependents import (
    KEY_VAULT_ADMINISTRATOR,
    KEY_VAULT_CRYPTO_OFFICER,
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    KEY_VAULT_CRYPTO_USER,
    KEY_VAULT_READER,
    LOST_REASONS,
    UNKNOWN_REASONS,
    AccountIdentity,
    DependentResource,
    IdentityAccess,
    KeyAccessFacts,
    KeyFacts,
    KeyPresence,
    LookupStatus,
    Reason,
    Status,
    VaultFacts,
    evaluate,
)
from tests.dependents.conftest import NEW, NOW, OLD, account, facts, key, version

R = Reason
HEALTHY_VAULT = VaultFacts(exists=True, soft_delete=True, purge_protection=True, rbac=True)
POLICY_VAULT = replace(HEALTHY_VAULT, rbac=False)

CASES: list[tuple[str, DependentResource, KeyAccessFacts, Status, set[Reason]]] = [
    ("healthy", account(), facts(), Status.OK, set()),
    ("healthy pinned to current", account(key_version=NEW), facts(), Status.OK, set()),
    # ACCESS_LOST
    (
        "vault gone",
        account(),
        facts(vault=VaultFacts(exists=False)),
        Status.ACCESS_LOST,
        {R.VAULT_GONE},
    ),
    (
        "key missing",
        account(),
        facts(key=KeyFacts(KeyPresence.MISSING)),
        Status.ACCESS_LOST,
        {R.KEY_MISSING},
    ),
    (
        "key deleted",
        account(),
        facts(key=KeyFacts(KeyPresence.DELETED)),
        Status.ACCESS_LOST,
        {R.KEY_DELETED},
    ),
    (
        "key purged",
        account(),
        facts(key=KeyFacts(KeyPresence.PURGED)),
        Status.ACCESS_LOST,
        {R.KEY_PURGED},
    ),
    (
        "key disabled",
        account(),
        facts(key=key(version(OLD), version(NEW, enabled=False))),
        Status.ACCESS_LOST,
        {R.KEY_DISABLED},
    ),
    (
        "pinned current version disabled is the key disabled",
        account(key_version=NEW),
        facts(key=key(version(OLD), version(NEW, enabled=False))),
        Status.ACCESS_LOST,
        {R.KEY_DISABLED},
    ),
    (
        "key expired",
        account(),
        facts(key=key(version(NEW, exp=NOW - timedelta(seconds=1)))),
        Status.ACCESS_LOST,
        {R.KEY_EXPIRED},
    ),
    (
        "key expires exactly now",
        account(),
        facts(key=key(version(NEW, exp=NOW))),
        Status.ACCESS_LOST,
        {R.KEY_EXPIRED},
    ),
    (
        "nbf in the future",
        account(),
        facts(key=key(version(NEW, nbf=NOW + timedelta(hours=1)))),
        Status.ACCESS_LOST,
        {R.KEY_NOT_YET_VALID},
    ),
    (
        "pinned version missing",
        account(key_version="11111111111111111111111111111111"),
        facts(),
        Status.ACCESS_LOST,
        {R.PINNED_VERSION_MISSING},
    ),
    (
        "pinned old version disabled",
        account(key_version=OLD),
        facts(key=key(version(OLD, enabled=False), version(NEW))),
        Status.ACCESS_LOST,
        {R.PINNED_VERSION_DISABLED, R.STALE_KEY_VERSION},
    ),
    (
        "key_ops lack unwrapKey",
        account(),
        facts(key=key(version(NEW, key_ops=("wrapKey", "sign")))),
        Status.ACCESS_LOST,
        {R.KEY_OPS_MISSING},
    ),
    (
        "key_ops empty",
        account(),
        facts(key=key(version(NEW, key_ops=()))),
        Status.ACCESS_LOST,
        {R.KEY_OPS_MISSING},
    ),
    (
        "access policy lacks unwrapKey",
        account(),
        facts(
            vault=POLICY_VAULT, access=IdentityAccess(key_permissions=frozenset({"get", "wrapKey"}))
        ),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_PERMISSION},
    ),
    (
        "access policy removed",
        account(),
        facts(vault=POLICY_VAULT, access=IdentityAccess()),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_PERMISSION},
    ),
    (
        "vault switched to RBAC, policy no longer counts",
        account(),
        facts(access=IdentityAccess(key_permissions=frozenset({"get", "wrapKey", "unwrapKey"}))),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_ROLE},
    ),
    (
        "role assignment deleted",
        account(),
        facts(access=IdentityAccess()),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_ROLE},
    ),
    (
        "reader role is not enough",
        account(),
        facts(access=IdentityAccess(role_definition_ids=frozenset({KEY_VAULT_READER}))),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_ROLE},
    ),
    (
        "no managed identity",
        account(identity=AccountIdentity()),
        facts(),
        Status.ACCESS_LOST,
        {R.IDENTITY_MISSING},
    ),
    # AT_RISK
    (
        "expires soon",
        account(),
        facts(key=key(version(NEW, exp=NOW + timedelta(days=29)))),
        Status.AT_RISK,
        {R.EXPIRES_SOON},
    ),
    (
        "soft delete off",
        account(),
        facts(vault=replace(HEALTHY_VAULT, soft_delete=False)),
        Status.AT_RISK,
        {R.SOFT_DELETE_OFF},
    ),
    (
        "purge protection off",
        account(),
        facts(vault=replace(HEALTHY_VAULT, purge_protection=False)),
        Status.AT_RISK,
        {R.PURGE_PROTECTION_OFF},
    ),
    (
        "stale pinned version",
        account(key_version=OLD),
        facts(),
        Status.AT_RISK,
        {R.STALE_KEY_VERSION},
    ),
    (
        "RSA 3072",
        account(),
        facts(key=key(version(NEW, key_size=3072))),
        Status.AT_RISK,
        {R.UNSUPPORTED_KEY_TYPE},
    ),
    (
        "EC key",
        account(),
        facts(key=key(version(NEW, kty="EC", key_size=None))),
        Status.AT_RISK,
        {R.UNSUPPORTED_KEY_TYPE},
    ),
    (
        "key in another vault",
        account(),
        facts(key=replace(key(), kid=f"https://other-kv.vault.azure.net/keys/face-cmk/{NEW}")),
        Status.AT_RISK,
        {R.KEY_IN_OTHER_VAULT},
    ),
    # UNKNOWN
    (
        "vault unreachable",
        account(),
        facts(lookup=LookupStatus.UNREACHABLE, key=None),
        Status.UNKNOWN,
        {R.VAULT_UNREACHABLE},
    ),
    (
        "throttled",
        account(),
        facts(lookup=LookupStatus.THROTTLED, key=KeyFacts(KeyPresence.MISSING)),
        Status.UNKNOWN,
        {R.THROTTLED},
    ),
    ("key facts missing", account(), facts(key=None), Status.UNKNOWN, {R.FACTS_INCOMPLETE}),
    ("access facts missing", account(), facts(access=None), Status.UNKNOWN, {R.FACTS_INCOMPLETE}),
    ("vault facts missing", account(), facts(vault=None), Status.UNKNOWN, {R.FACTS_INCOMPLETE}),
]


@pytest.mark.parametrize(
    ("name", "acct", "key_facts", "status", "reasons"), CASES, ids=[c[0] for c in CASES]
)
def test_each_reason(
    name: str,
    acct: DependentResource,
    key_facts: KeyAccessFacts,
    status: Status,
    reasons: set[Reason],
) -> None:
    verdict = evaluate(acct, key_facts, NOW)
    assert verdict.status is status, verdict
    assert set(verdict.codes) == reasons
    assert all(f.detail for f in verdict.reasons)


def test_every_reason_has_a_row() -> None:
    """Here or in the access-shape table (grants, network, identity) of issue 15."""
    from tests.dependents.test_access_verdicts import ROWS

    covered = set().union(*(c[4] for c in [*CASES, *ROWS]))
    assert covered == set(Reason)


def test_reason_families_partition_the_statuses() -> None:
    for name, _, _, status, reasons in CASES:
        if status is Status.ACCESS_LOST:
            assert reasons & LOST_REASONS, name
        if status is Status.UNKNOWN:
            assert reasons <= UNKNOWN_REASONS, name


@pytest.mark.parametrize(
    "role",
    [
        KEY_VAULT_ADMINISTRATOR,
        KEY_VAULT_CRYPTO_OFFICER,
        KEY_VAULT_CRYPTO_USER,
        KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
        KEY_VAULT_CRYPTO_USER.upper(),
    ],
)
def test_roles_that_grant_key_use(role: str) -> None:
    access = IdentityAccess(role_definition_ids=frozenset({role}))
    assert evaluate(account(), facts(access=access), NOW).status is Status.OK


def test_access_policy_mode_with_full_permissions_is_ok() -> None:
    access = IdentityAccess(key_permissions=frozenset({"Get", "WrapKey", "UnwrapKey"}))
    assert evaluate(account(), facts(vault=POLICY_VAULT, access=access), NOW).status is Status.OK
    everything = IdentityAccess(key_permissions=frozenset({"all"}))
    assert (
        evaluate(account(), facts(vault=POLICY_VAULT, access=everything), NOW).status is Status.OK
    )


def test_unknown_mode_accepts_either_grant() -> None:
    unknown_mode = replace(HEALTHY_VAULT, rbac=None)
    policy = IdentityAccess(key_permissions=frozenset({"get", "wrapKey", "unwrapKey"}))
    assert evaluate(account(), facts(vault=unknown_mode, access=policy), NOW).status is Status.OK
    neither = evaluate(account(), facts(vault=unknown_mode, access=IdentityAccess()), NOW)
    assert neither.codes == (R.IDENTITY_LACKS_PERMISSION,)


def test_warning_window_is_configurable() -> None:
    soon = facts(key=key(version(NEW, exp=NOW + timedelta(days=10))))
    assert evaluate(account(), soon, NOW, timedelta(days=7)).status is Status.OK
    assert evaluate(account(), soon, NOW, timedelta(days=14)).status is Status.AT_RISK


def test_lost_wins_over_incomplete_facts() -> None:
    verdict = evaluate(account(), facts(key=KeyFacts(KeyPresence.DELETED), access=None), NOW)
    assert verdict.status is Status.ACCESS_LOST


def test_several_reasons_are_all_reported() -> None:
    broken = facts(
        vault=replace(HEALTHY_VAULT, soft_delete=False, purge_protection=False),
        key=key(version(NEW, exp=NOW + timedelta(days=1), key_size=4096)),
    )
    verdict = evaluate(account(), broken, NOW)
    assert verdict.status is Status.AT_RISK
    assert set(verdict.codes) == {
        R.EXPIRES_SOON,
        R.UNSUPPORTED_KEY_TYPE,
        R.SOFT_DELETE_OFF,
        R.PURGE_PROTECTION_OFF,
    }


def test_vault_uri_trailing_slash_and_port_do_not_count_as_another_vault() -> None:
    acct = account(key_vault_uri="HTTPS://Contoso-KV.vault.azure.net:443/")
    assert evaluate(acct, facts(), NOW).status is Status.OK
