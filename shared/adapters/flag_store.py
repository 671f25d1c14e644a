"""Flag records of key-dependent resources in Azure Table storage, written with ETag conditions.

One entity per account, in keyward's state table (``PartitionKey`` the kind's partition,
``face`` for Face accounts; ``RowKey`` the SHA-256 of the lower-case account id, since ARM ids
hold ``/`` which keys may not). Besides the record, an entity may
carry a **pending-effects marker**: the effects of a verdict change, the record to store once
they are done, how many are done, and until when its writer holds it (a lease). The Face
service writes the marker *before* it publishes or tags, advances it after each effect, and
replaces it with the new record at the end; a crash anywhere leaves a marker that a later
evaluation finishes (once the lease ran out) instead of starting over, so an event is not
published twice and a change is never lost. The record and marker codecs are the domain's
(:mod:`shared.dependents`), so the status API shows what is stored.

Why ETags: several function instances may evaluate the same account (a sweep and an event).
``get`` remembers the entity's ETag and every write is conditional on it, so the second writer
gets ``ConflictError`` *before* performing any effect and leaves the account to the first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import translated
from shared.dependents import FlagRecord, PendingEffects, record_from_dict, record_to_dict
from shared.errors import ConflictError

#: The Table service's largest query page.
_MAX_PAGE = 1000


def _row(account_id: str) -> str:
    return hashlib.sha256(account_id.lower().encode("utf-8")).hexdigest()


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class TableFlagStore:
    """One kind's flag records (plus the pending marker) in one partition of one table.

    The table client is shared (keyward's state table, with job checkpoints and the event
    ledger); its owner closes it.
    """

    def __init__(self, table: TableClient, *, partition: str, create_table: bool = True) -> None:
        """``partition``: the kind's (its ``KindLabels.flag_partition``); ``create_table``:
        create the table on first use if it does not exist."""
        self._table = table
        self._partition = partition
        self._etags: dict[str, str] = {}
        self._ready = not create_table

    async def _ensure_table(self) -> None:
        if self._ready:
            return
        with (
            translated(f"create {self._partition} flag table"),
            contextlib.suppress(ResourceExistsError),
        ):
            await self._table.create_table()
        self._ready = True

    async def _entity(self, account_id: str) -> dict[str, Any] | None:
        await self._ensure_table()
        with translated(f"read {self._partition} flag"):
            try:
                entity = await self._table.get_entity(self._partition, _row(account_id))
            except ResourceNotFoundError:
                self._etags.pop(_row(account_id), None)
                return None
        self._etags[_row(account_id)] = str(entity.metadata["etag"])
        return dict(entity)

    async def get(self, account_id: str) -> FlagRecord | None:
        """The stored record; remembers the ETag for the next write.

        Raises:
            ServiceError: the table refused or failed the read.
        """
        entity = await self._entity(account_id)
        return record_from_dict(json.loads(entity["Record"])) if entity else None

    async def load(self, account_id: str) -> tuple[FlagRecord | None, PendingEffects | None]:
        """The record and the pending-effects marker a previous run left, if any (remembers
        the ETag).

        Raises:
            ServiceError: the table refused or failed the read.
        """
        entity = await self._entity(account_id)
        if not entity:
            return None, None
        record = record_from_dict(json.loads(entity["Record"]))
        if not entity.get("Pending"):
            return record, None
        data = json.loads(entity["Pending"])
        lease = data.get("lease_until")
        pending = PendingEffects(
            record_from_dict(data["record"]),
            tuple(data["effects"]),
            int(data["done"]),
            datetime.fromisoformat(lease) if lease else None,
        )
        return record, pending

    async def put(self, record: FlagRecord) -> None:
        """Store ``record`` and clear any pending marker, conditional on the ETag last seen.

        Raises:
            ConflictError: another writer changed (or created) the entity since it was read.
            ServiceError: the table refused or failed the write.
        """
        await self._write(record.account_id, _dumps(record_to_dict(record)), "")

    async def put_pending(self, current: FlagRecord | None, pending: PendingEffects) -> None:
        """Keep ``current`` as the record and store ``pending`` beside it (conditional).

        Raises:
            ConflictError, ServiceError: as for :meth:`put`.
        """
        marker = {
            "record": record_to_dict(pending.record),
            "effects": list(pending.effects),
            "done": pending.done,
            "lease_until": pending.lease_until.isoformat() if pending.lease_until else None,
        }
        kept = current or pending.record  # a first record is stored with its marker
        await self._write(pending.record.account_id, _dumps(record_to_dict(kept)), _dumps(marker))

    async def _write(self, account_id: str, record: str, pending: str) -> None:
        row = _row(account_id)
        entity = {
            "PartitionKey": self._partition,
            "RowKey": row,
            "AccountId": account_id[:1024],
            "Record": record,
            "Pending": pending,
        }
        await self._ensure_table()
        etag = self._etags.get(row)
        with translated(f"write {self._partition} flag"):
            try:
                if etag is None:
                    result = await self._table.create_entity(entity)
                else:
                    result = await self._table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except ResourceExistsError:
                raise ConflictError(
                    f"{self._partition} flag for {account_id} was created meanwhile"
                ) from None
        self._etags[row] = str(result["etag"])

    async def first(self, limit: int) -> tuple[Sequence[FlagRecord], bool]:
        """At most ``limit`` records (the partition's first, in row key order: by the hash of
        the account id), sorted by account id, and whether more exist. One query that reads
        at most ``limit + 1`` entities, whatever the number of accounts: the status page's.

        Raises:
            ServiceError: the table refused or failed the query.
        """
        await self._ensure_table()
        records: list[FlagRecord] = []
        with translated(f"list {self._partition} flags"):
            pages = self._table.query_entities(
                "PartitionKey eq @pk",
                parameters={"pk": self._partition},
                select=["Record"],
                results_per_page=min(limit + 1, _MAX_PAGE),
            )
            async for entity in pages:
                records.append(record_from_dict(json.loads(entity["Record"])))
                if len(records) > limit:
                    break
        shown = sorted(records[:limit], key=lambda r: r.account_id.lower())
        return shown, len(records) > limit
