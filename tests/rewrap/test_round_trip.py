"""The engine's main path: every DEK at an older version ends at the target, same plaintext."""

from __future__ import annotations

import asyncio

from shared.rewrap import EngineSettings, InMemoryJobStore, JobStatus, RewrapEngine
from tests.rewrap.fakes import KEY_REF, V1, V2, V3, MemoryDekStore, key_source, make_dek, unwrap_row


def _engine(store: MemoryDekStore, source, jobs=None, **settings) -> RewrapEngine:
    return RewrapEngine(
        store=store,
        keys=source,
        jobs=jobs or InMemoryJobStore(),
        settings=EngineSettings(rate_ceiling=1_000_000, **settings),
    )


def test_rewraps_every_old_dek_to_the_target_with_the_same_plaintext() -> None:
    source = key_source(V1, V2, V3)
    store = MemoryDekStore()
    plaintexts = {}
    needing_rewrap = 0
    for index in range(23):
        version = (V1, V2, V3)[index % 3]
        row, plain = make_dek(source, f"dek-{index:03}", version, partition=f"p{index % 2}")
        store.add(row)
        plaintexts[row.ref] = plain
        needing_rewrap += version != V3

    report = asyncio.run(_engine(store, source, page_size=5, workers=4).run(KEY_REF, V3))

    assert report.status is JobStatus.COMPLETED
    assert report.consistent
    assert report.counters.rewrapped == needing_rewrap == 16
    assert report.counters.failed == {}
    for ref, row in store.rows.items():
        assert row.key_id == f"{KEY_REF}/{V3}"
        assert unwrap_row(source, row) == plaintexts[ref]
        assert row.previous_key_id in (f"{KEY_REF}/{V1}", f"{KEY_REF}/{V2}", None)
    assert all(size <= 5 for size in store.batches)


def test_a_store_with_no_deks_of_the_key_completes_at_once() -> None:
    source = key_source(V1, V2)
    report = asyncio.run(_engine(MemoryDekStore(), source).run(KEY_REF))

    assert report.status is JobStatus.COMPLETED
    assert report.counters.scanned == 0
    assert report.state.pages == 1
