"""One DekStore contract, pinned against every keyward-format store on its real backend.

Table runs against Azurite with the real azure-data-tables client; SQLite on a file; memory
in process. Each test names the property it pins.
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools.seed import open_sealed, seed_deks
from shared.errors import ConflictError, InvalidInputError
from shared.stores import DekRecord, DekStore, Rewrap, WriteOutcome, merge_counts
from tests.stores.conftest import KEY_REF, OTHER_KEY_REF, V1, V2, Harness, Keys


async def scan_all(store: Any, key_ref: str = KEY_REF, exclude: str | None = None,
                   page_size: int = 100) -> list[DekRecord]:  # fmt: skip
    records: list[DekRecord] = []
    continuation = None
    while True:
        page = await store.scan(key_ref, exclude_version=exclude, continuation=continuation,
                                page_size=page_size)  # fmt: skip
        records.extend(page.records)
        continuation = page.continuation
        if continuation is None:
            return records


def rewrap_to(record: DekRecord, keys: Keys, target: Any) -> Rewrap:
    """What the engine does for one DEK: unwrap with the old version, wrap with the new."""
    with keys.by_id(record.key_id).unwrap(record.wrapped) as dek:
        assert dek.kcv == record.kcv
        return Rewrap(record, target.key_id, target.algorithm, target.wrap(dek), dek.kcv)


def test_stores_satisfy_the_protocol(harness: Harness) -> None:
    async def body(store: Any) -> None:
        assert isinstance(store, DekStore)
        assert store.name

    harness.run(body)


def test_scan_pages_and_resumes_from_continuation(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 230, partitions=3)
        first = await store.scan(KEY_REF, exclude_version=V2, page_size=40)
        second = await store.scan(KEY_REF, exclude_version=V2, page_size=40,
                                  continuation=first.continuation)  # fmt: skip
        assert len(first.records) == len(second.records) == 40
        resumed = await harness.reopen(store)  # a worker picking up the checkpoint
        try:
            rest = await scan_all_from(resumed, second.continuation)
        finally:
            if resumed is not store:
                await resumed.close()
        refs = [r.ref for r in [*first.records, *second.records, *rest]]
        assert len(refs) == len(set(refs)) == 230
        assert all(r.problem is None and r.key_id == keys.v1.key_id for r in first.records)

    async def scan_all_from(store: Any, continuation: str | None) -> list[DekRecord]:
        found: list[DekRecord] = []
        while continuation is not None:
            page = await store.scan(KEY_REF, exclude_version=V2, continuation=continuation,
                                    page_size=40)  # fmt: skip
            found.extend(page.records)
            continuation = page.continuation
        return found

    harness.run(body)


def test_scan_excludes_target_version_and_other_keys(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 30, prefix="a")
        await seed_deks(store, keys.v2, 20, prefix="b")
        await seed_deks(store, keys.other, 10, prefix="c")
        stale = await scan_all(store, exclude=V2, page_size=7)
        assert {r.key_id for r in stale} == {keys.v1.key_id}
        assert len(stale) == 30
        assert len(await scan_all(store)) == 50
        assert len(await scan_all(store, key_ref=OTHER_KEY_REF)) == 10
        # The key ref is compared canonically: host case and a trailing slash do not matter.
        shouted = "https://KWTEST.vault.azure.net/keys/dek-kek/"
        assert len(await scan_all(store, key_ref=shouted, exclude=V2)) == 30

    harness.run(body)


def test_conditional_replace_conflict_loses_only_the_loser(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 12, partitions=1)
        records = await scan_all(store, exclude=V2)
        loser = records[5]
        # A concurrent writer changes one DEK between the scan and the write.
        fresh = (await store.get(loser.ref)).record
        assert (await store.mark_unreadable(fresh, "concurrent")).outcome is WriteOutcome.WRITTEN
        results = await store.replace_batch([rewrap_to(r, keys, keys.v2) for r in records])
        assert [r.ref for r in results] == [r.ref for r in records]
        outcomes = {r.ref: r.outcome for r in results}
        assert outcomes.pop(loser.ref) is WriteOutcome.CONFLICT
        assert set(outcomes.values()) == {WriteOutcome.WRITTEN}
        after = await store.get(loser.ref)
        assert after.record.key_id == keys.v1.key_id
        assert after.record.wrapped == loser.wrapped
        assert after.unreadable == "concurrent"
        assert all(r.new_etag for r in results if r.outcome is WriteOutcome.WRITTEN)

    harness.run(body)


def test_batch_of_more_than_100_across_partitions(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 260, partitions=3, plaintext=lambda i: b"row %d" % i)
        records = await scan_all(store, exclude=V2, page_size=1000)
        assert len({r.partition for r in records}) == 3
        results = await store.replace_batch([rewrap_to(r, keys, keys.v2) for r in records])
        assert [r.ref for r in results] == [r.ref for r in records]
        assert {r.outcome for r in results} == {WriteOutcome.WRITTEN}
        assert await scan_all(store, exclude=V2) == []
        sample = await store.get(records[137].ref)
        assert sample.record.key_id == keys.v2.key_id
        assert open_sealed(sample, keys.v2).startswith(b"row ")

    harness.run(body)


def test_previous_wrap_kept_after_rewrap(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 3, plaintext=lambda i: b"secret %d" % i)
        record = (await scan_all(store, exclude=V2))[0]
        [result] = await store.replace_batch([rewrap_to(record, keys, keys.v2)])
        assert result.outcome is WriteOutcome.WRITTEN
        details = await store.get(record.ref)
        assert details.record.previous_key_id == keys.v1.key_id
        assert details.previous_wrapped == record.wrapped
        assert details.previous_algorithm == record.algorithm.value
        with (
            keys.v1.unwrap(details.previous_wrapped) as old,
            keys.v2.unwrap(details.record.wrapped) as new,
        ):
            assert old.matches(new)
        assert open_sealed(details, keys.v2).startswith(b"secret ")
        assert details.record.etag == result.new_etag

    harness.run(body)


def test_mark_unreadable_leaves_the_wrap_intact(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 2)
        record = (await scan_all(store))[0]
        result = await store.mark_unreadable(record, "unwrap refused: key version disabled")
        assert result.outcome is WriteOutcome.WRITTEN
        details = await store.get(record.ref)
        assert details.unreadable == "unwrap refused: key version disabled"
        assert details.record.wrapped == record.wrapped
        assert details.record.key_id == record.key_id
        stale = await store.mark_unreadable(record, "again")
        assert stale.outcome is WriteOutcome.CONFLICT
        [count] = await store.version_counts(KEY_REF)
        assert (count.current, count.unreadable) == (2, 1)

    harness.run(body)


def test_version_counts_current_previous_unreadable(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 9, partitions=2)
        await seed_deks(store, keys.other, 4, prefix="o")
        records = await scan_all(store, exclude=V2)
        await store.replace_batch([rewrap_to(r, keys, keys.v2) for r in records[:4]])
        await store.mark_unreadable(records[6], "access lost")
        counts = {c.key_id: c for c in await store.version_counts(KEY_REF)}
        assert set(counts) == {keys.v1.key_id, keys.v2.key_id}
        v1, v2 = counts[keys.v1.key_id], counts[keys.v2.key_id]
        assert (v1.current, v1.previous, v1.unreadable) == (5, 4, 1)
        assert (v2.current, v2.previous, v2.unreadable) == (4, 0, 0)

    harness.run(body)


def test_replayed_batch_reports_written_not_conflict(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 5, partitions=1)
        rewraps = [rewrap_to(r, keys, keys.v2) for r in await scan_all(store)]
        await store.replace_batch(rewraps)
        again = await store.replace_batch(rewraps)
        assert {r.outcome for r in again} == {WriteOutcome.WRITTEN}
        assert {(await store.get(r.record.ref)).record.previous_key_id for r in rewraps} == {
            keys.v1.key_id
        }

    harness.run(body)


def test_rewrap_refused_for_other_key_or_other_dek(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 2)
        first, second = await scan_all(store)
        other_key = rewrap_to(first, keys, keys.other)
        good = rewrap_to(second, keys, keys.v2)
        other_dek = Rewrap(first, good.key_id, good.algorithm, good.wrapped, good.kcv)
        results = await store.replace_batch([other_key, other_dek])
        assert [r.outcome for r in results] == [WriteOutcome.FAILED] * 2
        assert "not a version" in results[0].detail
        assert "kcv" in results[1].detail
        assert (await store.get(first.ref)).record.etag == first.etag

    harness.run(body)


def test_write_to_deleted_dek_is_not_found(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 2)
        record = (await scan_all(store))[0]
        await harness.delete(store, record.ref)
        [result] = await store.replace_batch([rewrap_to(record, keys, keys.v2)])
        assert result.outcome is WriteOutcome.NOT_FOUND
        assert (await store.mark_unreadable(record, "x")).outcome is WriteOutcome.NOT_FOUND

    harness.run(body)


def test_inserting_an_existing_dek_is_a_conflict(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 3, partitions=1)
        with pytest.raises(ConflictError):
            await seed_deks(store, keys.v1, 1, partitions=1, start=2)
        assert len(await scan_all(store)) == 3

    harness.run(body)


def test_continuation_from_elsewhere_is_refused(harness: Harness) -> None:
    async def body(store: Any) -> None:
        with pytest.raises(InvalidInputError):
            await store.scan(KEY_REF, exclude_version=V1, continuation="not-a-continuation")
        with pytest.raises(InvalidInputError):
            await store.scan(KEY_REF, exclude_version=V1, page_size=0)

    harness.run(body)


def test_forget_previous_when_the_old_version_is_retired(harness: Harness, keys: Keys) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 7, partitions=2)
        records = await scan_all(store)
        await store.replace_batch([rewrap_to(r, keys, keys.v2) for r in records])
        stuck = (await store.get(records[3].ref)).record
        await store.mark_unreadable(stuck, "v2 refused")
        assert await store.forget_previous(keys.v1.key_id) == 6
        counts = {c.key_id: c for c in await store.version_counts(KEY_REF)}
        assert counts[keys.v1.key_id].previous == 1  # the unreadable DEK keeps its old wrap
        assert counts[keys.v2.key_id].current == 7
        cleared = await store.get(records[0].ref)
        assert cleared.previous_wrapped is None
        assert cleared.record.previous_key_id is None
        assert cleared.record.wrapped != b""
        kept = await store.get(records[3].ref)
        assert kept.previous_wrapped == records[3].wrapped
        assert await store.forget_previous(keys.v1.key_id) == 0
        with pytest.raises(InvalidInputError):
            await store.forget_previous(KEY_REF)

    harness.run(body)


def test_counting_pages_are_disjoint_and_resume_from_a_continuation(
    harness: Harness, keys: Keys
) -> None:
    """Issue 12: counted one page at a time (an operation's checkpoint between pages, a
    reopened store picking up the continuation), the merged pages equal the whole count,
    with no record counted twice."""

    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 53, partitions=3)
        await seed_deks(store, keys.other, 9, prefix="o")
        records = await scan_all(store, exclude=V2)
        await store.replace_batch([rewrap_to(r, keys, keys.v2) for r in records[:11]])
        whole = await store.version_counts(KEY_REF)
        first = await store.count_versions(KEY_REF, page_size=7)
        assert first.continuation is not None
        merged, continuation, pages = merge_counts(first.counts), first.continuation, 1
        resumed = await harness.reopen(store)
        try:
            while continuation is not None:
                page = await resumed.count_versions(KEY_REF, continuation=continuation, page_size=7)
                merged, continuation = merge_counts(merged, page.counts), page.continuation
                pages += 1
        finally:
            if resumed is not store:
                await resumed.close()
        assert pages >= 53 // 7
        assert list(merged) == list(whole)
        counts = {c.key_id: (c.current, c.previous) for c in merged}
        assert counts == {keys.v1.key_id: (42, 11), keys.v2.key_id: (11, 0)}
        with pytest.raises(InvalidInputError):
            await store.count_versions(KEY_REF, continuation="not-a-continuation")
        with pytest.raises(InvalidInputError):
            await store.count_versions(KEY_REF, page_size=0)

    harness.run(body)


def test_forgetting_page_by_page_drops_each_previous_wrap_once(
    harness: Harness, keys: Keys
) -> None:
    async def body(store: Any) -> None:
        await seed_deks(store, keys.v1, 23, partitions=2)
        records = await scan_all(store)
        await store.replace_batch([rewrap_to(r, keys, keys.v2) for r in records])
        first = await store.forget_previous_page(keys.v1.key_id, page_size=5)
        assert first.continuation is not None
        # A rerun of the first page (a crash before its checkpoint) drops nothing twice: on
        # SQLite and memory it finds that page done; a Table query filters on the previous
        # wrap, so it takes the next matching rows, which the resumed pages then skip.
        again = await store.forget_previous_page(keys.v1.key_id, page_size=5)
        dropped, continuation = first.dropped + again.dropped, first.continuation
        while continuation is not None:
            page = await store.forget_previous_page(
                keys.v1.key_id, continuation=continuation, page_size=5
            )
            dropped, continuation = dropped + page.dropped, page.continuation
        assert dropped == 23
        counts = {c.key_id: (c.current, c.previous) for c in await store.version_counts(KEY_REF)}
        assert counts == {keys.v2.key_id: (23, 0)}  # nothing left under v1

    harness.run(body)
