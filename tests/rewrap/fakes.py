"""In-process parts for rewrap tests: a DEK store in a dict, key pairs, a DEK factory.

The store is a real (if small) implementation of the DekStore protocol, not a mock of Azure:
ETags change on every write, writes are conditional, scan pages by a key-ordered
continuation. Hooks let a test act as a concurrent writer or crash the store mid-batch.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.local_keys import LocalKeyVersionSource
from shared.crypto import AsyncKeyWrapper, DataKey, LocalRsaWrapper, WrapAlgorithm
from shared.errors import InvalidInputError
from shared.rewrap import (
    EngineSettings,
    InMemoryJobStore,
    JobStore,
    KeyVersionInfo,
    KeyVersionSource,
    RewrapEngine,
    ShardMessage,
)
from shared.stores import (
    CountPage,
    DekRecord,
    DekStore,
    Rewrap,
    ScanPage,
    VersionCount,
    WriteOutcome,
    WriteResult,
    all_version_counts,
)

KEY_REF = "https://contoso-kv.vault.azure.net/keys/payments"
OTHER_KEY_REF = "https://contoso-kv.vault.azure.net/keys/other"
V1 = "1" * 32
V2 = "2" * 32
V3 = "3" * 32
V4 = "4" * 32


@functools.cache
def rsa_key(index: int) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key pair, generated once per index per test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_source(*versions: str, key_ref: str = KEY_REF) -> LocalKeyVersionSource:
    """A key source with ``versions`` of ``key_ref`` in creation order (all enabled)."""
    source = LocalKeyVersionSource()
    for index, version in enumerate(versions):
        source.add_version(key_ref, version, rsa_key(index))
    return source


@dataclass
class StoredDek:
    ref: str
    partition: str
    key_id: str
    algorithm: WrapAlgorithm | None
    wrapped: bytes
    kcv: str | None
    material_prefix: bytes = b""
    problem: str | None = None
    previous_key_id: str | None = None
    previous_wrapped: bytes | None = None
    unreadable_reason: str | None = None
    etag: int = 1


class MemoryDekStore:
    """A DekStore in a dict, ordered by ref.

    Attributes:
        filter_current: drop records at ``exclude_version`` server-side (a store may, or may
            return them for the engine to treat as current).
        after_scan: called with the page's records after each scan (a concurrent writer).
        probe: called with ``"store.mid_batch"`` after each item a batch writes.
    """

    def __init__(self, *, filter_current: bool = True) -> None:
        self.rows: dict[str, StoredDek] = {}
        self.filter_current = filter_current
        self.after_scan: Callable[[Sequence[DekRecord]], None] | None = None
        self.probe: Callable[[str], None] | None = None
        self.scans = 0
        self.batches: list[int] = []
        self.written_refs: list[str] = []
        #: ``count_versions`` calls so far (tests check a count resumed, not restarted).
        self.count_pages = 0

    @property
    def name(self) -> str:
        return "memory"

    def add(self, dek: StoredDek) -> None:
        self.rows[dek.ref] = dek

    def touch(self, ref: str, **changes: object) -> None:
        """A concurrent writer's change: new values and a new ETag."""
        row = self.rows[ref]
        self.rows[ref] = replace(row, etag=row.etag + 1, **changes)  # type: ignore[arg-type]

    async def scan(
        self,
        key_ref: str,
        *,
        exclude_version: str | None,
        continuation: str | None = None,
        page_size: int = 100,
    ) -> ScanPage:
        self.scans += 1
        refs = sorted(ref for ref in self.rows if continuation is None or ref > continuation)
        records: list[DekRecord] = []
        last: str | None = None
        for ref in refs:
            row = self.rows[ref]
            last = ref
            at_target = exclude_version and row.key_id.lower().endswith("/" + exclude_version)
            if not (self.filter_current and at_target and row.problem is None):
                records.append(self._record(row))
            if len(records) >= page_size:
                break
        more = last is not None and last != (refs[-1] if refs else None)
        if self.after_scan is not None:
            self.after_scan(records)
        return ScanPage(records, last if more else None)

    async def replace_batch(self, rewraps: Sequence[Rewrap]) -> Sequence[WriteResult]:
        assert len({r.record.partition for r in rewraps}) <= 1, "one partition per batch"
        assert len(rewraps) <= 100
        self.batches.append(len(rewraps))
        results = []
        for rewrap in rewraps:
            row = self.rows.get(rewrap.record.ref)
            if row is None:
                results.append(WriteResult(rewrap.record.ref, WriteOutcome.NOT_FOUND))
                continue
            if str(row.etag) != rewrap.record.etag:
                results.append(WriteResult(rewrap.record.ref, WriteOutcome.CONFLICT))
                continue
            self.rows[row.ref] = replace(
                row,
                key_id=rewrap.key_id,
                algorithm=rewrap.algorithm,
                wrapped=rewrap.wrapped,
                kcv=rewrap.kcv if row.kcv is not None else None,
                previous_key_id=row.key_id,
                previous_wrapped=row.wrapped,
                unreadable_reason=None,
                etag=row.etag + 1,
            )
            self.written_refs.append(row.ref)
            results.append(WriteResult(row.ref, WriteOutcome.WRITTEN, new_etag=str(row.etag + 1)))
            if self.probe is not None:
                self.probe("store.mid_batch")
        return results

    async def mark_unreadable(self, record: DekRecord, reason: str) -> WriteResult:
        row = self.rows.get(record.ref)
        if row is None:
            return WriteResult(record.ref, WriteOutcome.NOT_FOUND)
        if str(row.etag) != record.etag:
            return WriteResult(record.ref, WriteOutcome.CONFLICT)
        self.rows[row.ref] = replace(row, unreadable_reason=reason, etag=row.etag + 1)
        return WriteResult(record.ref, WriteOutcome.WRITTEN, new_etag=str(row.etag + 1))

    async def count_versions(
        self, key_ref: str, *, continuation: str | None = None, page_size: int = 1000
    ) -> CountPage:
        """Counts of the next ``page_size`` rows in ref order (any key's: a listing page)."""
        if page_size < 1:
            raise InvalidInputError("page_size must be at least 1")
        self.count_pages += 1
        refs = sorted(ref for ref in self.rows if continuation is None or ref > continuation)
        counts: dict[str, VersionCount] = {}
        prefix = key_ref.lower() + "/"
        for ref in refs[:page_size]:
            row = self.rows[ref]
            if row.problem is None and row.key_id.lower().startswith(prefix):
                entry = counts.setdefault(row.key_id, VersionCount(row.key_id))
                counts[row.key_id] = replace(
                    entry,
                    current=entry.current + 1,
                    unreadable=entry.unreadable + (1 if row.unreadable_reason else 0),
                )
            if row.previous_key_id and row.previous_key_id.lower().startswith(prefix):
                entry = counts.setdefault(row.previous_key_id, VersionCount(row.previous_key_id))
                counts[row.previous_key_id] = replace(entry, previous=entry.previous + 1)
        more = len(refs) > page_size
        return CountPage(sorted(counts.values(), key=lambda c: c.key_id),
                         refs[page_size - 1] if more else None)  # fmt: skip

    async def version_counts(self, key_ref: str) -> Sequence[VersionCount]:
        return await all_version_counts(self, key_ref)

    async def close(self) -> None:
        return None

    @staticmethod
    def _record(row: StoredDek) -> DekRecord:
        return DekRecord(
            ref=row.ref,
            partition=row.partition,
            etag=str(row.etag),
            key_id=row.key_id,
            algorithm=row.algorithm,
            wrapped=row.wrapped,
            kcv=row.kcv,
            material_prefix=row.material_prefix,
            problem=row.problem,
            previous_key_id=row.previous_key_id,
        )


