"""Property tests: triage never raises and never rewraps what it must not; job states
round-trip; the limiter's rate stays within bounds; memory does not grow with the DEK count."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from shared.crypto import WrapAlgorithm, key_check_value
from shared.rewrap import AimdRateLimiter, ItemIssue, ItemOutcome, JobCounters, JobState, JobStatus
from shared.rewrap._triage import Action, RecordTriage
from shared.stores import (
    CountPage,
    DekRecord,
    Rewrap,
    ScanPage,
    VersionCount,
    WriteOutcome,
    WriteResult,
)
from tests.rewrap.fakes import KEY_REF, OTHER_KEY_REF, V1, V2, engine_for
from tests.rewrap.test_streaming import XorKeySource

versions = st.sampled_from([V1, V2, V1.upper(), "x" * 32, "", "1" * 31])
key_refs = st.sampled_from([KEY_REF, KEY_REF.upper(), OTHER_KEY_REF, KEY_REF + "-2", ""])
algorithms = st.one_of(st.none(), st.sampled_from(list(WrapAlgorithm)))


@given(
    key_ref=key_refs,
    version=versions,
    algorithm=algorithms,
    wrapped=st.binary(max_size=8),
    problem=st.one_of(st.none(), st.text(max_size=5)),
    legacy=st.booleans(),
)
def test_triage_never_raises_and_only_rewraps_sound_older_records(
    key_ref: str,
    version: str,
    algorithm: WrapAlgorithm | None,
    wrapped: bytes,
    problem: str | None,
    legacy: bool,
) -> None:
    record = DekRecord("r", "p", "1", f"{key_ref}/{version}", algorithm, wrapped, problem=problem)
    triage = RecordTriage(KEY_REF, V2, allow_legacy_rsa1_5=legacy).classify(record)
    if triage.action is Action.REWRAP:
        assert problem is None
        assert key_ref.lower() == KEY_REF.lower()
        assert triage.version == V1
        assert algorithm is not None
        assert wrapped
        assert legacy or algorithm is not WrapAlgorithm.RSA1_5
    if triage.action is Action.CURRENT:
        assert problem is None
        assert version.lower() == V2
    if key_ref.lower() != KEY_REF.lower() or problem is not None:
        assert triage.action is Action.REPORT


@given(
    scanned=st.integers(0, 10**9),
    reasons=st.dictionaries(st.sampled_from(["integrity", "foreign_key", "x"]), st.integers(0, 99)),
    continuation=st.one_of(st.none(), st.text(max_size=20)),
    pending=st.lists(st.text(min_size=1, max_size=8), max_size=5),
    status=st.sampled_from(list(JobStatus)),
)
def test_job_state_round_trips_through_json(
    scanned: int,
    reasons: dict[str, int],
    continuation: str | None,
    pending: list[str],
    status: JobStatus,
) -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    state = JobState(
        job_id="rewrap-x",
        key_ref=KEY_REF,
        target_version=V2,
        target_key_id=f"{KEY_REF}/{V2}",
        status=status,
        created_at=now,
        updated_at=now,
        continuation=continuation,
        counters=JobCounters(scanned=scanned, failed=dict(reasons)),
        pending_conflicts=tuple(pending),
        issues=(ItemIssue("r", ItemOutcome.CONFLICT, "etag_changed", f"{KEY_REF}/{V1}"),),
    )
    assert JobState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 30)), max_size=200))
def test_limiter_rate_stays_between_floor_and_ceiling(events: list[tuple[bool, float]]) -> None:
    now = [0.0]
    limiter = AimdRateLimiter(400, clock=lambda: now[0])
    for throttled, retry_after in events:
        now[0] += 0.01
        if throttled:
            limiter.on_throttled(now[0], retry_after)
        else:
            limiter.on_success()
        assert 1.0 <= limiter.rate <= 400


class SyntheticStore:
    """Generates records on the fly (holds none), so only the engine's memory is measured."""

    name = "synthetic"

    def __init__(self, count: int) -> None:
        self.count = count
        self.written = 0

    async def scan(
        self,
        key_ref: str,
        *,
        exclude_version: str | None,
        continuation: str | None = None,
        page_size: int = 100,
    ) -> ScanPage:
        start = int(continuation or 0)
        end = min(self.count, start + page_size)
        records = []
        for index in range(start, end):
            material = index.to_bytes(32, "big")
            records.append(
                DekRecord(
                    f"p{index % 16}/d{index}",
                    f"p{index % 16}",
                    "1",
                    f"{KEY_REF}/{V1}",
                    WrapAlgorithm.RSA_OAEP_256,
                    bytes(b ^ 0x11 for b in material),
                    key_check_value(material),
                )
            )
        return ScanPage(records, str(end) if end < self.count else None)

    async def replace_batch(self, rewraps: Sequence[Rewrap]) -> Sequence[WriteResult]:
        self.written += len(rewraps)
        return [WriteResult(r.record.ref, WriteOutcome.WRITTEN) for r in rewraps]

    async def mark_unreadable(self, record: DekRecord, reason: str) -> WriteResult:
        raise AssertionError("no DEK is unreadable here")

    async def count_versions(self, key_ref: str, **page: object) -> CountPage:
        return CountPage(())  # every DEK is at the target once the pass ends

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        return []

    async def close(self) -> None:
        return None


def _peak_bytes(count: int) -> int:
    store = SyntheticStore(count)
    tracemalloc.start()
    try:
        report = asyncio.run(engine_for(store, XorKeySource(), workers=16).run(KEY_REF, V2))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.counters.rewrapped == store.written == count
    return peak


def test_memory_stays_flat_from_2k_to_20k_deks() -> None:
    small, large = _peak_bytes(2_000), _peak_bytes(20_000)
    assert large <= small * 1.2, (small, large)
