"""Verdicts for every grant shape, network shape and identity shape (issue 15).

Each row starts from the healthy baseline of ``conftest`` and changes only the RBAC picture,
the vault's network rules or the account's identity, with its expected status and reasons.
The property below the tables: no row whose expected answer is OK, AT_RISK or UNKNOWN ever
yields ACCESS_LOST, and every ACCESS_LOST row carries a reason that is positive evidence.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.dependents import (
    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    KEY_VAULT_CRYPTO_USER,
    KEY_VAULT_READER,
    LOST_REASONS,
    UNKNOWN_REASONS,
    AccountIdentity,
    DenyAssignmentFacts,
    DependentResource,
    IdentityAccess,
    KeyAccessFacts,
    Permission,
    PrincipalRef,
    RbacFacts,
    Reason,
    RoleAssignmentFacts,
    RoleDefinitionFacts,
    Status,
    VaultFacts,
    VaultNetworkFacts,
    VerdictRules,
    action_matches,
    evaluate,
    identity_from_arm,
)
from tests.dependents.conftest import NOW, account, facts

R = Reason
ME = "b5cf119e-a5c2-42c7-802f-592e0efb169f"
OTHER = "7d3c6b1e-0000-4000-8000-000000000001"
GROUP_ID = "9a1b2c3d-0000-4000-8000-0000000000aa"
SUB = "/subscriptions/0f5a3c2e-1111-4222-8333-944455556666"
VAULT = f"{SUB}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/contoso-kv"
MG = "/providers/Microsoft.Management/managementGroups/contoso-root"
CUSTOM = "5b3a8f1e-1234-4abc-9def-00000000c0de"
KEYS_ALL = "Microsoft.KeyVault/vaults/keys/*"
WRAP = "Microsoft.KeyVault/vaults/keys/wrap/action"
UNWRAP = "Microsoft.KeyVault/vaults/keys/unwrap/action"
READ = "Microsoft.KeyVault/vaults/keys/read"
RBAC_VAULT = VaultFacts(exists=True, soft_delete=True, purge_protection=True, rbac=True)


def assign(
    role: str = KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER,
    principal: str = ME,
    *,
    kind: str = "ServicePrincipal",
    scope: str = VAULT,
    condition: str | None = None,
) -> RoleAssignmentFacts:
    return RoleAssignmentFacts(
        f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}",
        principal,
        kind,
        scope,
        condition,
    )


def custom(*data_actions: str, not_data_actions: tuple[str, ...] = ()) -> RoleDefinitionFacts:
    return RoleDefinitionFacts(
        CUSTOM, "Contoso CMK", (Permission(tuple(data_actions), not_data_actions),)
    )


def deny(
    *principals: PrincipalRef,
    excluded: tuple[PrincipalRef, ...] = (),
    actions: tuple[str, ...] = (KEYS_ALL,),
    condition: str | None = None,
) -> DenyAssignmentFacts:
    return DenyAssignmentFacts(
        "managed-app-deny", VAULT, (Permission(actions),), principals, excluded, condition
    )


def rbac(
    *assignments: RoleAssignmentFacts,
    definitions: dict[str, RoleDefinitionFacts] | None = None,
    denies: tuple[DenyAssignmentFacts, ...] | None = (),
) -> KeyAccessFacts:
    picture = RbacFacts(tuple(assignments), definitions or {}, denies)
    return facts(vault=RBAC_VAULT, access=IdentityAccess(rbac=picture))


def network(**fields: object) -> KeyAccessFacts:
    net = VaultNetworkFacts(**fields)  # type: ignore[arg-type]
    return facts(vault=replace(RBAC_VAULT, network=net))


Row = tuple[str, DependentResource, KeyAccessFacts, Status, set[Reason]]
GRANT_ROWS: list[Row] = [
    ("direct built-in at vault", account(), rbac(assign()), Status.OK, set()),
    (
        "direct built-in at key",
        account(),
        rbac(assign(scope=f"{VAULT}/keys/face-cmk")),
        Status.OK,
        set(),
    ),
    ("direct at subscription", account(), rbac(assign(scope=SUB)), Status.OK, set()),
    ("direct at management group", account(), rbac(assign(scope=MG)), Status.OK, set()),
    ("crypto user built-in", account(), rbac(assign(KEY_VAULT_CRYPTO_USER)), Status.OK, set()),
    ("no assignment at all", account(), rbac(), Status.ACCESS_LOST, {R.IDENTITY_LACKS_ROLE}),
    (
        "only another principal holds the role",
        account(),
        rbac(assign(principal=OTHER)),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_ROLE},
    ),
    (
        "reader only",
        account(),
        rbac(assign(KEY_VAULT_READER)),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_ROLE},
    ),
    (
        "group holds the role",
        account(),
        rbac(assign(principal=GROUP_ID, kind="Group")),
        Status.UNKNOWN,
        {R.GROUP_MEMBERSHIP_UNCHECKED},
    ),
    (
        "group at management group",
        account(),
        rbac(assign(principal=GROUP_ID, kind="Group", scope=MG)),
        Status.UNKNOWN,
        {R.GROUP_MEMBERSHIP_UNCHECKED},
    ),
    (
        "group holds only reader",
        account(),
        rbac(assign(KEY_VAULT_READER, GROUP_ID, kind="Group")),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_ROLE},
    ),
    (
        "direct grant beside a group grant",
        account(),
        rbac(assign(), assign(principal=GROUP_ID, kind="Group")),
        Status.OK,
        set(),
    ),
    (
        "custom role with exact actions",
        account(),
        rbac(assign(CUSTOM), definitions={CUSTOM: custom(READ, WRAP, UNWRAP)}),
        Status.OK,
        set(),
    ),
    (
        "custom role with keys wildcard",
        account(),
        rbac(assign(CUSTOM), definitions={CUSTOM: custom(KEYS_ALL)}),
        Status.OK,
        set(),
    ),
    (
        "custom role with global wildcard",
        account(),
        rbac(assign(CUSTOM), definitions={CUSTOM: custom("*")}),
        Status.OK,
        set(),
    ),
    (
        "custom role with */read only",
        account(),
        rbac(assign(CUSTOM), definitions={CUSTOM: custom("*/read")}),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_ROLE},
    ),
    (
        "custom role whose notDataActions remove unwrap",
        account(),
        rbac(assign(CUSTOM), definitions={CUSTOM: custom(KEYS_ALL, not_data_actions=(UNWRAP,))}),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_ROLE},
    ),
    (
        "custom role whose notDataActions wildcard another area",
        account(),
        rbac(
            assign(CUSTOM),
            definitions={CUSTOM: custom("Microsoft.KeyVault/*", not_data_actions=("*/secrets/*",))},
        ),
        Status.OK,
        set(),
    ),
    (
        "custom role definition unreadable",
        account(),
        rbac(assign(CUSTOM)),
        Status.UNKNOWN,
        {R.ROLE_DEFINITION_UNREAD},
    ),
    (
        "built-in definition read from ARM wins over the published list",
        account(),
        rbac(
            assign(),
            definitions={
                KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER: RoleDefinitionFacts(
                    KEY_VAULT_CRYPTO_SERVICE_ENCRYPTION_USER, "changed", (Permission((READ,)),)
                )
            },
        ),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_ROLE},
    ),
    (
        "assignment with a condition",
        account(),
        rbac(assign(condition="@Resource[...] StringEquals 'x'")),
        Status.UNKNOWN,
        {R.CONDITION_UNEVALUATED},
    ),
    (
        "conditioned assignment beside an unconditioned one",
        account(),
        rbac(assign(condition="x"), assign(KEY_VAULT_CRYPTO_USER)),
        Status.OK,
        set(),
    ),
    (
        "deny assignment naming the principal",
        account(),
        rbac(assign(), denies=(deny(PrincipalRef(ME)),)),
        Status.ACCESS_LOST,
        {R.DENY_ASSIGNMENT_BLOCKS},
    ),
    (
        "deny assignment for everyone",
        account(),
        rbac(
            assign(),
            denies=(deny(PrincipalRef("00000000-0000-0000-0000-000000000000", "SystemDefined")),),
        ),
        Status.ACCESS_LOST,
        {R.DENY_ASSIGNMENT_BLOCKS},
    ),
    (
        "deny for everyone excluding the principal",
        account(),
        rbac(
            assign(),
            denies=(
                deny(
                    PrincipalRef("00000000-0000-0000-0000-000000000000", "SystemDefined"),
                    excluded=(PrincipalRef(ME),),
                ),
            ),
        ),
        Status.OK,
        set(),
    ),
    (
        "deny for everyone excluding a group",
        account(),
        rbac(
            assign(),
            denies=(
                deny(
                    PrincipalRef("00000000-0000-0000-0000-000000000000", "SystemDefined"),
                    excluded=(PrincipalRef(GROUP_ID, "Group"),),
                ),
            ),
        ),
        Status.UNKNOWN,
        {R.DENY_ASSIGNMENT_UNEVALUATED},
    ),
    (
        "deny naming a group",
        account(),
        rbac(assign(), denies=(deny(PrincipalRef(GROUP_ID, "Group")),)),
        Status.UNKNOWN,
        {R.DENY_ASSIGNMENT_UNEVALUATED},
    ),
    (
        "deny with a condition",
        account(),
        rbac(assign(), denies=(deny(PrincipalRef(ME), condition="x"),)),
        Status.UNKNOWN,
        {R.DENY_ASSIGNMENT_UNEVALUATED},
    ),
    (
        "deny of other actions only",
        account(),
        rbac(assign(), denies=(deny(PrincipalRef(ME), actions=("*/secrets/*",)),)),
        Status.OK,
        set(),
    ),
    (
        "deny of another principal",
        account(),
        rbac(assign(), denies=(deny(PrincipalRef(OTHER)),)),
        Status.OK,
        set(),
    ),
    (
        "deny assignments could not be listed",
        account(),
        rbac(assign(), denies=None),
        Status.UNKNOWN,
        {R.DENY_ASSIGNMENT_UNEVALUATED},
    ),
    (
        "assignments could not be listed",
        account(),
        facts(vault=RBAC_VAULT, access=IdentityAccess(rbac=RbacFacts(None))),
        Status.UNKNOWN,
        {R.FACTS_INCOMPLETE},
    ),
]

NETWORK_ROWS: list[Row] = [
    (
        "public enabled, no acls",
        account(),
        network(public_network_access="Enabled"),
        Status.OK,
        set(),
    ),
    (
        "default allow",
        account(),
        network(public_network_access="Enabled", default_action="Allow", bypass="None"),
        Status.OK,
        set(),
    ),
    (
        "public disabled, no bypass",
        account(),
        network(public_network_access="Disabled", default_action="Allow", bypass="None"),
        Status.ACCESS_LOST,
        {R.VAULT_FIREWALL_BLOCKS_SERVICE},
    ),
    (
        "default deny, no bypass, no rules",
        account(),
        network(default_action="Deny", bypass="None"),
        Status.ACCESS_LOST,
        {R.VAULT_FIREWALL_BLOCKS_SERVICE},
    ),
    (
        "default deny with AzureServices bypass",
        account(),
        network(default_action="Deny", bypass="AzureServices"),
        Status.AT_RISK,
        {R.VAULT_ACCESS_VIA_TRUSTED_SERVICE},
    ),
    (
        "public disabled with AzureServices bypass",
        account(),
        network(public_network_access="Disabled", default_action="Deny", bypass="AzureServices"),
        Status.AT_RISK,
        {R.VAULT_ACCESS_VIA_TRUSTED_SERVICE},
    ),
    (
        "private endpoint approved, no bypass",
        account(),
        network(public_network_access="Disabled", bypass="None", private_endpoints=("Approved",)),
        Status.UNKNOWN,
        {R.PRIVATE_ENDPOINT_UNEVALUATED},
    ),
    (
        "private endpoint pending, no bypass",
        account(),
        network(public_network_access="Disabled", bypass="None", private_endpoints=("Pending",)),
        Status.ACCESS_LOST,
        {R.VAULT_FIREWALL_BLOCKS_SERVICE},
    ),
    (
        "default deny with ip rules, no bypass",
        account(),
        network(default_action="Deny", bypass="None", ip_rules=2),
        Status.UNKNOWN,
        {R.NETWORK_RULES_UNEVALUATED},
    ),
    (
        "default deny with vnet rules, no bypass",
        account(),
        network(default_action="Deny", bypass="None", virtual_network_rules=1),
        Status.UNKNOWN,
        {R.NETWORK_RULES_UNEVALUATED},
    ),
]

UAI_CLIENT = "6f0e2d1c-0000-4000-8000-0000000000c1"
UAI_PRINCIPAL = "1e2d3c4b-0000-4000-8000-0000000000p1"
IDENTITY_ROWS: list[Row] = [
    (
        "user-assigned identity holds the role",
        account(
            identity=AccountIdentity(
                principal_id=ME, client_id=UAI_CLIENT, user_assigned_principal_id=UAI_PRINCIPAL
            )
        ),
        rbac(assign(principal=UAI_PRINCIPAL)),
        Status.OK,
        set(),
    ),
    (
        "only the system identity holds the role, the key names the user-assigned one",
        account(
            identity=AccountIdentity(
                principal_id=ME, client_id=UAI_CLIENT, user_assigned_principal_id=UAI_PRINCIPAL
            )
        ),
        rbac(assign(principal=ME)),
        Status.ACCESS_LOST,
        {R.IDENTITY_LACKS_ROLE},
    ),
    (
        "client id not among the account's identities",
        account(
            identity=AccountIdentity(
                principal_id=ME, client_id=UAI_CLIENT, user_assigned=(("other", OTHER),)
            )
        ),
        rbac(assign()),
        Status.UNKNOWN,
        {R.USER_ASSIGNED_IDENTITY_UNRESOLVED},
    ),
    (
        "user-assigned principal id unknown",
        account(identity=AccountIdentity(client_id=UAI_CLIENT)),
        rbac(assign()),
        Status.UNKNOWN,
        {R.USER_ASSIGNED_IDENTITY_UNRESOLVED},
    ),
    (
        "only user-assigned identities, none named",
        account(identity=AccountIdentity(user_assigned=((UAI_CLIENT, UAI_PRINCIPAL),))),
        rbac(assign(principal=UAI_PRINCIPAL)),
        Status.UNKNOWN,
        {R.IDENTITY_CLIENT_ID_MISSING},
    ),
]

ROWS = GRANT_ROWS + NETWORK_ROWS + IDENTITY_ROWS


@pytest.mark.parametrize(
    ("name", "acct", "given", "status", "reasons"), ROWS, ids=[r[0] for r in ROWS]
)
def test_access_shapes(
    name: str, acct: DependentResource, given: KeyAccessFacts, status: Status, reasons: set[Reason]
) -> None:
    verdict = evaluate(acct, given, NOW)
    assert verdict.status is status, verdict
    assert set(verdict.codes) == reasons, verdict
    assert all(f.detail for f in verdict.reasons)


def test_no_ok_or_unknown_row_is_ever_access_lost() -> None:
    """The property the issue asks for, over every row and every trusted/untrusted kind."""
    checked = 0
    for name, acct, given, status, _ in ROWS:
        for rules in (VerdictRules(), VerdictRules(trusted_service=True)):
            verdict = evaluate(acct, given, NOW, rules=rules)
            if status is not Status.ACCESS_LOST:
                assert verdict.status is not Status.ACCESS_LOST, name
                checked += 1
            else:
                assert set(verdict.codes) & LOST_REASONS, name
            if verdict.status is Status.UNKNOWN:
                assert set(verdict.codes) <= UNKNOWN_REASONS, name
    assert checked > 20


def test_uncertain_grant_combined_with_each_row_never_turns_lost() -> None:
    """Adding a grant keyward cannot evaluate (group, condition) to a row never makes it
    worse than the row itself: OK/UNKNOWN rows stay out of ACCESS_LOST."""
    extras = (
        assign(principal=GROUP_ID, kind="Group"),
        assign(condition="x"),
    )
    for name, acct, given, status, _ in GRANT_ROWS:
        access = given.access
        if access is None or access.rbac is None or access.rbac.assignments is None:
            continue
        for extra in extras:
            more = replace(access.rbac, assignments=(*access.rbac.assignments, extra))
            verdict = evaluate(acct, replace(given, access=IdentityAccess(rbac=more)), NOW)
            if status is not Status.ACCESS_LOST:
                assert verdict.status is not Status.ACCESS_LOST, name


def test_untrusted_kind_is_blocked_despite_bypass() -> None:
    given = network(default_action="Deny", bypass="AzureServices")
    verdict = evaluate(account(), given, NOW, rules=VerdictRules(trusted_service=False))
    assert verdict.codes == (R.VAULT_FIREWALL_BLOCKS_SERVICE,)


def test_firewall_in_access_policy_mode_counts_too() -> None:
    net = VaultNetworkFacts(public_network_access="Disabled", bypass="None")
    policy = IdentityAccess(key_permissions=frozenset({"get", "wrapKey", "unwrapKey"}))
    vault = replace(RBAC_VAULT, rbac=False, network=net)
    verdict = evaluate(account(), facts(vault=vault, access=policy), NOW)
    assert verdict.codes == (R.VAULT_FIREWALL_BLOCKS_SERVICE,)


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("*", READ, True),
        (KEYS_ALL, WRAP, True),
        ("microsoft.keyvault/VAULTS/keys/*", WRAP, True),
        ("*/read", READ, True),
        ("*/read", WRAP, False),
        ("Microsoft.KeyVault/vaults/*", UNWRAP, True),
        ("Microsoft.KeyVault/vaults/secrets/*", UNWRAP, False),
        ("Microsoft.KeyVault/vaults/keys/wrap/action", UNWRAP, False),
        ("Microsoft.KeyVault/vaults/*/read", READ, True),
    ],
)
def test_action_wildcards(pattern: str, action: str, matches: bool) -> None:
    assert action_matches(pattern, action) is matches


def test_identity_from_arm_maps_client_to_principal() -> None:
    identity = {
        "type": "SystemAssigned, UserAssigned",
        "principalId": ME,
        "userAssignedIdentities": {
            "/subscriptions/x/resourcegroups/rg/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/cmk": {
                "principalId": UAI_PRINCIPAL,
                "clientId": UAI_CLIENT.upper(),
            }
        },
    }
    parsed = identity_from_arm(identity, {"identityClientId": UAI_CLIENT})
    assert parsed.effective_principal_id == UAI_PRINCIPAL
    assert parsed.type == "SystemAssigned, UserAssigned"
    system = identity_from_arm(identity, {})
    assert system.effective_principal_id == ME
    missing = identity_from_arm(identity, {"identityClientId": "nope"})
    assert missing.effective_principal_id is None
    assert identity_from_arm(None, None) == AccountIdentity()


def test_identity_from_arm_storage_names_the_identity_by_resource_id() -> None:
    uai = (
        "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
        "userAssignedIdentities/cmk"
    )
    identity = {
        "userAssignedIdentities": {uai: {"principalId": UAI_PRINCIPAL, "clientId": UAI_CLIENT}}
    }
    parsed = identity_from_arm(identity, None, user_assigned_resource_id=uai.upper())
    assert parsed.effective_principal_id == UAI_PRINCIPAL
    unknown = identity_from_arm(identity, None, user_assigned_resource_id=uai + "-gone")
    assert unknown.effective_principal_id is None
    verdict = evaluate(account(identity=unknown), rbac(assign()), NOW)
    assert verdict.codes == (R.USER_ASSIGNED_IDENTITY_UNRESOLVED,)
