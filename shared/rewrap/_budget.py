"""Key Vault's published throttling budget for cryptographic operations, per vault.

Per 10 seconds (Azure Key Vault service limits): RSA-2048 4,000 for software keys and 2,000
for HSM-protected keys; RSA-3072 1,000 / 500; RSA-4096 500 / 250. Requests refused with 429
do not count. The rewrap engine's rate limiter starts from this figure and adapts (AIMD).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The window Key Vault counts operations over.
BUDGET_WINDOW_SECONDS = 10.0

# (RSA modulus bits) -> (software ops per window, HSM ops per window)
_RSA_BUDGETS: dict[int, tuple[int, int]] = {
    2048: (4000, 2000),
    3072: (1000, 500),
    4096: (500, 250),
}
#: Symmetric (oct-HSM) keys are not in the published table; use the most conservative figure.
_FALLBACK_OPS_PER_WINDOW = 250


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
        return VaultBudget(_FALLBACK_OPS_PER_WINDOW, f"{key_type} (conservative)")
    bits = key_size or 2048
    for size in sorted(_RSA_BUDGETS):
        if bits <= size:
            software, hsm_ops = _RSA_BUDGETS[size]
            label = f"RSA-{size} {'HSM' if hsm else 'software'}"
            return VaultBudget(hsm_ops if hsm else software, label)
    return VaultBudget(_FALLBACK_OPS_PER_WINDOW, f"RSA-{bits} (conservative)")
