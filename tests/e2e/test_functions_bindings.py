"""Every function of ``function_app.app``, called through ``get_functions()`` with its input
built by the real ``azure.functions`` binding converter from raw JSON, as the Python worker
does: Event Grid (both schemas, and the published samples), queue, timer, HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devtools.localhost import bindings
from shared.composition import context_for_current_loop
from shared.events import DependentsFollowUp
from shared.rewrap import ShardMessage, queue_message_kind, rewrap_job_id
from tests.conftest import REFERENCE, indexed_functions
from tests.e2e.conftest import Stack, call, operator_auth
from tests.e2e.test_rotation_flow import DEK_COUNT, _seed, _wait_for_all_at

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

SAMPLES = sorted((REFERENCE / "specs" / "eventgrid").rglob("*.json"))


def _function(name: str) -> Any:
    return bindings.with_context(name, indexed_functions()[name].get_user_function())


def _sample_events(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    if isinstance(data, list):
        return [e for e in data if isinstance(e, dict)]
    if isinstance(data, dict) and ("eventType" in data or "type" in data):
        return [data]
    return []


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
async def test_published_samples_go_through_the_converter_and_change_nothing(
    quiet_stack: Stack, sample: Path
) -> None:
    events = _sample_events(sample)
    if not events:
        assert sample.name == "KeyVault.json", f"{sample.name} holds no event"
        return
    context = await context_for_current_loop()
    for event in events:
        argument = bindings.event_grid_input(event)
        assert isinstance(argument, func.EventGridEvent | func.CloudEvent)
        await _function("on_key_vault_event")(argument)
    # The samples name other vaults, secrets and storage accounts: nothing is planned.
    assert await context.queue._queue.peek_messages(max_messages=1) == []


@pytest.mark.parametrize("schema", ["EventGridSchema", "CloudEventSchemaV1_0"])
async def test_rotation_event_in_either_schema_plans_the_job(
    quiet_stack: Stack, schema: str
) -> None:
    stack = quiet_stack
    key = await call(stack.key_client.create_rsa_key, f"k-{schema[:5].lower()}", size=2048)
    rotated = await call(stack.key_client.rotate_key, key.name)
    data = {
        "Id": rotated.id, "VaultName": stack.vault.name, "ObjectType": "Key",
        "ObjectName": key.name, "Version": rotated.properties.version, "NBF": None, "EXP": None,
    }  # fmt: skip
    if schema == "EventGridSchema":
        raw = {"id": f"e-{schema}", "topic": stack.vault.arm_id, "subject": key.name,
               "eventType": "Microsoft.KeyVault.KeyNewVersionCreated",
               "eventTime": "2026-11-29T03:00:00.1234567Z", "data": data,
               "dataVersion": "1", "metadataVersion": "1"}  # fmt: skip
    else:
        raw = {"specversion": "1.0", "id": f"e-{schema}", "source": stack.vault.arm_id,
               "subject": key.name, "type": "Microsoft.KeyVault.KeyNewVersionCreated",
               "time": "2026-11-29T03:00:00Z", "data": data}  # fmt: skip
    context = await context_for_current_loop()
    # The quiet stack's queue is the test's own and no poller takes from it: the peek sees
    # exactly the event's messages, all of them.
    assert await context.queue._queue.peek_messages(max_messages=1) == []
    await _function("on_key_vault_event")(bindings.event_grid_input(raw))
    peeked = await context.queue._queue.peek_messages(max_messages=32)
    import base64

    assert len(peeked) < 32, "a peek sees at most 32 messages"
    bodies = [base64.b64decode(m.content).decode() for m in peeked]
    messages = [ShardMessage.from_json(b) for b in bodies if queue_message_kind(b) == "rewrap"]
    key_ref = rotated.id.rsplit("/", 1)[0]
    assert any(
        m.key_ref == key_ref and m.target_version == rotated.properties.version for m in messages
    )
    # The key-dependent follow-up goes on the same queue, for the same one trigger.
    follow_ups = [DependentsFollowUp.from_json(b) for b in bodies if '"dependents"' in b]
    assert any(f.event_id == f"e-{schema}" for f in follow_ups)


async def test_queue_timer_and_http_functions_through_their_converters(stack: Stack) -> None:
    store, vault_keys, key_ref = await _seed(stack, "ledger")
    rotated = await call(stack.key_client.rotate_key, "ledger")
    version = rotated.properties.version
    shard = f"table:{stack.dek_table}"

    # HTTP: a dry run is an operation: 202 and a status URL; its result says what would
    # happen, and nothing changed.
    request = func.HttpRequest(
        method="POST", url="/api/rewrap",
        headers={"content-type": "application/json", **operator_auth()},
        body=json.dumps({"key": key_ref, "dry_run": True}).encode(),
    )  # fmt: skip
    dry_run = await _operation_result(await _function("admin_rewrap")(request))
    assert dry_run["status"] == "succeeded"
    assert dry_run["progress"]["stores"][shard] == {"counted": DEK_COUNT, "done": True}
    # The Table kind's two shards: the DEK table and the (empty) KEK table.
    shards = {s["shard"]: s for s in dry_run["result"]["shards"]}
    assert sorted(shards) == sorted([shard, f"table:{stack.kek_table}"])
    assert shards[f"table:{stack.kek_table}"]["vault_operations"] == 0
    dry = shards[shard]
    assert sum(dry["would_rewrap"].values()) == DEK_COUNT
    assert dry["vault_operations"] == DEK_COUNT

    # Queue: the worker runs the shard message to completion.
    message = ShardMessage(rewrap_job_id(key_ref, version, shard), key_ref, version, shard)
    queue_message = bindings.queue_input(
        message_id="m-1", body=message.to_json(), dequeue_count=1, inserted_on=None,
        expires_on=None, next_visible_on=None, pop_receipt="p",
    )  # fmt: skip
    await _function("rewrap_worker")(queue_message)
    await _wait_for_all_at(store, key_ref, version)

    # Timer: the sweep finds nothing to start (the job is complete).
    timer = bindings.timer_input(
        past_due=False, last=None, next_=__import__("datetime").datetime.now()
    )
    await _function("sweep")(timer)

    # HTTP: status shows the completed job, and where to ask for the retirement verdict.
    status = await _function("admin_status")(
        func.HttpRequest(
            method="GET",
            url="/api/status",
            body=b"",
            params={"limit": "200"},
            headers=operator_auth(),
        )
    )
    body = json.loads(status.get_body())
    (job,) = [j for j in body["jobs"] if j["key"] == key_ref]
    assert (job["status"], job["rewrapped"]) == ("completed", DEK_COUNT)
    assert key_ref in body["retirement"]["keys"]
    assert body["retirement"]["verdict"].startswith("POST /api/verdict")
    assert not _long_base64_values(body), "status carries ids and counts, never key bytes"

    # HTTP: the verdict is an operation; its result is the report status used to carry.
    verdict = await _operation_result(
        await _function("admin_verdict")(_post("/api/verdict", {"key": key_ref}))
    )
    assert verdict["result"]["key"] == key_ref
    old = [v for v in verdict["result"]["versions"] if not v["newest"]]
    assert old
    assert all(v["current"] == 0 for v in old)

    # HTTP: the newest version cannot be retired; the old one can, dropping previous wraps.
    old_version = old[0]["version"]
    refused = await _operation_result(
        await _function("admin_retire")(_post("/api/retire", {"key": key_ref, "version": version}))
    )
    assert (refused["status"], refused["result"]) == ("failed", None)
    assert refused["error"]["code"] == "RetirementBlocked"
    assert refused["error"]["blockers"]
    retired = await _operation_result(
        await _function("admin_retire")(_post("/api/retire", {"key": f"{key_ref}/{old_version}"}))
    )
    assert retired["status"] == "succeeded", retired.get("error")
    assert retired["result"]["previous_wraps_dropped"] == DEK_COUNT
    assert retired["progress"]["previous_wraps_dropped"] == DEK_COUNT

    # HTTP: a plain request for the ended job queues nothing new to do; "restart" marks it.
    again = await _function("admin_rewrap")(_post("/api/rewrap", {"key": key_ref}))
    assert again.status_code == 202
    assert json.loads(again.get_body())["restarted"] == []
    restart = await _function("admin_rewrap")(
        _post("/api/rewrap", {"key": key_ref, "restart": True})
    )
    assert restart.status_code == 202
    kek_job = rewrap_job_id(key_ref, version, f"table:{stack.kek_table}")
    assert sorted(json.loads(restart.get_body())["restarted"]) == sorted([message.job_id, kek_job])
    await store.close()
    await call(vault_keys.close)


async def _operation_result(accepted: func.HttpResponse) -> dict[str, Any]:
    """The operation a ``202`` started, polled through ``GET /api/operations/<id>`` (the
    local host's queue worker runs it) until it ends."""
    assert accepted.status_code == 202, accepted.get_body()
    body = json.loads(accepted.get_body())
    operation_id = body["operation_id"]
    assert accepted.headers["Location"] == body["status_url"] == f"/api/operations/{operation_id}"
    assert body["status"] == "accepted"
    for _ in range(600):
        polled = await _function("admin_operation")(
            func.HttpRequest(
                method="GET",
                url=body["status_url"],
                body=b"",
                route_params={"operation_id": operation_id},
                headers=operator_auth(),
            )
        )
        assert polled.status_code == 200
        found: dict[str, Any] = json.loads(polled.get_body())
        if found["status"] in {"succeeded", "failed"}:
            assert "Retry-After" not in polled.headers
            return found
        assert polled.headers["Retry-After"] == "2"
        await asyncio.sleep(0.05)
    raise AssertionError(f"operation {operation_id} did not end")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "BadRequest"),
        (b"{}", 400, "BadRequest"),
        (
            json.dumps({"key": "https://evil.vault.azure.net/keys/k"}).encode(),
            403,
            "VaultNotAllowed",
        ),
        (json.dumps({"key": "http://x/keys/k"}).encode(), 400, "BadRequest"),
        (json.dumps({"key": "k", "dry_run": "yes"}).encode(), 400, "BadRequest"),
        (json.dumps({"key": "k", "restart": "yes"}).encode(), 400, "BadRequest"),
        (json.dumps({"key": "k", "restart": True, "dry_run": True}).encode(), 400, "BadRequest"),
    ],
)
async def test_admin_rewrap_errors_are_clear_json(
    stack: Stack, body: bytes, status: int, code: str
) -> None:
    request = func.HttpRequest(method="POST", url="/api/rewrap", body=body, headers=operator_auth())
    response = await _function("admin_rewrap")(request)
    assert response.status_code == status
    assert json.loads(response.get_body())["error"]["code"] == code


