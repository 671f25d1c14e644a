"""The composition root gives the queue worker's engines the vaults' budget board, on the
context's one state-table client, and the shared-budget settings (the subscription groups
too)."""

from __future__ import annotations

import pytest

from devtools.azurite import AzuriteInfo
from shared.adapters.budget_board import TableBudgetBoard
from shared.composition import AppContext
from tests.composition.test_dependents_wiring import _Credential, _private, _settings

pytestmark = pytest.mark.azurite


async def test_the_rewrap_worker_runs_its_engines_on_the_state_tables_board(
    azurite: AzuriteInfo,
) -> None:
    settings = _settings(
        azurite,
        KEYWARD_VAULT_SHARE="0.25",
        KEYWARD_BUDGET_LEASE_SECONDS="30",
        KEYWARD_VAULT_SUBSCRIPTIONS="contoso-kv=sub1",
    )
    context = await AppContext.build(settings, credential=_Credential())  # type: ignore[arg-type]
    try:
        worker = context.rewrap_worker(max_dequeue_count=5)
        board = _private(worker, "_budget_board")
        assert isinstance(board, TableBudgetBoard)
        assert _private(board, "_table") is context.state_table
        engine_settings = _private(worker, "_engine_settings")
        assert engine_settings.vault_share == 0.25
        assert engine_settings.budget_lease_seconds == 30
        groups = engine_settings.subscription_groups
        assert groups.group_of("contoso-kv.vault.azure.net") == "sub1"
    finally:
        await context.aclose()
