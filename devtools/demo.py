"""``make demo``: keyward's main job end to end, on embedded defaults, as a story.

It starts Azurite (Azure Storage) and keyward's local Azure emulator (Key Vault, ARM, Event
Grid) as subprocesses, runs ``function_app.app`` in the local Functions host, and then:

1. creates a vault and a key, 1,000 envelope-encrypted records (DEKs in Table storage),
   100 client-side encrypted blobs, and Face accounts using the key;
2. connects the vault (``keyward connect-vault``: Event Grid system topic, event
   subscriptions, keyward's access; then ``keyward doctor``), rotates the key, and shows
   the rewrap run to completion through Event Grid, the queue and the worker;
3. reads the retirement report (``POST /api/verdict``, 202, polled), retires and disables
   the old version (``POST /api/retire``, likewise), and shows that every record and
   every blob still decrypts (azure-storage-blob itself decrypts the blobs);
4. disables the current key and shows the revocation sweep (the ``dependents_sweep`` timer)
   flagging the Face accounts;
5. writes the same records through the application API (``from keyward import
   open_envelope``) into a direct-mode store and a hierarchy-mode store, rotates the key once
   for each through the same pipeline, the vault at Key Vault's RSA-2048 budget with 20 ms
   latency, and shows vault calls and time per rotation side by side;
7. (issue 15) watches storage accounts too: one pinned to the old version of another key
   blocks "safe to disable" in the retirement report until its owner re-points it.

Everything the app does, it does with its production code: DefaultAzureCredential (the
emulator serves the App Service managed identity endpoint), the real SDK clients over HTTPS
with the emulator's CA, the real ``azure.functions`` binding converters.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from azure.keyvault.keys import KeyClient
from azure.storage.blob import BlobServiceClient
from rich.console import Console
from rich.table import Table

from devtools.azurite import AzuriteInfo, run_azurite
from devtools.emulator.arm_client import ArmControl, cmk_encryption
from devtools.emulator.credential import EmulatorCredential
from devtools.emulator.entra import admin_headers, admin_settings
from devtools.emulator.eventgrid_client import EventGridControl
from devtools.emulator.process import RunningEmulator, start_emulator, stop_emulator
from shared.settings import SPEC_BY_NAME

ROOT = Path(__file__).resolve().parents[1]
VAULT = "contoso-kv"
KEY = "orders-kek"
RECORDS = 1000
BLOBS = 100
CONTAINER = "invoices"


def _app_default(name: str) -> str:
    """The app's own default for setting ``name`` (``SPECS``), so the demo repeats none."""
    default = SPEC_BY_NAME[name].default
    assert default is not None, name
    return default


DEK_TABLE = _app_default("KEYWARD_DEK_TABLE")
#: Set explicitly all the same: the queue trigger resolves ``%KEYWARD_JOB_QUEUE%``.
JOB_QUEUE = _app_default("KEYWARD_JOB_QUEUE")
FLAG_TOPIC = "keyward-flags"
OPERATOR_KEY_PERMISSIONS = [
    "get", "list", "create", "update", "delete", "rotate", "wrapKey", "unwrapKey",
    "encrypt", "decrypt", "getrotationpolicy", "setrotationpolicy",
]  # fmt: skip
APP_KEY_PERMISSIONS = ["get", "list", "wrapKey", "unwrapKey"]
#: The Function App connect-vault subscribes (the emulator maps it to the local host).
DEMO_SITE = "keyward-demo"
DEMO_FUNCTION_APP = (
    "/subscriptions/00000000-0000-0000-0000-00000000c0de/resourceGroups/keyward-rg"
    f"/providers/Microsoft.Web/sites/{DEMO_SITE}"
)

console = Console(highlight=False, width=100)


def say(text: str) -> None:
    console.print(text)


def act(number: int, title: str) -> None:
    console.print()
    console.rule(f"[bold]{number}. {title}")


@dataclass
class World:
    azurite: AzuriteInfo
    emulator: RunningEmulator
    vault_url: str = ""
    vault_arm_id: str = ""
    operator: str = ""
    settings: dict[str, str] = field(default_factory=dict)
    key_client: Any = None
    versions: list[str] = field(default_factory=list)
    face: Any = None


