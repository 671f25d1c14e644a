"""A rewrap job proves its target through the real Key Vault adapter against the emulator
(issue 11 item 5): a target whose ``key_ops`` lack ``unwrapKey``, that is disabled, not yet
valid or expired (on the emulator's clock), or whose round-trip probe the vault fails to
unwrap, is refused before any write: the DEK store is unchanged and the job records why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devtools.seed import seed_deks
from shared.adapters import AsyncKeyVaultAdapter
from shared.crypto import LocalRsaWrapper, VaultAllowList
from shared.errors import KeywardError
from shared.rewrap import (
    EngineSettings,
    InMemoryJobStore,
    JobStatus,
    RetryPolicy,
    RewrapEngine,
    rewrap_job_id,
)
from shared.stores import SqliteDekStore

pytestmark = pytest.mark.emulator

COUNT = 12
SCOPE = "sqlite:deks"


def _emulator_now(vault: Any) -> datetime:
    return datetime.fromtimestamp(float(vault.client.clock()["now"]), UTC)


async def _snapshot(store: SqliteDekStore, key_ref: str) -> list[tuple[str, str, bytes]]:
    page = await store.scan(key_ref, exclude_version=None, page_size=1000)
    return sorted((r.ref, r.key_id, r.wrapped) for r in page.records)


def _attempt(
    vault: Any,
    tmp_path: Path,
    change: Callable[[Any, str, str], str | None],
) -> tuple[str, list[tuple[str, str, bytes]], list[tuple[str, str, bytes]], Any]:
    """Seed DEKs under v1, rotate to v2, apply ``change`` (returns the version to request),
    run the job; returns (error, before, after, job state)."""
    client = vault.client
    client.create_key(vault.name, "deks", kty="RSA", size=2048)
    key_ref = f"{vault.url}/keys/deks"
    allow = VaultAllowList.parse(f"{vault.name}={vault.url}")
    sync_keys = vault.key_client()

    async def go() -> tuple[str, Any, Any, Any]:
        clock = lambda: _emulator_now(vault)  # noqa: E731
        adapter = AsyncKeyVaultAdapter(
            vault.async_credential(), allow, ca_bundle=vault.emulator.ca_path, clock=clock
        )
        store = SqliteDekStore(tmp_path / "deks.sqlite")
        jobs = InMemoryJobStore()
        try:
            old = await adapter.newest_enabled_version(key_ref)
            public = await adapter.public_key(f"{key_ref}/{old}")
            seeder = LocalRsaWrapper(f"{key_ref}/{old}", public_key=public.rsa_public_key)
            await seed_deks(store, seeder, COUNT, partitions=2)
            new = client.rotate_key(vault.name, "deks")["key"]["kid"].rsplit("/", 1)[1]
            requested = change(sync_keys, "deks", new)
            before = await _snapshot(store, key_ref)
            engine = RewrapEngine(
                store=store,
                keys=adapter,
                jobs=jobs,
                settings=EngineSettings(retry=RetryPolicy(base_backoff_seconds=0.01)),
                now=clock,
                job_scope=SCOPE,
            )
            with pytest.raises(KeywardError) as refused:
                await engine.run(key_ref, requested)
            after = await _snapshot(store, key_ref)
            stored = await jobs.get(rewrap_job_id(key_ref, new, SCOPE))
            return str(refused.value), before, after, stored.state if stored else None
        finally:
            await store.close()
            await adapter.close()
            sync_keys.close()

    return asyncio.run(go())


def _check_refused(result: Any, reason: str) -> None:
    error, before, after, state = result
    assert reason in error
    assert after == before, "no DEK may be written before the target is proven"
    assert state is not None, "the job records the refusal"
    assert state.status is JobStatus.FAILED
    assert reason in (state.error or "")
    assert state.counters.scanned == 0


def test_a_target_whose_key_ops_lack_unwrapkey_is_refused(
    emulator_vault: Any, tmp_path: Path
) -> None:
    def change(keys: Any, name: str, new: str) -> str | None:
        keys.update_key_properties(name, new, key_operations=["wrapKey", "encrypt", "verify"])
        return None  # the newest enabled version: the vault lists it as enabled

    _check_refused(_attempt(emulator_vault, tmp_path, change), "without unwrapKey")


def test_a_disabled_target_is_refused(emulator_vault: Any, tmp_path: Path) -> None:
    def change(keys: Any, name: str, new: str) -> str | None:
        keys.update_key_properties(name, new, enabled=False)
        return new

    _check_refused(_attempt(emulator_vault, tmp_path, change), "disabled")


def test_a_target_not_yet_valid_is_refused(emulator_vault: Any, tmp_path: Path) -> None:
    def change(keys: Any, name: str, new: str) -> str | None:
        keys.update_key_properties(
            name, new, not_before=_emulator_now(emulator_vault) + timedelta(days=1)
        )
        return new

    _check_refused(_attempt(emulator_vault, tmp_path, change), "not valid before")


def test_a_target_expired_on_the_vaults_clock_is_refused(
    emulator_vault: Any, tmp_path: Path
) -> None:
    def change(keys: Any, name: str, new: str) -> str | None:
        keys.update_key_properties(
            name, new, expires_on=_emulator_now(emulator_vault) + timedelta(minutes=5)
        )
        emulator_vault.client.advance_clock(600)
        return new

    _check_refused(_attempt(emulator_vault, tmp_path, change), "expired")


def test_a_vault_that_fails_the_probe_unwrap_gets_no_write(
    emulator_vault: Any, tmp_path: Path
) -> None:
    def change(keys: Any, name: str, new: str) -> str | None:
        # Every unwrapKey fails (GET and list still answer): the probe is the first unwrap.
        emulator_vault.client.set_faults(
            emulator_vault.name, error_rate=1.0, error_status=500, ops="unwrapkey"
        )
        return None

    result = _attempt(emulator_vault, tmp_path, change)
    _check_refused(result, "unwrapKey")
    assert result[3].error.startswith("TransientServiceError")  # resumable: the sweep retries
