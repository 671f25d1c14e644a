"""keyward's record ports in memory: a test double of OUR ports (not of Azure), for fast
property tests of the envelope, the migration and the KEK rotation.

Semantics follow the Table and SQLite adapters: ETags change on every write, writes are
conditional, scans page in key order with an opaque continuation, a replace drops the other
format's properties and keeps the rest, rows that cannot be used come back from a scan with
``problem`` set. The KEK table is also an ordinary ``DekStore`` (format-1 layout), so the
rewrap engine rotates the Key Vault key over it unchanged. ``VaultKeys`` over a
``LocalKeyVersionSource`` counts the vault operations.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from devtools.local_keys import LocalKeyVersionSource
from shared.crypto import (
    AsyncKeyWrapper,
    DataKey,
    LocalAesKeyWrapper,
    LocalRsaWrapper,
    WrapAlgorithm,
    open_envelope,
    require_unwrap_allowed,
    seal,
)
from shared.errors import ConflictError, InvalidInputError
from shared.records import (
    ModeRecord,
    PartitionPage,
    RecordFormat,
    RecordPage,
    RecordWrite,
    StoredKek,
    StoredRecord,
    kek_version_time,
)
from shared.services.migration import StoreJobs
from shared.stores import (
    CountPage,
    DekRecord,
    NewDek,
    Rewrap,
    ScanPage,
    VersionCount,
    WriteOutcome,
    WriteResult,
    all_version_counts,
)
from tests.rewrap.fakes import KEY_REF, V1, V2, key_source

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
#: A probe point hook (the jobs' and the stores' crash points).
JobProbe = Probe = Callable[[str], None]


def _noop(point: str) -> None:
    return None


@dataclass(frozen=True)
class RecordRow:
    """One record row: the fields of both formats (one set empty) and an app column."""

    format: RecordFormat
    algorithm: WrapAlgorithm | None
    wrapped: bytes
    kcv: str
    key_id: str | None = None
    kek_version: str | None = None
    sealed: bytes | None = None
    app_column: str | None = None
    problem: str | None = None
    etag: int = 1


class MemoryRecordStore:
    """``RecordStore`` in a dict keyed (partition, record id)."""

    def __init__(self, name: str = "memory") -> None:
        self._name = name
        self.rows: dict[tuple[str, str], RecordRow] = {}
        self._etags = itertools.count(2)
        #: Called with ``"store.after_replace"`` after each replace lands (crash tests).
        self.probe: Probe = _noop
        #: Called before each replace with the row about to be replaced (a racing writer).
        self.before_replace: Callable[[tuple[str, str]], None] | None = None

    @property
    def name(self) -> str:
        return self._name

    def _record(self, key: tuple[str, str], row: RecordRow) -> StoredRecord:
        return StoredRecord(
            key[0],
            key[1],
            str(row.etag),
            row.format,
            row.algorithm,
            row.wrapped,
            row.kcv,
            key_id=row.key_id,
            kek_version=row.kek_version,
            sealed=row.sealed,
            problem=row.problem,
        )

    def touch(self, partition: str, record_id: str) -> None:
        """A writer changed something the record store does not model: a new ETag."""
        key = (partition, record_id)
        self.rows[key] = replace(self.rows[key], etag=next(self._etags))

    async def read_record(self, partition: str, record_id: str) -> StoredRecord | None:
        row = self.rows.get((partition, record_id))
        if row is None:
            return None
        if row.problem is not None:
            raise InvalidInputError(f"record {partition}/{record_id}: {row.problem}")
        return self._record((partition, record_id), row)

    async def insert_record(self, write: RecordWrite) -> StoredRecord:
        key = (write.partition, write.record_id)
        if write.partition.startswith("~"):
            raise InvalidInputError("partitions starting with ~ are reserved")
        if key in self.rows:
            raise ConflictError(f"record {write.ref} exists", status=409)
        self.rows[key] = self._row(write, sealed=write.sealed, app_column=None)
        return self._record(key, self.rows[key])

    def new_row(self, write: RecordWrite) -> RecordRow:
        return self._row(write, sealed=write.sealed, app_column=None)

    def _row(
        self, write: RecordWrite, *, sealed: bytes | None, app_column: str | None
    ) -> RecordRow:
        return RecordRow(
            write.format,
            write.algorithm,
            write.wrapped,
            write.kcv,
            key_id=write.key_id,
            kek_version=write.kek_version,
            sealed=sealed,
            app_column=app_column,
            etag=next(self._etags),
        )

    async def replace_record(self, current: StoredRecord, write: RecordWrite) -> WriteResult:
        key = (current.partition, current.record_id)
        if self.before_replace is not None:
            self.before_replace(key)
        row = self.rows.get(key)
        if row is None:
            return WriteResult(current.ref, WriteOutcome.NOT_FOUND)
        if str(row.etag) != current.etag:
            return WriteResult(current.ref, WriteOutcome.CONFLICT)
        if write.kcv != row.kcv:
            return WriteResult(current.ref, WriteOutcome.FAILED, "kcv differs: not the same DEK")
        sealed = write.sealed if write.sealed is not None else row.sealed
        self.rows[key] = self._row(write, sealed=sealed, app_column=row.app_column)
        self.probe("store.after_replace")
        return WriteResult(current.ref, WriteOutcome.WRITTEN, new_etag=str(self.rows[key].etag))

    async def scan_records(
        self,
        *,
        partition: str | None = None,
        continuation: str | None = None,
        page_size: int = 1000,
    ) -> RecordPage:
        after = tuple(continuation.split("\x00")) if continuation else None
        keys = sorted(
            key
            for key in self.rows
            if (partition is None or key[0] == partition) and (after is None or key > after)
        )
        page = keys[:page_size]
        more = len(keys) > page_size
        return RecordPage(
            [self._record(key, self.rows[key]) for key in page],
            "\x00".join(page[-1]) if more else None,
        )


class DirectRowsView:
    """The record store as the rewrap engine sees it: its format-1 rows only (format-2 rows
    have no ``KeyRef``, so no vault-key scan meets them), as Table and SQLite do."""

    def __init__(self, records: MemoryRecordStore) -> None:
        self._records = records

    @property
    def name(self) -> str:
        return self._records.name

    def _direct(self, key_ref: str) -> list[tuple[str, str]]:
        prefix = key_ref.lower() + "/"
        return sorted(
            key for key, row in self._records.rows.items()
            if row.format is RecordFormat.DIRECT and row.problem is None
            and (row.key_id or "").lower().startswith(prefix)
        )  # fmt: skip

    def _dek(self, key: tuple[str, str]) -> DekRecord:
        row = self._records.rows[key]
        return DekRecord("/".join(key), key[0], str(row.etag), row.key_id or "", row.algorithm,
                         row.wrapped, row.kcv)  # fmt: skip

    async def scan(
        self,
        key_ref: str,
        *,
        exclude_version: str | None,
        continuation: str | None = None,
        page_size: int = 100,
    ) -> ScanPage:
        keys = [
            k for k in self._direct(key_ref) if continuation is None or "/".join(k) > continuation
        ]
        page = keys[:page_size]
        return ScanPage([self._dek(k) for k in page],
                        "/".join(page[-1]) if len(keys) > page_size else None)  # fmt: skip

    async def replace_batch(self, rewraps: Sequence[Rewrap]) -> Sequence[WriteResult]:
        results = []
        for rewrap in rewraps:
            partition, record_id = rewrap.record.ref.split("/", 1)
            row = self._records.rows.get((partition, record_id))
            if row is None:
                results.append(WriteResult(rewrap.record.ref, WriteOutcome.NOT_FOUND))
            elif str(row.etag) != rewrap.record.etag or row.format is not RecordFormat.DIRECT:
                results.append(WriteResult(rewrap.record.ref, WriteOutcome.CONFLICT))
            elif rewrap.kcv != row.kcv:
                results.append(WriteResult(rewrap.record.ref, WriteOutcome.FAILED, "kcv"))
            else:
                write = RecordWrite(partition, record_id, RecordFormat.DIRECT, rewrap.algorithm,
                                    rewrap.wrapped, rewrap.kcv, key_id=rewrap.key_id)  # fmt: skip
                new = replace(self._records.new_row(write), sealed=row.sealed,
                              app_column=row.app_column)  # fmt: skip
                self._records.rows[(partition, record_id)] = new
                results.append(WriteResult(rewrap.record.ref, WriteOutcome.WRITTEN,
                                           new_etag=str(new.etag)))  # fmt: skip
        return results

    async def mark_unreadable(self, record: DekRecord, reason: str) -> WriteResult:
        return WriteResult(record.ref, WriteOutcome.FAILED, "not kept in memory")

    async def count_versions(
        self, key_ref: str, *, continuation: str | None = None, page_size: int = 1000
    ) -> CountPage:
        keys = [
            k for k in self._direct(key_ref) if continuation is None or "/".join(k) > continuation
        ]
        counts: dict[str, VersionCount] = {}
        for key in keys[:page_size]:
            key_id = (self._records.rows[key].key_id or "").lower()
            entry = counts.setdefault(key_id, VersionCount(key_id))
            counts[key_id] = replace(entry, current=entry.current + 1)
        more = len(keys) > page_size
        return CountPage(list(counts.values()), "/".join(keys[page_size - 1]) if more else None)

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        return await all_version_counts(self, key_ref)

    async def close(self) -> None:
        return None


@dataclass
class KekRow:
    key_id: str
    algorithm: WrapAlgorithm
    wrapped: bytes
    kcv: str
    created_at: datetime
    prev_key_id: str | None = None
    prev_wrapped: bytes | None = None
    unreadable: str | None = None
    etag: int = 1


class MemoryKekStore:
    """``KekStore`` and, over the same rows, the rewrap engine's ``DekStore``."""

    def __init__(
        self, name: str = "memory-keks", *, now: Callable[[], datetime] = lambda: _EPOCH
    ) -> None:
        self._name = name
        self._now = now
        self.rows: dict[tuple[str, str], KekRow] = {}
        self._etags = itertools.count(2)
        self.probe: Probe = _noop

    @property
    def name(self) -> str:
        return self._name

    def _kek(self, key: tuple[str, str], row: KekRow) -> StoredKek:
        return StoredKek(
            key[0],
            key[1],
            str(row.etag),
            row.key_id,
            row.algorithm,
            row.wrapped,
            row.kcv,
            created_at=row.created_at,
        )

    async def list_keks(self, partition: str) -> Sequence[StoredKek]:
        keys = sorted((key for key in self.rows if key[0] == partition), reverse=True)
        return [self._kek(key, self.rows[key]) for key in keys]

    async def read_kek(self, partition: str, version: str) -> StoredKek | None:
        row = self.rows.get((partition, version))
        return None if row is None else self._kek((partition, version), row)

    async def insert_kek(self, kek: NewDek) -> StoredKek:
        key = (kek.partition, kek.dek_id)
        if key in self.rows:
            raise ConflictError(f"KEK {kek.ref} exists", status=409)
        made = kek_version_time(kek.dek_id) or self._now()
        self.rows[key] = KekRow(
            kek.key_id, kek.algorithm, kek.wrapped, kek.kcv, made, etag=next(self._etags)
        )
        self.probe("keks.after_insert")
        return self._kek(key, self.rows[key])

    async def delete_kek(self, kek: StoredKek) -> WriteResult:
        key = (kek.partition, kek.version)
        row = self.rows.get(key)
        if row is None:
            return WriteResult(kek.ref, WriteOutcome.NOT_FOUND)
        if str(row.etag) != kek.etag:
            return WriteResult(kek.ref, WriteOutcome.CONFLICT)
        del self.rows[key]
        return WriteResult(kek.ref, WriteOutcome.WRITTEN)

    async def kek_partitions(
        self, *, continuation: str | None = None, page_size: int = 1000
    ) -> PartitionPage:
        names = sorted(
            {key[0] for key in self.rows if continuation is None or key[0] > continuation}
        )
        page = names[:page_size]
        return PartitionPage(page, page[-1] if len(names) > page_size else None)

    # ---- the DekStore protocol (the rewrap engine's view of the KEK table) ----------------

    def _dek_record(self, key: tuple[str, str], row: KekRow) -> DekRecord:
        return DekRecord(
            f"{key[0]}/{key[1]}",
            key[0],
            str(row.etag),
            row.key_id,
            row.algorithm,
            row.wrapped,
            row.kcv,
            previous_key_id=row.prev_key_id,
        )

    async def scan(
        self,
        key_ref: str,
        *,
        exclude_version: str | None,
        continuation: str | None = None,
        page_size: int = 100,
    ) -> ScanPage:
        prefix = key_ref.lower() + "/"
        keys = sorted(
            key
            for key, row in self.rows.items()
            if row.key_id.lower().startswith(prefix)
            and not (exclude_version and row.key_id.lower().endswith("/" + exclude_version.lower()))
            and (continuation is None or "/".join(key) > continuation)
        )
        page = keys[:page_size]
        more = len(keys) > page_size
        return ScanPage(
            [self._dek_record(key, self.rows[key]) for key in page],
            "/".join(page[-1]) if more else None,
        )

    async def replace_batch(self, rewraps: Sequence[Rewrap]) -> Sequence[WriteResult]:
        results = []
        for rewrap in rewraps:
            key = tuple(rewrap.record.ref.split("/", 1))
            row = self.rows.get((key[0], key[1]))
            if row is None:
                results.append(WriteResult(rewrap.record.ref, WriteOutcome.NOT_FOUND))
            elif str(row.etag) != rewrap.record.etag:
                results.append(WriteResult(rewrap.record.ref, WriteOutcome.CONFLICT))
            elif rewrap.kcv != row.kcv:
                results.append(WriteResult(rewrap.record.ref, WriteOutcome.FAILED, "kcv"))
            else:
                row.prev_key_id, row.prev_wrapped = row.key_id, row.wrapped
                row.key_id, row.algorithm, row.wrapped = (
                    rewrap.key_id,
                    rewrap.algorithm,
                    rewrap.wrapped,
                )
                row.unreadable, row.etag = None, next(self._etags)
                results.append(
                    WriteResult(rewrap.record.ref, WriteOutcome.WRITTEN, new_etag=str(row.etag))
                )
        return results

    async def mark_unreadable(self, record: DekRecord, reason: str) -> WriteResult:
        partition, version = record.ref.split("/", 1)
        row = self.rows.get((partition, version))
        if row is None:
            return WriteResult(record.ref, WriteOutcome.NOT_FOUND)
        if str(row.etag) != record.etag:
            return WriteResult(record.ref, WriteOutcome.CONFLICT)
        row.unreadable, row.etag = reason, next(self._etags)
        return WriteResult(record.ref, WriteOutcome.WRITTEN, new_etag=str(row.etag))

    async def count_versions(
        self, key_ref: str, *, continuation: str | None = None, page_size: int = 1000
    ) -> CountPage:
        prefix = key_ref.lower() + "/"
        keys = sorted(
            key for key in self.rows if continuation is None or "/".join(key) > continuation
        )
        counts: dict[str, VersionCount] = {}
        for key in keys[:page_size]:
            row = self.rows[key]
            if row.key_id.lower().startswith(prefix):
                entry = counts.setdefault(row.key_id.lower(), VersionCount(row.key_id.lower()))
                counts[row.key_id.lower()] = replace(entry, current=entry.current + 1)
            if row.prev_key_id and row.prev_key_id.lower().startswith(prefix):
                name = row.prev_key_id.lower()
                entry = counts.setdefault(name, VersionCount(name))
                counts[name] = replace(entry, previous=entry.previous + 1)
        more = len(keys) > page_size
        return CountPage(list(counts.values()), "/".join(keys[page_size - 1]) if more else None)

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        return await all_version_counts(self, key_ref)

    async def close(self) -> None:
        return None


