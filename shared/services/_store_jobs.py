"""A store's migration and KEK rotation as admin operations: started over HTTP or by the
sweep timer, run by the queue worker in slices.

The jobs' steps and checkpoints are ``shared.records``'s (the checkpoint lives in the
store's mode row, ETag-guarded, with the runner's lease); the CLI drives them to the end in
one process (``shared.services.migration.StoreJobs``). Here each operation step is one job
step (a page, or the end of a wait), and the operation's owner name
(``operation:<id>``) is the job's lease owner, so every slice resumes the same job:

* **Start** (bounded: a few reads, one conditional write of the mode row): the job is
  *claimed* in the request itself, so a second start while one runs meets the first one's
  lease (or its running operation) and is refused with ``409 StoreJobBusy``, nothing
  changed. A lease that lapsed while the operation's next message waits in the queue does
  not let a second start in either: the owner's operation record is read and a running one
  refuses too.
* **Waits** (the writers' mode TTL, their KEK TTL) never sleep inside an invocation: the
  slice ends and its message is sent again with a visibility delay of at most a third of the
  lease, so the next slice renews the lease before it runs out.
* **Vault pacing**: each slice takes a seat on the budget board of the vault of the job's
  key (``shared.rewrap.BudgetMembership``, as every rewrap run does), so its vault unwraps
  share keyward's configured part of that vault's published budget (``KEYWARD_VAULT_SHARE``)
  with every rewrap and every other job running, backing off on 429s. The budget assumed is
  RSA-2048 software's (the job's unwraps may be under several keys' versions). A hold of the
  board (joining, the board lost) that lasts to the slice's end ends the slice; the next one
  continues from the checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import ConfigurationError, InvalidInputError
from shared.records import (
    DEFAULT_JOB_PAGE_SIZE,
    DEFAULT_JOB_WORKERS,
    MAX_WRITE_SECONDS,
    Checkpoint,
    EnvelopeSettings,
    JobBusyError,
    JobParts,
    KekRotation,
    KekStore,
    Migration,
    ModeStore,
    RecordStore,
    StoreJob,
    StoreMode,
    VaultKeys,
    read_checkpoint,
)
from shared.records import Phase as JobPhase
from shared.rewrap import (
    AimdRateLimiter,
    BudgetBoard,
    BudgetMembership,
    Deadline,
    EngineSettings,
    ShareRules,
    SliceDeadlineError,
    throttle_ceiling,
    vault_budget,
    vault_host,
)
from shared.services._error_answer import error_json
from shared.services._operation import Operation, OperationKind, OperationStatus, Phase
from shared.services._store_job_errors import SliceSuperseded, StoreJobBlockedError
from shared.services.migration import PacedVaultKeys

#: The lease owner an operation's slices share (``operation:<id>``).
OWNER_PREFIX = "operation:"
#: The two store-job kinds of operation.
STORE_JOB_KINDS = frozenset({OperationKind.MIGRATE, OperationKind.ROTATE_KEKS})
#: Seconds before a slice held by the vault's budget to its end is followed by the next.
_HELD_RESUME_SECONDS = 5.0
#: Migration targets the API takes.
TARGETS = {"hierarchy": StoreMode.HIERARCHY, "direct": StoreMode.DIRECT}


@dataclass(frozen=True)
class OldKek:
    """A KEK row older than the crypto-period: where, and under which Key Vault key."""

    partition: str
    version: str
    key_ref: str


@dataclass(frozen=True)
class JobPorts:
    """One store's envelope ports, and its one bounded "any KEK older than" query."""

    records: RecordStore
    keks: KekStore
    modes: ModeStore
    #: One query of the KEK table (a ``CreatedAt`` filter, top 1): a KEK created before the
    #: cutoff, or ``None`` (also when the service's first page held none).
    kek_older_than: Callable[[datetime], Awaitable[OldKek | None]]


@dataclass(frozen=True)
class StoreJobParts:
    """What the store-job steps work over: each record store's ports (by its shard name),
    the vault, the writers' TTLs and keyward's share of the vault's budget."""

    ports: Mapping[str, JobPorts]
    vault: VaultKeys
    envelope: EnvelopeSettings = field(default_factory=EnvelopeSettings)
    #: The share, headroom, lease and subscription groups of the vaults' budgets.
    engine: EngineSettings = field(default_factory=EngineSettings)
    #: The vaults' budget boards (``None``: alone, the whole share).
    board: BudgetBoard | None = None
    page_size: int = DEFAULT_JOB_PAGE_SIZE
    workers: int = DEFAULT_JOB_WORKERS
    #: How late a writer's record may land (``shared.records._write_bound``; lower only in
    #: tests whose writers are in-process).
    max_write_seconds: float = MAX_WRITE_SECONDS

    def store(self, name: str) -> JobPorts:
        """Raises: InvalidInputError: ``name`` is not a store that holds records."""
        try:
            return self.ports[name]
        except KeyError:
            held = ", ".join(sorted(self.ports)) or "none configured"
            raise InvalidInputError(
                f"store {name!r} holds no application records (stores with records: {held})"
            ) from None


