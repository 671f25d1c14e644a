"""Top-level resource ids of the key-dependent kinds: segment by segment, case-insensitive
provider and type, nothing else accepted."""

from __future__ import annotations

import pytest

from shared.events import parse_resource_id

SUB = "00000000-0000-0000-0000-00000000c0de"


def test_a_resource_id_gives_subscription_group_and_name_whatever_the_case() -> None:
    found = parse_resource_id(
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/MICROSOFT.STORAGE/StorageAccounts/st1",
        "Microsoft.Storage",
        "storageAccounts",
    )
    assert found == (SUB, "rg1", "st1")


@pytest.mark.parametrize(
    "value",
    [
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts",
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Web/sites/st1",
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/other/st1",
        f"/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/st1/x",
        f"/subscriptions/{SUB}/resourceGroups/rg1/x/Microsoft.Storage/storageAccounts/st1",
        f"subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/st1",
        f"/subscriptions/{SUB}/resourceGroups//providers/Microsoft.Storage/storageAccounts/st1",
        "",
    ],
    ids=["short", "provider", "type", "child", "providers", "relative", "empty-group", "empty"],
)
def test_anything_else_is_not_that_resource(value: str) -> None:
    assert parse_resource_id(value, "Microsoft.Storage", "storageAccounts") is None
