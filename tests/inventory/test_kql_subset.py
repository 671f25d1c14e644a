"""The emulator's Resource Graph: the KQL subset it answers (and what it refuses), pure."""

from __future__ import annotations

import pytest

from devtools.emulator.arm_resourcegraph import QueryError, parse
from shared.adapters.arm_storage import storage_from_arm
from shared.adapters.resource_graph import inventory_query, row_as_resource

ROWS = [
    {
        "id": "/subscriptions/s1/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/b",
        "name": "b",
        "type": "microsoft.storage/storageaccounts",
        "kind": "StorageV2",
        "properties": {"encryption": {"keySource": "Microsoft.Keyvault"}},
    },
    {
        "id": "/subscriptions/s1/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a",
        "name": "a",
        "type": "microsoft.cognitiveservices/accounts",
        "kind": "OpenAI",
        "properties": {"encryption": {"keySource": "Microsoft.KeyVault"}},
    },
    {
        "id": "/subscriptions/s1/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/c",
        "name": "c",
        "type": "microsoft.cognitiveservices/accounts",
        "kind": "Face",
        "properties": {"encryption": {"keySource": "Microsoft.CognitiveServices"}},
    },
    {
        "id": "/subscriptions/s1/resourceGroups/g/providers/Microsoft.Web/sites/d",
        "name": "d",
        "type": "microsoft.web/sites",
        "properties": {},
    },
]


def test_keywards_own_query_selects_key_vault_keys_of_the_watched_types_in_id_order() -> None:
    query = inventory_query(["Microsoft.Storage/storageAccounts", RESOURCE_TYPE_COGNITIVE])
    rows = parse(query).run(ROWS)
    assert [r["name"] for r in rows] == ["a", "b"]  # ordered by id; c uses a Microsoft key
    assert set(rows[0]) == {
        "id", "name", "type", "kind", "location", "subscriptionId", "resourceGroup", "sku",
        "tags", "identity", "encryption",
    }  # fmt: skip
    assert rows[1]["encryption"] == {"keySource": "Microsoft.Keyvault"}


RESOURCE_TYPE_COGNITIVE = "Microsoft.CognitiveServices/accounts"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("Resources | where kind == 'OpenAI'", ["a"]),
        ("Resources | where kind == 'openai'", []),
        ("Resources | where kind =~ 'openai'", ["a"]),
        ("Resources | where kind !~ 'openai' and name != 'd'", ["b", "c"]),
        ("Resources | where name == 'a' or name == 'd'", ["a", "d"]),
        ("resources | where kind in ('Face', 'StorageV2') | order by name desc", ["c", "b"]),
        ("Resources | where tolower(kind) == 'face'", ["c"]),
        ("Resources | where properties.missing.deep =~ ''", ["b", "a", "c", "d"]),
    ],
)
def test_the_subset_filters_like_kql(query: str, names: list[str]) -> None:
    assert [r["name"] for r in parse(query).run(ROWS)] == names


@pytest.mark.parametrize(
    "query",
    [
        "ResourceChanges | project id",
        "Resources | summarize count() by type",
        "Resources | where name contains 'a'",
        "Resources | extend x = 1",
        "Resources | project tolower(name)",
        "Resources | where name == a",
        "Resources | join (Resources) on id",
    ],
)
def test_anything_outside_the_subset_is_refused(query: str) -> None:
    with pytest.raises(QueryError):
        parse(query)


def test_a_projected_storage_row_maps_like_an_arm_get() -> None:
    row = {
        "id": ROWS[0]["id"],
        "name": "b",
        "type": "microsoft.storage/storageaccounts",
        "kind": "StorageV2",
        "identity": {"type": "SystemAssigned", "principalId": "p-1"},
        "encryption": {
            "keySource": "Microsoft.Keyvault",
            "keyvaultproperties": {
                "keyname": "cmk",
                "keyversion": "",
                "keyvaulturi": "https://kv.vault.azure.net/",
            },
        },
    }
    resource = storage_from_arm(row_as_resource(row))
    assert resource is not None
    assert (resource.key_name, resource.key_version) == ("cmk", None)  # follows the latest
    assert resource.identity.effective_principal_id == "p-1"
    assert resource.subscription_id == "s1"


def test_resource_containers_is_a_table_of_the_subset() -> None:
    query = parse(
        "ResourceContainers | where type =~ 'microsoft.resources/subscriptions'"
        " | project subscriptionId"
    )
    assert query.table == "resourcecontainers"
    rows = [
        {"type": "microsoft.resources/subscriptions", "subscriptionId": "s1"},
        {"type": "microsoft.resources/subscriptions/resourcegroups", "subscriptionId": "s1"},
    ]
    assert query.run(rows) == [{"subscriptionId": "s1"}]
    assert parse("Resources | project id").table == "resources"