async def off_loop(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Blocking SDK and control calls run off the loop the local host serves on."""
    return await asyncio.to_thread(function, *args, **kwargs)


# ----------------------------------------------------------------------------- act 1
async def create_world(world: World) -> None:
    act(1, "A vault, a key, and data that depends on it")
    client = world.emulator.client
    vault = await off_loop(client.create_vault, VAULT, purge_protection=True)
    world.vault_url, world.vault_arm_id = vault["url"], vault["arm_id"]
    operator = await off_loop(client.create_principal, display_name="security-operator")
    world.operator = str(operator["object_id"])
    await off_loop(client.set_access_policy, VAULT, world.operator, OPERATOR_KEY_PERMISSIONS)
    app_identity = world.emulator.identity["object_id"]
    await off_loop(client.set_access_policy, VAULT, app_identity, APP_KEY_PERMISSIONS)
    say(f"Vault [cyan]{VAULT}[/] at {world.vault_url} (soft delete and purge protection on).")
    say("keyward's managed identity may get, list, wrapKey and unwrapKey: nothing more.")
    world.key_client = KeyClient(
        world.vault_url,
        EmulatorCredential(world.operator),
        connection_verify=world.emulator.ca_path,
        verify_challenge_resource=False,
    )
    key = await off_loop(world.key_client.create_rsa_key, KEY, size=2048)
    world.versions.append(key.properties.version)
    say(f"Key [cyan]{KEY}[/] (RSA-2048), version {short(key.properties.version)}.")
    await seed_records(world, key.id)
    await seed_blobs(world, key.id)
    await seed_face(world, key.properties.version)


def short(version: str | None) -> str:
    return (version or "?")[:8]


def _vault_wrapper(world: World, key_id: str) -> Any:
    from devtools.keyvault_sync import KeyVaultAdapter
    from shared.crypto import VaultAllowList

    allow = VaultAllowList.parse(f"{VAULT}={world.vault_url}")
    adapter = KeyVaultAdapter(
        EmulatorCredential(world.operator), allow, ca_bundle=world.emulator.ca_path
    )
    return adapter, adapter.wrapper(key_id)


async def seed_records(world: World, key_id: str) -> None:
    from devtools.seed import seed_deks
    from shared.adapters.dek_table import TableDekStore

    store = TableDekStore.from_connection_string(world.azurite.connection_string, DEK_TABLE)
    await store.create_table()
    adapter, wrapper = await off_loop(_vault_wrapper, world, key_id)
    started = time.perf_counter()
    await seed_deks(store, wrapper, RECORDS, partitions=8, plaintext=record_text)
    await store.close()
    await off_loop(adapter.close)
    say(
        f"{RECORDS:,} customer records envelope-encrypted (AES-256-GCM), each under its own "
        f"DEK wrapped by {short(key_id.rsplit('/', 1)[1])} in table [cyan]{DEK_TABLE}[/] "
        f"({time.perf_counter() - started:.1f} s)."
    )


def record_text(index: int) -> bytes:
    return f"order #{index:05d}: 3 x widgets, ship to Rotterdam".encode()


def blob_text(index: int) -> bytes:
    return (f"invoice {index:03d} ".encode() * 400)[: 4096 + index]


async def seed_blobs(world: World, key_id: str) -> None:
    from devtools.blob_kek import BlobKeyEncryptionKey

    adapter, wrapper = await off_loop(_vault_wrapper, world, key_id)

    def upload() -> None:
        service = BlobServiceClient.from_connection_string(world.azurite.connection_string)
        container = service.get_container_client(CONTAINER)
        container.create_container()
        kek = BlobKeyEncryptionKey(wrapper)
        for index in range(BLOBS):
            blob = container.get_blob_client(f"invoice-{index:03d}.pdf")
            blob.require_encryption = True
            blob.key_encryption_key = kek
            blob.encryption_version = "2.0"
            blob.upload_blob(blob_text(index), metadata={"customer": f"c{index % 7}"})

    await off_loop(upload)
    await off_loop(adapter.close)
    say(
        f"{BLOBS} invoices uploaded with azure-storage-blob client-side encryption v2 to "
        f"container [cyan]{CONTAINER}[/]; their content keys are wrapped by the same key."
    )


async def seed_face(world: World, version: str) -> None:
    arm = ArmControl(world.emulator.url, world.emulator.ca_path)
    await off_loop(arm.set_lro, seconds=0.0, retry_after="0.05")
    accounts = []
    for name, pinned in (("face-checkin-eu", version), ("face-kiosk-us", None)):
        account = await off_loop(
            arm.seed_account,
            name,
            identity="SystemAssigned",
            encryption=cmk_encryption(world.vault_url + "/", KEY, pinned or ""),
        )
        principal = account["identity"]["principalId"]
        await off_loop(
            world.emulator.client.set_access_policy,
            VAULT,
            principal,
            ["get", "wrapKey", "unwrapKey"],
        )
        accounts.append((name, pinned))
    world.face = arm
    for name, pinned in accounts:
        pin = f"pinned to {short(pinned)}" if pinned else "following the latest version"
        say(f"Face account [cyan]{name}[/] (E0, customer-managed key {KEY}, {pin}).")


# ----------------------------------------------------------------------------- act 2
async def start_app(world: World) -> Any:
    from devtools.localhost.host import LocalFunctionsHost
    from shared.composition import reset_contexts

    act(2, "keyward is deployed and subscribed to the vault's events")
    subscription = "00000000-0000-0000-0000-00000000c0de"
    grid = EventGridControl(world.emulator.url, world.emulator.ca_path)
    topic = await off_loop(grid.create_topic, FLAG_TOPIC, input_schema="CloudEventSchemaV1_0")
    world.settings = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": world.azurite.connection_string,
        "KEYWARD_VAULT_ALLOWLIST": f"{VAULT}={world.vault_url}",
        "KEYWARD_DEK_TABLE": DEK_TABLE,
        "KEYWARD_BLOB_CONTAINERS": CONTAINER,
        "KEYWARD_JOB_QUEUE": JOB_QUEUE,
        "KEYWARD_SWEEP_SCHEDULE": "0 0 0 1 1 *",
        "KEYWARD_DEPENDENTS_SWEEP_SCHEDULE": "30 0 0 1 1 *",
        "KEYWARD_RETENTION_SCHEDULE": "0 30 0 1 1 *",
        "KEYWARD_CA_BUNDLE": world.emulator.ca_path,
        "KEYWARD_ARM_ENDPOINT": world.emulator.url,
        "KEYWARD_FACE_SUBSCRIPTIONS": subscription if world.face else "",
        "KEYWARD_REWRAP_SLICE_SECONDS": "20",
        "KEYWARD_FACE_REPOINT": "true" if world.face else "",
        "KEYWARD_EVENTGRID_TOPIC_ENDPOINT": topic["endpoint"] if world.face else "",
        # Development vaults only: the demo retires right after its rotation (act 4 says so).
        "KEYWARD_SUPERSEDED_WAIT_SECONDS": "0",
        **{k: v for k, v in world.emulator.identity.items() if k.startswith("IDENTITY_")},
        # The admin API trusts the emulator's Entra tenant; the demo calls it as an operator.
        **admin_settings(world.emulator.url),
    }
    world.settings = {k: v for k, v in world.settings.items() if v}
    ADMIN_HEADERS.update(
        await off_loop(
            admin_headers, world.emulator.client, "operator", name="demo-operator@contoso.example"
        )
    )
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        os.environ.pop(name, None)
    os.environ.update(world.settings)
    reset_contexts()
    sys.path.insert(0, str(ROOT))
    from function_app import app

    host_json = json.loads((ROOT / "host.json").read_text())
    host = LocalFunctionsHost(app, settings=world.settings, host_json=host_json, run_timers=False)
    await host.start()
    names = ", ".join(sorted(host.functions))
    say(f"Local Functions host on {host.base_url} with: {names}.")
    await connect_vault(world, host)
    return host


async def connect_vault(world: World, host: Any) -> None:
    """``keyward connect-vault`` through ARM (the emulator's Event Grid delivers to the local
    host as Azure delivers to the Function App), then ``keyward doctor`` once."""
    from devtools.emulator.arm_eventgrid import EventGridArmControl
    from shared.cli import main
    from shared.composition import context_for_current_loop

    arm = EventGridArmControl(world.emulator.url, world.emulator.ca_path)
    await off_loop(arm.register_site, DEMO_SITE, host.base_url, host.keys.eventgrid)
    lro = ArmControl(world.emulator.url, world.emulator.ca_path)
    await off_loop(lro.set_lro, seconds=0.0, retry_after="0.05")
    flags = [
        "--function-app",
        DEMO_FUNCTION_APP,
        "--principal-id",
        world.emulator.identity["object_id"],
    ]
    say(f"$ keyward connect-vault --vault {VAULT} --function-app .../sites/{DEMO_SITE} ...")
    if await off_loop(main, ["connect-vault", "--vault", VAULT, *flags], console) != 0:
        raise SystemExit("connect-vault failed")
    await context_for_current_loop()  # the app's first start creates its state table and queue
    out = io.StringIO()
    code = await off_loop(main, ["doctor", "--json", *flags], Console(file=out, width=200))
    checks = json.loads(out.getvalue())["checks"]
    if code != 0:
        raise SystemExit(f"keyward doctor found something wrong: {checks}")
    say(
        f"$ keyward doctor ...: {len(checks)} checks (settings, storage names, access, event "
        "subscriptions and their filters, retry policy), all right."
    )


#: ``Authorization: Bearer`` with the demo operator's token (the emulator's tenant signs it).
ADMIN_HEADERS: dict[str, str] = {}


async def status(host: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        response = await session.get(f"{host.base_url}/api/status", headers=ADMIN_HEADERS)
        body: dict[str, Any] = await response.json()
        return body


async def operation(host: Any, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    """POST whole-store work (202 + ``Location``), then poll the status URL until the
    operation ends: the asynchronous request-reply pattern the admin API follows."""
    async with aiohttp.ClientSession(base_url=host.base_url, headers=ADMIN_HEADERS) as session:
        async with session.post(path, json=payload) as response:
            if response.status != 202:
                raise SystemExit(f"{path} refused: {await response.json()}")
            location = response.headers["Location"]
        while True:
            async with session.get(location) as polled:
                found: dict[str, Any] = await polled.json()
                if found["status"] in {"succeeded", "failed"}:
                    return found
                wait = float(polled.headers.get("Retry-After", "1"))
            await asyncio.sleep(min(wait, 0.5))  # a demo polls faster than it is told


async def verdict(world: World, host: Any) -> dict[str, Any]:
    """The key's retirement verdict (``POST /api/verdict``, polled to its result)."""
    done = await operation(host, "/api/verdict", {"key": f"{world.vault_url}/keys/{KEY}"})
    if done["status"] != "succeeded":
        raise SystemExit(f"verdict failed: {done['error']}")
    result: dict[str, Any] = done["result"]
    return result


# ----------------------------------------------------------------------------- act 3
async def rotate(world: World, host: Any) -> None:
    from shared.composition import context_for_current_loop

    act(3, "The key rotates")
    # Every shard of the app's registry gets a job: the DEK table, its KEK table, the blobs.
    shards = len((await context_for_current_loop()).shards)
    rotated = await off_loop(world.key_client.rotate_key, KEY)
    world.versions.append(rotated.properties.version)
    say(
        f"Key Vault rotated {KEY}: {short(world.versions[0])} -> {short(world.versions[1])}. "
        "Event Grid delivers KeyNewVersionCreated to keyward..."
    )
    started = time.perf_counter()
    last = ""
    while time.perf_counter() - started < 180:
        body = await status(host)
        jobs = [j for j in body["jobs"] if j["target_version"] == world.versions[1]]
        line = "  " + "   ".join(
            f"{j['shard']}: {j['rewrapped']:,} rewrapped, {j['status']}" for j in jobs
        )
        if jobs and line != last:
            say(line)
            last = line
        # The Face follow-up (re-point, evaluate, flag) is a message on the same queue: done
        # when no account is pinned to the old version any more (asked once the jobs ended:
        # the verdict counts every store, an operation of its own).
        ended = len(jobs) == shards and all(j["status"] == "completed" for j in jobs)
        if ended and not _pinned_to(await verdict(world, host), world.versions[0]):
            break
        await asyncio.sleep(0.5)
    else:
        raise SystemExit("the rewrap did not complete in 3 minutes")
    elapsed = time.perf_counter() - started
    total = sum(j["rewrapped"] for j in jobs)
    say(
        f"[green]Rewrap complete[/]: {total:,} DEKs and content keys now wrapped by "
        f"{short(world.versions[1])} in {elapsed:.1f} s; no record or blob content was read."
    )
    say(
        "The Face follow-up (re-point, evaluate, flag) left Event Grid's 30 s: the event "
        "queued it, and the queue worker ran it when it took the message."
    )


def _pinned_to(report: dict[str, Any], version: str) -> set[str]:
    """Ids of the dependent accounts the verdict shows pinned to ``version``."""
    return {p for v in report["versions"] if v["version"] == version for p in v["pinned"]}


# ----------------------------------------------------------------------------- act 4
async def retire(world: World, host: Any) -> None:
    from devtools.seed import open_sealed
    from devtools.seed._deks import seed_layout
    from shared.adapters.dek_table import TableDekStore
    from shared.records import EnvelopeSettings, superseded_wait_seconds

    act(4, "Retire the old version, and prove nothing was lost")
    old = world.versions[0]
    wait = superseded_wait_seconds(EnvelopeSettings().mode_ttl_seconds)
    say(
        f"In Azure keyward answers 'not yet' for a version superseded less than {wait:.0f} s "
        "ago (applications may still land wraps under it); this development vault sets "
        "KEYWARD_SUPERSEDED_WAIT_SECONDS=0 to retire at once."
    )
    report = await verdict(world, host)
    repointed = {p.rsplit("/", 1)[-1] for p in _pinned_to(report, world.versions[1])}
    for name in sorted(repointed):
        say(
            f"Face account [cyan]{name}[/] was pinned to {short(old)}: keyward re-pointed it to "
            f"{short(world.versions[1])} (KEYWARD_FACE_REPOINT=true), as Azure requires."
        )
    retirement_table(report)
    done = await operation(
        host, "/api/retire", {"key": f"{world.vault_url}/keys/{KEY}", "version": old}
    )
    if done["status"] != "succeeded":
        raise SystemExit(f"retire refused: {done['error']}")
    answer = done["result"]
    say(
        f"POST /api/retire (202, polled): version {short(old)} retired; "
        f"{answer['previous_wraps_dropped']:,} previous wraps (kept so data stayed readable "
        "under the old version) dropped."
    )
    retirement_table(await verdict(world, host))
    await off_loop(world.key_client.update_key_properties, KEY, old, enabled=False)
    say(f"Version {short(old)} disabled in Key Vault.")
    adapter, wrapper = await off_loop(
        _vault_wrapper, world, f"{world.vault_url}/keys/{KEY}/{world.versions[1]}"
    )
    store = TableDekStore.from_connection_string(world.azurite.connection_string, DEK_TABLE)
    opened = 0
    for index in range(RECORDS):
        partition, dek_id = seed_layout(index, 8, "")
        details = await store.get(f"{partition}/{dek_id}")
        if details is not None and await off_loop(open_sealed, details, wrapper) == record_text(
            index
        ):
            opened += 1
    await store.close()
    blobs_ok = await off_loop(_read_blobs, world, wrapper)
    await off_loop(adapter.close)
    colour = "green" if opened == RECORDS and blobs_ok == BLOBS else "red"
    say(
        f"[{colour}]{opened:,}/{RECORDS:,} records decrypt[/] (unwrap in the vault under "
        f"{short(world.versions[1])}), and [{colour}]{blobs_ok}/{BLOBS} blobs[/] decrypt "
        "byte-identical through azure-storage-blob with require_encryption=True."
    )
    if colour == "red":
        raise SystemExit("data was lost")


def retirement_table(report: dict[str, Any]) -> None:
    """One key's verdict (the result of a ``POST /api/verdict`` operation)."""
    table = Table("stores", "version", "DEKs", "previous wraps", "pinned", "safe to disable")
    for v in report["versions"]:
        table.add_row(
            f"all {len(report['shards'])}", short(v["version"]), str(v["current"]),
            str(v["previous"]),
            ", ".join(p.rsplit("/", 1)[-1] for p in v["pinned"]) or "-",
            "yes" if v["safe_to_disable"] else ("newest" if v["newest"] else "no"),
        )  # fmt: skip
    console.print(table)


def _name(flag: dict[str, Any]) -> str:
    ident = str(flag.get("name") or flag.get("account_id") or flag.get("id") or "?")
    return ident.rsplit("/", 1)[-1]


def _reasons(flag: dict[str, Any]) -> str:
    codes = []
    for reason in flag.get("reasons", []):
        if isinstance(reason, dict):
            codes.append(str(reason.get("reason") or reason.get("code") or reason))
        elif isinstance(reason, list | tuple) and reason:
            codes.append(str(reason[0]))
        else:
            codes.append(str(reason))
    return ", ".join(codes) or "no findings"


def _read_blobs(world: World, wrapper: Any) -> int:
    from devtools.blob_kek import key_resolver

    service = BlobServiceClient.from_connection_string(world.azurite.connection_string)
    container = service.get_container_client(CONTAINER)
    good = 0
    for index in range(BLOBS):
        blob = container.get_blob_client(f"invoice-{index:03d}.pdf")
        blob.require_encryption = True
        blob.key_resolver_function = key_resolver([wrapper])
        blob.encryption_version = "2.0"
        good += blob.download_blob().readall() == blob_text(index)
    return good


# ----------------------------------------------------------------------------- act 5
async def revoke(world: World, host: Any) -> None:
    act(5, "Someone disables the current key")
    current = world.versions[1]
    await off_loop(world.key_client.update_key_properties, KEY, current, enabled=False)
    say(
        f"Version {short(current)} disabled. Key Vault emits no event for this; "
        "keyward's timer sweep is what notices."
    )
    await run_sweep(host, REVOCATION_SWEEP)
    flags = (await status(host))["face_flags"]
    if not flags:
        say("No Face accounts are configured for this run.")
        return
    table = Table("Face account", "verdict", "reasons")
    for flag in flags:
        table.add_row(_name(flag), str(flag.get("status")), _reasons(flag))
    console.print(table)
    grid = EventGridControl(world.emulator.url, world.emulator.ca_path)
    for event in await off_loop(grid.sunk_events, FLAG_TOPIC):
        body = event.get("event", event)
        subject = str(body.get("subject", "")).rsplit("/", 1)[-1]
        say(f"  event [magenta]{body.get('type')}[/] for {subject}")
    if world.face is not None:
        for account in await off_loop(world.face.accounts):
            tag = (account.get("tags") or {}).get("keyward-cmk-status", "-")
            say(f"  tag keyward-cmk-status={tag} on {account.get('name')}")
    say("Owners see the flag as an event on their topic and as a tag on the account.")
    await off_loop(world.key_client.update_key_properties, KEY, current, enabled=True)
    await off_loop(grid.clear_sunk, FLAG_TOPIC)
    await run_sweep(host, REVOCATION_SWEEP)
    restored = [
        str(e.get("event", e).get("type")) for e in await off_loop(grid.sunk_events, FLAG_TOPIC)
    ]
    statuses = sorted({str(f.get("status")) for f in (await status(host))["face_flags"]})
    say(
        f"Version {short(current)} re-enabled; the next sweep clears the flags "
        f"({', '.join(statuses)}; {len(restored)} x {restored[0] if restored else 'no event'})."
    )


#: The timer that judges key access (Face verdicts), apart from the rewrap reconciliation.
REVOCATION_SWEEP = "dependents_sweep"


async def run_sweep(host: Any, function: str) -> None:
    """Fire the timer ``function`` now, through the host's admin API (as the real host allows)."""
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            f"{host.base_url}/admin/functions/{function}",
            json={"input": ""},
            headers={"x-functions-key": host.keys.master},
        )
        if response.status != 202:
            raise SystemExit(f"{function} failed: {await response.text()}")


