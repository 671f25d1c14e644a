"""A store's jobs in the Function App (issue 13): ``POST /api/migrate`` and the sweep
timer's KEK crypto-period rule start admin operations that the host's queue worker runs in
slices (the writers' TTLs waited out by visibility delays, not sleeps); ``GET /api/status``
shows the running job from the mode row; a second start while one runs is refused with
``409 StoreJobBusy`` and nothing changed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from devtools.localhost import bindings
from shared.adapters.dek_table import TableKekStore, TableModeStore, TableRecordStore
from shared.composition import AppContext, reset_contexts
from shared.records import FIRST_KEK_VERSION, RecordFormat, StoreMode, read_checkpoint
from tests.e2e.conftest import Stack, operator_auth
from tests.e2e.test_functions_bindings import _function, _operation_result, _post
from tests.e2e.test_rotation_flow import DEK_COUNT, PARTITIONS, _seed

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]


async def _small_ttls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers' mode and KEK TTLs of one second, and a write bound of one second (this
    test's writers finish before each job): the jobs' waits are a queue delay or two."""
    monkeypatch.setenv("KEYWARD_MODE_TTL", "1")
    monkeypatch.setenv("KEYWARD_KEK_CACHE_SECONDS", "1")
    parts = AppContext.store_job_parts
    monkeypatch.setattr(
        AppContext,
        "store_job_parts",
        lambda self: dataclasses.replace(parts(self), max_write_seconds=1.0),
    )
    for context in reset_contexts():
        await context.aclose()


async def _status() -> dict[str, Any]:
    answer = await _function("admin_status")(
        func.HttpRequest(
            method="GET", url="/api/status", body=b"", params={}, headers=operator_auth()
        )
    )
    assert answer.status_code == 200
    body: dict[str, Any] = json.loads(answer.get_body())
    return body


async def _records(stack: Stack) -> list[Any]:
    table = TableClient.from_connection_string(stack.azurite.connection_string, stack.dek_table)
    async with table:
        page = await TableRecordStore(table).scan_records(page_size=1000)
    assert page.continuation is None
    return list(page.records)


