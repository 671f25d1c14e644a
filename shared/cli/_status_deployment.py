"""``keyward status --deployment``: the admin API's status page, as tables or as its JSON.

The page is ``AdminService.status``, the very call behind ``GET /api/status``, so ``--json``
prints the same JSON (jobs per shard with progress, flags, rejected events, modes, store
jobs, dead letters) and the tables show the same page. ``--job ID`` reads that job from each
shard's job partition (one read per shard) and shows it as the embedded mode does;
``--operation ID`` shows an operation as ``GET /api/operations/<id>`` does. All bounded: the
status page's reads, never a store scan.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from shared.cli._deployment import ContextOpener
from shared.cli._output import EXIT_OK, print_json
from shared.cli._render import job_table, render_issues
from shared.composition import AppContext
from shared.errors import ConfigurationError
from shared.rewrap import JobState
from shared.services._render import job_json

#: Rows shown per flag kind and of the rejected events (``--json`` has the whole page).
MAX_ROWS_SHOWN = 20


async def run_status_deployment(
    args: argparse.Namespace, console: Console, open_context: ContextOpener
) -> int:
    if args.vault or args.key:
        raise ConfigurationError(
            "--vault/--key: not with --deployment (the page lists every key's jobs, newest "
            "first; --job ID shows one)"
        )
    context = await open_context()
    try:
        if args.operation:
            return await _operation(context, args, console)
        if args.job:
            state = await find_job(context, args.job)
            if state is None:
                raise ConfigurationError(f"no job {args.job!r} in the deployment's shards")
            if args.json:
                print_json(console, job_json(state))
            else:
                console.print(job_table(state, "rewrap job"))
                render_issues(console, state.issues, state.issues_dropped)
            return EXIT_OK
        page = await context.admin().status(limit=args.limit, continuation=args.continuation)
    finally:
        await context.aclose()
    if args.json:
        print_json(console, page)
    else:
        render_status_page(console, page)
    return EXIT_OK


async def find_job(context: AppContext, job_id: str, shard: str | None = None) -> JobState | None:
    """The job ``job_id`` of ``shard``, or of the first shard that has it (a job id names
    its shard, but not in a form to read back): one read per shard at most.

    Raises:
        ServiceError: a job partition could not be read.
    """
    for name in (shard,) if shard is not None else context.shards:
        stored = await context.job_store(name).get(job_id)
        if stored is not None:
            return stored.state
    return None


async def _operation(context: AppContext, args: argparse.Namespace, console: Console) -> int:
    found = await context.admin().operation(args.operation)
    if found is None:
        raise ConfigurationError(f"no operation {args.operation!r} in the deployment")
    if args.json:
        print_json(console, found)
    else:
        render_operation(console, found)
    return EXIT_OK


def render_operation(console: Console, found: Mapping[str, Any]) -> None:
    """One operation's record: kind, key, status, progress, error (the result is the
    command's own rendering)."""
    table = Table(title=f"operation {found['operation_id']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    progress = found.get("progress") or {}
    stores = progress.get("stores") or {}
    counted = ", ".join(f"{shard}: {s['counted']}{' (done)' if s['done'] else ''}"
                        for shard, s in stores.items())  # fmt: skip
    rows = [("kind", found["kind"]), ("key", found["key"]), ("version", found["version"] or ""),
            ("status", found["status"]), ("phase", progress.get("phase", "")),
            ("counted", counted), ("created", found["created_at"]),
            ("updated", found["updated_at"])]  # fmt: skip
    if found.get("error"):
        rows.append(("error", f"{found['error']['code']}: {found['error']['message']}"))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)


def render_status_page(console: Console, page: Mapping[str, Any]) -> None:
    """The status page as tables: jobs, shards, flags, rejected events, dead letters."""
    _jobs(console, page["jobs"])
    if page.get("continuation"):
        console.print(f"more jobs: --continuation {page['continuation']}", highlight=False)
    _shards(console, page)
    for name, flags in page.items():
        if name.endswith("_flags") and isinstance(flags, list):
            _flags(console, name, flags, bool(page.get(f"{name}_more")))
    _rejections(console, page.get("rejected_events") or [])
    _dead_letters(console, page.get("dead_letters") or {})
    _audit(console, page.get("audit") or [])
    keys = (page.get("retirement") or {}).get("keys") or []
    if keys:
        console.print(
            f"verdicts ({len(keys)} keys on this page): keyward retirement --deployment "
            "--vault V --key K",
            highlight=False,
        )


