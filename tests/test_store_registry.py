"""The DEK-store registry: one registration is all a new store kind needs to be built by the
Function App, opened by the CLI and accepted as a shard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import ContainerClient

from devtools.azurite import DEV_ACCOUNT, DEV_ACCOUNT_KEY
from shared.composition import (
    StorageClients,
    StoreKind,
    StoreSpec,
    build_app_stores,
    open_store,
    parse_connection,
    parse_store_spec,
    store_kinds,
)
from shared.composition import _stores as registry
from shared.errors import ConfigurationError, SettingError
from shared.rewrap import ShardMessage
from shared.settings import Settings
from shared.stores import DekStore, SqliteDekStore
from tests.memory_store import MemoryDekStore


class _NamedStore(MemoryDekStore):
    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    @property
    def name(self) -> str:
        return self._name


def _settings(**raw: str) -> Settings:
    env = {"KEYWARD_VAULT_ALLOWLIST": "contoso-kv", "KEYWARD_STORAGE_ACCOUNT_URL":
           "https://acct.blob.core.windows.net", **raw}  # fmt: skip
    return Settings.from_env(env)


@pytest.fixture
def cosmos(monkeypatch: pytest.MonkeyPatch) -> StoreKind:
    """A made-up kind registered the way a real one would be (restored after the test)."""

    def build(clients: StorageClients) -> Sequence[DekStore]:
        # A kind reads its own setting through Settings.read (here one that exists).
        queue = clients.settings.read("KEYWARD_JOB_QUEUE", str)
        return [_NamedStore(f"cosmos:{queue}")]

    def open_one(spec: StoreSpec) -> DekStore:
        return _NamedStore(f"cosmos:{spec.location}")

    kind = StoreKind("cosmos", "cosmos:CONNSTR:CONTAINER", open_one, parse_connection,
                     setting="KEYWARD_JOB_QUEUE", build=build)  # fmt: skip
    monkeypatch.setitem(registry._KINDS, "cosmos", kind)
    return kind


def test_the_built_in_kinds_are_registered_once() -> None:
    names = [kind.name for kind in store_kinds()]
    assert names[:3] == ["sqlite", "table", "blob"]
    assert len(names) == len(set(names))
    with pytest.raises(ValueError, match="twice"):
        registry.register(store_kinds()[0])


def test_a_registered_kind_is_built_opened_and_a_valid_shard(cosmos: StoreKind) -> None:
    settings = _settings(KEYWARD_JOB_QUEUE="deks-q", KEYWARD_BLOB_CONTAINERS="invoices")
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:1/{DEV_ACCOUNT};BlobEndpoint=http://127.0.0.1:1/{DEV_ACCOUNT};"
    )
    clients = StorageClients(
        settings,
        credential=None,  # type: ignore[arg-type]
        tables=TableServiceClient.from_connection_string(connection),
        container=lambda name: ContainerClient.from_connection_string(connection, name),
    )
    # Built, not called: no network I/O happens here.
    built = build_app_stores(clients)
    assert sorted(built) == [
        "blob:invoices",
        "cosmos:deks-q",
        "table:keywarddeks",
        "table:keywardkeks",
    ]
    spec = parse_store_spec("cosmos:AccountEndpoint=https://x:443/;:deks")
    assert (spec.kind, spec.location, str(spec)) == ("cosmos", "deks", "cosmos:deks")
    assert open_store(spec).name == "cosmos:deks"
    assert ShardMessage.for_shard("https://kv.vault.azure.net/keys/k", "a" * 32, "cosmos:deks")
    assert "KEYWARD_JOB_QUEUE" in registry.app_store_settings()


def test_the_cli_parses_through_the_registry(tmp_path: Path) -> None:
    store = open_store(parse_store_spec(f"sqlite:{tmp_path / 'a' / 'deks.sqlite'}"))
    assert isinstance(store, SqliteDekStore)
    with pytest.raises(
        ConfigurationError, match=r"sqlite:PATH\[:keks\], table:CONNSTR:TABLE or blob:"
    ):
        parse_store_spec("ftp:somewhere")
    with pytest.raises(ConfigurationError, match="expected table:CONNSTR:NAME"):
        parse_store_spec("table:")
    with pytest.raises(ConfigurationError, match="not known"):
        open_store(StoreSpec("ftp", "x"))


def test_settings_read_validates_a_kinds_own_setting() -> None:
    settings = replace(_settings(), raw={"KEYWARD_JOB_QUEUE": "Bad_Queue"})
    with pytest.raises(SettingError, match="KEYWARD_JOB_QUEUE"):
        settings.read("KEYWARD_JOB_QUEUE", _refuse)
    assert _settings().read("KEYWARD_DEK_TABLE", str) == "keywarddeks"  # the SPECS default


def _refuse(value: str) -> str:
    raise ValueError(f"not a queue name: {value}")
