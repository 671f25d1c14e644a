"""``python -m bench inventory``: a sweep of every key-dependent kind at tenant scale, with the
Resource Graph inventory beside the per-subscription listing (issue 15).

The world (one emulator and one Azurite, started here): 3 subscriptions, one vault with one
key, and ``resources`` resources of mixed kinds spread evenly over the subscriptions (Face,
OpenAI, SpeechServices accounts and storage accounts, a quarter each), each with its own
system-assigned identity granted get/wrapKey/unwrapKey by access policy, half of them pinned to
the key's first version and half following its latest. keyward watches the three kinds
(``face``, ``cognitive``, ``storage``) in the three subscriptions.

Measured per run, for each mode in turn (``resource_graph`` then ``per_subscription``, so a
drift in machine load hits both): one whole sweep (``AllDependents.sweep``: inventory of every
kind, then every resource judged), its wall time, the ARM requests the emulator counted
(inventory requests apart) and whether every resource was found and judged. Pacing is
``KEYWARD_ARM_REQUESTS_PER_SECOND=1000`` for the comparison (the inventory figure does not
depend on it); one extra run in Resource Graph mode at the default pace (20/s) shows what the
pace costs in wall time. The Markdown section goes to ``bench/out/inventory-<time>.md`` and,
with ``--write``, into docs/benchmarks.md between its inventory markers.

:func:`seed_mixed` is also what ``tests/inventory/test_sweep_at_scale.py`` seeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from azure.data.tables.aio import TableClient

from bench._report import Section, report_figure
from devtools.azurite import run_azurite
from devtools.emulator.arm_client import cmk_encryption
from devtools.emulator.arm_inventory_client import INVENTORY_ROUTES, InventoryControl, storage_cmk
from devtools.emulator.auth import ALL_KEY_PERMISSIONS
from devtools.emulator.client import EmulatorClient
from devtools.emulator.credential import AsyncEmulatorCredential
from devtools.emulator.process import start_emulator, stop_emulator
from devtools.emulator.state import DEFAULT_SUBSCRIPTION_ID
from shared.composition._clients import arm_clients, keyvault_adapter
from shared.composition._dependents import SharedClients, build_dependents
from shared.settings import Settings

BEGIN = "<!-- bench:inventory:begin (python -m bench inventory --write) -->"
END = "<!-- bench:inventory:end -->"
SECTION = Section("inventory", BEGIN, END, "Issue 15: key-dependent inventory at scale")
#: The mixed kinds, in seeding order (a quarter each).
KINDS = ("Face", "OpenAI", "SpeechServices", "storage")
CMK_PERMISSIONS = ["get", "wrapKey", "unwrapKey"]
MODES = ("resource_graph", "per_subscription")


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def seed_mixed(
    client: EmulatorClient,
    control: InventoryControl,
    *,
    vault: str,
    vault_url: str,
    key: str,
    pinned_version: str,
    subscriptions: Sequence[str],
    group: str,
    count: int,
) -> list[dict[str, Any]]:
    """``count`` resources of :data:`KINDS` round-robin over ``subscriptions`` in ``group``,
    every other round of kinds pinned to ``pinned_version`` (the others follow the latest),
    each granted the key by access policy. Returns them as ARM's GET shows them."""
    made = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        subscription = subscriptions[i % len(subscriptions)]
        version = pinned_version if (i // len(KINDS)) % 2 == 0 else ""
        name = f"{kind.lower()[:5]}{i:04d}{uuid.uuid4().hex[:6]}"
        if kind == "storage":
            resource = control.seed_storage(
                name,
                subscription=subscription,
                resource_group=group,
                encryption=storage_cmk(vault_url, key, version),
            )
        else:
            encryption = cmk_encryption(vault_url + "/", key, version)
            if not version:
                encryption["keyVaultProperties"].pop("keyVersion")
            resource = control.seed_account(
                name,
                kind=kind,
                subscription=subscription,
                resource_group=group,
                encryption=encryption,
            )
        client.set_access_policy(vault, resource["identity"]["principalId"], CMK_PERMISSIONS)
        made.append(resource)
    return made


def watch_settings(
    *,
    vault: str,
    vault_url: str,
    connection_string: str,
    emulator_url: str,
    ca_path: str,
    subscriptions: Sequence[str],
    group: str | None = None,
    resource_graph: bool = True,
    per_second: int = 1000,
) -> Settings:
    """keyward's settings watching the three kinds in ``subscriptions`` (and ``group``)."""
    subs = ",".join(subscriptions)
    env = {
        "KEYWARD_VAULT_ALLOWLIST": f"{vault}=https://{vault_url.split('://', 1)[1]}",
        "AzureWebJobsStorage": connection_string,
        "KEYWARD_DEPENDENT_KINDS": "face,cognitive,storage",
        "KEYWARD_FACE_SUBSCRIPTIONS": subs,
        "KEYWARD_COGNITIVE_SUBSCRIPTIONS": subs,
        "KEYWARD_STORAGE_ACCOUNTS_SUBSCRIPTIONS": subs,
        "KEYWARD_ARM_ENDPOINT": emulator_url,
        "KEYWARD_CA_BUNDLE": ca_path,
        "KEYWARD_RESOURCE_GRAPH": "true" if resource_graph else "false",
        "KEYWARD_ARM_REQUESTS_PER_SECOND": str(per_second),
    }
    if group:
        for prefix in ("KEYWARD_FACE", "KEYWARD_COGNITIVE", "KEYWARD_STORAGE_ACCOUNTS"):
            env[f"{prefix}_RESOURCE_GROUPS"] = group
    return Settings.from_env(env)


async def sweep_once(
    settings: Settings, operator: str, connection_string: str, control: InventoryControl
) -> dict[str, Any]:
    """One whole sweep with fresh clients; what it found, judged, cost and took."""
    credential = AsyncEmulatorCredential(operator)
    table = TableClient.from_connection_string(
        connection_string, "kwinvbench" + uuid.uuid4().hex[:10]
    )
    keys = keyvault_adapter(settings, credential)
    arm = arm_clients(settings, credential)
    dependents, built = build_dependents(
        settings, SharedClients(credential, table, keys, arm), create_table=True
    )
    try:
        control.reset_requests()
        started = time.perf_counter()
        summaries = await dependents.sweep()
        seconds = time.perf_counter() - started
        requests = control.requests()
    finally:
        for closer in [dependents, *built, arm, keys, table]:
            await closer.close()  # type: ignore[attr-defined]
    judged = sum(sum(s.statuses.values()) for s in summaries.values())
    return {
        "seconds": round(seconds, 3),
        "found": sum(s.accounts for s in summaries.values()),
        "judged": judged,
        "statuses": dict(sum((s.statuses for s in summaries.values()), Counter())),
        "failures": sum(s.failures for s in summaries.values()),
        "arm_requests": sum(requests.values()),
        "inventory_requests": sum(n for r, n in requests.items() if r in INVENTORY_ROUTES),
        "by_route": requests,
    }


def run(resources: int, repeats: int) -> dict[str, Any]:
    """Start the world, seed it, and measure both modes ``repeats`` times (interleaved)."""
    results: dict[str, Any] = {"runs": {mode: [] for mode in MODES}}
    with tempfile.TemporaryDirectory(prefix="keyward-bench-inv-") as tmp, run_azurite() as azurite:
        emu = start_emulator(Path(tmp))
        try:
            client = emu.client
            control = InventoryControl(emu.url, emu.ca_path)
            vault = "kwinvbench"
            info = client.create_vault(vault, purge_protection=True)
            vault_url = str(info["url"]).rstrip("/")
            operator = str(client.create_principal(display_name="keyward")["object_id"])
            client.set_access_policy(vault, operator, ALL_KEY_PERMISSIONS)
            first = str(client.create_key(vault, "cmk")["key"]["kid"]).rsplit("/", 1)[-1]
            client.create_key(vault, "cmk")  # a rotation: half stay pinned to the first
            subscriptions = [DEFAULT_SUBSCRIPTION_ID, str(uuid.uuid4()), str(uuid.uuid4())]
            say(f"seeding {resources} resources over {len(subscriptions)} subscriptions")
            seed_mixed(
                client, control, vault=vault, vault_url=vault_url, key="cmk",
                pinned_version=first, subscriptions=subscriptions, group="rg-bench",
                count=resources,
            )  # fmt: skip
            common = {
                "vault": vault, "vault_url": vault_url,
                "connection_string": azurite.connection_string, "emulator_url": emu.url,
                "ca_path": emu.ca_path, "subscriptions": subscriptions,
            }  # fmt: skip
            asyncio.run(
                sweep_once(watch_settings(**common), operator, azurite.connection_string, control)
            )  # warm-up (connections, the vault's location cache of a first process)
            for repeat in range(repeats):
                for mode in MODES:
                    settings = watch_settings(**common, resource_graph=mode == "resource_graph")
                    got = asyncio.run(
                        sweep_once(settings, operator, azurite.connection_string, control)
                    )
                    say(f"{mode} #{repeat + 1}: {got['seconds']} s, {got['arm_requests']} ARM "
                        f"requests ({got['inventory_requests']} inventory)")  # fmt: skip
                    results["runs"][mode].append(got)
            paced = watch_settings(**common, per_second=20)
            got = asyncio.run(sweep_once(paced, operator, azurite.connection_string, control))
            say(f"paced 20/s: {got['seconds']} s")
            results["paced_default"] = got
        finally:
            stop_emulator(emu)
    results["resources"] = resources
    results["subscriptions"] = 3
    return results


def render(results: dict[str, Any]) -> str:
    """The Markdown section for docs/benchmarks.md."""
    meta = results["meta"]
    rows = []
    for mode in MODES:
        runs = results["runs"][mode]
        times = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        label = {
            "resource_graph": "Resource Graph (the resources query and the subscriptions check)",
            "per_subscription": "per-subscription listing (each kind, each subscription)",
        }[mode]
        rows.append(
            f"| {label} | {int(statistics.median(r['inventory_requests'] for r in runs))} | "
            f"{int(statistics.median(r['arm_requests'] for r in runs))} | "
            f"{statistics.median(r['seconds'] for r in runs):.2f} s "
            f"({times}) | "
            f"{runs[0]['found']} / {runs[0]['judged']} | "
            f"{', '.join(f'{k} {v}' for k, v in sorted(runs[0]['statuses'].items()))} | "
            f"{sum(r['failures'] for r in runs)} |"
        )
    paced = results["paced_default"]
    graph = results["runs"]["resource_graph"][0]["by_route"]
    listing = results["runs"]["per_subscription"][0]["by_route"]
    per_resource = {k: v for k, v in graph.items() if k not in INVENTORY_ROUTES}
    lines = [
        BEGIN,
        "",
        f"Measured {meta['started']} with `{meta['command']}` on {meta['machine']['nproc']} "
        f"cores (Python {meta['machine']['python']}); load average before "
        f"{meta['load_before'][0]}, after {meta['load_after'][0]} (other sessions share the "
        "machine).",
        "",
        f"World: {results['resources']} resources in {results['subscriptions']} subscriptions "
        "(Face, OpenAI, SpeechServices accounts and storage accounts, a quarter each; half "
        "pinned to the key's first version, half following the latest), one vault, one key "
        "rotated once; keyward watches `face`, `cognitive` and `storage`. One sweep = every "
        "kind's inventory, then every resource judged. Medians of "
        f"{len(results['runs']['resource_graph'])} runs per mode, interleaved; "
        "`KEYWARD_ARM_REQUESTS_PER_SECOND=1000` (unpaced) for the comparison.",
        "",
        "| inventory | inventory ARM requests | total ARM requests | sweep time (runs) | "
        "found / judged | verdicts | failures |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Other ARM requests (the same in both modes: the key-access reader's vault and "
        f"access reads, shared by a sweep's resources): {json.dumps(per_resource, sort_keys=True)}."
        " Per-subscription inventory: "
        f"{json.dumps({k: v for k, v in listing.items() if k in INVENTORY_ROUTES})}"
        " (the `face` and `cognitive` kinds each list the Cognitive Services accounts).",
        "",
        f"At the default pace (`KEYWARD_ARM_REQUESTS_PER_SECOND=20`) the same sweep with "
        f"Resource Graph took {paced['seconds']:.1f} s for {paced['arm_requests']} ARM "
        "requests (the pace waits only once a second's budget is spent).",
        "",
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench inventory", description=__doc__)
    parser.add_argument("--resources", type=int, default=240, help="resources (default 240)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode (default 3)")
    parser.add_argument("--write", action="store_true", help="rewrite docs/benchmarks.md")
    args = parser.parse_args(argv)
    report_figure(
        SECTION, argv, lambda: run(args.resources, args.repeats), render, write=args.write
    )
    return 0
