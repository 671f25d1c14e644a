"""Rich output: progress bar and summary tables. Only counts, refs, key ids and reasons are
ever printed; nothing here sees key material."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from shared.rewrap import (
    DryRunReport,
    ItemIssue,
    JobReport,
    JobState,
    JobStatus,
)

#: Issues listed under a summary; the rest are counted.
MAX_ISSUES_SHOWN = 20


class ProgressBar:
    """A progress bar fed by the engine's per-checkpoint callback (cheap: once per page).

    It appears at the first checkpoint, so a job that is already complete prints no bar.
    """

    def __init__(self, console: Console, total: int | None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._task: TaskID | None = None
        self._total = total

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._progress.stop()

    def update(self, state: JobState) -> None:
        """Engine progress callback: DEKs decided so far (checkpointed)."""
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task("rewrap", total=self._total)
        label = "re-read conflicts" if state.pass_number == 2 else "rewrap"
        self._progress.update(self._task, completed=state.counters.scanned, description=label)


def job_table(state: JobState, title: str) -> Table:
    """Counters and identity of one job."""
    counters = state.counters
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("job", state.job_id),
        ("key", state.key_ref),
        ("store", state.scope),
        ("target version", state.target_version),
        ("status", state.status.value),
        ("scanned", str(counters.scanned)),
        ("rewrapped", str(counters.rewrapped)),
        ("already current", str(counters.already_current)),
        ("unreadable", _by_reason(counters.unreadable)),
        ("failed", _by_reason(counters.failed)),
        ("conflicts", str(counters.conflicts)),
        ("gone", str(counters.gone)),
        ("pending conflicts", str(len(state.pending_conflicts))),
        ("vault operations", str(counters.vault_operations)),
        ("throttled (429)", str(counters.throttled)),
        ("pages checkpointed", str(state.pages)),
        ("left under older versions", str(state.left_behind)),
        ("attempts", f"{state.attempts} of {state.max_attempts}"),
        ("updated", state.updated_at.isoformat(timespec="seconds")),
    ]
    failed = state.status is JobStatus.FAILED
    if failed:
        rows.append(("failures in a row", f"{state.failures} of {state.max_attempts}"))
    if failed or (state.next_attempt_at is not None and state.status.short_of_clean):
        rows.append(("next retry", _next_retry(state)))
    if state.restart_requested:
        rows.append(("restart", "requested"))
    if state.owner:
        rows.append(("owner", state.owner))
    if state.error:
        rows.append(("error", state.error))
    for name, value in rows:
        table.add_row(name, value)
    return table


def render_report(console: Console, report: JobReport) -> None:
    """The summary after ``rewrap``."""
    notes = []
    if report.already_completed:
        ended = (
            "already completed"
            if report.status is JobStatus.COMPLETED
            else f"already ended ({report.status.value})"
        )
        notes.append(f"{ended}: nothing done (use --restart to run again)")
    if report.status.short_of_clean:
        notes.append(
            f"{report.status.value}: not every DEK is under the target; "
            "the sweep retries it (or run again with --restart)"
        )
    if report.redirected:
        notes.append(f"requested {report.requested_version} is older: rewrapped to the newest")
    if report.resumed:
        notes.append("resumed from a checkpoint")
    console.print(job_table(report.state, "rewrap job"))
    for note in notes:
        console.print(f"[yellow]{note}")
    if not report.already_completed:
        seconds = max(report.elapsed_seconds, 1e-9)
        console.print(
            f"{report.counters.rewrapped / seconds:.0f} DEKs/s; budget "
            f"{report.budget.description} {report.budget.operations_per_second:.0f} ops/s; "
            f"final rate {report.final_rate:.0f} ops/s; backed off {report.rate_decreases}x"
        )
    render_issues(console, report.issues, report.state.issues_dropped)


def render_issues(console: Console, issues: Sequence[ItemIssue], dropped: int) -> None:
    if not issues:
        return
    table = Table(title="DEKs not rewrapped")
    for column in ("ref", "outcome", "reason", "detail"):
        table.add_column(column)
    for issue in issues[:MAX_ISSUES_SHOWN]:
        table.add_row(issue.ref, issue.outcome.value, issue.reason, issue.detail)
    console.print(table)
    more = len(issues) - MAX_ISSUES_SHOWN + dropped
    if more > 0:
        console.print(f"... and {more} more (see the counters)")


def render_dry_run(console: Console, dry: DryRunReport) -> None:
    table = Table(title=f"dry run: {dry.plan.key_ref} -> {dry.plan.target_version}")
    table.add_column("what")
    table.add_column("DEKs", justify="right")
    for version, count in sorted(dry.would_rewrap.items()):
        table.add_row(f"rewrap from {version}", str(count))
    for reason, count in sorted(dry.would_be_unreadable.items()):
        table.add_row(f"unreadable ({reason})", str(count))
    for reason, count in sorted(dry.would_fail.items()):
        table.add_row(f"reported ({reason})", str(count))
    table.add_row("already current", str(dry.already_current))
    table.add_row("scanned", str(dry.scanned))
    console.print(table)
    if dry.plan.redirected:
        console.print(f"[yellow]requested {dry.plan.requested_version} is older: target newest")
    console.print(
        f"{dry.vault_operations} vault operations; about {dry.estimated_seconds:.1f} s at "
        f"{dry.rate:.0f} ops/s ({dry.budget.description}); nothing was written"
    )


def render_jobs(console: Console, states: Sequence[JobState]) -> None:
    table = Table(title="rewrap jobs")
    columns = ("job", "key", "target", "status", "scanned", "rewrapped", "failed", "updated")
    for column in columns:
        table.add_column(column)
    for state in states:
        status = state.status.value
        if state.status.short_of_clean or state.status is JobStatus.FAILED:
            status += f" ({_next_retry(state)})"
        table.add_row(
            state.job_id,
            state.key_ref,
            state.target_version,
            status,
            str(state.counters.scanned),
            str(state.counters.rewrapped),
            str(state.counters.failed_total + state.counters.unreadable_total),
            state.updated_at.isoformat(timespec="seconds"),
        )
    console.print(table)


def _next_retry(state: JobState) -> str:
    """When the sweep retries a job that ended short of clean or failed, or that it will not."""
    done = state.failures if state.status is JobStatus.FAILED else state.attempts
    if state.status is JobStatus.FAILED and state.refused and not state.restart_requested:
        return "target refused: not retried until a new version or a restart"
    if state.gave_up:
        return f"gave up after {done} attempts: restart it"
    if state.next_attempt_at is None:
        return f"attempt {done + 1} of {state.max_attempts} due"
    when = state.next_attempt_at.isoformat(timespec="seconds")
    return f"attempt {done + 1} of {state.max_attempts} after {when}"


def _by_reason(counts: dict[str, int]) -> str:
    if not counts:
        return "0"
    detail = ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items()))
    return f"{sum(counts.values())} ({detail})"
