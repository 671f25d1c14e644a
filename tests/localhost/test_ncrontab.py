"""NCRONTAB parsing and next-fire computation for the local host's timers."""

from __future__ import annotations

import datetime as dt

import pytest

from devtools.localhost.bindings import Schedule

T0 = dt.datetime(2026, 11, 29, 2, 41, 17, tzinfo=dt.UTC)  # a Sunday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 */5 * * * *", dt.datetime(2026, 11, 29, 2, 45, 0, tzinfo=dt.UTC)),
        ("*/10 * * * * *", dt.datetime(2026, 11, 29, 2, 41, 20, tzinfo=dt.UTC)),
        ("30 0 3 * * *", dt.datetime(2026, 11, 29, 3, 0, 30, tzinfo=dt.UTC)),
        ("0 0 0 1 * *", dt.datetime(2026, 12, 1, 0, 0, 0, tzinfo=dt.UTC)),
        ("0 0 9 * * 1-5", dt.datetime(2026, 11, 30, 9, 0, 0, tzinfo=dt.UTC)),
        ("0 0 0 1 1 *", dt.datetime(2027, 1, 1, 0, 0, 0, tzinfo=dt.UTC)),
        ("0 15,45 * * * *", dt.datetime(2026, 11, 29, 2, 45, 0, tzinfo=dt.UTC)),
    ],
)
def test_next_fire_time(expression: str, expected: dt.datetime) -> None:
    assert Schedule.parse(expression).next_after(T0) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",
        "0 0 0 * * * 2027",
        "61 * * * * *",
        "0 0 25 * * *",
        "*/0 * * * * *",
        "x * * * * *",
    ],
)
def test_malformed_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        Schedule.parse(expression)


def test_next_fire_is_strictly_after_a_matching_moment() -> None:
    schedule = Schedule.parse("0 */5 * * * *")
    at = dt.datetime(2026, 11, 29, 2, 45, 0, tzinfo=dt.UTC)
    assert schedule.next_after(at) == dt.datetime(2026, 11, 29, 2, 50, 0, tzinfo=dt.UTC)


def test_a_restricted_day_and_weekday_must_both_match() -> None:
    """NCRONTAB ANDs day-of-month and day-of-week (Unix cron would OR them)."""
    friday_13th = Schedule.parse("0 0 0 13 * 5").next_after(T0)
    assert friday_13th == dt.datetime(2027, 8, 13, 0, 0, 0, tzinfo=dt.UTC)


def test_next_fire_from_a_fractional_second() -> None:
    at = dt.datetime(2026, 11, 29, 2, 44, 59, 500_000, tzinfo=dt.UTC)
    expected = dt.datetime(2026, 11, 29, 2, 45, 0, tzinfo=dt.UTC)
    assert Schedule.parse("0 */5 * * * *").next_after(at) == expected


def test_a_schedule_that_never_fires_is_refused() -> None:
    with pytest.raises(ValueError):
        Schedule.parse("0 0 0 31 2 *").next_after(T0)
