"""Issue 14, the operator CLI on the deployment's own state, end to end: Azurite, the emulator
and the local Functions host. A rotation the host handles shows the same job, with the same
progress, in ``GET /api/status`` and in ``keyward status --deployment`` (also mid-run: a
slice that ends after its first page leaves a running job that nothing moves until the next
slice); ``keyward rewrap --deployment`` queues a job the host's worker runs; ``keyward
retirement --deployment`` gives the verdict ``POST /api/verdict`` gives; ``retire`` retires.

The CLI reaches the deployment with an operator's own credential: a principal with nothing
but ``get`` and ``list`` on the vault (and the storage the Function App uses), or the
production ``DefaultAzureCredential`` where the settings come from ``--settings FILE``."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from azure.storage.queue.aio import QueueClient
from rich.console import Console

from devtools.emulator.credential import AsyncEmulatorCredential
from shared.cli import main
from shared.composition import AppContext
from shared.settings import Settings
from tests.e2e.conftest import Stack, call
from tests.e2e.test_rotation_flow import DEK_COUNT, _seed, _subscribe, _wait_for_all_at

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

#: What an operator needs on the vault for the CLI's deployment mode: read the key's versions.
OPERATOR_KEY_PERMISSIONS = ["get", "list"]


async def _admin(
    stack: Stack, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """One admin API call to the local host with an operator's Entra ID token (the emulator's
    tenant); every admin API call of this module goes through here."""
    headers = stack.admin_headers()
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, f"{stack.host.base_url}{path}", json=body, headers=headers) as r,
    ):
        return r.status, await r.json()


async def _api_operation(stack: Stack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST an operation, then poll ``GET /api/operations/<id>`` until it ends."""
    status, accepted = await _admin(stack, "POST", path, body)
    assert status == 202, accepted
    for _ in range(600):
        status, found = await _admin(stack, "GET", accepted["status_url"])
        assert status == 200, found
        if found["status"] in ("succeeded", "failed"):
            return dict(found)
        await asyncio.sleep(0.1)
    raise AssertionError("the operation did not end")


async def _operator(stack: Stack) -> Any:
    """An opener of the deployment's context on a new operator principal's credential (read
    access to the vault's keys only); returns (opener, operator object id)."""
    object_id = await call(stack.vault.principal, keys=OPERATOR_KEY_PERMISSIONS)

    async def opener() -> AppContext:
        return await AppContext.build(
            Settings.from_env(), credential=AsyncEmulatorCredential(object_id)
        )

    return opener, object_id


def _cli(*argv: str, opener: Any = None) -> tuple[int, str]:
    """The CLI as an operator runs it (its own event loop: call through ``asyncio.to_thread``)."""
    out = io.StringIO()
    code = main(list(argv), Console(file=out, width=400, color_system=None), open_context=opener)
    return code, out.getvalue()


async def _cli_json(*argv: str, opener: Any = None) -> tuple[int, Any]:
    code, text = await asyncio.to_thread(_cli, *argv, "--json", opener=opener)
    return code, json.loads(text)


def _settings_file(stack: Stack, directory: Path) -> Path:
    """The Function App's settings as ``func azure functionapp fetch-app-settings`` writes
    them (the production opener reads them; its credential is DefaultAzureCredential)."""
    path = directory / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": stack.settings}))
    return path


async def _job_of(stack: Stack, job_id: str) -> dict[str, Any]:
    status, page = await _admin(stack, "GET", "/api/status")
    assert status == 200, page
    (job,) = [job for job in page["jobs"] if job["job_id"] == job_id]
    return dict(job)