async def test_sweep_starts_the_job_a_missed_rotation_event_should_have(stack: Stack) -> None:
    store, vault_keys, key_ref = await _seed(stack, "missed")
    rotated = await call(stack.key_client.rotate_key, "missed")  # no subscription: no event
    timer = bindings.timer_input(
        past_due=True, last=None, next_=__import__("datetime").datetime.now()
    )
    await _function("sweep")(timer)
    await _wait_for_all_at(store, key_ref, rotated.properties.version)  # the host's worker ran it
    await store.close()
    await call(vault_keys.close)


def _post(url: str, body: dict[str, Any]) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST", url=url, body=json.dumps(body).encode(), headers=operator_auth()
    )


def _long_base64_values(value: Any) -> list[str]:
    """String values that look like encoded key material (long base64/base64url runs)."""
    import re

    if isinstance(value, dict):
        return [hit for item in value.values() for hit in _long_base64_values(item)]
    if isinstance(value, list):
        return [hit for item in value for hit in _long_base64_values(item)]
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9+/_-]{64,}={0,2}", value):
        return [value]
    return []


async def test_concurrent_first_invocations_share_one_context(stack: Stack) -> None:
    import asyncio

    from shared.composition import reset_contexts

    for context in reset_contexts():
        await context.aclose()
    contexts = await asyncio.gather(*(context_for_current_loop() for _ in range(5)))
    assert len({id(c) for c in contexts}) == 1


