"""NCRONTAB, the schedule language of Azure Functions timers, read once for keyward.

``KEYWARD_SWEEP_SCHEDULE`` is checked here at start-up (a bad schedule would otherwise only
fail when the Functions host indexes the timer), and the local Functions host in ``devtools``
fires timers with the same class, so the app and its local host agree on what a schedule is.

croniter does the reading: value ranges, month and weekday names, steps, lists, and the
next-fire arithmetic. Its syntax is a superset of NCRONTAB's, so this module adds NCRONTAB's
own rules on top:

* exactly six fields, seconds first (croniter also takes five, or seven with a year);
* only numbers, three-letter names, ``*``, ranges, lists and ``/step`` (croniter also takes
  ``L``, ``W``, ``#``, ``?`` and ``H``, which NCRONTAB does not);
* day of week 0-6 (croniter also reads 7 as Sunday);
* a restricted day *and* a restricted weekday must both match (``day_or=False``; Unix cron,
  croniter's default, fires when either does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from croniter import CroniterError, croniter

#: NCRONTAB's fields in order, as error messages name them.
FIELDS = ("second", "minute", "hour", "day", "month", "day of week")
#: Where each of our fields sits in croniter's ``RANGES`` (minute first, second sixth).
_CRONITER_INDEX = (5, 0, 1, 2, 3, 4)
#: Month and weekday names are three letters (``jan``, ``mon``).
_NAME_LENGTH = 3


@dataclass(frozen=True)
class Ncrontab:
    """A validated six-field NCRONTAB expression (fields separated by single spaces)."""

    expression: str

    @classmethod
    def parse(cls, raw: str) -> Ncrontab:
        """Validate ``raw``.

        Raises:
            ValueError: says which field is wrong and what it may hold.
        """
        fields = raw.split()
        if len(fields) != len(FIELDS):
            raise ValueError(
                f"{raw[:60]!r} has {len(fields)} fields; NCRONTAB needs 6: "
                "{second} {minute} {hour} {day} {month} {day-of-week}"
            )
        for index, text in enumerate(fields):
            for part in text.split(","):
                _check_part(index, part)
        expression = " ".join(fields)
        # Each part is checked above; croniter reading the whole is the final word (the local
        # host fires timers with it), and its errors are ValueErrors too.
        croniter.expand(expression, second_at_beginning=True)
        return cls(expression)

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first matching second strictly after ``moment``.

        Raises:
            ValueError: the schedule never fires (``0 0 0 31 2 *``).
        """
        schedule = croniter(self.expression, moment, day_or=False, second_at_beginning=True)
        return schedule.get_next(dt.datetime)


def _check_part(index: int, part: str) -> None:
    """One comma-separated part of field ``index``: ``*``, a value or a range, then ``/step``."""
    label = FIELDS[index]
    base, _, step = part.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"{label} step {step!r} must be a positive number")
    if base == "*":
        return
    bounds = base.split("-")
    if len(bounds) > 2 or not all(bounds):
        raise ValueError(f"{label} {part!r} is not a value, range or */step")
    low, high = croniter.RANGES[_CRONITER_INDEX[index]]
    for bound in bounds:
        if not _is_value(index, bound, low, high):
            raise ValueError(f"{label} {bound!r} is outside {low}-{high}")


def _is_value(index: int, bound: str, low: int, high: int) -> bool:
    """Whether croniter reads ``bound`` alone as a value of field ``index`` that NCRONTAB has
    too: a number within the field's range, or a month or weekday name where those go."""
    if bound.isdigit():
        return low <= int(bound) <= high
    if not (bound.isalpha() and len(bound) == _NAME_LENGTH):
        return False
    probe = ["*"] * len(FIELDS)
    probe[index] = bound
    try:
        croniter.expand(" ".join(probe), second_at_beginning=True)
    except CroniterError:
        return False
    return True
