"""NCRONTAB schedules (``{second} {minute} {hour} {day} {month} {day-of-week}``).

Why a wrapper around ``croniter`` rather than using it directly: Azure Functions timers take
exactly six fields with the seconds first, and croniter would also accept five (Unix) or
seven (with a year) fields, so the field count is checked here; everything else (ranges,
steps, lists, names, next-fire arithmetic) is croniter's. ``day_or=False`` keeps NCRONTAB's
rule that a restricted day *and* a restricted weekday must both match.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from croniter import croniter

#: Azure Functions' NCRONTAB form: seconds first, six fields.
_FIELD_COUNT = 6


@dataclass(frozen=True)
class Schedule:
    """A validated six-field NCRONTAB expression."""

    expression: str

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        """Parse a six-field NCRONTAB expression; raises ValueError when malformed."""
        fields = expression.split()
        if len(fields) != _FIELD_COUNT:
            raise ValueError(f"NCRONTAB {expression!r} needs 6 fields, has {len(fields)}")
        normalized = " ".join(fields)
        # croniter's errors (CroniterBadCronError...) are ValueErrors already.
        croniter.expand(normalized, second_at_beginning=True)
        return cls(normalized)

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first matching second strictly after ``moment``."""
        schedule = croniter(self.expression, moment, day_or=False, second_at_beginning=True)
        return schedule.get_next(dt.datetime)
