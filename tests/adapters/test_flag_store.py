"""The flag store's bounded read for ``GET /api/status`` on Azurite: one query that reads at
most ``limit + 1`` flag records however many accounts there are, and says whether it left
some out. (The sweep's per-account reads and writes are tested with the Face services.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.data.tables.aio import TableClient, TableServiceClient

from devtools.azurite import AzuriteInfo
from shared.adapters.flag_store import TableFlagStore
from shared.dependents import FlagRecord, Status

pytestmark = pytest.mark.azurite

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
ACCOUNTS = 12
GROUP = "/subscriptions/s/resourceGroups/g"


class EntitiesRead:
    """A ``raw_response_hook``: the entities each query response carried."""

    def __init__(self) -> None:
        self.per_response: list[int] = []

    def __call__(self, pipeline_response: Any) -> None:
        body = pipeline_response.http_response.body()
        if body and pipeline_response.http_request.method == "GET":
            self.per_response.append(len(json.loads(body).get("value", [])))


@pytest.fixture
async def table(azurite: AzuriteInfo) -> AsyncIterator[tuple[TableClient, EntitiesRead]]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    name = "flags" + uuid.uuid4().hex[:12]
    await service.create_table(name)
    read = EntitiesRead()
    client = TableClient.from_connection_string(
        azurite.connection_string, name, raw_response_hook=read
    )
    try:
        yield client, read
    finally:
        await client.close()
        await service.delete_table(name)
        await service.close()


def _record(index: int) -> FlagRecord:
    account = f"{GROUP}/providers/Microsoft.CognitiveServices/accounts/a{index:02}"
    return FlagRecord(account, Status.OK, (), "https://kv.vault.azure.net/keys/k", NOW, NOW, NOW)


async def test_a_status_read_takes_at_most_one_more_than_the_limit(
    table: tuple[TableClient, EntitiesRead],
) -> None:
    client, read = table
    writer = TableFlagStore(client, partition="face", create_table=False)
    for index in range(ACCOUNTS):
        await writer.put(_record(index))
    await client.create_entity({"PartitionKey": "other", "RowKey": "x", "Record": "{}"})
    store = TableFlagStore(client, partition="face", create_table=False)

    for limit, shown, more in ((3, 3, True), (ACCOUNTS - 1, ACCOUNTS - 1, True),
                               (ACCOUNTS, ACCOUNTS, False), (50, ACCOUNTS, False)):  # fmt: skip
        read.per_response.clear()
        records, left_out = await store.first(limit)
        assert (len(records), left_out) == (shown, more), limit
        assert len(read.per_response) == 1, "one query"
        assert read.per_response[0] <= limit + 1
        ids = [r.account_id for r in records]
        assert ids == sorted(ids, key=str.lower)
        assert all(r.status is Status.OK for r in records)

    every, more = await store.first(ACCOUNTS)
    assert {r.account_id for r in every} == {_record(i).account_id for i in range(ACCOUNTS)}
    assert not more
