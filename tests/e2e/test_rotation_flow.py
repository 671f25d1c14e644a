"""End to end: Key Vault rotates a key, the emulator's Event Grid delivers the event over
HTTP to the local Functions host, ``on_key_vault_event`` plans the job, ``rewrap_worker``
drains the queue, and every DEK ends at the new version. The app authenticates with its
production credential (DefaultAzureCredential against a managed identity endpoint)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from devtools.emulator.eventgrid_client import EventGridControl
from devtools.keyvault_sync import KeyVaultAdapter
from devtools.seed import open_sealed, seed_deks
from devtools.seed._deks import seed_layout
from shared.adapters.dek_table import TableDekStore
from shared.crypto import VaultAllowList
from tests.e2e.conftest import Stack, call

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

DEK_COUNT = 120
PARTITIONS = 4
EVENT_TYPES = [
    "Microsoft.KeyVault.KeyNewVersionCreated",
    "Microsoft.KeyVault.KeyNearExpiry",
    "Microsoft.KeyVault.KeyExpired",
    "Microsoft.KeyVault.VaultAccessPolicyChanged",
]


def _plaintext(index: int) -> bytes:
    return f"customer record {index}".encode()


async def _seed(stack: Stack, key_name: str) -> tuple[TableDekStore, KeyVaultAdapter, str]:
    key = await call(stack.key_client.create_rsa_key, key_name, size=2048)
    allow = VaultAllowList.parse(stack.settings["KEYWARD_VAULT_ALLOWLIST"])
    vault_keys = KeyVaultAdapter(stack.vault.credential(), allow, ca_bundle=stack.emulator.ca_path)
    store = TableDekStore.from_connection_string(stack.azurite.connection_string, stack.dek_table)
    await store.create_table()
    wrapper = await call(vault_keys.wrapper, key.id)
    inserted = await seed_deks(
        store, wrapper, DEK_COUNT, partitions=PARTITIONS, plaintext=_plaintext
    )
    assert inserted == DEK_COUNT
    return store, vault_keys, key.id.rsplit("/", 1)[0]


async def _subscribe(stack: Stack, **options: Any) -> EventGridControl:
    grid = EventGridControl(stack.emulator.url, stack.emulator.ca_path)
    await call(
        grid.subscribe,
        f"keyward-{uuid.uuid4().hex[:8]}",
        topic=stack.vault.arm_id,
        endpoint=stack.host.event_grid_webhook_url("on_key_vault_event"),
        included_event_types=EVENT_TYPES,
        **options,
    )
    return grid


async def _wait_for_all_at(store: TableDekStore, key_ref: str, version: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        counts = {
            c.key_id.rsplit("/", 1)[1]: c.current for c in await store.version_counts(key_ref)
        }
        if counts.get(version) == DEK_COUNT and sum(counts.values()) == DEK_COUNT:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"DEKs did not all reach {version}: {counts}")


async def test_rotation_event_rewraps_every_dek_and_old_version_can_be_disabled(
    stack: Stack,
) -> None:
    store, vault_keys, key_ref = await _seed(stack, "orders")
    grid = await _subscribe(stack)
    rotated = await call(stack.key_client.rotate_key, "orders")
    new_version = rotated.properties.version
    await _wait_for_all_at(store, key_ref, new_version)

    old_version = next(
        p.version
        for p in await call(
            lambda: list(stack.key_client.list_properties_of_key_versions("orders"))
        )
        if p.version != new_version
    )
    await call(stack.key_client.update_key_properties, "orders", old_version, enabled=False)
    new_wrapper = await call(vault_keys.wrapper, f"{key_ref}/{new_version}")
    for index in range(DEK_COUNT):
        partition, dek_id = seed_layout(index, PARTITIONS, "")
        details = await store.get(f"{partition}/{dek_id}")
        assert details is not None
        assert await call(open_sealed, details, new_wrapper) == _plaintext(index)
    delivered = await call(grid.deliveries)
    assert any(d.get("status") == 200 for d in delivered)
    invoked = [r for r in stack.host.invocations if r.function == "rewrap_worker"]
    assert invoked
    assert all(r.ok for r in invoked)
    await store.close()
    await call(vault_keys.close)


async def test_duplicated_and_reordered_deliveries_end_at_the_newest_version(
    stack: Stack,
) -> None:
    store, vault_keys, key_ref = await _seed(stack, "payments")
    grid = await _subscribe(stack)
    await call(grid.configure, duplicate_rate=1.0, reorder_window=0.5, seed=7)
    try:
        await call(stack.key_client.rotate_key, "payments")
        newest = await call(stack.key_client.rotate_key, "payments")
        await _wait_for_all_at(store, key_ref, newest.properties.version)
        await call(grid.drain, 20.0)
    finally:
        await call(grid.configure, duplicate_rate=0.0, reorder_window=0.0)
    counts = await store.version_counts(key_ref)
    assert {c.key_id.rsplit("/", 1)[1]: c.current for c in counts if c.current} == {
        newest.properties.version: DEK_COUNT
    }
    handled = [r for r in stack.host.invocations if r.function == "on_key_vault_event"]
    assert len(handled) >= 4, "each of the two events was delivered at least twice"
    await store.close()
    await call(vault_keys.close)


async def test_event_for_a_vault_not_on_the_allow_list_makes_no_outbound_request(
    stack: Stack, emulator_vault_factory: Any
) -> None:
    import aiohttp

    foreign = await call(emulator_vault_factory)
    foreign_key = await call(foreign.key_client().create_rsa_key, "orders", size=2048)
    await call(stack.emulator.client.reset_counters)
    before = await call(stack.emulator.client.counters, foreign.name)
    allowed_before = await call(stack.emulator.client.counters, stack.vault.name)
    event = {
        "id": "foreign-1",
        "topic": foreign.arm_id,
        "subject": "orders",
        "eventType": "Microsoft.KeyVault.KeyNewVersionCreated",
        "eventTime": "2026-11-29T03:00:00Z",
        "data": {
            "Id": foreign_key.id, "VaultName": foreign.name, "ObjectType": "Key",
            "ObjectName": "orders", "Version": foreign_key.properties.version,
            "NBF": None, "EXP": None,
        },
        "dataVersion": "1", "metadataVersion": "1",
    }  # fmt: skip
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            stack.host.event_grid_webhook_url("on_key_vault_event"),
            json=[event],
            headers={"aeg-event-type": "Notification"},
        )
        assert response.status == 200, "acknowledged: a foreign event is never retried"
    after = await call(stack.emulator.client.counters, foreign.name)
    assert after == before
    assert await call(stack.emulator.client.counters, stack.vault.name) == allowed_before
    from shared.composition import context_for_current_loop

    context = await context_for_current_loop()
    rejected = await context.ledger.recent_rejections()
    assert [r["reason"] for r in rejected][:1] == ["FOREIGN_VAULT"]


@pytest.mark.parametrize("missing", ["key", "version"])
async def test_an_event_for_a_key_or_version_the_vault_lacks_is_acknowledged_and_recorded(
    stack: Stack, missing: str
) -> None:
    """Issue 11 item 7: HTTP 200 (Event Grid does not redeliver it for a day), a rejection
    with its reason in status, no job, and only the vault calls planning makes to decide."""
    import aiohttp

    from shared.composition import context_for_current_loop

    name = f"ghost-{missing}"
    version = uuid.uuid4().hex
    if missing == "version":
        await call(stack.key_client.create_rsa_key, name, size=2048)
    await call(stack.emulator.client.reset_counters, stack.vault.name)
    event = {
        "id": f"missing-{missing}", "topic": stack.vault.arm_id, "subject": name,
        "eventType": "Microsoft.KeyVault.KeyNewVersionCreated",
        "eventTime": "2026-11-29T03:00:00Z",
        "data": {
            "Id": f"{stack.vault.url}/keys/{name}/{version}", "VaultName": stack.vault.name,
            "ObjectType": "Key", "ObjectName": name, "Version": version, "NBF": None,
            "EXP": None,
        },
        "dataVersion": "1", "metadataVersion": "1",
    }  # fmt: skip
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            stack.host.event_grid_webhook_url("on_key_vault_event"),
            json=[event],
            headers={"aeg-event-type": "Notification"},
        )
        assert response.status == 200, "acknowledged: the vault's answer will not change"
    ops = (await call(stack.emulator.client.counters, stack.vault.name))["vault"]["ops"]
    assert sum(ops.values()) <= (1 if missing == "key" else 2), ops
    context = await context_for_current_loop()
    reason = "KEY_NOT_FOUND" if missing == "key" else "VERSION_NOT_FOUND"
    rejected = await context.ledger.recent_rejections()
    assert (rejected[0]["reason"], rejected[0]["event_id"]) == (reason, f"missing-{missing}")
    jobs = await context.job_store(f"table:{stack.dek_table}").list_jobs()
    assert not [j for j in jobs if name in j.key_ref]