async def test_near_expiry_rotates_once_when_auto_rotation_is_enabled(
    quiet_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.composition import reset_contexts

    stack = quiet_stack

    app_identity = stack.emulator.identity["object_id"]
    await call(
        stack.emulator.client.set_access_policy,
        stack.vault.name,
        app_identity,
        ["get", "list", "wrapKey", "unwrapKey", "rotate"],
    )
    monkeypatch.setenv("KEYWARD_AUTO_ROTATE_NEAR_EXPIRY", "true")
    for context in reset_contexts():
        await context.aclose()
    key = await call(stack.key_client.create_rsa_key, "expiring", size=2048)

    def near_expiry(event_id: str) -> dict[str, Any]:
        return {
            "id": event_id, "topic": stack.vault.arm_id, "subject": key.name,
            "eventType": "Microsoft.KeyVault.KeyNearExpiry", "eventTime": "2026-11-29T03:00:00Z",
            "data": {"Id": key.id, "VaultName": stack.vault.name, "ObjectType": "Key",
                     "ObjectName": key.name, "Version": key.properties.version,
                     "NBF": None, "EXP": 1893456000},
            "dataVersion": "1", "metadataVersion": "1",
        }  # fmt: skip

    # The quiet stack's host polls no queue, so the follow-ups wait for _run_follow_ups.
    assert await (await context_for_current_loop()).queue._queue.peek_messages() == []
    await _function("on_key_vault_event")(bindings.event_grid_input(near_expiry("ne-1")))
    # The rotation follows the key-dependent evaluation, in the queued follow-up (issue 11).
    assert await _run_follow_ups() == 1
    versions = await call(lambda: list(stack.key_client.list_properties_of_key_versions(key.name)))
    assert len(versions) == 2, "rotated once"
    # A second near-expiry event about the old version (another delivery id) must not rotate
    # again: the key's current version already moved on.
    await _function("on_key_vault_event")(bindings.event_grid_input(near_expiry("ne-2")))
    assert await _run_follow_ups() == 1
    versions = await call(lambda: list(stack.key_client.list_properties_of_key_versions(key.name)))
    assert len(versions) == 2


async def _run_follow_ups() -> int:
    """Take the follow-up messages off keyward's queue and run each through the queue
    trigger, as the Functions host would; shard messages are left for their own tests."""
    import base64

    context = await context_for_current_loop()
    ran = 0
    async for message in context.queue._queue.receive_messages(
        max_messages=32, visibility_timeout=60
    ):
        body = base64.b64decode(message.content).decode()
        if queue_message_kind(body) != "dependents":
            await context.queue._queue.update_message(message, visibility_timeout=0)
            continue
        argument = bindings.queue_input(
            message_id=message.id, body=body, dequeue_count=1, inserted_on=None,
            expires_on=None, next_visible_on=None, pop_receipt="p",
        )  # fmt: skip
        await _function("rewrap_worker")(argument)
        await context.queue._queue.delete_message(message)
        ran += 1
    return ran


async def test_operations_and_status_refuse_bad_input_clearly_and_record_nothing(
    stack: Stack,
) -> None:
    async def get(name: str, **request: Any) -> tuple[int, str]:
        response = await _function(name)(
            func.HttpRequest(method="GET", body=b"", headers=operator_auth(), **request)
        )
        return response.status_code, json.loads(response.get_body())["error"]["code"]

    async def post(name: str, body: dict[str, Any]) -> tuple[int, str]:
        response = await _function(name)(_post(f"/api/{name}", body))
        return response.status_code, json.loads(response.get_body())["error"]["code"]

    context = await context_for_current_loop()

    async def operations_recorded() -> int:
        query = "PartitionKey ge 'op:' and PartitionKey lt 'op;'"
        return len([e async for e in context.state_table.query_entities(query)])

    before = await operations_recorded()
    missing = "0" * 32
    garbage = {"operation_id": "not-an-id"}
    assert await get("admin_operation", url="/x", route_params=garbage) == (400, "BadRequest")
    unknown_id = {"operation_id": missing}
    assert await get("admin_operation", url="/0", route_params=unknown_id) == (
        404, "OperationNotFound")  # fmt: skip
    for limit in ("0", "201", "-1", "many"):
        assert await get("admin_status", url="/api/status", params={"limit": limit}) == (
            400, "BadRequest")  # fmt: skip
    assert await get("admin_status", url="/api/status", params={"continuation": "garbage"}) == (
        400, "BadRequest")  # fmt: skip
    evil = "https://evil.vault.azure.net/keys/k"
    assert await post("admin_verdict", {"key": evil}) == (403, "VaultNotAllowed")
    assert await post("admin_verdict", {}) == (400, "BadRequest")
    unknown = f"{stack.vault.url}/keys/no-such-key"
    assert await post("admin_verdict", {"key": unknown}) == (404, "KeyNotFound")
    assert await post("admin_retire", {"key": f"{stack.vault.url}/keys/k"}) == (400, "BadRequest")
    assert await operations_recorded() == before  # nothing was recorded for any of them


async def test_an_operation_over_real_http_202_location_then_polling_to_the_result(
    stack: Stack,
) -> None:
    """Through the local Functions host's HTTP front door (function key, routes), as a client
    would: ``POST /api/verdict`` -> 202 + ``Location``; GET it (``Retry-After`` while it
    runs) until it has succeeded; the host's queue worker ran it meanwhile."""
    import aiohttp

    store, vault_keys, key_ref = await _seed(stack, "polled")
    headers = stack.admin_headers("operator")
    async with aiohttp.ClientSession(base_url=stack.host.base_url, headers=headers) as http:
        async with http.post("/api/verdict", json={"key": key_ref}) as response:
            assert response.status == 202
            body = await response.json()
            location = response.headers["Location"]
        assert location == body["status_url"] == f"/api/operations/{body['operation_id']}"
        for _ in range(600):
            async with http.get(location) as polled:
                assert polled.status == 200
                found = await polled.json()
                if found["status"] == "succeeded":
                    assert "Retry-After" not in polled.headers
                    break
                assert found["status"] in {"accepted", "running"}
                assert polled.headers["Retry-After"] == "2"
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the verdict did not finish")
        (version,) = found["result"]["versions"]
        assert version["current"] == DEK_COUNT
        async with http.get(f"/api/operations/{'0' * 32}") as missing:
            assert missing.status == 404
        async with http.get("/api/status?limit=1") as status:
            assert status.status == 200
            assert len((await status.json())["jobs"]) <= 1
    await store.close()
    await call(vault_keys.close)
