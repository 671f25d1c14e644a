"""The checkpoint of a store's one running job (migration or KEK rotation), and its lease.

Why in the mode row (``ModeRecord.migration``): the mode and the progress of the job that
changes it must move together, under one ETag. Setting the mode to ``hierarchy`` and
marking the migration done is then one conditional write: no crash can leave the one without
the other. The same row carries the KEK rotation's checkpoint, so a store runs one such job
at a time, whichever kind (two would fight over the mode row's ETag and over the KEKs).

The lease: every checkpoint write names its ``owner`` and renews ``lease_until``. Another
runner that finds an unfinished job with a live lease refuses (:class:`JobBusyError`, naming
the owner and when the lease ends); after the lease it takes the job over where the
checkpoint says. Every write is conditional on the ETag read, so of two runners racing for
an expired lease exactly one wins; the loser's write raises ``ConflictError``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.errors import InvalidInputError, KeywardError

#: How long a runner's claim lasts without a checkpoint; every checkpoint renews it.
DEFAULT_LEASE_SECONDS = 60.0
#: Passes (convert, then a full count) one run makes before it stops and says so: more than
#: two means a writer kept writing the old format after the mode TTL, which is a bug to see.
MAX_PASSES = 5
#: Refs of rows a job could not convert, kept in the checkpoint (the count says how many).
MAX_PROBLEM_REFS = 20
#: The checkpoint's JSON schema version (a newer one is refused, not misread).
CHECKPOINT_VERSION = 1
#: The checkpoint's dates (ISO 8601 in its JSON; ``settle_until`` may be absent: older).
_DATES = ("lease_until", "started_at", "wait_until", "settle_until")


class JobKind(enum.StrEnum):
    MIGRATE = "migrate"
    ROTATE_KEKS = "rotate-keks"


class Phase(enum.StrEnum):
    """Where a job is. Migration: WAIT, CONVERT, COUNT, (to direct) CLEANUP, DONE.
    KEK rotation: CREATE, WAIT, REWRAP, COUNT, DONE (REWRAP/COUNT partition by partition)."""

    CREATE = "create"
    WAIT = "wait"
    CONVERT = "convert"
    REWRAP = "rewrap"
    COUNT = "count"
    CLEANUP = "cleanup"
    DONE = "done"
    #: Stopped: rows the job cannot convert (``problem_refs``), or ``MAX_PASSES`` reached.
    BLOCKED = "blocked"


class JobBusyError(KeywardError):
    """Another runner holds the store's job lease (or took it over from this one).

    Attributes:
        owner: the runner holding the lease.
        lease_until: when its lease ends (``None`` when it took the job over from us).
    """

    def __init__(self, message: str, *, owner: str, lease_until: datetime | None) -> None:
        super().__init__(message)
        self.owner = owner
        self.lease_until = lease_until


@dataclass(frozen=True)
class Tally:
    """What a job did so far (cumulative over passes and runners)."""

    converted: int = 0
    #: Rows met that were already in the job's target format (or under the current KEK).
    skipped: int = 0
    #: ETag conflicts met (each row was read again and retried).
    conflicts: int = 0
    #: Vault unwraps the job made (DEKs to hierarchy; KEKs otherwise).
    vault_unwraps: int = 0
    keks_created: int = 0
    keks_deleted: int = 0
    problems: int = 0

    def plus(self, other: Tally) -> Tally:
        return Tally(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))


def _values(tally: Tally) -> tuple[int, ...]:
    return tuple(asdict(tally).values())


@dataclass(frozen=True)
class Checkpoint:
    """One job's progress, as saved in the mode row after every bounded step.

    Attributes:
        kind, target: the job (``target`` is the mode a migration ends in; "" for rotation).
        key_ref: the Key Vault key new wraps go under (unversioned id).
        phase: where the job is; ``pass_number`` counts convert/count rounds.
        continuation: the scan's position within the phase (``None``: from the start).
        wait_until: the end of the current wait (the phase WAIT's, or a count's or a KEK
            deletion's before ``settle_until``; kept, so a resumed job does not wait again).
        settle_until: no count that may let the job flip the mode or delete a KEK begins
            before it: the writers' TTL plus ``MAX_WRITE_SECONDS`` after the job's switch
            (the mode change, the new KEKs) was seen written (``_write_bound``).
        count: rows of the old format found so far by the phase COUNT (migration).
        version_counts: rows per KEK version of the partition found so far (rotation).
        partition / partitions_continuation: KEK rotation's position: the partition being
            worked on and the partition listing page it came from.
        older_than_days / only_partition: KEK rotation's selection.
        started_at: when the job began (KEKs made after it are the rotation's new ones).
    """

    kind: JobKind
    target: str
    key_ref: str
    owner: str
    lease_until: datetime
    started_at: datetime
    phase: Phase
    pass_number: int = 1
    continuation: str | None = None
    wait_until: datetime | None = None
    settle_until: datetime | None = None
    count: int = 0
    #: Rows of this pass that could not be converted (a count no higher is only those).
    pass_problems: int = 0
    version_counts: dict[str, int] = field(default_factory=dict)
    partition: str | None = None
    partitions_continuation: str | None = None
    only_partition: str | None = None
    older_than_days: float | None = None
    tally: Tally = field(default_factory=Tally)
    problem_refs: tuple[str, ...] = ()
    detail: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in (Phase.DONE, Phase.BLOCKED)

    def live(self, now: datetime) -> bool:
        """Whether a runner holds this job now (unfinished, lease not yet over)."""
        return not self.finished and self.lease_until > now

    def renewed(self, owner: str, now: datetime, lease_seconds: float) -> Checkpoint:
        return replace(self, owner=owner, lease_until=now + timedelta(seconds=lease_seconds))

    def with_problems(self, refs: tuple[str, ...]) -> Checkpoint:
        kept = tuple(dict.fromkeys((*self.problem_refs, *refs)))[:MAX_PROBLEM_REFS]
        return replace(self, problem_refs=kept)

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["v"] = CHECKPOINT_VERSION
        for name in _DATES:
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        data["problem_refs"] = list(self.problem_refs)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        """Raises InvalidInputError: not a checkpoint this keyward wrote (or a newer one)."""
        try:
            data = json.loads(text)
            if data.pop("v") > CHECKPOINT_VERSION:
                raise InvalidInputError(
                    "the store's job checkpoint is newer than this keyward: upgrade keyward"
                )
            for name in _DATES:
                data[name] = datetime.fromisoformat(data[name]) if data.get(name) else None
            data["kind"] = JobKind(data["kind"])
            data["phase"] = Phase(data["phase"])
            data["tally"] = Tally(**data["tally"])
            data["problem_refs"] = tuple(data["problem_refs"])
            return cls(**data)
        except (ValueError, KeyError, TypeError) as error:
            if isinstance(error, InvalidInputError):
                raise
            raise InvalidInputError(f"the store's job checkpoint is unreadable: {error}") from None


def read_checkpoint(text: str | None) -> Checkpoint | None:
    return Checkpoint.from_json(text) if text else None


def refuse_if_busy(current: Checkpoint | None, owner: str, now: datetime) -> None:
    """Raises JobBusyError when ``current`` is held by another live runner."""
    if current is not None and current.owner != owner and current.live(now):
        raise JobBusyError(
            f"{current.owner} is running the store's {current.kind.value} job "
            f"(phase {current.phase.value}); its lease ends at "
            f"{current.lease_until.isoformat(timespec='seconds')}: wait, or run again after",
            owner=current.owner,
            lease_until=current.lease_until,
        )
