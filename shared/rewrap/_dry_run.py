"""Dry-run: what a rewrap would do, without unwrapping or writing anything.

Streams the same scan the engine would make (flat memory), triages every record the way the
engine does, and counts: DEKs to rewrap per source version, those whose version the vault no
longer allows (they would be marked unreadable), those already current, those that would be
reported. Each rewrap or unreadable candidate costs one vault unwrap; the estimate divides
that by the rate the limiter would start at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.errors import InvalidInputError
from shared.rewrap._budget import VaultBudget, throttle_ceiling
from shared.rewrap._limiter import DEFAULT_HEADROOM
from shared.rewrap._ports import KeyVersionSource
from shared.rewrap._report import UnreadableReason
from shared.rewrap._retry import RetryPolicy, call_store
from shared.rewrap._target import RewrapPlan, VersionBook, resolve_target
from shared.rewrap._triage import Action, RecordTriage
from shared.rewrap._vault_share import DEFAULT_VAULT_SHARE
from shared.stores import DEFAULT_PAGE_SIZE, DekStore


@dataclass(frozen=True)
class DryRunReport:
    """What :meth:`RewrapEngine.run` would do now.

    Attributes:
        plan: the resolved target (the newest enabled version).
        scanned: records the scan returned.
        would_rewrap: source version -> DEKs that would be rewrapped.
        would_be_unreadable: reason -> DEKs whose version the vault no longer allows.
        already_current: DEKs at the target (or newer).
        would_fail: reason -> DEKs that would be reported and left untouched.
        rate: operations per second the estimate assumes.
    """

    plan: RewrapPlan
    scanned: int
    would_rewrap: dict[str, int] = field(default_factory=dict)
    would_be_unreadable: dict[str, int] = field(default_factory=dict)
    already_current: int = 0
    would_fail: dict[str, int] = field(default_factory=dict)
    rate: float = 0.0

    @property
    def budget(self) -> VaultBudget:
        return self.plan.budget

    @property
    def vault_operations(self) -> int:
        """Unwrap requests the run would send (one per DEK not current, before retries)."""
        return sum(self.would_rewrap.values()) + sum(self.would_be_unreadable.values())

    @property
    def estimated_seconds(self) -> float:
        """Time the vault budget allows for those operations (latency-bound runs take longer)."""
        return self.vault_operations / self.rate if self.rate > 0 else 0.0


@dataclass
class DryRunTally:
    """A dry run's counts so far: what a checkpoint keeps between pages (JSON-ready)."""

    scanned: int = 0
    current: int = 0
    rewrap: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"scanned": self.scanned, "current": self.current, "rewrap": dict(self.rewrap),
                "unreadable": dict(self.unreadable), "failed": dict(self.failed)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DryRunTally:
        """Raises: InvalidInputError: not what :meth:`to_dict` wrote."""
        try:
            return cls(
                int(data["scanned"]), int(data["current"]),
                *({str(k): int(v) for k, v in dict(data[name]).items()}
                  for name in ("rewrap", "unreadable", "failed")),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError):
            raise InvalidInputError("malformed dry-run tally") from None


class DryRunScan:
    """One dry run's plan over one store, page by page: :meth:`page` counts one scan page
    into a tally and returns the next continuation, so the run can stop after any page and
    resume from the tally and continuation it kept (nothing counted twice)."""

    def __init__(self, keys: KeyVersionSource, plan: RewrapPlan, *, page_size: int,
                 allow_legacy_rsa1_5: bool, retry: RetryPolicy | None) -> None:  # fmt: skip
        self.plan = plan
        self._book = VersionBook(keys, plan)
        self._triage = RecordTriage(
            plan.key_ref, plan.target_version, allow_legacy_rsa1_5=allow_legacy_rsa1_5
        )
        self._page_size = page_size
        self._policy = retry or RetryPolicy()

    @classmethod
    async def start(
        cls,
        keys: KeyVersionSource,
        key_ref: str,
        requested_version: str | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        allow_legacy_rsa1_5: bool = False,
        retry: RetryPolicy | None = None,
    ) -> DryRunScan:
        """Resolve the target (one vault read).

        Raises:
            RewrapTargetError: the requested version is missing or not enabled.
        """
        plan = await resolve_target(keys, key_ref, requested_version)
        return cls(keys, plan, page_size=page_size, allow_legacy_rsa1_5=allow_legacy_rsa1_5,
                   retry=retry)  # fmt: skip

    async def page(
        self, store: DekStore, tally: DryRunTally, continuation: str | None
    ) -> str | None:
        """Count one scan page into ``tally``; the next continuation (``None``: done).

        Raises:
            ServiceError: the vault or the store could not be read.
        """
        plan = self.plan
        page = await call_store(
            lambda: store.scan(
                plan.key_ref,
                exclude_version=plan.target_version,
                continuation=continuation,
                page_size=self._page_size,
            ),
            self._policy,
        )
        for record in page.records:
            tally.scanned += 1
            verdict = self._triage.classify(record)
            if verdict.action is Action.CURRENT:
                tally.current += 1
            elif verdict.action is Action.REPORT:
                tally.failed[verdict.reason] = tally.failed.get(verdict.reason, 0) + 1
            elif await self._book.is_ahead_of_target(verdict.version):
                tally.current += 1
            else:
                refusal = _refusal(plan, self._book, verdict.version)
                bucket, name = (tally.rewrap, verdict.version) if refusal is None else (
                    tally.unreadable, refusal)  # fmt: skip
                bucket[name] = bucket.get(name, 0) + 1
        return page.continuation

    def report(
        self, tally: DryRunTally, *, rate_ceiling: float | None = None,
        headroom: float = DEFAULT_HEADROOM, vault_share: float = DEFAULT_VAULT_SHARE,
    ) -> DryRunReport:  # fmt: skip
        """The counts, with the time keyward's whole share of the vault would take (a run
        that shares the vault with others gets a part of it)."""
        rate = throttle_ceiling(self.plan.budget, rate_ceiling, headroom, vault_share)
        return DryRunReport(self.plan, tally.scanned, dict(tally.rewrap), dict(tally.unreadable),
                            tally.current, dict(tally.failed), rate)  # fmt: skip


async def dry_run(
    store: DekStore,
    keys: KeyVersionSource,
    key_ref: str,
    requested_version: str | None = None,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    rate_ceiling: float | None = None,
    headroom: float = DEFAULT_HEADROOM,
    vault_share: float = DEFAULT_VAULT_SHARE,
    allow_legacy_rsa1_5: bool = False,
    retry: RetryPolicy | None = None,
) -> DryRunReport:
    """Scan and count; writes nothing, unwraps nothing, creates no job. Every page in one
    call (the CLI's way; the admin API runs :class:`DryRunScan` pages as an operation).

    Raises:
        RewrapTargetError: the requested version is missing or not enabled.
        ServiceError: the vault or the store could not be read.
    """
    scan = await DryRunScan.start(keys, key_ref, requested_version, page_size=page_size,
                                  allow_legacy_rsa1_5=allow_legacy_rsa1_5, retry=retry)  # fmt: skip
    tally, continuation = DryRunTally(), None
    while True:
        continuation = await scan.page(store, tally, continuation)
        if continuation is None:
            return scan.report(
                tally, rate_ceiling=rate_ceiling, headroom=headroom, vault_share=vault_share
            )


def _refusal(plan: RewrapPlan, book: VersionBook, version: str) -> str | None:
    info = book.known(version)
    if info is None:
        return UnreadableReason.KEY_NOT_FOUND.value
    if not info.enabled:
        return UnreadableReason.KEY_DISABLED.value
    return None
