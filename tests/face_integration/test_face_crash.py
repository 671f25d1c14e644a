"""A verdict change interrupted between its event and its tag is finished, not repeated.

The interruption is real: while the owner's own update of the account is still running in
ARM (a long-running PATCH), keyward's tag write is refused with 409 RequestConflict. The event
has gone out by then; the pending marker remembers it, so the next sweep writes the tag over
the owner's *new* tags and publishes nothing again.
"""

from __future__ import annotations

import asyncio

import pytest
from azure.keyvault.keys import KeyClient
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import Account

from devtools.emulator.arm_client import management_client_kwargs
from devtools.emulator.credential import EmulatorCredential
from shared.dependents import STATUS_TAG
from shared.events import AccessScope
from tests.face_integration.conftest import SUBSCRIPTION, FaceLab

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


async def test_tag_refused_mid_change_is_finished_by_the_next_sweep(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault)
    service = lab.service()
    await service.sweep()
    with KeyClient(vault.url, EmulatorCredential(lab.operator), **lab.emulator.sdk_kwargs) as keys:
        keys.update_key_properties("cmk", enabled=False)

    owner = CognitiveServicesManagementClient(
        EmulatorCredential(lab.operator),
        SUBSCRIPTION,
        **management_client_kwargs(lab.emulator.url, lab.emulator.ca_path),
    )
    lab.arm.set_lro(seconds=2.0)
    try:
        with owner:
            poller = owner.accounts.begin_update(
                lab.group, account["name"], Account(tags={"owner": "team-faces", STATUS_TAG: "OK"})
            )
            interrupted = await service.sweep()
            poller.result()
    finally:
        lab.arm.set_lro(seconds=0.0)

    assert interrupted.events == 1
    assert interrupted.conflicts == 1
    (record,) = (await service.status(50)).flags
    assert record["status"] == "OK"  # the change is pending, not recorded yet
    assert lab.event_types(account) == ["KeyAccessLost"]

    resumed = await service.sweep()
    await service.sweep()
    assert resumed.events == 0
    assert resumed.tag_writes == 1
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert lab.arm_account(account).tags == {"owner": "team-faces", STATUS_TAG: "ACCESS_LOST"}
    (record,) = (await service.status(50)).flags
    assert record["status"] == "ACCESS_LOST"


async def test_overlapping_evaluations_publish_once(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault)
    first, second = lab.service(), lab.service()  # two instances, one flag table
    await first.sweep()
    lab.client.delete_access_policy(vault.name, account["identity"]["principalId"])

    await asyncio.gather(
        first.sweep(),
        second.sweep(),
        first.reevaluate(AccessScope(vault.name)),
        second.reevaluate(AccessScope.everything()),
    )
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert lab.arm_writes(account) == 2
    assert lab.tag(account) == "ACCESS_LOST"
