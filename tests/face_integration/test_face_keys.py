"""Key reasons: deleted and purged, key_ops, size, another vault's kid, pinned version, time.

The emulator's clock is moved (forward only, by minutes) for nbf and exp; the service reads
"now" from the same clock.
"""

from __future__ import annotations

import time

import pytest
from azure.keyvault.keys import KeyClient

from devtools.emulator.credential import EmulatorCredential
from shared.adapters._key_facts import DELETION_SETTLE_SECONDS
from tests.face_integration.conftest import FaceLab, LabVault

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


def key_client(lab: FaceLab, vault: LabVault) -> KeyClient:
    return KeyClient(vault.url, EmulatorCredential(lab.operator), **lab.emulator.sdk_kwargs)


def reasons(lab: FaceLab, account: dict[str, object]) -> list[str]:
    return list(lab.events(account)[-1]["data"]["reasons"])


async def test_key_deleted_then_purged(lab: FaceLab) -> None:
    vault = lab.vault(purge=False)  # purge protection would refuse the purge
    lab.key(vault)
    account = lab.account(vault)
    service = lab.service()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAtRisk"]  # PURGE_PROTECTION_OFF

    with key_client(lab, vault) as keys:
        # result() returns before the deletion completes: for a few seconds the key is in
        # neither /keys nor /deletedkeys (the emulator's default lag, as in Key Vault), and
        # keyward must still read it as deleted, not missing (or, having seen it, purged).
        keys.begin_delete_key("cmk").result()
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAtRisk", "KeyAccessLost"]
    assert reasons(lab, account) == ["KEY_DELETED", "PURGE_PROTECTION_OFF"]
    assert lab.arm_writes(account) == 2

    with key_client(lab, vault) as keys:
        keys.purge_deleted_key("cmk")
    await service.sweep()
    assert lab.event_types(account) == ["KeyAtRisk", "KeyAccessLost"]  # same status
    (record,) = (await service.status(50)).flags
    assert [r[0] for r in record["reasons"]] == ["KEY_PURGED", "PURGE_PROTECTION_OFF"]


async def test_key_that_never_existed_waits_out_one_deletion_window(lab: FaceLab) -> None:
    """A key in neither /keys nor /deletedkeys may be a deletion still completing, so keyward
    looks again for DELETION_SETTLE_SECONDS before calling it missing; but once per absence:
    accounts sharing the key share the wait, and the next sweep does not wait again."""
    vault = lab.vault()
    accounts = [lab.account(vault, "never-made") for _ in range(3)]
    service = lab.service()
    started = time.monotonic()
    await service.sweep()
    first = time.monotonic() - started
    for account in accounts:
        assert lab.event_types(account) == ["KeyAccessLost"]
        assert reasons(lab, account) == ["KEY_MISSING"]
    started = time.monotonic()
    await service.sweep()
    second = time.monotonic() - started
    assert DELETION_SETTLE_SECONDS - 0.5 <= first < 2 * DELETION_SETTLE_SECONDS
    assert second < DELETION_SETTLE_SECONDS / 2
    assert [lab.event_types(a) for a in accounts] == [["KeyAccessLost"]] * 3


async def test_key_ops_without_unwrap(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault)
    service = lab.service()
    await service.sweep()

    with key_client(lab, vault) as keys:
        keys.update_key_properties("cmk", key_operations=["wrapKey", "encrypt", "decrypt"])
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert reasons(lab, account) == ["KEY_OPS_MISSING"]
    assert lab.arm_writes(account) == 2


@pytest.mark.parametrize("size", [3072, 4096])
async def test_key_size_the_service_does_not_take(lab: FaceLab, size: int) -> None:
    vault = lab.vault()
    lab.key(vault, kty="RSA", size=size)
    account = lab.account(vault)
    service = lab.service()
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAtRisk"]
    assert reasons(lab, account) == ["UNSUPPORTED_KEY_TYPE"]
    assert lab.arm_writes(account) == 1
    assert lab.tag(account) == "AT_RISK"


async def test_key_answered_by_another_vault_host(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault, vault_uri=lab.alias(vault) + "/")
    service = lab.service()
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAtRisk"]
    assert reasons(lab, account) == ["KEY_IN_OTHER_VAULT"]
    assert lab.arm_writes(account) == 1


async def test_pinned_old_version_then_disabled(lab: FaceLab) -> None:
    vault = lab.vault()
    old = lab.key(vault)
    lab.client.rotate_key(vault.name, "cmk")
    account = lab.account(vault, version=old)
    service = lab.service()  # re-pointing off
    await service.sweep()
    assert lab.event_types(account) == ["KeyAtRisk"]
    assert reasons(lab, account) == ["STALE_KEY_VERSION"]

    with key_client(lab, vault) as keys:
        keys.update_key_properties("cmk", old, enabled=False)
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAtRisk", "KeyAccessLost"]
    assert reasons(lab, account) == ["STALE_KEY_VERSION", "PINNED_VERSION_DISABLED"]
    assert lab.arm_writes(account) == 2


async def test_clock_moves_into_the_warning_window_past_exp_and_past_nbf(lab: FaceLab) -> None:
    vault = lab.vault()
    start = lab.now().timestamp()
    lab.key(vault, "later", exp=start + 30 * 86400 + 200)
    lab.key(vault, "soon", exp=start + 300)
    lab.key(vault, "future", nbf=start + 300)
    later = lab.account(vault, "later")
    soon = lab.account(vault, "soon")
    future = lab.account(vault, "future")
    service = lab.service()
    await service.sweep()
    assert lab.event_types(later) == []
    assert lab.event_types(soon) == ["KeyAtRisk"]
    assert reasons(lab, soon) == ["EXPIRES_SOON"]
    assert lab.event_types(future) == ["KeyAccessLost"]
    assert reasons(lab, future) == ["KEY_NOT_YET_VALID"]

    lab.client.advance_clock(600)
    await service.sweep()
    await service.sweep()
    assert lab.event_types(later) == ["KeyAtRisk"]
    assert reasons(lab, later) == ["EXPIRES_SOON"]
    assert lab.event_types(soon) == ["KeyAtRisk", "KeyAccessLost"]
    assert reasons(lab, soon) == ["KEY_EXPIRED"]
    assert lab.event_types(future) == ["KeyAccessLost", "KeyAccessRestored"]
    assert [lab.arm_writes(a) for a in (later, soon, future)] == [2, 2, 2]


async def test_pinned_version_the_vault_never_had(lab: FaceLab) -> None:
    vault = lab.vault()
    lab.key(vault)
    account = lab.account(vault, version="0" * 32)
    service = lab.service()
    await service.sweep()
    await service.sweep()
    assert lab.event_types(account) == ["KeyAccessLost"]
    assert reasons(lab, account) == ["PINNED_VERSION_MISSING"]
    assert lab.arm_writes(account) == 1
