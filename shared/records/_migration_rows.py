"""Moving one record between formats: unwrap, check, wrap, verify, conditional replace.

Every conversion follows the house rule for wrapped DEKs: the new wrap replaces the old only
after the DEK it holds matched the row's key check value, and only if the row's ETag still
holds. A conflict means a writer changed the row since the scan: the row is read again and
converted from what it now holds (it may already be in the target format). Rows that cannot
be converted (a KCV mismatch, a vault version gone, a KEK missing) are reported by ref and
left exactly as they were.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from shared.crypto import AsyncKeyWrapper, DataKey, LocalAesKeyWrapper, WrapAlgorithm
from shared.errors import (
    IntegrityError,
    InvalidInputError,
    KeyDisabledError,
    KeyNotFoundError,
)
from shared.records._migration_keks import JobKeks, KekMissingError
from shared.records._migration_probe import (
    ROW_AFTER_UNWRAP,
    ROW_AFTER_WRAP,
    ROW_AFTER_WRITE,
    ROW_CONFLICT,
    JobProbe,
)
from shared.records._model import RecordFormat, RecordWrite, StoredKek, StoredRecord
from shared.records._ports import RecordStore, VaultKeys, unwrapper_for
from shared.stores import WriteOutcome

#: Times one row is read again after an ETag conflict before the pass leaves it to the next.
MAX_ROW_ATTEMPTS = 4
#: Rows of one partition converted at once (each waits its turn at the vault's pace).
DEFAULT_JOB_WORKERS = 16

#: Per-row errors that mean "this row cannot be converted", not "the job cannot go on".
ROW_ERRORS = (
    IntegrityError,
    KeyNotFoundError,
    KeyDisabledError,
    KekMissingError,
    InvalidInputError,
)


class RowOutcome(enum.Enum):
    CONVERTED = "converted"
    #: Already in the target format (or under the current KEK), or gone.
    SKIPPED = "skipped"
    #: Still conflicting after MAX_ROW_ATTEMPTS; the next pass takes it.
    CONFLICT = "conflict"
    PROBLEM = "problem"


@dataclass(frozen=True)
class RowResult:
    ref: str
    outcome: RowOutcome
    conflicts: int = 0
    detail: str = ""


#: Builds the replacement of one row (holding the DEK only inside), or ``None`` when the row
#: needs nothing (already in the target format).
Convert = Callable[[StoredRecord], Awaitable[RecordWrite | None]]


def _checked(dek: DataKey, row: StoredRecord) -> DataKey:
    if row.kcv and dek.kcv != row.kcv:
        dek.wipe()
        raise IntegrityError(f"record {row.ref}: the unwrapped DEK does not match its KCV")
    return dek


def _kw_wrap_verified(kek_version: str, kek: DataKey, dek: DataKey) -> bytes:
    wrapper = LocalAesKeyWrapper(kek_version, kek)
    wrapped = wrapper.wrap(dek)
    with wrapper.unwrap(wrapped) as again:
        if not again.matches(dek):
            raise IntegrityError("the new A256KW wrap does not give the DEK back")
    return wrapped


class RowConverter:
    """The per-row steps both migrations and the KEK rotation share."""

    def __init__(
        self,
        records: RecordStore,
        vault: VaultKeys,
        keks: JobKeks,
        *,
        probe: JobProbe,
    ) -> None:
        self._records = records
        self._vault = vault
        self._keks = keks
        self._probe = probe
        self.vault_unwraps = 0

    async def direct_to_kek(self, row: StoredRecord, kek: StoredKek) -> RecordWrite | None:
        """Format 1 → 2 under ``kek`` (the partition's current KEK): one vault unwrap."""
        if row.format is not RecordFormat.DIRECT or not row.key_id:
            return None
        wrapper = await unwrapper_for(self._vault, f"record {row.ref}", row.key_id, row.algorithm)
        self.vault_unwraps += 1
        return await self._under_kek(row, _checked(await wrapper.unwrap(row.wrapped), row), kek)

    async def kek_to_direct(self, row: StoredRecord, target: AsyncKeyWrapper) -> RecordWrite | None:
        """Format 2 → 1 under ``target`` (wrap is local with the public key)."""
        if row.format is not RecordFormat.HIERARCHY or not row.kek_version:
            return None
        with await self._open_local(row) as dek:
            self._probe(ROW_AFTER_UNWRAP)
            wrapped = await target.wrap(dek)
            kcv = dek.kcv
        self._probe(ROW_AFTER_WRAP)
        return RecordWrite(
            row.partition,
            row.record_id,
            RecordFormat.DIRECT,
            target.algorithm,
            wrapped,
            kcv,
            key_id=target.key_id,
        )

    async def kek_to_kek(self, row: StoredRecord, kek: StoredKek) -> RecordWrite | None:
        """Format 2 under an older KEK version → under ``kek``: no vault call per row."""
        if row.format is not RecordFormat.HIERARCHY or row.kek_version in (None, kek.version):
            return None
        return await self._under_kek(row, await self._open_local(row), kek)

    async def _under_kek(self, row: StoredRecord, dek: DataKey, kek: StoredKek) -> RecordWrite:
        """``row``'s replacement holding ``dek`` (wiped here) wrapped, verified, under ``kek``."""
        with dek:
            self._probe(ROW_AFTER_UNWRAP)
            wrapped = _kw_wrap_verified(kek.version, await self._keks.key(kek), dek)
            kcv = dek.kcv
        self._probe(ROW_AFTER_WRAP)
        return RecordWrite(
            row.partition,
            row.record_id,
            RecordFormat.HIERARCHY,
            WrapAlgorithm.A256KW,
            wrapped,
            kcv,
            kek_version=kek.version,
        )

    async def _open_local(self, row: StoredRecord) -> DataKey:
        assert row.kek_version is not None
        stored, kek = await self._keks.version(row.partition, row.kek_version)
        return _checked(LocalAesKeyWrapper(stored.version, kek).unwrap(row.wrapped), row)

    async def apply(self, row: StoredRecord, convert: Convert) -> RowResult:
        """Convert ``row``; on a conflict read it again and convert what it now holds."""
        conflicts = 0
        current: StoredRecord | None = row
        for _ in range(MAX_ROW_ATTEMPTS):
            if current is None:
                return RowResult(row.ref, RowOutcome.SKIPPED, conflicts)
            if current.problem is not None:
                return RowResult(row.ref, RowOutcome.PROBLEM, conflicts, current.problem)
            try:
                write = await convert(current)
            except ROW_ERRORS as error:
                return RowResult(row.ref, RowOutcome.PROBLEM, conflicts, str(error))
            if write is None:
                return RowResult(row.ref, RowOutcome.SKIPPED, conflicts)
            result = await self._records.replace_record(current, write)
            if result.outcome is WriteOutcome.WRITTEN:
                self._probe(ROW_AFTER_WRITE)
                return RowResult(row.ref, RowOutcome.CONVERTED, conflicts)
            if result.outcome is WriteOutcome.NOT_FOUND:
                return RowResult(row.ref, RowOutcome.SKIPPED, conflicts)
            if result.outcome is WriteOutcome.FAILED:
                return RowResult(row.ref, RowOutcome.PROBLEM, conflicts, result.detail)
            conflicts += 1
            self._probe(ROW_CONFLICT)
            try:
                current = await self._records.read_record(row.partition, row.record_id)
            except InvalidInputError as error:  # a writer left a row this keyward cannot use
                return RowResult(row.ref, RowOutcome.PROBLEM, conflicts, str(error))
        return RowResult(row.ref, RowOutcome.CONFLICT, conflicts)


async def apply_all(
    converter: RowConverter,
    rows: Sequence[StoredRecord],
    convert: Convert,
    *,
    workers: int = DEFAULT_JOB_WORKERS,
) -> list[RowResult]:
    """Convert ``rows`` (one partition's), at most ``workers`` at once, results in order."""
    gate = asyncio.Semaphore(max(1, workers))

    async def one(row: StoredRecord) -> RowResult:
        async with gate:
            return await converter.apply(row, convert)

    return list(await asyncio.gather(*(one(row) for row in rows)))


def by_partition(rows: Sequence[StoredRecord]) -> list[tuple[str, list[StoredRecord]]]:
    """``rows`` grouped by partition, in scan order (a partition's rows are contiguous)."""
    groups: dict[str, list[StoredRecord]] = {}
    for row in rows:
        groups.setdefault(row.partition, []).append(row)
    return list(groups.items())