def owner_of(operation_id: str) -> str:
    return f"{OWNER_PREFIX}{operation_id}"


def job_json(checkpoint: Checkpoint | None) -> dict[str, Any] | None:
    """A job's progress as the status page and the operation show it (one home)."""
    if checkpoint is None:
        return None
    tally = checkpoint.tally
    return {
        "kind": checkpoint.kind.value,
        "direction": checkpoint.target or None,
        "phase": checkpoint.phase.value,
        "pass": checkpoint.pass_number,
        "owner": checkpoint.owner,
        "lease_until": checkpoint.lease_until.isoformat(),
        "started_at": checkpoint.started_at.isoformat(),
        "wait_until": checkpoint.wait_until.isoformat() if checkpoint.wait_until else None,
        "partition": checkpoint.partition,
        "rows_converted": tally.converted,
        "rows_skipped": tally.skipped,
        "conflicts": tally.conflicts,
        "vault_unwraps": tally.vault_unwraps,
        "keks_created": tally.keks_created,
        "keks_deleted": tally.keks_deleted,
        "blocked_rows": tally.problems,
        "problem_refs": list(checkpoint.problem_refs),
        "detail": checkpoint.detail,
    }


def build_job(
    parts: StoreJobParts, op: Operation, now: Callable[[], datetime], vault: VaultKeys
) -> Migration | KekRotation:
    """The job ``op`` runs, owned by the operation (every slice resumes the same one), its
    vault calls through ``vault``."""
    ports = parts.store(str(op.data["store"]))
    job_parts = JobParts(
        records=ports.records, keks=ports.keks, modes=ports.modes, vault=vault, now=now,
        page_size=parts.page_size, workers=parts.workers,
        max_write_seconds=parts.max_write_seconds,
    )  # fmt: skip
    owner = owner_of(op.operation_id)
    if op.kind is OperationKind.MIGRATE:
        return Migration(
            job_parts, owner=owner, key_ref=op.key_ref, target=TARGETS[str(op.data["to"])],
            mode_ttl_seconds=parts.envelope.mode_ttl_seconds,
            kek_ttl_seconds=parts.envelope.kek_cache_seconds,
        )  # fmt: skip
    older = op.data.get("older_than_days")
    return KekRotation(
        job_parts, owner=owner, key_ref=op.key_ref,
        kek_ttl_seconds=parts.envelope.kek_cache_seconds, partition=op.data.get("partition"),
        older_than_days=None if older is None else float(older),
    )  # fmt: skip


def budget_seat(
    parts: StoreJobParts, key_ref: str, owner: str
) -> tuple[AimdRateLimiter, BudgetMembership]:
    """A limiter at keyward's share of the vault of ``key_ref``, and its seat on that
    vault's budget board (the rewrap engine's rules: ``shared.rewrap._vault_share``)."""
    engine, budget, host = parts.engine, vault_budget(None, None), vault_host(key_ref)
    ceiling = throttle_ceiling(budget, engine.rate_ceiling, engine.headroom, engine.vault_share)
    limiter = AimdRateLimiter(ceiling)
    rules = ShareRules(share=engine.vault_share, headroom=engine.headroom,
                       lease_seconds=engine.budget_lease_seconds,
                       rate_ceiling=engine.rate_ceiling)  # fmt: skip
    seat = BudgetMembership(parts.board, host, limiter, rules, budget, owner=owner,
                            group=engine.subscription_groups.group_of(host))  # fmt: skip
    return limiter, seat


async def claim(job: Migration | KekRotation) -> bool:
    """Start or resume ``job``; ``False``: nothing to do.

    Raises:
        JobBusyError: another runner holds the store's job, or an unfinished job of another
            kind or key does (a conflict with the store's state, not a misconfiguration).
    """
    try:
        return await job.claim()
    except ConfigurationError as error:
        owner = "the store's unfinished job"
        raise JobBusyError(str(error), owner=owner, lease_until=None) from None


