"""The intermediate keys' own crypto-period: new KEK versions, local rewrap, old ones deleted.

One job for the store (or one partition), in resumable steps:

1. CREATE: for each selected partition (every partition with a KEK, or one, or those whose
   current KEK is older than ``older_than_days``), a new KEK version, wrapped under the newest
   enabled version of the Key Vault key; it is the partition's current KEK from now on.
2. WAIT: the writers' KEK cache TTL, after which no writer still wraps under an older one.
   Their writes land within ``MAX_WRITE_SECONDS`` after it (``_write_bound``): no COUNT
   begins before that (``settle_until``), so none misses a late record under an old version.
3. Partition by partition: REWRAP every format-2 record under an older version to the
   current one (the old KEK is unwrapped by the vault once per version; each DEK is
   unwrapped and wrapped locally: no vault call per DEK), COUNT the records under each
   version, then CLEANUP: an older version is deleted only when that count found none
   under it. A late writer's record makes the count non-zero: the partition goes round
   again. A row that cannot be read keeps every older version of its partition.

Selected in steps 2-3 are the partitions whose current KEK the job made (dated after it
started), so a resumed job finds them again from the store alone.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import timedelta

from shared.errors import ConfigurationError
from shared.records._kek_ids import is_kek_version, kek_version_time
from shared.records._migration_job import JobParts, StoreJob, tally_of, with_tally
from shared.records._migration_keks import kek_created_at
from shared.records._migration_probe import (
    CLAIMED,
    COUNT_PAGE,
    KEK_AFTER_CREATE,
    PAGE_BEFORE_CHECKPOINT,
    PAGE_SCANNED,
    WAIT_OVER,
)
from shared.records._migration_rows import apply_all
from shared.records._migration_state import (
    MAX_PASSES,
    Checkpoint,
    JobKind,
    Phase,
    Tally,
    refuse_if_busy,
)
from shared.records._model import RecordFormat, StoredKek, StoreMode

#: The key a count uses for rows it could not read (their KEK version is unknown).
_UNREADABLE = "?"


class KekRotation(StoreJob):
    """Rotate the KEKs of a store (or of ``partition``) in hierarchy mode.

    ``older_than_days``: only partitions whose current KEK is at least that old (the
    crypto-period; ``None`` rotates every selected partition).
    """

    def __init__(
        self,
        parts: JobParts,
        *,
        owner: str,
        key_ref: str,
        kek_ttl_seconds: float,
        partition: str | None = None,
        older_than_days: float | None = None,
    ) -> None:
        super().__init__(parts, owner, key_ref)
        self.kek_ttl_seconds = kek_ttl_seconds
        self.only_partition = partition
        self.older_than_days = older_than_days

    async def claim(self) -> bool:
        """Start (or resume the unfinished) rotation; ``False``: the store has no KEKs.

        Raises:
            JobBusyError: another runner holds the store's job lease.
            ConfigurationError: a migration is unfinished, or the store is between modes.
        """
        current = await self.read()
        now = self.parts.now()
        refuse_if_busy(current, self.owner, now)
        if current is not None and current.kind is JobKind.MIGRATE and not current.finished:
            raise ConfigurationError(
                f"the store's migration to {current.target} is unfinished (phase "
                f"{current.phase.value}): finish it with `keyward migrate` first"
            )
        if self.row.mode is StoreMode.DIRECT:
            return False
        if self.row.mode is not StoreMode.HIERARCHY:
            raise ConfigurationError(
                f"the store is {self.row.mode.value}: finish the migration with "
                "`keyward migrate` before rotating its KEKs"
            )
        if current is not None and current.kind is JobKind.ROTATE_KEKS and not current.finished:
            self.only_partition = current.only_partition
            self.older_than_days = current.older_than_days
            await self.save(current)
        else:
            await self.save(
                Checkpoint(
                    kind=JobKind.ROTATE_KEKS,
                    target="",
                    key_ref=self.key_ref,
                    owner=self.owner,
                    lease_until=now,
                    started_at=now,
                    phase=Phase.CREATE,
                    only_partition=self.only_partition,
                    older_than_days=self.older_than_days,
                )
            )
        self.parts.probe(CLAIMED)
        return True

    async def step(self) -> None:
        phase = self.checkpoint.phase
        if phase is not Phase.WAIT and self.wait_seconds() > 0:
            await self.heartbeat()
            return
        if phase is Phase.COUNT and not await self.settled(self.kek_ttl_seconds):
            return  # a count that may delete a KEK version waits out every late writer
        if phase is Phase.CREATE:
            await self._create_page()
        elif phase is Phase.WAIT:
            if self.wait_seconds() > 0:
                await self.heartbeat()
                return
            self.parts.probe(WAIT_OVER)
            await self._advance(replace(self.checkpoint, wait_until=None))
        elif phase is Phase.REWRAP:
            await self._rewrap_page()
        elif phase is Phase.COUNT:
            await self._count_page()
        elif phase is Phase.CLEANUP:
            await self._cleanup()

    async def _create_page(self) -> None:
        parts, checkpoint, now = self.parts, self.checkpoint, self.parts.now()
        if checkpoint.only_partition is not None:
            names, more = [checkpoint.only_partition], None
        else:
            listing = await parts.keks.kek_partitions(
                continuation=checkpoint.continuation, page_size=parts.page_size
            )
            names, more = list(listing.partitions), listing.continuation
        created = 0
        for name in names:
            versions = await parts.keks.list_keks(name)
            if not versions:
                continue
            if self._made_by_job(versions[0]):
                continue  # before a crash
            made = kek_created_at(versions[0])
            limit = checkpoint.older_than_days
            if limit is not None and made is not None and made > now - timedelta(days=limit):
                continue  # still within its crypto-period
            await self.keks.create(name, now=now)
            created += 1
            parts.probe(KEK_AFTER_CREATE)
        self.keks.clear()  # nothing is wrapped under them until the wait is over
        after = replace(with_tally(checkpoint, Tally(keks_created=created), ()), continuation=more)
        if more is None:
            # From now, after every new version's insert returned (not from the page's start):
            # a writer that listed a partition before its new KEK landed keeps the older one
            # as current for the KEK TTL, and its write lands within MAX_WRITE_SECONDS after.
            wait_until = parts.now() + timedelta(seconds=self.kek_ttl_seconds)
            settle = self.settle_after(self.kek_ttl_seconds)
            after = replace(after, phase=Phase.WAIT, wait_until=wait_until, settle_until=settle)
        parts.probe(PAGE_BEFORE_CHECKPOINT)
        await self.save(after)

    async def _selected(self, partition: str) -> bool:
        """Whether the job rotated ``partition`` (its current KEK is dated after the start)
        and older versions remain."""
        versions = await self.parts.keks.list_keks(partition)
        return len(versions) > 1 and self._made_by_job(versions[0])

    def _made_by_job(self, kek: StoredKek) -> bool:
        """Whether this job made ``kek``: its id is dated at or after the job's start (the
        job dates its versions by its own clock; a partition's first KEK has no date)."""
        made = kek_version_time(kek.version) if is_kek_version(kek.version) else None
        return made is not None and made >= self.checkpoint.started_at

    async def _advance(self, checkpoint: Checkpoint) -> None:
        """Move to the next selected partition after ``checkpoint.partition``, or finish."""
        after, listing_at = checkpoint.partition, checkpoint.partitions_continuation
        found: str | None = None
        if checkpoint.only_partition is not None:
            if after is None and await self._selected(checkpoint.only_partition):
                found = checkpoint.only_partition
        else:
            while found is None:
                listing = await self.parts.keks.kek_partitions(
                    continuation=listing_at, page_size=self.parts.page_size
                )
                for name in listing.partitions:
                    if (after is None or name > after) and await self._selected(name):
                        found = name
                        break
                if found is None and listing.continuation is None:
                    break
                if found is None:
                    listing_at = listing.continuation
        self.keks.clear()
        if found is None:
            await self.save(replace(checkpoint, phase=Phase.DONE, partition=None))
            return
        await self.save(
            replace(
                checkpoint,
                phase=Phase.REWRAP,
                partition=found,
                partitions_continuation=listing_at,
                continuation=None,
                pass_number=1,
                version_counts={},
            )
        )

    async def _rewrap_page(self) -> None:
        parts, checkpoint = self.parts, self.checkpoint
        partition = checkpoint.partition
        assert partition is not None
        current = (await parts.keks.list_keks(partition))[0]
        page = await parts.records.scan_records(
            partition=partition, continuation=checkpoint.continuation, page_size=parts.page_size
        )
        parts.probe(PAGE_SCANNED)
        unwraps_before = self.keks.vault_unwraps
        to_current = functools.partial(self.rows.kek_to_kek, kek=current)
        results = await apply_all(self.rows, page.records, to_current, workers=parts.workers)
        tally, problems = tally_of(results)
        tally = replace(tally, vault_unwraps=self.keks.vault_unwraps - unwraps_before)
        after = replace(with_tally(checkpoint, tally, problems), continuation=page.continuation)
        if page.continuation is None:
            after = replace(after, phase=Phase.COUNT, version_counts={})
        parts.probe(PAGE_BEFORE_CHECKPOINT)
        await self.save(after)

    async def _count_page(self) -> None:
        parts, checkpoint = self.parts, self.checkpoint
        page = await parts.records.scan_records(
            partition=checkpoint.partition,
            continuation=checkpoint.continuation,
            page_size=parts.page_size,
        )
        parts.probe(COUNT_PAGE)
        counts = dict(checkpoint.version_counts)
        for row in page.records:
            if row.problem is not None:
                counts[_UNREADABLE] = counts.get(_UNREADABLE, 0) + 1
            elif row.format is RecordFormat.HIERARCHY and row.kek_version:
                counts[row.kek_version] = counts.get(row.kek_version, 0) + 1
        after = replace(checkpoint, continuation=page.continuation, version_counts=counts)
        if page.continuation is not None:
            await self.save(after)
            return
        assert checkpoint.partition is not None
        versions = await parts.keks.list_keks(checkpoint.partition)
        behind = sum(counts.get(kek.version, 0) for kek in versions[1:])
        if behind and after.pass_number < MAX_PASSES:
            # A late writer wrapped under an older version: go round again.
            await self.save(
                replace(
                    after,
                    phase=Phase.REWRAP,
                    pass_number=after.pass_number + 1,
                    continuation=None,
                    version_counts={},
                )
            )
            return
        await self.save(replace(after, phase=Phase.CLEANUP))

    async def _cleanup(self) -> None:
        """Delete the partition's older versions no record is under (a partition with a row
        that cannot be read keeps them all: that row may need one)."""
        parts, checkpoint = self.parts, self.checkpoint
        assert checkpoint.partition is not None
        counts = checkpoint.version_counts
        deleted = 0
        detail = checkpoint.detail
        if counts.get(_UNREADABLE):
            detail = f"{checkpoint.partition}: older KEKs kept (records that cannot be read)"
        else:
            for kek in (await parts.keks.list_keks(checkpoint.partition))[1:]:
                if counts.get(kek.version, 0):
                    detail = f"{checkpoint.partition}: {kek.version} still has records"
                    continue
                deleted += await self.delete_kek(kek)
        after = with_tally(checkpoint, Tally(keks_deleted=deleted), ())
        await self._advance(replace(after, detail=detail))