class MemoryModeStore:
    """``ModeStore``: one row, ETag-guarded."""

    def __init__(self) -> None:
        self.row: ModeRecord | None = None
        self._etags = itertools.count(1)
        self.writes = 0
        self.probe: Probe = _noop

    async def read_mode(self) -> ModeRecord:
        return self.row if self.row is not None else ModeRecord()

    async def write_mode(self, record: ModeRecord) -> ModeRecord:
        self.probe("mode.before_write")
        have = self.row.etag if self.row is not None else ""
        if record.etag != have:
            raise ConflictError("the mode row changed", status=412)
        self.row = replace(record, etag=f"m{next(self._etags)}")
        self.writes += 1
        self.probe("mode.after_write")
        return self.row


@dataclass
class VaultCounts:
    unwraps: int = 0
    wraps: int = 0
    by_key: dict[str, int] = field(default_factory=dict)


class LocalVaultKeys:
    """``VaultKeys`` over local RSA key versions; unwraps are the "vault calls" counted."""

    def __init__(self, source: LocalKeyVersionSource, *, allow_legacy_rsa1_5: bool = False) -> None:
        self.source = source
        self.counts = VaultCounts()
        self.allow_legacy_rsa1_5 = allow_legacy_rsa1_5

    async def newest(self, key_ref: str) -> AsyncKeyWrapper:
        version = await self.source.newest_enabled_version(key_ref)
        return await self.version(f"{key_ref}/{version}")

    async def version(self, key_id: str, algorithm: WrapAlgorithm | None = None) -> AsyncKeyWrapper:
        """As the Key Vault adapter: the row's algorithm, RSA1_5 refused unless allowed."""
        algorithm = algorithm or WrapAlgorithm.RSA_OAEP_256
        require_unwrap_allowed(algorithm, allow_legacy_rsa1_5=self.allow_legacy_rsa1_5)
        inner = await self.source.wrapper(key_id, algorithm)
        return _Counted(inner, self.counts)


