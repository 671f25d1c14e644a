"""The Resource Graph inventory against the emulator: one paged query for every kind and
subscription, cached, and the per-subscription fallback where Resource Graph refuses."""

from __future__ import annotations

import logging

import pytest

from shared.adapters.resource_graph import MODE_FALLBACK, MODE_RESOURCE_GRAPH
from tests.inventory.conftest import InventoryLab

pytestmark = [pytest.mark.emulator, pytest.mark.azurite]


def _kinds(lab: InventoryLab) -> None:
    """One resource of each kind in each of the lab's subscriptions (on the key's v1)."""
    version = lab.key()
    for subscription in lab.subscriptions:
        lab.cognitive("Face", version, subscription=subscription)
        lab.cognitive("OpenAI", version, subscription=subscription)
        lab.storage(version, subscription=subscription)


async def test_every_kind_in_every_subscription_from_one_query(lab: InventoryLab) -> None:
    _kinds(lab)
    dependents, _, _ = lab.build()
    lab.control.reset_requests()
    indexes = {s.kind.name: await s.refresh(fresh=False) for s in dependents.services}
    assert {k: len(i) for k, i in indexes.items()} == {"face": 3, "cognitive": 3, "storage": 3}
    assert {a.kind for a in indexes["cognitive"].accounts} == {"OpenAI"}
    assert {a.subscription_id for a in indexes["storage"].accounts} == set(lab.subscriptions)
    # One query for the resources, one for the subscriptions the caller can read.
    assert lab.control.requests() == {"POST Microsoft.ResourceGraph/resources": 2}
    # Cached: a key event's look-up within KEYWARD_INVENTORY_CACHE_SECONDS asks nothing.
    await dependents.services[0].refresh(fresh=False)
    assert lab.control.inventory_requests() == 2
    # A sweep queries afresh, once for every kind.
    await dependents.sweep()
    assert lab.control.requests()["POST Microsoft.ResourceGraph/resources"] == 4


async def test_pages_follow_the_skip_token(lab: InventoryLab) -> None:
    _kinds(lab)
    dependents, _, _ = lab.build()
    assert dependents.graph is not None
    dependents.graph._page_size = 2  # type: ignore[attr-defined]  # 9 rows of ours, and others
    lab.control.reset_requests()
    index = await dependents.services[2].refresh()
    assert len(index) == 3
    queries = lab.control.requests()["POST Microsoft.ResourceGraph/resources"]
    total = dependents.graph.requests  # type: ignore[attr-defined]
    assert queries == total >= 5, "every page is one request, ours alone take five"


async def test_refused_resource_graph_falls_back_to_listing_each_subscription(
    lab: InventoryLab, caplog: pytest.LogCaptureFixture
) -> None:
    _kinds(lab)
    lab.control.refuse_resource_graph(True)
    dependents, _, _ = lab.build()
    lab.control.reset_requests()
    with caplog.at_level(logging.WARNING, logger="shared.adapters.resource_graph"):
        summaries = await dependents.sweep()
        await dependents.sweep()
    assert {k: s.accounts for k, s in summaries.items()} == {
        "face": 3, "cognitive": 3, "storage": 3,
    }  # fmt: skip
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1, "said once, not on every sweep"
    assert dependents.graph is not None
    assert dependents.graph.mode == MODE_FALLBACK
    requests = lab.control.requests()
    assert requests["POST Microsoft.ResourceGraph/resources"] == 1, "not asked again at once"
    # Two sweeps, three kinds, three subscriptions: a listing each (groups scope them).
    assert lab.control.inventory_requests() - 1 == 2 * 3 * 3
    lab.control.refuse_resource_graph(False)
    assert MODE_RESOURCE_GRAPH != MODE_FALLBACK


async def test_resource_graph_off_lists_each_subscription(lab: InventoryLab) -> None:
    _kinds(lab)
    dependents, _, _ = lab.build(KEYWARD_RESOURCE_GRAPH="false")
    assert dependents.graph is None
    lab.control.reset_requests()
    summaries = await dependents.sweep()
    assert sum(s.accounts for s in summaries.values()) == 9
    assert "POST Microsoft.ResourceGraph/resources" not in lab.control.requests()
    assert lab.control.inventory_requests() == 3 * 3


def test_the_emulator_answers_the_sdk_pages_and_refuses_unsupported_kql(lab: InventoryLab) -> None:
    """azure-mgmt-resourcegraph itself, against the emulator: ``$top``/``$skipToken`` pages
    and Resource Graph's error shape for a query outside the subset."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    from devtools.emulator.arm_client import management_client_kwargs
    from devtools.emulator.credential import EmulatorCredential

    _kinds(lab)
    query = (
        f"Resources | where resourceGroup == '{lab.group}' | where kind =~ 'openai'"
        " | project id, name, kind | order by name asc"
    )
    client = ResourceGraphClient(
        EmulatorCredential(lab.operator),
        **management_client_kwargs(lab.emulator.url, lab.emulator.ca_path),
    )
    with client:
        names, token, pages = [], None, 0
        while True:
            answer = client.resources(
                QueryRequest(
                    subscriptions=list(lab.subscriptions),
                    query=query,
                    options=QueryRequestOptions(top=2, skip_token=token),
                )
            )
            pages += 1
            assert answer.total_records == 3
            assert answer.result_truncated == "false"
            names += [row["name"] for row in answer.data]
            token = answer.skip_token
            if not token:
                break
        assert (pages, len(names), names == sorted(names)) == (2, 3, True)
        with pytest.raises(HttpResponseError) as refused:
            client.resources(
                QueryRequest(
                    subscriptions=list(lab.subscriptions), query="Resources | summarize count()"
                )
            )
    assert refused.value.status_code == 400
    assert refused.value.error is not None
    assert refused.value.error.code == "BadRequest"
    assert "InvalidQuery" in str(refused.value)
