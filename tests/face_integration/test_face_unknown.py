"""Throttled or unreachable vaults: UNKNOWN, never OK or LOST, and no flag flapping."""

from __future__ import annotations

import pytest
from azure.keyvault.keys import KeyClient

from devtools.emulator.credential import EmulatorCredential
from tests.face_integration.conftest import FaceLab

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


async def test_throttled_vault_is_unknown_and_keeps_the_flag(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault)
    service = lab.service()
    await service.sweep()

    lab.client.set_throttle(vault.name, budget=1, window_seconds=60)
    try:
        summary = await service.sweep()
        await service.sweep()
    finally:
        lab.client.set_throttle(vault.name, enabled=False)
    assert summary.statuses == {"UNKNOWN": 1}
    (record,) = (await service.status(50)).flags
    assert record["status"] == "OK"
    assert record["unknown_since"] is not None
    assert [r[0] for r in record["unknown_reasons"]] == ["THROTTLED"]

    await service.sweep()
    (record,) = (await service.status(50)).flags
    assert record["unknown_since"] is None
    assert lab.events(account) == []
    assert lab.arm_writes(account) == 1


async def test_unreachable_vault_does_not_flap_a_lost_flag(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault)
    service = lab.service()
    with KeyClient(vault.url, EmulatorCredential(lab.operator), **lab.emulator.sdk_kwargs) as keys:
        keys.update_key_properties("cmk", enabled=False)
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost"]

    for faults in ({"error_rate": 1.0, "error_status": 503}, {"drop_rate": 1.0}):
        lab.client.set_faults(vault.name, **faults)
        try:
            summary = await service.sweep()
        finally:
            lab.client.set_faults(vault.name, error_rate=0.0, drop_rate=0.0)
        assert summary.statuses == {"UNKNOWN": 1}, faults
        (record,) = (await service.status(50)).flags
        assert [r[0] for r in record["unknown_reasons"]] == ["VAULT_UNREACHABLE"]
        assert record["status"] == "ACCESS_LOST"

    summary = await service.sweep()
    assert summary.statuses == {"ACCESS_LOST": 1}
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert lab.arm_writes(account) == 1


async def test_vault_in_an_unwatched_subscription_is_unknown_not_gone(lab: FaceLab) -> None:
    vault = lab.vault(subscription_id="11111111-2222-3333-4444-555555555555")
    lab.key(vault)
    account = lab.account(vault)
    service = lab.service()

    first = await service.sweep()
    second = await service.sweep()
    assert first.statuses == second.statuses == {"UNKNOWN": 1}
    (record,) = (await service.status(50)).flags
    assert [r[0] for r in record["unknown_reasons"]] == ["FACTS_INCOMPLETE"]
    assert lab.events(account) == []
    assert lab.arm_writes(account) == 0