async def test_migration_and_kek_rotation_run_as_queued_operations(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _small_ttls(monkeypatch)
    _, _, key_ref = await _seed(stack, "ledger")
    shard = f"table:{stack.dek_table}"
    data = TableClient.from_connection_string(stack.azurite.connection_string, stack.dek_table)
    modes = TableModeStore(data)

    # Bad input: answered at once, nothing recorded or claimed.
    for body, code in (
        ({"store": shard, "key": key_ref, "to": "sideways"}, 400),
        ({"store": "table:nosuch", "key": key_ref, "to": "hierarchy"}, 400),
        ({"key": key_ref, "to": "hierarchy"}, 400),
    ):
        refused = await _function("admin_migrate")(_post("/api/migrate", body))
        assert refused.status_code == code, refused.get_body()
    assert (await modes.read_mode()).etag == ""

    accepted = await _function("admin_migrate")(
        _post("/api/migrate", {"store": shard, "key": key_ref, "to": "hierarchy"})
    )
    assert accepted.status_code == 202, accepted.get_body()
    claimed = await modes.read_mode()
    assert claimed.mode is StoreMode.TO_HIERARCHY  # claimed in the request itself

    # A second start while it runs: 409, the mode row untouched.
    again = await _function("admin_migrate")(
        _post("/api/migrate", {"store": shard, "key": key_ref, "to": "hierarchy"})
    )
    assert again.status_code == 409
    assert json.loads(again.get_body())["error"]["code"] == "StoreJobBusy"
    rotate = await _function("admin_rotate_keks")(
        _post("/api/rotate-keks", {"store": shard, "key": key_ref})
    )
    assert rotate.status_code == 409
    assert (await modes.read_mode()).etag == claimed.etag or (
        read_checkpoint((await modes.read_mode()).migration).owner  # type: ignore[union-attr]
        == read_checkpoint(claimed.migration).owner  # type: ignore[union-attr]
    )

    # Status shows the running job from the mode row.
    deadline = time.monotonic() + 30
    shown = None
    while time.monotonic() < deadline and shown is None:
        shown = (await _status())["store_jobs"].get(shard)
        await asyncio.sleep(0.2)
    assert shown is not None
    assert shown["kind"] == "migrate"
    assert shown["direction"] == "hierarchy"
    assert shown["phase"] in {"wait", "convert", "count"}

    done = await _operation_result(accepted)
    assert done["status"] == "succeeded", done
    assert done["kind"] == "migrate"
    assert done["result"]["mode"] == "hierarchy"
    assert done["result"]["job"]["rows_converted"] == DEK_COUNT
    assert done["result"]["job"]["blocked_rows"] == 0
    records = await _records(stack)
    assert len(records) == DEK_COUNT
    assert all(r.format is RecordFormat.HIERARCHY and r.problem is None for r in records)
    assert (await modes.read_mode()).mode is StoreMode.HIERARCHY
    await asyncio.sleep(1.1)  # the status shard's mode cache (1 s)
    status = await _status()
    assert status["modes"][shard] == "hierarchy"
    assert status["store_jobs"][shard] is None  # done: nothing running or blocked

    # The KEKs' crypto-period: made 100 days ago (their CreatedAt), the sweep timer starts
    # one rotation; a second timer run while it runs starts nothing.
    keks = TableClient.from_connection_string(stack.azurite.connection_string, stack.kek_table)
    old = datetime.now(UTC) - timedelta(days=100)
    async with keks:
        rows = [row async for row in keks.list_entities()]
        assert len(rows) == PARTITIONS
        for row in rows:
            await keks.update_entity(
                {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"], "CreatedAt": old},
                mode=UpdateMode.MERGE,
            )
    timer = bindings.timer_input(past_due=False, last=None, next_=datetime.now())
    await _function("sweep")(timer)
    started = read_checkpoint((await modes.read_mode()).migration)
    assert started is not None
    assert started.kind.value == "rotate-keks"
    assert started.owner.startswith("operation:")
    await _function("sweep")(timer)
    following = read_checkpoint((await modes.read_mode()).migration)
    assert following is not None
    assert following.owner == started.owner
    busy = await _function("admin_rotate_keks")(
        _post("/api/rotate-keks", {"store": shard, "key": key_ref})
    )
    assert busy.status_code == 409
    assert json.loads(busy.get_body())["error"]["code"] == "StoreJobBusy"

    operation_id = started.owner.removeprefix("operation:")
    polled = await _operation_result(
        func.HttpResponse(
            json.dumps({"operation_id": operation_id, "status": "accepted",
                        "status_url": f"/api/operations/{operation_id}"}),
            status_code=202, headers={"Location": f"/api/operations/{operation_id}"},
        )
    )  # fmt: skip
    assert polled["status"] == "succeeded", polled
    assert polled["kind"] == "rotate_keks"
    job = polled["result"]["job"]
    assert job["keks_created"] == PARTITIONS
    assert job["keks_deleted"] == PARTITIONS
    kek_store = TableKekStore(
        TableClient.from_connection_string(stack.azurite.connection_string, stack.kek_table)
    )
    try:
        for partition in {r.partition for r in records}:
            versions = [k.version for k in await kek_store.list_keks(partition)]
            assert len(versions) == 1
            assert versions[0] != FIRST_KEK_VERSION
    finally:
        await kek_store.close()
    rotated = await _records(stack)
    assert len(rotated) == DEK_COUNT
    assert all(r.format is RecordFormat.HIERARCHY and r.problem is None for r in rotated)
    assert all(r.kek_version != FIRST_KEK_VERSION for r in rotated)
    await data.close()


async def test_migration_there_and_back_over_the_hosts_http_front_door(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a client would (function key, routes, ``Location``, ``Retry-After``): migrate to
    hierarchy and back to direct; every record is a format-1 row again and the KEKs are
    gone. Errors answer with the API's codes and record nothing."""
    import aiohttp

    await _small_ttls(monkeypatch)
    _, _, key_ref = await _seed(stack, "there-and-back")
    shard = f"table:{stack.dek_table}"
    headers = stack.admin_headers("operator")

    async def run(http: aiohttp.ClientSession, to: str) -> dict[str, Any]:
        async with http.post("/api/migrate", json={"store": shard, "key": key_ref, "to": to}) as r:
            assert r.status == 202, await r.text()
            location = r.headers["Location"]
        for _ in range(1200):
            async with http.get(location) as polled:
                found: dict[str, Any] = await polled.json()
                if found["status"] in {"succeeded", "failed"}:
                    return found
                assert polled.headers["Retry-After"] == "2"
            await asyncio.sleep(0.05)
        raise AssertionError(f"the migration to {to} did not finish")

    async with aiohttp.ClientSession(base_url=stack.host.base_url, headers=headers) as http:
        evil = {"store": shard, "key": "https://evil.vault.azure.net/keys/k", "to": "direct"}
        async with http.post("/api/migrate", json=evil) as refused:
            assert refused.status == 403
            assert (await refused.json())["error"]["code"] == "VaultNotAllowed"
        unknown = {"store": shard, "key": f"{stack.vault.url}/keys/nope", "to": "hierarchy"}
        async with http.post("/api/migrate", json=unknown) as missing:
            assert missing.status == 404
        async with http.post("/api/rotate-keks", json={"store": shard}) as no_key:
            assert no_key.status == 400

        there = await run(http, "hierarchy")
        assert there["status"] == "succeeded", there
        assert there["result"]["job"]["rows_converted"] == DEK_COUNT
        back = await run(http, "direct")
        assert back["status"] == "succeeded", back
        assert back["result"]["mode"] == "direct"
        assert back["result"]["job"]["rows_converted"] == DEK_COUNT
        assert back["result"]["job"]["keks_deleted"] == PARTITIONS

    records = await _records(stack)
    assert len(records) == DEK_COUNT
    assert all(r.format is RecordFormat.DIRECT and r.problem is None for r in records)
    keks = TableClient.from_connection_string(stack.azurite.connection_string, stack.kek_table)
    async with keks:
        assert [row async for row in keks.list_entities()] == []
