"""An AIMD rate limiter for vault operations: pace at the budget, back off on 429, recover.

Pacing is GCRA (virtual scheduling): each ``acquire`` reserves the next slot ``1/rate`` after
the previous one and sleeps until it, so N concurrent workers share one rate without a token
refill task or a lock, at O(1) per call. On a 429 the rate is cut multiplicatively (once per
"generation": answers to requests issued before the last cut do not cut again, or a burst of
64 in-flight 429s would divide the rate by 2**64) and every slot waits out ``Retry-After``.
Key Vault does not always send ``Retry-After``; without one the pause is chosen here and
doubles with each generation that is throttled again (1, 2, 4, 8 s, at most one 10-second
Key Vault window), back to the start after a success. A ``Retry-After`` is capped by
:func:`shared.errors.cap_retry_after` (finite, at most ``MAX_RETRY_AFTER_SECONDS``) however it
reached here, and ``acquire`` refuses (``SliceDeadlineError``) a slot past the slice deadline.
GCRA alone lets a worker that wakes late (a stalled event loop, a starved process) send on
its old slot, so after a stall every slot that fell inside it goes out at once: bench (f)
measured bursts of 500-690/s from members paced at 33/s, and the vault's other users got the
429s. So a second guard counts what was sent over the last :data:`SEND_WINDOW_SECONDS`: a slot
that would take the window past ``rate x window`` (plus one) waits until the oldest send in it
ages out. Any one-second window holding at most the rate, every ten-second Key Vault window
does too.
Each success adds ``increase_per_second / rate``, i.e. the rate climbs by
``increase_per_second`` per second of clean traffic, back up to the ceiling.

The ceiling may change while the limiter runs (a vault's shared budget is re-split whenever a
member joins or leaves: :mod:`shared.rewrap._membership`): a lower ceiling applies at once; a
higher one is reached at once unless this run was throttled within the last Key Vault window
(nothing says the vault is short: bench (f) saw a dead member's part take 1 to 3 s more to
come back when survivors climbed to it), otherwise by the additive increase as after a 429
(the vault said so just now; climb back carefully). Sending can also be *held* (a joiner
waiting to be counted, a member that lost the board): ``acquire`` then waits until
:meth:`release`, or refuses at the deadline.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

from shared.errors import cap_retry_after
from shared.rewrap._deadline import Deadline, SliceDeadlineError, check_wait

#: Fraction of the published budget to aim at: Key Vault counts per 10 s window, and edges
#: of that window (clock skew, a burst at start) would otherwise cost 429s.
DEFAULT_HEADROOM = 0.98
#: Rate multiplier on a 429 (the "multiplicative decrease").
DEFAULT_DECREASE_FACTOR = 0.7
#: Seconds of the ceiling's rate that may be spent at once after an idle spell.
DEFAULT_BURST_SECONDS = 0.02
#: Sleeps end on a grid of this many seconds, so workers whose slots fall in one tick wake in
#: one event-loop iteration instead of one each (at 400/s: 50 wake-ups a second, not 400).
#: Slots stay 1/rate apart, so pacing over any window is unchanged; an op starts at most one
#: tick after its slot.
DEFAULT_TICK_SECONDS = 0.02
#: Retry-After assumed when a 429 does not carry one (doubled per throttled generation).
DEFAULT_RETRY_AFTER_SECONDS = 1.0
#: The longest self-chosen pause: one Key Vault throttling window, after which the whole
#: budget has renewed.
MAX_SELF_BACKOFF_SECONDS = 10.0
#: The floor of the multiplicative decrease (or the ceiling, when that is lower).
_MIN_RATE = 1.0
#: The trailing window the stall guard counts sends over (see the module docstring): short
#: enough that a burst after a stall is cut within it, long enough to hold several slots at
#: the lowest parts (a member at 1 op/s may still send one).
SEND_WINDOW_SECONDS = 1.0
#: Buckets the window is counted in: a one-second window holds at most one bucket (0.1 s) of
#: sends more than the rate.
_WINDOW_BUCKETS = 10
#: The lowest ceiling: a vault's share split among many members can be below one operation
#: a second (RSA-4096 HSM keys: 25/s published), and must still not be exceeded.
_MIN_CEILING = 0.01


class AimdRateLimiter:
    """Paces operations at an adaptive rate no higher than ``ceiling`` per second."""

    def __init__(
        self,
        ceiling: float,
        *,
        start_rate: float | None = None,
        decrease_factor: float = DEFAULT_DECREASE_FACTOR,
        increase_per_second: float | None = None,
        burst_seconds: float = DEFAULT_BURST_SECONDS,
        tick_seconds: float = DEFAULT_TICK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if ceiling < _MIN_CEILING:
            raise ValueError(f"rate ceiling must be at least {_MIN_CEILING} per second")
        if not 0 < decrease_factor < 1:
            raise ValueError("decrease_factor must be between 0 and 1")
        self._ceiling = ceiling
        self._rate = min(ceiling, start_rate if start_rate is not None else ceiling)
        self._decrease_factor = decrease_factor
        #: The additive increase follows the ceiling unless the caller fixed it.
        self._increase_fixed = bool(increase_per_second)
        self._increase = increase_per_second if increase_per_second else ceiling * 0.1
        self._burst = burst_seconds
        self._tick = tick_seconds
        self._clock = clock
        self._sleep = sleep
        self._next_slot = clock()
        self._blocked_until = 0.0
        self._last_decrease = float("-inf")
        self.decreases = 0
        #: Throttled generations in a row without a Retry-After (reset by a success).
        self._unguided = 0
        self._open = asyncio.Event()
        self._open.set()
        #: Bumped when the ceiling is lowered: slots reserved before at the old rate are
        #: taken again at the new one when their time comes.
        self._epoch = 0
        self.hold_reason = ""
        #: Sends within the last :data:`SEND_WINDOW_SECONDS`, as ``[bucket, count]`` pairs
        #: (the stall guard), and their total.
        self._sent: deque[list[int]] = deque()
        self._sent_total = 0

    @property
    def rate(self) -> float:
        """The current rate in operations per second."""
        return self._rate

    @property
    def ceiling(self) -> float:
        return self._ceiling

    @property
    def held(self) -> bool:
        return not self._open.is_set()

    def set_ceiling(self, ceiling: float) -> None:
        """Change the ceiling while running: lower at once (slots already reserved at the
        old rate are taken again at the new one); higher at once unless throttled within the
        last Key Vault window (10 s), else the rate climbs to it by the additive increase."""
        ceiling = max(_MIN_CEILING, ceiling)
        if ceiling == self._ceiling:
            return
        raised = ceiling > self._ceiling
        self._ceiling = ceiling
        if not self._increase_fixed:
            self._increase = ceiling * 0.1
        if not raised:
            self._rate = min(self._rate, ceiling)
            self._epoch += 1
            self._next_slot = min(self._next_slot, self._clock())
        elif self._clock() - self._last_decrease >= MAX_SELF_BACKOFF_SECONDS:
            # No 429 within one Key Vault window: nothing says the vault is fuller than the
            # board does, so a part handed back (a member left or died) is taken at once.
            self._rate = ceiling

    def hold(self, reason: str) -> None:
        """Send nothing until :meth:`release` (``reason`` is for logs and deadline errors)."""
        self.hold_reason = reason
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def _released(self, deadline: Deadline | None) -> None:
        """Wait out a hold; at the deadline, refuse rather than wait on.

        Raises:
            SliceDeadlineError: the hold lasted until ``deadline``.
        """
        while not self._open.is_set():
            left = None if deadline is None else deadline.remaining()
            if left is not None and left <= 0:
                raise SliceDeadlineError(f"sending held ({self.hold_reason}) at the deadline")
            try:
                async with asyncio.timeout(left):  # not wait_for: it may swallow a cancel
                    await self._open.wait()
            except TimeoutError:
                raise SliceDeadlineError(
                    f"sending held ({self.hold_reason}) until the slice deadline"
                ) from None

    async def acquire(self, deadline: Deadline | None = None) -> float:
        """Wait for this operation's slot; returns the time it was issued at (for 429s).

        Raises:
            SliceDeadlineError: the slot is past ``deadline`` (nothing is waited for), or
                sending is held until it.
        """
        while True:
            if not self._open.is_set():
                await self._released(deadline)
            now = self._clock()
            # Credit for missed slots is kept for one tick plus the burst: a worker woken late
            # by the tick grid keeps its place, but an idle spell does not bank a burst.
            slot = max(self._next_slot, now - self._burst - self._tick, self._blocked_until)
            self._next_slot = slot + 1.0 / self._rate
            epoch = self._epoch
            if slot > now:
                wake = math.ceil(slot / self._tick) * self._tick if self._tick > 0 else slot
                check_wait(deadline, wake - now, "the vault's rate limit")
                await self._sleep(wake - now)
                if not (self._open.is_set() and epoch == self._epoch):
                    continue
            sent_at = await self._window_allows(deadline, epoch)
            if sent_at is not None:
                return sent_at

    async def _window_allows(self, deadline: Deadline | None, epoch: int) -> float | None:
        """Wait while the last :data:`SEND_WINDOW_SECONDS` already hold ``rate x window``
        (plus one) sends, then count this one and return its time; ``None`` if a hold or a
        lowered ceiling came meanwhile (the caller books its slot again).

        Sends are counted in :data:`_WINDOW_BUCKETS` buckets of the window, so the guard's
        memory stays constant at any rate (an unpaced run sends a million a second)."""
        width = SEND_WINDOW_SECONDS / _WINDOW_BUCKETS
        buckets = self._sent
        while True:
            now = self._clock()
            current = math.floor(now / width)
            while buckets and buckets[0][0] <= current - _WINDOW_BUCKETS:
                self._sent_total -= buckets.popleft()[1]
            if self._sent_total < int(self._rate * SEND_WINDOW_SECONDS) + 1:
                if buckets and buckets[-1][0] == current:
                    buckets[-1][1] += 1
                else:
                    buckets.append([current, 1])
                self._sent_total += 1
                return now
            wait = (buckets[0][0] + _WINDOW_BUCKETS) * width - now
            check_wait(deadline, wait, "the vault's rate limit")
            await self._sleep(wait)
            if not (self._open.is_set() and epoch == self._epoch):
                return None
            # Held while it waited (a member that lost the board sends nothing more), or the
            # ceiling was lowered (the slot was spaced at the old rate): take a fresh slot.

    def on_success(self) -> None:
        """Additive increase: ``increase_per_second`` more per second of successes."""
        self._unguided = 0
        if self._rate < self._ceiling:
            self._rate = min(self._ceiling, self._rate + self._increase / self._rate)

    def on_throttled(self, issued_at: float, retry_after: float | None) -> None:
        """A request issued at ``issued_at`` got a 429: wait ``retry_after``, cut the rate."""
        now = self._clock()
        new_generation = issued_at > self._last_decrease
        pause = cap_retry_after(retry_after)
        pause = pause if pause is not None and pause > 0 else None
        if pause is None:
            # No Retry-After: back off on our own, longer for each generation throttled again.
            if new_generation:
                self._unguided += 1
            doubling = DEFAULT_RETRY_AFTER_SECONDS * 2.0 ** min(max(self._unguided, 1) - 1, 16)
            pause = min(MAX_SELF_BACKOFF_SECONDS, doubling)
        self._blocked_until = max(self._blocked_until, now + pause)
        if new_generation:
            floor = min(_MIN_RATE, self._ceiling)
            self._rate = max(floor, self._rate * self._decrease_factor)
            self._last_decrease = now
            self.decreases += 1