# ----------------------------------------------------------------------------- act 6
#: Tenants (partitions) of the side-by-side stores: one intermediate key each in hierarchy mode.
TENANTS = 20
#: Off for the side-by-side rotations, so they count the records' vault calls alone: the
#: invoices' container (its own rewrap) and the Face follow-up (its own vault reads).
ACT_6_OFF = (
    "KEYWARD_BLOB_CONTAINERS", "KEYWARD_FACE_SUBSCRIPTIONS", "KEYWARD_FACE_REPOINT",
    "KEYWARD_EVENTGRID_TOPIC_ENDPOINT",
)  # fmt: skip
#: The side-by-side stores (data table, KEK table) and the mode each is written in.
MODE_STORES = (("direct", "ordersdirect"), ("hierarchy", "ordershier"))


async def compare_modes(world: World, host: Any) -> None:
    """The same records in a direct-mode and a hierarchy-mode store, one rotation each."""
    from devtools.emulator.credential import AsyncEmulatorCredential
    from keyward import open_envelope

    act(6, "Direct and hierarchy mode side by side")
    key_url = f"{world.vault_url}/keys/{KEY}"
    for mode, table in MODE_STORES:
        started = time.perf_counter()
        async with open_envelope(
            key_url, connection_string=world.azurite.connection_string, table=table,
            kek_table=f"{table}keks", mode=mode, credential=AsyncEmulatorCredential(world.operator),
            allow_list=f"{VAULT}={world.vault_url}", ca_bundle=world.emulator.ca_path,
        ) as envelope:  # fmt: skip
            for index in range(RECORDS):
                await envelope.encrypt(f"tenant{index % TENANTS:02d}", f"order{index:05d}",
                                       record_text(index))  # fmt: skip
            wraps = envelope.stats.vault_wraps
        say(
            f"{RECORDS:,} records of {TENANTS} tenants written through [cyan]from keyward import "
            f"open_envelope[/] into [cyan]{table}[/] in {mode} mode: {wraps:,} wraps under the "
            f"vault key ({time.perf_counter() - started:.1f} s)."
        )
    client = world.emulator.client
    await off_loop(client.set_throttle, VAULT, budget=4000, window_seconds=10.0, enabled=True)
    await off_loop(client.set_latency, VAULT, fixed_ms=20.0)
    say("The vault now answers as Key Vault does: 4,000 operations per 10 s, 20 ms each.")
    side_by_side = Table("store", "mode", "records", "rewrapped in the vault", "vault calls",
                         "time")  # fmt: skip
    try:
        for mode, name in MODE_STORES:
            side_by_side.add_row(name, mode, f"{RECORDS:,}", *await rotate_store(world, host, name))
    finally:
        await off_loop(client.set_throttle, VAULT, enabled=False)
        await off_loop(client.set_latency, VAULT, fixed_ms=0.0)
    console.print(side_by_side)
    say(
        "Direct mode pays one vault unwrap per record; hierarchy mode one per tenant's "
        "intermediate key, whatever the number of records (the records are rewrapped by no one: "
        "their DEKs stay wrapped by the tenant keys)."
    )


