"""NCRONTAB, read once (``shared.settings.Ncrontab``): by the settings check at start-up and
by the local Functions host when it fires timers."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.errors import SettingError
from shared.settings import Ncrontab, Settings

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
    assert Ncrontab.parse(expression).next_after(T0) == expected


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
        Ncrontab.parse(expression)


def test_next_fire_is_strictly_after_a_matching_moment() -> None:
    schedule = Ncrontab.parse("0 */5 * * * *")
    at = dt.datetime(2026, 11, 29, 2, 45, 0, tzinfo=dt.UTC)
    assert schedule.next_after(at) == dt.datetime(2026, 11, 29, 2, 50, 0, tzinfo=dt.UTC)


def test_a_restricted_day_and_weekday_must_both_match() -> None:
    """NCRONTAB ANDs day-of-month and day-of-week (Unix cron would OR them)."""
    friday_13th = Ncrontab.parse("0 0 0 13 * 5").next_after(T0)
    assert friday_13th == dt.datetime(2027, 8, 13, 0, 0, 0, tzinfo=dt.UTC)


def test_next_fire_from_a_fractional_second() -> None:
    at = dt.datetime(2026, 11, 29, 2, 44, 59, 500_000, tzinfo=dt.UTC)
    expected = dt.datetime(2026, 11, 29, 2, 45, 0, tzinfo=dt.UTC)
    assert Ncrontab.parse("0 */5 * * * *").next_after(at) == expected


def test_a_schedule_that_never_fires_is_refused() -> None:
    with pytest.raises(ValueError):
        Ncrontab.parse("0 0 0 31 2 *").next_after(T0)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "*/5 * * * *",
            "'*/5 * * * *' has 5 fields; NCRONTAB needs 6: "
            "{second} {minute} {hour} {day} {month} {day-of-week}",
        ),
        ("0 60 * * * *", "minute '60' is outside 0-59"),
        ("0 */0 * * * *", "minute step '0' must be a positive number"),
        ("0 0 0 * * */x", "day of week step 'x' must be a positive number"),
        ("0 * * * FOO *", "month 'FOO' is outside 1-12"),
        ("0 0 0 * jan-foo *", "month 'foo' is outside 1-12"),
        ("0 1-2-3 * * * *", "minute '1-2-3' is not a value, range or */step"),
        ("0 0 0 * * 1-", "day of week '1-' is not a value, range or */step"),
        ("0 0 0 0 * *", "day '0' is outside 1-31"),
        ("0 0 0 sun * *", "day 'sun' is outside 1-31"),
        ("abc * * * * *", "second 'abc' is outside 0-59"),
        # croniter reads these; NCRONTAB (and so the Functions host) does not.
        ("0 0 0 * * 7", "day of week '7' is outside 0-6"),
        ("0 0 0 * * 0-7", "day of week '7' is outside 0-6"),
        ("0 0 0 L * *", "day 'L' is outside 1-31"),
        ("0 0 0 15W * *", "day '15W' is outside 1-31"),
        ("0 0 0 ? * *", "day '?' is outside 1-31"),
        ("0 0 0 * * 5#2", "day of week '5#2' is outside 0-6"),
        ("H 0 0 * * *", "second 'H' is outside 0-59"),
    ],
)
def test_the_settings_check_says_which_field_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(SettingError) as info:
        Settings.from_env(
            {
                "KEYWARD_VAULT_ALLOWLIST": "contoso-kv",
                "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                "KEYWARD_SWEEP_SCHEDULE": expression,
            }
        )
    assert info.value.setting == "KEYWARD_SWEEP_SCHEDULE"
    assert str(info.value).endswith(message)


@pytest.mark.parametrize(
    "expression", ["0 0 */2 * JAN-dec mon-FRI", "0 5/10 * * * *", "0 0 0 * * sun,sat"]
)
def test_names_ranges_steps_and_lists_are_read(expression: str) -> None:
    assert Ncrontab.parse(expression).expression == expression
