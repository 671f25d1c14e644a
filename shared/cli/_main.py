"""The ``keyward`` commands: parse, build collaborators, run, render, choose an exit code.

Exit codes: 0 done and clean; 3 done, but some DEKs need attention (failed, unreadable,
conflicts); 2 bad options or configuration; 1 the job stopped on an error (it resumes from its
checkpoint when run again). Errors print their message only: keyward's messages carry no
key material, and no traceback is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from shared.cli._args import build_parser
from shared.cli._factories import KeySourceOpener, key_target, open_jobs, open_vault_keys
from shared.cli._render import (
    ProgressBar,
    job_table,
    render_dry_run,
    render_issues,
    render_jobs,
    render_report,
    render_retirement,
)
from shared.composition import open_store, parse_store_spec
from shared.errors import (
    ConfigurationError,
    InvalidInputError,
    KeywardError,
    RetirementBlockedError,
)
from shared.rewrap import (
    DryRunReport,
    EngineSettings,
    ItemIssue,
    JobReport,
    JobState,
    NoRetiredVersions,
    RetiredVersions,
    RewrapEngine,
    SqliteJobStore,
    dry_run,
)
from shared.services._render import retirement_json
from shared.services.retirement import Retirement
from shared.stores import DekStore

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ATTENTION = 3


def main(
    argv: Sequence[str] | None = None,
    console: Console | None = None,
    *,
    open_keys: KeySourceOpener = open_vault_keys,
) -> int:
    """Run the CLI; returns the exit code.

    ``open_keys`` opens the key source (Key Vault unless a caller injects another: the
    development mode ``python -m devtools.cli_local`` injects local keys).
    """
    args = build_parser().parse_args(argv)
    console = console or Console()
    try:
        if args.command == "rewrap":
            return asyncio.run(_rewrap(args, console, open_keys))
        if args.command == "retirement":
            return asyncio.run(_retirement(args, console, open_keys))
        if args.command == "retire":
            return asyncio.run(_retire(args, console, open_keys))
        return asyncio.run(_status(args, console))
    except (ConfigurationError, InvalidInputError) as error:
        console.print(f"[red]error:[/red] {error}", markup=True, highlight=False)
        return EXIT_USAGE
    except KeywardError as error:
        console.print(f"[red]error:[/red] {error}", markup=True, highlight=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        console.print("interrupted; run the same command again to resume")
        return EXIT_ERROR


async def _rewrap(args: argparse.Namespace, console: Console, open_keys: KeySourceOpener) -> int:
    target = key_target(args.vault, args.key)
    settings = EngineSettings(
        page_size=args.page_size,
        workers=args.workers,
        rate_ceiling=args.rate,
        allow_legacy_rsa1_5=args.allow_legacy_rsa1_5,
    )
    async with contextlib.AsyncExitStack() as stack:
        store = open_store(parse_store_spec(args.store))
        stack.push_async_callback(store.close)
        keys, close_keys = await open_keys(target, args.ca_bundle)
        stack.push_async_callback(close_keys)
        if args.dry_run:
            # A dry run creates no job and opens no job store: it writes nothing at all.
            dry = await dry_run(
                store,
                keys,
                target.key_ref,
                args.to,
                page_size=settings.page_size,
                rate_ceiling=settings.rate_ceiling,
                allow_legacy_rsa1_5=settings.allow_legacy_rsa1_5,
            )
            if args.json:
                _print_json(console, _dry_run_dict(dry))
            else:
                render_dry_run(console, dry)
            return EXIT_OK
        jobs = open_jobs(args.jobs)
        stack.push_async_callback(jobs.close)
        issues_file = (
            stack.enter_context(args.issues.open("a", encoding="utf-8")) if args.issues else None
        )

        def write_issue(issue: ItemIssue) -> None:
            if issues_file is not None:
                issues_file.write(json.dumps(issue.to_dict(), sort_keys=True) + "\n")

        if args.json:
            engine = RewrapEngine(
                store=store,
                keys=keys,
                jobs=jobs,
                settings=settings,
                on_issue=write_issue,
                retired=jobs,
            )
            report = await engine.run(target.key_ref, args.to, restart=args.restart)
            _print_json(console, _report_dict(report))
            return _exit_code(report)
        total = await _estimate(store, target.key_ref)
        with ProgressBar(console, total) as bar:
            engine = RewrapEngine(
                store=store,
                keys=keys,
                jobs=jobs,
                settings=settings,
                progress=bar.update,
                on_issue=write_issue,
                retired=jobs,
            )
            report = await engine.run(target.key_ref, args.to, restart=args.restart)
        render_report(console, report)
        return _exit_code(report)


async def _status(args: argparse.Namespace, console: Console) -> int:
    jobs = open_jobs(args.jobs)
    try:
        if args.job:
            stored = await jobs.get(args.job)
            if stored is None:
                raise ConfigurationError(f"no job {args.job!r} in {args.jobs}")
            if args.json:
                _print_json(console, stored.state.to_dict())
            else:
                console.print(job_table(stored.state, "rewrap job"))
                render_issues(console, stored.state.issues, stored.state.issues_dropped)
            return EXIT_OK
        key_ref = key_target(args.vault, args.key).key_ref if args.vault and args.key else None
        states = await jobs.list_jobs(key_ref)
        if args.json:
            _print_json(console, [state.to_dict() for state in states])
        else:
            render_jobs(console, states)
        return EXIT_OK
    finally:
        await jobs.close()


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
            ),
        )


async def _retirement(
    args: argparse.Namespace, console: Console, open_keys: KeySourceOpener
) -> int:
    async with _retirement_parts(args, open_keys, create_jobs=False) as (key_ref, retirement):
        report = await retirement.verdict(key_ref)
    if args.json:
        _print_json(console, retirement_json(report))
    else:
        render_retirement(console, report)
    return EXIT_OK


async def _retire(args: argparse.Namespace, console: Console, open_keys: KeySourceOpener) -> int:
    async with _retirement_parts(args, open_keys, create_jobs=True) as (key_ref, retirement):
        try:
            result: dict[str, Any] = await retirement.retire(key_ref, args.version)
            code = EXIT_OK
        except RetirementBlockedError as error:
            result = {"status": error.code_name, "message": str(error), "blockers": error.blockers}
            code = EXIT_ATTENTION
    if args.json:
        _print_json(console, result)
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


async def _estimate(store: DekStore, key_ref: str) -> int | None:
    """DEKs of the key in the store (the progress bar's total), or None if unknown."""
    try:
        counts = await store.version_counts(key_ref)
    except KeywardError:
        return None
    return sum(count.current for count in counts)


def _load_pinned(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise ValueError("expected an object of lists")
        return {str(k): [str(r) for r in v] for k, v in data.items()}
    except (OSError, ValueError) as error:
        raise ConfigurationError(f"--pinned {path}: {error}") from None


def _exit_code(report: JobReport) -> int:
    counters = report.counters
    if counters.failed_total or counters.unreadable_total or counters.conflicts:
        return EXIT_ATTENTION
    if report.status.short_of_clean:
        return EXIT_ATTENTION  # e.g. DEKs written under an old version while it ran
    return EXIT_OK


def _report_dict(report: JobReport) -> dict[str, Any]:
    return {
        **report.state.to_dict(),
        "requested_version": report.requested_version,
        "redirected": report.redirected,
        "resumed": report.resumed,
        "already_completed": report.already_completed,
        "elapsed_seconds": report.elapsed_seconds,
        "budget_ops_per_second": report.budget.operations_per_second,
        "final_rate": report.final_rate,
        "rate_decreases": report.rate_decreases,
    }


def _dry_run_dict(dry: DryRunReport) -> dict[str, Any]:
    return {
        "key_ref": dry.plan.key_ref,
        "requested_version": dry.plan.requested_version,
        "target_version": dry.plan.target_version,
        "scanned": dry.scanned,
        "would_rewrap": dry.would_rewrap,
        "would_be_unreadable": dry.would_be_unreadable,
        "already_current": dry.already_current,
        "would_fail": dry.would_fail,
        "vault_operations": dry.vault_operations,
        "rate": dry.rate,
        "estimated_seconds": dry.estimated_seconds,
    }


def _print_json(console: Console, data: Any) -> None:
    console.file.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