async def rotate_store(world: World, host: Any, table: str) -> list[str]:
    """Point the Function App at ``table`` (and its KEK table), rotate the key, wait for
    every shard's job; the rotation's vault calls (emulator counters) and time."""
    from shared.composition import context_for_current_loop, reset_contexts

    settings = {k: v for k, v in world.settings.items() if k not in ACT_6_OFF}
    settings |= {"KEYWARD_DEK_TABLE": table, "KEYWARD_KEK_TABLE": f"{table}keks"}
    for name in ACT_6_OFF:
        os.environ.pop(name, None)
    os.environ.update(settings)
    for context in reset_contexts():  # the app's next invocation reads the new settings
        await context.aclose()
    shards = list((await context_for_current_loop()).shards)  # a warm instance
    await off_loop(world.emulator.client.reset_counters, VAULT)
    started = time.perf_counter()
    rotated = await off_loop(world.key_client.rotate_key, KEY)
    rewrapped = await _jobs_done(host, str(rotated.properties.version), shards)
    elapsed = time.perf_counter() - started
    ops = (await off_loop(world.emulator.client.counters, VAULT))["vault"].get("ops", {})
    calls = sum(int(v) for k, v in ops.items() if k != "rotate")
    return [f"{rewrapped:,}", f"{calls:,}", f"{elapsed:.1f} s"]


