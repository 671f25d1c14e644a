"""One bad DEK never stops the job: each is reported with a reason and left untouched."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from shared.crypto import WrapAlgorithm
from shared.errors import AccessDeniedError, TransientServiceError
from shared.rewrap import FailureReason, ItemOutcome, JobStatus, RetryPolicy, UnreadableReason
from tests.rewrap.fakes import (
    KEY_REF,
    OTHER_KEY_REF,
    V1,
    V2,
    FaultyKeySource,
    MemoryDekStore,
    engine_for,
    key_source,
    make_dek,
    populate,
    rsa_key,
    unwrap_row,
)

BLOB_PREFIX = b"2.0\0\0\0\0\0"


def _bad_records(store: MemoryDekStore, source) -> dict[str, str]:
    """Add one DEK per failure kind; returns ref -> expected reason."""
    good, _ = make_dek(source, "template", V1)
    other = make_dek(source, "x", V1)[0]
    source.add_version(OTHER_KEY_REF, V1, rsa_key(5))
    foreign, _ = make_dek(source, "bad-foreign", V1, key_ref=OTHER_KEY_REF)
    flipped = bytearray(good.wrapped)
    flipped[7] ^= 0x40
    rows = {
        "bad-base64": replace(
            good, ref="bad-base64", wrapped=b"", problem="wrapped key is not base64"
        ),
        "bad-foreign": foreign,
        "bad-alg-none": replace(good, ref="bad-alg-none", algorithm=None),
        "bad-rsa15": replace(good, ref="bad-rsa15", algorithm=WrapAlgorithm.RSA1_5),
        "bad-a256kw": replace(good, ref="bad-a256kw", algorithm=WrapAlgorithm.A256KW),
        "bad-kcv": replace(good, ref="bad-kcv", kcv=other.kcv),
        "bad-corrupt": replace(good, ref="bad-corrupt", wrapped=bytes(flipped)),
        "bad-truncated": replace(good, ref="bad-truncated", wrapped=good.wrapped[:-3]),
        "bad-version": replace(good, ref="bad-version", key_id=f"{KEY_REF}/not-a-version"),
        "bad-prefix": replace(
            make_dek(source, "bad-prefix", V1, material_prefix=b"1.0\0\0\0\0\0", with_kcv=False)[0],
            material_prefix=BLOB_PREFIX,
        ),
    }
    for row in rows.values():
        store.add(row)
    return {
        "bad-base64": FailureReason.UNPARSEABLE,
        "bad-foreign": FailureReason.FOREIGN_KEY,
        "bad-alg-none": FailureReason.UNSUPPORTED_ALGORITHM,
        "bad-rsa15": FailureReason.UNSUPPORTED_ALGORITHM,
        "bad-a256kw": FailureReason.UNSUPPORTED_ALGORITHM,
        "bad-kcv": FailureReason.INTEGRITY,
        "bad-corrupt": FailureReason.INTEGRITY,
        "bad-truncated": FailureReason.INTEGRITY,
        "bad-version": FailureReason.UNPARSEABLE,
        "bad-prefix": FailureReason.INTEGRITY,
    }


def test_corrupted_records_are_reported_per_item_and_left_untouched() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    plaintexts = populate(store, source, [V1], 12)
    expected = _bad_records(store, source)
    before = {ref: store.rows[ref] for ref in expected}

    report = asyncio.run(engine_for(store, source, page_size=4).run(KEY_REF, V2))

    # Items failed: the job ends saying so (the sweep retries it, bounded).
    assert report.status is JobStatus.COMPLETED_WITH_FAILURES
    assert report.consistent
    assert report.counters.rewrapped == 12
    issues = {issue.ref: issue for issue in report.issues}
    for ref, reason in expected.items():
        assert store.rows[ref] == before[ref], f"{ref} was modified"
        assert issues[ref].outcome is ItemOutcome.FAILED
        assert issues[ref].reason == reason, ref
    assert sum(report.counters.failed.values()) == len(expected)
    for ref, plain in plaintexts.items():
        assert unwrap_row(source, store.rows[ref]) == plain


def test_blob_content_key_with_its_protocol_prefix_is_rewrapped_byte_for_byte() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    row, plain = make_dek(source, "blob", V1, material_prefix=BLOB_PREFIX, with_kcv=False)
    store.add(row)

    report = asyncio.run(engine_for(store, source).run(KEY_REF, V2))

    assert report.counters.rewrapped == 1
    assert unwrap_row(source, store.rows["blob"]) == plain
    assert plain.startswith(BLOB_PREFIX)
    assert store.rows["blob"].kcv is None


def test_unwrap_refused_marks_the_dek_unreadable_and_keeps_its_wrap() -> None:
    source = key_source(V1, V2, "5" * 32)
    source.set_enabled(KEY_REF, V1, False)
    store = MemoryDekStore()
    populate(store, source, [V1, "5" * 32], 6)
    source.delete_version(KEY_REF, "5" * 32)
    before = dict(store.rows)

    report = asyncio.run(engine_for(store, source).run(KEY_REF, V2))

    assert report.counters.unreadable == {
        UnreadableReason.KEY_DISABLED: 3,
        UnreadableReason.KEY_NOT_FOUND: 3,
    }
    for ref, row in store.rows.items():
        assert row.wrapped == before[ref].wrapped
        assert row.key_id == before[ref].key_id
        assert row.unreadable_reason in ("key_disabled", "key_not_found")
    assert {issue.outcome for issue in report.issues} == {ItemOutcome.UNREADABLE}


def test_access_lost_marks_unreadable_and_other_deks_still_move() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 4)
    denied = {"dek-0001", "dek-0003"}
    # One worker unwraps in scan order, so the n-th unwrap is the n-th ref.
    refs = iter(sorted(store.rows))
    faulty = FaultyKeySource(
        source,
        lambda _: AccessDeniedError("no unwrapKey", status=403) if next(refs) in denied else None,
    )

    report = asyncio.run(engine_for(store, source=faulty, workers=1).run(KEY_REF, V2))

    assert report.counters.unreadable == {UnreadableReason.ACCESS_DENIED: 2}
    assert report.counters.rewrapped == 2
    assert {ref for ref, row in store.rows.items() if row.unreadable_reason} == denied


def test_transient_faults_are_retried_then_succeed() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 5)
    failures = iter([True, True, False] * 5)
    faulty = FaultyKeySource(
        source, lambda _: TransientServiceError("503", status=503) if next(failures) else None
    )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    report = asyncio.run(engine_for(store, faulty, workers=1, sleep=sleep).run(KEY_REF, V2))

    assert report.counters.rewrapped == 5
    assert report.counters.vault_operations == 15
    assert len(waits) == 10
    assert all(wait > 0 for wait in waits)


def test_a_fault_that_never_clears_is_reported_not_retried_forever() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 3)
    faulty = FaultyKeySource(source, lambda _: TransientServiceError("timeout"))

    async def sleep(seconds: float) -> None:
        return None

    engine = engine_for(store, faulty, sleep=sleep, retry=RetryPolicy(max_transient_attempts=4))
    report = asyncio.run(engine.run(KEY_REF, V2))

    assert report.counters.failed == {FailureReason.TRANSIENT: 3}
    assert faulty.unwraps == 12
    assert report.status is JobStatus.COMPLETED_WITH_FAILURES


def test_an_unexpected_bug_in_one_unwrap_is_reported_without_its_message() -> None:
    source = key_source(V1, V2)
    store = MemoryDekStore()
    populate(store, source, [V1], 3)
    failures = iter([RuntimeError("secret-looking text"), None, None])
    faulty = FaultyKeySource(source, lambda _: next(failures))

    report = asyncio.run(engine_for(store, faulty, workers=1).run(KEY_REF, V2))

    assert report.counters.failed == {FailureReason.INTERNAL: 1}
    assert report.counters.rewrapped == 2
    assert report.issues[0].detail == "RuntimeError"
