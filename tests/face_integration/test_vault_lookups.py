"""The key-access reader's vault look-ups: bounded ARM listings, and "gone" only on evidence.

Built as the composition root builds it (real azure-mgmt and azure-keyvault clients against
the emulator); ARM requests are counted by the emulator per route (``GET
Microsoft.KeyVault/vaults`` is ``vaults.list_by_subscription``), Key Vault requests by the
emulator's per-vault counters. The reader's clock is injected so "the next sweep, five
minutes later" is a number, not a wait.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from devtools.emulator.arm_inventory_client import InventoryControl
from devtools.emulator.credential import AsyncEmulatorCredential
from shared.adapters.arm_face import account_from_arm
from shared.adapters.key_access import MISS_TTL_SECONDS, AzureKeyAccessReader, _VaultLocation
from shared.composition._clients import arm_clients, keyvault_adapter
from shared.dependents import DependentResource, KeyAccessFacts, Status, Verdict, evaluate
from shared.settings import Settings
from tests.face_integration.conftest import SUBSCRIPTION, FaceLab, LabVault

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

LIST_VAULTS = "GET Microsoft.KeyVault/vaults"
GET_VAULT = "GET Microsoft.KeyVault/vaults/{name}"
#: The default ``KEYWARD_DEPENDENTS_SWEEP_SCHEDULE`` runs every 5 minutes.
SWEEP_INTERVAL = 300.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def reader_for(
    lab: FaceLab, allowed: Sequence[LabVault], watched: Sequence[str], clock: Clock
) -> AsyncIterator[AzureKeyAccessReader]:
    """The reader over ``allowed`` (the allow-list) searching ``watched`` subscriptions."""
    entries = [f"{v.name}=https://{v.url.split('://', 1)[1]}" for v in allowed]
    settings = Settings.from_env({
        "KEYWARD_VAULT_ALLOWLIST": ",".join(entries),
        "AzureWebJobsStorage": lab.azurite.connection_string,
        "KEYWARD_FACE_SUBSCRIPTIONS": ",".join(watched),
        "KEYWARD_ARM_ENDPOINT": lab.emulator.url,
        "KEYWARD_CA_BUNDLE": lab.emulator.ca_path,
    })  # fmt: skip
    credential = AsyncEmulatorCredential(lab.operator)
    arm = arm_clients(settings, credential)
    keyvault = keyvault_adapter(settings, credential)
    try:
        yield AzureKeyAccessReader(
            arm, settings.vault_allowlist, keyvault, subscriptions=watched, clock=clock
        )
    finally:
        await keyvault.close()
        await arm.close()


async def one_pass(
    reader: AzureKeyAccessReader, dependents: Sequence[DependentResource]
) -> list[KeyAccessFacts]:
    """A pass as the service runs it: ``begin_pass``, then every account concurrently."""
    reader.begin_pass()
    return list(await asyncio.gather(*(reader.read(d) for d in dependents)))


def dependent(account: dict[str, Any]) -> DependentResource:
    found = account_from_arm(account)
    assert found is not None
    return found


def judged(lab: FaceLab, dependents: Sequence[DependentResource], facts: Any) -> list[Verdict]:
    return [evaluate(d, f, lab.now()) for d, f in zip(dependents, facts, strict=True)]


async def test_unlocatable_vaults_cost_one_listing_per_subscription_per_pass_at_most(
    lab: FaceLab,
) -> None:
    """N=8 accounts on M=4 vaults no watched subscription lists (3 allow-listed, 1 not), S=3
    watched subscriptions, two passes a sweep apart: one listing per subscription in all
    (before: a listing round per allow-listed-or-not vault on every pass, 2*M*S = 24)."""
    elsewhere = str(uuid.uuid4())  # a subscription keyward does not watch
    watched = [SUBSCRIPTION, str(uuid.uuid4()), str(uuid.uuid4())]
    vaults = [lab.vault(subscription_id=elsewhere) for _ in range(4)]
    for vault in vaults:
        lab.key(vault)
    allowed, refused = vaults[:3], vaults[3]
    dependents = [dependent(lab.account(v)) for v in vaults for _ in range(2)]
    control = InventoryControl(lab.emulator.url, lab.emulator.ca_path)
    clock = Clock()
    async with reader_for(lab, allowed, watched, clock) as reader:
        lab.client.reset_counters(refused.name)
        control.reset_requests()
        facts = await one_pass(reader, dependents)
        first = judged(lab, dependents, facts)
        assert control.requests() == {LIST_VAULTS: len(watched)}

        clock.now += SWEEP_INTERVAL
        second = judged(lab, dependents, await one_pass(reader, dependents))
        assert control.requests() == {LIST_VAULTS: len(watched)}, "misses outlive a sweep"

        # Long after, the misses are looked for again: one round for all of them.
        clock.now += MISS_TTL_SECONDS
        await one_pass(reader, dependents)
        assert control.requests() == {LIST_VAULTS: 2 * len(watched)}

    assert lab.client.counters(refused.name)["vault"]["ops"] == {}, "no data-plane call"
    for verdicts in (first, second):
        statuses = [v.status for v in verdicts]
        assert Status.ACCESS_LOST not in statuses
        assert statuses[6:] == [Status.UNKNOWN, Status.UNKNOWN]  # the vault off the list
    # The allow-list's own refusal is the reason given (here: an emulator host with a port).
    assert all(f.vault is None and f.key is None for f in facts[6:])
    assert all(refused.url.split("://", 1)[1] in f.detail for f in facts[6:])


async def test_a_transient_data_plane_failure_on_an_unlisted_vault_is_unknown(
    lab: FaceLab,
) -> None:
    """A vault ARM does not list plus a 503 (or a dropped connection) is not "gone"."""
    vault = lab.vault(subscription_id=str(uuid.uuid4()))
    lab.key(vault)
    dependents = [dependent(lab.account(vault))]
    async with reader_for(lab, [vault], [SUBSCRIPTION], Clock()) as reader:
        for faults in ({"error_rate": 1.0, "error_status": 503}, {"drop_rate": 1.0}):
            lab.client.set_faults(vault.name, **faults)
            try:
                (verdict,) = judged(lab, dependents, await one_pass(reader, dependents))
            finally:
                lab.client.set_faults(vault.name, error_rate=0.0, drop_rate=0.0)
            assert verdict.status is Status.UNKNOWN, faults
            assert [f.reason.value for f in verdict.reasons] == ["VAULT_UNREACHABLE"]


async def test_a_transient_failure_looking_among_deleted_keys_is_unknown(lab: FaceLab) -> None:
    """The key is absent from ``/keys``; the look in ``/deletedkeys`` fails with a 503: that
    is no evidence the key is gone (before: KEY_MISSING, ACCESS_LOST)."""
    vault = lab.vault()
    lab.key(vault)
    dependents = [dependent(lab.account(vault, "ghost"))]
    async with reader_for(lab, [vault], [SUBSCRIPTION], Clock()) as reader:
        # ``ops`` matches a path's last segment: /deletedkeys/ghost, not /keys/ghost/versions.
        lab.client.set_faults(vault.name, error_rate=1.0, error_status=503, ops="ghost")
        try:
            (verdict,) = judged(lab, dependents, await one_pass(reader, dependents))
        finally:
            lab.client.set_faults(vault.name, error_rate=0.0, ops="")
        assert verdict.status is Status.UNKNOWN
        assert [f.reason.value for f in verdict.reasons] == ["VAULT_UNREACHABLE"]


async def test_a_stale_vault_location_is_looked_up_again_before_gone(lab: FaceLab) -> None:
    """A 404 for the vault id keyward cached (the vault moved to another resource group) is
    looked up again: OK, not VAULT_GONE. The emulator has no ``moveResources``, so the
    reader is given the location it would hold from before the move. A vault really
    deleted is VAULT_GONE, on that pass and the next."""
    vault = lab.vault()
    lab.key(vault)
    dependents = [dependent(lab.account(vault)) for _ in range(2)]
    control = InventoryControl(lab.emulator.url, lab.emulator.ca_path)
    clock = Clock()
    async with reader_for(lab, [vault], [SUBSCRIPTION], clock) as reader:
        assert [v.status for v in judged(lab, dependents, await one_pass(reader, dependents))] == [
            Status.OK,
            Status.OK,
        ]
        stale = _VaultLocation(
            SUBSCRIPTION,
            "old-group",
            vault.name,
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/old-group"
            f"/providers/Microsoft.KeyVault/vaults/{vault.name}",
        )
        reader._locations = dict.fromkeys(reader._locations, stale)
        reader._by_name = dict.fromkeys(reader._by_name, stale)
        control.reset_requests()
        clock.now += SWEEP_INTERVAL
        verdicts = judged(lab, dependents, await one_pass(reader, dependents))
        assert [v.status for v in verdicts] == [Status.OK, Status.OK]
        assert control.requests() == {LIST_VAULTS: 1, GET_VAULT: 2}  # the stale id, the new

        with lab.keyvault_mgmt() as client:
            client.vaults.delete(vault.arm_id.split("/")[4], vault.name)
        for _ in range(2):
            clock.now += SWEEP_INTERVAL
            verdicts = judged(lab, dependents, await one_pass(reader, dependents))
            assert [[f.reason.value for f in v.reasons] for v in verdicts] == [["VAULT_GONE"]] * 2
            assert {v.status for v in verdicts} == {Status.ACCESS_LOST}


async def test_accounts_on_one_key_share_its_data_plane_reads_within_a_pass(
    lab: FaceLab,
) -> None:
    vault = lab.vault()
    lab.key(vault)
    dependents = [dependent(lab.account(vault)) for _ in range(3)]
    async with reader_for(lab, [vault], [SUBSCRIPTION], Clock()) as reader:
        lab.client.reset_counters(vault.name)
        for _ in range(2):
            verdicts = judged(lab, dependents, await one_pass(reader, dependents))
            assert {v.status for v in verdicts} == {Status.OK}
        key = lab.client.counters(vault.name)["keys"]["cmk"]
        assert key["ops"] == {"listversions": 2, "get": 2}  # one of each per pass, not per account
