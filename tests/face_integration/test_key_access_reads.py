"""The key-access reader's ARM reads: bounded per pass, fresh on the next one.

Built as the composition root builds it (real azure-mgmt clients against the emulator);
counted with the reader's own ``requests`` tally. Three accounts on one RBAC vault with a
custom role, and a fourth on another key of the vault, cost one vault GET, one deny-assignment
listing, one role-assignment listing per key and one role-definition GET per pass, not one of
each per account.
"""

from __future__ import annotations

import uuid

import pytest

from devtools.emulator.credential import AsyncEmulatorCredential
from shared.adapters.arm_face import account_from_arm
from shared.adapters.key_access import AzureKeyAccessReader
from shared.composition._clients import arm_clients, keyvault_adapter
from shared.dependents import Status, evaluate
from shared.settings import Settings
from tests.face_integration.conftest import SUBSCRIPTION, FaceLab
from tests.face_integration.test_face_grants import assign, custom_role

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


async def test_reads_are_shared_within_a_pass_and_fresh_across_passes(lab: FaceLab) -> None:
    vault = lab.vault(rbac=True)
    lab.key(vault)
    role = custom_role(lab, ["Microsoft.KeyVault/vaults/keys/*"])
    lab.key(vault, "cmk2")
    accounts = [lab.account(vault, grant=None) for _ in range(3)]
    accounts.append(lab.account(vault, "cmk2", grant=None))
    for account in accounts:
        assign(lab, vault.arm_id, account["identity"]["principalId"], role)
    settings = Settings.from_env({
        "KEYWARD_VAULT_ALLOWLIST": f"{vault.name}=https://{vault.url.split('://', 1)[1]}",
        "AzureWebJobsStorage": lab.azurite.connection_string,
        "KEYWARD_FACE_SUBSCRIPTIONS": SUBSCRIPTION,
        "KEYWARD_ARM_ENDPOINT": lab.emulator.url,
        "KEYWARD_CA_BUNDLE": lab.emulator.ca_path,
    })  # fmt: skip
    credential = AsyncEmulatorCredential(lab.operator)
    arm = arm_clients(settings, credential)
    keyvault = keyvault_adapter(settings, credential)
    reader = AzureKeyAccessReader(
        arm, settings.vault_allowlist, keyvault, subscriptions=[SUBSCRIPTION]
    )
    dependents = [account_from_arm(a) for a in accounts]
    try:
        reader.begin_pass()
        for dependent in dependents:
            assert dependent is not None
            facts = await reader.read(dependent)
            assert evaluate(dependent, facts, lab.now()).status is Status.OK
        assert reader.requests == {"vault": 1, "assignments": 2, "denies": 1, "definition": 1}

        # Next pass: a deny assignment made meanwhile is seen at once.
        name = str(uuid.uuid4())
        lab.arm.session.call(
            "PUT",
            f"/control/arm/deny-assignments/{name}",
            {
                "scope": vault.arm_id,
                "properties": {
                    "permissions": [{"dataActions": ["*"]}],
                    "principals": [
                        {"id": "00000000-0000-0000-0000-000000000000", "type": "SystemDefined"}
                    ],
                },
            },
        )
        try:
            reader.begin_pass()
            assert dependents[0] is not None
            facts = await reader.read(dependents[0])
            verdict = evaluate(dependents[0], facts, lab.now())
            assert verdict.status is Status.ACCESS_LOST
            assert [f.reason.value for f in verdict.reasons] == ["DENY_ASSIGNMENT_BLOCKS"]
            assert reader.requests["denies"] == 2
        finally:
            lab.arm.session.call("DELETE", f"/control/arm/deny-assignments/{name}")
    finally:
        await keyvault.close()
        await arm.close()
