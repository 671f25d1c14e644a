"""``keyward retirement`` and ``keyward retire``: the verdict, and retiring a version.

Both run :class:`shared.services.retirement.Retirement` (the same steps as
``POST /api/retire``) over one DEK store, the vault and the SQLite job file: its jobs (an
unfinished one blocks) and its retired-version record, which ``keyward rewrap`` on the same
file honours. ``--pinned`` names resources pinned to versions (the Function App asks its
key-dependent kinds instead).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shared.cli._factories import KeySourceOpener, key_target, open_jobs
from shared.cli._output import EXIT_ATTENTION, EXIT_OK, print_json
from shared.composition import open_store, parse_store_spec
from shared.errors import ConfigurationError, RetirementBlockedError
from shared.rewrap import (
    BlockerKind,
    JobState,
    NoRetiredVersions,
    RetiredVersions,
    RetirementReport,
    SqliteJobStore,
)
from shared.services._render import retirement_json
from shared.services.retirement import Retirement, superseded_wait
from shared.settings import envelope_from_env


@contextlib.asynccontextmanager
async def _retirement_parts(
    args: argparse.Namespace, open_keys: KeySourceOpener, *, create_jobs: bool
) -> AsyncIterator[tuple[str, Retirement]]:
    """The key and what retiring it needs: the store, the vault, the pins, and the job file
    (its jobs and its retired-version record; a missing file has neither, and is created
    only for ``retire``, which writes the record)."""
    target = key_target(args.vault, args.key)
    pinned = _load_pinned(args.pinned) if args.pinned else {}
    async with contextlib.AsyncExitStack() as stack:
        store = open_store(parse_store_spec(args.store))
        stack.push_async_callback(store.close)
        keys, close_keys = await open_keys(target, args.ca_bundle)
        stack.push_async_callback(close_keys)
        retired: RetiredVersions = NoRetiredVersions()
        jobs: SqliteJobStore | None = None
        if create_jobs or args.jobs.exists():
            jobs = open_jobs(args.jobs)
            stack.push_async_callback(jobs.close)
            retired = jobs

        async def pins(key_ref: str) -> dict[str, list[str]]:
            return pinned

        async def job_states(key_ref: str) -> Sequence[JobState]:
            return await jobs.list_jobs(key_ref) if jobs is not None else []

        yield (
            target.key_ref,
            Retirement(
                stores={str(args.store): store},
                keys=keys,
                pinned=pins,
                jobs=job_states,
                retired=retired,
                now=lambda: datetime.now(UTC),
                # Writers' wraps under a just-superseded version may still land until then.
                superseded_wait=superseded_wait(envelope_from_env().mode_ttl_seconds),
            ),
        )


async def run_retirement(
    args: argparse.Namespace, console: Console, open_keys: KeySourceOpener
) -> int:
    async with _retirement_parts(args, open_keys, create_jobs=False) as (key_ref, retirement):
        report = await retirement.verdict(key_ref)
    if args.json:
        print_json(console, retirement_json(report))
    else:
        render_retirement(console, report)
    return EXIT_OK


async def run_retire(args: argparse.Namespace, console: Console, open_keys: KeySourceOpener) -> int:
    async with _retirement_parts(args, open_keys, create_jobs=True) as (key_ref, retirement):
        try:
            result: dict[str, Any] = await retirement.retire(key_ref, args.version)
            code = EXIT_OK
        except RetirementBlockedError as error:
            result = {"status": error.code_name, "message": str(error), "blockers": error.blockers}
            code = EXIT_ATTENTION
    if args.json:
        print_json(console, result)
    elif code == EXIT_OK:
        console.print(
            f"retired {key_ref}/{result['version']}: {result['previous_wraps_dropped']} previous"
            " wraps dropped; safe to disable", highlight=False,
        )  # fmt: skip
    else:
        console.print(f"[red]{result['status']}:[/red] {result['message']}", highlight=False)
        for blocker in result["blockers"]:
            console.print(f"  - {blocker}", highlight=False, markup=False)
    return code


def _load_pinned(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise ValueError("expected an object of lists")
        return {str(k): [str(r) for r in v] for k, v in data.items()}
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"--pinned {path}: {error}") from None


def render_retirement(console: Console, report: RetirementReport) -> None:
    table = Table(title=f"retirement: {report.key_ref}")
    columns = ("version", "enabled", "current", "previous", "unreadable", "copies", "pinned",
               "status")  # fmt: skip
    for column in columns:
        table.add_column(column)
    for entry in report.versions:
        enabled = "?" if entry.enabled is None else ("yes" if entry.enabled else "no")
        if entry.newest:
            enabled += " (newest)"
        status = {
            "safe_to_disable": "[green]safe to disable",
            "retired_in_use": "[red]ALERT: in use after retirement",
        }.get(entry.status, "[red]no")
        if entry.too_soon and entry.answerable_at is not None and entry.status == "blocked":
            status = f"[yellow]not yet (from {entry.answerable_at.isoformat(timespec='seconds')})"
        table.add_row(
            entry.version,
            enabled,
            str(entry.current),
            str(entry.previous),
            str(entry.unreadable),
            str(entry.copies),
            str(len(entry.pinned)),
            status,
        )
    console.print(table)
    if report.jobs:
        console.print(f"{len(report.jobs)} rewrap jobs of the key running or pending:")
        for job in report.jobs:
            console.print(f"  - {job}", highlight=False, markup=False)
    for entry in report.versions:
        for blocker in entry.blocker_list:
            if blocker.kind is BlockerKind.LATE_WRITERS:
                console.print(f"{entry.version}: {blocker.describe()}", highlight=False)
            if blocker.names and blocker.kind not in LISTED_APART:
                more = blocker.count - len(blocker.names)
                console.print(f"{entry.version}: {blocker.describe()}", highlight=False)
                for name in blocker.names:
                    console.print(f"  - {name}", highlight=False, markup=False)
                if more > 0:
                    console.print(f"  ... and {more} more", highlight=False)
        render_pinned(console, entry.version, [p.to_dict() for p in entry.pinned_resources])


#: Blockers whose names are not listed under the version: the jobs (listed once, above) and
#: the pinned resources (every one listed by :func:`render_pinned`, not a bounded sample).
LISTED_APART = frozenset({BlockerKind.JOBS, BlockerKind.PINNED})


def render_pinned(console: Console, version: str, pinned: Sequence[Mapping[str, str]]) -> None:
    """Every resource pinned to ``version`` (``PinnedResource.to_dict`` rows): the report's
    answer to "which Azure resources still use this key version"."""
    if not pinned:
        return
    console.print(f"{version}: {len(pinned)} resources pinned to it:", highlight=False)
    for row in pinned:
        kind = "/".join(k for k in (row["kind"], row["resource_kind"]) if k) or "resource"
        note = f" ({row['note']})" if row.get("note") else ""
        console.print(f"  - {kind} {row['name']}: {row['id']}{note}", highlight=False, markup=False)
