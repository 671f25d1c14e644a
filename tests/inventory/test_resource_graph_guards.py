"""A partial Resource Graph answer never passes for a whole inventory: paging that repeats or
dangles a ``$skipToken``, says ``resultTruncated`` with no token, or runs past ``MAX_PAGES``
stops with a ServiceError; a watched subscription keyward cannot read (Resource Graph
silently leaves it out) fails the retirement look-up of every kind that watches it, naming
it, while sweeps judge what is visible. Against
the emulator with azure-mgmt-resourcegraph; the retirement look-up is the real one."""

from __future__ import annotations

import pytest

from shared.adapters import resource_graph
from shared.adapters.resource_graph import INCOMPLETE
from shared.errors import AccessDeniedError, ServiceError
from tests.inventory.conftest import InventoryLab

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]
STORAGE_ONLY = {
    "KEYWARD_DEPENDENT_KINDS": "storage",
    "KEYWARD_FACE_SUBSCRIPTIONS": "",
    "KEYWARD_COGNITIVE_SUBSCRIPTIONS": "",
}


def _resources(lab: InventoryLab) -> str:
    """Two storage accounts in each subscription, pinned to the key's first version."""
    version = lab.key()
    for subscription in lab.subscriptions:
        lab.storage(version, subscription=subscription)
        lab.storage(version, subscription=subscription)
    return version


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("repeat-token", "repeated a $skipToken"),
        ("empty-page-with-token", "returned an empty page with a $skipToken"),
        ("truncated", "said its result is truncated and gave no $skipToken"),
    ],
)
async def test_a_broken_page_sequence_is_an_incomplete_inventory(
    lab: InventoryLab, fault: str, says: str
) -> None:
    _resources(lab)
    dependents, _, _ = lab.build(**STORAGE_ONLY)
    assert dependents.graph is not None
    dependents.graph._page_size = 2  # type: ignore[attr-defined]  # several pages
    lab.control.resource_graph_fault(fault)
    with pytest.raises(ServiceError) as raised:
        await dependents.pinned_versions(lab.key_ref)
    assert raised.value.code == INCOMPLETE
    assert not raised.value.transient
    assert not isinstance(raised.value, AccessDeniedError), "not taken for a refusal"
    assert says in str(raised.value)
    assert dependents.graph.mode == resource_graph.MODE_RESOURCE_GRAPH
    lab.control.resource_graph_fault("")  # a whole answer again: the same look-up works
    pinned = await dependents.pinned_versions(lab.key_ref)
    assert sum(len(ids) for ids in pinned.values()) == 2 * len(lab.subscriptions)


async def test_more_pages_than_the_cap_is_an_incomplete_inventory(
    lab: InventoryLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    _resources(lab)
    dependents, _, _ = lab.build(**STORAGE_ONLY)
    assert dependents.graph is not None
    dependents.graph._page_size = 1  # type: ignore[attr-defined]  # six rows of ours: six pages
    monkeypatch.setattr(resource_graph, "MAX_PAGES", 4)
    with pytest.raises(ServiceError, match="had more than 4 pages") as raised:
        await dependents.pinned_versions(lab.key_ref)
    assert raised.value.code == INCOMPLETE


async def test_a_watched_subscription_keyward_cannot_read_fails_the_inventory(
    lab: InventoryLab,
) -> None:
    version = _resources(lab)
    hidden = lab.subscriptions[2]
    lab.control.unreadable_subscriptions([hidden])
    dependents, _, _ = lab.build(**STORAGE_ONLY)
    lab.control.reset_requests()
    with pytest.raises(AccessDeniedError, match=hidden) as raised:
        await dependents.pinned_versions(lab.key_ref)
    assert raised.value.status == 403
    # Both queries were asked (resources, readable subscriptions), no listing instead.
    assert lab.control.requests() == {"POST Microsoft.ResourceGraph/resources": 2}
    # A sweep judges what it can see (no flag is cleared for what it cannot).
    (storage,) = dependents.services
    summary = await storage.sweep()
    assert (summary.accounts, summary.failures) == (2 * (len(lab.subscriptions) - 1), 0)
    assert storage.kind.inventory.missing_subscriptions == (hidden,)  # type: ignore[attr-defined]
    with pytest.raises(AccessDeniedError, match=hidden):  # the report: never on a guess
        await storage.pinned_versions(lab.key_ref, fresh=False)
    # Reader granted again: the next inventory is whole.
    lab.control.unreadable_subscriptions([])
    pinned = await dependents.pinned_versions(lab.key_ref)
    assert {v: len(ids) for v, ids in pinned.items()} == {version: 2 * len(lab.subscriptions)}


async def test_a_kind_not_watching_the_unreadable_subscription_is_listed(
    lab: InventoryLab,
) -> None:
    _resources(lab)
    lab.cognitive("Face", lab.key())
    lab.control.unreadable_subscriptions([lab.subscriptions[2]])
    subs = ",".join(lab.subscriptions[:2])
    dependents, _, _ = lab.build(
        KEYWARD_DEPENDENT_KINDS="face,storage",
        KEYWARD_COGNITIVE_SUBSCRIPTIONS="",
        KEYWARD_FACE_SUBSCRIPTIONS=subs,
        KEYWARD_STORAGE_ACCOUNTS_SUBSCRIPTIONS=",".join(lab.subscriptions),
    )
    face, storage = dependents.services
    assert len(await face.refresh()) == 1
    assert sum(len(ids) for ids in (await face.pinned_versions(lab.key_ref)).values()) == 1
    with pytest.raises(AccessDeniedError, match=lab.subscriptions[2]):
        await storage.pinned_versions(lab.key_ref)
