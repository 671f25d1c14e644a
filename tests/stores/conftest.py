"""Fixtures for the DEK store tests: three versions of one RSA key, and one harness per store.

A harness opens a fresh, empty store on its real backend (a new table in Azurite, a new
SQLite file, a new in-memory store), reopens it as a second instance (a resumed worker), and
plants corrupted rows the way only a broken writer could: through the backend's own API,
never through the store under test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables.aio import TableClient
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.azurite import AzuriteInfo
from shared.adapters.dek_table import TableDekStore
from shared.crypto import LocalRsaWrapper
from shared.stores import SqliteDekStore
from tests.memory_store import MemoryDekStore, MemoryRow

VAULT = "https://kwtest.vault.azure.net"
KEY_REF = f"{VAULT}/keys/dek-kek"
OTHER_KEY_REF = f"{VAULT}/keys/other-kek"
V1, V2, V3 = ("1" * 32, "2" * 32, "3" * 32)


@dataclass(frozen=True)
class Keys:
    v1: LocalRsaWrapper
    v2: LocalRsaWrapper
    v3: LocalRsaWrapper
    other: LocalRsaWrapper

    def by_id(self, key_id: str) -> LocalRsaWrapper:
        return next(w for w in (self.v1, self.v2, self.v3, self.other) if w.key_id == key_id)


@pytest.fixture(scope="session")
def keys() -> Keys:
    def wrapper(key_id: str) -> LocalRsaWrapper:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return LocalRsaWrapper(key_id, private_key=private)

    return Keys(
        wrapper(f"{KEY_REF}/{V1}"),
        wrapper(f"{KEY_REF}/{V2}"),
        wrapper(f"{KEY_REF}/{V3}"),
        wrapper(f"{OTHER_KEY_REF}/{'4' * 32}"),
    )


#: Raw fields a harness can corrupt, by the store-neutral name tests use.
CORRUPTIBLE = ("key_id", "algorithm", "wrapped", "kcv")


class Harness:
    kind = ""

    async def open(self) -> Any:
        raise NotImplementedError

    async def reopen(self, store: Any) -> Any:
        raise NotImplementedError

    async def plant(self, store: Any, ref: str, key_ref: str, **fields: str) -> None:
        """Write a row with these raw text fields, bypassing the store's checks."""
        raise NotImplementedError

    async def delete(self, store: Any, ref: str) -> None:
        raise NotImplementedError

    def run(self, body: Callable[[Any], Awaitable[None]]) -> None:
        async def main() -> None:
            store = await self.open()
            try:
                await body(store)
            finally:
                await store.close()

        asyncio.run(main())


class MemoryHarness(Harness):
    kind = "memory"

    async def open(self) -> Any:
        return MemoryDekStore()

    async def reopen(self, store: Any) -> Any:
        return store

    async def plant(self, store: Any, ref: str, key_ref: str, **fields: str) -> None:
        store.put_raw(ref, MemoryRow(key_ref, fields["key_id"], fields["algorithm"],
                                     fields["wrapped"], fields.get("kcv")))  # fmt: skip

    async def delete(self, store: Any, ref: str) -> None:
        store.delete(ref)


class SqliteHarness(Harness):
    kind = "sqlite"

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def open(self) -> Any:
        return SqliteDekStore(self._directory / f"{uuid.uuid4().hex}.db")

    async def reopen(self, store: Any) -> Any:
        return SqliteDekStore(store._path)

    async def plant(self, store: Any, ref: str, key_ref: str, **fields: str) -> None:
        partition, dek_id = ref.split("/", 1)
        store.execute(
            "INSERT INTO deks (partition, dek_id, key_ref, key_version, key_id, algorithm,"
            " wrapped, kcv, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,'','')",
            (partition, dek_id, key_ref, fields.get("version", "x"), fields["key_id"],
             fields["algorithm"], fields["wrapped"], fields.get("kcv")),
        )  # fmt: skip

    async def delete(self, store: Any, ref: str) -> None:
        store.execute("DELETE FROM deks WHERE partition = ? AND dek_id = ?", ref.split("/", 1))


class TableHarness(Harness):
    kind = "table"

    def __init__(self, azurite: AzuriteInfo) -> None:
        self._connection_string = azurite.connection_string

    def _client(self, table: str) -> TableClient:
        return TableClient.from_connection_string(self._connection_string, table)

    async def open(self) -> Any:
        store = TableDekStore.from_connection_string(
            self._connection_string, f"deks{uuid.uuid4().hex[:20]}"
        )
        await store.create_table()
        return store

    async def reopen(self, store: Any) -> Any:
        return TableDekStore.from_connection_string(
            self._connection_string, store._table.table_name
        )

    async def plant(self, store: Any, ref: str, key_ref: str, **fields: str) -> None:
        partition, dek_id = ref.split("/", 1)
        entity = {"PartitionKey": partition, "RowKey": dek_id, "KeyRef": key_ref,
                  "KeyVersion": fields.get("version", "x"), "KeyId": fields["key_id"],
                  "Algorithm": fields["algorithm"], "WrappedKey": fields["wrapped"]}  # fmt: skip
        if fields.get("kcv") is not None:
            entity["Kcv"] = fields["kcv"]
        async with self._client(store._table.table_name) as client:
            await client.upsert_entity(entity)

    async def delete(self, store: Any, ref: str) -> None:
        async with self._client(store._table.table_name) as client:
            await client.delete_entity(*ref.split("/", 1))


@pytest.fixture(params=[pytest.param("table", marks=pytest.mark.azurite), "sqlite", "memory"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    if request.param == "table":
        return TableHarness(request.getfixturevalue("azurite"))
    if request.param == "sqlite":
        return SqliteHarness(tmp_path)
    return MemoryHarness()
