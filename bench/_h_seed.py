"""(h) seeding worker: hierarchy-mode records in bulk, one KEK per partition.

A process takes some partitions of the layout (``devtools.seed._deks.seed_layout``: record
``i`` is ``p{i % partitions:04d}/d{i:09d}``). For each it generates the partition's KEK,
wraps it locally with the public half of the vault key's newest version (no vault call) into
a format-1 row of the KEK table, and writes the partition's records as format-2 rows: fresh
DEKs sealing a short payload, wrapped by the KEK with AES-KW (``LocalAesKeyWrapper``), in
insert transactions of 100 (``_batch.send_changeset``), :data:`IN_FLIGHT` at once. Every
KEK is wiped when the process is done; nothing of it leaves the process but its RSA wrap.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import AzureError
from azure.data.tables.aio import TableClient

from bench._h_format import FIRST_KEK_VERSION, record_entity
from bench._rewrap import _adapter
from devtools.seed._deks import seed_layout
from shared.adapters.dek_table import TableDekStore
from shared.adapters.dek_table._batch import BatchOperation, send_changeset
from shared.adapters.dek_table._upkeep import MAX_TRANSACTION_OPERATIONS
from shared.crypto import DataKey, LocalAesKeyWrapper, LocalRsaWrapper
from shared.stores._model import NewDek

#: Insert transactions in flight per seeding process (several partitions at once).
IN_FLIGHT = 8
#: Attempts per transaction: Azurite holding 1,000,000 entities on a loaded machine sometimes
#: drops a connection; a transaction is all or nothing, so a retry answered 409 had landed.
ATTEMPTS = 6


def payload(index: int) -> bytes:
    """What record ``index`` seals (short: the rotation never reads it)."""
    return f"record {index:09d}".encode()


def record_indexes(partition: int, partitions: int, per_partition: int) -> list[int]:
    """The record indexes ``seed_layout`` puts into ``partition``."""
    return [partition + partitions * j for j in range(per_partition)]


def _work(own: list[int], partitions: int, per_partition: int) -> Iterator[tuple[int, list[int]]]:
    for partition in own:
        indexes = record_indexes(partition, partitions, per_partition)
        for first in range(0, len(indexes), MAX_TRANSACTION_OPERATIONS):
            yield partition, indexes[first : first + MAX_TRANSACTION_OPERATIONS]


async def _send(table: TableClient, operations: list[BatchOperation]) -> int:
    """One transaction; how many retries it took."""
    for attempt in range(ATTEMPTS):
        try:
            answer = await send_changeset(table, operations)
        except AzureError:
            if attempt == ATTEMPTS - 1:
                raise
            await asyncio.sleep(2.0 * (attempt + 1))
            continue
        if answer.landed(len(operations)):
            return attempt
        if attempt and answer.failure.status == 409:
            return attempt
        if answer.status in (429, 500, 503) and attempt < ATTEMPTS - 1:
            await asyncio.sleep(answer.retry_after or 2.0 * (attempt + 1))
            continue
        raise RuntimeError(f"insert transaction refused: {answer.failure}")
    raise AssertionError("unreachable")


async def hier_seed_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Spec: ``world``, ``data_table``, ``kek_table``, ``partitions`` (the layout's total),
    ``own`` (this process's partition numbers), ``per_partition``, optional ``in_flight``."""
    world = spec["world"]
    partitions, per_partition = int(spec["partitions"]), int(spec["per_partition"])
    own = [int(p) for p in spec["own"]]
    adapter = _adapter(world, lean=True)
    kek_store = TableDekStore.from_connection_string(world["connection_string"], spec["kek_table"])
    table = TableClient.from_connection_string(world["connection_string"], spec["data_table"])
    started = time.perf_counter()
    inserted = retried = 0
    keks: dict[int, tuple[str, LocalAesKeyWrapper, DataKey]] = {}
    try:
        version = await adapter.newest_enabled_version(world["key_ref"])
        kid = f"{world['key_ref']}/{version}"
        public = await adapter.public_key(kid)
        vault_key = LocalRsaWrapper(kid, public_key=public.rsa_public_key)
        rows = []
        for partition in own:
            name = seed_layout(partition, partitions, "")[0]
            kek = DataKey.generate()
            kek_id = FIRST_KEK_VERSION
            keks[partition] = (kek_id, LocalAesKeyWrapper(f"{name}/{kek_id}", kek), kek)
            rows.append(
                NewDek(name, kek_id, kid, vault_key.algorithm, vault_key.wrap(kek), kek.kcv)
            )
        await kek_store.insert_batch(rows)
        created = datetime.now(UTC)
        pending = _work(own, partitions, per_partition)

        async def stream() -> None:
            nonlocal inserted, retried
            for partition, chunk in pending:
                kek_id, wrapper, _ = keks[partition]
                operations = [
                    BatchOperation(
                        "insert",
                        record_entity(
                            wrapper, kek_id, *seed_layout(i, partitions, ""), payload(i), created
                        ),
                    )
                    for i in chunk
                ]
                retried += await _send(table, operations)
                inserted += len(operations)

        await asyncio.gather(*(stream() for _ in range(int(spec.get("in_flight", IN_FLIGHT)))))
    finally:
        for _, _, kek in keks.values():
            kek.wipe()
        with contextlib.suppress(Exception):
            await table.close()
        await kek_store.close()
        await adapter.close()
    return {
        "inserted": inserted,
        "keks": len(keks),
        "retried": retried,
        "seconds": round(time.perf_counter() - started, 2),
        "cpu_seconds": round(time.process_time(), 2),
    }
