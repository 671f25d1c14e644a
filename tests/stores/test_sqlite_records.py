"""The records ports over SQLite, and what they change in SqliteDekStore's file.

Format-2 rows live in ``deks`` beside format-1 rows and must stay invisible to the vault
key scans and counts; KEKs live in ``keks`` with the DEK layout so ``SqliteDekStore(...,
table="keks")`` rewraps them; the mode lives in ``keyward_meta``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shared.adapters.sqlite_records import SqliteRecords
from shared.crypto import DataKey, LocalAesKeyWrapper, WrapAlgorithm
from shared.errors import ConflictError, InvalidInputError
from shared.records import (
    FIRST_KEK_VERSION,
    ModeRecord,
    RecordFormat,
    RecordWrite,
    StoredRecord,
    StoreMode,
    new_kek_version,
)
from shared.stores import NewDek, SqliteDatabase, SqliteDekStore, WriteOutcome
from shared.stores._sqlite_schema import SCHEMA
from tests.stores.conftest import KEY_REF, Keys
from tests.stores.test_conformance import rewrap_to, scan_all

KEK = DataKey(bytes(range(32)))


def direct_write(keys: Keys, partition: str, record_id: str, sealed: bytes | None = None
                 ) -> RecordWrite:  # fmt: skip
    dek = DataKey.generate()
    return RecordWrite(
        partition, record_id, RecordFormat.DIRECT, keys.v1.algorithm, keys.v1.wrap(dek), dek.kcv,
        key_id=keys.v1.key_id, sealed=sealed,
    )  # fmt: skip


def hierarchy_write(partition: str, record_id: str, dek: DataKey | None = None,
                    sealed: bytes | None = None) -> RecordWrite:  # fmt: skip
    dek = dek or DataKey.generate()
    return RecordWrite(
        partition, record_id, RecordFormat.HIERARCHY, WrapAlgorithm.A256KW,
        LocalAesKeyWrapper("kek", KEK).wrap(dek), dek.kcv, kek_version=FIRST_KEK_VERSION,
        sealed=sealed,
    )  # fmt: skip


@pytest.fixture
async def ports(tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = SqliteRecords.open(tmp_path / "records.sqlite")
    yield opened
    await opened.aclose()


async def test_format_2_rows_are_invisible_to_the_vault_key_scans(
    ports: SqliteRecords, keys: Keys
) -> None:
    for n in range(3):
        await ports.records.insert_record(direct_write(keys, "t", f"d{n}"))
        await ports.records.insert_record(hierarchy_write("t", f"h{n}"))
    store = ports.dek_store
    assert [r.ref for r in await scan_all(store)] == ["t/d0", "t/d1", "t/d2"]
    counts = await store.version_counts(KEY_REF)
    assert [(c.key_id, c.current) for c in counts] == [(keys.v1.key_id, 3)]
    # The empty key ref the format-2 rows hold matches no key either.
    assert await scan_all(store, key_ref="") == []
    page = await ports.records.scan_records()
    assert len(page.records) == 6
    assert {r.format for r in page.records} == {RecordFormat.DIRECT, RecordFormat.HIERARCHY}


async def test_a_vault_rewrap_never_touches_a_format_2_row(
    ports: SqliteRecords, keys: Keys
) -> None:
    await ports.records.insert_record(direct_write(keys, "t", "r"))
    [record] = await scan_all(ports.dek_store)
    rewrap = rewrap_to(record, keys, keys.v2)
    # A migration converted the row meanwhile (raw here; the SQL guard is what is tested),
    # so the vault rewrap must not land, even with a row version that still matches.
    ports.database.execute("UPDATE deks SET format = 2, kek_version = ?, key_ref = ''",
                           (FIRST_KEK_VERSION,))  # fmt: skip
    [result] = await ports.dek_store.replace_batch([rewrap])
    assert result.outcome is WriteOutcome.CONFLICT


async def test_old_database_gains_the_format_columns_on_open(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "old.sqlite"
    old = SCHEMA.replace("    format        INTEGER,\n    kek_version   TEXT,\n", "")
    assert "kek_version" not in old
    with sqlite3.connect(path) as db:
        db.executescript(old)
        db.execute(
            "INSERT INTO deks (partition, dek_id, key_ref, key_version, key_id, algorithm,"
            " wrapped, kcv, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,'','')",
            ("p", "d", KEY_REF, "1" * 32, keys.v1.key_id, "RSA-OAEP-256", "AAAA", None),
        )
    for _ in range(2):  # idempotent
        ports = SqliteRecords.open(path)
        record = await ports.records.read_record("p", "d")
        assert record is not None
        assert record.format is RecordFormat.DIRECT
        assert [r.ref for r in await scan_all(ports.dek_store)] == ["p/d"]
        await ports.aclose()
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(deks)")}
    assert {"format", "kek_version"} <= columns


async def test_kek_table_is_a_dek_store_the_rewrap_engine_can_use(
    ports: SqliteRecords, keys: Keys
) -> None:
    for partition in ("a", "b"):
        kek = DataKey.generate()
        new = NewDek(partition, FIRST_KEK_VERSION, keys.v1.key_id, keys.v1.algorithm,
                     keys.v1.wrap(kek), kek.kcv)  # fmt: skip
        await ports.keks.insert_kek(new)
    kek_store = ports.kek_dek_store
    assert kek_store.name == "sqlite:records.sqlite:keks"
    assert ports.dek_store.name == ports.records.name == "sqlite:records.sqlite"
    assert ports.keks.name == kek_store.name
    stale = await scan_all(kek_store, exclude="2" * 32)
    assert [r.ref for r in stale] == [f"a/{FIRST_KEK_VERSION}", f"b/{FIRST_KEK_VERSION}"]
    results = await kek_store.replace_batch([rewrap_to(r, keys, keys.v2) for r in stale])
    assert {r.outcome for r in results} == {WriteOutcome.WRITTEN}
    [kek_a] = await ports.keks.list_keks("a")
    assert kek_a.key_id == keys.v2.key_id
    assert await scan_all(ports.dek_store) == []  # records untouched
    # A second SqliteDekStore over the same file and table (another process) agrees.
    other = SqliteDekStore(ports.database.path, table="keks")
    assert len(await scan_all(other, exclude=None)) == 2
    await other.close()


async def test_keks_newest_first_conflict_and_conditional_delete(
    ports: SqliteRecords, keys: Keys
) -> None:
    from datetime import UTC, datetime

    versions = [FIRST_KEK_VERSION, new_kek_version(datetime(2026, 1, 1, tzinfo=UTC))]
    for version in versions:
        kek = DataKey.generate()
        await ports.keks.insert_kek(
            NewDek("p", version, keys.v1.key_id, keys.v1.algorithm, keys.v1.wrap(kek), kek.kcv)
        )
    listed = await ports.keks.list_keks("p")
    assert [k.version for k in listed] == versions[::-1]
    kek = DataKey.generate()
    again = NewDek("p", FIRST_KEK_VERSION, keys.v1.key_id, keys.v1.algorithm,
                   keys.v1.wrap(kek), kek.kcv)  # fmt: skip
    with pytest.raises(ConflictError):
        await ports.keks.insert_kek(again)
    with pytest.raises(InvalidInputError, match="not a KEK version id"):
        await ports.keks.insert_kek(NewDek("p", "v1", keys.v1.key_id, keys.v1.algorithm,
                                           b"x" * 256, "0" * 16))  # fmt: skip
    old = listed[1]
    stale = await ports.keks.read_kek("p", old.version)
    assert stale is not None
    ports.database.execute("UPDATE keks SET row_version = row_version + 1 WHERE dek_id = ?",
                           (old.version,))  # fmt: skip
    assert (await ports.keks.delete_kek(stale)).outcome is WriteOutcome.CONFLICT
    fresh = await ports.keks.read_kek("p", old.version)
    assert fresh is not None
    assert (await ports.keks.delete_kek(fresh)).outcome is WriteOutcome.WRITTEN
    assert (await ports.keks.delete_kek(fresh)).outcome is WriteOutcome.NOT_FOUND
    assert [k.version for k in await ports.keks.list_keks("p")] == [versions[1]]


async def test_kek_partitions_page_in_order(ports: SqliteRecords, keys: Keys) -> None:
    for n in range(7):
        kek = DataKey.generate()
        new = NewDek(f"p{n}", FIRST_KEK_VERSION, keys.v1.key_id, keys.v1.algorithm,
                     keys.v1.wrap(kek), kek.kcv)  # fmt: skip
        await ports.keks.insert_kek(new)
    seen: list[str] = []
    continuation = None
    while True:
        page = await ports.keks.kek_partitions(continuation=continuation, page_size=3)
        seen.extend(page.partitions)
        if (continuation := page.continuation) is None:
            break
    assert seen == [f"p{n}" for n in range(7)]


async def test_replace_converts_formats_and_keeps_the_data(
    ports: SqliteRecords, keys: Keys
) -> None:
    dek = DataKey.generate()
    first = RecordWrite(
        "t", "r", RecordFormat.DIRECT, keys.v1.algorithm, keys.v1.wrap(dek), dek.kcv,
        key_id=keys.v1.key_id, sealed=b"sealed data",
    )  # fmt: skip
    await ports.records.insert_record(first)
    ports.database.execute("UPDATE deks SET prev_key_id = 'x', unreadable = 'why'")
    current = await ports.records.read_record("t", "r")
    assert current is not None
    result = await ports.records.replace_record(current, hierarchy_write("t", "r", dek))
    assert result.outcome is WriteOutcome.WRITTEN
    converted = await ports.records.read_record("t", "r")
    assert converted is not None
    assert converted.format is RecordFormat.HIERARCHY
    assert converted.sealed == b"sealed data"
    assert converted.etag == result.new_etag
    row = ports.database.run_now(
        lambda db: db.execute(
            "SELECT key_ref, key_id, prev_key_id, unreadable, format FROM deks"
        ).fetchone()
    )
    assert row == ("", "", None, None, 2)
    # Stale ETag: conflict; another DEK: refused; nothing written either way.
    assert (await ports.records.replace_record(current, first)).outcome is WriteOutcome.CONFLICT
    other = direct_write(keys, "t", "r")
    refused = await ports.records.replace_record(converted, other)
    assert refused.outcome is WriteOutcome.FAILED
    back = await ports.records.replace_record(converted, first)
    assert back.outcome is WriteOutcome.WRITTEN
    again = await ports.records.read_record("t", "r")
    assert again is not None
    assert (again.format, again.key_id, again.kek_version) == (
        RecordFormat.DIRECT, keys.v1.key_id, None,
    )  # fmt: skip
    assert [r.ref for r in await scan_all(ports.dek_store)] == ["t/r"]
    write = direct_write(keys, "t", "gone")
    gone = StoredRecord("t", "gone", "1", RecordFormat.DIRECT, None, b"", write.kcv)
    missing = await ports.records.replace_record(gone, write)
    assert missing.outcome is WriteOutcome.NOT_FOUND


async def test_insert_conflict_and_bad_writes(ports: SqliteRecords, keys: Keys) -> None:
    await ports.records.insert_record(direct_write(keys, "t", "r"))
    with pytest.raises(ConflictError, match="t/r already exists"):
        await ports.records.insert_record(hierarchy_write("t", "r"))
    with pytest.raises(InvalidInputError, match="reserved"):
        await ports.records.insert_record(hierarchy_write("~keyward", "mode"))
    bad = RecordWrite("t", "x", RecordFormat.HIERARCHY, WrapAlgorithm.A256KW, b"short",
                      "0" * 16, kek_version=FIRST_KEK_VERSION)  # fmt: skip
    with pytest.raises(InvalidInputError, match="40 bytes"):
        await ports.records.insert_record(bad)


async def test_scan_reports_problem_rows_and_point_reads_refuse_them(
    ports: SqliteRecords, keys: Keys
) -> None:
    for name in ("a", "b", "c", "d"):
        await ports.records.insert_record(hierarchy_write("t", name))
    ports.database.execute("UPDATE deks SET format = 3 WHERE dek_id = 'b'")
    ports.database.execute("UPDATE deks SET wrapped = 'not base64!' WHERE dek_id = 'c'")
    ports.database.execute("UPDATE deks SET kek_version = 'v1' WHERE dek_id = 'd'")
    page = await ports.records.scan_records(partition="t", page_size=2)
    assert page.continuation is not None
    rest = await ports.records.scan_records(partition="t", continuation=page.continuation)
    problems = {r.record_id: r.problem for r in [*page.records, *rest.records]}
    assert problems["a"] is None
    assert problems["b"] == (
        "record format 3 is newer than this keyward (reads 1, 2): upgrade keyward"
    )
    assert problems["c"] == "wrapped key is not valid base64"
    assert problems["d"] is not None
    assert "KekVersion" in problems["d"]
    for name in ("b", "c", "d"):
        with pytest.raises(InvalidInputError, match=f"record t/{name} cannot be used"):
            await ports.records.read_record("t", name)
    assert await ports.records.read_record("t", "none") is None
    assert (await ports.records.scan_records(partition="other")).records == []


async def test_mode_row_is_etag_guarded(ports: SqliteRecords) -> None:
    assert await ports.modes.read_mode() == ModeRecord()
    written = await ports.modes.write_mode(ModeRecord(StoreMode.TO_HIERARCHY, migration="{}"))
    assert (written.mode, written.etag, written.migration) == (
        StoreMode.TO_HIERARCHY, "1", "{}",
    )  # fmt: skip
    assert written.changed_at is not None
    with pytest.raises(ConflictError):
        await ports.modes.write_mode(ModeRecord(StoreMode.HIERARCHY))  # must not exist yet
    done = await ports.modes.write_mode(ModeRecord(StoreMode.HIERARCHY, etag=written.etag))
    assert done.etag == "2"
    with pytest.raises(ConflictError):
        await ports.modes.write_mode(ModeRecord(StoreMode.DIRECT, etag=written.etag))
    assert await ports.modes.read_mode() == done
    ports.database.execute("UPDATE keyward_meta SET value = 'sideways'")
    with pytest.raises(InvalidInputError, match="store mode 'sideways' is unknown"):
        await ports.modes.read_mode()


def test_table_names_are_checked() -> None:
    with pytest.raises(InvalidInputError):
        SqliteDekStore(":memory:", table="deks; DROP TABLE deks")


async def test_a_given_database_is_shared_and_left_open() -> None:
    database = SqliteDatabase()
    store = SqliteDekStore(database)
    assert store.name == "sqlite::memory:"
    await store.close()  # does not close a database it was given
    assert database.execute("SELECT 1") == -1
    database.close()
