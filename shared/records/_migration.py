"""Moving a store between direct and hierarchy mode, one bounded, resumable step at a time.

To hierarchy: the mode becomes ``migrating-to-hierarchy`` (writers now write format 2), the
job waits the writers' mode TTL (so no writer still holds ``direct``), then converts page by
page: each format-1 row's DEK is unwrapped by the vault (the one vault call per row, paced by
the service), checked against its KCV, wrapped locally (A256KW) under the partition's current
KEK and conditionally replaced. A full count of format-1 rows follows, begun no earlier than
the mode TTL plus ``MAX_WRITE_SECONDS`` after the mode change (``settle_until``: a writer
that read ``direct`` just before may land a format-1 row until then); zero makes the mode
``hierarchy`` (in the same write as the checkpoint's ``done``), else another pass.

Back to direct: the mirror (KEK unwrapped by the vault once per version, DEKs unwrapped
locally, wrapped under the newest enabled vault version with its public key after a round
trip proved that version), a count of format-2 rows (begun as late as the one above), mode
``direct``, then, after the writers' KEK TTL plus ``MAX_WRITE_SECONDS``, the KEK rows
(nothing references them any more) are deleted page by page.

Every step ends with a checkpoint in the mode row; a crash anywhere resumes from the last
one, and a page done twice is harmless (converted rows are skipped).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import datetime, timedelta

from shared.crypto import AsyncKeyWrapper, DataKey
from shared.errors import ConfigurationError, IntegrityError
from shared.records._migration_job import JobParts, StoreJob, tally_of, with_tally
from shared.records._migration_probe import (
    BEFORE_FINAL_MODE,
    CLAIMED,
    COUNT_PAGE,
    FINAL_MODE_WRITTEN,
    MODE_SET,
    PAGE_BEFORE_CHECKPOINT,
    PAGE_SCANNED,
    WAIT_OVER,
)
from shared.records._migration_rows import RowResult, apply_all, by_partition
from shared.records._migration_state import (
    MAX_PASSES,
    Checkpoint,
    JobBusyError,
    JobKind,
    Phase,
    Tally,
    refuse_if_busy,
)
from shared.records._model import RecordFormat, StoredRecord, StoreMode

_MIGRATING = {StoreMode.HIERARCHY: StoreMode.TO_HIERARCHY, StoreMode.DIRECT: StoreMode.TO_DIRECT}
#: Claims retried when the mode row changed between read and write (a first writer made it).
_CLAIM_ATTEMPTS = 3


class Migration(StoreJob):
    """The migration of one store to ``target`` (``StoreMode.HIERARCHY`` or ``DIRECT``).

    ``key_ref`` is the Key Vault key new wraps go under: the KEKs' (to hierarchy) or the
    DEKs' (to direct). ``mode_ttl_seconds`` is how long writers cache the mode row,
    ``kek_ttl_seconds`` how long they remember a partition's current KEK.
    """

    def __init__(
        self,
        parts: JobParts,
        *,
        owner: str,
        key_ref: str,
        target: StoreMode,
        mode_ttl_seconds: float,
        kek_ttl_seconds: float = 0.0,
    ) -> None:
        if target not in _MIGRATING:
            raise ConfigurationError(f"a migration ends in direct or hierarchy, not {target}")
        super().__init__(parts, owner, key_ref)
        self.target = target
        self.mode_ttl_seconds = mode_ttl_seconds
        self.kek_ttl_seconds = kek_ttl_seconds
        self._proved: str | None = None

    @property
    def old_format(self) -> RecordFormat:
        return RecordFormat.DIRECT if self.target is StoreMode.HIERARCHY else RecordFormat.HIERARCHY

    async def claim(self) -> bool:
        """Start or resume the migration; ``False`` when the store is already there.

        Raises:
            JobBusyError: another runner holds the store's job lease.
            ConfigurationError: the unfinished migration wraps under another key.
        """
        for attempt in range(_CLAIM_ATTEMPTS):
            try:
                started = await self._claim_once()
            except JobBusyError:
                if attempt == _CLAIM_ATTEMPTS - 1:
                    raise
                continue
            if started:
                self.parts.probe(CLAIMED)
            return started
        raise AssertionError("unreachable")  # pragma: no cover

    async def _claim_once(self) -> bool:
        current = await self.read()
        now = self.parts.now()
        refuse_if_busy(current, self.owner, now)
        mine = (
            current is not None
            and current.kind is JobKind.MIGRATE
            and current.target == self.target.value
        )
        if self.row.mode is self.target:
            if mine and current is not None and current.phase is Phase.CLEANUP:
                await self.save(current)
                return True
            self._checkpoint = current
            return False
        if mine and current is not None and self.row.mode is _MIGRATING[self.target]:
            if current.key_ref.lower() != self.key_ref.lower():
                raise ConfigurationError(
                    f"the unfinished migration to {self.target.value} wraps under "
                    f"{current.key_ref}; run it with that key"
                )
            if current.phase is Phase.BLOCKED:
                current = self._new_pass(current, 1)
            await self.save(current)
            return True
        fresh = Checkpoint(
            kind=JobKind.MIGRATE,
            target=self.target.value,
            key_ref=self.key_ref,
            owner=self.owner,
            lease_until=now,
            started_at=now,
            phase=Phase.WAIT,
            wait_until=now + timedelta(seconds=self.mode_ttl_seconds),
        )
        await self.save(fresh, mode=_MIGRATING[self.target])
        self.parts.probe(MODE_SET)
        # Dated now that the mode row's write has returned: a writer (or the data shard's
        # mode cache) that read the old mode before it landed trusts it for up to the mode
        # TTL more, and a late write lands within MAX_WRITE_SECONDS after that.
        wait_until = self.parts.now() + timedelta(seconds=self.mode_ttl_seconds)
        settled = replace(
            self.checkpoint, wait_until=wait_until, settle_until=self._settle_after_mode()
        )
        await self.save(settled)
        return True

    async def step(self) -> None:
        """One bounded piece of work (a page, or the end of the wait), then a checkpoint."""
        phase = self.checkpoint.phase
        if self.wait_seconds() > 0:
            await self.heartbeat()
            return
        if phase is Phase.COUNT and not await self.settled(self.mode_ttl_seconds):
            return  # a count that may flip the mode waits out every late old-format write
        if phase is Phase.CLEANUP and not await self.settled(self.kek_ttl_seconds):
            return
        if phase is Phase.WAIT:
            self.parts.probe(WAIT_OVER)
            await self.save(replace(self.checkpoint, phase=Phase.CONVERT, wait_until=None))
        elif phase is Phase.CONVERT:
            await self._convert_page()
        elif phase is Phase.COUNT:
            await self._count_page()
        elif phase is Phase.CLEANUP:
            await self._cleanup_page()

    async def _convert_page(self) -> None:
        parts, checkpoint = self.parts, self.checkpoint
        page = await parts.records.scan_records(
            continuation=checkpoint.continuation, page_size=parts.page_size
        )
        parts.probe(PAGE_SCANNED)
        unwraps_before = self.rows.vault_unwraps + self.keks.vault_unwraps
        created_before = self.keks.created
        results: list[RowResult] = []
        target = None if self.target is StoreMode.HIERARCHY else await self._target()
        for partition, rows in by_partition(page.records):
            if target is not None:
                to_target = functools.partial(self.rows.kek_to_direct, target=target)
                results += await apply_all(self.rows, rows, to_target, workers=parts.workers)
                continue
            if not any(_needs_kek(row) for row in rows):
                results += await apply_all(self.rows, rows, _nothing, workers=parts.workers)
                continue
            to_kek = functools.partial(
                self.rows.direct_to_kek, kek=await self.keks.current(partition)
            )
            results += await apply_all(self.rows, rows, to_kek, workers=parts.workers)
        tally, problems = tally_of(results)
        tally = replace(
            tally,
            vault_unwraps=self.rows.vault_unwraps + self.keks.vault_unwraps - unwraps_before,
            keks_created=self.keks.created - created_before,
        )
        after = with_tally(checkpoint, tally, problems)
        after = replace(
            after,
            continuation=page.continuation,
            pass_problems=checkpoint.pass_problems + len(problems),
        )
        if page.continuation is None:
            after = replace(after, phase=Phase.COUNT, count=0)
        parts.probe(PAGE_BEFORE_CHECKPOINT)
        await self.save(after)

    async def _target(self) -> AsyncKeyWrapper:
        """The newest enabled version of the key, proved by one round trip per runner and
        version before the first row is wrapped under it."""
        target = await self.parts.vault.newest(self.key_ref)
        if self._proved != target.key_id:
            with DataKey.generate() as probe_key:
                wrapped = await target.wrap(probe_key)
                self.keks.vault_unwraps += 1
                unwrapper = await self.parts.vault.version(target.key_id, target.algorithm)
                with await unwrapper.unwrap(wrapped) as back:
                    if not back.matches(probe_key):
                        raise IntegrityError(f"{target.key_id} did not unwrap its own wrap")
            self._proved = target.key_id
        return target

    async def _count_page(self) -> None:
        parts, checkpoint = self.parts, self.checkpoint
        page = await parts.records.scan_records(
            continuation=checkpoint.continuation, page_size=parts.page_size
        )
        parts.probe(COUNT_PAGE)
        old = sum(
            1 for row in page.records if row.problem is None and row.format is self.old_format
        )
        bad = tuple(row.ref for row in page.records if row.problem is not None)
        after = replace(
            checkpoint, count=checkpoint.count + old + len(bad), continuation=page.continuation
        ).with_problems(bad)
        if page.continuation is not None:
            await self.save(after)
            return
        if after.count == 0:
            await self._finish(after)
        elif after.count <= after.pass_problems or after.pass_number >= MAX_PASSES:
            detail = (
                f"{after.count} record(s) still in format {self.old_format.value} or unusable "
                f"after pass {after.pass_number}; first: {', '.join(after.problem_refs)}"
            )
            await self.save(replace(after, phase=Phase.BLOCKED, detail=detail))
        else:
            await self.save(self._new_pass(after, after.pass_number + 1))

    def _settle_after_mode(self) -> datetime:
        return self.settle_after(self.mode_ttl_seconds)

    @staticmethod
    def _new_pass(checkpoint: Checkpoint, number: int) -> Checkpoint:
        return replace(
            checkpoint,
            phase=Phase.CONVERT,
            pass_number=number,
            continuation=None,
            count=0,
            pass_problems=0,
            problem_refs=(),
            detail="",
        )

    async def _finish(self, checkpoint: Checkpoint) -> None:
        self.parts.probe(BEFORE_FINAL_MODE)
        if self.target is StoreMode.HIERARCHY:
            await self.save(replace(checkpoint, phase=Phase.DONE), mode=StoreMode.HIERARCHY)
        else:
            # The KEK rows go only once no writer can still remember one as its partition's
            # current KEK: a partition's first KEK has a fixed id, and a KEK made again under
            # that id after a later migration must never be mistaken for the deleted one.
            # Deleted only the KEK TTL and MAX_WRITE_SECONDS after this write returned
            # (dated below; after a crash here, on resume: ``settled``).
            cleanup = replace(checkpoint, phase=Phase.CLEANUP, wait_until=None, settle_until=None)
            await self.save(cleanup, mode=StoreMode.DIRECT)
        self.parts.probe(FINAL_MODE_WRITTEN)
        if self.target is StoreMode.DIRECT:
            settle = self.settle_after(self.kek_ttl_seconds)
            await self.save(replace(self.checkpoint, settle_until=settle, wait_until=settle))

    async def _cleanup_page(self) -> None:
        """Delete one page of partitions' KEKs: the store is direct and holds no format-2
        record (the count said so, and no writer writes one after the mode TTL)."""
        parts, checkpoint = self.parts, self.checkpoint
        seen = await parts.modes.read_mode()
        if seen.etag != self.row.etag:
            raise JobBusyError(
                "the store's mode row changed during the KEK cleanup; stopped",
                owner="another runner",
                lease_until=None,
            )
        page = await parts.keks.kek_partitions(
            continuation=checkpoint.continuation, page_size=parts.page_size
        )
        deleted = 0
        for partition in page.partitions:
            for kek in await parts.keks.list_keks(partition):
                deleted += await self.delete_kek(kek)
        after = with_tally(checkpoint, Tally(keks_deleted=deleted), ())
        after = replace(after, continuation=page.continuation)
        if page.continuation is None:
            after = replace(after, phase=Phase.DONE)
        parts.probe(PAGE_BEFORE_CHECKPOINT)
        await self.save(after)


def _needs_kek(row: StoredRecord) -> bool:
    return row.problem is None and row.format is RecordFormat.DIRECT


async def _nothing(row: StoredRecord) -> None:
    return None
