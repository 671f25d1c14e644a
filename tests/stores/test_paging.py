"""Merging partial counts and their JSON form (issue 12: counting in resumable pages). Pure."""

from __future__ import annotations

import copy

import pytest

from shared.errors import InvalidInputError
from shared.stores import (
    MAX_LISTED_COPIES,
    ImmutableCopy,
    VersionCount,
    counts_from_json,
    counts_to_json,
    merge_counts,
    total_records,
)

A, B = (
    "https://kv.vault.azure.net/keys/k/" + "a" * 32,
    "https://kv.vault.azure.net/keys/k/" + "b" * 32,
)


def _copies(start: int, count: int) -> tuple[ImmutableCopy, ...]:
    return tuple(
        ImmutableCopy(f"c/blob-{i}", A, snapshot=f"t{i}") for i in range(start, start + count)
    )


def test_pages_add_up_per_key_id_and_extra_counts_merge() -> None:
    first = [VersionCount(A, current=3, previous=1, unreadable=1, extra={"x": 1})]
    second = [VersionCount(B, current=2), VersionCount(A, current=4, extra={"x": 2, "y": 5})]
    merged = merge_counts(first, second)
    assert merged == (
        VersionCount(A, current=7, previous=1, unreadable=1, extra={"x": 3, "y": 5}),
        VersionCount(B, current=2),
    )
    assert merge_counts(merged, []) == merged
    assert merge_counts() == ()
    assert total_records(merged) == 9


def test_named_copies_stay_capped_however_many_pages_name_them() -> None:
    pages = [
        [VersionCount(A, immutable=60, immutable_copies=_copies(60 * i, 60))] for i in range(3)
    ]
    (merged,) = merge_counts(*pages)
    assert merged.immutable == 180  # every copy counted
    assert len(merged.immutable_copies) == MAX_LISTED_COPIES  # the first ones named
    assert merged.immutable_copies == _copies(0, MAX_LISTED_COPIES)


def test_merging_changes_neither_input() -> None:
    first = [
        VersionCount(A, current=1, extra={"x": 1}, immutable=1, immutable_copies=_copies(0, 1))
    ]
    second = [
        VersionCount(A, current=2, extra={"x": 2}, immutable=1, immutable_copies=_copies(1, 1))
    ]
    before = copy.deepcopy((first, second))
    (merged,) = merge_counts(first, second)
    merged.extra["x"] = 99  # the result shares no mutable part with the inputs
    assert (first, second) == before


def test_counts_survive_their_json_form() -> None:
    counts = merge_counts([
        VersionCount(A, current=2, previous=1, unreadable=1, extra={"x": 1}, immutable=2,
                     immutable_copies=(ImmutableCopy("c/b", A, version_id="v1"),
                                       ImmutableCopy("c/d", A, deleted=True))),
        VersionCount(B, current=5),
    ])  # fmt: skip
    assert counts_from_json(counts_to_json(counts)) == counts


BAD_CURRENT = {"key_id": A, "current": "x", "previous": 0, "unreadable": 0, "immutable": 0}


@pytest.mark.parametrize("data", [None, {"key_id": A}, [{"key_id": A}], [BAD_CURRENT]])
def test_malformed_counts_are_refused(data: object) -> None:
    with pytest.raises(InvalidInputError):
        counts_from_json(data)
