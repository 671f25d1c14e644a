"""One scanned page in flight: its items' outcomes, its pending writes, its counters.

A page is the unit of checkpointing: its counters join the job's only when the page and
every page before it are written and checkpointed together with the continuation after it.
Workers touch a page from one event loop, so plain attributes need no lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shared.rewrap._item import ItemVerdict
from shared.rewrap._report import FailureReason, ItemIssue, ItemOutcome, JobCounters
from shared.stores import DekRecord, Rewrap, WriteOutcome, WriteResult

#: Most items one ``replace_batch`` call carries (Table entity transactions allow 100).
MAX_BATCH = 100

IssueSink = Callable[[ItemIssue], None]


class Page:
    """Outcomes of one page's records until the page is checkpointed.

    Attributes:
        seq: position in the pass (checkpoints advance in this order).
        continuation_after: the store continuation that follows this page (``None``: last).
        remaining: records not yet decided.
        retry_conflicts: conflicts become pending re-reads (pass 1) instead of final.
    """

    __slots__ = (
        "_on_issue",
        "conflicts",
        "continuation_after",
        "counters",
        "issues",
        "remaining",
        "resolved",
        "retry_conflicts",
        "rewraps",
        "seq",
    )

    def __init__(
        self,
        seq: int,
        continuation_after: str | None,
        size: int,
        *,
        retry_conflicts: bool,
        on_issue: IssueSink | None,
    ) -> None:
        self.seq = seq
        self.continuation_after = continuation_after
        self.remaining = size
        self.retry_conflicts = retry_conflicts
        self.counters = JobCounters()
        self.issues: list[ItemIssue] = []
        self.rewraps: dict[str, list[Rewrap]] = {}
        #: Refs whose ETag changed (pass 1): re-read in the conflict pass.
        self.conflicts: list[str] = []
        #: Pending-conflict refs this page decided (pass 2).
        self.resolved: list[str] = []
        self._on_issue = on_issue

    def add_rewrap(self, rewrap: Rewrap) -> None:
        self.rewraps.setdefault(rewrap.record.partition, []).append(rewrap)

    def batches(self) -> list[list[Rewrap]]:
        """The pending writes, per partition, in chunks of at most :data:`MAX_BATCH`."""
        chunks: list[list[Rewrap]] = []
        for items in self.rewraps.values():
            chunks.extend(
                items[start : start + MAX_BATCH] for start in range(0, len(items), MAX_BATCH)
            )
        return chunks

    def add_verdict(self, record: DekRecord, verdict: ItemVerdict) -> None:
        """Count a decided record that needs no data write."""
        self.counters.count(verdict.outcome, verdict.reason)
        if verdict.outcome is not ItemOutcome.ALREADY_CURRENT:
            self._issue(record, verdict.outcome, verdict.reason, verdict.detail)

    def add_write(self, record: DekRecord, result: WriteResult, written: ItemVerdict) -> None:
        """Count the result of writing ``record`` (a rewrap, or an unreadable mark).

        ``written`` is the verdict to count when the write succeeded.
        """
        outcome = result.outcome
        if outcome is WriteOutcome.WRITTEN:
            self.counters.count(written.outcome, written.reason)
            if written.outcome is not ItemOutcome.REWRAPPED:
                self._issue(record, written.outcome, written.reason, written.detail)
        elif outcome is WriteOutcome.CONFLICT:
            if self.retry_conflicts:
                self.conflicts.append(record.ref)
            else:
                self.counters.count(ItemOutcome.CONFLICT)
                self._issue(record, ItemOutcome.CONFLICT, "etag_changed", "kept the other write")
        elif outcome is WriteOutcome.NOT_FOUND:
            self.counters.count(ItemOutcome.GONE)
            self._issue(record, ItemOutcome.GONE, "not_found", "deleted during the job")
        else:
            self.counters.count(ItemOutcome.FAILED, FailureReason.WRITE_FAILED)
            self._issue(record, ItemOutcome.FAILED, FailureReason.WRITE_FAILED, result.detail)

    def add_batch_results(self, rewraps: Sequence[Rewrap], results: Sequence[WriteResult]) -> None:
        """Count one ``replace_batch`` call's results.

        Raises:
            ValueError: the store answered with a different number of results.
        """
        rewrapped = ItemVerdict(ItemOutcome.REWRAPPED)
        for rewrap, result in zip(rewraps, results, strict=True):
            self.add_write(rewrap.record, result, rewrapped)

    def _issue(self, record: DekRecord, outcome: ItemOutcome, reason: str, detail: str) -> None:
        issue = ItemIssue(record.ref, outcome, str(reason), record.key_id, detail)
        self.issues.append(issue)
        if self._on_issue is not None:
            self._on_issue(issue)