async def _jobs_done(host: Any, version: str, shards: list[str]) -> int:
    """Wait until every shard's job for ``version`` completed; the keys they rewrapped."""
    deadline = time.perf_counter() + 180
    while time.perf_counter() < deadline:
        jobs = [j for j in (await status(host))["jobs"] if j["target_version"] == version]
        if len(jobs) == len(shards) and all(j["status"] == "completed" for j in jobs):
            return sum(int(j["rewrapped"]) for j in jobs)
        await asyncio.sleep(0.2)
    raise SystemExit("a rotation did not complete in 3 minutes")


# ----------------------------------------------------------------------------- act 7
#: Act 7's key: a key of its own, so the acts before it are not changed by it.
LEDGER_KEY = "ledger-cmk"
#: What act 7 adds to the app's settings (removed again at its end).
STORAGE_SETTINGS = {
    "KEYWARD_DEPENDENT_KINDS": "face,storage",
    "KEYWARD_STORAGE_ACCOUNTS_SUBSCRIPTIONS": "00000000-0000-0000-0000-00000000c0de",
}


async def storage_pins(world: World, host: Any) -> None:
    """A storage account pinned to the old version blocks "safe to disable" until it is
    re-pointed; one following the latest version blocks until Azure Storage moves it.
    Self-contained: its own key, storage accounts and settings (the storage kind watched;
    the settings are removed at the end, for the next context)."""
    from azure.mgmt.storage import StorageManagementClient

    from devtools.emulator.arm_client import management_client_kwargs
    from devtools.emulator.arm_inventory_client import InventoryControl, storage_cmk
    from devtools.emulator.state import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION_ID
    from shared.composition import reset_contexts

    act(7, "A storage account pinned to the old key version")
    os.environ.update(STORAGE_SETTINGS)
    for context in reset_contexts():  # the app's next invocation watches storage accounts
        await context.aclose()
    say("keyward now also watches storage accounts (KEYWARD_DEPENDENT_KINDS=face,storage).")
    client = world.emulator.client
    first = (await off_loop(world.key_client.create_rsa_key, LEDGER_KEY, size=2048)).properties
    control = InventoryControl(world.emulator.url, world.emulator.ca_path)
    for name, version in (("stledgereu", first.version), ("starchiveus", "")):
        account = await off_loop(
            control.seed_storage, name, encryption=storage_cmk(world.vault_url, LEDGER_KEY, version)
        )
        principal = account["identity"]["principalId"]
        await off_loop(client.set_access_policy, VAULT, principal, ["get", "wrapKey", "unwrapKey"])
        pin = f"pinned to {short(version)}" if version else "following the latest version"
        say(f"Storage account [cyan]{name}[/] (StorageV2, key {LEDGER_KEY}, {pin}).")
    rotated = await off_loop(world.key_client.rotate_key, LEDGER_KEY)
    new = str(rotated.properties.version)
    say(f"Key Vault rotated {LEDGER_KEY}: {short(first.version)} -> {short(new)}.")
    key_ref = f"{world.vault_url}/keys/{LEDGER_KEY}"
    try:
        report = await _ledger_verdict(world, host, key_ref)
        storage_table(report)
        old = next(v for v in report["versions"] if v["version"] == first.version)
        if old["safe_to_disable"]:
            raise SystemExit("a pinned storage account did not block the old version")
        say(
            f"Version {short(first.version)} is [red]not safe to disable[/]: [cyan]stledgereu[/] "
            "is pinned to it, and [cyan]starchiveus[/], which follows the latest version, still "
            "uses it (ARM's currentVersionedKeyIdentifier): Azure Storage moves within a day."
        )
        storage = StorageManagementClient(
            EmulatorCredential(world.operator), DEFAULT_SUBSCRIPTION_ID,
            **management_client_kwargs(world.emulator.url, world.emulator.ca_path),
        )  # fmt: skip
        body = {"properties": {"encryption": storage_cmk(world.vault_url, LEDGER_KEY, new)}}
        group = DEFAULT_RESOURCE_GROUP
        await off_loop(storage.storage_accounts.update, group, "stledgereu", body)
        await off_loop(storage.close)
        say(f"The owner re-points [cyan]stledgereu[/] to {short(new)} (azure-mgmt-storage, PATCH).")
        await off_loop(control.move_storage, "starchiveus")
        say(
            f"Azure Storage moves [cyan]starchiveus[/] to {short(new)} by itself (no re-point; "
            "the emulator moves it now instead of within a day)."
        )
        report = await _ledger_verdict(world, host, key_ref)
        storage_table(report)
        old = next(v for v in report["versions"] if v["version"] == first.version)
        if not old["safe_to_disable"]:
            raise SystemExit(f"still blocked after the re-point: {old['blockers']}")
        say(f"[green]Version {short(first.version)} is safe to disable[/] now.")
    finally:
        # The next context reads the settings as they were (contexts are not reset here:
        # the rotation's follow-up may still be running on the current one).
        for name in STORAGE_SETTINGS:
            os.environ.pop(name, None)


