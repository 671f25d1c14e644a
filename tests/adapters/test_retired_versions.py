"""The retired-version record in keyward's state table, against Azurite."""

from __future__ import annotations

import pytest
from azure.data.tables.aio import TableClient

from shared.adapters.retired_versions import TableRetiredVersions

pytestmark = pytest.mark.azurite

KEY_REF = "https://kv.vault.azure.net/keys/Orders-KEK"
V1 = "a" * 32


async def test_a_retired_version_is_seen_under_every_spelling(table: TableClient) -> None:
    record = TableRetiredVersions(table)
    assert await record.retired_versions(KEY_REF) == frozenset()
    await record.record_retired(KEY_REF, V1.upper(), attempt="a")
    assert await record.retired_versions(KEY_REF.lower()) == {V1}
    assert await record.retired_versions("https://KV.vault.azure.net/keys/orders-kek/") == {V1}


async def test_a_withdrawal_removes_only_its_own_attempt(table: TableClient) -> None:
    record = TableRetiredVersions(table)
    await record.record_retired(KEY_REF, V1, attempt="a")
    await record.record_retired(KEY_REF, V1, attempt="b")  # a concurrent retire call
    assert not await record.withdraw_retired(KEY_REF, V1, attempt="a")
    assert await record.retired_versions(KEY_REF) == {V1}
    assert await record.withdraw_retired(KEY_REF, V1, attempt="b")
    assert not await record.withdraw_retired(KEY_REF, V1, attempt="b")
    assert await record.retired_versions(KEY_REF) == frozenset()
