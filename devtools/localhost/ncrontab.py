"""NCRONTAB schedules (``{second} {minute} {hour} {day} {month} {day-of-week}``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day", 1, 31),
    ("month", 1, 12),
    ("weekday", 0, 6),
)
_MAX_LOOKAHEAD = dt.timedelta(days=366 * 4)


def _parse_field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, _, step_text = part.partition("/")
            step = int(step_text)
            if step < 1:
                raise ValueError(f"step must be positive in {text!r}")
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            first, _, last = part.partition("-")
            start, end = int(first), int(last)
        else:
            start = end = int(part)
            if "/" in text:
                end = high
        if not low <= start <= end <= high:
            raise ValueError(f"{text!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        """Parse a six-field NCRONTAB expression; raises ValueError when malformed."""
        fields = expression.split()
        if len(fields) != 6:
            raise ValueError(f"NCRONTAB {expression!r} needs 6 fields, has {len(fields)}")
        parsed = [
            _parse_field(text, low, high)
            for text, (_, low, high) in zip(fields, _FIELDS, strict=False)
        ]
        return cls(*parsed)

    def matches(self, moment: dt.datetime) -> bool:
        weekday = (moment.weekday() + 1) % 7  # cron: Sunday is 0
        return (
            moment.second in self.seconds
            and moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.day in self.days
            and moment.month in self.months
            and weekday in self.weekdays
        )

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first matching second strictly after ``moment``."""
        candidate = moment.replace(microsecond=0) + dt.timedelta(seconds=1)
        limit = moment + _MAX_LOOKAHEAD
        while candidate < limit:
            if candidate.month not in self.months:
                candidate = (
                    candidate.replace(day=1, hour=0, minute=0, second=0) + dt.timedelta(days=32)
                ).replace(day=1)
                continue
            if candidate.day not in self.days or (candidate.weekday() + 1) % 7 not in self.weekdays:
                candidate = candidate.replace(hour=0, minute=0, second=0) + dt.timedelta(days=1)
                continue
            if candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0, second=0) + dt.timedelta(hours=1)
                continue
            if candidate.minute not in self.minutes:
                candidate = candidate.replace(second=0) + dt.timedelta(minutes=1)
                continue
            if candidate.second not in self.seconds:
                candidate += dt.timedelta(seconds=1)
                continue
            return candidate
        raise ValueError("schedule never fires")
