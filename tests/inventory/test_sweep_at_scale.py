"""Issue 15's done-when, against the emulator: 3 subscriptions, 240 resources of mixed kinds
(Face, OpenAI, SpeechServices, storage), one sweep finds and judges every one of them with
Resource Graph in at most 3 ARM requests for the inventory (a request count, not a speed)."""

from __future__ import annotations

import pytest

from bench._inventory import seed_mixed
from tests.inventory.conftest import InventoryLab

pytestmark = [pytest.mark.emulator, pytest.mark.azurite, pytest.mark.slow]
RESOURCES = 240


async def test_a_sweep_of_240_mixed_resources_takes_at_most_3_inventory_requests(
    lab: InventoryLab,
) -> None:
    first = lab.key()
    second = lab.key()  # a rotation: half the resources stay pinned to the first version
    made = seed_mixed(
        lab.client, lab.control, vault=lab.vault_name, vault_url=lab.vault_url, key="cmk",
        pinned_version=first, subscriptions=lab.subscriptions, group=lab.group,
        count=RESOURCES,
    )  # fmt: skip
    dependents, _, _ = lab.build()
    lab.control.reset_requests()
    summaries = await dependents.sweep()

    assert lab.control.inventory_requests() <= 3
    # The resources, and which watched subscriptions the caller can read (none missing).
    assert lab.control.requests()["POST Microsoft.ResourceGraph/resources"] == 2
    assert {k: s.accounts for k, s in summaries.items()} == {
        "face": RESOURCES // 4, "cognitive": RESOURCES // 2, "storage": RESOURCES // 4,
    }  # fmt: skip
    judged = {k: sum(s.statuses.values()) for k, s in summaries.items()}
    assert judged == {k: s.accounts for k, s in summaries.items()}, "every one judged"
    assert sum(s.failures for s in summaries.values()) == 0
    # Every pinned resource of every kind is in the report's look-up; of those that follow
    # the latest, the storage accounts count where ARM says they are (the newest here).
    pinned = await dependents.pinned_versions(lab.key_ref)
    assert set(pinned) == {first, second}
    assert len(pinned[first]) == RESOURCES // 2
    assert {p.kind for p in pinned[first]} == {"face", "cognitive", "storage"}  # type: ignore[attr-defined]
    assert {p.kind for p in pinned[second]} == {"storage"}  # type: ignore[attr-defined]
    assert len(pinned[second]) == RESOURCES // 8
    assert len(made) == RESOURCES
