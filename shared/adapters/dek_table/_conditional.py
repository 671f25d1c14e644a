"""Per-entity conditional writes of the Table store: the fallback when a transaction sank.

A transaction fails whole when one entity lost its race; the store then writes each rewrap
of the chunk on its own, MERGE with ``If-Match`` on the ETag the scan read, so the others land
and the loser gets CONFLICT (or FAILED with the service's reason). ``mark_unreadable`` is the
same conditional MERGE with the unreadable marker.
"""

from __future__ import annotations

import asyncio

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from shared.adapters._azure_errors import item_fault, translate, translated
from shared.adapters.dek_table._entity import SCAN_COLUMNS, holds_wrap, now, rewrap_entity
from shared.records._format import (
    PARTITION_KEY,
    ROW_KEY,
    UNREADABLE,
    UNREADABLE_AT,
)
from shared.stores._common import clean_reason
from shared.stores._model import split_ref
from shared.stores._protocol import DekRecord, Rewrap, WriteOutcome
from shared.stores._protocol import WriteResult as Result

_IF_MATCH = MatchConditions.IfNotModified


async def write_one(table: TableClient, gate: asyncio.Semaphore, rewrap: Rewrap) -> Result:
    """One rewrap as a conditional MERGE; a 412 is re-read (see :func:`_after_conflict`)."""
    ref = rewrap.record.ref
    entity = rewrap_entity(rewrap)
    try:
        async with gate:
            answer = await table.update_entity(
                entity,
                mode=UpdateMode.MERGE,
                etag=rewrap.record.etag,
                match_condition=_IF_MATCH,
            )
    except ResourceNotFoundError:
        return Result(ref, WriteOutcome.NOT_FOUND, "no such DEK")
    except HttpResponseError as error:
        if error.status_code == 412:
            return await _after_conflict(table, rewrap)
        fault = item_fault(error, "rewrap update")
        if fault is None:
            raise translate(error, "rewrap update") from None
        return Result(ref, WriteOutcome.FAILED, str(fault))
    except AzureError as error:
        raise translate(error, "rewrap update") from None
    return Result(ref, WriteOutcome.WRITTEN, new_etag=answer.get("etag"))


async def _after_conflict(table: TableClient, rewrap: Rewrap) -> Result:
    """A 412 is a success when the entity already holds exactly this wrap: a retry of a
    batch whose first attempt landed (or whose answer was lost) reports it as written."""
    partition, dek_id = split_ref(rewrap.record.ref)
    with translated("read after conflict"):
        try:
            entity = await table.get_entity(partition, dek_id, select=SCAN_COLUMNS)
        except ResourceNotFoundError:
            return Result(rewrap.record.ref, WriteOutcome.NOT_FOUND, "no such DEK")
    if holds_wrap(entity, rewrap):
        etag = entity.metadata.get("etag")
        return Result(rewrap.record.ref, WriteOutcome.WRITTEN, "already written", etag)
    return Result(rewrap.record.ref, WriteOutcome.CONFLICT, "etag no longer matches")


async def mark_unreadable(table: TableClient, record: DekRecord, reason: str) -> Result:
    """Mark ``record`` unreadable (with a cleaned reason), conditional on its ETag."""
    partition, dek_id = split_ref(record.ref)
    entity = {PARTITION_KEY: partition, ROW_KEY: dek_id,
              UNREADABLE: clean_reason(reason), UNREADABLE_AT: now()}  # fmt: skip
    try:
        answer = await table.update_entity(
            entity, mode=UpdateMode.MERGE, etag=record.etag, match_condition=_IF_MATCH
        )
    except ResourceNotFoundError:
        return Result(record.ref, WriteOutcome.NOT_FOUND, "no such DEK")
    except HttpResponseError as error:
        if error.status_code != 412:
            raise translate(error, "mark unreadable") from None
        return Result(record.ref, WriteOutcome.CONFLICT, "etag no longer matches")
    except AzureError as error:
        raise translate(error, "mark unreadable") from None
    return Result(record.ref, WriteOutcome.WRITTEN, new_etag=answer.get("etag"))
