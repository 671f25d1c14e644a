"""What the migration and the KEK rotation share: the parts, the mode row, the lease.

A job is a sequence of bounded steps (one store page each); after every step it saves its
checkpoint in the mode row, conditional on the ETag it last wrote, renewing its lease. A
conflict there means another runner took the job over (its lease had run out): this one
stops at once with ``JobBusyError`` and writes nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.errors import ConflictError
from shared.records._migration_keks import JobKeks
from shared.records._migration_probe import CHECKPOINT_AFTER, KEK_AFTER_DELETE, JobProbe, no_probe
from shared.records._migration_rows import DEFAULT_JOB_WORKERS, RowConverter, RowOutcome, RowResult
from shared.records._migration_state import (
    DEFAULT_LEASE_SECONDS,
    Checkpoint,
    JobBusyError,
    Tally,
    read_checkpoint,
)
from shared.records._model import ModeRecord, StoredKek, StoreMode
from shared.records._ports import KekStore, ModeStore, RecordStore, VaultKeys
from shared.records._write_bound import MAX_WRITE_SECONDS
from shared.stores import WriteOutcome

#: Records per scan page (and per checkpoint) when the caller does not say.
DEFAULT_JOB_PAGE_SIZE = 100


@dataclass(frozen=True)
class JobParts:
    """Everything a job works over, injected (the service builds it; tests use memory).

    ``vault`` is the one every vault call goes through: the service gives a paced one.
    """

    records: RecordStore
    keks: KekStore
    modes: ModeStore
    vault: VaultKeys
    now: Callable[[], datetime]
    probe: JobProbe = no_probe
    page_size: int = DEFAULT_JOB_PAGE_SIZE
    workers: int = DEFAULT_JOB_WORKERS
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    #: How late a writer's record may land after its decision's TTL (``_write_bound``);
    #: smaller only in tests whose writers are in-process.
    max_write_seconds: float = MAX_WRITE_SECONDS


class StoreJob:
    """One runner's hold on the store's job: the mode row it last wrote and its checkpoint."""

    def __init__(self, parts: JobParts, owner: str, key_ref: str) -> None:
        self.parts = parts
        self.owner = owner
        self.key_ref = key_ref
        self.row = ModeRecord()
        self._checkpoint: Checkpoint | None = None
        self.keks = JobKeks(parts.keks, parts.vault, key_ref)
        self.rows = RowConverter(parts.records, parts.vault, self.keks, probe=parts.probe)

    @property
    def checkpoint(self) -> Checkpoint:
        assert self._checkpoint is not None, "claim the job first"
        return self._checkpoint

    @property
    def finished(self) -> bool:
        return self._checkpoint is None or self._checkpoint.finished

    async def read(self) -> Checkpoint | None:
        self.row = await self.parts.modes.read_mode()
        return read_checkpoint(self.row.migration)

    def wait_seconds(self) -> float:
        """Seconds left of the phase WAIT (0 when not waiting)."""
        until = self._checkpoint.wait_until if self._checkpoint else None
        if until is None:
            return 0.0
        return max(0.0, (until - self.parts.now()).total_seconds())

    async def save(self, checkpoint: Checkpoint, *, mode: StoreMode | None = None) -> None:
        """Write ``checkpoint`` (and ``mode``) if nobody changed the row since we did.

        Raises:
            JobBusyError: the row changed: another runner took the job over.
        """
        now = self.parts.now()
        saved = checkpoint.renewed(self.owner, now, self.parts.lease_seconds)
        new_mode = mode or self.row.mode
        record = ModeRecord(
            mode=new_mode,
            etag=self.row.etag,
            changed_at=now if new_mode is not self.row.mode else self.row.changed_at,
            migration=saved.to_json(),
        )
        try:
            self.row = await self.parts.modes.write_mode(record)
        except ConflictError:
            other = await self.read()
            owner = other.owner if other else "a writer"
            raise JobBusyError(
                f"the store's mode row changed under this job ({owner} holds it now); "
                "stopped without writing more",
                owner=owner,
                lease_until=other.lease_until if other else None,
            ) from None
        self._checkpoint = saved
        self.parts.probe(CHECKPOINT_AFTER)

    async def step(self) -> None:
        """One bounded piece of work (a page, or the end of a wait), then a checkpoint."""
        raise NotImplementedError

    async def delete_kek(self, kek: StoredKek) -> bool:
        """Delete a KEK version nothing references any more; ``True`` when this call did.

        A Key Vault rotation may have rewrapped it since it was listed (a new ETag): the
        row is read again and that one deleted.
        """
        keks = self.parts.keks
        result = await keks.delete_kek(kek)
        if result.outcome is WriteOutcome.CONFLICT:
            fresh = await keks.read_kek(kek.partition, kek.version)
            result = await keks.delete_kek(fresh) if fresh else result
        self.parts.probe(KEK_AFTER_DELETE)
        return result.outcome is WriteOutcome.WRITTEN

    def settle_after(self, ttl_seconds: float) -> datetime:
        """The end of the writers' window after a switch whose write has returned by now:
        a writer that read the state before it trusts it for ``ttl_seconds`` and its write
        lands within ``MAX_WRITE_SECONDS`` after that, or never (``_write_bound``)."""
        return self.parts.now() + timedelta(seconds=ttl_seconds + self.parts.max_write_seconds)

    async def settled(self, ttl_seconds: float) -> bool:
        """Whether a count (or a KEK deletion) may begin: ``settle_until`` is past. Else the
        job waits until then (``wait_until``, saved) and this step ends. A checkpoint with no
        date (a crash right after the switch) is dated from now: later, never earlier."""
        checkpoint, now = self.checkpoint, self.parts.now()
        settle = checkpoint.settle_until or self.settle_after(ttl_seconds)
        if settle <= now:
            return True
        await self.save(replace(checkpoint, settle_until=settle, wait_until=settle))
        return False

    async def heartbeat(self) -> None:
        """Renew the lease (while waiting out a TTL)."""
        await self.save(self.checkpoint)

    def close(self) -> None:
        """Wipe every KEK the job still holds."""
        self.keks.clear()


def tally_of(results: list[RowResult]) -> tuple[Tally, tuple[str, ...]]:
    """The tally of one page's row results, and the refs of its problem rows."""
    outcomes = [result.outcome for result in results]
    tally = Tally(
        converted=outcomes.count(RowOutcome.CONVERTED),
        skipped=outcomes.count(RowOutcome.SKIPPED),
        conflicts=sum(result.conflicts for result in results),
        problems=outcomes.count(RowOutcome.PROBLEM),
    )
    problems = tuple(r.ref for r in results if r.outcome is RowOutcome.PROBLEM)
    return tally, problems


def with_tally(checkpoint: Checkpoint, tally: Tally, problems: tuple[str, ...]) -> Checkpoint:
    return replace(checkpoint, tally=checkpoint.tally.plus(tally)).with_problems(problems)
