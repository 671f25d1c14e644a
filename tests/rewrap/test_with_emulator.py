"""The engine with the real Key Vault adapter against keyward's emulator (HTTPS, real SDK),
over a SQLite DEK store: rotate, rewrap under throttling and latency, every record opens."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from devtools.seed import seed_deks
from shared.adapters import AsyncKeyVaultAdapter
from shared.crypto import LocalRsaWrapper, VaultAllowList, open_envelope
from shared.rewrap import EngineSettings, InMemoryJobStore, JobStatus, RewrapEngine
from shared.stores import SqliteDekStore

pytestmark = pytest.mark.emulator

COUNT = 120


def _record(index: int) -> bytes:
    return f"payload {index}".encode()


@pytest.mark.parametrize(
    "omit_retry_after", [0.0, 1.0], ids=["with-retry-after", "without-retry-after"]
)
def test_rotate_then_rewrap_through_the_vault_with_429s(
    emulator_vault: Any, tmp_path: Path, omit_retry_after: float
) -> None:
    """Key Vault does not always send Retry-After with a 429 (vcsjones/AzureSignTool#219):
    without it the limiter must pace itself, and the job still completes with no failure."""
    vault = emulator_vault
    client = vault.client
    client.create_key(vault.name, "deks", kty="RSA", size=2048)
    key_ref = f"{vault.url}/keys/deks"
    allow = VaultAllowList.parse(f"{vault.name}={vault.url}")

    async def go() -> None:
        adapter = AsyncKeyVaultAdapter(
            vault.async_credential(), allow, ca_bundle=vault.emulator.ca_path
        )
        store = SqliteDekStore(tmp_path / "deks.sqlite")
        try:
            old = await adapter.newest_enabled_version(key_ref)
            public = await adapter.public_key(f"{key_ref}/{old}")
            seeder = LocalRsaWrapper(f"{key_ref}/{old}", public_key=public.rsa_public_key)
            await seed_deks(store, seeder, COUNT, partitions=3, plaintext=_record)

            client.rotate_key(vault.name, "deks")
            # The vault allows far less than the published budget the engine starts from.
            client.set_throttle(vault.name, budget=60, window_seconds=1.0, enabled=True)
            client.set_latency(vault.name, fixed_ms=20)
            client.set_faults(vault.name, omit_retry_after_rate=omit_retry_after)

            engine = RewrapEngine(
                store=store,
                keys=adapter,
                jobs=InMemoryJobStore(),
                settings=EngineSettings(workers=16),
            )
            report = await engine.run(key_ref)

            assert report.status is JobStatus.COMPLETED
            assert report.counters.rewrapped == COUNT
            assert report.counters.failed == {}
            assert report.counters.throttled > 0
            assert report.rate_decreases > 0
            new = report.state.target_version
            assert new != old

            client.set_throttle(vault.name, enabled=False)
            unwrapper = await adapter.wrapper(f"{key_ref}/{new}")
            page = await store.scan(key_ref, exclude_version=None, page_size=1000)
            opened = []
            for record in page.records:
                assert record.key_id == f"{key_ref}/{new}"
                details = await store.get(record.ref)
                assert details is not None
                assert details.sealed is not None
                with await unwrapper.unwrap(record.wrapped) as dek:
                    opened.append(open_envelope(dek, details.sealed, dek_id=record.ref))
            assert sorted(opened) == sorted(_record(i) for i in range(COUNT))
        finally:
            await store.close()
            await adapter.close()

    asyncio.run(go())
