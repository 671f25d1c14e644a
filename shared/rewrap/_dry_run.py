"""Dry-run: what a rewrap would do, without unwrapping or writing anything.

Streams the same scan the engine would make (flat memory), triages every record the way the
engine does, and counts: DEKs to rewrap per source version, those whose version the vault no
longer allows (they would be marked unreadable), those already current, those that would be
reported. Each rewrap or unreadable candidate costs one vault unwrap; the estimate divides
that by the rate the limiter would start at (keyward's whole share of the vault: a run that
shares the vault with others gets a part of it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    """Scan and count; writes nothing, unwraps nothing, creates no job.

    Raises:
        RewrapTargetError: the requested version is missing or not enabled.
        ServiceError: the vault or the store could not be read.
    """
    plan = await resolve_target(keys, key_ref, requested_version)
    triage = RecordTriage(
        plan.key_ref, plan.target_version, allow_legacy_rsa1_5=allow_legacy_rsa1_5
    )
    book = VersionBook(keys, plan)
    policy = retry or RetryPolicy()
    rewrap: dict[str, int] = {}
    unreadable: dict[str, int] = {}
    failed: dict[str, int] = {}
    scanned = current = 0
    continuation: str | None = None
    while True:
        page = await call_store(
            lambda c=continuation: store.scan(  # type: ignore[misc]
                plan.key_ref,
                exclude_version=plan.target_version,
                continuation=c,
                page_size=page_size,
            ),
            policy,
        )
        for record in page.records:
            scanned += 1
            verdict = triage.classify(record)
            if verdict.action is Action.CURRENT:
                current += 1
            elif verdict.action is Action.REPORT:
                failed[verdict.reason] = failed.get(verdict.reason, 0) + 1
            elif await book.is_ahead_of_target(verdict.version):
                current += 1
            else:
                refusal = _refusal(plan, book, verdict.version)
                if refusal is None:
                    rewrap[verdict.version] = rewrap.get(verdict.version, 0) + 1
                else:
                    unreadable[refusal] = unreadable.get(refusal, 0) + 1
        if page.continuation is None:
            break
        continuation = page.continuation
    rate = throttle_ceiling(plan.budget, rate_ceiling, headroom, vault_share)
    return DryRunReport(plan, scanned, rewrap, unreadable, current, failed, rate)


def _refusal(plan: RewrapPlan, book: VersionBook, version: str) -> str | None:
    info = book.known(version)
    if info is None:
        return UnreadableReason.KEY_NOT_FOUND.value
    if not info.enabled:
        return UnreadableReason.KEY_DISABLED.value
    return None