async def _ledger_verdict(world: World, host: Any, key_ref: str) -> dict[str, Any]:
    """The key's verdict once its rewrap jobs (started by the rotation's event) ended."""
    deadline = time.perf_counter() + 120
    while True:
        done = await operation(host, "/api/verdict", {"key": key_ref})
        if done["status"] != "succeeded":
            raise SystemExit(f"verdict failed: {done['error']}")
        report: dict[str, Any] = done["result"]
        kinds = {b["kind"] for v in report["versions"] for b in v["blocker_kinds"]}
        if "unfinished_jobs" not in kinds or time.perf_counter() > deadline:
            return report
        await asyncio.sleep(0.5)


def storage_table(report: dict[str, Any]) -> None:
    """Per version: the watched resources pinned to it (kind, name) and the answer."""
    table = Table("version", "resources pinned to it", "safe to disable")
    for v in report["versions"]:
        pinned = (
            ", ".join(
                f"{p['kind']} {p['name']}" + (f" ({p['note']})" if p.get("note") else "")
                for p in v["pinned_resources"]
            )
            or "-"
        )
        answer = "yes" if v["safe_to_disable"] else ("newest" if v["newest"] else "no")
        table.add_row(short(v["version"]), pinned, answer)
    console.print(table)


# ----------------------------------------------------------------------------- main
async def story(azurite: AzuriteInfo, emulator: RunningEmulator) -> None:
    world = World(azurite, emulator)
    telemetry = in_process_telemetry()
    await create_world(world)
    host = await start_app(world)
    try:
        await rotate(world, host)
        await retire(world, host)
        await revoke(world, host)
        await compare_modes(world, host)
        await storage_pins(world, host)
    finally:
        from shared.composition import reset_contexts

        await host.stop()
        for context in reset_contexts():
            await context.aclose()
    act(8, "Summary")
    failures = [r for r in host.invocations if not r.ok]
    by_function: dict[str, int] = {}
    for record in host.invocations:
        by_function[record.function] = by_function.get(record.function, 0) + 1
    say("Function invocations: " + ", ".join(f"{k} x{v}" for k, v in sorted(by_function.items())))
    say(f"Failed invocations: {len(failures)}.")
    telemetry_summary(telemetry)
    say("[bold green]keyward kept every record and blob readable through a rotation.[/]")


