"""Gathering the retirement verdict: every store, the vault, pinned resources, jobs, the record.

One verdict per key covers every configured store (a version is safe only if it is safe in
all of them), so the admin API, the CLI and the retire call all count the same things the
same way. Stores report, per version and under any spelling of the key id, current and
previous wraps and immutable copies (blob versions, snapshots, soft-deleted blobs, with
names) in their ``version_counts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shared.errors import KeyNotFoundError
from shared.rewrap._job_state import JobState, JobStatus
from shared.rewrap._ports import KeyVersionSource, KeyVersionView
from shared.rewrap._retired import fold_key
from shared.rewrap._retirement import (
    EVERY_OLDER_VERSION,
    MAX_LISTED_NAMES,
    RetirementReport,
    VersionRetirement,
)
from shared.rewrap._superseded import answerable_at, superseded_at
from shared.rewrap._target import normalize_key_ref
from shared.stores import DekStore, VersionCount


@dataclass
class _Tally:
    current: int = 0
    previous: int = 0
    unreadable: int = 0
    copies: int = 0
    copy_names: list[str] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)
    by_store: list[tuple[str, int, int, int]] = field(default_factory=list)


def _version_of(key_id: str, folded: str) -> str | None:
    head, _, version = key_id.strip().lower().rpartition("/")
    return version if head == folded and version else None


def unfinished_jobs(
    jobs: Sequence[JobState], key_ref: str, newest: str | None, now: datetime
) -> tuple[str, ...]:
    """Ids of the key's jobs that are running or pending (they may still write wraps).

    Running, failed (the sweep resumes it) and ended-short-of-clean jobs with a retry still
    to come count; a completed job, or one whose retries are spent (``gave_up``), does not.
    Neither does a superseded job: one for an older target that nobody holds a lease on (the
    sweep resumes only the newest version's job, and a message for an older version is
    redirected to the newest), which would otherwise block forever.
    """
    folded, found = fold_key(key_ref), []
    for state in jobs:
        if fold_key(state.key_ref) != folded or state.status is JobStatus.COMPLETED:
            continue
        if state.gave_up:
            continue
        live = state.lease_expires_at is not None and state.lease_expires_at > now
        if newest is not None and state.target_version.lower() != newest and not live:
            continue
        label = f"{state.scope}:{state.job_id}" if state.scope else state.job_id
        found.append(f"{label} ({state.status.value})")
    return tuple(sorted(found))


async def retirement_verdict(
    stores: Mapping[str, DekStore],
    key_ref: str,
    *,
    keys: KeyVersionSource | None = None,
    pinned: Mapping[str, Sequence[str]] | None = None,
    jobs: Sequence[JobState] = (),
    retired: frozenset[str] = frozenset(),
    now: datetime | None = None,
    superseded_wait: timedelta,
) -> RetirementReport:
    """Count what references each version of ``key_ref`` in every store (a whole-store scan
    of each: the CLI's way; the admin API counts page by page in an operation and then
    calls :func:`verdict_from_counts`).

    Args:
        stores: shard name -> DEK store (its ``version_counts``).
        key_ref: the unversioned key id (any spelling).
        keys: the vault, for enabled flags, creation order and the newest enabled version;
            without it, no version is marked newest (the caller knows which one is).
        pinned: version -> ids of resources pinned to it.
        jobs: job states of the key's shards (unfinished ones block every version).
        retired: versions recorded as retired (their in-use counts become alerts).
        now: before the counts begin (the default: taken here, before them).
        superseded_wait: how long after a version was superseded writers may still land
            wraps under it (``shared.records.superseded_wait_seconds``); a count that began
            sooner does not judge it (``_superseded``).

    Raises:
        ServiceError: a store or the vault could not be read.
    """
    now = now or datetime.now(UTC)
    counts = {shard: await store.version_counts(key_ref) for shard, store in stores.items()}
    return await verdict_from_counts(
        counts, key_ref, keys=keys, pinned=pinned, jobs=jobs, retired=retired, now=now,
        counted_from=now, superseded_wait=superseded_wait,
    )  # fmt: skip


async def verdict_from_counts(
    counts: Mapping[str, Sequence[VersionCount]],
    key_ref: str,
    *,
    keys: KeyVersionSource | None = None,
    pinned: Mapping[str, Sequence[str]] | None = None,
    jobs: Sequence[JobState] = (),
    retired: frozenset[str] = frozenset(),
    now: datetime | None = None,
    counted_from: datetime | None = None,
    superseded_wait: timedelta,
) -> RetirementReport:
    """The verdict from each store's counts (shard -> its whole ``version_counts``); the
    other arguments as :func:`retirement_verdict`'s. No store is read here.

    ``counted_from``: no later than when the first of those counts began (default ``now``,
    which is then the caller's word that it is); a version whose count began before it was
    answerable (``_superseded``) gets the late-writers blocker instead of a judgement.

    Raises:
        ServiceError: the vault could not be read.
    """
    key_ref = normalize_key_ref(key_ref)
    folded = fold_key(key_ref)
    tallies: dict[str, _Tally] = {}
    for shard, store_counts in counts.items():
        seen: dict[str, list[int]] = {}
        for count in store_counts:
            version = _version_of(count.key_id, folded)
            if version is None:
                continue
            tally = tallies.setdefault(version, _Tally())
            tally.current += count.current
            tally.previous += count.previous
            tally.unreadable += count.unreadable
            for name, value in count.extra.items():
                tally.extra[name] = tally.extra.get(name, 0) + value
            tally.copies += count.immutable
            room = MAX_LISTED_NAMES - len(tally.copy_names)
            tally.copy_names.extend(f"{shard}: {c.name}" for c in count.immutable_copies[:room])
            row = seen.setdefault(version, [0, 0, 0])
            row[0] += count.current
            row[1] += count.previous
            row[2] += count.immutable
        for version, (current, previous, copies) in seen.items():
            if current or previous or copies:
                tallies[version].by_store.append((shard, current, previous, copies))
    newest: str | None = None
    created: dict[str, datetime] = {}
    enabled: dict[str, bool] = {}
    listed: Sequence[KeyVersionView] = ()
    if keys is not None:
        try:
            newest = (await keys.newest_enabled_version(key_ref)).lower()
        except KeyNotFoundError:
            newest = None
        listed = await keys.versions(key_ref)
        for info in listed:
            created[info.version.lower()] = info.created
            enabled[info.version.lower()] = info.enabled
    pinned_by = {v.lower(): tuple(r) for v, r in (pinned or {}).items()}
    # Resources whose version in use is unknown block every version but the newest enabled.
    anywhere = pinned_by.pop(EVERY_OLDER_VERSION, ())
    now = now or datetime.now(UTC)
    counted_from = counted_from or now
    blocking_jobs = unfinished_jobs(jobs, key_ref, newest, now)
    retired = frozenset(v.lower() for v in retired)
    entries: dict[str, VersionRetirement] = {}
    for version in {*tallies, *created, *pinned_by}:
        tally = tallies.get(version, _Tally())
        answerable = answerable_at(version, listed, superseded_wait)
        entries[version] = VersionRetirement(
            version,
            current=tally.current,
            previous=tally.previous,
            unreadable=tally.unreadable,
            extra=tally.extra,
            pinned=pinned_by.get(version, ()) + (anywhere if version != newest else ()),
            enabled=enabled.get(version),
            newest=version == newest,
            copies=tally.copies,
            copy_names=tuple(tally.copy_names),
            jobs=blocking_jobs,
            retired=version in retired,
            by_store=tuple(tally.by_store),
            superseded_at=superseded_at(version, listed),
            answerable_at=answerable,
            too_soon=answerable is not None and counted_from < answerable,
        )
    known = sorted((v for v in entries if v in created), key=lambda v: created[v])
    unknown = sorted(v for v in entries if v not in created)
    return RetirementReport(
        key_ref,
        newest,
        tuple(entries[v] for v in known + unknown),
        stores=tuple(counts),
        jobs=blocking_jobs,
        retired=retired,
    )


async def retirement_report(
    store: DekStore,
    key_ref: str,
    *,
    keys: KeyVersionSource | None = None,
    pinned: Mapping[str, Sequence[str]] | None = None,
    superseded_wait: timedelta,
) -> RetirementReport:
    """The verdict over one store (the engine tests' view; see :func:`retirement_verdict`
    for the key-wide one).

    Raises:
        ServiceError: the store or the vault could not be read.
    """
    return await retirement_verdict(
        {store.name: store}, key_ref, keys=keys, pinned=pinned, superseded_wait=superseded_wait
    )
