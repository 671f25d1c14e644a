"""The application API end to end: ``keyward.open_envelope`` over Azure Table (Azurite) and
Key Vault (keyward's emulator, real SDK), in direct and in hierarchy mode."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient

from keyward import (
    ConfigurationError,
    IntegrityError,
    RecordNotFoundError,
    StoreMode,
    open_envelope,
)
from shared.records import EnvelopeSettings, RecordFormat
from tests.application.conftest import AppWorld

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

RECORDS = {("tenant-a", f"r{i}"): f"payload a{i}".encode() for i in range(3)} | {
    ("tenant-b", f"r{i}"): f"payload b{i}".encode() for i in range(2)
}


async def _rows(world: AppWorld, name: str) -> list[dict[str, object]]:
    """Every entity of table ``name`` (none when the table was never created)."""
    async with TableClient.from_connection_string(world.connection_string, name) as table:
        try:
            return [dict(e) async for e in table.list_entities()]
        except ResourceNotFoundError:
            return []


async def test_direct_mode_encrypts_reads_and_caches(world: AppWorld) -> None:
    async with open_envelope(world.key_ref, mode="direct", **world.options()) as envelope:
        for (tenant, record_id), data in RECORDS.items():
            stored = await envelope.encrypt(tenant, record_id, data, context=b"ctx")
            assert stored.format is RecordFormat.DIRECT
            assert stored.key_id is not None
            assert stored.key_id.startswith(world.key_ref + "/")
        world.reset_counters()
        for _ in range(2):  # the second pass reads from the cache
            for (tenant, record_id), data in RECORDS.items():
                assert await envelope.decrypt(tenant, record_id, context=b"ctx") == data
        assert world.unwraps() == 0  # encrypt cached what it wrapped
    rows = await _rows(world, world.table)
    assert len(rows) == len(RECORDS)
    assert all("KeyId" in row and "Format" not in row for row in rows)
    assert await _rows(world, world.kek_table) == []  # no KEK table needed in direct mode

    # A new process: one vault unwrap per record, however often it is read.
    async with open_envelope(world.key_ref, **world.options()) as envelope:
        world.reset_counters()
        for _ in range(3):
            for (tenant, record_id), data in RECORDS.items():
                assert await envelope.decrypt(tenant, record_id, context=b"ctx") == data
        assert world.unwraps() == len(RECORDS)
        with pytest.raises(IntegrityError):
            await envelope.decrypt("tenant-a", "r0", context=b"another context")


async def test_hierarchy_mode_wraps_locally_under_one_kek_per_partition(world: AppWorld) -> None:
    async with open_envelope(world.key_ref, mode="hierarchy", **world.options()) as envelope:
        for (tenant, record_id), data in RECORDS.items():
            stored = await envelope.encrypt(tenant, record_id, data)
            assert stored.format is RecordFormat.HIERARCHY
            assert stored.kek_version is not None
    rows = await _rows(world, world.table)
    mode_rows = [r for r in rows if r["PartitionKey"] == "~keyward"]
    assert [r["Mode"] for r in mode_rows] == [StoreMode.HIERARCHY.value]
    records = [r for r in rows if r["PartitionKey"] != "~keyward"]
    assert len(records) == len(RECORDS)
    assert all(r["Format"] == 2 and "KeyId" not in r and "KeyRef" not in r for r in records)
    keks = await _rows(world, world.kek_table)
    assert sorted(k["PartitionKey"] for k in keks) == ["tenant-a", "tenant-b"]
    assert all(str(k["KeyId"]).startswith(world.key_ref + "/") for k in keks)

    # A new process reads every record with one vault unwrap per partition (KEK), not per DEK.
    async with open_envelope(world.key_ref, **world.options()) as envelope:
        world.reset_counters()
        for _ in range(2):
            for (tenant, record_id), data in RECORDS.items():
                assert await envelope.decrypt(tenant, record_id) == data
        assert world.unwraps() == 2


async def test_a_declared_mode_that_is_not_the_stores_is_refused(world: AppWorld) -> None:
    async with open_envelope(world.key_ref, mode="direct", **world.options()) as envelope:
        await envelope.encrypt("tenant-a", "r0", b"direct data")
    async with open_envelope(world.key_ref, mode="hierarchy", **world.options()) as envelope:
        with pytest.raises(ConfigurationError, match="direct mode"):
            await envelope.encrypt("tenant-a", "r1", b"more")


async def test_reserved_partitions_and_a_missing_record_are_refused(world: AppWorld) -> None:
    async with open_envelope(world.key_ref, **world.options()) as envelope:
        with pytest.raises(ValueError, match="reserved"):
            await envelope.encrypt("~keyward", "mode", b"x")
        with pytest.raises(RecordNotFoundError):
            await envelope.decrypt("tenant-a", "absent")


async def test_exactly_one_store_and_an_allowed_vault_are_required(world: AppWorld) -> None:
    with pytest.raises(ConfigurationError, match="exactly one"):
        async with open_envelope(world.key_ref, **world.options(sqlite_path="x.db")):
            pass
    with pytest.raises(ConfigurationError, match="allow_list"):
        async with open_envelope(world.key_ref, **world.options(allow_list="")):
            pass
    with pytest.raises(ValueError, match="'direct' or 'hierarchy'"):
        async with open_envelope(world.key_ref, **world.options(mode="sharded")):
            pass


def test_settings_come_from_the_keyward_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.settings import envelope_from_env

    monkeypatch.setenv("KEYWARD_KEK_CACHE_SECONDS", "7")
    assert envelope_from_env().kek_cache_seconds == 7.0
    assert envelope_from_env({}) == EnvelopeSettings()
