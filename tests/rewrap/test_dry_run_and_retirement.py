"""Dry-run counts without touching anything; retirement says when a version may be disabled."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.records import superseded_wait_seconds
from shared.rewrap import FailureReason, InMemoryJobStore, retirement_report
from tests.rewrap.fakes import (
    KEY_REF,
    V1,
    V2,
    V3,
    MemoryDekStore,
    engine_for,
    key_source,
    make_dek,
    populate,
)

V_GONE = "5" * 32
#: The local key source dates its versions days apart, long ago: the wait never bites here.
WAIT = timedelta(seconds=superseded_wait_seconds(30))


def _world() -> tuple[MemoryDekStore, object]:
    source = key_source(V1, V2, V_GONE, V3)
    store = MemoryDekStore()
    populate(store, source, [V1, V1, V2], 9)
    populate(store, source, [V3], 2, prefix="cur")
    populate(store, source, [V_GONE], 2, prefix="gone")
    source.set_enabled(KEY_REF, V_GONE, False)
    template, _ = make_dek(source, "bad", V1)
    store.add(replace(template, problem="bad base64"))
    return store, source


def test_dry_run_counts_per_version_and_writes_nothing() -> None:
    store, source = _world()
    before = dict(store.rows)
    jobs = InMemoryJobStore()

    report = asyncio.run(engine_for(store, source, jobs, rate_ceiling=None).dry_run(KEY_REF))

    assert report.plan.target_version == V3
    assert report.would_rewrap == {V1: 6, V2: 3}
    assert report.would_be_unreadable == {"key_disabled": 2}
    assert report.would_fail == {FailureReason.UNPARSEABLE: 1}
    assert report.vault_operations == 11
    # keyward's whole share of the vault: half of RSA-2048's 400/s, with 2% headroom.
    assert report.rate == pytest.approx(192)  # (0.5 - 0.02) x 400: the headroom is the vault's
    assert report.estimated_seconds == pytest.approx(11 / 192)
    assert store.rows == before
    assert asyncio.run(jobs.list_jobs()) == []


def test_retirement_safe_only_when_nothing_references_the_version() -> None:
    store, source = _world()
    asyncio.run(engine_for(store, source).run(KEY_REF))

    report = asyncio.run(
        retirement_report(
            store,
            KEY_REF,
            keys=source,
            pinned={V2: ["/subscriptions/s/face-1"]},
            superseded_wait=WAIT,
        )
    )

    assert report.newest_enabled == V3
    assert [entry.version for entry in report.versions] == [V1, V2, V_GONE, V3]
    v1, v2, gone, v3 = report.versions
    # Every V1 DEK moved, but keeps V1 as its previous wrap.
    assert (v1.current, v1.previous, v1.safe_to_disable) == (0, 6, False)
    assert v2.previous == 3
    assert "1 resources pinned to it" in v2.blockers
    assert (gone.current, gone.unreadable, gone.enabled) == (2, 2, False)
    assert v3.newest
    assert not v3.safe_to_disable


def test_retirement_marks_a_version_safe_at_zero() -> None:
    source = key_source(V1, V2, V3)
    store = MemoryDekStore()
    populate(store, source, [V2], 3)
    asyncio.run(engine_for(store, source).run(KEY_REF))

    report = asyncio.run(retirement_report(store, KEY_REF, keys=source, superseded_wait=WAIT))

    assert report.version(V1).safe_to_disable
    assert report.version(V1).blockers == []
    assert not report.version(V2).safe_to_disable
    pinned = asyncio.run(
        retirement_report(store, KEY_REF, keys=source, pinned={V1: ["face"]}, superseded_wait=WAIT)
    )
    assert not pinned.version(V1).safe_to_disable
