"""``keyward rewrap --deployment``: start the deployment's rewrap, as ``POST /api/rewrap`` does.

``AdminService.rewrap`` queues one shard message per DEK store on the Function App's job
queue (``--restart`` first marks the key's jobs for a fresh pass), and the Function App's
``rewrap_worker`` runs them; ``--json`` prints the API's answer. ``--wait`` then follows the
jobs' checkpoints (each job's record, as the status page shows it: one read per job per poll)
until every one has ended, with a bar per shard. ``--dry-run`` starts the dry-run operation
and waits for its result (``GET /api/operations/<id>``). Nothing here reads the DEKs.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.cli._deployment import (
    ContextOpener,
    caller_of,
    deployment_key,
    wait_for_operation,
)
from shared.cli._output import EXIT_ATTENTION, EXIT_ERROR, EXIT_OK, print_json
from shared.cli._status_deployment import find_job, render_operation
from shared.composition import AppContext
from shared.errors import ServiceError
from shared.rewrap import JobState, JobStatus
from shared.services._render import job_json


async def run_rewrap_deployment(
    args: argparse.Namespace, console: Console, open_context: ContextOpener
) -> int:
    context = await open_context()
    try:
        key = deployment_key(context.settings.vault_allowlist, args.vault, args.key)
        admin = context.admin()
        if args.dry_run:
            started = await admin.start_dry_run(key, version=args.to)
            done = await wait_for_operation(
                admin, started.operation_id, poll_seconds=args.poll, timeout=args.timeout
            )
            return _dry_run_answer(console, args.json, done)
        caller = await caller_of(context)
        asked = datetime.now(UTC)
        answer = await admin.rewrap(key, version=args.to, restart=args.restart, caller=caller)
        if not args.json:
            _render_started(console, answer, caller.name or caller.object_id)
        if not args.wait:
            if args.json:
                print_json(console, answer)
            return EXIT_OK
        jobs = [(job["shard"], job["job_id"]) for job in answer["jobs"]]
        states = await _follow(context, jobs, asked, args, console)
    finally:
        await context.aclose()
    if args.json:
        print_json(console, {**answer, "finished": [job_json(state) for state in states]})
    else:
        _render_finished(console, states)
    return _exit_code(states)


def _ended(state: JobState | None, asked: datetime) -> bool:
    """Whether a job has nothing left to run for this request: it ended (and no restart
    waits), or it failed after the request (a failure from before is resumed by it)."""
    if state is None or state.restart_requested or state.status is JobStatus.RUNNING:
        return False
    return state.status.ended or state.updated_at >= asked


async def _follow(
    context: AppContext,
    jobs: Sequence[tuple[str, str]],
    asked: datetime,
    args: argparse.Namespace,
    console: Console,
) -> list[JobState]:
    """Poll each job's record until every one has ended.

    Raises:
        ServiceError: ``--timeout`` passed (the jobs go on in the Function App).
    """
    end = None if args.timeout is None else time.monotonic() + args.timeout
    with _Bars(console, [shard for shard, _ in jobs], enabled=not args.json) as bars:
        while True:
            states = [await find_job(context, job_id, shard) for shard, job_id in jobs]
            bars.update(states)
            if all(_ended(state, asked) for state in states):
                return [state for state in states if state is not None]
            if end is not None and time.monotonic() >= end:
                ids = " ".join(job_id for _, job_id in jobs)
                raise ServiceError(
                    f"the jobs have not ended after {args.timeout:g} s; they go on: keyward "
                    f"status --deployment --job ID ({ids})"
                )
            await asyncio.sleep(args.poll)


class _Bars:
    """A bar per shard: DEKs decided so far (the job's checkpointed ``scanned``). The total
    is unknown: counting the DEKs is a store scan, which the CLI never does on a deployment."""

    def __init__(self, console: Console, shards: Sequence[str], *, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.fields[status]} scanned {task.completed:.0f}, "
                       "rewrapped {task.fields[rewrapped]}"),
            TimeElapsedColumn(), console=console, disable=not enabled,
        )  # fmt: skip
        self._tasks: list[TaskID] = [
            self._progress.add_task(shard, total=None, status="queued", rewrapped=0)
            for shard in shards
        ]

    def __enter__(self) -> _Bars:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, states: Sequence[JobState | None]) -> None:
        for task, state in zip(self._tasks, states, strict=True):
            if state is None:
                continue
            ended = state.status is not JobStatus.RUNNING and not state.restart_requested
            self._progress.update(
                task, completed=state.counters.scanned, status=state.status.value,
                rewrapped=state.counters.rewrapped,
                total=state.counters.scanned if ended else None,
            )  # fmt: skip


def _render_started(console: Console, answer: Mapping[str, Any], who: str) -> None:
    note = f" (requested {answer['requested_version']} is older)" if answer["redirected"] else ""
    console.print(
        f"rewrap of {answer['key']} to {answer['target_version']}{note} queued as {who}: "
        f"{len(answer['jobs'])} shard jobs",
        highlight=False,
    )
    for job in answer["jobs"]:
        console.print(f"  {job['shard']}: {job['job_id']}", highlight=False)
    if answer["restarted"]:
        console.print(f"restart requested for {len(answer['restarted'])} jobs", highlight=False)


def _render_finished(console: Console, states: Sequence[JobState]) -> None:
    table = Table(title="rewrap jobs")
    columns = ("shard", "job", "status", "scanned", "rewrapped", "current", "failed",
               "unreadable", "left")  # fmt: skip
    for column in columns:
        table.add_column(column)
    for state in states:
        c = state.counters
        table.add_row(state.scope, state.job_id, state.status.value, str(c.scanned),
                      str(c.rewrapped), str(c.already_current), str(c.failed_total),
                      str(c.unreadable_total), str(state.left_behind))  # fmt: skip
    console.print(table)
    for state in states:
        if state.error:
            console.print(f"{state.scope}: {state.error}", highlight=False, markup=False)


def _exit_code(states: Sequence[JobState]) -> int:
    """0 every job clean, 3 one needs attention (items failed, left behind), 1 one failed."""
    if any(state.status is JobStatus.FAILED for state in states):
        return EXIT_ERROR
    for state in states:
        c = state.counters
        if state.status.short_of_clean or c.failed_total or c.unreadable_total or c.conflicts:
            return EXIT_ATTENTION
    return EXIT_OK


def _dry_run_answer(console: Console, as_json: bool, done: Mapping[str, Any]) -> int:
    if done["status"] != "succeeded":
        if as_json:
            print_json(console, done)
        else:
            render_operation(console, done)
        return EXIT_ERROR
    result = done["result"]
    if as_json:
        print_json(console, result)
        return EXIT_OK
    for shard in result["shards"]:
        table = Table(title=f"dry run: {shard['shard']}: {shard['key']} -> "
                            f"{shard['target_version']}")  # fmt: skip
        table.add_column("what")
        table.add_column("DEKs", justify="right")
        for version, count in sorted(shard["would_rewrap"].items()):
            table.add_row(f"rewrap from {version}", str(count))
        for reason, count in sorted(shard["would_be_unreadable"].items()):
            table.add_row(f"unreadable ({reason})", str(count))
        for reason, count in sorted(shard["would_fail"].items()):
            table.add_row(f"reported ({reason})", str(count))
        table.add_row("already current", str(shard["already_current"]))
        table.add_row("scanned", str(shard["scanned"]))
        console.print(table)
        console.print(
            f"{shard['vault_operations']} vault operations; about "
            f"{shard['estimated_seconds']:.1f} s at {shard['rate_per_second']:.0f} ops/s; "
            "nothing was written",
            highlight=False,
        )
    return EXIT_OK
