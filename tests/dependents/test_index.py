"""The key/vault index of key-dependent resources."""

from __future__ import annotations

from shared.dependents import AccountIndex
from tests.dependents.conftest import NEW, OLD, account


def test_index_finds_accounts_by_key_and_vault() -> None:
    pinned_old = account(id="a1", key_version=OLD)
    pinned_new = account(id="a2", key_version=NEW)
    latest = account(id="a3")
    elsewhere = account(id="a4", key_vault_uri="https://other-kv.vault.azure.net")
    index = AccountIndex([pinned_old, pinned_new, latest, elsewhere])
    key_ref = "https://CONTOSO-KV.vault.azure.net/keys/face-cmk"
    assert {a.id for a in index.for_key(key_ref)} == {"a1", "a2", "a3"}
    assert {a.id for a in index.for_key(f"{key_ref}/{NEW}")} == {"a1", "a2", "a3"}
    assert [a.id for a in index.pinned_to_other_versions(key_ref, NEW)] == ["a1"]
    assert [a.id for a in index.pinned_to(key_ref, OLD)] == ["a1"]
    assert [a.id for a in index.for_vault("https://other-kv.vault.azure.net/")] == ["a4"]
    assert index.for_key("https://nowhere.vault.azure.net/keys/x") == ()
    assert len(index) == 4
