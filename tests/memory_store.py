"""An in-process DEK store: the same semantics as SQLite, for engine tests and quick runs.

Like ``tink/testing/fake_kms.py``, it lives beside the tests so they run against a store
that behaves like the real ones (ETags, conflicts, previous wraps, corrupted rows) instead
of a mock. Rows hold text fields exactly as the Table and SQLite stores do, so
``put_raw`` can plant a corrupted record the scan must report.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

from shared.errors import ConflictError, InvalidInputError
from shared.stores._common import (
    StoredWrap,
    VersionTally,
    b64_encode,
    check_page_size,
    clean_reason,
    decode_continuation,
    encode_continuation,
    fold_key_ref,
    split_key_id,
    strict_b64_decode,
    to_record,
)
from shared.stores._model import DekDetails, NewDek, rewrap_refusal, split_ref
from shared.stores._paging import all_version_counts, forget_all_previous
from shared.stores._protocol import (
    DEFAULT_COUNT_PAGE_SIZE,
    DEFAULT_PAGE_SIZE,
    CountPage,
    DekRecord,
    ForgetPage,
    Rewrap,
    ScanPage,
    VersionCount,
    WriteOutcome,
    WriteResult,
)

_KIND = "memory"


@dataclass(frozen=True)
class MemoryRow:
    """One stored DEK, as text fields (so tests can corrupt any of them)."""

    key_ref: str
    key_id: str
    algorithm: str
    wrapped: str
    kcv: str | None
    prev_key_id: str | None = None
    prev_algorithm: str | None = None
    prev_wrapped: str | None = None
    prev_kcv: str | None = None
    unreadable: str | None = None
    sealed: bytes | None = None
    version: int = 1

    @property
    def key_version(self) -> str:
        split = split_key_id(self.key_id)
        return split[1] if split else ""


class MemoryDekStore:
    """A DekStore in a dict, ordered by (partition, DEK id) for stable paging."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], MemoryRow] = {}
        self._order: list[tuple[str, str]] = []
        self._versions = itertools.count(1)
        #: ``count_versions`` calls so far (tests check a count resumed, not restarted).
        self.count_calls = 0

    @property
    def name(self) -> str:
        return "memory"

    def put_raw(self, ref: str, row: MemoryRow) -> None:
        """Store ``row`` as is, unvalidated (tests plant corrupted or foreign records)."""
        key = split_ref(ref)
        if key not in self._rows:
            bisect.insort(self._order, key)
        self._rows[key] = replace(row, version=next(self._versions))

    def _record(self, key: tuple[str, str], row: MemoryRow) -> DekRecord:
        stored = StoredWrap(
            f"{key[0]}/{key[1]}", key[0], str(row.version), row.key_ref, row.key_id,
            row.algorithm, row.wrapped, row.kcv, row.prev_key_id,
        )  # fmt: skip
        return to_record(stored)

    async def scan(
        self,
        key_ref: str,
        *,
        exclude_version: str | None,
        continuation: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> ScanPage:
        limit = check_page_size(page_size)
        after = tuple(decode_continuation(_KIND, continuation)) if continuation else ("", "")
        if len(after) != 2:
            raise InvalidInputError("continuation is not one keyward issued")
        wanted, excluded = fold_key_ref(key_ref), (exclude_version or "").lower()
        records: list[DekRecord] = []
        start = bisect.bisect_right(self._order, after)
        for key in self._order[start:]:
            row = self._rows[key]
            if fold_key_ref(row.key_ref) != wanted or (excluded and row.key_version == excluded):
                continue
            if len(records) == limit:
                last = split_ref(records[-1].ref)
                return ScanPage(records, encode_continuation(_KIND, list(last)))
            records.append(self._record(key, row))
        return ScanPage(records, None)

    async def replace_batch(self, rewraps: Sequence[Rewrap]) -> Sequence[WriteResult]:
        return [self._replace_one(rewrap) for rewrap in rewraps]

    def _replace_one(self, rewrap: Rewrap) -> WriteResult:
        ref = rewrap.record.ref
        refusal = rewrap_refusal(rewrap)
        if refusal is not None:
            return WriteResult(ref, WriteOutcome.FAILED, refusal)
        missed = self._check(rewrap.record)
        current = self._rows.get(split_ref(ref))
        new_wrap = (rewrap.key_id, b64_encode(rewrap.wrapped))
        if missed is not None and current and (current.key_id, current.wrapped) == new_wrap:
            # A replayed rewrap whose first attempt landed: written, not a conflict.
            return WriteResult(ref, WriteOutcome.WRITTEN, "already written", self.etag_of(ref))
        if missed is not None or current is None:
            return missed or WriteResult(ref, WriteOutcome.NOT_FOUND, "no such DEK")
        row = current
        self._rows[split_ref(ref)] = replace(
            row,
            prev_key_id=row.key_id,
            prev_algorithm=row.algorithm,
            prev_wrapped=row.wrapped,
            prev_kcv=row.kcv,
            key_id=rewrap.key_id,
            algorithm=rewrap.algorithm.value,
            wrapped=b64_encode(rewrap.wrapped),
            kcv=rewrap.kcv,
            unreadable=None,
            version=next(self._versions),
        )
        return WriteResult(ref, WriteOutcome.WRITTEN, new_etag=self.etag_of(ref))

    def _check(self, record: DekRecord) -> WriteResult | None:
        row = self._rows.get(split_ref(record.ref))
        if row is None:
            return WriteResult(record.ref, WriteOutcome.NOT_FOUND, "no such DEK")
        if str(row.version) != record.etag:
            return WriteResult(record.ref, WriteOutcome.CONFLICT, "etag no longer matches")
        return None

    def delete(self, ref: str) -> None:
        key = split_ref(ref)
        if self._rows.pop(key, None) is not None:
            self._order.remove(key)

    def etag_of(self, ref: str) -> str | None:
        row = self._rows.get(split_ref(ref))
        return str(row.version) if row else None

    async def mark_unreadable(self, record: DekRecord, reason: str) -> WriteResult:
        missed = self._check(record)
        if missed is not None:
            return missed
        key = split_ref(record.ref)
        self._rows[key] = replace(
            self._rows[key], unreadable=clean_reason(reason), version=next(self._versions)
        )
        return WriteResult(record.ref, WriteOutcome.WRITTEN, new_etag=self.etag_of(record.ref))

    def _page(
        self, key_ref: str, continuation: str | None, page_size: int
    ) -> tuple[list[tuple[str, str]], str | None]:
        """The key's rows of one page in (partition, id) order, and the next page's token."""
        limit = check_page_size(page_size)
        after = tuple(decode_continuation(_KIND, continuation)) if continuation else ("", "")
        wanted, keys = fold_key_ref(key_ref), []
        for key in self._order[bisect.bisect_right(self._order, after) :]:
            if fold_key_ref(self._rows[key].key_ref) != wanted:
                continue
            if len(keys) == limit:
                return keys, encode_continuation(_KIND, list(keys[-1]))
            keys.append(key)
        return keys, None

    async def count_versions(
        self,
        key_ref: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> CountPage:
        self.count_calls += 1
        keys, token = self._page(key_ref, continuation, page_size)
        tally = VersionTally(key_ref)
        for key in keys:
            row = self._rows[key]
            tally.add(row.key_id, row.prev_key_id, row.unreadable is not None)
        return CountPage(tally.result(), token)

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        return await all_version_counts(self, key_ref)

    async def insert_batch(self, deks: Sequence[NewDek]) -> None:
        """Insert new DEKs; all or nothing.

        Raises:
            InvalidInputError: a key id is not versioned.
            ConflictError: a DEK with the same partition and id exists.
        """
        rows = []
        for dek in deks:
            split = split_key_id(dek.key_id)
            if split is None:
                raise InvalidInputError(f"{dek.key_id!r} is not a versioned key id")
            if split_ref(dek.ref) in self._rows:
                raise ConflictError("a DEK with that partition and id already exists")
            row = MemoryRow(split[0], dek.key_id, dek.algorithm.value, b64_encode(dek.wrapped),
                            dek.kcv, sealed=dek.sealed)  # fmt: skip
            rows.append((dek.ref, row))
        for ref, row in rows:
            self.put_raw(ref, row)

    async def forget_previous(self, previous_key_id: str) -> int:
        """Drop previous wraps under ``previous_key_id``, except on unreadable DEKs."""
        return await forget_all_previous(self, previous_key_id)

    async def forget_previous_page(
        self,
        previous_key_id: str,
        *,
        continuation: str | None = None,
        page_size: int = DEFAULT_COUNT_PAGE_SIZE,
    ) -> ForgetPage:
        split = split_key_id(previous_key_id)
        if split is None:
            raise InvalidInputError(f"{previous_key_id!r} is not a versioned key id")
        keys, token = self._page(split[0], continuation, page_size)
        forgotten = 0
        for key in keys:
            row = self._rows[key]
            same = (row.prev_key_id or "").lower() == previous_key_id.lower()
            if same and row.unreadable is None:
                self._rows[key] = replace(
                    row, prev_key_id=None, prev_algorithm=None, prev_wrapped=None,
                    prev_kcv=None, version=next(self._versions),
                )  # fmt: skip
                forgotten += 1
        return ForgetPage(forgotten, token)

    async def get(self, ref: str) -> DekDetails | None:
        key = split_ref(ref)
        row = self._rows.get(key)
        if row is None:
            return None
        previous = strict_b64_decode(row.prev_wrapped) if row.prev_wrapped else None
        return DekDetails(
            self._record(key, row), row.prev_algorithm, previous, row.prev_kcv,
            row.unreadable, row.sealed,
        )  # fmt: skip

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"MemoryDekStore({len(self._rows)} DEKs)"
