"""Counting and forgetting page by page: the one loop over pages, and merging partial counts.

A store counts one page at a time (``DekStore.count_versions``), so whole-store work can run
in slices that checkpoint between pages (an admin *operation*, ``shared.services``) and no
single call holds the work of ten million records. The loop that reads every page lives here
once; each store's ``version_counts`` is that loop, so there is no second way to count.

Partial counts merge by addition (pages are disjoint), and the named immutable copies stay
capped at :data:`MAX_LISTED_COPIES` per version however many pages add names. Counts also go
to and from JSON, the form a checkpoint keeps them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.errors import InvalidInputError
from shared.stores._protocol import (
    DEFAULT_COUNT_PAGE_SIZE,
    MAX_LISTED_COPIES,
    DekStore,
    ImmutableCopy,
    KeepsPreviousWraps,
    VersionCount,
)


def merge_counts(*parts: Iterable[VersionCount]) -> tuple[VersionCount, ...]:
    """The sum of partial counts, per key id (sorted); immutable copies' names in order,
    at most :data:`MAX_LISTED_COPIES` per version (``immutable`` still counts them all).

    Pure: the inputs are not changed, and the result shares no mutable part with them.
    """
    merged: dict[str, VersionCount] = {}
    for part in parts:
        for count in part:
            seen = merged.get(count.key_id)
            if seen is None:
                merged[count.key_id] = VersionCount(
                    count.key_id, count.current, count.previous, count.unreadable,
                    dict(count.extra), count.immutable,
                    tuple(count.immutable_copies[:MAX_LISTED_COPIES]),
                )  # fmt: skip
                continue
            extra = dict(seen.extra)
            for name, value in count.extra.items():
                extra[name] = extra.get(name, 0) + value
            room = MAX_LISTED_COPIES - len(seen.immutable_copies)
            merged[count.key_id] = VersionCount(
                seen.key_id,
                seen.current + count.current,
                seen.previous + count.previous,
                seen.unreadable + count.unreadable,
                extra,
                seen.immutable + count.immutable,
                seen.immutable_copies + tuple(count.immutable_copies[: max(room, 0)]),
            )
    return tuple(merged[key_id] for key_id in sorted(merged))


async def all_version_counts(
    store: DekStore, key_ref: str, *, page_size: int = DEFAULT_COUNT_PAGE_SIZE
) -> list[VersionCount]:
    """Every page of ``store.count_versions``, merged: the whole store's counts.

    O(records of the store): for the CLI, tests and whole-store work that runs as an
    operation's slices page by page, never on a timer or in an HTTP request.

    Raises:
        ServiceError: the store could not be read.
    """
    merged: tuple[VersionCount, ...] = ()
    continuation: str | None = None
    while True:
        page = await store.count_versions(key_ref, continuation=continuation, page_size=page_size)
        merged = merge_counts(merged, page.counts)
        if page.continuation is None:
            return list(merged)
        continuation = page.continuation


async def forget_all_previous(
    store: KeepsPreviousWraps, previous_key_id: str, *, page_size: int = DEFAULT_COUNT_PAGE_SIZE
) -> int:
    """Every page of ``store.forget_previous_page``: previous wraps dropped in the store.

    Raises:
        InvalidInputError: ``previous_key_id`` is not a versioned key id.
        ServiceError: the store could not be read or written.
    """
    dropped = 0
    continuation: str | None = None
    while True:
        page = await store.forget_previous_page(
            previous_key_id, continuation=continuation, page_size=page_size
        )
        dropped += page.dropped
        if page.continuation is None:
            return dropped
        continuation = page.continuation


def counts_to_json(counts: Iterable[VersionCount]) -> list[dict[str, Any]]:
    """Counts as JSON-ready dicts (a checkpoint's form); :func:`counts_from_json` reverses it."""
    return [
        {
            "key_id": c.key_id, "current": c.current, "previous": c.previous,
            "unreadable": c.unreadable, "extra": dict(c.extra), "immutable": c.immutable,
            "copies": [[i.ref, i.key_id, i.version_id, i.snapshot, i.deleted]
                       for i in c.immutable_copies],
        }
        for c in counts
    ]  # fmt: skip


def counts_from_json(data: object) -> tuple[VersionCount, ...]:
    """The counts :func:`counts_to_json` wrote.

    Raises:
        InvalidInputError: not what :func:`counts_to_json` writes.
    """
    if not isinstance(data, list):
        raise InvalidInputError("counts must be a list")
    try:
        return tuple(_count_from(item) for item in data)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidInputError(f"malformed counts: {type(error).__name__}") from None


def _count_from(item: Mapping[str, Any]) -> VersionCount:
    extra = {str(k): int(v) for k, v in dict(item.get("extra") or {}).items()}
    copies = tuple(
        ImmutableCopy(str(ref), str(key_id), version_id, snapshot, bool(deleted))
        for ref, key_id, version_id, snapshot, deleted in item.get("copies") or ()
    )
    return VersionCount(
        str(item["key_id"]), int(item["current"]), int(item["previous"]),
        int(item["unreadable"]), extra, int(item["immutable"]), copies,
    )  # fmt: skip


def total_records(counts: Sequence[VersionCount]) -> int:
    """DEKs and copies counted (each DEK once, by its current wrap): a progress figure."""
    return sum(c.current + c.immutable for c in counts)
