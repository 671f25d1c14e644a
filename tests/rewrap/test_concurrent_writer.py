"""A concurrent writer's change is never overwritten: every write is ETag-conditional."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shared.rewrap import ItemOutcome
from shared.stores import DekRecord
from tests.rewrap.fakes import (
    KEY_REF,
    V1,
    V2,
    MemoryDekStore,
    engine_for,
    key_source,
    make_dek,
    populate,
    unwrap_row,
)


def test_writer_replacing_a_dek_mid_job_keeps_its_dek_and_it_is_rewrapped_on_re_read() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    plaintexts = populate(store, source, [V1], 8)
    replacement, replacement_plain = make_dek(source, "dek-0005", V1)

    def writer(records: Sequence[DekRecord]) -> None:
        # Right after the engine read dek-0005, someone replaces it with a new DEK.
        if any(r.ref == "dek-0005" for r in records) and store.rows["dek-0005"].etag == 1:
            store.touch("dek-0005", wrapped=replacement.wrapped, kcv=replacement.kcv)

    store.after_scan = writer
    report = asyncio.run(engine_for(store, source, page_size=3).run(KEY_REF, V2))

    assert report.consistent
    assert report.counters.rewrapped == 8
    assert report.counters.conflicts == 0
    # The writer's DEK, not the one the engine first read, is what is now wrapped under V2.
    assert unwrap_row(source, store.rows["dek-0005"]) == replacement_plain
    assert replacement_plain != plaintexts["dek-0005"]


def test_writer_that_keeps_changing_a_dek_wins_and_the_conflict_is_reported() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 4)
    replacement, replacement_plain = make_dek(source, "dek-0002", V1)

    def writer(records: Sequence[DekRecord]) -> None:
        if any(r.ref == "dek-0002" for r in records):
            store.touch("dek-0002", wrapped=replacement.wrapped, kcv=replacement.kcv)

    store.after_scan = writer
    report = asyncio.run(engine_for(store, source, page_size=2).run(KEY_REF, V2))

    assert report.consistent
    assert report.counters.conflicts == 1
    assert report.counters.rewrapped == 3
    row = store.rows["dek-0002"]
    assert row.key_id.endswith(V1)
    assert row.wrapped == replacement.wrapped
    assert unwrap_row(source, row) == replacement_plain
    [conflict] = [i for i in report.issues if i.outcome is ItemOutcome.CONFLICT]
    assert conflict.ref == "dek-0002"


def test_dek_rewrapped_or_deleted_by_someone_else_is_gone_not_failed() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 4)

    def writer(records: Sequence[DekRecord]) -> None:
        if any(r.ref == "dek-0001" for r in records) and "dek-0001" in store.rows:
            del store.rows["dek-0001"]
        if any(r.ref == "dek-0002" for r in records) and store.rows["dek-0002"].etag == 1:
            store.touch("dek-0002")

    store.after_scan = writer
    report = asyncio.run(engine_for(store, source, page_size=4).run(KEY_REF, V2))

    assert report.consistent
    assert report.counters.gone == 1
    assert report.counters.rewrapped == 3
    assert "dek-0001" not in store.rows
