"""(h)'s store: table names, the Function App's store settings, the mode row, the check.

Which shards the Function App rotates comes from the product's registry: the Table kind
builds the mode-aware data shard (``table:<KEYWARD_DEK_TABLE>``: empty at once in hierarchy
mode) and the KEK shard (``table:<KEYWARD_KEK_TABLE>``: a missing table reads as empty).
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

from azure.data.tables.aio import TableClient

from bench._rewrap import _adapter
from shared.crypto import LocalAesKeyWrapper, open_envelope

DATA_TABLE = "hierdeks"
KEK_TABLE = "hierkeks"
KEK_SETTING = "KEYWARD_KEK_TABLE"


def store_settings(data_table: str, kek_table: str) -> dict[str, str]:
    """The Function App's store settings for a data table and its KEK table."""
    return {"KEYWARD_DEK_TABLE": data_table, KEK_SETTING: kek_table}


async def mode_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Write the store's mode row through the product's Table mode store (as the last step
    of a migration to hierarchy mode leaves it)."""
    from shared.adapters.dek_table import TableModeStore
    from shared.records import ModeRecord, StoreMode

    world = spec["world"]
    table = TableClient.from_connection_string(world["connection_string"], spec["table"])
    try:
        store = TableModeStore(table)
        current = await store.read_mode()
        written = await store.write_mode(
            ModeRecord(
                mode=StoreMode(spec["mode"]), etag=current.etag, changed_at=datetime.now(UTC)
            )
        )
    finally:
        await table.close()
    return {"written": True, "mode": written.mode.value}


async def verify_job(spec: dict[str, Any]) -> dict[str, Any]:
    """After the rotations: every KEK row is wrapped by the key's newest version and unwraps
    (vault) to its KCV; one record per partition opens under its KEK (local)."""
    world = spec["world"]
    adapter = _adapter(world, lean=True)
    keks = TableClient.from_connection_string(world["connection_string"], spec["kek_table"])
    data = TableClient.from_connection_string(world["connection_string"], spec["data_table"])
    started = time.perf_counter()
    found = at_newest = kcv_ok = opened = 0
    problems: list[str] = []
    try:
        newest = await adapter.newest_enabled_version(world["key_ref"])
        target = f"{world['key_ref']}/{newest}"
        unwrapper = await adapter.wrapper(target)
        async for row in keks.list_entities():
            found += 1
            if row["KeyId"] != target:
                problems.append(f"{row['PartitionKey']}: KEK under {row['KeyId']}")
                continue
            at_newest += 1
            with await unwrapper.unwrap(base64.b64decode(row["WrappedKey"])) as kek:
                kcv_ok += kek.kcv == row["Kcv"]
                wrapper = LocalAesKeyWrapper(row["RowKey"], kek)
                partition = row["PartitionKey"]
                async for record in data.query_entities(
                    "PartitionKey eq @p", parameters={"p": partition}, results_per_page=1
                ):
                    ref = f"{partition}/{record['RowKey']}"
                    with wrapper.unwrap(base64.b64decode(record["WrappedKey"])) as dek:
                        if dek.kcv != record["Kcv"] or record["KekVersion"] != row["RowKey"]:
                            problems.append(f"{ref}: KCV or KEK version differs")
                        else:
                            open_envelope(dek, bytes(record["Sealed"]), dek_id=ref)
                            opened += 1
                    break
    finally:
        await keks.close()
        await data.close()
        await adapter.close()
    return {
        "keks": found,
        "keks_at_newest": at_newest,
        "keks_kcv_ok": kcv_ok,
        "records_opened": opened,
        "problems": problems[:10],
        "seconds": round(time.perf_counter() - started, 2),
    }
