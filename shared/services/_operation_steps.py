"""The steps of every kind of operation: each moves an operation one page (or one phase) on.

A step reads the operation's record, does one bounded piece of work (one store page counted,
scanned or cleared; or one phase's short decision) and returns the next record; the runner
saves it (ETag-conditional) before the next step, so a crash loses at most the unsaved page,
which the next delivery does again from the saved checkpoint: nothing is counted twice.

Adding a kind of operation: a value in ``OperationKind``, its ``start`` in
``shared.services.operations`` (validate, then record), and its branch in :meth:`Steps.step`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import ConfigurationError, RetirementBlockedError, RetirementRaceError
from shared.rewrap import (
    BlockerKind,
    Deadline,
    DryRunScan,
    DryRunTally,
    EngineSettings,
    JobState,
    KeyVersionSource,
    RetiredVersions,
    RetirementReport,
    unfinished_jobs,
    verdict_from_counts,
)
from shared.services._operation import Operation, OperationKind, OperationStatus, Phase
from shared.services._operation import fresh_cursors as _fresh
from shared.services._render import dry_run_json, retirement_json
from shared.services._store_jobs import STORE_JOB_KINDS, StoreJobParts, StoreJobSteps
from shared.stores import (
    DEFAULT_COUNT_PAGE_SIZE,
    DekStore,
    KeepsPreviousWraps,
    counts_from_json,
    counts_to_json,
    merge_counts,
    total_records,
)

#: version -> ids of key-dependent resources pinned to it, for one key.
PinnedLookup = Callable[[str], Awaitable[Mapping[str, Sequence[str]]]]
#: Every job state of one key, across the stores' shards.
JobLookup = Callable[[str], Awaitable[Sequence[JobState]]]


@dataclass(frozen=True)
class OperationParts:
    """What the steps read and write: the stores, the vault, pins, jobs and the record."""

    stores: Mapping[str, DekStore]
    keys: KeyVersionSource
    pinned: PinnedLookup
    jobs: JobLookup
    retired: RetiredVersions
    now: Callable[[], datetime]
    engine_settings: EngineSettings = field(default_factory=EngineSettings)
    count_page_size: int = DEFAULT_COUNT_PAGE_SIZE
    #: The stores that hold application records, for migrations and KEK rotations (``None``:
    #: none configured; those operations are refused at start).
    store_jobs: StoreJobParts | None = None


class Steps:
    """Runs steps for one slice (it caches the dry run's resolved plan for the slice)."""

    def __init__(self, parts: OperationParts, *, deadline: Deadline | None = None) -> None:
        """``deadline``: the slice's end (a store job's vault pacing waits no longer)."""
        self._parts = parts
        self._deadline = deadline
        self._dry_run: DryRunScan | None = None
        self._store_job: StoreJobSteps | None = None

    async def aclose(self) -> None:
        """The slice ends: wipe what its store job still holds, leave the vault's budget."""
        if self._store_job is not None:
            await self._store_job.aclose()

    def _store(self, shard: str) -> DekStore:
        try:
            return self._parts.stores[shard]
        except KeyError:
            raise ConfigurationError(f"store {shard!r} is no longer configured") from None

    async def step(self, op: Operation) -> Operation:
        """The operation one step on (status ``running`` until it ends).

        Raises:
            KeywardError: the operation fails with it (the caller records which); a
                transient ``ServiceError`` is retried by the queue instead.
        """
        if op.kind in STORE_JOB_KINDS:
            if self._store_job is None:
                if self._parts.store_jobs is None:
                    raise ConfigurationError("no store with application records is configured")
                self._store_job = StoreJobSteps(
                    self._parts.store_jobs, self._parts.now, self._deadline
                )
            return await self._store_job.step(op)
        op = op.evolve(status=OperationStatus.RUNNING, steps=op.steps + 1)
        if op.kind is OperationKind.DRY_RUN:
            return await self._dry_run_step(op)
        if op.phase is Phase.RECORD:
            return await self._record(op)
        if op.phase is Phase.FORGET:
            return await self._forget_step(op)
        shard = op.pending_shard()
        if shard is not None:
            return await self._count_page(op, shard)
        report = await self._verdict(op)
        if op.kind is OperationKind.VERDICT:
            return _succeed(op, retirement_json(report))
        if op.phase is Phase.LOOK:
            return self._after_first_look(op, report)
        return self._after_second_look(op, report)

    async def _count_page(self, op: Operation, shard: str) -> Operation:
        cursor = op.cursor(shard)
        page = await self._store(shard).count_versions(
            op.key_ref, continuation=cursor.get("continuation"),
            page_size=self._parts.count_page_size,
        )  # fmt: skip
        merged = merge_counts(counts_from_json(cursor.get("counts") or []), page.counts)
        moved = {"continuation": page.continuation, "done": page.continuation is None,
                 "counted": total_records(merged), "counts": counts_to_json(merged)}  # fmt: skip
        return op.evolve(cursors={**op.cursors, shard: moved})

    async def _verdict(self, op: Operation) -> RetirementReport:
        parts, key_ref = self._parts, op.key_ref
        counts = {s: counts_from_json(op.cursor(s).get("counts") or []) for s in op.shards}
        return await verdict_from_counts(
            counts, key_ref, keys=parts.keys, pinned=await parts.pinned(key_ref),
            jobs=await parts.jobs(key_ref), retired=await parts.retired.retired_versions(key_ref),
            now=parts.now(),
        )  # fmt: skip

    def _after_first_look(self, op: Operation, before: RetirementReport) -> Operation:
        """Step 1: anything but the previous wraps this operation drops refuses it."""
        target = str(op.version)
        blockers = [
            blocker.describe()
            for blocker in before.entry(target).blocker_list
            if blocker.kind is not BlockerKind.PREVIOUS
        ]
        if blockers:
            raise RetirementBlockedError(f"{op.key_ref}/{target} cannot be retired yet", blockers)
        return op.evolve(phase=Phase.RECORD, data={**op.data, "newest": before.newest_enabled})

    async def _record(self, op: Operation) -> Operation:
        """Steps 2 and 3: record, then look at the jobs (a rerun records the same attempt)."""
        parts, target, attempt = self._parts, str(op.version), str(op.data["attempt"])
        await parts.retired.record_retired(op.key_ref, target, attempt=attempt)
        newest = op.data.get("newest")
        started = unfinished_jobs(await parts.jobs(op.key_ref), op.key_ref, newest, parts.now())
        if started:
            await parts.retired.withdraw_retired(op.key_ref, target, attempt=attempt)
            raise RetirementBlockedError(
                f"{op.key_ref}/{target} cannot be retired yet: a rewrap job started",
                [f"{len(started)} rewrap jobs of the key running or pending", *started],
            )
        return op.evolve(phase=Phase.FORGET, cursors=_fresh(op.shards),
                         data={**op.data, "dropped": 0})  # fmt: skip

    async def _forget_step(self, op: Operation) -> Operation:
        """Step 4, one page: drop the previous wraps kept under the version."""
        shard = op.pending_shard()
        if shard is None:
            return op.evolve(phase=Phase.LOOK_AGAIN, cursors=_fresh(op.shards))
        store, cursor = self._store(shard), op.cursor(shard)
        if not isinstance(store, KeepsPreviousWraps):
            moved: dict[str, Any] = {"continuation": None, "done": True, "counted": 0}
            return op.evolve(cursors={**op.cursors, shard: moved})
        page = await store.forget_previous_page(
            f"{op.key_ref}/{op.version}", continuation=cursor.get("continuation"),
            page_size=self._parts.count_page_size,
        )  # fmt: skip
        moved = {"continuation": page.continuation, "done": page.continuation is None,
                 "counted": int(cursor.get("counted") or 0) + page.dropped}  # fmt: skip
        dropped = int(op.data.get("dropped") or 0) + page.dropped
        return op.evolve(cursors={**op.cursors, shard: moved}, data={**op.data, "dropped": dropped})

    def _after_second_look(self, op: Operation, after_report: RetirementReport) -> Operation:
        """Step 5: anything under the version now makes the answer a race, not "done"."""
        target, dropped = str(op.version), int(op.data.get("dropped") or 0)
        after = after_report.entry(target)
        if not after.safe_to_disable:
            raise RetirementRaceError(
                f"{op.key_ref}/{target} is retired, but something new depends on it; "
                "not safe to disable",
                after.blockers,
                dropped=dropped,
            )
        result = {"key": op.key_ref, "version": target, "status": "retired",
                  "safe_to_disable": True, "previous_wraps_dropped": dropped}  # fmt: skip
        return _succeed(op, result)

    async def _dry_run_step(self, op: Operation) -> Operation:
        settings = self._parts.engine_settings
        if self._dry_run is None:
            # One service page per step (the count's size, not the engine's checkpoint page):
            # the same counts, a tenth of the checkpoint writes.
            self._dry_run = await DryRunScan.start(
                self._parts.keys, op.key_ref, op.version, page_size=self._parts.count_page_size,
                allow_legacy_rsa1_5=settings.allow_legacy_rsa1_5, retry=settings.retry,
            )  # fmt: skip
        scan, shard = self._dry_run, op.pending_shard()
        if shard is None:
            reports = [
                dry_run_json(s, scan.report(DryRunTally.from_dict(op.cursor(s)["tally"]),
                                            rate_ceiling=settings.rate_ceiling,
                                            headroom=settings.headroom,
                                            vault_share=settings.vault_share))
                for s in op.shards
            ]  # fmt: skip
            return _succeed(op, {"dry_run": True, "key": scan.plan.key_ref, "shards": reports})
        cursor = op.cursor(shard)
        tally = DryRunTally.from_dict(cursor["tally"]) if "tally" in cursor else DryRunTally()
        following = await scan.page(self._store(shard), tally, cursor.get("continuation"))
        moved = {"continuation": following, "done": following is None, "counted": tally.scanned,
                 "tally": tally.to_dict()}  # fmt: skip
        return op.evolve(cursors={**op.cursors, shard: moved})


def _succeed(op: Operation, result: Mapping[str, Any]) -> Operation:
    return op.evolve(status=OperationStatus.SUCCEEDED, phase=Phase.DONE, result=dict(result))
