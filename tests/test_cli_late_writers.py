"""The CLI's verdict table says "not yet (from ...)" and why, for a just-superseded version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Console

from shared.cli._retire import render_retirement
from shared.rewrap import RetirementReport, VersionRetirement
from tests.rewrap.fakes import KEY_REF, V1, V2

ROTATED = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)


def test_the_table_says_not_yet_and_from_when() -> None:
    answerable = ROTATED + timedelta(seconds=155)
    report = RetirementReport(KEY_REF, V2, (
        VersionRetirement(V1, enabled=True, superseded_at=ROTATED, answerable_at=answerable,
                          too_soon=True),
        VersionRetirement(V2, enabled=True, newest=True),
    ))  # fmt: skip
    console = Console(record=True, width=300)
    render_retirement(console, report)
    text = console.export_text()

    assert "not yet (from 2026-12-06T16:02:35+00:00)" in text
    assert f"{V1}: superseded too recently: writers may still land wraps under it" in text
