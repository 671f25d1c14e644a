"""The envelope's ports behave the same on Azure Table (Azurite) and SQLite: the same calls
give the same records, outcomes and refusals, so an application (and keyward's jobs) can
move between the two without a difference it would notice."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from azure.data.tables.aio import TableServiceClient

from devtools.azurite import AzuriteInfo
from shared.adapters.dek_table import TableKekStore, TableModeStore, TableRecordStore
from shared.adapters.sqlite_records import SqliteRecords
from shared.crypto import WrapAlgorithm
from shared.errors import ConflictError, InvalidInputError
from shared.records import (
    KekStore,
    ModeRecord,
    ModeStore,
    RecordFormat,
    RecordStore,
    RecordWrite,
    StoreMode,
)
from shared.stores import NewDek, WriteOutcome

KEY_ID = f"https://unit.vault.azure.net/keys/app-key/{'b' * 32}"
KCV = "fedcba9876543210"


def kek_version(n: int) -> str:
    return f"k2026120{n}T000000000000Z-0000000{n}"


@dataclass
class Ports:
    records: RecordStore
    keks: KekStore
    modes: ModeStore


@pytest.fixture(params=["table", "sqlite"])
async def ports(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Ports]:
    if request.param == "sqlite":
        opened = SqliteRecords.open(tmp_path / "ports.sqlite")
        yield Ports(opened.records, opened.keks, opened.modes)
        await opened.aclose()
        return
    azurite: AzuriteInfo = request.getfixturevalue("azurite")
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    suffix = uuid.uuid4().hex[:12]
    data, keks = service.get_table_client(f"p{suffix}"), service.get_table_client(f"k{suffix}")
    try:
        yield Ports(TableRecordStore(data), TableKekStore(keks), TableModeStore(data))
    finally:
        for client in (data, keks):
            await service.delete_table(client.table_name)
            await client.close()
        await service.close()


def direct(record_id: str, partition: str = "t") -> RecordWrite:
    return RecordWrite(partition, record_id, RecordFormat.DIRECT, WrapAlgorithm.RSA_OAEP_256,
                       os.urandom(256), KCV, key_id=KEY_ID, sealed=b"sealed")  # fmt: skip


def hierarchy(record_id: str, partition: str = "t") -> RecordWrite:
    return RecordWrite(partition, record_id, RecordFormat.HIERARCHY, WrapAlgorithm.A256KW,
                       os.urandom(40), KCV, kek_version=kek_version(1),
                       sealed=b"sealed")  # fmt: skip


def _content(record: object) -> tuple[object, ...]:
    """What a record says, without its ETag (each store has its own)."""
    return tuple(v for k, v in vars(record).items() if k != "etag")


async def test_records_insert_read_replace_scan(ports: Ports) -> None:
    records = ports.records
    one = await records.insert_record(direct("a"))
    two = await records.insert_record(hierarchy("b"))
    assert _content(await records.read_record("t", "a")) == _content(one)
    assert _content(await records.read_record("t", "b")) == _content(two)
    assert await records.read_record("t", "zz") is None
    with pytest.raises(ConflictError):
        await records.insert_record(direct("a"))
    with pytest.raises(InvalidInputError):
        await records.insert_record(direct("x", partition="~keyward"))
    with pytest.raises(InvalidInputError):
        await records.insert_record(replace(hierarchy("x"), wrapped=b"short"))

    current = await records.read_record("t", "a")
    assert current is not None
    swap = replace(hierarchy("a"), kcv=current.kcv)
    other = await records.replace_record(current, replace(swap, record_id="b"))
    assert other.outcome is WriteOutcome.FAILED
    assert (await records.replace_record(current, replace(swap, kcv="0" * 16))).outcome is (
        WriteOutcome.FAILED
    )
    done = await records.replace_record(current, swap)
    assert done.outcome is WriteOutcome.WRITTEN
    assert (await records.replace_record(current, swap)).outcome is WriteOutcome.CONFLICT
    now = await records.read_record("t", "a")
    assert now is not None
    assert (now.format, now.key_id, now.kek_version, now.sealed) == (
        RecordFormat.HIERARCHY, None, kek_version(1), b"sealed"
    )  # fmt: skip

    await ports.modes.write_mode(ModeRecord(StoreMode.HIERARCHY))
    await records.insert_record(direct("c", partition="u"))
    seen, token = [], None
    while True:
        page = await records.scan_records(page_size=1, continuation=token)
        seen += [r.ref for r in page.records]
        token = page.continuation
        if token is None:
            break
    assert seen == ["t/a", "t/b", "u/c"]
    assert [r.ref for r in (await records.scan_records(partition="u")).records] == ["u/c"]


async def test_keks_insert_list_delete_partitions(ports: Ports) -> None:
    keks = ports.keks

    def new(partition: str, n: int) -> NewDek:
        return NewDek(partition, kek_version(n), KEY_ID, WrapAlgorithm.RSA_OAEP_256,
                      os.urandom(256), KCV)  # fmt: skip

    assert await keks.list_keks("t") == []
    assert (await keks.kek_partitions()).partitions == []
    with pytest.raises(InvalidInputError):
        await keks.insert_kek(replace(new("t", 1), dek_id="not-a-version"))
    first = await keks.insert_kek(new("t", 1))
    second = await keks.insert_kek(new("t", 2))
    await keks.insert_kek(new("u", 1))
    with pytest.raises(ConflictError):
        await keks.insert_kek(new("t", 1))
    assert [k.version for k in await keks.list_keks("t")] == [second.version, first.version]
    read = await keks.read_kek("t", first.version)
    assert read is not None
    assert _content(read)[:-1] == _content(first)[:-1]  # created_at: each store's own clock
    assert await keks.read_kek("t", kek_version(9)) is None
    # Another row's ETag (well formed for the service), or another row version.
    stale = replace(first, etag=second.etag if second.etag != first.etag else "999")
    assert (await keks.delete_kek(stale)).outcome is WriteOutcome.CONFLICT
    assert (await keks.delete_kek(read)).outcome is WriteOutcome.WRITTEN
    assert [k.version for k in await keks.list_keks("t")] == [second.version]
    partitions, token = [], None
    while True:
        page = await keks.kek_partitions(page_size=1, continuation=token)
        partitions += page.partitions
        token = page.continuation
        if token is None:
            break
    assert partitions == ["t", "u"]


async def test_the_mode_row(ports: Ports) -> None:
    modes = ports.modes
    assert (await modes.read_mode()).mode is StoreMode.DIRECT
    assert (await modes.read_mode()).etag == ""
    first = await modes.write_mode(ModeRecord(StoreMode.TO_HIERARCHY, migration="{}"))
    with pytest.raises(ConflictError):
        await modes.write_mode(ModeRecord(StoreMode.HIERARCHY))
    second = await modes.write_mode(ModeRecord(StoreMode.HIERARCHY, etag=first.etag))
    with pytest.raises(ConflictError):
        await modes.write_mode(ModeRecord(StoreMode.DIRECT, etag=first.etag))
    read = await modes.read_mode()
    assert (read.mode, read.etag, read.migration) == (StoreMode.HIERARCHY, second.etag, None)