# ------------------------------------------------------------------------------ telemetry
def in_process_telemetry() -> Any:
    """Keep the run's OpenTelemetry spans and metrics in memory (docs/telemetry.md), unless
    an Application Insights connection string is set: then the app exports there itself."""
    from shared.settings import TELEMETRY_CONNECTION_SETTING

    if os.environ.get(TELEMETRY_CONNECTION_SETTING):
        return None
    from devtools.localhost.telemetry import in_memory_telemetry

    return in_memory_telemetry()


def telemetry_summary(telemetry: Any) -> None:
    """What the run's telemetry recorded: spans per function, DEKs, vault calls, 429s."""
    if telemetry is None:
        say("Telemetry: exported to Application Insights (its connection string is set).")
        return
    say("Telemetry (OpenTelemetry, collected in process; nothing exported):")
    for line in telemetry.summary().splitlines():
        say(f"  {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    console.rule("[bold]keyward demo")
    with tempfile.TemporaryDirectory(prefix="keyward-demo-") as workdir:
        say("Starting Azurite (Azure Storage) and keyward's local Azure emulator...")
        with run_azurite() as azurite:
            emulator = start_emulator(Path(workdir))
            try:
                asyncio.run(story(azurite, emulator))
            finally:
                stop_emulator(emulator)
    return 0


if __name__ == "__main__":
    sys.exit(main())
