"""Running a store's migration or KEK rotation to the end: steps, waits, vault pacing.

The steps and their checkpoints are pure (``shared.records``); this service drives them in a
loop, sleeps out the writers' TTLs (renewing the job's lease meanwhile), and paces every
vault unwrap with the rewrap engine's limiter at keyward's share of the vault's published
budget (``shared.rewrap``: ``AimdRateLimiter``, ``throttle_ceiling``), backing off on 429s.
Rows of a partition are converted ``workers`` at a time; each waits for its slot.

The pace is this run's alone: a migration does not join the vault's budget board (the
board's heartbeat is the rewrap worker's), so run it when no large rewrap runs on the same
vault, or give it a lower ``rate``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.crypto import (
    DEFAULT_WRAP_ALGORITHM,
    AsyncKeyWrapper,
    DataKey,
    WrapAlgorithm,
    require_unwrap_allowed,
)
from shared.errors import ThrottledError
from shared.records import (
    DEFAULT_JOB_PAGE_SIZE,
    DEFAULT_JOB_WORKERS,
    MAX_WRITE_SECONDS,
    Checkpoint,
    EnvelopeSettings,
    JobParts,
    JobProbe,
    KekRotation,
    KekStore,
    Migration,
    ModeStore,
    RecordStore,
    StoreJob,
    StoreMode,
    VaultKeys,
    no_probe,
)
from shared.rewrap import (
    DEFAULT_HEADROOM,
    DEFAULT_VAULT_SHARE,
    AimdRateLimiter,
    Deadline,
    KeyVersionSource,
    default_owner,
    throttle_ceiling,
    vault_budget,
)

#: 429s in a row on one unwrap before the job stops (it resumes from its checkpoint).
MAX_THROTTLED_ATTEMPTS = 8


@dataclass(frozen=True)
class JobRun:
    """What a run did: whether there was anything to do, and the job's last checkpoint."""

    started: bool
    mode: StoreMode
    checkpoint: Checkpoint | None
    seconds: float


class PacedVaultKeys:
    """``VaultKeys`` whose unwraps wait for the limiter's slot; a 429 slows the limiter and
    the unwrap is sent again (wraps are local with the public key: not paced)."""

    def __init__(
        self, inner: VaultKeys, limiter: AimdRateLimiter, *, deadline: Deadline | None = None
    ) -> None:
        """``deadline``: a slice's end; a slot (or a budget hold) past it raises
        ``SliceDeadlineError`` instead of waiting on (the admin operations' slices)."""
        self._inner = inner
        self.limiter = limiter
        self._deadline = deadline

    async def newest(self, key_ref: str) -> AsyncKeyWrapper:
        return _PacedWrapper(await self._inner.newest(key_ref), self.limiter, self._deadline)

    async def version(self, key_id: str, algorithm: WrapAlgorithm | None = None) -> AsyncKeyWrapper:
        inner = await self._inner.version(key_id, algorithm)
        return _PacedWrapper(inner, self.limiter, self._deadline)


class _PacedWrapper:
    def __init__(
        self, inner: AsyncKeyWrapper, limiter: AimdRateLimiter, deadline: Deadline | None
    ) -> None:
        self._inner = inner
        self._limiter = limiter
        self._deadline = deadline

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    @property
    def algorithm(self) -> WrapAlgorithm:
        return self._inner.algorithm

    async def wrap(self, dek: DataKey) -> bytes:
        return await self._inner.wrap(dek)

    async def unwrap(self, wrapped: bytes) -> DataKey:
        for _ in range(MAX_THROTTLED_ATTEMPTS - 1):
            issued = await self._limiter.acquire(self._deadline)
            try:
                key = await self._inner.unwrap(wrapped)
            except ThrottledError as error:
                self._limiter.on_throttled(issued, error.retry_after)
                continue
            self._limiter.on_success()
            return key
        await self._limiter.acquire(self._deadline)
        return await self._inner.unwrap(wrapped)


