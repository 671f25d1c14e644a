"""keyward's own Table state against Azurite: job checkpoints (compare-and-set, chunked
large states, per-shard isolation) and the event ledger (dedup, rejected events)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.adapters.table_state import EventLedger, TableJobStore
from shared.errors import ConflictError, EventRejectedError
from shared.events import rejected_event_record
from shared.events._types import RejectionReason
from shared.rewrap import ItemIssue, ItemOutcome, JobState, JobStatus, rewrap_job_id

pytestmark = pytest.mark.azurite

KEY_REF = "https://kv.vault.azure.net/keys/k"
V2 = "b" * 32
NOW = datetime(2026, 11, 29, tzinfo=UTC)


def _state(**changes: object) -> JobState:
    state = JobState(
        job_id=rewrap_job_id(KEY_REF, V2),
        key_ref=KEY_REF,
        target_version=V2,
        target_key_id=f"{KEY_REF}/{V2}",
        status=JobStatus.RUNNING,
        created_at=NOW,
        updated_at=NOW,
    )
    return state.evolve(**changes)


async def test_job_state_compare_and_set(table: object) -> None:
    jobs = TableJobStore(table, shard="table:keywarddeks")  # type: ignore[arg-type]
    etag = await jobs.put(_state(), expected_etag=None)
    with pytest.raises(ConflictError):
        await jobs.put(_state(), expected_etag=None)
    newer = await jobs.put(_state(pages=1), expected_etag=etag)
    with pytest.raises(ConflictError):
        await jobs.put(_state(pages=2), expected_etag=etag)
    stored = await jobs.get(_state().job_id)
    assert stored is not None
    assert stored.etag == newer
    assert stored.state.pages == 1
    assert [s.job_id for s in await jobs.list_jobs(KEY_REF)] == [_state().job_id]


async def test_large_job_state_is_chunked_and_round_trips(table: object) -> None:
    jobs = TableJobStore(table, shard="blob:data")  # type: ignore[arg-type]
    issues = tuple(
        ItemIssue(f"p/{i:05d}", ItemOutcome.FAILED, "integrity", f"{KEY_REF}/{'a' * 32}", "x" * 300)
        for i in range(200)
    )
    await jobs.put(_state(issues=issues), expected_etag=None)
    stored = await jobs.get(_state().job_id)
    assert stored is not None
    assert stored.state.issues == issues


async def test_shards_keep_separate_states_for_one_job(table: object) -> None:
    table_shard = TableJobStore(table, shard="table:keywarddeks")  # type: ignore[arg-type]
    blob_shard = TableJobStore(table, shard="blob:data")  # type: ignore[arg-type]
    await table_shard.put(_state(pages=3), expected_etag=None)
    assert await blob_shard.get(_state().job_id) is None
    await blob_shard.put(_state(pages=7), expected_etag=None)
    first, second = await table_shard.get(_state().job_id), await blob_shard.get(_state().job_id)
    assert first is not None
    assert second is not None
    assert (first.state.pages, second.state.pages) == (3, 7)


async def test_ledger_remembers_each_event_once(table: object) -> None:
    ledger = EventLedger(table)  # type: ignore[arg-type]
    key = "Microsoft.KeyVault.KeyNewVersionCreated|e-1"
    assert await ledger.seen(key) is False
    assert await ledger.remember(
        key, event_type="Microsoft.KeyVault.KeyNewVersionCreated", event_id="e-1"
    )
    assert await ledger.seen(key) is True
    assert not await ledger.remember(key, event_type="x", event_id="e-1")


async def test_ledger_keeps_rejected_events_newest_first(table: object) -> None:
    ledger = EventLedger(table)  # type: ignore[arg-type]
    for index in range(3):
        error = EventRejectedError(RejectionReason.FOREIGN_VAULT.value, f"bad event {index}")
        at = datetime(2026, 11, 29, 1, index, tzinfo=UTC)
        await ledger.reject(rejected_event_record({"id": f"e{index}"}, error, at))
    recent = await ledger.recent_rejections(limit=2)
    assert [r["detail"] for r in recent] == ["bad event 2", "bad event 1"]
