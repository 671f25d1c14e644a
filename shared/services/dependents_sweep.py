"""The revocation sweep (the ``dependents_sweep`` timer): every key-dependent resource's verdict.

Key Vault emits no event when a key is disabled, deleted or purged, when it expires, nor for
RBAC changes. So every few minutes this sweep re-evaluates every key-dependent resource (Face
accounts, ``KeyDependents.sweep``): it flags access lost through disable, delete, purge,
expiry or a removed role, clears flags when access returns, and re-points stragglers whose
rotation event was missed.

It runs apart from the rewrap reconciliation (``shared.services.sweep``, the ``sweep``
timer), on its own schedule (``KEYWARD_DEPENDENTS_SWEEP_SCHEDULE``) and in its own
invocation: the reconciliation's cost grows with keys and stores, and a slow or failing
reconciliation must not delay a revocation flag, nor a failing inventory stop rewraps.
Its cost is one inventory listing and a handful of ARM and vault calls per resource, whatever
the number of DEKs. It is idempotent: with nothing changed, it publishes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from shared.services._ports import KeyDependents

_log = logging.getLogger("keyward.dependents_sweep")


@dataclass(frozen=True)
class DependentsSweepReport:
    """Each kind's summary (``DependentSummary``), keyed by kind name (``face``)."""

    summaries: object = None
    #: How resources were found (``resource_graph``, or the fallback and why); "" unknown.
    inventory: str = ""

    def log_line(self) -> str:
        """One line: how resources were found, and per kind its counts (ids and counts only,
        never key material)."""
        if not isinstance(self.summaries, Mapping) or not self.summaries:
            return "dependents sweep kinds=0"
        parts = []
        for kind, summary in self.summaries.items():
            as_dict = getattr(summary, "as_dict", None)
            counts = as_dict() if callable(as_dict) else {}
            shown = " ".join(
                f"{name}={value}"
                for name, value in counts.items()
                if name in ("accounts", "events", "tag_writes", "repointed", "failures")
            )
            parts.append(f"{kind}: {shown}".rstrip())
        found = f" inventory={self.inventory}" if self.inventory else ""
        return f"dependents sweep kinds={len(parts)}{found} " + "; ".join(parts)


class DependentsSweepService:
    """The service behind the ``dependents_sweep`` timer."""

    def __init__(self, dependents: KeyDependents) -> None:
        self._dependents = dependents

    async def run(self) -> DependentsSweepReport:
        """One sweep of every configured kind.

        Raises:
            ServiceError: a kind's inventory could not be listed (the next run tries again;
                the rewrap reconciliation is not affected).
        """
        summaries = await self._dependents.sweep()
        graph = getattr(self._dependents, "graph", None)  # AllDependents' shared inventory
        report = DependentsSweepReport(summaries, str(getattr(graph, "mode", "") or ""))
        _log.info(report.log_line())
        return report
