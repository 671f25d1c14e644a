"""The admin API's bounded work against Azurite (issue 12): a status page costs the same
Storage requests whatever the number of DEKs or jobs; operation records are ETag-conditional;
an operation over the Table DEK store resumes across slices.

Requests are counted with ``devtools.traffic.TrafficCounter`` as the clients'
``raw_response_hook`` (one call per HTTP attempt).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.data.tables.aio import TableClient, TableServiceClient

from devtools.azurite import AzuriteInfo
from devtools.seed import seed_deks
from devtools.traffic import TrafficCounter
from shared.adapters.dek_table import TableDekStore
from shared.adapters.operation_store import TableOperationRecords, operation_partition
from shared.adapters.table_state import EventLedger, TableJobStore
from shared.crypto import LocalRsaWrapper, VaultAllowList
from shared.errors import ConflictError, InvalidInputError
from shared.rewrap import InMemoryRetiredVersions, JobState, JobStatus, rewrap_job_id
from shared.services._planner import RewrapPlanner
from shared.services._ports import FlagsPage
from shared.services._status_page import MAX_STATUS_FLAGS
from shared.services.admin import AdminService
from tests.rewrap.fakes import KEY_REF, V1, key_source

pytestmark = pytest.mark.azurite

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
SHARDS = ("table:deks", "table:more")
#: Reads of the rejected events per status page (``EventLedger.recent_rejections``).
REJECTION_READS = 2


@dataclass
class Dependents:
    page: FlagsPage = field(default_factory=FlagsPage)
    limits: list[int] = field(default_factory=list)

    async def pinned_versions(self, key_ref: str) -> Mapping[str, Sequence[str]]:
        return {}

    async def status(self, limit: int) -> Mapping[str, FlagsPage]:
        self.limits.append(limit)
        return {"face_flags": self.page}


class Queue:
    async def send(self, message: Any, *, delay_seconds: int = 0) -> None:
        return None

    async def send_operation(self, message: Any, *, delay_seconds: int = 0) -> None:
        return None


@pytest.fixture
async def tables(azurite: AzuriteInfo) -> AsyncIterator[tuple[str, str]]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    names = ("state" + uuid.uuid4().hex[:12], "deks" + uuid.uuid4().hex[:12])
    for name in names:
        await service.create_table(name)
    try:
        yield names
    finally:
        for name in names:
            await service.delete_table(name)
        await service.close()


def _job(key: int, shard: str) -> JobState:
    key_ref = f"https://contoso-kv.vault.azure.net/keys/k{key:04}"
    return JobState(
        job_id=rewrap_job_id(key_ref, V1, shard), key_ref=key_ref, target_version=V1,
        target_key_id=f"{key_ref}/{V1}", status=JobStatus.COMPLETED, created_at=NOW,
        updated_at=NOW, scope=shard,
    )  # fmt: skip


class World:
    """State and DEK tables on Azurite, every client counting its requests."""

    def __init__(self, azurite: AzuriteInfo, tables: tuple[str, str]) -> None:
        self.counter = TrafficCounter()
        connection = azurite.connection_string
        self.state = TableClient.from_connection_string(
            connection, tables[0], raw_response_hook=self.counter
        )
        self.dek_store = TableDekStore.from_connection_string(
            connection, tables[1], raw_response_hook=self.counter
        )
        self.source = key_source(V1)
        self.dependents = Dependents()
        self.admin = AdminService(
            allow_list=VaultAllowList.parse("contoso-kv"),
            stores={SHARDS[0]: self.dek_store, SHARDS[1]: self.dek_store},
            job_store=lambda shard: TableJobStore(self.state, shard),
            keys=self.source,
            planner=RewrapPlanner(self.source, Queue(), SHARDS),
            ledger=EventLedger(self.state),
            dependents=self.dependents,  # type: ignore[arg-type]
            retired=InMemoryRetiredVersions(),
            operation_records=TableOperationRecords(self.state),
            operation_queue=Queue(),
        )

    async def grow(self, *, deks: int, jobs: tuple[int, int], start: int) -> None:
        wrapper = LocalRsaWrapper(
            f"{KEY_REF}/{V1}", private_key=self.source.private_key(f"{KEY_REF}/{V1}")
        )
        await seed_deks(self.dek_store, wrapper, deks, start=start)
        for shard, count in zip(SHARDS, jobs, strict=True):
            store = TableJobStore(self.state, shard)
            for index in range(count):
                await store.put(_job(start + index, shard), expected_etag=None)

    async def status_requests(self, **query: Any) -> tuple[int, dict[str, Any]]:
        before = self.counter.requests
        page = await self.admin.status(**query)
        return self.counter.requests - before, page

    async def close(self) -> None:
        await self.dek_store.close()
        await self.state.close()


async def test_a_status_page_costs_the_same_requests_at_any_number_of_deks_or_jobs(
    azurite: AzuriteInfo, tables: tuple[str, str]
) -> None:
    world = World(azurite, tables)
    try:
        await world.grow(deks=20, jobs=(2, 1), start=0)
        small, page = await world.status_requests()
        assert len(page["jobs"]) == 3
        await world.grow(deks=1500, jobs=(70, 60), start=100)
        large, page = await world.status_requests()
        assert len(page["jobs"]) == 50
        # At most one read per shard's jobs and two for the rejected events (the dated
        # partitions, then the legacy one); no DEK read, and no more for more jobs.
        assert large <= small <= len(SHARDS) + REJECTION_READS

        seen: list[str] = []
        continuation = None
        while True:
            requests, page = await world.status_requests(limit=40, continuation=continuation)
            assert requests <= len(SHARDS) + REJECTION_READS
            assert len(page["jobs"]) <= 40
            seen.extend(f"{j['shard']}/{j['job_id']}" for j in page["jobs"])
            continuation = page["continuation"]
            if continuation is None:
                break
        assert len(seen) == len(set(seen)) == 133  # every job once
        for bad in ({"limit": 0}, {"limit": 201}, {"continuation": "not-a-token"}):
            with pytest.raises(InvalidInputError):
                await world.admin.status(**bad)
    finally:
        await world.close()


async def test_a_status_page_asks_for_bounded_flags_and_says_when_it_left_some_out(
    azurite: AzuriteInfo, tables: tuple[str, str]
) -> None:
    world = World(azurite, tables)
    try:
        _, page = await world.status_requests()
        assert (page["face_flags"], page["face_flags_more"]) == ([], False)
        shown = ({"account_id": "a", "status": "OK"}, {"account_id": "b", "status": "OK"})
        world.dependents.page = FlagsPage(shown, more=True)
        _, page = await world.status_requests(limit=1)
        assert (page["face_flags"], page["face_flags_more"]) == (list(shown), True)
        assert world.dependents.limits == [MAX_STATUS_FLAGS, MAX_STATUS_FLAGS]
        assert list(page) == ["jobs", "continuation", "face_flags", "face_flags_more",
                              "rejected_events", "retirement", "shards", "modes",
                              "store_jobs", "dead_letters", "audit"]  # fmt: skip
        assert page["dead_letters"] == {"enabled": False}  # no dead-letter container set
    finally:
        await world.close()


async def test_operation_records_are_compare_and_set_and_hold_large_records(
    azurite: AzuriteInfo, tables: tuple[str, str]
) -> None:
    async with TableClient.from_connection_string(azurite.connection_string, tables[0]) as table:
        records = TableOperationRecords(table)
        operation_id = uuid.uuid4().hex
        big = {"kind": "verdict", "status": "running", "blob": "x" * 200_000}
        etag = await records.put(operation_id, big, expected_etag=None)
        with pytest.raises(ConflictError):
            await records.put(operation_id, big, expected_etag=None)
        newer = await records.put(operation_id, {**big, "status": "succeeded"}, expected_etag=etag)
        with pytest.raises(ConflictError):
            await records.put(operation_id, big, expected_etag=etag)  # a stale writer
        found = await records.get(operation_id)
        assert found is not None
        assert found == ({**big, "status": "succeeded"}, newer)
        assert await records.get(uuid.uuid4().hex) is None
        entity = await table.get_entity(operation_partition(operation_id), operation_id)
        assert entity["PartitionKey"] == f"op:{operation_id[:2]}"


async def test_a_verdict_over_the_table_store_resumes_across_slices(
    azurite: AzuriteInfo, tables: tuple[str, str]
) -> None:
    world = World(azurite, tables)
    try:
        await world.grow(deks=2500, jobs=(0, 0), start=0)
        started = await world.admin.start_verdict(KEY_REF)
        first = await world.admin.operations.run_slice(started.operation_id, max_steps=2)
        assert first is not None
        midway = await world.admin.operation(started.operation_id)
        assert midway is not None
        assert midway["progress"]["stores"][SHARDS[0]] == {"counted": 2000, "done": False}
        done = await world.admin.operations.run_slice(started.operation_id)
        assert done is not None
        assert done.status.value == "succeeded"
        (v1,) = done.result["versions"]  # type: ignore[index]
        assert (v1["version"], v1["current"]) == (V1, 5000)  # two shards on one table
    finally:
        await world.close()
