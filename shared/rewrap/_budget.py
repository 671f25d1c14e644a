"""Key Vault's published throttling budget for cryptographic operations, per vault.

The one table of these figures: the rewrap engine paces itself by it, and the local emulator
(devtools) charges its throttle by it, so both agree on every key type and size.

Source: Azure Key Vault service limits, "Key transactions (maximum transactions allowed in 10
seconds, per vault per region)", the "All other transactions" columns
(https://learn.microsoft.com/azure/key-vault/general/service-limits): RSA-2048 4,000 for
software keys and 2,000 for HSM-protected keys; RSA-3072 1,000 / 500; RSA-4096 500 / 250.
Requests refused with 429 do not count. Symmetric keys (``oct-HSM``, Managed HSM only) have no
row: Managed HSM publishes no transaction limit for cryptographic operations (its scaling
guidance says it does not throttle them and gives only measured hardware throughput), so they
get the lowest published figure, as do RSA keys larger than 4,096 bits. The rewrap engine's
rate limiter starts from this figure and adapts (AIMD).

Key Vault also counts a whole subscription: "the subscription-wide limit for all transaction
types is five times the individual key vault limit" (Azure Key Vault throttling guidance, "How
to throttle your app in response to service limits",
https://learn.microsoft.com/azure/key-vault/general/overview-throttling):
:data:`SUBSCRIPTION_BUDGET_FACTOR`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

#: The window Key Vault counts operations over.
BUDGET_WINDOW_SECONDS = 10.0

#: RSA modulus bits -> (software-key ops, HSM-key ops) per :data:`BUDGET_WINDOW_SECONDS`.
RSA_OPERATIONS_PER_WINDOW: Mapping[int, tuple[int, int]] = MappingProxyType(
    {
        2048: (4000, 2000),
        3072: (1000, 500),
        4096: (500, 250),
    }
)
#: A subscription's budget in vault budgets: every vault of one subscription together may use
#: this many times one vault's figure (the throttling guidance cited above).
SUBSCRIPTION_BUDGET_FACTOR = 5
#: The lowest published figure: for key types and sizes the table does not list (``oct-HSM``).
CONSERVATIVE_OPERATIONS_PER_WINDOW = min(
    ops for pair in RSA_OPERATIONS_PER_WINDOW.values() for ops in pair
)


@dataclass(frozen=True)
class VaultBudget:
    """How many operations per second a vault allows for one key's type and size.

    Attributes:
        operations_per_window: the published figure per :data:`BUDGET_WINDOW_SECONDS`.
        description: e.g. ``"RSA-2048 software"``, for reports.
    """

    operations_per_window: int
    description: str

    @property
    def operations_per_second(self) -> float:
        return self.operations_per_window / BUDGET_WINDOW_SECONDS


def vault_budget(key_type: str | None, key_size: int | None) -> VaultBudget:
    """The published budget for a key of ``key_type`` (``RSA``, ``RSA-HSM``, ``oct-HSM``...).

    Sizes between published ones use the next larger size (a stricter budget). When the vault
    did not say (Key Vault's list-versions answer omits the key type), an RSA-2048 software
    key is assumed: the most common case, and the limiter's AIMD backs off on the first 429s
    if the key is in fact an HSM or a larger one.
    """
    if key_type is None:
        budget = vault_budget("RSA", key_size)
        return VaultBudget(budget.operations_per_window, budget.description + " (assumed)")
    hsm = key_type.upper().endswith("-HSM")
    if not key_type.upper().startswith("RSA"):
        return VaultBudget(CONSERVATIVE_OPERATIONS_PER_WINDOW, f"{key_type} (conservative)")
    bits = key_size or 2048
    for size in sorted(RSA_OPERATIONS_PER_WINDOW):
        if bits <= size:
            software, hsm_ops = RSA_OPERATIONS_PER_WINDOW[size]
            label = f"RSA-{size} {'HSM' if hsm else 'software'}"
            return VaultBudget(hsm_ops if hsm else software, label)
    return VaultBudget(CONSERVATIVE_OPERATIONS_PER_WINDOW, f"RSA-{bits} (conservative)")


def throttle_ceiling(
    budget: VaultBudget, rate_ceiling: float | None, headroom: float, share: float
) -> float:
    """Operations per second a run aims at when it is alone on its vault: the operator's
    ``rate_ceiling`` when set, else keyward's whole share of the vault, :func:`share_fraction`
    of the published budget (the one rule the engine and dry-run share). Runs that share a vault
    split that share (``shared.rewrap._vault_share``)."""
    return rate_ceiling or budget.operations_per_second * share_fraction(share, headroom)


def share_fraction(share: float, headroom: float) -> float:
    """The fraction of a published budget keyward aims at, all its runs together.

    The headroom is the vault's, not the share's: Key Vault counts the whole vault's traffic
    per window, so the ``1 - headroom`` kept free against window edges and clock skew must be
    free in the *vault*, and keyward leaves it out of its own share. With 0.98 of a 0.5 share
    (0.49) the vault ran at 3,960 of 4,000 per 10 s beside an application at its full half, and
    the application got 429s (bench (f), 2026-12-06); with ``0.5 - 0.02`` it runs at 3,920. A
    share too small to give up that much (below twice the headroom) keeps half of itself.
    """
    return max(share - (1.0 - headroom), share / 2)
