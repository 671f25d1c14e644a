"""JSON shapes of what the admin API and the logs report. Pure.

Everything here is ids, versions, counts and reasons: job states, dry runs and retirement
reports never hold key material, and these functions copy only named fields, so a field
added to a domain type later does not leak into a response by accident.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.rewrap import DryRunReport, JobState, JobStatus, RetirementReport


def job_json(state: JobState) -> dict[str, Any]:
    counters = state.counters
    return {
        "job_id": state.job_id,
        "key": state.key_ref,
        "shard": state.scope or None,
        "target_version": state.target_version,
        "status": state.status.value,
        "pass": state.pass_number,
        "pages": state.pages,
        "scanned": counters.scanned,
        "rewrapped": counters.rewrapped,
        "already_current": counters.already_current,
        "unreadable": counters.unreadable_total,
        "failed": counters.failed_total,
        "conflicts": counters.conflicts,
        "created_at": state.created_at.isoformat(),
        "updated_at": state.updated_at.isoformat(),
        "finished_at": state.finished_at.isoformat() if state.finished_at else None,
        "error": state.error,
        "left_behind": state.left_behind,
        "attempts": state.attempts,
        "max_attempts": state.max_attempts,
        "next_attempt_at": state.next_attempt_at.isoformat() if state.next_attempt_at else None,
        "retry": _retry(state),
        "failures": state.failures,
        "restart_requested": state.restart_requested,
        "verification": state.verification,
        "passes": [record.to_dict() for record in state.passes],
        "issues": [
            {"ref": i.ref, "outcome": i.outcome.value, "reason": i.reason, "key_id": i.key_id}
            for i in state.issues[:20]
        ],
    }


def dry_run_json(shard: str, report: DryRunReport) -> dict[str, Any]:
    return {
        "shard": shard,
        "key": report.plan.key_ref,
        "target_version": report.plan.target_version,
        "scanned": report.scanned,
        "would_rewrap": dict(report.would_rewrap),
        "would_be_unreadable": dict(report.would_be_unreadable),
        "would_fail": dict(report.would_fail),
        "already_current": report.already_current,
        "vault_operations": report.vault_operations,
        "estimated_seconds": round(report.estimated_seconds, 1),
        "rate_per_second": round(report.rate, 1),
    }


def retirement_json(report: RetirementReport) -> dict[str, Any]:
    """One key's verdict over every store: per version, its status and every blocker by kind
    (with counts, and names for immutable copies, resources and jobs), and every watched
    resource pinned to it (``pinned_resources``: kind, the resource's own kind, id, name)."""
    return {
        "key": report.key_ref,
        "newest_enabled": report.newest_enabled,
        "shards": list(report.stores),
        "versions": [
            {
                "version": v.version,
                "current": v.current,
                "previous": v.previous,
                "unreadable": v.unreadable,
                "immutable_copies": v.copies,
                "pinned": list(v.pinned),
                "pinned_resources": [p.to_dict() for p in v.pinned_resources],
                "enabled": v.enabled,
                "newest": v.newest,
                "retired": v.retired,
                "status": v.status,
                "safe_to_disable": v.safe_to_disable,
                "blockers": v.blockers,
                "blocker_kinds": [blocker.to_dict() for blocker in v.blocker_list],
                "alerts": v.alerts,
                "superseded_at": _iso(v.superseded_at),
                "answerable_at": _iso(v.answerable_at),
            }
            for v in report.versions
        ],
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def _retry(state: JobState) -> str | None:
    """Whether the sweep runs the job again on its own: ``scheduled``, ``gave_up`` (attempts
    spent), ``refused`` (the vault refused its target: a new version or a restart runs it)."""
    if state.gave_up:
        return "gave_up"
    failed = state.status is JobStatus.FAILED
    if failed and state.refused and not state.restart_requested:
        return "refused"
    if failed or state.status.short_of_clean or state.restart_requested:
        return "scheduled"
    return None