def make_dek(
    source: LocalKeyVersionSource,
    ref: str,
    version: str,
    *,
    partition: str = "p0",
    key_ref: str = KEY_REF,
    algorithm: WrapAlgorithm = WrapAlgorithm.RSA_OAEP_256,
    material: bytes | None = None,
    material_prefix: bytes = b"",
    with_kcv: bool = True,
) -> tuple[StoredDek, bytes]:
    """A DEK wrapped under ``version``; returns the row and its plaintext (for checks)."""
    key_id = f"{key_ref}/{version}"
    plain = material if material is not None else DataKey.generate().reveal()
    plain = material_prefix + plain
    wrapper = LocalRsaWrapper(key_id, private_key=source.private_key(key_id), algorithm=algorithm)
    with DataKey(plain) as dek:
        wrapped = wrapper.wrap(dek)
        kcv = dek.kcv if with_kcv else None
    row = StoredDek(
        ref=ref,
        partition=partition,
        key_id=key_id,
        algorithm=algorithm,
        wrapped=wrapped,
        kcv=kcv,
        material_prefix=material_prefix,
    )
    return row, plain


def unwrap_row(source: LocalKeyVersionSource, row: StoredDek) -> bytes:
    """The plaintext of a stored DEK, unwrapped with the local private key."""
    assert row.algorithm is not None
    wrapper = LocalRsaWrapper(
        row.key_id, private_key=source.private_key(row.key_id), algorithm=row.algorithm
    )
    with wrapper.unwrap(row.wrapped) as dek:
        return dek.reveal()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


