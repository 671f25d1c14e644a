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


def appended(passes: tuple[PassRecord, ...], record: PassRecord) -> tuple[PassRecord, ...]:
    """``passes`` with ``record`` added last, keeping the newest ``MAX_PASSES_KEPT``."""
    return (*passes, record)[-MAX_PASSES_KEPT:]