async def _until_ended(stack: Stack, key_ref: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, page = await _admin(stack, "GET", "/api/status")
        jobs = [job for job in page["jobs"] if job["key"] == key_ref]
        ended = [j for j in jobs if j["status"] != "running" and not j["restart_requested"]]
        if len(ended) == len(page["shards"]):  # a job per shard (the KEK table's too)
            return dict(page)
        await asyncio.sleep(0.2)
    raise AssertionError(f"the jobs of {key_ref} did not end")


async def test_a_rotation_the_host_handled_shows_the_same_job_and_verdict_in_the_api_and_cli(
    stack: Stack, tmp_path: Path
) -> None:
    store, vault_keys, key_ref = await _seed(stack, "invoices")
    await _subscribe(stack)
    rotated = await call(stack.key_client.rotate_key, "invoices")
    await _wait_for_all_at(store, key_ref, rotated.properties.version)
    await _until_ended(stack, key_ref)
    settings = str(_settings_file(stack, tmp_path))

    # The same page: the job (id, shard, status, counts) and everything beside it.
    status, api_page = await _admin(stack, "GET", "/api/status")
    assert status == 200
    code, cli_page = await _cli_json("status", "--settings", settings)
    assert code == 0
    assert cli_page == api_page
    shard = f"table:{stack.dek_table}"
    (job,) = [job for job in api_page["jobs"] if (job["key"], job["shard"]) == (key_ref, shard)]
    assert (job["status"], job["scanned"], job["rewrapped"]) == ("completed", DEK_COUNT, DEK_COUNT)
    code, one = await _cli_json("status", "--settings", settings, "--job", job["job_id"])
    assert (code, one) == (0, job)
    code, text = await asyncio.to_thread(_cli, "status", "--settings", settings)
    assert code == 0
    assert job["job_id"] in text
    assert "completed" in text

    # The same verdict as POST /api/verdict, from the same operation kind.
    opener, _ = await _operator(stack)
    api = await _api_operation(stack, "/api/verdict", {"key": key_ref})
    assert api["status"] == "succeeded", api
    target = ("--vault", stack.vault.name, "--key", "invoices", "--poll", "0.1")
    code, verdict = await _cli_json("retirement", "--deployment", *target, opener=opener)
    assert code == 0
    assert verdict == api["result"]
    old = next(v for v in verdict["versions"] if not v["newest"])
    # Only the previous wraps the rewrap kept under it (retire drops them: the next test).
    assert [b["kind"] for b in old["blocker_kinds"]] == ["previous_wraps"]
    code, text = await asyncio.to_thread(_cli, "retirement", "--deployment", *target,
                                         opener=opener)  # fmt: skip
    assert code == 0
    assert f"{old['version']}" in text
    assert "(newest)" in text
    await store.close()
    await call(vault_keys.close)


async def test_cli_rewrap_queues_a_job_the_hosts_worker_runs_and_retire_retires(
    stack: Stack,
) -> None:
    store, vault_keys, _ = await _seed(stack, "receipts")
    (old_version,) = await _versions(stack, "receipts")
    rotated = await call(stack.key_client.rotate_key, "receipts")  # no Event Grid: the CLI
    new_version = rotated.properties.version
    opener, operator = await _operator(stack)
    target = ("--vault", stack.vault.name, "--key", "receipts", "--poll", "0.1")

    code, dry = await _cli_json("rewrap", "--deployment", *target, "--dry-run", opener=opener)
    assert code == 0
    (deks,) = [shard for shard in dry["shards"] if shard["shard"] == _dek_shard(stack)]
    assert deks["would_rewrap"] == {old_version: DEK_COUNT}

    code, started = await _cli_json("rewrap", "--deployment", *target, "--wait", opener=opener)
    assert code == 0
    assert started["target_version"] == new_version
    assert len(started["finished"]) == len(started["jobs"]) == len(dry["shards"])
    for queued, finished in zip(started["jobs"], started["finished"], strict=True):
        assert (finished["job_id"], finished["status"]) == (queued["job_id"], "completed")
        assert await _job_of(stack, queued["job_id"]) == finished
    (rewrapped,) = [job for job in started["finished"] if job["shard"] == _dek_shard(stack)]
    assert rewrapped["rewrapped"] == DEK_COUNT
    rewrap_audit = await _audited(stack, "rewrap", f"{stack.vault.url}/keys/receipts")
    assert rewrap_audit["caller"]["object_id"] == operator
    assert rewrap_audit["caller"]["via"] == "cli"
    assert any(r.function == "rewrap_worker" and r.ok for r in stack.host.invocations)

    # Retire the old version through the retire operation; the verdict then says so.
    code, retired = await _cli_json("retire", "--deployment", *target, "--version", old_version,
                                    opener=opener)  # fmt: skip
    assert code == 0, retired
    assert (retired["status"], retired["version"]) == ("retired", old_version)
    audit = await _audited(stack, "retire", f"{stack.vault.url}/keys/receipts")
    code, operation = await _cli_json("status", "--deployment", "--operation",
                                      audit["operation_id"], opener=opener)  # fmt: skip
    assert (code, operation["kind"], operation["status"]) == (0, "retire", "succeeded")
    assert operation["caller"] == audit["caller"]
    assert (operation["caller"]["object_id"], operation["caller"]["via"]) == (operator, "cli")
    code, verdict = await _cli_json("retirement", "--deployment", *target, opener=opener)
    assert code == 0
    (entry,) = [v for v in verdict["versions"] if v["version"] == old_version]
    assert entry["retired"] is True
    await store.close()
    await call(vault_keys.close)


async def _audited(stack: Stack, action: str, key_ref: str) -> dict[str, Any]:
    """The newest audit row of ``action`` on ``key_ref`` the status page shows."""
    _, page = await _admin(stack, "GET", "/api/status")
    found = [e for e in page["audit"] if e["action"] == action and key_ref in e["target"]]
    assert found, page["audit"]
    return dict(found[0])


def _dek_shard(stack: Stack) -> str:
    """The DEK table's shard (the KEK table is a shard too: a job each)."""
    return f"table:{stack.dek_table}"


async def _versions(stack: Stack, name: str) -> list[str]:
    listed = await call(lambda: list(stack.key_client.list_properties_of_key_versions(name)))
    return [str(p.version) for p in listed]


async def _run_messages_until(stack: Stack, job_id: str) -> None:
    """Take messages off keyward's queue and run each in the host's queue trigger (through
    the host's own admin endpoint), as a poller would, until one of ``job_id`` has run (the
    quiet stack polls no queue, so nothing else takes them)."""
    queue = QueueClient.from_connection_string(
        stack.azurite.connection_string, stack.settings["KEYWARD_JOB_QUEUE"]
    )
    async with queue, aiohttp.ClientSession() as session:
        for _ in range(200):
            pages = queue.receive_messages(max_messages=1, visibility_timeout=600)
            received = [m async for m in pages]
            if not received:
                await asyncio.sleep(0.1)
                continue
            (message,) = received
            body = base64.b64decode(message.content).decode()
            async with session.post(
                f"{stack.host.base_url}/admin/functions/rewrap_worker",
                json={"input": body},
                headers={"x-functions-key": stack.host.keys.master},
            ) as answer:
                assert answer.status == 202, await answer.text()
            await queue.delete_message(message)
            if json.loads(body).get("job") == job_id:
                return
    raise AssertionError(f"no message of job {job_id} on the queue")


@pytest.mark.slow
async def test_mid_run_the_api_and_the_cli_show_the_same_progress(
    quiet_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice ends after its first page (one unwrap at a time, each slowed so the page
    outlasts the 10 s slice): the job is running, 100 of its 120 DEKs decided, and nothing
    moves it until its continuation runs. Both views say exactly that, then the same end."""
    stack = quiet_stack
    monkeypatch.setenv("KEYWARD_REWRAP_CONCURRENCY", "1")
    store, vault_keys, _ = await _seed(stack, "ledgers")
    await call(stack.key_client.rotate_key, "ledgers")
    opener, _ = await _operator(stack)
    code, started = await _cli_json("rewrap", "--deployment", "--vault", stack.vault.name,
                                    "--key", "ledgers", opener=opener)  # fmt: skip
    assert code == 0
    (queued,) = [job for job in started["jobs"] if job["shard"] == _dek_shard(stack)]
    await call(stack.emulator.client.set_faults, stack.vault.name, fixed_ms=110,
               ops="unwrapkey")  # fmt: skip
    try:
        await _run_messages_until(stack, queued["job_id"])
    finally:
        await call(stack.emulator.client.set_faults, stack.vault.name, fixed_ms=0, ops="")
    for expected in ("running", "completed"):
        api_job = await _job_of(stack, queued["job_id"])
        code, cli_page = await _cli_json("status", "--deployment", opener=opener)
        assert code == 0
        _, api_page = await _admin(stack, "GET", "/api/status")
        assert cli_page == api_page
        code, cli_job = await _cli_json("status", "--deployment", "--job", queued["job_id"],
                                        opener=opener)  # fmt: skip
        assert cli_job == api_job
        assert api_job["status"] == expected
        if expected == "running":
            assert 0 < api_job["scanned"] < DEK_COUNT
            await _run_messages_until(stack, queued["job_id"])  # the slice's continuation
        else:
            assert api_job["rewrapped"] == DEK_COUNT
    await store.close()
    await call(vault_keys.close)