class StoreJobSteps:
    """One slice's hold on an operation's store job (claimed at its first step) and its
    seat on the vault's budget (taken then, left at :meth:`aclose`)."""

    def __init__(
        self, parts: StoreJobParts, now: Callable[[], datetime], deadline: Deadline | None
    ) -> None:
        self._parts = parts
        self._now = now
        self._deadline = deadline
        self._job: Migration | KekRotation | None = None
        self._seat: BudgetMembership | None = None
        self._seated = False

    async def step(self, op: Operation) -> Operation:
        """The operation one job step on; ``data["wait_seconds"]`` > 0 ends the slice (the
        message comes back after that long).

        Raises:
            KeywardError: the operation fails with it (``JobBusyError``: another runner took
                the store's job over; a transient ``ServiceError`` is retried by the queue).
        """
        try:
            return await self._step(op)
        except JobBusyError as error:
            if error.owner == owner_of(op.operation_id):
                raise SliceSuperseded(str(error)) from None
            raise

    async def _step(self, op: Operation) -> Operation:
        op = op.evolve(status=OperationStatus.RUNNING, steps=op.steps + 1, phase=Phase.JOB)
        if self._job is None:
            limiter, self._seat = budget_seat(self._parts, op.key_ref, owner_of(op.operation_id))
            paced = PacedVaultKeys(self._parts.vault, limiter, deadline=self._deadline)
            self._job = build_job(self._parts, op, self._now, paced)
            if not await claim(self._job):
                return self._nothing_to_do(op, self._job)
            return self._progress(op, self._job)
        job = self._job
        if job.wait_seconds() <= 0:
            if not self._seated:
                # The seat is taken only by a slice that steps on (a slice that only renews
                # the lease through a wait costs the board nothing).
                assert self._seat is not None
                await self._seat.__aenter__()
                self._seated = True
            try:
                await job.step()
            except SliceDeadlineError:
                # The vault's budget held us to the slice's end: the page is done again by
                # the next slice (converted rows are skipped), after a short pause.
                return self._progress(op, job, resume_after=_HELD_RESUME_SECONDS)
        return self._progress(op, job)

    async def aclose(self) -> None:
        """Wipe every KEK the slice's job still holds; leave the vault's budget."""
        if self._job is not None:
            self._job.close()
        if self._seat is not None and self._seated:
            await self._seat.close()

    @staticmethod
    def _progress(op: Operation, job: StoreJob, *, resume_after: float = 0.0) -> Operation:
        checkpoint = job.checkpoint
        wait = max(job.wait_seconds(), resume_after)
        resume = math.ceil(min(wait, job.parts.lease_seconds / 3)) if wait > 0 else 0
        op = op.evolve(data={**op.data, "job": job_json(checkpoint), "wait_seconds": resume})
        if checkpoint.phase is JobPhase.BLOCKED:
            blocked = StoreJobBlockedError(
                f"the store's {checkpoint.kind.value} job is blocked: {checkpoint.detail}",
                checkpoint.problem_refs,
            )
            return op.evolve(status=OperationStatus.FAILED, error=error_json(blocked))
        if checkpoint.phase is JobPhase.DONE:
            return op.evolve(
                status=OperationStatus.SUCCEEDED, phase=Phase.DONE,
                result={"store": op.data["store"], "started": True, "mode": job.row.mode.value,
                        "job": job_json(checkpoint)},
            )  # fmt: skip
        return op

    @staticmethod
    def _nothing_to_do(op: Operation, job: Migration | KekRotation) -> Operation:
        last = None if job.row.migration is None else job_json(read_checkpoint(job.row.migration))
        result = {"store": op.data["store"], "started": False, "mode": job.row.mode.value,
                  "job": last}  # fmt: skip
        return op.evolve(status=OperationStatus.SUCCEEDED, phase=Phase.DONE, result=result)


async def refuse_if_running(
    ports: JobPorts, running: Callable[[str], Awaitable[bool]], now: datetime
) -> None:
    """Refuse a start while the store's job is held: a live lease, or an unfinished job
    whose owner is an operation still running (its next slice may be waiting in the queue
    with the lease lapsed). One mode-row read, at most one operation read.

    Raises:
        JobBusyError: the store's job is held (409 ``StoreJobBusy``).
    """
    current = read_checkpoint((await ports.modes.read_mode()).migration)
    if current is None or current.finished:
        return
    held = current.live(now)
    if not held and current.owner.startswith(OWNER_PREFIX):
        held = await running(current.owner.removeprefix(OWNER_PREFIX))
    if held:
        raise JobBusyError(
            f"the store's {current.kind.value} job ({current.target or 'KEKs'}) is running: "
            f"{current.owner}, phase {current.phase.value}; wait for it to end",
            owner=current.owner,
            lease_until=current.lease_until,
        )


def running_job_json(migration: str | None) -> dict[str, Any] | None:
    """The status page's view of a store's job from its mode row's checkpoint: a running or
    blocked one (a finished job shows nothing)."""
    checkpoint = read_checkpoint(migration)
    if checkpoint is None or checkpoint.phase is JobPhase.DONE:
        return None
    return job_json(checkpoint)
