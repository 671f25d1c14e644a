"""A time slice's hard deadline, checked before every wait inside page work.

A queue-triggered worker must return before the host's ``functionTimeout``, or the host kills
it mid-page. Checking the slice only between pages is not enough: under sustained 429s one
page's unwraps can wait on ``Retry-After`` (and the retry loop) far longer than a slice. So
every wait the engine makes (the rate limiter's slot, a retry's backoff, a store retry) asks
the deadline first, and a wait that would end past it raises :class:`SliceDeadlineError`
instead of sleeping. The engine then stops the pass as a crash would (pages already
checkpointed stay; pages in flight are redone by the next slice: crash-resume semantics), and
pauses the job so the next message continues it.

A deadline is not an error of a DEK or of the vault, so the error is a ``KeywardError`` but not
a ``ServiceError``: no retry loop retries it and no item turns it into a verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.errors import KeywardError


class SliceDeadlineError(KeywardError):
    """A wait inside page work would end after the slice's hard deadline."""


class Deadline:
    """An instant on a monotonic clock that page work must not wait past."""

    def __init__(self, at: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.at = at
        self._clock = clock

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """The deadline ``seconds`` from now on ``clock``."""
        return cls(clock() + seconds, clock=clock)

    def later(self, seconds: float) -> Deadline:
        """The same clock, ``seconds`` later (the wrap-up allowance after the hard deadline)."""
        return Deadline(self.at + seconds, clock=self._clock)

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - self._clock()

    def expired(self) -> bool:
        return self._clock() >= self.at

    def check(self, wait: float, what: str) -> None:
        """Refuse a wait of ``wait`` seconds for ``what`` that would end past the deadline.

        Raises:
            SliceDeadlineError: ``now + wait`` is past the deadline.
        """
        left = self.remaining()
        if wait > left:
            raise SliceDeadlineError(
                f"waiting {wait:.1f} s for {what} would pass the slice deadline "
                f"({max(0.0, left):.1f} s left)"
            )


def check_wait(deadline: Deadline | None, wait: float, what: str) -> None:
    """:meth:`Deadline.check` when there is a deadline (``None``: unbounded, CLI and tests).

    Raises:
        SliceDeadlineError: the wait would end past the deadline.
    """
    if deadline is not None:
        deadline.check(wait, what)
