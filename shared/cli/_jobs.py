"""``keyward migrate`` and ``keyward rotate-keks``: a store's jobs, run to the end in process.

Both resume from the checkpoint in the store's mode row, so an interrupted command is simply
run again. Exit codes as the other commands: 0 done (or nothing to do), 3 stopped short with
records that need attention (named), 2 bad options, 1 an error, another runner holding the
store's job included (its name and lease end are printed).
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import asdict
from typing import Any

from rich.console import Console

from shared.cli._factories import KeySourceOpener, key_target
from shared.cli._output import EXIT_ATTENTION, EXIT_ERROR, EXIT_OK, print_json
from shared.composition import open_record_ports
from shared.records import Checkpoint, JobBusyError, Phase, StoreMode
from shared.services.migration import JobRun, KeySourceVaultKeys, StoreJobs
from shared.settings import envelope_from_env


async def run_migrate(
    args: argparse.Namespace, console: Console, open_keys: KeySourceOpener
) -> int:
    target_mode = StoreMode(args.to)
    return await _run(args, console, open_keys, f"migrate to {target_mode.value}", target_mode)


async def run_rotate_keks(
    args: argparse.Namespace, console: Console, open_keys: KeySourceOpener
) -> int:
    return await _run(args, console, open_keys, "rotate KEKs", None)


async def _run(
    args: argparse.Namespace,
    console: Console,
    open_keys: KeySourceOpener,
    title: str,
    target_mode: StoreMode | None,
) -> int:
    target = key_target(args.vault, args.key)
    settings = envelope_from_env()
    overrides = {"mode_ttl_seconds": args.mode_ttl, "kek_cache_seconds": args.kek_ttl}
    settings = type(settings)(**{**asdict(settings), **{k: v for k, v in overrides.items()
                                                        if v is not None}})  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        ports = open_record_ports(args.store, kek_table=args.kek_table)
        stack.push_async_callback(ports.aclose)
        keys, close_keys = await open_keys(target, args.ca_bundle)
        stack.push_async_callback(close_keys)
        last: list[Phase] = []

        def progress(checkpoint: Checkpoint) -> None:
            if not args.json and (not last or last[-1] is not checkpoint.phase):
                last.append(checkpoint.phase)
                where = f" ({checkpoint.partition})" if checkpoint.partition else ""
                if checkpoint.wait_until is not None:
                    until = checkpoint.wait_until.isoformat(timespec="seconds")
                    where = f": waiting out the writers' TTL and write bound, until {until}"
                console.print(f"  {checkpoint.phase.value}{where}", highlight=False)

        vault = KeySourceVaultKeys(keys, allow_legacy_rsa1_5=args.allow_legacy_rsa1_5)
        jobs = StoreJobs(
            ports.records, ports.keks, ports.modes, vault,
            settings=settings, rate=args.rate, page_size=args.page_size, progress=progress,
        )  # fmt: skip
        if not args.json:
            console.print(f"{ports.name}: {title}", highlight=False)
        try:
            if target_mode is not None:
                run = await jobs.migrate(target_mode, target.key_ref)
            else:
                run = await jobs.rotate_keks(
                    target.key_ref, partition=args.partition, older_than_days=args.older_than
                )
        except JobBusyError as busy:
            console.print(f"[red]busy:[/red] {busy}", markup=True, highlight=False)
            return EXIT_ERROR
    return _report(console, args.json, ports.name, run)


def _report(console: Console, as_json: bool, store: str, run: JobRun) -> int:
    checkpoint = run.checkpoint
    blocked = checkpoint is not None and checkpoint.phase is Phase.BLOCKED
    if as_json:
        print_json(console, run_dict(store, run))
    elif not run.started:
        console.print(f"nothing to do: the store is in {run.mode.value} mode", highlight=False)
    else:
        assert checkpoint is not None
        tally = checkpoint.tally
        console.print(
            f"{'BLOCKED' if blocked else 'done'} in {run.seconds:.1f} s: store mode "
            f"{run.mode.value}; records converted {tally.converted}, already there "
            f"{tally.skipped}, conflicts retried {tally.conflicts}, vault unwraps "
            f"{tally.vault_unwraps}, KEKs created {tally.keks_created}, deleted "
            f"{tally.keks_deleted}",
            highlight=False,
        )
        if checkpoint.problem_refs or checkpoint.detail:
            console.print(f"needs attention: {checkpoint.detail or ''}", highlight=False)
            for ref in checkpoint.problem_refs:
                console.print(f"  {ref}", highlight=False)
    if not run.started:
        return EXIT_OK
    return EXIT_ATTENTION if blocked or (checkpoint and checkpoint.detail) else EXIT_OK


def run_dict(store: str, run: JobRun) -> dict[str, Any]:
    """The JSON answer: named fields only (no key material exists in a checkpoint)."""
    checkpoint = run.checkpoint
    return {
        "store": store,
        "started": run.started,
        "mode": run.mode.value,
        "seconds": round(run.seconds, 3),
        "job": None if checkpoint is None else {
            "kind": checkpoint.kind.value,
            "target": checkpoint.target or None,
            "phase": checkpoint.phase.value,
            "pass": checkpoint.pass_number,
            "owner": checkpoint.owner,
            "started_at": checkpoint.started_at.isoformat(),
            "tally": asdict(checkpoint.tally),
            "problem_refs": list(checkpoint.problem_refs),
            "detail": checkpoint.detail,
        },
    }  # fmt: skip
