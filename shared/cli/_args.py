"""The command line: sub-commands, options and their help."""

from __future__ import annotations

import argparse
from pathlib import Path

from shared.cli._deployment import add_deployment
from shared.cli._onboard import add_commands as add_onboard_commands
from shared.composition import CONNECTION_STRING_ENV, store_kinds
from shared.records import DEFAULT_JOB_PAGE_SIZE
from shared.rewrap import DEFAULT_WORKERS
from shared.stores import DEFAULT_PAGE_SIZE

DEFAULT_STORE = "sqlite:.keyward/deks.sqlite"
DEFAULT_JOBS = Path(".keyward/jobs.sqlite")

_STORE_HELP = (
    "where the DEKs live: "
    + " | ".join(kind.usage for kind in store_kinds())
    + f" (an empty CONNSTR reads {CONNECTION_STRING_ENV}; default %(default)s)"
)
_VAULT_HELP = (
    "the vault: a name (public cloud), a vault or Managed HSM URL, or NAME=https://HOST:PORT "
    "for the local emulator"
)


def _add_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vault", required=True, help=_VAULT_HELP)
    parser.add_argument("--key", required=True, help="the key's name in that vault")


def _add_sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=DEFAULT_STORE, help=_STORE_HELP)
    parser.add_argument(
        "--ca-bundle", help="CA file that verifies the vault's TLS certificate (emulator)"
    )


def _add_jobs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=Path,
        default=DEFAULT_JOBS,
        help="SQLite file holding job checkpoints (default %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``keyward`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="keyward",
        description="Re-wrap data encryption keys when a Key Vault key rotates.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    rewrap = commands.add_parser(
        "rewrap", help="rewrap a key's DEKs to its newest enabled version (start or resume)"
    )
    _add_key(rewrap)
    rewrap.add_argument(
        "--to",
        metavar="VERSION",
        help="the version a rotation event named; the newest enabled version is used if newer",
    )
    rewrap.add_argument(
        "--dry-run", action="store_true", help="count what would be done; write nothing"
    )
    rewrap.add_argument(
        "--restart", action="store_true", help="run a completed job again from the start"
    )
    rewrap.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help="in-flight unwraps (default %(default)s)",
    )
    rewrap.add_argument(
        "--page-size", type=int, default=DEFAULT_PAGE_SIZE, help="DEKs per page/checkpoint"
    )
    rewrap.add_argument(
        "--rate",
        type=float,
        help="operations per second (default: keyward's share of the vault's budget, half)",
    )
    rewrap.add_argument(
        "--allow-legacy-rsa1-5", action="store_true", help="read RSA1_5 DEKs (rewrap to OAEP)"
    )
    rewrap.add_argument(
        "--issues",
        type=Path,
        metavar="FILE",
        help="write every DEK that was not simply rewrapped to FILE (JSON lines)",
    )
    rewrap.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_sources(rewrap)
    _add_jobs(rewrap)
    add_deployment(rewrap, waits=True)
    rewrap.add_argument(
        "--wait",
        action="store_true",
        help="deployment mode: follow the jobs the Function App runs until they end",
    )

    status = commands.add_parser("status", help="show rewrap jobs and their checkpoints")
    status.add_argument("--vault", help=_VAULT_HELP)
    status.add_argument("--key", help="only jobs of this key (with --vault)")
    status.add_argument("--job", help="one job's details, by id")
    status.add_argument("--json", action="store_true", help="print as JSON")
    _add_jobs(status)
    add_deployment(status, waits=False)
    status.add_argument(
        "--limit", type=int, help="deployment mode: jobs per page, 1..200 (default 50)"
    )
    status.add_argument(
        "--continuation", help="deployment mode: the page after the one that named this token"
    )
    status.add_argument(
        "--operation", metavar="ID", help="deployment mode: one admin operation, by id"
    )

    retirement = commands.add_parser(
        "retirement", help="which old versions still have DEKs; which are safe to disable"
    )
    _add_key(retirement)
    retirement.add_argument(
        "--pinned",
        type=Path,
        metavar="FILE",
        help="JSON object: version -> [resource ids pinned to it] (extra blockers)",
    )
    retirement.add_argument("--json", action="store_true", help="print as JSON")
    _add_sources(retirement)
    _add_jobs(retirement)
    add_deployment(retirement, waits=True)

    retire = commands.add_parser(
        "retire",
        help="retire an old version: record it, drop the previous wraps kept under it, look again",
    )
    _add_key(retire)
    retire.add_argument("--version", required=True, help="the version to retire")
    retire.add_argument(
        "--pinned",
        type=Path,
        metavar="FILE",
        help="JSON object: version -> [resource ids pinned to it] (extra blockers)",
    )
    retire.add_argument("--json", action="store_true", help="print as JSON")
    _add_sources(retire)
    _add_jobs(retire)
    add_deployment(retire, waits=True)
    _add_store_jobs(commands)
    replay = commands.add_parser(
        "replay-dead-letters",
        help="replay the deployment's dead-lettered Event Grid events through the event handler",
    )
    replay.add_argument("--vault", help="only blobs whose events are all of this vault")
    replay.add_argument(
        "--dry-run", action="store_true", help="list what would be replayed; change nothing"
    )
    replay.add_argument(
        "--max-blobs",
        type=int,
        default=1000,
        help="blobs listed at most in this run (default %(default)s)",
    )
    replay.add_argument("--json", action="store_true", help="print the report as JSON")
    add_deployment(replay, waits=False, flag=False)
    add_onboard_commands(commands)
    return parser


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _add_store_job_options(parser: argparse.ArgumentParser) -> None:
    _add_key(parser)
    parser.add_argument(
        "--kek-table",
        help="Table stores: the table of intermediate keys (default: KEYWARD_KEK_TABLE or its "
        "default)",
    )
    parser.add_argument(
        "--rate",
        type=_positive,
        help="vault unwraps per second (default: keyward's share of the vault's budget, half)",
    )
    parser.add_argument(
        "--page-size", type=int, default=DEFAULT_JOB_PAGE_SIZE, help="records per checkpoint"
    )
    parser.add_argument(
        "--kek-ttl",
        type=float,
        metavar="SECONDS",
        help="how long the store's writers keep a KEK (default: KEYWARD_KEK_CACHE_SECONDS)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_sources(parser)


def _add_store_jobs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="move a store between direct and hierarchy mode (start or resume; resumable)",
    )
    migrate.add_argument(
        "--to", required=True, choices=["hierarchy", "direct"], help="the mode to end in"
    )
    migrate.add_argument(
        "--mode-ttl",
        type=float,
        metavar="SECONDS",
        help="how long the store's writers trust its mode (default: KEYWARD_MODE_TTL)",
    )
    migrate.add_argument(
        "--allow-legacy-rsa1-5",
        action="store_true",
        help="convert records wrapped with RSA1_5 (refused otherwise)",
    )
    _add_store_job_options(migrate)

    rotate = commands.add_parser(
        "rotate-keks",
        help="give a hierarchy-mode store's partitions new intermediate keys, rewrap their "
        "records locally, delete the old keys (resumable)",
    )
    rotate.add_argument("--partition", help="only this partition (tenant)")
    rotate.add_argument(
        "--older-than",
        type=_positive,
        metavar="DAYS",
        help="only partitions whose current KEK is at least DAYS old (the crypto-period)",
    )
    rotate.set_defaults(mode_ttl=None, allow_legacy_rsa1_5=False)
    _add_store_job_options(rotate)