def _jobs(console: Console, jobs: Sequence[Mapping[str, Any]]) -> None:
    table = Table(title="rewrap jobs (newest update first)")
    columns = ("job", "key", "shard", "target", "status", "pass", "scanned", "rewrapped",
               "current", "failed", "unreadable", "conflicts", "left", "updated")  # fmt: skip
    for column in columns:
        table.add_column(column)
    for job in jobs:
        status = job["status"] + (f" ({job['retry']})" if job.get("retry") else "")
        if job.get("restart_requested"):
            status += " (restart requested)"
        table.add_row(
            job["job_id"], job["key"], str(job["shard"] or ""), job["target_version"], status,
            str(job["pass"]), str(job["scanned"]), str(job["rewrapped"]),
            str(job["already_current"]), str(job["failed"]), str(job["unreadable"]),
            str(job["conflicts"]), str(job["left_behind"]), job["updated_at"],
        )  # fmt: skip
    console.print(table)


def _shards(console: Console, page: Mapping[str, Any]) -> None:
    table = Table(title="shards")
    for column in ("shard", "mode", "store job"):
        table.add_column(column)
    store_jobs = page.get("store_jobs") or {}
    for shard in page.get("shards") or []:
        job = store_jobs.get(shard)
        shown = ""
        if job:
            shown = job.get("error") or f"{job.get('kind', '')} {job.get('phase', '')}".strip()
        table.add_row(shard, str((page.get("modes") or {}).get(shard, "")), shown)
    console.print(table)


def _flags(console: Console, name: str, flags: Sequence[Mapping[str, Any]], more: bool) -> None:
    title = name.replace("_", " ") + f" ({len(flags)} shown{', more exist' if more else ''})"
    table = Table(title=title)
    for column in ("resource", "status", "key", "reasons", "last change"):
        table.add_column(column)
    for flag in flags[:MAX_ROWS_SHOWN]:
        reasons = ", ".join(str(reason[0]) for reason in flag.get("reasons") or [])
        table.add_row(str(flag.get("account_id", "")), str(flag.get("status", "")),
                      str(flag.get("key_id") or ""), reasons,
                      str(flag.get("last_change") or ""))  # fmt: skip
    console.print(table)


def _rejections(console: Console, rejected: Sequence[Mapping[str, Any]]) -> None:
    if not rejected:
        return
    table = Table(title=f"rejected events (newest {len(rejected)})")
    for column in ("received", "reason", "event", "detail"):
        table.add_column(column)
    for entry in rejected[:MAX_ROWS_SHOWN]:
        table.add_row(str(entry.get("received_at") or ""), str(entry.get("reason") or ""),
                      str(entry.get("event_id") or ""), str(entry.get("detail") or ""))  # fmt: skip
    console.print(table)


def _audit(console: Console, entries: Sequence[Mapping[str, Any]]) -> None:
    """The newest mutating calls, who made them (API or CLI) and how they ended."""
    if not entries:
        return
    table = Table(title=f"audit trail (newest {len(entries)})")
    for column in ("at", "action", "caller", "via", "target", "outcome", "operation"):
        table.add_column(column)
    for entry in entries[:MAX_ROWS_SHOWN]:
        caller = entry.get("caller") or {}
        who = caller.get("name") or caller.get("object_id") or "keyward"
        fields = (entry.get("at"), entry.get("action"), who, caller.get("via"),
                  entry.get("target"), entry.get("outcome"), entry.get("operation_id"))  # fmt: skip
        table.add_row(*(str(value or "") for value in fields))
    console.print(table)


def _dead_letters(console: Console, shown: Mapping[str, Any]) -> None:
    if not shown.get("enabled"):
        return
    if "error" in shown:
        console.print(f"dead letters: could not be read: {shown['error']}", highlight=False)
        return
    table = Table(title=f"dead-lettered events ({shown.get('container', '')})")
    for column in ("vault", "events", "oldest", "newest", "reasons"):
        table.add_column(column)
    for vault, entry in (shown.get("vaults") or {}).items():
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(entry["reasons"].items()))
        table.add_row(vault, str(entry["events"]), str(entry["oldest"] or ""),
                      str(entry["newest"] or ""), reasons)  # fmt: skip
    console.print(table)
    notes = []
    if shown.get("malformed"):
        notes.append(f"{len(shown['malformed'])} unreadable blobs")
    if shown.get("more"):
        notes.append(f"more than {shown.get('limit')} blobs: counts are of the first ones")
    if shown.get("vaults"):
        notes.append("replay: keyward replay-dead-letters")
    for note in notes:
        console.print(note, highlight=False)
