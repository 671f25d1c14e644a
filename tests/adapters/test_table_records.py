"""The envelope's Table ports on Azurite: records of both formats, KEKs, the mode row, and the
two shards the rewrap engine sees (the data table by its mode, the KEK table)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from azure.data.tables.aio import TableClient, TableServiceClient

from devtools.azurite import AzuriteInfo
from shared.adapters.dek_table import (
    KekTableShard,
    ModeAwareTableStore,
    TableDekStore,
    TableKekStore,
    TableModeStore,
    TableRecordStore,
)
from shared.crypto import WrapAlgorithm
from shared.errors import ConflictError, InvalidInputError
from shared.records import ModeRecord, RecordFormat, RecordWrite, StoreMode
from shared.records._format import FORMAT_1_PROPERTIES, FORMAT_2_PROPERTIES
from shared.stores import NewDek, Rewrap, WriteOutcome

pytestmark = pytest.mark.azurite

VAULT_KEY = "https://unit.vault.azure.net/keys/app-key"
KEY_ID = f"{VAULT_KEY}/{'a' * 32}"
KCV = "0123456789abcdef"
VERSION = "k20261206T000000000000Z-0badcafe"


def direct(partition: str, record_id: str, *, sealed: bytes | None = b"data") -> RecordWrite:
    return RecordWrite(partition, record_id, RecordFormat.DIRECT, WrapAlgorithm.RSA_OAEP_256,
                       os.urandom(256), KCV, key_id=KEY_ID, sealed=sealed)  # fmt: skip


def hierarchy(partition: str, record_id: str, *, sealed: bytes | None = None) -> RecordWrite:
    return RecordWrite(partition, record_id, RecordFormat.HIERARCHY, WrapAlgorithm.A256KW,
                       os.urandom(40), KCV, kek_version="k20261206T000000000000Z-0badcafe",
                       sealed=sealed)  # fmt: skip


async def test_records_of_both_formats_read_back(table: TableClient) -> None:
    records = TableRecordStore(table)
    one = await records.insert_record(direct("tenant", "r1"))
    two = await records.insert_record(hierarchy("tenant", "r2", sealed=b"sealed"))
    assert (one.format, one.key_id, one.kek_version) == (RecordFormat.DIRECT, KEY_ID, None)
    assert (two.format, two.key_id) == (RecordFormat.HIERARCHY, None)
    assert two.kek_version == "k20261206T000000000000Z-0badcafe"
    assert await records.read_record("tenant", "r1") == one
    assert await records.read_record("tenant", "r2") == two
    assert await records.read_record("tenant", "absent") is None
    with pytest.raises(ConflictError):
        await records.insert_record(direct("tenant", "r1"))


async def test_format_two_rows_carry_no_vault_key_property(table: TableClient) -> None:
    await TableRecordStore(table).insert_record(hierarchy("tenant", "r"))
    entity = await table.get_entity("tenant", "r")
    assert entity["Format"] == 2
    assert entity["Algorithm"] == "A256KW"
    assert not {"KeyRef", "KeyId", "KeyVersion", "PrevKeyId"} & set(entity)
    # So the engine's scans and counts over the data table never see it.
    dek_store = TableDekStore(table)
    assert (await dek_store.scan(VAULT_KEY, exclude_version=None)).records == []


async def test_an_unknown_format_is_refused_clearly_and_reported_by_scans(
    table: TableClient,
) -> None:
    await table.create_entity({"PartitionKey": "t", "RowKey": "future", "Format": 3,
                               "WrappedKey": "AAAA"})  # fmt: skip
    records = TableRecordStore(table)
    with pytest.raises(InvalidInputError, match=r"record format 3 is newer than this keyward "
                                                r"\(reads 1, 2\): upgrade keyward"):  # fmt: skip
        await records.read_record("t", "future")
    (row,) = (await records.scan_records()).records
    assert row.problem is not None
    assert "format 3" in row.problem


async def test_replace_swaps_formats_and_keeps_application_columns(table: TableClient) -> None:
    records = TableRecordStore(table)
    current = await records.insert_record(direct("tenant", "r", sealed=b"sealed data"))
    await table.update_entity({"PartitionKey": "tenant", "RowKey": "r", "Owner": "app"})
    current = await records.read_record("tenant", "r")
    assert current is not None
    result = await records.replace_record(current, hierarchy("tenant", "r"))
    assert result.outcome is WriteOutcome.WRITTEN
    assert result.new_etag
    entity = await table.get_entity("tenant", "r")
    assert entity["Owner"] == "app"
    assert bytes(entity["Sealed"]) == b"sealed data"
    assert entity["Format"] == 2
    assert "KeyId" not in entity
    assert "KeyRef" not in entity
    assert entity["CreatedAt"] is not None
    # And back: the hierarchy properties go.
    now = await records.read_record("tenant", "r")
    assert now is not None
    assert now.etag == result.new_etag
    assert (await records.replace_record(now, direct("tenant", "r", sealed=None))).outcome is (
        WriteOutcome.WRITTEN
    )
    entity = await table.get_entity("tenant", "r")
    assert "Format" not in entity
    assert "KekVersion" not in entity
    assert entity["KeyId"] == KEY_ID
    assert entity["Owner"] == "app"
    assert bytes(entity["Sealed"]) == b"sealed data"


async def test_replace_removes_everything_the_rewrap_engine_wrote(table: TableClient) -> None:
    """A format-1 row the engine rewrapped (``Prev*``) and marked unreadable (``Unreadable``,
    ``UnreadableAt``) converts to a format-2 row holding the format-2 properties alone."""
    records = TableRecordStore(table)
    await records.insert_record(direct("tenant", "r"))
    engine = TableDekStore(table)
    (row,) = (await engine.scan(VAULT_KEY, exclude_version=None)).records
    newer = f"{VAULT_KEY}/{'b' * 32}"
    rewrap = Rewrap(row, newer, WrapAlgorithm.RSA_OAEP_256, os.urandom(256), KCV)
    assert [r.outcome for r in await engine.replace_batch([rewrap])] == [WriteOutcome.WRITTEN]
    (row,) = (await engine.scan(VAULT_KEY, exclude_version=None)).records
    assert (await engine.mark_unreadable(row, "key_disabled")).outcome is WriteOutcome.WRITTEN
    written = set(await table.get_entity("tenant", "r"))
    assert {"PrevKeyId", "Unreadable", "UnreadableAt"} <= written
    assert written - {"PartitionKey", "RowKey"} <= set(FORMAT_1_PROPERTIES)
    current = await records.read_record("tenant", "r")
    assert current is not None
    result = await records.replace_record(current, hierarchy("tenant", "r"))
    assert result.outcome is WriteOutcome.WRITTEN
    left = set(await table.get_entity("tenant", "r")) - {"PartitionKey", "RowKey"}
    assert left <= set(FORMAT_2_PROPERTIES)


async def test_replace_is_conditional_on_the_etag_read(table: TableClient) -> None:
    records = TableRecordStore(table)
    stale = await records.insert_record(direct("tenant", "r"))
    await table.update_entity({"PartitionKey": "tenant", "RowKey": "r", "Owner": "app"})
    result = await records.replace_record(stale, hierarchy("tenant", "r"))
    assert result.outcome is WriteOutcome.CONFLICT
    assert "KeyId" in await table.get_entity("tenant", "r")  # nothing changed
    await table.delete_entity("tenant", "r")
    assert (await records.replace_record(stale, hierarchy("tenant", "r"))).outcome is (
        WriteOutcome.NOT_FOUND
    )


async def test_reserved_partitions_are_refused_and_skipped(table: TableClient) -> None:
    records = TableRecordStore(table)
    with pytest.raises(InvalidInputError, match="reserved"):
        await records.insert_record(direct("~keyward", "r"))
    await TableModeStore(table).write_mode(ModeRecord(StoreMode.HIERARCHY))
    await records.insert_record(direct("a", "r"))
    assert [r.ref for r in (await records.scan_records()).records] == ["a/r"]


async def test_scan_pages_both_formats_and_one_partition(table: TableClient) -> None:
    records = TableRecordStore(table)
    for partition in ("a", "b"):
        for i in range(5):
            write = direct if i % 2 else hierarchy
            await records.insert_record(write(partition, f"r{i}"))
    seen, token, pages = [], None, 0
    while True:
        page = await records.scan_records(page_size=3, continuation=token)
        seen += page.records
        pages += 1
        token = page.continuation
        if token is None:
            break
    assert pages >= 4
    assert len(seen) == 10
    assert all(r.problem is None for r in seen)
    assert all(r.sealed is None for r in seen)  # a scan reads wraps, not payloads
    assert {r.format for r in seen} == {RecordFormat.DIRECT, RecordFormat.HIERARCHY}
    one = await records.scan_records(partition="b")
    assert [r.ref for r in one.records] == [f"b/r{i}" for i in range(5)]
    with pytest.raises(InvalidInputError):
        await records.scan_records(continuation="bogus")


def kek(partition: str, version: str) -> NewDek:
    return NewDek(partition, version, KEY_ID, WrapAlgorithm.RSA_OAEP_256, os.urandom(256), KCV)


@pytest.fixture
async def missing_table(azurite: AzuriteInfo) -> AsyncIterator[TableClient]:
    """A client of a table that does not exist yet (deleted after the test if made)."""
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    name = "m" + uuid.uuid4().hex[:16]
    client = service.get_table_client(name)
    try:
        yield client
    finally:
        await service.delete_table(name)
        await client.close()
        await service.close()


async def test_keks_newest_first_insert_conflict_and_delete(missing_table: TableClient) -> None:
    keks = TableKekStore(missing_table)
    assert await keks.list_keks("t") == []
    assert await keks.read_kek("t", "k1") is None
    assert (await keks.kek_partitions()).partitions == []
    old = await keks.insert_kek(kek("t", "k20260101T000000000000Z-00000001"))  # creates the table
    new = await keks.insert_kek(kek("t", "k20260102T000000000000Z-00000002"))
    await keks.insert_kek(kek("u", "k20260101T000000000000Z-00000003"))
    assert [k.version for k in await keks.list_keks("t")] == [new.version, old.version]
    assert await keks.read_kek("t", old.version) == old
    with pytest.raises(ConflictError):
        await keks.insert_kek(kek("t", old.version))
    stale = old
    await missing_table.update_entity({"PartitionKey": "t", "RowKey": old.version, "X": 1})
    assert (await keks.delete_kek(stale)).outcome is WriteOutcome.CONFLICT
    fresh = await keks.read_kek("t", old.version)
    assert fresh is not None
    assert (await keks.delete_kek(fresh)).outcome is WriteOutcome.WRITTEN
    # Deleting a version already gone is done (the SDK says nothing of a 404 on delete).
    assert (await keks.delete_kek(fresh)).outcome is WriteOutcome.WRITTEN
    assert [k.version for k in await keks.list_keks("t")] == [new.version]


async def test_kek_partitions_page_each_partition_once(table: TableClient) -> None:
    keks = TableKekStore(table)
    for p in range(7):
        for v in range(3):
            await keks.insert_kek(kek(f"p{p}", f"k2026010{v}T000000000000Z-0000000{v}"))
    seen: list[str] = []
    token = None
    while True:
        page = await keks.kek_partitions(page_size=4, continuation=token)
        seen += page.partitions
        token = page.continuation
        if token is None:
            break
    assert seen == [f"p{p}" for p in range(7)]


async def test_the_mode_row_is_etag_guarded(missing_table: TableClient) -> None:
    modes = TableModeStore(missing_table)
    assert await modes.read_mode() == ModeRecord()  # no table, no row: direct
    first = await modes.write_mode(ModeRecord(StoreMode.TO_HIERARCHY, migration='{"p": 1}'))
    assert first.etag
    assert first.mode is StoreMode.TO_HIERARCHY
    read = await modes.read_mode()
    assert (read.mode, read.etag, read.migration) == (
        StoreMode.TO_HIERARCHY,
        first.etag,
        '{"p": 1}',
    )
    with pytest.raises(ConflictError):
        await modes.write_mode(ModeRecord(StoreMode.HIERARCHY))  # "" = must not exist
    second = await modes.write_mode(ModeRecord(StoreMode.HIERARCHY, etag=first.etag))
    with pytest.raises(ConflictError):
        await modes.write_mode(ModeRecord(StoreMode.DIRECT, etag=first.etag))  # stale
    assert (await modes.read_mode()).etag == second.etag


async def test_an_unknown_mode_is_refused(table: TableClient) -> None:
    await table.create_entity({"PartitionKey": "~keyward", "RowKey": "mode", "Mode": "sharded"})
    with pytest.raises(InvalidInputError, match="'sharded' is unknown to this keyward"):
        await TableModeStore(table).read_mode()


async def test_the_data_shard_is_empty_in_hierarchy_mode(table: TableClient) -> None:
    dek_store = TableDekStore(table)
    await dek_store.insert_batch([NewDek("t", "d", KEY_ID, WrapAlgorithm.RSA_OAEP_256,
                                         os.urandom(256), KCV)])  # fmt: skip
    clock = [0.0]
    shard = ModeAwareTableStore(dek_store, TableModeStore(table), mode_ttl=30,
                                monotonic=lambda: clock[0])  # fmt: skip
    assert len((await shard.scan(VAULT_KEY, exclude_version=None)).records) == 1
    assert await shard.store_mode() == "direct"
    await TableModeStore(table).write_mode(ModeRecord(StoreMode.HIERARCHY))
    assert await shard.store_mode() == "direct"  # cached for the mode TTL
    clock[0] = 30.0
    assert await shard.store_mode() == "hierarchy"
    assert (await shard.scan(VAULT_KEY, exclude_version=None)).records == []
    assert (await shard.count_versions(VAULT_KEY)).counts == []
    assert await shard.version_counts(VAULT_KEY) == []
    assert (await shard.forget_previous_page(KEY_ID)).dropped == 0
    assert shard.name == dek_store.name


async def test_the_kek_shard_reads_a_missing_table_as_empty(missing_table: TableClient) -> None:
    shard = KekTableShard(TableDekStore(missing_table))
    assert (await shard.scan(VAULT_KEY, exclude_version=None)).records == []
    assert await shard.version_counts(VAULT_KEY) == []
    assert await shard.forget_previous(KEY_ID) == 0
    with pytest.raises(InvalidInputError, match="not a KEK version id"):
        await TableKekStore(missing_table).insert_kek(kek("t", "k1"))
    await TableKekStore(missing_table).insert_kek(kek("t", VERSION))
    (record,) = (await shard.scan(VAULT_KEY, exclude_version=None)).records
    assert record.ref == f"t/{VERSION}"
    assert record.key_id == KEY_ID
