"""A Key Vault rotation of a hierarchy-mode Table store, through the shards the Function App
builds (``build_app_stores``): the rewrap engine rewraps the intermediate keys only, so the
vault does one unwrap per KEK whatever the number of records, and every record still opens.
Then revocation: with the vault key disabled, reads stop once the KEK cache expires, not before.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from azure.data.tables.aio import TableClient, TableServiceClient

from devtools.azurite import AzuriteInfo
from keyward import open_envelope
from shared.adapters import AsyncKeyVaultAdapter
from shared.composition import StorageClients, build_app_stores
from shared.crypto import VaultAllowList
from shared.errors import KeywardError
from shared.records import EnvelopeSettings
from shared.rewrap import EngineSettings, InMemoryJobStore, JobStatus, RewrapEngine
from shared.services._status_page import store_modes
from shared.settings import Settings
from tests.application.conftest import KEY_NAME, PROOF_UNWRAPS_PER_RUN, AppWorld

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

PARTITIONS, PER_PARTITION = 4, 25


async def _etags(world: AppWorld, name: str) -> dict[str, str]:
    async with TableClient.from_connection_string(world.connection_string, name) as table:
        return {f"{e['PartitionKey']}/{e['RowKey']}": e.metadata["etag"]
                async for e in table.list_entities()}  # fmt: skip


async def test_a_vault_rotation_in_hierarchy_mode_rewraps_only_the_keks(
    world: AppWorld, azurite: AzuriteInfo
) -> None:
    data = {(f"t{p}", f"r{i}"): f"{p}:{i}".encode() for p in range(PARTITIONS)
            for i in range(PER_PARTITION)}  # fmt: skip
    async with open_envelope(world.key_ref, mode="hierarchy", **world.options()) as envelope:
        for (tenant, record_id), plaintext in data.items():
            await envelope.encrypt(tenant, record_id, plaintext)
    records_before = await _etags(world, world.table)
    world.vault.client.rotate_key(world.vault.name, KEY_NAME)

    settings = Settings.from_env({
        "KEYWARD_VAULT_ALLOWLIST": world.allow_list, "KEYWARD_MODE_TTL": "0",
        "KEYWARD_DEK_TABLE": world.table, "KEYWARD_KEK_TABLE": world.kek_table,
        "KEYWARD_STORAGE_CONNECTION": "STORAGE", "STORAGE": azurite.connection_string,
    })  # fmt: skip
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    allow = VaultAllowList.parse(world.allow_list)
    adapter = AsyncKeyVaultAdapter(world.vault.async_credential(), allow,
                                   ca_bundle=world.vault.emulator.ca_path)  # fmt: skip
    stores = build_app_stores(StorageClients(settings, None, service, None))  # type: ignore[arg-type]
    try:
        assert sorted(stores) == sorted([f"table:{world.table}", f"table:{world.kek_table}"])
        modes = await store_modes(stores)
        assert modes == {f"table:{world.table}": "hierarchy",
                         f"table:{world.kek_table}": "intermediate-keys"}  # fmt: skip
        world.reset_counters()
        for store in stores.values():
            engine = RewrapEngine(store=store, keys=adapter, jobs=InMemoryJobStore(),
                                  settings=EngineSettings(workers=4))  # fmt: skip
            report = await engine.run(world.key_ref)
            assert report.status is JobStatus.COMPLETED
            assert report.counters.failed == {}
            expected = PARTITIONS if store.name == f"table:{world.kek_table}" else 0
            assert report.counters.rewrapped == expected
        # One per KEK, none per record; plus each run's proof of the target (one round trip
        # through the vault before its first write: shared/rewrap/_target_proof.py).
        assert world.unwraps() == PARTITIONS + PROOF_UNWRAPS_PER_RUN * len(stores)
        new = report.state.target_version
        counts = await stores[f"table:{world.kek_table}"].version_counts(world.key_ref)
        assert {c.key_id.rsplit("/", 1)[1]: c.current for c in counts if c.current} == {
            new: PARTITIONS
        }
    finally:
        for store in stores.values():
            await store.close()
        await adapter.close()
        await service.close()
    assert await _etags(world, world.table) == records_before  # no record row was touched

    async with open_envelope(world.key_ref, **world.options()) as envelope:
        for (tenant, record_id), plaintext in data.items():
            assert await envelope.decrypt(tenant, record_id) == plaintext


KEK_TTL = 2.0


async def test_disabling_the_vault_key_stops_reads_within_the_kek_ttl(world: AppWorld) -> None:
    settings = EnvelopeSettings(kek_cache_seconds=KEK_TTL, dek_cache_seconds=3600)
    async with open_envelope(world.key_ref, mode="hierarchy", settings=settings,
                             **world.options()) as envelope:  # fmt: skip
        await envelope.encrypt("tenant", "r1", b"one")
        await envelope.encrypt("tenant", "r2", b"two")
        cached_at = time.monotonic()
        assert await envelope.decrypt("tenant", "r1") == b"one"

        keys = world.vault.key_client()
        for version in keys.list_properties_of_key_versions(KEY_NAME):
            keys.update_key_properties(KEY_NAME, version.version, enabled=False)

        # Within the TTL the cached KEK still opens records (the documented trade-off) ...
        assert await envelope.decrypt("tenant", "r2") == b"two"
        assert await envelope.decrypt("tenant", "r1") == b"one"
        assert time.monotonic() - cached_at < KEK_TTL
        # ... and once it expired, nothing does: the KEK must be unwrapped by the vault again.
        await asyncio.sleep(KEK_TTL - (time.monotonic() - cached_at) + 0.2)
        for record_id in ("r1", "r2"):
            with pytest.raises(KeywardError):
                await envelope.decrypt("tenant", record_id)