class _Counted:
    def __init__(self, inner: AsyncKeyWrapper, counts: VaultCounts) -> None:
        self._inner = inner
        self._counts = counts

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    @property
    def algorithm(self) -> WrapAlgorithm:
        return self._inner.algorithm

    async def wrap(self, dek: DataKey) -> bytes:
        self._counts.wraps += 1
        return await self._inner.wrap(dek)

    async def unwrap(self, wrapped: bytes) -> DataKey:
        self._counts.unwraps += 1
        self._counts.by_key[self.key_id] = self._counts.by_key.get(self.key_id, 0) + 1
        return await self._inner.unwrap(wrapped)


# ---- an application's writes and an independent reader (no envelope, no job code) --------


async def write_direct(
    records: MemoryRecordStore,
    vault: LocalVaultKeys,
    key_ref: str,
    partition: str,
    record_id: str,
    plaintext: bytes,
) -> None:
    """Insert a format-1 record as a direct-mode writer does (seal under a fresh DEK)."""
    wrapper = await vault.newest(key_ref)
    with DataKey.generate() as dek:
        sealed = seal(dek, plaintext, dek_id=f"{partition}/{record_id}")
        write = RecordWrite(
            partition,
            record_id,
            RecordFormat.DIRECT,
            wrapper.algorithm,
            await wrapper.wrap(dek),
            dek.kcv,
            key_id=wrapper.key_id,
            sealed=sealed,
        )
    await records.insert_record(write)


