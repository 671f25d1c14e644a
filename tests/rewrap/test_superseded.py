"""The verdict's "not yet": a version superseded less than the writers' wait ago is not judged.

Why: writers wrap new DEKs (and KEKs) under the newest version they have cached, so after a
rotation rows can still land under the old version after a count. Each test fails without
the rule: the version would be called safe to disable at zero wraps.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from devtools.local_keys import LocalKeyVersionSource
from shared.records import MAX_WRITE_SECONDS, NEWEST_VERSION_SECONDS, superseded_wait_seconds
from shared.rewrap import BlockerKind, RetirementReport, verdict_from_counts
from shared.rewrap._superseded import superseded_at
from shared.stores import VersionCount
from tests.rewrap.fakes import KEY_REF, V1, V2, V3, rsa_key

ROTATED = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
WAIT = timedelta(seconds=superseded_wait_seconds(30))


def _source() -> LocalKeyVersionSource:
    source = LocalKeyVersionSource()
    source.add_version(KEY_REF, V1, rsa_key(0), created=ROTATED - timedelta(days=30))
    source.add_version(KEY_REF, V2, rsa_key(1), created=ROTATED)
    return source


def _verdict(
    source: LocalKeyVersionSource, counted_from: datetime, current: int = 0
) -> RetirementReport:
    counts = {"s": [VersionCount(f"{KEY_REF}/{V1}", current=current)]}
    return asyncio.run(
        verdict_from_counts(
            counts,
            KEY_REF,
            keys=source,
            now=counted_from + timedelta(minutes=5),
            counted_from=counted_from,
            superseded_wait=WAIT,
        )
    )


def test_the_wait_is_the_writers_refresh_mode_ttl_and_write_bound() -> None:
    assert NEWEST_VERSION_SECONDS == 60
    assert superseded_wait_seconds(30) == 60 + 30 + MAX_WRITE_SECONDS + 5 == 155
    assert superseded_wait_seconds(0) >= NEWEST_VERSION_SECONDS + MAX_WRITE_SECONDS


def test_a_version_superseded_10_s_ago_is_not_yet_answerable() -> None:
    entry = _verdict(_source(), ROTATED + timedelta(seconds=10)).version(V1)

    assert not entry.safe_to_disable
    assert [b.kind for b in entry.blocker_list] == [BlockerKind.LATE_WRITERS]
    when = (ROTATED + WAIT).isoformat(timespec="seconds")
    assert entry.blockers == [
        "superseded too recently: writers may still land wraps under it; not yet answerable, "
        f"ask again from {when}"
    ]
    assert (entry.superseded_at, entry.answerable_at, entry.too_soon) == (
        ROTATED, ROTATED + WAIT, True)  # fmt: skip


def test_after_the_wait_it_is_judged_on_its_counts_as_before() -> None:
    later = ROTATED + WAIT + timedelta(seconds=1)

    assert _verdict(_source(), later).version(V1).safe_to_disable
    blocked = _verdict(_source(), later, current=3).version(V1)
    assert [b.kind for b in blocked.blocker_list] == [BlockerKind.CURRENT]


def test_the_boundary_a_count_from_the_answerable_moment_on_is_judged() -> None:
    at = ROTATED + WAIT
    assert _verdict(_source(), at).version(V1).safe_to_disable
    just_before = _verdict(_source(), at - timedelta(microseconds=1)).version(V1)
    assert just_before.too_soon
    assert not just_before.safe_to_disable


def test_the_newest_version_has_no_such_blocker_only_newest() -> None:
    entry = _verdict(_source(), ROTATED + timedelta(seconds=10)).version(V2)
    assert [b.kind for b in entry.blocker_list] == [BlockerKind.NEWEST]
    assert entry.superseded_at is None


def test_superseded_when_the_newer_version_became_usable_its_nbf() -> None:
    usable = ROTATED + timedelta(hours=1)
    v1, v2 = asyncio.run(_source().versions(KEY_REF))
    assert superseded_at(V1, [v1, replace(v2, not_before=usable)]) == usable
    # Before its nbf the vault calls V2 not enabled: nothing supersedes V1, still the newest.
    assert superseded_at(V1, [v1, replace(v2, not_before=usable, enabled=False)]) is None
    source = _source()
    source.set_enabled(KEY_REF, V2, False)
    assert _verdict(source, ROTATED + timedelta(minutes=10)).version(V1).newest


def test_the_next_newer_enabled_version_decides_and_a_same_second_tie_is_read_safely() -> None:
    source = _source()
    source.add_version(KEY_REF, V3, rsa_key(2), created=ROTATED + timedelta(hours=2))
    infos = asyncio.run(source.versions(KEY_REF))
    assert superseded_at(V1, infos) == ROTATED
    assert superseded_at(V2, infos) == ROTATED + timedelta(hours=2)
    # A disabled newer version supersedes nothing: V1 was newest again until V3.
    source.set_enabled(KEY_REF, V2, False)
    assert superseded_at(V1, asyncio.run(source.versions(KEY_REF))) == ROTATED + timedelta(hours=2)

    tie = LocalKeyVersionSource()
    for index, version in enumerate((V1, V2)):
        tie.add_version(KEY_REF, version, rsa_key(index), created=ROTATED)
    tie.add_version(KEY_REF, V3, rsa_key(2), created=ROTATED + timedelta(hours=1))
    tied = asyncio.run(tie.versions(KEY_REF))
    # Which of V1/V2 won the second is unknown: the later reading (V3) is taken for both.
    assert superseded_at(V1, tied) == superseded_at(V2, tied) == ROTATED + timedelta(hours=1)
    assert superseded_at(V3, tied) is None