class KeySourceVaultKeys:
    """``VaultKeys`` over the rewrap engine's ``KeyVersionSource`` (what the CLI opens: the
    Key Vault adapter, or local keys in development): wraps with RSA-OAEP-256, unwraps with
    the row's algorithm; RSA1_5 only with ``allow_legacy_rsa1_5`` (as a rewrap)."""

    def __init__(self, source: KeyVersionSource, *, allow_legacy_rsa1_5: bool = False) -> None:
        self._source = source
        self._allow_legacy = allow_legacy_rsa1_5

    async def newest(self, key_ref: str) -> AsyncKeyWrapper:
        version = await self._source.newest_enabled_version(key_ref)
        return await self.version(f"{key_ref.rstrip('/')}/{version}")

    async def version(self, key_id: str, algorithm: WrapAlgorithm | None = None) -> AsyncKeyWrapper:
        """A wrapper for ``key_id`` that unwraps with ``algorithm`` (``None``: RSA-OAEP-256).

        Raises:
            UnsupportedAlgorithmError: RSA1_5 without ``allow_legacy_rsa1_5`` (no call made).
        """
        algorithm = algorithm or DEFAULT_WRAP_ALGORITHM
        require_unwrap_allowed(algorithm, allow_legacy_rsa1_5=self._allow_legacy)
        return await self._source.wrapper(key_id, algorithm)


class StoreJobs:
    """Migration and KEK rotation of one store (its record, KEK and mode ports)."""

    def __init__(
        self,
        records: RecordStore,
        keks: KekStore,
        modes: ModeStore,
        vault: VaultKeys,
        *,
        settings: EnvelopeSettings | None = None,
        owner: str | None = None,
        rate: float | None = None,
        page_size: int = DEFAULT_JOB_PAGE_SIZE,
        workers: int = DEFAULT_JOB_WORKERS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        probe: JobProbe = no_probe,
        progress: Callable[[Checkpoint], None] | None = None,
        max_write_seconds: float = MAX_WRITE_SECONDS,
    ) -> None:
        """``rate``: vault unwraps per second (default: keyward's share of the vault's
        published RSA-2048 budget, as a rewrap assumes when the vault does not say).
        ``max_write_seconds``: how late a writer's record may land (``_write_bound``; lower
        only in tests whose writers are in-process)."""
        self.settings = settings or EnvelopeSettings()
        self.owner = owner or default_owner()
        ceiling = throttle_ceiling(
            vault_budget(None, None), rate, DEFAULT_HEADROOM, DEFAULT_VAULT_SHARE
        )
        self.limiter = AimdRateLimiter(ceiling, clock=monotonic, sleep=sleep)
        self._parts = JobParts(
            records=records,
            keks=keks,
            modes=modes,
            vault=PacedVaultKeys(vault, self.limiter),
            now=now,
            probe=probe,
            page_size=page_size,
            workers=workers,
            max_write_seconds=max_write_seconds,
        )
        self._sleep = sleep
        self._monotonic = monotonic
        self._progress = progress

    async def migrate(self, target: StoreMode, key_ref: str) -> JobRun:
        """Move the store to ``target`` (start or resume); returns when it is there, or
        blocked (the checkpoint says why).

        Raises:
            JobBusyError: another runner holds the store's job.
            ConfigurationError: an unfinished migration wraps under another key.
        """
        job = Migration(
            self._parts,
            owner=self.owner,
            key_ref=key_ref,
            target=target,
            mode_ttl_seconds=self.settings.mode_ttl_seconds,
            kek_ttl_seconds=self.settings.kek_cache_seconds,
        )
        return await self._run(job, job.claim)

    async def rotate_keks(
        self, key_ref: str, *, partition: str | None = None, older_than_days: float | None = None
    ) -> JobRun:
        """Rotate the KEKs (of ``partition``, or those older than ``older_than_days``).

        Raises:
            JobBusyError: another runner holds the store's job.
            ConfigurationError: the store is between modes.
        """
        job = KekRotation(
            self._parts,
            owner=self.owner,
            key_ref=key_ref,
            kek_ttl_seconds=self.settings.kek_cache_seconds,
            partition=partition,
            older_than_days=older_than_days,
        )
        return await self._run(job, job.claim)

    async def _run(self, job: StoreJob, claim: Callable[[], Awaitable[bool]]) -> JobRun:
        began = self._monotonic()
        try:
            started = await claim()
            while started and not job.finished:
                wait = job.wait_seconds()
                if wait > 0:
                    await self._sleep(min(wait, self._parts.lease_seconds / 3))
                await job.step()
                if self._progress is not None:
                    self._progress(job.checkpoint)
        finally:
            job.close()
        checkpoint = job.checkpoint if started else (await job.read())
        return JobRun(started, job.row.mode, checkpoint, self._monotonic() - began)
