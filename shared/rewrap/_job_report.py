"""The answer of one ``RewrapEngine.run`` call: the job's final state plus how the run went."""

from __future__ import annotations

from dataclasses import dataclass

from shared.rewrap._budget import VaultBudget
from shared.rewrap._job_state import JobState, JobStatus
from shared.rewrap._report import ItemIssue, JobCounters


@dataclass(frozen=True)
class JobReport:
    """A job's outcome as seen by the run that finished it.

    Attributes:
        state: the job's stored state at the end of the run.
        requested_version: what the caller asked for (``None``: the newest).
        redirected: the request named an older version; the job targets the newest instead.
        resumed: the run continued from a checkpoint rather than starting fresh.
        already_completed: the job was complete before this call; nothing was done.
        elapsed_seconds: wall time of this run.
        budget: the vault budget the limiter started from.
        final_rate: the limiter's rate (operations per second) at the end of the run.
        rate_decreases: how many times the limiter backed off on 429.
        allotment: this run's part of keyward's share of the vault at its end (operations
            per second; the limiter's ceiling, which AIMD stays under).
        members: runs sharing the vault's budget at the last heartbeat, this one included
            (1: alone or no board; 0: the run sent nothing, e.g. the job had ended).
        binding_scope: whose part the allotment is: ``vault`` (its vault's members) or
            ``subscription`` (its subscription group's); ``""``: no board or no heartbeat.
    """

    state: JobState
    requested_version: str | None
    redirected: bool
    resumed: bool
    already_completed: bool
    elapsed_seconds: float
    budget: VaultBudget
    final_rate: float
    rate_decreases: int
    allotment: float = 0.0
    members: int = 0
    binding_scope: str = ""

    @property
    def job_id(self) -> str:
        return self.state.job_id

    @property
    def status(self) -> JobStatus:
        return self.state.status

    @property
    def counters(self) -> JobCounters:
        return self.state.counters

    @property
    def issues(self) -> tuple[ItemIssue, ...]:
        return self.state.issues

    @property
    def consistent(self) -> bool:
        """Every scanned DEK has exactly one outcome (or is a pending conflict)."""
        counters = self.state.counters
        return counters.scanned == counters.settled() + len(self.state.pending_conflicts)
