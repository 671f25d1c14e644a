"""Key Vault's per-vault throttle: a weighted budget over a sliding 10-second window.

Key Vault publishes its limits per key type (transactions per 10 s per vault); the figures
come from the one table in :mod:`shared.rewrap` (``vault_budget``), the same the rewrap engine
paces itself by. One budget expresses all of them: it is counted in RSA-2048-software units
(4,000 per window by default), and an operation costs ``4000 / limit(key type)`` units, so a
vault doing only RSA-4096 HSM work gets 250 per window, and mixed traffic shares one budget as
it does in the service. Operations without a key (list keys) cost one unit.

Why a sliding log rather than fixed windows: a fixed window lets twice the budget through
across a window boundary; the log guarantees that *no* 10-second span accepts more than the
budget, which is what "within 5% of the limit" needs. Refused requests (429) are not logged,
so they do not count, as the service documents. ``Retry-After`` is the number of whole seconds
until enough of the log has aged out for the refused request to fit.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.rewrap import BUDGET_WINDOW_SECONDS, vault_budget

#: The reference limit: RSA-2048 software keys, per 10-second window.
DEFAULT_BUDGET = float(vault_budget("RSA", 2048).operations_per_window)
DEFAULT_WINDOW_SECONDS = BUDGET_WINDOW_SECONDS


def operation_weight(kty: str | None, key_size: int | None) -> float:
    """Units one operation on a key of this type costs against the RSA-2048 budget."""
    return DEFAULT_BUDGET / vault_budget(kty, key_size).operations_per_window


@dataclass
class Throttle:
    """One vault's sliding-window budget."""

    budget: float = DEFAULT_BUDGET
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    enabled: bool = True
    clock: Callable[[], float] = time.monotonic
    _log: deque[tuple[float, float]] = field(default_factory=deque)
    _used: float = 0.0

    def configure(
        self,
        *,
        budget: float | None = None,
        window_seconds: float | None = None,
        enabled: bool | None = None,
    ) -> None:
        if budget is not None:
            if budget <= 0:
                raise ValueError("budget must be positive")
            self.budget = float(budget)
        if window_seconds is not None:
            if window_seconds <= 0:
                raise ValueError("window_seconds must be positive")
            self.window_seconds = float(window_seconds)
        if enabled is not None:
            self.enabled = enabled
        self.reset()

    def reset(self) -> None:
        self._log.clear()
        self._used = 0.0

    def _expire(self, now: float) -> None:
        horizon = now - self.window_seconds
        log = self._log
        while log and log[0][0] <= horizon:
            self._used -= log.popleft()[1]
        if not log:
            self._used = 0.0  # no float drift once empty

    def admit(self, weight: float) -> float | None:
        """Charge ``weight`` and return None, or return the Retry-After seconds (refused)."""
        if not self.enabled:
            return None
        now = self.clock()
        self._expire(now)
        if self._used + weight <= self.budget + 1e-9:
            self._log.append((now, weight))
            self._used += weight
            return None
        # Find when enough weight will have aged out for this request to fit.
        need = self._used + weight - self.budget
        freed = 0.0
        wait = self.window_seconds
        for stamp, spent in self._log:
            freed += spent
            if freed >= need - 1e-9:
                wait = stamp + self.window_seconds - now
                break
        return max(wait, 0.0)

    @property
    def used(self) -> float:
        self._expire(self.clock())
        return self._used


def retry_after_header(seconds: float) -> str:
    """Whole seconds, at least 1 (Retry-After is an integer number of seconds)."""
    return str(max(1, math.ceil(seconds)))
