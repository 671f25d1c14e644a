"""``keyward replay-dead-letters``: replay the deployment's dead-lettered Event Grid events.

Works on the deployment's own state (``shared.cli._deployment``): the settings are the
Function App's (the environment, or ``--settings FILE``), so the events go through the same
handler, event ledger, vaults and queue as a fresh delivery, through the admin service the
``POST /api/dead-letters/replay`` route calls: a replay that is not dry is recorded in the audit
trail with the operator as its caller (``via: cli``), as the other mutating commands are.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from shared.cli._deployment import ContextOpener, caller_of, open_deployment
from shared.cli._output import EXIT_ATTENTION, EXIT_OK, print_json
from shared.services.dead_letters import ReplayReport


async def run_replay_dead_letters(
    args: argparse.Namespace, console: Console, open_context: ContextOpener = open_deployment
) -> int:
    """Exit 0: every listed blob replayed (or nothing to do); 3: some failed, were rejected
    or could not be read, or more blobs remain than ``--max-blobs`` listed."""
    context = await open_context()
    try:
        caller = None if args.dry_run else await caller_of(context)
        report = await context.admin().replay_dead_letters(
            vault=args.vault, dry_run=args.dry_run, max_blobs=args.max_blobs, caller=caller
        )
    finally:
        await context.aclose()
    if args.json:
        print_json(console, report.to_json())
    else:
        _render(console, report)
    attention = report.failed or report.rejected or report.malformed or report.more
    return EXIT_ATTENTION if attention else EXIT_OK


def _render(console: Console, report: ReplayReport) -> None:
    verb = "would replay" if report.dry_run else "replayed"
    table = Table(title=f"dead letters ({'dry run' if report.dry_run else 'replay'})")
    for column in ("blob", "vaults", "events", "result"):
        table.add_column(column)
    for entry in report.replayed:
        result = ",".join(entry.get("outcomes", [])) or verb
        table.add_row(entry["blob"], ",".join(entry["vaults"]), str(len(entry["events"])), result)
    for entry in report.rejected:
        reasons = ",".join(entry.get("reasons", []))
        table.add_row(entry["blob"], ",".join(entry["vaults"]), str(len(entry["events"])),
                      f"rejected ({reasons}): kept under rejected/")  # fmt: skip
    for entry in report.failed:
        table.add_row(entry["blob"], ",".join(entry["vaults"]), str(len(entry["events"])),
                      f"not replayed, kept: {entry['error']}")  # fmt: skip
    for bad in report.malformed:
        table.add_row(bad["blob"], "", "", f"unreadable, kept: {bad['error']}")
    console.print(table)
    if report.skipped:
        console.print(f"{report.skipped} blob(s) of other vaults left alone")
    if report.more:
        console.print("more dead letters remain: run the command again")
