"""What keyward's pre-hierarchy readers do with the new rows (``docs/record-format.md``):
the DEK stores' key scans never see format-2 rows, and a point read reports them as problem
rows, never unwrapped. The readers are the unchanged format-1 code paths."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from shared.adapters.dek_table._entity import details
from shared.adapters.sqlite_records import SqliteRecords
from shared.crypto import WrapAlgorithm
from shared.records import FIRST_KEK_VERSION, ModeRecord, RecordFormat, RecordWrite, StoreMode
from shared.records._entities import mode_entity, new_record_entity

OLD_READER_PROBLEM = "key id '' is not a versioned key id"
WRITE = RecordWrite(
    "t", "r", RecordFormat.HIERARCHY, WrapAlgorithm.A256KW, bytes(40), "0123456789abcdef",
    kek_version=FIRST_KEK_VERSION, sealed=b"\x01" * 29,
)  # fmt: skip


def test_table_point_read_of_a_format_2_entity_is_a_problem_row() -> None:
    entity = new_record_entity(WRITE, datetime(2026, 12, 6, tzinfo=UTC))
    record = details(entity).record
    assert record.problem == OLD_READER_PROBLEM
    assert record.wrapped == b""


def test_table_point_read_of_the_mode_row_is_a_problem_row() -> None:
    entity = mode_entity(ModeRecord(StoreMode.HIERARCHY), datetime(2026, 12, 6, tzinfo=UTC))
    assert details(entity).record.problem is not None


async def test_sqlite_point_read_and_scan_of_a_format_2_row(tmp_path: Path) -> None:
    ports = SqliteRecords.open(tmp_path / "r.sqlite")
    await ports.records.insert_record(WRITE)
    found = await ports.dek_store.get("t/r")
    assert found is not None
    assert found.record.problem == OLD_READER_PROBLEM
    assert found.record.wrapped == b""
    page = await ports.dek_store.scan("https://kv.vault.azure.net/keys/k", exclude_version=None)
    assert page.records == []
    await ports.aclose()
