"""Named points where tests may stop a migration or KEK rotation, as a crash would.

The same idea as the rewrap engine's probes (``shared/rewrap/_probe.py``, which this floor
may not import): production passes none; a test passes a callable that raises a
``BaseException`` at a chosen point and hit count, and the job unwinds as a killed process
would, with no cleanup write and no checkpoint. The names are stable so tests enumerate them.
"""

from __future__ import annotations

from collections.abc import Callable

#: Called with a point name; may raise to simulate a crash there.
JobProbe = Callable[[str], None]

CLAIMED = "job.claimed"
MODE_SET = "job.mode_set"
WAIT_OVER = "job.wait_over"
PAGE_SCANNED = "job.page_scanned"
ROW_AFTER_UNWRAP = "row.after_unwrap"
ROW_AFTER_WRAP = "row.after_wrap"
ROW_AFTER_WRITE = "row.after_write"
ROW_CONFLICT = "row.conflict"
KEK_AFTER_CREATE = "kek.after_create"
KEK_AFTER_DELETE = "kek.after_delete"
PAGE_BEFORE_CHECKPOINT = "page.before_checkpoint"
CHECKPOINT_AFTER = "checkpoint.after"
COUNT_PAGE = "count.page"
BEFORE_FINAL_MODE = "job.before_final_mode"
FINAL_MODE_WRITTEN = "job.final_mode_written"

#: Every point the jobs instrument, roughly in order.
JOB_POINTS = (
    CLAIMED,
    MODE_SET,
    WAIT_OVER,
    PAGE_SCANNED,
    ROW_AFTER_UNWRAP,
    ROW_AFTER_WRAP,
    ROW_AFTER_WRITE,
    ROW_CONFLICT,
    KEK_AFTER_CREATE,
    KEK_AFTER_DELETE,
    PAGE_BEFORE_CHECKPOINT,
    CHECKPOINT_AFTER,
    COUNT_PAGE,
    BEFORE_FINAL_MODE,
    FINAL_MODE_WRITTEN,
)


def no_probe(point: str) -> None:
    """The production probe: does nothing."""