def open_record(
    records: MemoryRecordStore,
    keks: MemoryKekStore,
    source: LocalKeyVersionSource,
    partition: str,
    record_id: str,
    *,
    context: bytes = b"",
) -> bytes:
    """The plaintext of a record, read with the private keys alone (whatever its format):
    the oracle the tests check every job against."""
    row = records.rows[(partition, record_id)]
    assert row.sealed is not None
    assert row.problem is None
    if row.format is RecordFormat.DIRECT:
        assert row.key_id is not None
        assert row.algorithm is not None
        dek = _rsa(source, row.key_id, row.algorithm).unwrap(row.wrapped)
    else:
        assert row.kek_version is not None
        kek_row = keks.rows[(partition, row.kek_version)]
        with _rsa(source, kek_row.key_id, kek_row.algorithm).unwrap(kek_row.wrapped) as kek:
            assert kek.kcv == kek_row.kcv
            dek = LocalAesKeyWrapper(row.kek_version, kek).unwrap(row.wrapped)
    with dek:
        assert dek.kcv == row.kcv
        return open_envelope(dek, row.sealed, dek_id=f"{partition}/{record_id}", context=context)


def _rsa(source: LocalKeyVersionSource, key_id: str, algorithm: WrapAlgorithm) -> LocalRsaWrapper:
    return LocalRsaWrapper(key_id, private_key=source.private_key(key_id), algorithm=algorithm)


