"""Latency and fault injection for one vault's data plane, reproducible from a seed.

Latency is ``fixed_ms`` plus a uniform jitter in ``[0, jitter_ms]``, awaited with
``asyncio.sleep`` so a slow vault never stalls the emulator's event loop (the benchmark drives
hundreds of concurrent unwraps through one process). Faults are drawn per request from a
``random.Random(seed)``: a 5xx answer, a dropped connection (the socket is closed without a
response, as a crashed front end would), or a slow answer (``slow_ms`` extra delay). The same
seed and the same request order give the same faults. ``omit_retry_after_rate`` sends that
share of the throttle's 429s without ``Retry-After``, as Key Vault sometimes does. ``ops``
(comma-separated key operations, e.g. ``"unwrapkey"``) limits latency and faults to those
operations' requests (``POST /keys/{name}/{version}/{op}``); empty: every request.

Two faults real Key Vault never produces, for proving that keyward does not trust its peers
(issue 11 item 9): ``redirect_to`` (an origin, ``https://host:port``) answers every
authenticated request with ``307 Temporary Redirect`` to the same path and query there, as a
compromised front end or a hostile proxy might; ``next_link_origin`` makes every list page
name a ``nextLink`` on that origin (also on the last page), as a tampered answer might.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultPlan:
    """What one vault does to requests before answering them."""

    fixed_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: float = 0.0
    #: Share of 429 answers sent without ``Retry-After`` (the service sometimes omits it).
    omit_retry_after_rate: float = 0.0
    #: Comma-separated key operations (``wrapkey,unwrapkey``) the plan applies to; "": all.
    ops: str = ""
    #: Fault injection, not Key Vault behaviour: 307 every authenticated request to here.
    redirect_to: str = ""
    #: Fault injection, not Key Vault behaviour: list pages' nextLink on this origin.
    next_link_origin: str = ""
    seed: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def configure(self, **changes: Any) -> None:
        """Update the named fields (unknown names raise ValueError) and reseed."""
        for name, value in changes.items():
            if name.startswith("_") or name not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault setting {name!r}")
            if name == "error_status":
                value = int(value)
                if not 500 <= value <= 599:
                    raise ValueError("error_status must be a 5xx status")
            elif name == "seed":
                value = int(value)
            elif name == "ops":
                value = ",".join(op.strip().lower() for op in str(value).split(",") if op.strip())
            elif name in ("redirect_to", "next_link_origin"):
                value = str(value or "").rstrip("/")
                if value and not value.startswith(("https://", "http://")):
                    raise ValueError(f"{name} must be an http(s) origin")
            else:
                value = float(value)
                if value < 0 or (name.endswith("_rate") and value > 1):
                    raise ValueError(f"{name} out of range")
            setattr(self, name, value)
        self._rng.seed(self.seed)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if not k.startswith("_")}

    @property
    def active(self) -> bool:
        return bool(
            self.fixed_ms or self.jitter_ms or self.error_rate or self.drop_rate or self.slow_rate
        )

    def applies_to(self, path: str) -> bool:
        """Whether latency and faults apply to a request for ``path`` (see ``ops``)."""
        if not self.ops:
            return True
        return path.rstrip("/").rsplit("/", 1)[-1].lower() in self.ops.split(",")

    def omit_retry_after(self) -> bool:
        """Whether this 429 goes without ``Retry-After`` (drawn only for rates below 1)."""
        rate = self.omit_retry_after_rate
        if rate <= 0 or rate >= 1:
            return rate >= 1
        return self._rng.random() < rate

    def draw(self) -> tuple[float, str | None]:
        """(delay in seconds, fault) for one request; fault is "error", "drop" or None."""
        delay_ms = self.fixed_ms
        if self.jitter_ms:
            delay_ms += self._rng.uniform(0.0, self.jitter_ms)
        fault: str | None = None
        if self.error_rate or self.drop_rate or self.slow_rate:
            roll = self._rng.random()
            if roll < self.error_rate:
                fault = "error"
            elif roll < self.error_rate + self.drop_rate:
                fault = "drop"
            elif roll < self.error_rate + self.drop_rate + self.slow_rate:
                delay_ms += self.slow_ms
        return delay_ms / 1000.0, fault
