"""The vaults' budget boards in keyward's state table, against Azurite: one row per member in
``budget:<vault host>``, the service's Timestamps, deletes conditional on the ETag read."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from azure.data.tables.aio import TableClient, TableServiceClient

from devtools.azurite import AzuriteInfo
from shared.adapters.budget_board import TableBudgetBoard, board_partition
from shared.errors import ServiceError
from shared.rewrap import BudgetBoard, ShareRules, member_scopes

pytestmark = pytest.mark.azurite

VAULT = "127.0.0.1:8443"


def test_the_partition_is_the_vault_host_made_key_safe() -> None:
    assert board_partition("KV.vault.azure.net") == "budget:kv.vault.azure.net"
    assert board_partition(VAULT) == "budget:127.0.0.1:8443"
    assert board_partition("a/b\\c#d?e\x01") == "budget:a_b_c_d_e_"


async def test_a_heartbeat_writes_its_row_and_reads_the_vaults_rows(table: TableClient) -> None:
    board = TableBudgetBoard(table)
    assert isinstance(board, BudgetBoard)
    first = await board.beat(VAULT, "m1", per_second=400.0, owner="host:1")
    assert [row.member for row in first.rows] == ["m1"]
    assert first.own.per_second == 400.0
    await board.beat("other.vault.azure.net", "m9", per_second=25.0, owner="host:9")
    second = await board.beat(VAULT, "m2", per_second=25.0, owner="host:2/x")
    assert sorted(row.member for row in second.rows) == ["m1", "m2"]
    # The own row carries the service's time of this write: the other row is older.
    others = [row for row in second.rows if row.member == "m1"]
    assert ShareRules.age(second, others[0]) >= 0
    entity = await table.get_entity("budget:127.0.0.1:8443", "m2")
    assert entity["Owner"] == "host:2_x"


async def test_ages_follow_the_services_timestamps(table: TableClient) -> None:
    board = TableBudgetBoard(table)
    await board.beat(VAULT, "old", per_second=400.0, owner="h")
    await asyncio.sleep(1.2)
    view = await board.beat(VAULT, "new", per_second=400.0, owner="h")
    old = next(row for row in view.rows if row.member == "old")
    assert 1.0 <= ShareRules.age(view, old) < 5.0
    refreshed = await board.beat(VAULT, "old", per_second=400.0, owner="h")
    assert refreshed.own.written_at > old.written_at
    assert refreshed.own.etag != old.etag


async def test_an_expired_row_is_deleted_only_if_unchanged_since_read(table: TableClient) -> None:
    board = TableBudgetBoard(table)
    await board.beat(VAULT, "dead", per_second=400.0, owner="h")
    view = await board.beat(VAULT, "reader", per_second=400.0, owner="h")
    seen = next(row for row in view.rows if row.member == "dead")
    # The member came back in between: its fresh row survives the delete.
    await board.beat(VAULT, "dead", per_second=400.0, owner="h")
    await board.expire(VAULT, seen)
    view = await board.beat(VAULT, "reader", per_second=400.0, owner="h")
    assert sorted(row.member for row in view.rows) == ["dead", "reader"]
    # Unchanged since read: deleted. Deleting it again (already gone) is fine.
    current = next(row for row in view.rows if row.member == "dead")
    await board.expire(VAULT, current)
    await board.expire(VAULT, current)
    view = await board.beat(VAULT, "reader", per_second=400.0, owner="h")
    assert [row.member for row in view.rows] == ["reader"]


async def test_leaving_deletes_the_row_and_leaving_twice_is_fine(table: TableClient) -> None:
    board = TableBudgetBoard(table)
    await board.beat(VAULT, "m1", per_second=400.0, owner="h")
    await board.leave(VAULT, "m1")
    await board.leave(VAULT, "m1")
    view = await board.beat(VAULT, "m2", per_second=400.0, owner="h")
    assert [row.member for row in view.rows] == ["m2"]


async def test_an_unreachable_table_is_a_service_error(azurite: AzuriteInfo) -> None:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    client = service.get_table_client("missing" + uuid.uuid4().hex[:10])
    try:
        with pytest.raises(ServiceError):
            await TableBudgetBoard(client).beat(VAULT, "m1", per_second=400.0, owner="h")
    finally:
        await client.close()
        await service.close()


async def test_a_subscription_group_is_a_partition_of_its_own(table: TableClient) -> None:
    """The second scope (``member_scopes``): one row per member in
    ``budget:subscription:<group>``, beside (never mixed with) its vault's partition."""
    board = TableBudgetBoard(table)
    vault_scope, group_scope = member_scopes(VAULT, "sub1")
    assert board_partition(group_scope.name) == "budget:subscription:sub1"
    await board.beat(vault_scope.name, "m1", per_second=400.0, owner="h:1")
    await board.beat(group_scope.name, "m1", per_second=400.0, owner="h:1")
    other_vault, same_group = member_scopes("kv-b.vault.azure.net", "sub1")
    await board.beat(other_vault.name, "m2", per_second=400.0, owner="h:2")
    group = await board.beat(same_group.name, "m2", per_second=400.0, owner="h:2")
    assert sorted(row.member for row in group.rows) == ["m1", "m2"]
    _, elsewhere = member_scopes("kv-c.vault.azure.net", "sub2")
    alone = await board.beat(elsewhere.name, "m3", per_second=400.0, owner="h:3")
    assert [row.member for row in alone.rows] == ["m3"]
    entity = await table.get_entity("budget:subscription:sub1", "m2")
    assert entity["PerSecond"] == 400.0
    vault_rows = [
        e async for e in table.query_entities(f"PartitionKey eq '{board_partition(VAULT)}'")
    ]
    assert [e["RowKey"] for e in vault_rows] == ["m1"]
    await board.leave(group_scope.name, "m1")
    assert [
        row.member
        for row in (await board.beat(same_group.name, "m2", per_second=400.0, owner="h:2")).rows
    ] == ["m2"]
