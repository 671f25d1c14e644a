"""Generated grant pictures: what keyward cannot evaluate never makes a verdict ACCESS_LOST.

Random role assignments (direct, to groups, with conditions; built-in and custom roles with
wildcards and notDataActions; at the key, vault, subscription or a management group), random
deny assignments and random vault network rules. Properties:

* adding a grant keyward cannot evaluate (a group's or a conditioned assignment of a granting
  role) never turns a verdict into ACCESS_LOST;
* ACCESS_LOST always carries a reason that is positive evidence; UNKNOWN at least one reason
  naming what was not checked and none of ACCESS_LOST's;
* with a direct, unconditioned grant, no deny naming the identity and an open vault, the
  verdict is never ACCESS_LOST.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from shared.dependents import (
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    KEY_VAULT_READER,
    LOST_REASONS,
    UNKNOWN_REASONS,
    DenyAssignmentFacts,
    IdentityAccess,
    Permission,
    PrincipalRef,
    RbacFacts,
    RoleAssignmentFacts,
    RoleDefinitionFacts,
    Status,
    VaultFacts,
    VaultNetworkFacts,
    evaluate,
)
from tests.dependents.conftest import NOW, account, facts

ME = "b5cf119e-a5c2-42c7-802f-592e0efb169f"
SCOPES = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/keys/face-cmk",
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v",
    "/subscriptions/s",
    "/providers/Microsoft.Management/managementGroups/root",
)
PATTERNS = (
    "*",
    "*/read",
    "Microsoft.KeyVault/*",
    "Microsoft.KeyVault/vaults/keys/*",
    "Microsoft.KeyVault/vaults/keys/read",
    "Microsoft.KeyVault/vaults/keys/wrap/action",
    "Microsoft.KeyVault/vaults/keys/unwrap/action",
    "Microsoft.KeyVault/vaults/secrets/*",
)
CUSTOM = ("c0000000-0000-4000-8000-00000000000" + str(i) for i in range(4))
CUSTOM_IDS = tuple(CUSTOM)
ROLES = (KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER, KEY_VAULT_READER, *CUSTOM_IDS)

definitions = st.fixed_dictionaries(
    {
        guid: st.builds(
            lambda data, not_data, g=guid: RoleDefinitionFacts(
                g, permissions=(Permission(tuple(data), tuple(not_data)),)
            ),
            st.lists(st.sampled_from(PATTERNS), max_size=3),
            st.lists(st.sampled_from(PATTERNS), max_size=2),
        )
        for guid in CUSTOM_IDS[:3]  # the fourth stays unreadable
    }
)
assignments = st.builds(
    RoleAssignmentFacts,
    st.sampled_from(ROLES),
    st.sampled_from((ME, "other", "g1")),
    st.sampled_from(("ServicePrincipal", "Group")),
    st.sampled_from(SCOPES),
    st.sampled_from((None, None, "@Resource[x] StringEquals 'y'")),
)
principals = st.sampled_from(
    (
        PrincipalRef(ME),
        PrincipalRef("other"),
        PrincipalRef("g1", "Group"),
        PrincipalRef("00000000-0000-0000-0000-000000000000", "SystemDefined"),
    )
)
denies = st.builds(
    DenyAssignmentFacts,
    st.just("deny"),
    st.sampled_from(SCOPES),
    st.tuples(st.builds(Permission, st.lists(st.sampled_from(PATTERNS), max_size=2).map(tuple))),
    st.lists(principals, min_size=1, max_size=2).map(tuple),
    st.lists(principals, max_size=1).map(tuple),
    st.sampled_from((None, None, "x")),
)
networks = st.builds(
    VaultNetworkFacts,
    st.sampled_from((None, "Enabled", "Disabled")),
    st.sampled_from((None, "Allow", "Deny")),
    st.sampled_from((None, "None", "AzureServices")),
    st.integers(0, 2),
    st.integers(0, 1),
    st.lists(st.sampled_from(("Approved", "Pending", "Rejected")), max_size=2).map(tuple),
)


def _verdict(
    picture: RbacFacts, network: VaultNetworkFacts | None = None
) -> tuple[Status, set[str]]:
    vault = VaultFacts(exists=True, rbac=True, network=network)
    verdict = evaluate(account(), facts(vault=vault, access=IdentityAccess(rbac=picture)), NOW)
    return verdict.status, set(verdict.codes)


@given(
    st.lists(assignments, max_size=5),
    definitions,
    st.lists(denies, max_size=2),
    networks,
    st.sampled_from(("Group", "condition")),
)
def test_an_unevaluable_grant_never_makes_it_lost(
    given_assignments: list[RoleAssignmentFacts],
    given_definitions: dict[str, RoleDefinitionFacts],
    given_denies: list[DenyAssignmentFacts],
    network: VaultNetworkFacts,
    shape: str,
) -> None:
    picture = RbacFacts(tuple(given_assignments), given_definitions, tuple(given_denies))
    before, _ = _verdict(picture, network)
    extra = RoleAssignmentFacts(
        KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
        "g2" if shape == "Group" else ME,
        "Group" if shape == "Group" else "ServicePrincipal",
        SCOPES[1],
        "x" if shape == "condition" else None,
    )
    more = replace(picture, assignments=(*given_assignments, extra))
    after, codes = _verdict(more, network)
    if before is not Status.ACCESS_LOST:
        assert after is not Status.ACCESS_LOST, codes
    if after is Status.ACCESS_LOST:
        assert codes & LOST_REASONS
    if after is Status.UNKNOWN:  # AT_RISK findings may ride along, LOST ones never
        assert codes & UNKNOWN_REASONS
        assert not codes & LOST_REASONS


@given(st.lists(assignments, max_size=5), definitions, st.lists(denies, max_size=2))
def test_a_direct_grant_without_a_deny_on_an_open_vault_is_never_lost(
    given_assignments: list[RoleAssignmentFacts],
    given_definitions: dict[str, RoleDefinitionFacts],
    given_denies: list[DenyAssignmentFacts],
) -> None:
    direct = RoleAssignmentFacts(KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER, ME, scope=SCOPES[2])
    harmless = tuple(
        d
        for d in given_denies
        if not {p.id for p in d.principals} & {ME, "00000000-0000-0000-0000-000000000000"}
    )
    picture = RbacFacts((*given_assignments, direct), given_definitions, harmless)
    status, codes = _verdict(picture, VaultNetworkFacts(public_network_access="Enabled"))
    assert status is not Status.ACCESS_LOST, codes
