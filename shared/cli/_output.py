"""What a command leaves behind: its exit code and its JSON output.

Exit codes: 0 done and clean; 3 done, but something needs attention (DEKs failed, unreadable
or in conflict, a job short of clean, a version that cannot be retired yet); 2 bad options or
configuration; 1 the command stopped on an error (a job resumes from its checkpoint when run
again). JSON shapes copy named fields only, so nothing added to a domain type later leaks
into the output by accident; none of them holds key material.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from shared.rewrap import DryRunReport, JobReport

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ATTENTION = 3


def exit_code(report: JobReport) -> int:
    """0 for a clean job, 3 when some DEKs need attention."""
    counters = report.counters
    if counters.failed_total or counters.unreadable_total or counters.conflicts:
        return EXIT_ATTENTION
    if report.status.short_of_clean:
        return EXIT_ATTENTION  # e.g. DEKs written under an old version while it ran
    return EXIT_OK


def report_dict(report: JobReport) -> dict[str, Any]:
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
        "allotment": report.allotment,
        "members": report.members,
        "binding_scope": report.binding_scope,
    }


def dry_run_dict(dry: DryRunReport) -> dict[str, Any]:
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


def print_json(console: Console, data: Any) -> None:
    console.file.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
