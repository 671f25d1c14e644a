"""What each finished pass of a job did: DEKs scanned, rewrapped, seconds, when it ended.

A job runs more than one full pass over its store in its life: the first, the sweep's
retries of a run that ended short of clean, operator restarts, and the periodic
*verification* passes the sweep asks for (issue 12: an application may insert a DEK under
an older version after the job ended; keyward is not in its write path, so only a fresh
pass finds it). Each pass is recorded when it ends, so status and the benchmark report a
verification's DEKs/s from the job itself, with no extra bookkeeping store.

``seconds`` is the time workers held the job during the pass (claim to checkpoint, summed
over its slices), not the wall time from start to end: the queue's wait between slices is
not throughput. The history is bounded (``MAX_PASSES_KEPT``, newest last), so a job that
is verified daily for years keeps a state of constant size.

A pass ends with a count of the DEKs it left behind (``shared.rewrap._left_behind``); at
10 million DEKs that count outlasts a slice, so it checkpoints like the scan does: a
:class:`LeftBehindCount` on the job, reset with every fresh pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Pass records kept on a job (the newest ones); older ones are dropped.
MAX_PASSES_KEPT = 10


@dataclass(frozen=True)
class PassRecord:
    """One ended pass of a job.

    Attributes:
        scanned: DEKs the pass read: the records the store's scan returned (a store that
            drops DEKs already at the target server-side returns only the others).
        rewrapped: DEKs it found under an older version and rewrapped.
        seconds: time workers spent on it (see the module docstring).
        started_at, ended_at: when its first slice claimed the job, and when it ended.
        verification: the sweep asked for it to verify a clean job (not a first run, a
            retry or a restart).
        status: how it ended (a ``JobStatus`` value).
    """

    scanned: int
    rewrapped: int
    seconds: float
    started_at: datetime
    ended_at: datetime
    verification: bool
    status: str

    @property
    def deks_per_second(self) -> float | None:
        """Scan throughput of the pass; ``None`` when it took no measurable time."""
        return self.scanned / self.seconds if self.seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        rate = self.deks_per_second
        return {
            "scanned": self.scanned,
            "rewrapped": self.rewrapped,
            "seconds": round(self.seconds, 3),
            "deks_per_second": round(rate, 1) if rate is not None else None,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "verification": self.verification,
            "status": self.status,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PassRecord:
        return cls(
            scanned=int(data["scanned"]),
            rewrapped=int(data.get("rewrapped", 0)),
            seconds=float(data["seconds"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            ended_at=datetime.fromisoformat(data["ended_at"]),
            verification=bool(data.get("verification", False)),
            status=str(data.get("status", "")),
        )


@dataclass(frozen=True)
class LeftBehindCount:
    """How far the current pass's count of DEKs left behind got: its checkpoint.

    The count pages the store (``DekStore.count_versions``) after the passes' scans; the
    job keeps where the next page starts and the total of the pages before it, written
    together (like the scan's continuation and counters), so a slice or a crash resumes the
    count without counting a page twice or starting over.

    Attributes:
        continuation: the store's continuation after the last counted page (``None``: the
            count has not started, or it is done: ``pages`` tells which).
        pages: count pages checkpointed so far.
        behind: DEKs left behind in those pages.
    """

    continuation: str | None = None
    pages: int = 0
    behind: int = 0

    @property
    def done(self) -> bool:
        """Whether the last page is counted (``behind`` is the pass's whole total)."""
        return self.pages > 0 and self.continuation is None

    def after(self, behind: int, continuation: str | None) -> LeftBehindCount:
        """This count with one more page: ``behind`` more DEKs, the next page's start."""
        return LeftBehindCount(continuation, self.pages + 1, self.behind + behind)

    def to_dict(self) -> dict[str, Any]:
        return {"continuation": self.continuation, "pages": self.pages, "behind": self.behind}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> LeftBehindCount:
        """The count :meth:`to_dict` wrote; a record written before counts were paged has
        none (``None``): the count starts from the beginning."""
        if not data:
            return cls()
        continuation = data.get("continuation")
        return cls(
            str(continuation) if continuation is not None else None,
            int(data.get("pages", 0)),
            int(data.get("behind", 0)),
        )


def appended(passes: tuple[PassRecord, ...], record: PassRecord) -> tuple[PassRecord, ...]:
    """``passes`` with ``record`` added last, keeping the newest ``MAX_PASSES_KEPT``."""
    return (*passes, record)[-MAX_PASSES_KEPT:]
