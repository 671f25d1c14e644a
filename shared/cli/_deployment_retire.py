"""``keyward retirement|retire --deployment``: the verdict and retire operations of the admin API.

``retirement`` starts the verdict operation (``POST /api/verdict``), ``retire`` the retire
operation (``POST /api/retire``); the Function App's workers count the stores in slices, and
the CLI polls the operation's record (``GET /api/operations/<id>``) until it ends. The verdict
is the operation's result, ``retirement_json`` of the report, rendered here as the embedded
mode renders its report (the same table and blocker lines), and printed as is by ``--json``,
the shape the embedded mode prints too.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.cli._deployment import ContextOpener, caller_of, deployment_key, wait_for_operation
from shared.cli._output import EXIT_ATTENTION, EXIT_ERROR, EXIT_OK, print_json
from shared.cli._retire import LISTED_APART, render_pinned
from shared.rewrap import Blocker, BlockerKind

#: Operation error codes that mean "not now, nothing changed" (exit 3, as the embedded mode).
_REFUSALS = frozenset({"RetirementBlocked", "RetirementRace"})


async def run_retirement_deployment(
    args: argparse.Namespace, console: Console, open_context: ContextOpener
) -> int:
    done = await _operation(args, console, open_context, retire=False)
    if done["status"] != "succeeded":
        return _failed(console, args.json, done)
    if args.json:
        print_json(console, done["result"])
    else:
        render_verdict(console, done["result"])
    return EXIT_OK


async def run_retire_deployment(
    args: argparse.Namespace, console: Console, open_context: ContextOpener
) -> int:
    done = await _operation(args, console, open_context, retire=True)
    if done["status"] != "succeeded":
        return _failed(console, args.json, done)
    result = done["result"]
    if args.json:
        print_json(console, result)
    else:
        console.print(
            f"retired {result['key']}/{result['version']}: {result['previous_wraps_dropped']} "
            "previous wraps dropped; safe to disable", highlight=False,
        )  # fmt: skip
    return EXIT_OK


async def _operation(
    args: argparse.Namespace, console: Console, open_context: ContextOpener, *, retire: bool
) -> dict[str, Any]:
    context = await open_context()
    try:
        key = deployment_key(context.settings.vault_allowlist, args.vault, args.key)
        admin = context.admin()
        if retire:
            caller = await caller_of(context)  # recorded with the operation and audited
            started = await admin.start_retire(key, version=args.version, caller=caller)
        else:
            started = await admin.start_verdict(key)
        with Progress(TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, disable=args.json) as bar:  # fmt: skip
            task = bar.add_task(f"{started.kind.value} {started.operation_id}: accepted")

            def progress(found: Mapping[str, Any]) -> None:
                stores = (found.get("progress") or {}).get("stores") or {}
                counted = sum(int(s.get("counted") or 0) for s in stores.values())
                phase = (found.get("progress") or {}).get("phase", "")
                text = f"{found['kind']} {found['operation_id']}: {found['status']} {phase}"
                bar.update(task, description=f"{text}, {counted} counted")

            return await wait_for_operation(admin, started.operation_id, poll_seconds=args.poll,
                                            timeout=args.timeout, progress=progress)  # fmt: skip
    finally:
        await context.aclose()


def _failed(console: Console, as_json: bool, done: Mapping[str, Any]) -> int:
    """A failed operation: its error (as the embedded mode prints a refusal); exit 3 for a
    retirement refused or raced (nothing more to do but wait), 1 otherwise."""
    error = done.get("error") or {"code": "Failed", "message": "the operation failed"}
    if as_json:
        print_json(console, {"status": error["code"], "message": error["message"],
                             "blockers": list(error.get("blockers") or []),
                             "operation_id": done["operation_id"]})  # fmt: skip
    else:
        console.print(f"[red]{error['code']}:[/red] {error['message']}", highlight=False)
        for blocker in error.get("blockers") or []:
            console.print(f"  - {blocker}", highlight=False, markup=False)
    return EXIT_ATTENTION if error["code"] in _REFUSALS else EXIT_ERROR


def render_verdict(console: Console, verdict: Mapping[str, Any]) -> None:
    """A verdict's JSON (``retirement_json``) as ``shared.cli._retire.render_retirement``
    renders the report it was made from (``tests/test_cli_deployment.py`` holds them equal)."""
    table = Table(title=f"retirement: {verdict['key']}")
    columns = ("version", "enabled", "current", "previous", "unreadable", "copies", "pinned",
               "status")  # fmt: skip
    for column in columns:
        table.add_column(column)
    versions: Sequence[Mapping[str, Any]] = verdict["versions"]
    for entry in versions:
        kinds = [blocker["kind"] for blocker in entry["blocker_kinds"]]
        enabled = "?" if entry["enabled"] is None else ("yes" if entry["enabled"] else "no")
        if entry["newest"]:
            enabled += " (newest)"
        status = {
            "safe_to_disable": "[green]safe to disable",
            "retired_in_use": "[red]ALERT: in use after retirement",
        }.get(entry["status"], "[red]no")
        too_soon = BlockerKind.LATE_WRITERS.value in kinds and entry["answerable_at"]
        if too_soon and entry["status"] == "blocked":
            status = f"[yellow]not yet (from {entry['answerable_at']})"
        table.add_row(entry["version"], enabled, str(entry["current"]), str(entry["previous"]),
                      str(entry["unreadable"]), str(entry["immutable_copies"]),
                      str(len(entry["pinned"])), status)  # fmt: skip
    console.print(table)
    jobs = next((b for v in versions for b in v["blocker_kinds"]
                 if b["kind"] == BlockerKind.JOBS.value), None)  # fmt: skip
    if jobs is not None:
        console.print(f"{jobs['count']} rewrap jobs of the key running or pending:")
        for job in jobs["names"]:
            console.print(f"  - {job}", highlight=False, markup=False)
        if jobs["more"]:
            console.print(f"  ... and {jobs['more']} more", highlight=False)
    for entry in versions:
        for found in entry["blocker_kinds"]:
            blocker = _blocker(found)
            if blocker.kind is BlockerKind.LATE_WRITERS:
                console.print(f"{entry['version']}: {blocker.describe()}", highlight=False)
            if blocker.names and blocker.kind not in LISTED_APART:
                console.print(f"{entry['version']}: {blocker.describe()}", highlight=False)
                for name in blocker.names:
                    console.print(f"  - {name}", highlight=False, markup=False)
                if found["more"]:
                    console.print(f"  ... and {found['more']} more", highlight=False)
        render_pinned(console, entry["version"], entry["pinned_resources"])


def _blocker(found: Mapping[str, Any]) -> Blocker:
    return Blocker(BlockerKind(found["kind"]), int(found["count"]), str(found["detail"]),
                   tuple(str(name) for name in found["names"]))  # fmt: skip
