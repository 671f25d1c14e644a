"""The revocation sweep's service (issue 12): every kind's sweep, one log line, nothing of the
rewrap reconciliation. The port is faked (it is keyward's own, not Azure's); the timers
themselves run against Azurite and the emulator in ``tests/e2e/test_sweep_isolation.py``."""

from __future__ import annotations

import inspect
import logging
from collections import Counter

import pytest

from shared.errors import ServiceError
from shared.services._dependent_effects import DependentSummary
from shared.services.dependents_sweep import DependentsSweepReport, DependentsSweepService
from shared.services.sweep import SweepService


class Dependents:
    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.sweeps = 0

    async def sweep(self) -> object:
        self.sweeps += 1
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


async def test_one_run_sweeps_every_kind_once_and_logs_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    summary = DependentSummary(accounts=2, statuses=Counter(ACCESS_LOST=2), repointed=1)
    dependents = Dependents({"face": summary})
    service = DependentsSweepService(dependents)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="keyward.dependents_sweep"):
        report = await service.run()
    assert dependents.sweeps == 1
    assert report.summaries == {"face": summary}
    assert report.log_line().startswith("dependents sweep kinds=1 face: accounts=2 ")
    assert "repointed=1" in report.log_line()
    assert [r.getMessage() for r in caplog.records] == [report.log_line()]


def test_no_configured_kind_is_a_quiet_line() -> None:
    assert DependentsSweepReport({}).log_line() == "dependents sweep kinds=0"
    assert DependentsSweepReport(None).log_line() == "dependents sweep kinds=0"


async def test_a_failing_inventory_raises_to_its_own_timer() -> None:
    service = DependentsSweepService(Dependents(ServiceError("ARM unavailable")))  # type: ignore[arg-type]
    with pytest.raises(ServiceError):
        await service.run()


def test_the_rewrap_reconciliation_no_longer_runs_the_dependents() -> None:
    """The reconciliation cannot reach the key-dependent resources at all: it is not given them."""
    assert "dependents" not in inspect.signature(SweepService).parameters
