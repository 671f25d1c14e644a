"""Retiring right after a rotation is refused ("not yet"), and says from when it can be asked.

The retire call recomputes the key-wide verdict (its first look), so the late-writers rule
refuses it with nothing recorded; the verdict operation (what ``POST /api/verdict`` runs)
shows the reason and the times. A clock seam moves past the wait: then the version is
judged on its counts as before.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from devtools.local_keys import LocalKeyVersionSource
from shared.crypto import VaultAllowList
from shared.errors import RetirementBlockedError
from shared.rewrap import InMemoryJobStore, InMemoryRetiredVersions, JobState
from shared.services._operation import OperationKind
from shared.services._operation_store import InMemoryOperationRecords, OperationStore
from shared.services._planner import RewrapPlanner
from shared.services.admin import AdminService
from shared.services.operations import NoQueue, OperationService, run_to_end
from shared.services.retirement import Retirement, superseded_wait
from shared.stores import SqliteDekStore
from tests.rewrap.fakes import KEY_REF, V1, V2, rsa_key
from tests.services.test_retire import SHARD, Dependents, Ledger, Queue

ROTATED = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)


class World:
    def __init__(self, now: datetime) -> None:
        self.now = now
        self.source = LocalKeyVersionSource()
        self.source.add_version(KEY_REF, V1, rsa_key(0), created=ROTATED - timedelta(days=9))
        self.source.add_version(KEY_REF, V2, rsa_key(1), created=ROTATED)
        self.retired = InMemoryRetiredVersions()
        self.admin = AdminService(
            allow_list=VaultAllowList.parse("contoso-kv"),
            stores={SHARD: SqliteDekStore()},
            job_store=lambda shard: InMemoryJobStore(),
            keys=self.source,
            planner=RewrapPlanner(self.source, Queue(), [SHARD]),
            ledger=Ledger(),  # type: ignore[arg-type]
            dependents=Dependents({}),  # type: ignore[arg-type]
            retired=self.retired,
            now=lambda: self.now,
        )

        async def no_pins(key_ref: str) -> dict[str, list[str]]:
            return {}

        async def no_jobs(key_ref: str) -> list[JobState]:
            return []

        #: The CLI's way (and the operations' parts).
        self.retirement = Retirement(
            stores={SHARD: SqliteDekStore()}, keys=self.source, pinned=no_pins, jobs=no_jobs,
            retired=self.retired, now=lambda: self.now,
        )  # fmt: skip


async def test_retire_10_s_after_the_rotation_is_refused_with_when_to_ask_again() -> None:
    world = World(ROTATED + timedelta(seconds=10))
    when = (ROTATED + superseded_wait()).isoformat(timespec="seconds")

    with pytest.raises(RetirementBlockedError) as refused:
        await world.admin.retire(KEY_REF, version=V1)

    assert refused.value.blockers == [
        "superseded too recently: writers may still land wraps under it; not yet answerable, "
        f"ask again from {when}"
    ]
    assert await world.retired.retired_versions(KEY_REF) == frozenset()


async def test_the_verdict_operation_shows_the_reason_and_the_times() -> None:
    world = World(ROTATED + timedelta(seconds=10))
    done = await run_to_end(world.retirement.parts(), OperationKind.VERDICT, KEY_REF)
    v1 = next(v for v in (done.result or {})["versions"] if v["version"] == V1)

    assert v1["status"] == "blocked"
    assert [b["kind"] for b in v1["blocker_kinds"]] == ["late_writers"]
    assert v1["superseded_at"] == ROTATED.isoformat(timespec="seconds")
    assert v1["answerable_at"] == (ROTATED + superseded_wait()).isoformat(timespec="seconds")


async def test_after_the_wait_the_retire_goes_through() -> None:
    world = World(ROTATED + superseded_wait())

    assert (await world.admin.retire(KEY_REF, version=V1))["status"] == "retired"
    assert (await world.admin.verdict(KEY_REF)).version(V1).safe_to_disable
    assert (await world.retirement.retire(KEY_REF, V1))["status"] == "retired"


async def test_the_cli_s_retire_is_refused_too() -> None:
    world = World(ROTATED + superseded_wait() - timedelta(seconds=1))
    with pytest.raises(RetirementBlockedError, match="cannot be retired yet"):
        await world.retirement.retire(KEY_REF, V1)
    assert (await world.retirement.verdict(KEY_REF)).version(V1).too_soon


async def test_a_verdict_operation_begun_before_the_wait_ended_is_not_judged() -> None:
    """The count began before the answerable moment, however late the verdict is drawn."""
    world = World(ROTATED + timedelta(seconds=100))
    service = OperationService(
        parts=world.retirement.parts(), records=OperationStore(InMemoryOperationRecords()),
        queue=NoQueue(), slice_seconds=float("inf"),
    )  # fmt: skip
    op = await service.start(OperationKind.VERDICT, KEY_REF)
    world.now = ROTATED + timedelta(hours=1)  # the count ends an hour later
    done = await service.run_slice(op.operation_id, raise_errors=True)
    assert done is not None
    v1 = next(v for v in (done.result or {})["versions"] if v["version"] == V1)
    assert [b["kind"] for b in v1["blocker_kinds"]] == ["late_writers"]
