"""Tuning of a rewrap run, and a worker's identity for job leases."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from shared.rewrap._limiter import DEFAULT_HEADROOM
from shared.rewrap._retry import RetryPolicy
from shared.rewrap._subscription_groups import SubscriptionGroups
from shared.rewrap._vault_share import DEFAULT_BUDGET_LEASE_SECONDS, DEFAULT_VAULT_SHARE
from shared.stores import DEFAULT_COUNT_PAGE_SIZE, DEFAULT_PAGE_SIZE

#: Unwraps in flight per worker: at least rate x latency (400/s x 20-80 ms = 8-32); 64 leaves
#: room for a slow or contended host (docs/benchmarks.md). The one default for the engine,
#: ``KEYWARD_REWRAP_CONCURRENCY`` and ``keyward rewrap --workers``.
DEFAULT_WORKERS = 64
#: Seconds a queue-triggered worker runs before it checkpoints and enqueues a continuation;
#: kept below host.json's ``functionTimeout`` (10 minutes).
DEFAULT_SLICE_SECONDS = 240

#: host.json's ``functionTimeout`` in seconds. Pinned here, not read from host.json when the
#: context is built: host.json is the host's file (the worker may not find it where tests do,
#: and a missing file must not silently lift the bound), while a constant is checked where
#: settings are read. ``tests/test_app.py`` pins the two together, as
#: ``functions.rewrap_worker.MAX_DEQUEUE_COUNT`` is pinned to ``maxDequeueCount``.
FUNCTION_TIMEOUT_SECONDS = 600
#: After the slice's soft end (no new page is scanned), pages in flight get this long to
#: finish; then the hard deadline: no wait inside page work may end past it.
SLICE_DRAIN_SECONDS = 45
#: After the hard deadline: cancel what is in flight, write the pause, enqueue the
#: continuation (ledger writes may still wait this long on store retries).
SLICE_WRAP_UP_SECONDS = 45
#: A slice's total allowance beyond ``KEYWARD_REWRAP_SLICE_SECONDS``: drain, wrap-up and 30 s
#: for the host (message settlement, logging) before ``functionTimeout``.
SLICE_SAFETY_MARGIN_SECONDS = SLICE_DRAIN_SECONDS + SLICE_WRAP_UP_SECONDS + 30
#: The longest slice the settings accept: slice + margin must end before the timeout.
MAX_SLICE_SECONDS = FUNCTION_TIMEOUT_SECONDS - SLICE_SAFETY_MARGIN_SECONDS


@dataclass(frozen=True)
class EngineSettings:
    """Tuning of a rewrap run; the defaults suit Key Vault's RSA-2048 budget.

    Attributes:
        page_size: records per scan page (and per checkpoint).
        workers: in-flight unwraps; ~ rate x latency (400/s x 20-80 ms) with room to spare.
        pages_in_flight: pages scanned ahead of the last checkpoint (bounds memory).
        rate_ceiling: operations per second to aim at; ``None``: keyward's share of the
            vault's published budget for the key's type and size (``vault_share x headroom``),
            split with the other runs on the vault when a budget board is given. On a board
            it caps this run's part; alone it replaces the share (an operator's explicit rate).
        headroom: fraction of the published budget to use.
        vault_share: fraction of the vault's budget keyward takes, every run together.
        budget_lease_seconds: how long a run's row on the vault's budget board lasts without a
            heartbeat (heartbeats every fifth of it).
        subscription_groups: which vaults share a subscription's budget (the second scope of
            the board; unnamed vaults are all in one group).
        lease_seconds: how long a worker's claim on a job lasts without a checkpoint.
        max_issues: per-item issues kept in the job state (the rest are only counted).
        max_pending_conflicts: conflicts re-read in pass 2 (the rest are final at once).
        allow_legacy_rsa1_5: unwrap RSA1_5 DEKs (rewrapped with RSA-OAEP-256).
        retry: retry bounds for vault and store calls.
        count_page_size: records per page (and per checkpoint) of the count of DEKs left
            behind that ends a pass: one service page, as the stores count by default.
    """

    page_size: int = DEFAULT_PAGE_SIZE
    workers: int = DEFAULT_WORKERS
    pages_in_flight: int = 8
    rate_ceiling: float | None = None
    headroom: float = DEFAULT_HEADROOM
    vault_share: float = DEFAULT_VAULT_SHARE
    budget_lease_seconds: float = DEFAULT_BUDGET_LEASE_SECONDS
    subscription_groups: SubscriptionGroups = field(default_factory=SubscriptionGroups)
    lease_seconds: float = 300.0
    max_issues: int = 200
    max_pending_conflicts: int = 10_000
    allow_legacy_rsa1_5: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    count_page_size: int = DEFAULT_COUNT_PAGE_SIZE


def default_owner() -> str:
    """This worker's identity for job leases: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"
