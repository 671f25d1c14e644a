"""Shows the Wycheproof counts in pytest's terminal summary (also under xdist)."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get(
        "failed", []
    ):
        for name, value in getattr(report, "user_properties", []):
            if name == "wycheproof_counts":
                terminalreporter.write_sep("-", "wycheproof")
                terminalreporter.write_line(str(value))
