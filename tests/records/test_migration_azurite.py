"""The migration both ways and a KEK rotation on Azure Table (Azurite): the Table adapters
for records, KEKs and the mode row, opened as the CLI opens them, under the same jobs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from azure.data.tables.aio import TableServiceClient

from devtools.azurite import AzuriteInfo
from shared.composition import RecordPorts, open_record_ports
from shared.records import Envelope, EnvelopeSettings, Phase, RecordFormat, StoreMode
from shared.services.migration import StoreJobs
from tests.records.memory import FakeTime, LocalVaultKeys
from tests.rewrap.fakes import KEY_REF, V1, V2, key_source

SETTINGS = EnvelopeSettings(mode_ttl_seconds=30, kek_cache_seconds=300)


@pytest.fixture
async def ports(azurite: AzuriteInfo) -> AsyncIterator[RecordPorts]:
    suffix = uuid.uuid4().hex[:12]
    data, keks = f"data{suffix}", f"keks{suffix}"
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    async with service:
        for name in (data, keks):
            await service.create_table(name)
        opened = open_record_ports(f"table:{azurite.connection_string}:{data}", kek_table=keks)
        try:
            yield opened
        finally:
            await opened.aclose()
            for name in (data, keks):
                await service.delete_table(name)


async def test_migration_and_kek_rotation_on_table(ports: RecordPorts) -> None:
    time = FakeTime()
    vault = LocalVaultKeys(key_source(V1, V2))

    def jobs() -> StoreJobs:
        return StoreJobs(ports.records, ports.keks, ports.modes, vault, settings=SETTINGS,
                         owner="azurite-test", page_size=5, now=time.now, sleep=time.sleep,
                         monotonic=time.monotonic)  # fmt: skip

    def envelope() -> Envelope:
        return Envelope(ports.records, ports.keks, ports.modes, vault, KEY_REF,
                        settings=SETTINGS, clock=time.monotonic, wall_clock=time.now)  # fmt: skip

    async def formats() -> set[RecordFormat]:
        page = await ports.records.scan_records(page_size=1000)
        assert all(row.problem is None for row in page.records)
        return {row.format for row in page.records}

    async def all_open() -> None:
        async with envelope() as reader:
            for (partition, record_id), data in plain.items():
                assert await reader.decrypt(partition, record_id) == data

    plain = {(f"t{i % 3}", f"r{i:02}"): f"row {i}".encode() for i in range(12)}
    async with envelope() as writer:
        for (partition, record_id), data in plain.items():
            await writer.encrypt(partition, record_id, data)

    up = await jobs().migrate(StoreMode.HIERARCHY, KEY_REF)
    assert up.mode is StoreMode.HIERARCHY
    assert await formats() == {RecordFormat.HIERARCHY}
    assert vault.counts.unwraps == 12  # one per DEK: the KEKs were made by the job
    await all_open()

    rotated = await jobs().rotate_keks(KEY_REF, partition="t1")
    assert rotated.checkpoint is not None
    assert rotated.checkpoint.phase is Phase.DONE
    assert len(await ports.keks.list_keks("t1")) == 1
    await all_open()

    down = await jobs().migrate(StoreMode.DIRECT, KEY_REF)
    assert down.mode is StoreMode.DIRECT
    assert (await ports.modes.read_mode()).mode is StoreMode.DIRECT
    assert await formats() == {RecordFormat.DIRECT}
    assert not (await ports.keks.kek_partitions()).partitions
    await all_open()