Fault = Callable[[str], Exception | None]


class FaultyKeySource:
    """A key source whose unwraps first consult ``fault(key_id)``: an error to raise, or None.

    Unwraps under the key's newest enabled version (the rewrap target, where only the
    engine's round-trip probe unwraps) neither consult ``fault`` nor count in ``unwraps``
    unless ``fault_probe``: the faults these tests script are the DEKs'.
    """

    def __init__(self, inner: LocalKeyVersionSource, fault: Fault, *, fault_probe: bool = False):
        self.inner = inner
        self.fault = fault
        self.fault_probe = fault_probe
        self.unwraps = 0

    async def newest_enabled_version(self, key_ref: str) -> str:
        return await self.inner.newest_enabled_version(key_ref)

    async def versions(self, key_ref: str) -> Sequence[KeyVersionInfo]:
        return await self.inner.versions(key_ref)

    async def key_version(self, key_id: str) -> KeyVersionInfo:
        return await self.inner.key_version(key_id)

    async def wrapper(self, key_id: str, algorithm: WrapAlgorithm) -> AsyncKeyWrapper:
        return _FaultyWrapper(self, await self.inner.wrapper(key_id, algorithm))


class _FaultyWrapper:
    def __init__(self, source: FaultyKeySource, inner: AsyncKeyWrapper) -> None:
        self._source = source
        self._inner = inner

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    @property
    def algorithm(self) -> WrapAlgorithm:
        return self._inner.algorithm

    async def wrap(self, dek: DataKey) -> bytes:
        return await self._inner.wrap(dek)

    async def unwrap(self, wrapped: bytes) -> DataKey:
        source = self._source
        key_ref, _, version = self.key_id.rpartition("/")
        if not source.fault_probe and version == await source.newest_enabled_version(key_ref):
            return await self._inner.unwrap(wrapped)
        source.unwraps += 1
        error = source.fault(self.key_id)
        if error is not None:
            raise error
        return await self._inner.unwrap(wrapped)


def engine_for(
    store: DekStore,
    source: KeyVersionSource,
    jobs: JobStore | None = None,
    **settings: Any,
) -> RewrapEngine:
    """An engine with no rate limit to speak of (tests that pace set ``rate_ceiling``)."""
    settings.setdefault("rate_ceiling", 1_000_000)
    options = {
        k: settings.pop(k)
        for k in (
            "owner",
            "probe",
            "now",
            "clock",
            "sleep",
            "progress",
            "on_issue",
            "job_scope",
            "board",
        )
        if k in settings
    }
    return RewrapEngine(
        store=store,
        keys=source,
        jobs=jobs if jobs is not None else InMemoryJobStore(),
        settings=EngineSettings(**settings),
        **options,
    )


def populate(
    store: MemoryDekStore,
    source: LocalKeyVersionSource,
    versions: Sequence[str],
    count: int,
    *,
    partitions: int = 3,
    prefix: str = "dek",
) -> dict[str, bytes]:
    """Add ``count`` DEKs cycling over ``versions`` and partitions; returns ref -> plaintext."""
    plaintexts = {}
    for index in range(count):
        row, plain = make_dek(
            source,
            f"{prefix}-{index:04}",
            versions[index % len(versions)],
            partition=f"p{index % partitions}",
        )
        store.add(row)
        plaintexts[row.ref] = plain
    return plaintexts


class VirtualTime:
    """A monotonic clock that only moves when someone sleeps on it (each sleep yields once,
    so concurrent workers interleave as on a real loop)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class RecordingQueue:
    """The sweep's and planner's shard queue, keeping what was sent."""

    def __init__(self) -> None:
        self.sent: list[ShardMessage] = []

    async def send(self, message: ShardMessage, *, delay_seconds: int = 0) -> None:
        self.sent.append(message)


class OneKeyLister:
    """A vault that lists one key, :data:`KEY_REF`."""

    async def list_keys(self, vault_url: str) -> list[str]:
        return [KEY_REF]
