"""A seeded slice of the retirement campaign in ``make test`` (the full run: see
docs/reliability.md). No "safe to disable" the slice acts on may lose a DEK, blob or
snapshot."""

from __future__ import annotations

import pytest

from devtools.azurite import AzuriteInfo
from tests.campaign._run import campaign

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

SEED = 11
SLICE = 24


async def test_no_safe_verdict_loses_data(azurite: AzuriteInfo) -> None:
    figures, _ = await campaign(azurite.connection_string, scenarios=SLICE, seed=SEED)

    assert figures.scenarios == SLICE
    assert figures.lost == []
    assert figures.deks_lost == 0
    assert figures.safe_verdicts_acted_on > 0  # the slice does reach "safe" and act on it
    assert figures.retire_done > 0
