"""NCRONTAB parsing and next-fire computation for the local host's timers."""

from __future__ import annotations

import datetime as dt

import pytest

from devtools.localhost.ncrontab import Schedule

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
    "expression", ["* * * * *", "61 * * * * *", "0 0 25 * * *", "*/0 * * * * *", "x * * * * *"]
)
def test_malformed_schedules_are_refused(expression: str) -> None:
    with pytest.raises(ValueError):
        Schedule.parse(expression)


def test_next_fire_is_strictly_after_a_matching_moment() -> None:
    schedule = Schedule.parse("0 */5 * * * *")
    at = dt.datetime(2026, 11, 29, 2, 45, 0, tzinfo=dt.UTC)
    assert schedule.next_after(at) == dt.datetime(2026, 11, 29, 2, 50, 0, tzinfo=dt.UTC)
