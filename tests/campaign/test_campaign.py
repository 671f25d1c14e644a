"""Seeded slices of the retirement campaign in ``make test`` (the full run: see
docs/reliability.md). No "safe to disable" a slice acts on may lose a DEK, blob, snapshot or
pinned resource."""

from __future__ import annotations

import pytest

from devtools.azurite import AzuriteInfo
from devtools.emulator.process import RunningEmulator
from tests.campaign._run import campaign

SEED = 11
#: Scenarios 0..23 on in-process keys; 24..26 on the emulator (the real Key Vault adapter).
LOCAL_SLICE = 24
EMULATOR_SLICE = 3


@pytest.mark.azurite
@pytest.mark.slow
async def test_no_safe_verdict_loses_data(azurite: AzuriteInfo) -> None:
    figures, _ = await campaign(azurite.connection_string, scenarios=LOCAL_SLICE, seed=SEED)

    assert figures.scenarios == LOCAL_SLICE
    assert figures.lost == []
    assert figures.deks_lost == 0
    assert figures.retired_writes == 0
    assert figures.safe_verdicts_acted_on > 0  # the slice does reach "safe" and act on it
    assert figures.retire_done > 0
    assert figures.crashes > 0


@pytest.mark.azurite
@pytest.mark.emulator
@pytest.mark.slow
async def test_no_safe_verdict_loses_data_through_the_vault(
    azurite: AzuriteInfo, emulator: RunningEmulator
) -> None:
    figures, _ = await campaign(
        azurite.connection_string,
        scenarios=EMULATOR_SLICE,
        seed=SEED,
        first=LOCAL_SLICE,
        emulator=emulator,
    )

    assert figures.scenarios == EMULATOR_SLICE
    assert figures.lost == []
    assert figures.safe_verdicts_acted_on > 0
