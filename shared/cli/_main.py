"""The ``keyward`` commands: parse, build collaborators, run, render, choose an exit code.

Exit codes are in ``_output``. Errors print their message only: keyward's messages carry no
key material, and no traceback is shown.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from shared.cli._args import DEFAULT_JOBS, DEFAULT_STORE, build_parser
from shared.cli._dead_letters import run_replay_dead_letters
from shared.cli._deployment import (
    DEFAULT_POLL_SECONDS,
    ContextOpener,
    deployment_opener,
    in_deployment_mode,
    refuse_local_options,
    require_deployment,
)
from shared.cli._deployment_retire import run_retire_deployment, run_retirement_deployment
from shared.cli._deployment_rewrap import run_rewrap_deployment
from shared.cli._factories import KeySourceOpener, key_target, open_jobs, open_vault_keys
from shared.cli._jobs import run_migrate, run_rotate_keks
from shared.cli._onboard import (
    COMMANDS as ONBOARD_COMMANDS,
)
from shared.cli._onboard import (
    OnboardingOpener,
    open_deployment_onboarding,
    run_onboard,
)
from shared.cli._output import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    dry_run_dict,
    exit_code,
    print_json,
    report_dict,
)
from shared.cli._render import (
    ProgressBar,
    job_table,
    render_dry_run,
    render_issues,
    render_jobs,
    render_report,
)
from shared.cli._retire import run_retire, run_retirement
from shared.cli._status_deployment import run_status_deployment
from shared.composition import open_store, parse_store_spec
from shared.errors import (
    ConfigurationError,
    InvalidInputError,
    KeywardError,
)
from shared.rewrap import (
    DEFAULT_WORKERS,
    EngineSettings,
    ItemIssue,
    RewrapEngine,
    dry_run,
)
from shared.stores import DEFAULT_PAGE_SIZE, DekStore

#: Per command, the embedded mode's options (refused with ``--deployment``) and their defaults.
_SOURCES = {"store": DEFAULT_STORE, "jobs": DEFAULT_JOBS, "ca_bundle": None}
_LOCAL_ONLY: dict[str, dict[str, Any]] = {
    "rewrap": {**_SOURCES, "workers": DEFAULT_WORKERS, "page_size": DEFAULT_PAGE_SIZE,
               "rate": None, "allow_legacy_rsa1_5": False, "issues": None},
    "status": {"jobs": DEFAULT_JOBS},
    "retirement": {**_SOURCES, "pinned": None},
    "retire": {**_SOURCES, "pinned": None},
}  # fmt: skip
#: Per command, the options that only mean something on a deployment.
_WAITS = {"poll": DEFAULT_POLL_SECONDS, "timeout": None}
_DEPLOYMENT_ONLY: dict[str, dict[str, Any]] = {
    "rewrap": {"wait": False, **_WAITS},
    "status": {"limit": None, "continuation": None, "operation": None},
    "retirement": _WAITS,
    "retire": _WAITS,
}


def main(
    argv: Sequence[str] | None = None,
    console: Console | None = None,
    *,
    open_keys: KeySourceOpener = open_vault_keys,
    open_context: ContextOpener | None = None,
    open_onboarding: OnboardingOpener = open_deployment_onboarding,
) -> int:
    """Run the CLI; returns the exit code.

    ``open_keys`` opens the key source (Key Vault unless a caller injects another: the
    development mode ``python -m devtools.cli_local`` injects local keys); ``open_context``
    opens the deployment's context (``replay-dead-letters`` and every command given
    ``--deployment``; default: from the Function App's settings, ``shared.cli._deployment``).
    """
    args = build_parser().parse_args(argv)
    console = console or Console()
    opener = deployment_opener(args, open_context)
    try:
        if args.command in _LOCAL_ONLY and in_deployment_mode(args):
            refuse_local_options(args, _LOCAL_ONLY[args.command])
            return asyncio.run(_DEPLOYMENT_RUNS[args.command](args, console, opener))
        if args.command in _DEPLOYMENT_ONLY:
            require_deployment(args, _DEPLOYMENT_ONLY[args.command])
        if args.command == "rewrap":
            return asyncio.run(_rewrap(args, console, open_keys))
        if args.command == "retirement":
            return asyncio.run(run_retirement(args, console, open_keys))
        if args.command == "retire":
            return asyncio.run(run_retire(args, console, open_keys))
        if args.command == "migrate":
            return asyncio.run(run_migrate(args, console, open_keys))
        if args.command == "replay-dead-letters":
            return asyncio.run(run_replay_dead_letters(args, console, opener))
        if args.command in ONBOARD_COMMANDS:
            return asyncio.run(run_onboard(args, console, open_onboarding))
        if args.command == "rotate-keks":
            return asyncio.run(run_rotate_keks(args, console, open_keys))
        return asyncio.run(_status(args, console))
    except (ConfigurationError, InvalidInputError) as error:
        console.print(f"[red]error:[/red] {error}", markup=True, highlight=False)
        return EXIT_USAGE
    except KeywardError as error:
        console.print(f"[red]error:[/red] {error}", markup=True, highlight=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        if in_deployment_mode(args):  # only the waiting stopped: the Function App goes on
            console.print("interrupted; what was started goes on: keyward status --deployment")
        else:
            console.print("interrupted; run the same command again to resume")
        return EXIT_ERROR


_DEPLOYMENT_RUNS = {
    "rewrap": run_rewrap_deployment,
    "status": run_status_deployment,
    "retirement": run_retirement_deployment,
    "retire": run_retire_deployment,
}


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
                print_json(console, dry_run_dict(dry))
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
            print_json(console, report_dict(report))
            return exit_code(report)
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
        return exit_code(report)


async def _status(args: argparse.Namespace, console: Console) -> int:
    jobs = open_jobs(args.jobs)
    try:
        if args.job:
            stored = await jobs.get(args.job)
            if stored is None:
                raise ConfigurationError(f"no job {args.job!r} in {args.jobs}")
            if args.json:
                print_json(console, stored.state.to_dict())
            else:
                console.print(job_table(stored.state, "rewrap job"))
                render_issues(console, stored.state.issues, stored.state.issues_dropped)
            return EXIT_OK
        key_ref = key_target(args.vault, args.key).key_ref if args.vault and args.key else None
        states = await jobs.list_jobs(key_ref)
        if args.json:
            print_json(console, [state.to_dict() for state in states])
        else:
            render_jobs(console, states)
        return EXIT_OK
    finally:
        await jobs.close()


async def _estimate(store: DekStore, key_ref: str) -> int | None:
    """DEKs of the key in the store (the progress bar's total), or None if unknown."""
    try:
        counts = await store.version_counts(key_ref)
    except KeywardError:
        return None
    return sum(count.current for count in counts)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