# ---- a world for the jobs' tests -----------------------------------------------------------

MODE_TTL = 30.0


@dataclass
class FakeTime:
    """Wall and monotonic clocks that move only when someone sleeps."""

    wall: datetime = field(default_factory=lambda: datetime(2026, 6, 1, tzinfo=UTC))
    mono: float = 1000.0
    slept: float = 0.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds
        self.slept += seconds


@dataclass
class World:
    source: LocalKeyVersionSource
    records: MemoryRecordStore = field(default_factory=MemoryRecordStore)
    keks: MemoryKekStore = field(default_factory=MemoryKekStore)
    modes: MemoryModeStore = field(default_factory=MemoryModeStore)
    time: FakeTime = field(default_factory=FakeTime)
    plaintexts: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vault = LocalVaultKeys(self.source)
        self.keks = MemoryKekStore(now=self.time.now)

    def jobs(self, owner: str = "runner-a", **options: object) -> StoreJobs:
        options.setdefault("page_size", 7)
        return StoreJobs(
            self.records,
            self.keks,
            self.modes,
            self.vault,
            owner=owner,
            now=self.time.now,
            sleep=self.time.sleep,
            monotonic=self.time.monotonic,
            **options,  # type: ignore[arg-type]
        )

    async def seed(self, count: int, partitions: int = 4) -> None:
        for index in range(count):
            key = (f"t{index % partitions}", f"r{index:03}")
            self.plaintexts[key] = f"secret {index}".encode()
            await write_direct(self.records, self.vault, KEY_REF, *key, self.plaintexts[key])

    def check_all_open(self) -> None:
        for (partition, record_id), plain in self.plaintexts.items():
            assert open_record(self.records, self.keks, self.source, partition, record_id) == plain

    def formats(self) -> set[RecordFormat]:
        return {row.format for row in self.records.rows.values()}


