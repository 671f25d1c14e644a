"""The retired-version record in keyward's state table (``shared.rewrap.RetiredVersions``).

Every worker and every retire call of the Function App reads the same record, so it lives
beside the job checkpoints: one entity per retired version, partition
``retired:{sha256(key, folded)}`` (a key id holds characters a PartitionKey may not), row key
the version. The entity carries the retire call's attempt id; a withdrawal deletes it only
``IfNotModified`` on the ETag read with that attempt id, so a concurrent retire that wrote
its own attempt keeps the record.
"""

from __future__ import annotations

import hashlib

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translated
from shared.rewrap import fold_key

_PARTITION_PREFIX = "retired:"


def _partition(key_ref: str) -> str:
    digest = hashlib.sha256(fold_key(key_ref).encode("utf-8")).hexdigest()
    return _PARTITION_PREFIX + digest


class TableRetiredVersions:
    """Retired versions in the state table (the table client is shared; its owner closes it)."""

    def __init__(self, table: TableClient) -> None:
        self._table = table

    async def retired_versions(self, key_ref: str) -> frozenset[str]:
        found: set[str] = set()
        with translated("read retired versions"):
            entities = self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": _partition(key_ref)}, select=["RowKey"]
            )
            async for entity in entities:
                found.add(str(entity["RowKey"]))
        return frozenset(found)

    async def record_retired(self, key_ref: str, version: str, *, attempt: str) -> None:
        entity = {
            "PartitionKey": _partition(key_ref),
            "RowKey": version.lower(),
            "KeyRef": key_ref,
            "Attempt": attempt,
        }
        with translated("record retired version"):
            await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def withdraw_retired(self, key_ref: str, version: str, *, attempt: str) -> bool:
        partition, row = _partition(key_ref), version.lower()
        with translated("withdraw retired version"):
            try:
                entity = await self._table.get_entity(partition, row)
            except ResourceNotFoundError:
                return False
            if entity.get("Attempt") != attempt:
                return False
            try:
                await self._table.delete_entity(
                    partition,
                    row,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                return False
        return True
