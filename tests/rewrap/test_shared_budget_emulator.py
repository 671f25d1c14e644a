"""Three engines on one vault share keyward's part of its budget through the state table.

The real pieces: the Key Vault adapter against keyward's emulator (HTTPS, real SDK), the
budget board in an Azurite table, three engines each rewrapping its own key's DEKs in the
same vault at the same time. The emulator counts what the vault accepted; together the
engines stay within ``share x published budget x headroom``, where each alone would aim at
the whole share (three times it together). This proves the mechanism; speed and the
take-over of a killed worker's part are measured in bench/ (benchmark (f)).

A share of a tenth keeps the figures small (RSA-2048: 400 operations/s published, keyward's
tenth less the vault's 2% headroom, 32/s, about 11/s per engine) and the test short. (The emulator's
list-versions answer, like Key Vault's, omits the key type, so the engine assumes RSA-2048.)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient

from devtools.azurite import AzuriteInfo
from devtools.seed import seed_deks
from shared.adapters import AsyncKeyVaultAdapter
from shared.adapters.budget_board import TableBudgetBoard
from shared.crypto import LocalRsaWrapper, VaultAllowList
from shared.rewrap import EngineSettings, InMemoryJobStore, JobReport, RewrapEngine, vault_budget
from shared.stores import SqliteDekStore

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]

ENGINES = 3
DEKS = 250  # more than an engine rewraps in the run: all of them send until told to stop
RUN_SECONDS = 9.0
MEASURE_FROM = 3.5  # every engine has joined and been counted by then
SHARE = 0.1
PER_SECOND = vault_budget("RSA", 2048).operations_per_second  # 400
KEYWARD_RATE = PER_SECOND * (SHARE - 0.02)  # 32: the vault's 2% headroom comes off the share


def test_three_engines_on_one_vault_stay_within_keywards_share(
    emulator_vault: Any, azurite: AzuriteInfo, tmp_path: Path
) -> None:
    vault = emulator_vault
    client = vault.client
    names = [f"k{i}" for i in range(ENGINES)]
    for name in names:
        client.create_key(vault.name, name, kty="RSA", size=2048)
    allow = VaultAllowList.parse(f"{vault.name}={vault.url}")

    async def go() -> tuple[list[JobReport], float, float]:
        adapter = AsyncKeyVaultAdapter(
            vault.async_credential(), allow, ca_bundle=vault.emulator.ca_path
        )
        service = TableServiceClient.from_connection_string(azurite.connection_string)
        table = await service.create_table("budget" + uuid.uuid4().hex[:12])
        stores = [SqliteDekStore(tmp_path / f"{name}.sqlite") for name in names]
        try:
            for name, store in zip(names, stores, strict=True):
                key_ref = f"{vault.url}/keys/{name}"
                old = await adapter.newest_enabled_version(key_ref)
                public = await adapter.public_key(f"{key_ref}/{old}")
                seeder = LocalRsaWrapper(f"{key_ref}/{old}", public_key=public.rsa_public_key)
                await seed_deks(store, seeder, DEKS, partitions=1)
                client.rotate_key(vault.name, name)
            client.reset_counters(vault.name)
            board = TableBudgetBoard(table)
            settings = EngineSettings(
                workers=8, page_size=10, vault_share=SHARE, budget_lease_seconds=2.5
            )
            started = time.monotonic()

            def should_stop() -> bool:
                return time.monotonic() - started >= RUN_SECONDS

            engines = [
                RewrapEngine(
                    store=store,
                    keys=adapter,
                    jobs=InMemoryJobStore(),
                    settings=settings,
                    owner=f"engine-{i}",
                    board=board,
                )
                for i, store in enumerate(stores)
            ]
            runs = asyncio.gather(
                *(
                    engine.run(f"{vault.url}/keys/{name}", should_stop=should_stop)
                    for engine, name in zip(engines, names, strict=True)
                )
            )
            await asyncio.sleep(MEASURE_FROM)
            first = await asyncio.to_thread(_unwraps, client, vault.name)
            at_first = time.monotonic()
            await asyncio.sleep(RUN_SECONDS - MEASURE_FROM - 0.5)
            last = await asyncio.to_thread(_unwraps, client, vault.name)
            steady = (last - first) / (time.monotonic() - at_first)
            reports = await runs
            whole = await asyncio.to_thread(_unwraps, client, vault.name)
            overall = whole / (time.monotonic() - started)
            remaining = [entity async for entity in table.list_entities()]
            assert remaining == []  # every engine left the board
            return list(reports), steady, overall
        finally:
            for store in stores:
                await store.close()
            await service.delete_table(table.table_name)
            await table.close()
            await service.close()
            await adapter.close()

    reports, steady, overall = asyncio.run(go())

    counters = client.counters(vault.name)["vault"]
    assert counters.get("throttled", 0) == 0
    # Together within keyward's share (a little slack for the counters' snapshot timing) ...
    assert steady <= KEYWARD_RATE * 1.1, steady
    assert overall <= KEYWARD_RATE * 1.1, overall
    # ... and using it: the engines are not all paused.
    assert steady >= KEYWARD_RATE * 0.6, steady
    for report in reports:
        assert report.counters.rewrapped > 0
        # Each run's part is the share split among the members it counted last (the first
        # to finish may have left before the others' last heartbeat).
        assert 1 <= report.members <= ENGINES
        assert report.allotment == pytest.approx(KEYWARD_RATE / report.members)
    assert max(report.members for report in reports) == ENGINES


def _unwraps(client: Any, vault: str) -> int:
    return int(client.counters(vault)["vault"]["ops"].get("unwrapKey", 0))