def world() -> World:
    """Two versions of :data:`KEY_REF` (the newest wraps), empty stores, direct mode."""
    return World(key_source(V1, V2))


def write_under_kek(
    w: World, partition: str, record_id: str, plaintext: bytes, kek_version: str
) -> None:
    """Insert a format-2 record under a given KEK version at once, as a (late) hierarchy
    writer does (synchronous, so a probe can act as that writer mid-job)."""
    kek_row = w.keks.rows[(partition, kek_version)]
    with (
        _rsa(w.source, kek_row.key_id, kek_row.algorithm).unwrap(kek_row.wrapped) as kek,
        DataKey.generate() as dek,
    ):
        write = RecordWrite(
            partition, record_id, RecordFormat.HIERARCHY, WrapAlgorithm.A256KW,
            LocalAesKeyWrapper(kek_version, kek).wrap(dek), dek.kcv, kek_version=kek_version,
            sealed=seal(dek, plaintext, dek_id=f"{partition}/{record_id}"),
        )  # fmt: skip
    assert (partition, record_id) not in w.records.rows
    w.records.rows[(partition, record_id)] = w.records.new_row(write)
    w.plaintexts[(partition, record_id)] = plaintext


class HeldInserts:
    """A writer's view of ``w.records`` whose inserts of chosen records land late: at the
    given time on the fake clock (a request held in the network, or an SDK retry), as the
    write bound allows (``shared/records/_write_bound.py``). Everything else is the store's."""

    def __init__(self, w: World) -> None:
        self.w = w
        self.inner = w.records
        #: record ref -> when its insert lands.
        self.holds: dict[str, datetime] = {}
        self.landed: list[StoredRecord] = []

    @property
    def name(self) -> str:
        return self.inner.name

    async def read_record(self, partition: str, record_id: str) -> StoredRecord | None:
        return await self.inner.read_record(partition, record_id)

    async def insert_record(self, write: RecordWrite) -> StoredRecord:
        land_at = self.holds.pop(write.ref, None)
        while land_at is not None and self.w.time.now() < land_at:
            await asyncio.sleep(0)
        stored = await self.inner.insert_record(write)
        self.landed.append(stored)
        return stored

    async def replace_record(self, current: StoredRecord, write: RecordWrite) -> WriteResult:
        return await self.inner.replace_record(current, write)

    async def scan_records(
        self,
        *,
        partition: str | None = None,
        continuation: str | None = None,
        page_size: int = 100,
    ) -> RecordPage:
        return await self.inner.scan_records(
            partition=partition, continuation=continuation, page_size=page_size
        )
