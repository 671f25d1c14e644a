"""Named points where tests may stop the engine, as a crash would.

Production passes no probe. Tests pass a callable that raises a ``BaseException`` at a chosen
point (and hit count), which unwinds the engine the way a killed process would: no cleanup
writes, no checkpoint. The names are stable so crash tests can enumerate them.
"""

from __future__ import annotations

from collections.abc import Callable

#: Called with a point name; may raise to simulate a crash there.
FaultProbe = Callable[[str], None]

JOB_CLAIMED = "job.claimed"
PAGE_SCANNED = "page.scanned"
ITEM_BEFORE_UNWRAP = "item.before_unwrap"
ITEM_AFTER_UNWRAP = "item.after_unwrap"
ITEM_AFTER_WRAP = "item.after_wrap"
UNREADABLE_BEFORE_MARK = "unreadable.before_mark"
UNREADABLE_AFTER_MARK = "unreadable.after_mark"
PAGE_BEFORE_WRITE = "page.before_write"
BATCH_AFTER_WRITE = "batch.after_write"
PAGE_BEFORE_CHECKPOINT = "page.before_checkpoint"
CHECKPOINT_AFTER = "checkpoint.after"
CONFLICT_REREAD_START = "conflict_reread.start"
COUNT_CHECKPOINT_AFTER = "count.after_checkpoint"
JOB_BEFORE_COMPLETE = "job.before_complete"

#: Every point the engine itself instruments, in pipeline order.
ENGINE_POINTS = (
    JOB_CLAIMED,
    PAGE_SCANNED,
    ITEM_BEFORE_UNWRAP,
    ITEM_AFTER_UNWRAP,
    ITEM_AFTER_WRAP,
    UNREADABLE_BEFORE_MARK,
    UNREADABLE_AFTER_MARK,
    PAGE_BEFORE_WRITE,
    BATCH_AFTER_WRITE,
    PAGE_BEFORE_CHECKPOINT,
    CHECKPOINT_AFTER,
    CONFLICT_REREAD_START,
    COUNT_CHECKPOINT_AFTER,
    JOB_BEFORE_COMPLETE,
)


def no_probe(point: str) -> None:
    """The production probe: does nothing."""
